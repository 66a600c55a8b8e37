/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VPMem devices (hcsshim AddVPMEM / RemoveVPMEM), a resource kind (res.h): read-only images
 * mapped into the guest with virtio-pmem, so the guest reads them through the host's page cache
 * (DAX), shared by VMs.
 *
 * Add (new image): open the image once (read-only) and probe it -> take the first free device
 *     number, waiting for our turn to plug (serial_adds: the guest gives device numbers to pmem
 *     devices in the order they arrive) -> add-fd
 *     (the image, or its padded copy) -> object-add memory-backend-file (read-only, shared,
 *     mem-path /proc/self/fd/<QEMU's fd>) -> device_add virtio-pmem-pci on its pci-bridge slot
 *     -> guest VPMemDevice Add (waits for the device; mounts it read-only with DAX at /tmp/p<n>
 *     when exposed) -> lock -> attached. A failed plug deletes the object and removes the fd
 *     set; a plugged device keeps its set for the VM's life.
 * Remove (last reference): guest VPMemDevice Remove (unmount) -> idle. QEMU 7.2 cannot unplug
 *     virtio-pmem: the device stays plugged and is kept for the same image, which a later add
 *     maps again without a hot-plug. Another image cannot have the number; when only parked
 *     numbers are left, an add fails with UVM_E_NO_AVAILABLE_LOCATION saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "argv.h"
#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "image.h"
#include "modreq.h"
#include "qmp.h"
#include "qmpcmd.h"
#include "res.h"
#include "vpmem.h"

struct vpmem_dev {
    struct res res;
    unsigned n;      /* key: the canonical host path */
    char *uvm_path;  /* "/tmp/p<n>" when exposed, else "" */
    uint64_t size;   /* bytes mapped (the backend's size) */
};

#define dev(r) ((struct vpmem_dev *)(r)) /* its struct res is first */

static void
dev_free(struct res *r)
{
    free(dev(r)->uvm_path);
}

/* Lock held: the record of device *n, broken ones included when `any`. */
static struct res *
at_number(struct uvm *vm, unsigned n, bool any)
{
    struct res *r;
    RES_FOREACH(r, vm, &vpmem_kind)
        if ((any || r->state != RES_BROKEN) && dev(r)->n == n)
            return r;
    return NULL;
}

static struct res *
find_number(const struct res_txn *t, const void *n)
{
    return at_number(t->vm, *(const unsigned *)n, false);
}

/* VPMem maps plain data from offset 0: a raw image or a fixed VHD. */
static int
check_plain(const struct image_info *img)
{
    if (img->raw_size)
        return 0;
    if (!strcmp(img->driver, "raw"))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "image '%s' is empty", img->path);
    return uvm_error(UVM_E_INVALID_ARGUMENT,
                     "image '%s' is a %s image: VPMem maps plain data (a raw image or a fixed "
                     "VHD)",
                     img->path, !strcmp(img->driver, "vpc") ? "dynamic VHD" : img->driver);
}

/* The file QEMU maps (*map_fd, owned) and its size. The guest's pmem needs a multiple of 2 MiB
 * and QEMU maps exactly the backend's size from offset 0, never past the file's end: an image
 * whose plain data is aligned is mapped as it is (a fixed VHD without its footer; *map_fd is a
 * dup of fd); any other gets a private padded copy in the runtime directory (*copy, owned: the
 * user's file is never changed), made from fd. */
static int
backing_file(struct uvm *vm, unsigned n, const struct image_info *img, int fd, int *map_fd,
             char **copy, uint64_t *size)
{
    if (img->raw_size % ARGV_PMEM_ALIGN == 0) {
        *map_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (*map_fd < 0)
            return uvm_error_errno(-errno, "image '%s'", img->path);
        *size = img->raw_size;
        return 0;
    }
    uint64_t padded = (img->raw_size + ARGV_PMEM_ALIGN - 1) / ARGV_PMEM_ALIGN * ARGV_PMEM_ALIGN;
    char name[32];
    snprintf(name, sizeof(name), "vpmem%u.img", n);
    cleanup_free char *path = rundir_file(&vm->rd, name);
    cleanup_close int out = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return uvm_error_errno(-errno, "padded copy '%s' of '%s'", path, img->path);
    off_t off = 0;
    int rc = 0;
    while ((uint64_t)off < img->raw_size) {
        ssize_t k = sendfile(out, fd, &off, img->raw_size - (uint64_t)off);
        if (k <= 0) {
            rc = k < 0 ? -errno : -EIO; /* 0: the file shrank under us */
            break;
        }
    }
    if (rc == 0 && ftruncate(out, (off_t)padded) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(path);
        return uvm_error_errno(rc, "padded copy '%s' of '%s'", path, img->path);
    }
    /* QEMU gets a read-only file, reopened from ours, not by name */
    char self[32];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", out);
    *map_fd = open(self, O_RDONLY | O_CLOEXEC);
    if (*map_fd < 0) {
        rc = -errno;
        unlink(path);
        return uvm_error_errno(rc, "padded copy '%s' of '%s': reopen", path, img->path);
    }
    uvm_log(UVM_LOG_WARNING, vm->cfg.id,
            "VPMem device %u: '%s' holds %llu bytes, not a multiple of 2 MiB: mapping a private "
            "padded copy (%s) instead of the file (no page cache sharing)",
            n, img->path, (unsigned long long)img->raw_size, path);
    *copy = steal_ptr(&path);
    *size = padded;
    return 0;
}

/* Rollback: drop the fd set of a backend that is gone (or never made). A failure leaves one fd
 * in QEMU until the VM ends: logged. */
static void
drop_fdset(struct res_txn *t, unsigned n, int fdset)
{
    if (qmpc_remove_fd(t->qmp, fdset) < 0)
        uvm_log(UVM_LOG_WARNING, t->vm->cfg.id, "VPMem device %u: fd set %d stays in QEMU: %s", n,
                fdset, uvm_last_error());
}

/* memory-backend-file on QEMU's copy of the file. QEMU 7.2 opens mem-path with open(), not
 * qemu_open(), so /dev/fdset/<id> means nothing there; /proc/self/fd/<n> reopens the very file
 * QEMU holds, subject to the file's permissions for QEMU's uid. */
static json_t *
object_args(const char *mem, int qemu_fd, uint64_t size)
{
    char path[48];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", qemu_fd);
    return json_pack("{s:s, s:s, s:s, s:I, s:b, s:b}", "qom-type", "memory-backend-file", "id",
                     mem, "mem-path", path, "size", (json_int_t)size, "share", 1, "readonly", 1);
}

/* The host half of a new device: add-fd (map_fd borrowed) -> object-add + device_add
 * (qmpc_plug). A failure removes the fd set; a plugged device keeps its set (QEMU cannot unplug
 * it, and idle devices stay plugged). */
static int
host_plug(struct res_txn *t, unsigned n, int map_fd, uint64_t size)
{
    char mem[32], id[32], bus[32], addr[16];
    topo_vpmem_place(t->vm, n, bus, addr, id, mem);
    int fdset = -1, qemu_fd = -1;
    int rc = qmpc_add_fd(t->qmp, map_fd, &fdset, &qemu_fd);
    if (rc < 0)
        return rc;
    cleanup_json json_t *oargs = object_args(mem, qemu_fd, size);
    cleanup_json json_t *dargs = json_pack("{s:s, s:s, s:s, s:s, s:s}", "driver", "virtio-pmem-pci",
                                           "id", id, "memdev", mem, "bus", bus, "addr", addr);
    const struct qmpc_backend be = QMPC_OBJECT(oargs, mem);
    rc = qmpc_plug(t->qmp, &be, dargs, &t->dirty, NULL);
    if (rc == 0)
        return 0;
    struct uvm_error_state st;
    uvm_error_capture(&st);
    drop_fdset(t, n, fdset); /* a backend left behind has its own open file */
    return uvm_error_restore(&st, rc);
}

/* A new device for the image open as fd: its backing file, then the host half. A padded copy
 * QEMU does not hold is removed again on failure. */
static int
plug_new(struct res_txn *t, struct vpmem_dev *d, const struct image_info *img, int fd)
{
    cleanup_free char *copy = NULL;
    cleanup_close int map_fd = -1;
    int rc = backing_file(t->vm, d->n, img, fd, &map_fd, &copy, &d->size);
    if (rc == 0)
        rc = host_plug(t, d->n, map_fd, d->size);
    if (rc < 0 && !t->dirty && copy)
        unlink(copy);
    return rc;
}

/* The guest part: VPMemDevice for the typed calls, else the caller's. */
static int
guest_part(struct res_txn *t, const struct guest_part *g, const char *type,
           const struct vpmem_dev *d, uint64_t size)
{
    json_t *settings =
        json_pack("{s:i, s:s}", "DeviceNumber", (int)d->n, "MountPath", d->uvm_path);
    if (size)
        json_object_set_new(settings, "BackingSize", json_integer((json_int_t)size));
    return bridge_guest_part(t->bridge, g, bridge_guest_request("VPMemDevice", type, settings));
}

static struct vpmem_dev *
dev_new(unsigned n, const char *host_path)
{
    struct vpmem_dev *d = res_new(&vpmem_kind, sizeof(*d), host_path);
    d->n = n;
    return d;
}

/* Lock held: the first never-used number, or an honest UVM_E_NO_AVAILABLE_LOCATION. */
static struct vpmem_dev *
alloc_dev(struct uvm *vm, const char *key, const char *host_path, int *rc)
{
    unsigned idle = 0, broken = 0;
    for (unsigned n = 0; n < vm->cfg.vpmem_count; n++) {
        struct res *r = at_number(vm, n, true);
        if (!r && !topo_vpmem_boot(vm, n))
            return dev_new(n, key);
        idle += r && r->state == RES_READY && r->refs == 0;
        broken += r && r->state == RES_BROKEN;
    }
    char why[160] = "";
    if (idle || broken)
        snprintf(why, sizeof(why),
                 "; %u of them kept plugged for removed images (QEMU cannot unplug virtio-pmem; "
                 "re-adding those images reuses them)%s",
                 idle + broken, broken ? ", some after a failed rollback" : "");
    *rc = uvm_error(UVM_E_NO_AVAILABLE_LOCATION,
                    "add vpmem '%s': no free VPMEM locations (%u devices configured%s)", host_path,
                    vm->cfg.vpmem_count, why);
    return NULL;
}

/* Lock held: device a->number for a new image, or an error naming why not. */
static struct vpmem_dev *
take_dev(struct uvm *vm, const struct vpmem_add_args *a, const char *key, int *rc)
{
    unsigned n = (unsigned)a->number;
    struct res *r = at_number(vm, n, true);
    if (!r && !topo_vpmem_boot(vm, n))
        return dev_new(n, key);
    *rc = uvm_error(UVM_E_ALREADY_ATTACHED, "add vpmem '%s': device %u is %s", a->host_path, n,
                    !r                ? "the root file system"
                    : r->refs == 0 && r->state == RES_READY ? "kept plugged for another image"
                                                            : "in use");
    return NULL;
}

static void
set_out(uint32_t *location, char **uvm_path, unsigned n, const char *path)
{
    if (location)
        *location = n;
    if (uvm_path)
        *uvm_path = xstrdup(path);
}

/* Arguments and configuration; then the image, opened once and probed (*fd, *img). */
static int
add_open(struct uvm *vm, const struct vpmem_add_args *a, int *fd, struct image_info *img)
{
    int rc = res_check_path(vm, "add vpmem", a->host_path);
    if (rc < 0)
        return rc;
    if (a->number >= 0 && (unsigned)a->number >= vm->cfg.vpmem_count)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "add vpmem '%s': device number %d is out of range (%u configured)",
                         a->host_path, a->number, vm->cfg.vpmem_count);
    rc = image_open(a->host_path, false, fd, img);
    if (rc == 0)
        rc = check_plain(img);
    if (rc < 0) {
        image_info_release(img);
        return uvm_error_wrap(rc, "add vpmem");
    }
    return 0;
}

/* Lock held: an add of a mapped image (READY, in use or idle): an error, or 1 when it only took
 * a reference, or 0 to map it again. */
static int
add_again(struct res *r, const struct vpmem_add_args *a, uint32_t *location, char **uvm_path)
{
    struct vpmem_dev *d = dev(r);
    if (a->number >= 0 && d->n != (unsigned)a->number)
        return uvm_error(UVM_E_ALREADY_ATTACHED, "add vpmem '%s': already mapped as device %u",
                         a->host_path, d->n);
    if (r->refs == 0)
        return 0; /* idle: the device is still there */
    r->refs++;     /* the stored number and path; expose is ignored */
    set_out(location, uvm_path, d->n, d->uvm_path);
    return 1;
}

/* Plug a new device (unless idle), then the guest part. */
static int
attach(struct res_txn *t, struct vpmem_dev *d, bool plug, const struct vpmem_add_args *a,
       const struct image_info *img, int fd)
{
    int rc = plug ? plug_new(t, d, img, fd) : 0;
    bool plugged = plug && rc == 0;
    if (rc == 0)
        rc = guest_part(t, a->guest, "Add", d, d->size);
    if (rc < 0 && (plugged || !plug)) { /* plugged and cannot be unplugged: keep it, idle */
        t->keep = true;
        uvm_log(UVM_LOG_WARNING, t->vm->cfg.id,
                "VPMem device %u stays plugged for '%s' after a failed add", d->n, img->path);
    }
    return rc;
}

static int
add_image(struct uvm *vm, const struct vpmem_add_args *a, const struct image_info *img, int fd,
          uint32_t *location, char **uvm_path)
{
    struct res_txn t = RES_TXN(vm, &vpmem_kind, "add vpmem");
    int rc = res_enter(&t, NULL, img->path);
    if (rc < 0)
        return rc;
    if (t.r && (rc = add_again(t.r, a, location, uvm_path)) != 0)
        return res_leave(&t, rc < 0 ? rc : 0);
    struct vpmem_dev *d = t.r ? dev(t.r)
                          : a->number < 0 ? alloc_dev(vm, img->path, a->host_path, &rc)
                                          : take_dev(vm, a, img->path, &rc);
    if (!d)
        return res_leave(&t, rc);
    free(d->uvm_path);
    d->uvm_path = a->number >= 0 ? xstrdup(a->uvm_path ? a->uvm_path : "")
                  : a->expose    ? xasprintf("/tmp/p%u", d->n)
                                 : xstrdup("");
    unsigned n = d->n;
    bool plug = !t.r; /* else idle: the device is still there */
    cleanup_free char *mount = xstrdup(d->uvm_path);
    res_txn_fail(&t, "add vpmem '%s' (device %u)", a->host_path, n);
    res_begin(&t, &d->res, RES_ADDING);
    rc = res_end(&t, attach(&t, d, plug, a, img, fd));
    if (rc == 0)
        set_out(location, uvm_path, n, mount);
    return rc;
}

int
vpmem_add(struct uvm *vm, const struct vpmem_add_args *a, uint32_t *location, char **uvm_path)
{
    if (uvm_path)
        *uvm_path = NULL;
    struct image_info img;
    cleanup_close int fd = -1; /* the image, opened once: QEMU gets this file, not the path */
    int rc = add_open(vm, a, &fd, &img);
    if (rc < 0)
        return rc;
    rc = add_image(vm, a, &img, fd, location, uvm_path);
    image_info_release(&img);
    return rc;
}

int
uvm_add_vpmem(struct uvm *vm, const char *host_path, bool expose, uint32_t *location,
              char **uvm_path)
{
    struct vpmem_add_args a = {.host_path = host_path, .expose = expose, .number = -1};
    return vm ? UVM_CALL(vm, "add vpmem", vpmem_add(vm, &a, location, uvm_path))
              : vpmem_add(vm, &a, location, uvm_path); /* it says what is wrong */
}

int
uvm_remove_vpmem(struct uvm *vm, const char *host_path)
{
    int rc = res_check_key(vm, "remove vpmem", host_path);
    return rc < 0 ? rc : UVM_CALL(vm, "remove vpmem", vpmem_remove(vm, host_path, -1, NULL));
}

static int
check_remove(struct uvm *vm, const char *name, bool by_number, int number)
{
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "remove vpmem '%s': not supported for Windows "
                         "utility VMs",
                         name);
    if (by_number && (number < 0 || (unsigned)number >= vm->cfg.vpmem_count))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "remove vpmem: device number %d is out of range (%u configured)", number,
                         vm->cfg.vpmem_count);
    return 0;
}

int
vpmem_remove(struct uvm *vm, const char *host_path, int number, const struct guest_part *guest)
{
    char devname[32];
    snprintf(devname, sizeof(devname), "device %d", number);
    const char *name = host_path ? host_path : devname;
    int rc = check_remove(vm, name, !host_path, number);
    if (rc < 0)
        return rc;
    char real[4096];
    const char *key = !host_path ? NULL : realpath(host_path, real) ? real : host_path;
    const unsigned n = (unsigned)number;
    struct res_txn t = RES_TXN(vm, &vpmem_kind, "remove vpmem");
    res_txn_fail(&t, "cannot remove VPMEM %s as it is not attached to utility VM %s: %s is not "
                 "attached to VPMEM", name, vm->cfg.id, name);
    rc = res_remove_enter(&t, key ? NULL : find_number, key ? (const void *)key : &n,
                          UVM_E_NOT_ATTACHED);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    struct vpmem_dev *d = dev(t.r);
    res_txn_fail(&t, "failed to remove VPMEM %s from utility VM %s", name, vm->cfg.id);
    res_begin(&t, t.r, RES_REMOVING);
    /* Always sent by the typed call (as hcsshim), also when the image was not exposed. */
    rc = guest_part(&t, guest, "Remove", d, 0);
    if (rc == 0) {
        t.keep = true; /* the device stays plugged, idle, for this image */
        uvm_log(UVM_LOG_INFO, vm->cfg.id,
                "VPMem device %u: '%s' unmounted; the device stays plugged (QEMU cannot unplug "
                "virtio-pmem) and is kept for this image",
                d->n, name);
    }
    return res_end(&t, rc);
}

/* --- uvm_modify: VirtualMachine/Devices/VirtualPMem/Devices/<n> ----------------------------- */

int
vpmem_modify(struct uvm *vm, struct modify_req *r)
{
    int rc = modreq_check_number(r, 0, UVM_MAX_VPMEM, "device number");
    if (rc < 0)
        return rc;
    if (!r->add)
        return modreq_wrap(r, vpmem_remove(vm, NULL, (int)r->num[0], &r->guest));
    const char *path = NULL, *format = NULL;
    bool ro = true;
    rc = modreq_need_settings(r);
    if (rc == 0)
        rc = modreq_string(r, "HostPath", true, &path);
    if (rc == 0)
        rc = modreq_bool(r, "ReadOnly", &ro);
    if (rc == 0) /* the format is detected from the content (raw or fixed VHD) */
        rc = modreq_string(r, "ImageFormat", false, &format);
    if (rc < 0)
        return rc;
    if (!ro)
        return uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s' %s: Settings.ReadOnly false is not "
                         "supported (VPMem devices are read-only)",
                         r->id, r->path);
    /* Without a GuestRequest the typed VPMemDevice Add is sent anyway, without a mount path:
     * the guest numbers pmem devices by arrival, and this claims the device for its number. */
    struct vpmem_add_args a = {.host_path = path, .number = (int)r->num[0],
                               .uvm_path = modreq_guest_setting(r, "VPMemDevice", "MountPath"),
                               .guest = r->guest.request ? &r->guest : NULL};
    return modreq_wrap(r, vpmem_add(vm, &a, NULL, NULL));
}

const struct res_kind vpmem_kind = {
    .name = "vpmem",
    .serial_adds = true,
    .free = dev_free,
};

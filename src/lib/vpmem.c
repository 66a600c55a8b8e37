/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VPMem devices (hcsshim AddVPMEM / RemoveVPMEM): read-only images mapped into the guest with
 * virtio-pmem, so the guest reads them through the host's page cache (DAX), shared by VMs.
 *
 * Add (new image): open the image once (read-only) and probe it -> take the first free device
 *     number under the VM lock and wait for our turn to plug (one new device at a time: the
 *     guest gives device numbers to pmem devices in the order they arrive) -> unlock -> add-fd
 *     (the image, or its padded copy) -> object-add memory-backend-file (read-only, shared,
 *     mem-path /proc/self/fd/<QEMU's fd>) -> device_add virtio-pmem-pci on its pci-bridge slot
 *     -> guest VPMemDevice Add (waits for the device; mounts it read-only with DAX at /tmp/p<n>
 *     when exposed) -> lock -> attached. A failed plug deletes the object and removes the fd
 *     set; a plugged device keeps its set for the VM's life.
 * Remove (last reference): guest VPMemDevice Remove (unmount) -> parked. QEMU 7.2 cannot unplug
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
#include "proto.h"
#include "qmp.h"
#include "qmpfd.h"
#include "timeutil.h"
#include "uvm-internal.h"

static void
dev_clear(struct vpmem_dev *d)
{
    free(d->host_path);
    free(d->uvm_path);
    memset(d, 0, sizeof(*d));
}

void
vpmem_init(struct uvm *vm)
{
    if (!vm->cfg.windows && vm->cfg.rootfs_type == UVM_ROOTFS_VHD && vm->cfg.vpmem_count)
        vm->vpmem[0].state = VPMEM_BOOT;
}

void
vpmem_release_all(struct uvm *vm)
{
    for (unsigned n = 0; n < UVM_MAX_VPMEM; n++)
        dev_clear(&vm->vpmem[n]);
}

/* Index among the hot-pluggable devices (device 0 of a VHD boot is not one). */
static unsigned
hot_index(const struct uvm *vm, unsigned n)
{
    return vm->cfg.rootfs_type == UVM_ROOTFS_VHD ? n - 1 : n;
}

/* Lock held. Any device that holds host_path, busy or not. */
static struct vpmem_dev *
find(struct uvm *vm, const char *host_path, unsigned *n)
{
    for (unsigned i = 0; i < vm->cfg.vpmem_count; i++) {
        struct vpmem_dev *d = &vm->vpmem[i];
        if (d->host_path && d->state != VPMEM_BROKEN && !strcmp(d->host_path, host_path)) {
            *n = i;
            return d;
        }
    }
    return NULL;
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
drop_fdset(struct uvm *vm, struct qmp *q, unsigned n, int fdset)
{
    if (qmp_remove_fd(q, fdset, deadline_after_ms(UVM_QMP_TIMEOUT_MS)) < 0)
        uvm_log(UVM_LOG_WARNING, vm->cfg.id, "VPMem device %u: fd set %d stays in QEMU: %s", n,
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

/* The host half of a new device: add-fd (map_fd borrowed) -> object-add + device_add, sent back
 * to back (two round trips, as before fds; a device_add after a failed object-add fails too,
 * harmlessly). A failure deletes the object again and removes the fd set; a plugged device
 * keeps its set (QEMU cannot unplug it, and parked devices stay plugged). */
static int
host_plug(struct uvm *vm, struct qmp *q, unsigned n, int map_fd, uint64_t size, bool *dirty)
{
    char mem[32], dev[32], bus[32], addr[16];
    unsigned h = hot_index(vm, n);
    snprintf(mem, sizeof(mem), "vpmem%u-mem", n);
    snprintf(dev, sizeof(dev), "vpmem%u", n);
    snprintf(bus, sizeof(bus), ARGV_VPMEM_BRIDGE_FMT, h / ARGV_VPMEM_PER_BRIDGE);
    snprintf(addr, sizeof(addr), "%x.0", h % ARGV_VPMEM_PER_BRIDGE);
    int fdset = -1, qemu_fd = -1;
    int rc = qmp_add_fd(q, map_fd, &fdset, &qemu_fd, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    if (rc < 0)
        return rc;
    cleanup_json json_t *oargs = object_args(mem, qemu_fd, size);
    cleanup_json json_t *dargs = json_pack("{s:s, s:s, s:s, s:s, s:s}", "driver", "virtio-pmem-pci",
                                           "id", dev, "memdev", mem, "bus", bus, "addr", addr);
    struct qmp_cmd cmds[2] = {{"object-add", oargs, -1, NULL, 0},
                              {"device_add", dargs, -1, NULL, 0}};
    rc = qmp_execute_batch(q, cmds, 2, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    if (rc == 0)
        return 0;
    cleanup_free char *msg = xstrdup(uvm_last_error());
    if (cmds[0].rc == 0) {
        json_t *del = json_pack("{s:s}", "id", mem);
        if (qmp_execute(q, "object-del", del, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS)) < 0) {
            uvm_log(UVM_LOG_WARNING, vm->cfg.id, "VPMem device %u: rollback failed: %s", n,
                    uvm_last_error());
            *dirty = true;
        }
        json_decref(del);
    }
    drop_fdset(vm, q, n, fdset); /* a backend left behind has its own open file */
    return uvm_error(rc, "%s", msg);
}

/* A new device for the image open as fd: its backing file, then the host half. A padded copy
 * QEMU does not hold is removed again on failure. */
static int
plug_new(struct uvm *vm, struct qmp *q, unsigned n, const struct image_info *img, int fd,
         uint64_t *size, bool *dirty)
{
    cleanup_free char *copy = NULL;
    cleanup_close int map_fd = -1;
    int rc = backing_file(vm, n, img, fd, &map_fd, &copy, size);
    if (rc == 0)
        rc = host_plug(vm, q, n, map_fd, *size, dirty);
    if (rc < 0 && !*dirty && copy)
        unlink(copy);
    return rc;
}

static int
guest_request(struct bridge *b, const char *request_type, unsigned n, const char *mount_path,
              uint64_t size)
{
    json_t *settings = json_pack("{s:i, s:s}", "DeviceNumber", (int)n, "MountPath", mount_path);
    if (size)
        json_object_set_new(settings, "BackingSize", json_integer((json_int_t)size));
    json_t *req = json_pack("{s:{s:s, s:s, s:o}}", "Request", "ResourceType", "VPMemDevice",
                            "RequestType", request_type, "Settings", settings);
    return bridge_call(b, PROTO_REQ_MODIFY_SETTINGS, req, NULL,
                       deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

/* Lock held: the first never-used number, or an honest UVM_E_NO_AVAILABLE_LOCATION. */
static struct vpmem_dev *
alloc_dev(struct uvm *vm, const char *host_path, unsigned *n, int *rc)
{
    unsigned parked = 0, broken = 0;
    for (unsigned i = 0; i < vm->cfg.vpmem_count; i++) {
        if (vm->vpmem[i].state == VPMEM_FREE) {
            *n = i;
            return &vm->vpmem[i];
        }
        parked += vm->vpmem[i].state == VPMEM_PARKED;
        broken += vm->vpmem[i].state == VPMEM_BROKEN;
    }
    char why[160] = "";
    if (parked || broken)
        snprintf(why, sizeof(why),
                 "; %u of them kept plugged for removed images (QEMU cannot unplug virtio-pmem; "
                 "re-adding those images reuses them)%s",
                 parked + broken, broken ? ", some after a failed rollback" : "");
    *rc = uvm_error(UVM_E_NO_AVAILABLE_LOCATION,
                    "add vpmem '%s': no free VPMEM locations (%u devices configured%s)", host_path,
                    vm->cfg.vpmem_count, why);
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

/* Lock held: device a->number for a new image, or an error naming why not. */
static struct vpmem_dev *
take_dev(struct uvm *vm, const struct vpmem_add_args *a, unsigned *n, int *rc)
{
    *n = (unsigned)a->number;
    struct vpmem_dev *d = &vm->vpmem[*n];
    if (d->state == VPMEM_FREE)
        return d;
    *rc = uvm_error(UVM_E_ALREADY_ATTACHED, "add vpmem '%s': device %u is %s", a->host_path, *n,
                    d->state == VPMEM_PARKED ? "kept plugged for another image"
                    : d->state == VPMEM_BOOT ? "the root file system"
                                              : "in use");
    return NULL;
}

/* The guest part of an add or remove: VPMemDevice for the typed calls, else the caller's. */
static int
guest_part(struct bridge *b, const struct guest_part *g, const char *request_type, unsigned n,
           const char *mount_path, uint64_t size)
{
    if (!g || !g->custom)
        return guest_request(b, request_type, n, mount_path, size);
    if (!g->request)
        return 0;
    return bridge_modify(b, g->request, deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

/* Lock held, the device reserved (ADDING): commit the add's outcome and wake waiters. */
static int
add_commit(struct uvm *vm, const struct vpmem_add_args *a, struct vpmem_dev *d, unsigned n,
           int rc, bool plug, bool plugged, bool dirty, uint64_t size, uint32_t *location,
           char **uvm_path)
{
    if (plug)
        vm->vpmem_hot_adding = false;
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "add vpmem '%s' (device %u)", a->host_path,
                            n);
        if (plugged || !plug) {
            /* The device is plugged and cannot be unplugged: keep it for this image. */
            d->state = VPMEM_PARKED;
            d->size = size;
        } else if (dirty) {
            d->state = VPMEM_BROKEN; /* QEMU may still hold vpmem<n>-mem: never reuse it */
        } else {
            dev_clear(d);
        }
    } else {
        d->state = VPMEM_ATTACHED;
        d->refs = 1;
        d->size = size;
        set_out(location, uvm_path, n, d->uvm_path);
    }
    pthread_cond_broadcast(&vm->cond);
    return rc;
}

static int do_add_vpmem(struct uvm *vm, const char *host_path, bool expose, uint32_t *location,
                        char **uvm_path);

int
uvm_add_vpmem(struct uvm *vm, const char *host_path, bool expose, uint32_t *location,
              char **uvm_path)
{
    if (!vm)
        return do_add_vpmem(vm, host_path, expose, location, uvm_path); /* it says what is wrong */
    int rc = uvm_call_enter(vm, "add vpmem");
    if (rc == 0) {
        rc = do_add_vpmem(vm, host_path, expose, location, uvm_path);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_add_vpmem(struct uvm *vm, const char *host_path, bool expose, uint32_t *location,
             char **uvm_path)
{
    struct vpmem_add_args a = {.host_path = host_path, .expose = expose, .number = -1};
    return vpmem_add(vm, &a, location, uvm_path);
}

/* Arguments and configuration; then the image, opened once and probed (*fd, *img). */
static int
add_open(struct uvm *vm, const struct vpmem_add_args *a, int *fd, struct image_info *img)
{
    if (!vm || !a->host_path || !*a->host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add vpmem: host path is empty");
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "add vpmem '%s': not supported for Windows utility "
                         "VMs",
                         a->host_path);
    if (a->number >= 0 && (unsigned)a->number >= vm->cfg.vpmem_count)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "add vpmem '%s': device number %d is out of range (%u configured)",
                         a->host_path, a->number, vm->cfg.vpmem_count);
    int rc = image_open(a->host_path, false, fd, img);
    if (rc == 0)
        rc = check_plain(img);
    if (rc < 0) {
        image_info_release(img);
        return uvm_error_wrap(rc, "add vpmem");
    }
    return 0;
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

    cleanup_free char *mount = NULL;
    pthread_mutex_lock(&vm->lock);
    unsigned n = 0;
    struct vpmem_dev *d;
    for (;;) {
        rc = uvm_check_running(vm, "add vpmem");
        if (rc < 0)
            goto out_unlock;
        d = find(vm, img.path, &n);
        bool busy = d ? d->state == VPMEM_ADDING || d->state == VPMEM_REMOVING
                      : vm->vpmem_hot_adding; /* our turn to plug comes after it */
        if (!busy)
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    if (d && a->number >= 0 && n != (unsigned)a->number) {
        rc = uvm_error(UVM_E_ALREADY_ATTACHED, "add vpmem '%s': already mapped as device %u",
                       a->host_path, n);
        goto out_unlock;
    }
    if (d && d->state == VPMEM_ATTACHED) { /* the stored number and path; expose is ignored */
        d->refs++;
        set_out(location, uvm_path, n, d->uvm_path);
        rc = 0;
        goto out_unlock;
    }
    bool plug = !d; /* else parked: the device is still there */
    if (plug) {
        d = a->number < 0 ? alloc_dev(vm, a->host_path, &n, &rc) : take_dev(vm, a, &n, &rc);
        if (!d)
            goto out_unlock;
        d->host_path = xstrdup(img.path);
        vm->vpmem_hot_adding = true;
    }
    d->state = VPMEM_ADDING;
    free(d->uvm_path);
    d->uvm_path = a->number >= 0 ? xstrdup(a->uvm_path ? a->uvm_path : "")
                  : a->expose    ? xasprintf("/tmp/p%u", n)
                                 : xstrdup("");
    mount = xstrdup(d->uvm_path);
    uint64_t size = d->size;
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);

    bool dirty = false, plugged = false;
    if (plug) {
        rc = plug_new(vm, q, n, &img, fd, &size, &dirty);
        plugged = rc == 0;
    }
    if (rc == 0)
        rc = guest_part(b, a->guest, "Add", n, mount, size);
    if (rc < 0 && (plugged || !plug)) /* before locking: no log handler under the VM lock */
        uvm_log(UVM_LOG_WARNING, vm->cfg.id,
                "VPMem device %u stays plugged for '%s' after a failed add", n, img.path);

    pthread_mutex_lock(&vm->lock);
    rc = add_commit(vm, a, d, n, rc, plug, plugged, dirty, size, location, uvm_path);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    image_info_release(&img);
    return rc;
}

static int do_remove_vpmem(struct uvm *vm, const char *host_path);

int
uvm_remove_vpmem(struct uvm *vm, const char *host_path)
{
    if (!vm)
        return do_remove_vpmem(vm, host_path); /* it says what is wrong */
    int rc = uvm_call_enter(vm, "remove vpmem");
    if (rc == 0) {
        rc = do_remove_vpmem(vm, host_path);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_remove_vpmem(struct uvm *vm, const char *host_path)
{
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove vpmem: host path is empty");
    return vpmem_remove(vm, host_path, -1, NULL);
}

/* Lock held: the device of host_path (key), or device `number` when it holds an image. */
static struct vpmem_dev *
lookup(struct uvm *vm, const char *key, int number, unsigned *n)
{
    if (key)
        return find(vm, key, n);
    *n = (unsigned)number;
    struct vpmem_dev *d = &vm->vpmem[*n];
    return d->host_path && d->state != VPMEM_BROKEN ? d : NULL;
}

int
vpmem_remove(struct uvm *vm, const char *host_path, int number, const struct guest_part *guest)
{
    char dev[32];
    snprintf(dev, sizeof(dev), "device %d", number);
    const char *name = host_path ? host_path : dev;
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "remove vpmem '%s': not supported for Windows "
                         "utility VMs",
                         name);
    if (!host_path && (number < 0 || (unsigned)number >= vm->cfg.vpmem_count))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "remove vpmem: device number %d is out of range (%u configured)", number,
                         vm->cfg.vpmem_count);
    char real[4096];
    const char *key = !host_path ? NULL : realpath(host_path, real) ? real : host_path;
    cleanup_free char *mount = NULL;

    pthread_mutex_lock(&vm->lock);
    unsigned n = 0;
    struct vpmem_dev *d;
    int rc;
    for (;;) {
        rc = uvm_check_running(vm, "remove vpmem");
        if (rc < 0)
            goto out_unlock;
        d = lookup(vm, key, number, &n);
        if (!d || (d->state != VPMEM_ADDING && d->state != VPMEM_REMOVING))
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    if (!d || d->state != VPMEM_ATTACHED) {
        rc = uvm_error(UVM_E_NOT_ATTACHED,
                       "cannot remove VPMEM %s as it is not attached to utility VM %s: %s is not "
                       "attached to VPMEM",
                       name, vm->cfg.id, name);
        goto out_unlock;
    }
    if (d->refs > 1) {
        d->refs--;
        rc = 0;
        goto out_unlock;
    }
    d->state = VPMEM_REMOVING;
    mount = xstrdup(d->uvm_path);
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);

    /* Always sent by the typed call (as hcsshim), also when the image was not exposed. */
    rc = guest_part(b, guest, "Remove", n, mount, 0);
    if (rc == 0) /* before locking: no log handler under the VM lock */
        uvm_log(UVM_LOG_INFO, vm->cfg.id,
                "VPMem device %u: '%s' unmounted; the device stays plugged (QEMU cannot unplug "
                "virtio-pmem) and is kept for this image",
                n, name);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc),
                            "failed to remove VPMEM %s from utility VM %s", name, vm->cfg.id);
        d->state = VPMEM_ATTACHED; /* bookkeeping stays true: a retry works */
    } else {
        d->state = VPMEM_PARKED;
        d->refs = 0;
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

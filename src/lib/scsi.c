/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SCSI disks and layers (hcsshim AddSCSI / AddSCSILayer / RemoveSCSI), a resource kind (res.h).
 *
 * Add:    open the image once (read-only for layers) and probe it -> reserve a (controller,
 *         LUN) slot -> add-fd (QEMU gets the open file, never the path) -> blockdev-add on
 *         /dev/fdset/<id> + device_add scsi-hd (qmpc_plug) -> guest MappedVirtualDisk Add (find
 *         by SCSI address, mount if a path was given) -> ready. Any failure undoes the steps
 *         already done, in reverse (remove-fd last).
 * Remove: guest Remove (unmount, delete the SCSI device: the guest-initiated eject of hcsshim
 *         PR #551) -> device_del + DEVICE_DELETED -> blockdev-del -> remove-fd. A failure
 *         before blockdev-del is done keeps the disk attached so a retry works.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "image.h"
#include "modreq.h"
#include "qmp.h"
#include "qmpcmd.h"
#include "res.h"
#include "scsi.h"

struct scsi_disk {
    struct res res;
    unsigned c, l;   /* key: the canonical host path */
    char *uvm_path;  /* guest mount point, NULL when attach-only */
    bool layer;      /* read-only layer: ref-counted */
    int fdset;       /* QEMU fd set holding the image: set once plugged */
};

#define disk(r) ((struct scsi_disk *)(r)) /* its struct res is first */

static void
disk_free(struct res *r)
{
    free(disk(r)->uvm_path);
}

/* Lock held: the record at a slot ({c, l}), broken ones included when `any`. */
static struct res *
at_slot(struct uvm *vm, const unsigned *slot, bool any)
{
    struct res *r;
    RES_FOREACH(r, vm, &scsi_kind)
        if ((any || r->state != RES_BROKEN) && disk(r)->c == slot[0] && disk(r)->l == slot[1])
            return r;
    return NULL;
}

static struct res *
find_slot(const struct res_txn *t, const void *slot)
{
    return at_slot(t->vm, slot, false);
}

/* Rollback and remove: drop the image's fd set. Once the block node is gone (or was never
 * made) a failure only leaves one fd in QEMU until the VM ends, so it is logged, not returned:
 * the disk itself is gone either way. */
static void
drop_fdset(struct res_txn *t, const struct scsi_disk *d, int fdset)
{
    if (qmpc_remove_fd(t->qmp, fdset) < 0)
        uvm_log(UVM_LOG_WARNING, t->vm->cfg.id, "scsi %u:%u: fd set %d stays in QEMU: %s", d->c,
                d->l, fdset, uvm_last_error());
}

static json_t *
blockdev_args(const char *node, const struct image_info *img, int fdset, bool read_only)
{
    char filename[32];
    snprintf(filename, sizeof(filename), "/dev/fdset/%d", fdset);
    json_t *bargs = json_pack("{s:s, s:s, s:b, s:{s:s, s:s, s:b}}", "driver", img->driver,
                              "node-name", node, "read-only", read_only, "file", "driver", "file",
                              "filename", filename, "read-only", read_only);
    if (!strcmp(img->driver, "qcow2")) /* never follow a backing file named in the image */
        json_object_set_new(bargs, "backing", json_null());
    return bargs;
}

/* The host half of an add: add-fd (the image's open file, fd borrowed), then the block node
 * and the device; what was made is undone on failure. d->fdset is set on success. */
static int
host_attach(struct res_txn *t, struct scsi_disk *d, const struct image_info *img, int fd,
            bool read_only)
{
    char node[32], bus[32];
    topo_scsi_names(d->c, d->l, node, bus);
    int set = -1;
    int rc = qmpc_add_fd(t->qmp, fd, &set, NULL);
    if (rc < 0)
        return rc;
    cleanup_json json_t *bargs = blockdev_args(node, img, set, read_only);
    cleanup_json json_t *dargs =
        json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:s}", "driver", "scsi-hd", "id", node, "bus",
                  bus, "channel", 0, "scsi-id", 0, "lun", (int)d->l, "drive", node);
    const struct qmpc_backend be = QMPC_BLOCKDEV(bargs, node);
    rc = qmpc_plug(t->qmp, &be, dargs, &t->dirty, NULL);
    if (rc == 0) {
        d->fdset = set;
        return 0;
    }
    struct uvm_error_state st;
    uvm_error_capture(&st);
    drop_fdset(t, d, set); /* also when the node stays: its own dup keeps the file */
    return uvm_error_restore(&st, rc);
}

/* The host half of a remove: device_del, wait for DEVICE_DELETED, blockdev-del, remove-fd. */
static int
host_detach(struct res_txn *t, const struct scsi_disk *d)
{
    char node[32], bus[32];
    topo_scsi_names(d->c, d->l, node, bus);
    const struct qmpc_backend be = QMPC_BLOCKDEV(NULL, node);
    int rc = qmpc_unplug(t->qmp, node, &be);
    if (rc == 0)
        drop_fdset(t, d, d->fdset);
    return rc;
}

/* The guest part: MappedVirtualDisk for the typed calls, else the caller's. */
static int
guest_part(struct res_txn *t, const struct guest_part *g, const char *type,
           const struct scsi_disk *d, bool read_only)
{
    json_t *settings =
        json_pack("{s:s, s:i, s:i, s:b}", "MountPath", d->uvm_path ? d->uvm_path : "", "Lun",
                  (int)d->l, "Controller", (int)d->c, "ReadOnly", read_only);
    return bridge_guest_part(t->bridge, g,
                             bridge_guest_request("MappedVirtualDisk", type, settings));
}

/* Lock held: a new record at the slot the add asked for, or at the first free one. */
static struct scsi_disk *
reserve(struct uvm *vm, const struct scsi_add_args *a, const char *key, const char *what,
        int *rc)
{
    unsigned slot[2] = {(unsigned)a->controller, (unsigned)a->lun};
    struct res *r = NULL;
    if (a->controller < 0) {
        for (slot[0] = 0; slot[0] < vm->cfg.scsi_count; slot[0]++)
            for (slot[1] = 0; slot[1] < UVM_SCSI_LUNS; slot[1]++)
                if (!at_slot(vm, slot, true))
                    goto found;
        *rc = uvm_error(UVM_E_TOO_MANY_ATTACHMENTS,
                        "%s '%s': all %u LUNs of %u controller(s) are in use", what, a->host_path,
                        vm->cfg.scsi_count * UVM_SCSI_LUNS, vm->cfg.scsi_count);
        return NULL;
    }
    if ((r = at_slot(vm, slot, true))) {
        *rc = uvm_error(UVM_E_ALREADY_ATTACHED, "%s '%s': SCSI slot %u:%u is %s", what,
                        a->host_path, slot[0], slot[1],
                        r->state == RES_BROKEN ? "unusable after a failed rollback" : "in use");
        return NULL;
    }
found:;
    struct scsi_disk *d = res_new(&scsi_kind, sizeof(*d), key);
    d->c = slot[0];
    d->l = slot[1];
    d->layer = a->layer;
    if (a->layer && a->controller < 0)
        d->uvm_path = xasprintf("/tmp/S%u/%u", d->c, d->l);
    else if (a->uvm_path && *a->uvm_path)
        d->uvm_path = xstrdup(a->uvm_path);
    return d;
}

/* The arguments against the configuration (immutable). */
static int
check_args(struct uvm *vm, const struct scsi_add_args *a, const char *what)
{
    if (vm->cfg.windows && a->layer)
        return uvm_error(UVM_E_SCSI_LAYER_WCOW_UNSUPPORTED, "%s '%s': %s", what, a->host_path,
                         uvm_strerror(UVM_E_SCSI_LAYER_WCOW_UNSUPPORTED));
    if (vm->cfg.scsi_count == 0)
        return uvm_error(UVM_E_NO_SCSI_CONTROLLERS, "%s '%s': %s", what, a->host_path,
                         uvm_strerror(UVM_E_NO_SCSI_CONTROLLERS));
    if (a->controller >= 0 && (unsigned)a->controller >= vm->cfg.scsi_count)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "%s '%s': controller %d is out of range (%u configured)", what,
                         a->host_path, a->controller, vm->cfg.scsi_count);
    if (a->controller >= 0 && (a->lun < 0 || a->lun >= UVM_SCSI_LUNS))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s '%s': LUN %d is out of range (0..%d)", what,
                         a->host_path, a->lun, UVM_SCSI_LUNS - 1);
    const char *up = a->uvm_path;
    json_t *j = up ? json_string(up) : NULL;
    bool utf8 = j != NULL;
    json_decref(j);
    if (up && *up && (up[0] != '/' || !utf8))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s '%s': guest path '%s' is not absolute", what,
                         a->host_path, up);
    return 0;
}

/* The host half then the guest half; the host half is undone when the guest fails. Also for
 * attach-only disks (empty mount path): the guest answers once it sees the disk, so the call
 * returns with the disk usable. */
static int
attach(struct res_txn *t, struct scsi_disk *d, const struct scsi_add_args *a,
       const struct image_info *img, int fd)
{
    int rc = host_attach(t, d, img, fd, a->read_only);
    if (rc < 0)
        return rc;
    rc = guest_part(t, a->guest, "Add", d, a->read_only);
    if (rc < 0) {
        struct uvm_error_state st;
        uvm_error_capture(&st);
        if (host_detach(t, d) < 0) {
            uvm_log(UVM_LOG_WARNING, t->vm->cfg.id, "scsi %u:%u: rollback failed: %s", d->c,
                    d->l, uvm_last_error());
            t->dirty = true;
        }
        uvm_error_restore(&st, rc);
    }
    return rc;
}

/* Lock held: another add of an attached image: a layer at the same place takes a reference. */
static int
add_again(struct res *r, const struct scsi_add_args *a, const char *what)
{
    struct scsi_disk *d = disk(r);
    bool same = a->controller < 0 || (d->c == (unsigned)a->controller && d->l == (unsigned)a->lun);
    if (!(a->layer && d->layer && same))
        return uvm_error(UVM_E_ALREADY_ATTACHED, "%s '%s': already attached at %u:%u", what,
                         a->host_path, d->c, d->l);
    r->refs++;
    return 0;
}

static void
set_out(int *controller, int32_t *lun, int c, int32_t l)
{
    if (controller)
        *controller = c;
    if (lun)
        *lun = l;
}

/* The add once the image is open: the state machine around attach(). */
static int
add_image(struct uvm *vm, const struct scsi_add_args *a, const struct image_info *img, int fd,
          int *controller, int32_t *lun)
{
    const char *what = a->layer ? "add scsi layer" : "add scsi";
    struct res_txn t = RES_TXN(vm, &scsi_kind, what);
    int rc = res_enter(&t, NULL, img->path);
    if (rc < 0)
        return rc;
    struct scsi_disk *d = t.r ? disk(t.r) : reserve(vm, a, img->path, what, &rc);
    if (t.r && (rc = add_again(t.r, a, what)) == 0)
        set_out(controller, lun, (int)d->c, (int32_t)d->l);
    if (t.r || !d)
        return res_leave(&t, rc);
    unsigned c = d->c, l = d->l;
    res_txn_fail(&t, "%s '%s' at %u:%u", what, a->host_path, c, l);
    res_begin(&t, &d->res, RES_ADDING);
    rc = res_end(&t, attach(&t, d, a, img, fd));
    if (rc == 0)
        set_out(controller, lun, (int)c, (int32_t)l);
    return rc;
}

int
scsi_add(struct uvm *vm, const struct scsi_add_args *a, int *controller, int32_t *lun)
{
    set_out(controller, lun, -1, -1);
    if (!vm || !a->host_path || !*a->host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add scsi: host path is empty");
    const char *what = a->layer ? "add scsi layer" : "add scsi";
    int rc = check_args(vm, a, what);
    if (rc < 0)
        return rc;
    struct image_info img;
    cleanup_close int fd = -1; /* the image, opened once: QEMU gets this file, not the path */
    rc = image_open(a->host_path, !a->read_only, &fd, &img);
    if (rc < 0)
        return uvm_error_wrap(rc, "%s", what);
    rc = add_image(vm, a, &img, fd, controller, lun);
    image_info_release(&img);
    return rc;
}

int
uvm_add_scsi(struct uvm *vm, const char *host_path, const char *uvm_path, int *controller,
             int32_t *lun)
{
    struct scsi_add_args a = {.host_path = host_path, .uvm_path = uvm_path, .controller = -1,
                              .lun = -1};
    return vm ? UVM_CALL(vm, "add scsi", scsi_add(vm, &a, controller, lun))
              : scsi_add(vm, &a, controller, lun); /* it says what is wrong */
}

int
uvm_add_scsi_layer(struct uvm *vm, const char *host_path, int *controller, int32_t *lun)
{
    struct scsi_add_args a = {.host_path = host_path, .layer = true, .read_only = true,
                              .controller = -1, .lun = -1};
    return vm ? UVM_CALL(vm, "add scsi layer", scsi_add(vm, &a, controller, lun))
              : scsi_add(vm, &a, controller, lun); /* it says what is wrong */
}

int
uvm_remove_scsi(struct uvm *vm, const char *host_path)
{
    int rc = res_check_key(vm, "remove scsi", host_path);
    return rc < 0 ? rc : UVM_CALL(vm, "remove scsi", scsi_remove(vm, host_path, -1, -1, NULL));
}

/* A remove's arguments against the configuration. */
static int
check_remove(struct uvm *vm, const char *name, bool by_slot, int controller, int lun)
{
    if (vm->cfg.scsi_count == 0)
        return uvm_error(UVM_E_NO_SCSI_CONTROLLERS, "remove scsi '%s': %s", name,
                         uvm_strerror(UVM_E_NO_SCSI_CONTROLLERS));
    if (by_slot && (controller < 0 || (unsigned)controller >= vm->cfg.scsi_count))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "remove scsi: controller %d is out of range (%u configured)", controller,
                         vm->cfg.scsi_count);
    if (by_slot && (lun < 0 || lun >= UVM_SCSI_LUNS))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove scsi: LUN %d is out of range (0..%d)",
                         lun, UVM_SCSI_LUNS - 1);
    return 0;
}

int
scsi_remove(struct uvm *vm, const char *host_path, int controller, int lun,
            const struct guest_part *guest)
{
    char where[64];
    snprintf(where, sizeof(where), "SCSI slot %d:%d", controller, lun);
    const char *name = host_path ? host_path : where;
    int rc = check_remove(vm, name, !host_path, controller, lun);
    if (rc < 0)
        return rc;
    char real[4096];
    const char *key = !host_path ? NULL : realpath(host_path, real) ? real : host_path;
    const unsigned slot[2] = {(unsigned)controller, (unsigned)lun};
    struct res_txn t = RES_TXN(vm, &scsi_kind, "remove scsi");
    res_txn_fail(&t, "remove scsi '%s': not attached", name);
    rc = res_remove_enter(&t, key ? NULL : find_slot, key ? (const void *)key : slot,
                          UVM_E_NOT_ATTACHED);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    struct scsi_disk *d = disk(t.r);
    res_txn_fail(&t, "remove scsi '%s' at %u:%u (still attached)", name, d->c, d->l);
    res_begin(&t, t.r, RES_REMOVING);
    /* The guest lets go first (unmount, delete the device), then the host unplugs. */
    rc = guest_part(&t, guest, "Remove", d, d->layer);
    if (rc == 0)
        rc = host_detach(&t, d);
    return res_end(&t, rc);
}

/* --- uvm_modify: VirtualMachine/Devices/Scsi/<c>/Attachments/<l> ---------------------------- */

int
scsi_modify(struct uvm *vm, struct modify_req *r)
{
    int rc = modreq_check_number(r, 0, UVM_MAX_SCSI_CONTROLLERS, "controller");
    if (rc == 0)
        rc = modreq_check_number(r, 1, UVM_SCSI_LUNS, "LUN");
    if (rc < 0)
        return rc;
    if (!r->add)
        return modreq_wrap(r, scsi_remove(vm, NULL, (int)r->num[0], (int)r->num[1], &r->guest));
    const char *path = NULL, *type = "VirtualDisk";
    bool ro = false;
    rc = modreq_need_settings(r);
    if (rc == 0)
        rc = modreq_string(r, "Path", true, &path);
    if (rc == 0)
        rc = modreq_string(r, "Type", false, &type);
    if (rc == 0)
        rc = modreq_bool(r, "ReadOnly", &ro);
    if (rc < 0)
        return rc;
    if (strcmp(type, "VirtualDisk"))
        return uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s' %s: Settings.Type '%s' is not "
                         "supported (only VirtualDisk)",
                         r->id, r->path, type);
    /* A read-only attachment is a layer: shared by reference with uvm_add_scsi_layer. */
    struct scsi_add_args a = {.host_path = path, .layer = ro, .read_only = ro,
                              .controller = (int)r->num[0], .lun = (int)r->num[1],
                              .uvm_path = modreq_guest_setting(r, "MappedVirtualDisk", "MountPath"),
                              .guest = &r->guest};
    return modreq_wrap(r, scsi_add(vm, &a, NULL, NULL));
}

const struct res_kind scsi_kind = {
    .name = "scsi",
    .free = disk_free,
};

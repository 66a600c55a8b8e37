/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SCSI disks and layers (hcsshim AddSCSI / AddSCSILayer / RemoveSCSI).
 *
 * Add:    open the image once (read-only for layers) and probe it -> reserve a (controller,
 *         LUN) slot under the VM lock -> unlock -> add-fd (QEMU gets the open file, never the
 *         path) -> blockdev-add on /dev/fdset/<id> -> device_add scsi-hd -> guest
 *         MappedVirtualDisk Add (find by SCSI address, mount if a path was given) -> lock ->
 *         attached. Any failure undoes the steps already done, in reverse (remove-fd last).
 * Remove: mark removing -> unlock -> guest Remove (unmount, delete the SCSI device: the
 *         guest-initiated eject of hcsshim PR #551) -> device_del + DEVICE_DELETED ->
 *         blockdev-del -> remove-fd -> lock -> free. A failure before blockdev-del is done
 *         keeps the slot attached so a retry works.
 * A slot being added or removed is busy: a second caller for the same path waits for it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "image.h"
#include "proto.h"
#include "qmp.h"
#include "qmpfd.h"
#include "scsi.h"
#include "timeutil.h"
#include "uvm-internal.h"

#define DEVICE_DELETED_TIMEOUT_MS 10000u

static void
slot_clear(struct scsi_slot *s)
{
    free(s->host_path);
    free(s->uvm_path);
    memset(s, 0, sizeof(*s));
}

void
scsi_release_all(struct uvm *vm)
{
    for (unsigned c = 0; c < UVM_MAX_SCSI_CONTROLLERS; c++)
        for (unsigned l = 0; l < UVM_SCSI_LUNS; l++)
            slot_clear(&vm->scsi[c][l]);
}

/* Lock held. */
static struct scsi_slot *
find(struct uvm *vm, const char *host_path, unsigned *c, unsigned *l)
{
    for (unsigned i = 0; i < vm->cfg.scsi_count; i++)
        for (unsigned j = 0; j < UVM_SCSI_LUNS; j++)
            if (vm->scsi[i][j].state != SLOT_FREE && vm->scsi[i][j].state != SLOT_BROKEN &&
                !strcmp(vm->scsi[i][j].host_path, host_path)) {
                *c = i;
                *l = j;
                return &vm->scsi[i][j];
            }
    return NULL;
}

/* Lock held: the first free (controller, LUN). */
static struct scsi_slot *
alloc_slot(struct uvm *vm, unsigned *c, unsigned *l)
{
    for (unsigned i = 0; i < vm->cfg.scsi_count; i++)
        for (unsigned j = 0; j < UVM_SCSI_LUNS; j++)
            if (vm->scsi[i][j].state == SLOT_FREE) {
                *c = i;
                *l = j;
                return &vm->scsi[i][j];
            }
    return NULL;
}

void
scsi_node_name(unsigned c, unsigned l, char out[32])
{
    snprintf(out, 32, "scsi%u-%u", c, l);
}

/* Rollback and remove: drop the image's fd set. Once the block node is gone (or was never
 * made) a failure only leaves one fd in QEMU until the VM ends, so it is logged, not returned:
 * the disk itself is gone either way. */
static void
drop_fdset(struct uvm *vm, struct qmp *q, unsigned c, unsigned l, int fdset)
{
    if (qmp_remove_fd(q, fdset, deadline_after_ms(UVM_QMP_TIMEOUT_MS)) < 0)
        uvm_log(UVM_LOG_WARNING, vm->cfg.id, "scsi %u:%u: fd set %d stays in QEMU: %s", c, l,
                fdset, uvm_last_error());
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

/* The host half of an add: add-fd (the image's open file, fd borrowed) -> blockdev-add on
 * /dev/fdset/<id> + device_add, sent back to back (two round trips, as before fds: a device_add
 * after a failed blockdev-add fails too, harmlessly); what was made is undone on failure.
 * *fdset gets the set on success. */
static int
host_attach(struct uvm *vm, struct qmp *q, unsigned c, unsigned l, const struct image_info *img,
            int fd, bool read_only, int *fdset, bool *dirty)
{
    char node[32], bus[32];
    scsi_node_name(c, l, node);
    snprintf(bus, sizeof(bus), "scsi%u.0", c);
    int set = -1;
    int rc = qmp_add_fd(q, fd, &set, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    if (rc < 0)
        return rc;
    cleanup_json json_t *bargs = blockdev_args(node, img, set, read_only);
    cleanup_json json_t *dargs =
        json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:s}", "driver", "scsi-hd", "id", node, "bus",
                  bus, "channel", 0, "scsi-id", 0, "lun", (int)l, "drive", node);
    struct qmp_cmd cmds[2] = {{"blockdev-add", bargs, -1, NULL, 0},
                              {"device_add", dargs, -1, NULL, 0}};
    rc = qmp_execute_batch(q, cmds, 2, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    if (rc == 0) {
        *fdset = set;
        return 0;
    }
    cleanup_free char *msg = xstrdup(uvm_last_error());
    if (cmds[0].rc == 0) {
        json_t *del = json_pack("{s:s}", "node-name", node);
        if (qmp_execute(q, "blockdev-del", del, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS)) < 0) {
            uvm_log(UVM_LOG_WARNING, vm->cfg.id, "scsi %u:%u: rollback failed: %s", c, l,
                    uvm_last_error());
            *dirty = true;
        }
        json_decref(del);
    }
    drop_fdset(vm, q, c, l, set); /* also when the node stays: its own dup keeps the file */
    return uvm_error(rc, "%s", msg);
}

/* The host half of a remove: device_del, wait for DEVICE_DELETED, blockdev-del, remove-fd. */
static int
host_detach(struct uvm *vm, struct qmp *q, unsigned c, unsigned l, int fdset)
{
    char node[32];
    scsi_node_name(c, l, node);
    json_t *args = json_pack("{s:s}", "id", node);
    int rc = qmp_execute(q, "device_del", args, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(args);
    if (rc < 0)
        return rc;
    json_t *match = json_pack("{s:s}", "device", node);
    rc = qmp_wait_event(q, "DEVICE_DELETED", match, NULL,
                        deadline_after_ms(DEVICE_DELETED_TIMEOUT_MS));
    json_decref(match);
    if (rc < 0)
        return rc;
    args = json_pack("{s:s}", "node-name", node);
    rc = qmp_execute(q, "blockdev-del", args, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(args);
    if (rc == 0)
        drop_fdset(vm, q, c, l, fdset);
    return rc;
}

static int
guest_request(struct bridge *b, const char *request_type, const char *mount_path, unsigned c,
              unsigned l, bool read_only)
{
    json_t *settings = json_pack("{s:s, s:i, s:i, s:b}", "MountPath", mount_path ? mount_path : "",
                                 "Lun", (int)l, "Controller", (int)c, "ReadOnly", read_only);
    json_t *req = json_pack("{s:{s:s, s:s, s:o}}", "Request", "ResourceType", "MappedVirtualDisk",
                            "RequestType", request_type, "Settings", settings);
    return bridge_call(b, PROTO_REQ_MODIFY_SETTINGS, req, NULL,
                       deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

static void
set_out(int *controller, int32_t *lun, int c, int32_t l)
{
    if (controller)
        *controller = c;
    if (lun)
        *lun = l;
}

/* The guest part of an add or remove: MappedVirtualDisk for the typed calls, else the caller's. */
static int
guest_part(struct bridge *b, const struct guest_part *g, const char *request_type,
           const char *mount, unsigned c, unsigned l, bool read_only)
{
    if (!g || !g->custom)
        return guest_request(b, request_type, mount, c, l, read_only);
    if (!g->request)
        return 0;
    return bridge_modify(b, g->request, deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

/* Lock held: the slot the add asked for, or the first free one. */
static struct scsi_slot *
reserve(struct uvm *vm, const struct scsi_add_args *a, const char *what, unsigned *c,
        unsigned *l, int *rc)
{
    if (a->controller < 0) {
        struct scsi_slot *s = alloc_slot(vm, c, l);
        if (!s)
            *rc = uvm_error(UVM_E_TOO_MANY_ATTACHMENTS,
                            "%s '%s': all %u LUNs of %u controller(s) are in use", what,
                            a->host_path, vm->cfg.scsi_count * UVM_SCSI_LUNS, vm->cfg.scsi_count);
        return s;
    }
    *c = (unsigned)a->controller;
    *l = (unsigned)a->lun;
    struct scsi_slot *s = &vm->scsi[*c][*l];
    if (s->state == SLOT_FREE)
        return s;
    *rc = uvm_error(UVM_E_ALREADY_ATTACHED, "%s '%s': SCSI slot %u:%u is %s", what, a->host_path,
                    *c, *l, s->state == SLOT_BROKEN ? "unusable after a failed rollback" : "in use");
    return NULL;
}

/* Lock held: the arguments against the configuration. */
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

/* The host half then the guest half; the host half is undone when the guest fails. */
static int
attach(struct uvm *vm, const struct scsi_add_args *a, unsigned c, unsigned l,
       const struct image_info *img, int fd, const char *mount, int *fdset, bool *dirty)
{
    struct qmp *q = vm->qmp;     /* immutable while running */
    struct bridge *b = vm->bridge;
    int rc = host_attach(vm, q, c, l, img, fd, a->read_only, fdset, dirty);
    if (rc < 0)
        return rc;
    /* Also for attach-only disks (empty mount path): the guest answers once it sees the disk,
     * so the call returns with the disk usable. */
    rc = guest_part(b, a->guest, "Add", mount, c, l, a->read_only);
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        if (host_detach(vm, q, c, l, *fdset) < 0) {
            uvm_log(UVM_LOG_WARNING, vm->cfg.id, "scsi %u:%u: rollback failed: %s", c, l,
                    uvm_last_error());
            *dirty = true;
        }
        uvm_error(rc, "%s", msg);
    }
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
    cleanup_free char *mount = NULL;
    struct image_info img;
    cleanup_close int fd = -1; /* the image, opened once: QEMU gets this file, not the path */
    rc = image_open(a->host_path, !a->read_only, &fd, &img);
    if (rc < 0)
        return uvm_error_wrap(rc, "%s", what);

    pthread_mutex_lock(&vm->lock);
    unsigned c = 0, l = 0;
    struct scsi_slot *s;
    for (;;) {
        rc = uvm_check_running(vm, what);
        if (rc < 0)
            goto out_unlock;
        s = find(vm, img.path, &c, &l);
        if (!s || (s->state != SLOT_ADDING && s->state != SLOT_REMOVING))
            break;
        pthread_cond_wait(&vm->cond, &vm->lock); /* someone else is adding or removing it */
    }
    if (s) {
        bool same = a->controller < 0 || (c == (unsigned)a->controller && l == (unsigned)a->lun);
        if (a->layer && s->layer && same) {
            s->refs++;
            set_out(controller, lun, (int)c, (int32_t)l);
            rc = 0;
        } else {
            rc = uvm_error(UVM_E_ALREADY_ATTACHED, "%s '%s': already attached at %u:%u", what,
                           a->host_path, c, l);
        }
        goto out_unlock;
    }
    s = reserve(vm, a, what, &c, &l, &rc);
    if (!s)
        goto out_unlock;
    s->state = SLOT_ADDING;
    s->host_path = xstrdup(img.path);
    s->layer = a->layer;
    if (a->layer && a->controller < 0)
        s->uvm_path = xasprintf("/tmp/S%u/%u", c, l);
    else if (a->uvm_path && *a->uvm_path)
        s->uvm_path = xstrdup(a->uvm_path);
    mount = s->uvm_path ? xstrdup(s->uvm_path) : NULL;
    pthread_mutex_unlock(&vm->lock);

    bool dirty = false;
    int fdset = -1;
    rc = attach(vm, a, c, l, &img, fd, mount, &fdset, &dirty);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "%s '%s' at %u:%u", what, a->host_path, c,
                            l);
        slot_clear(s);
        if (dirty)
            s->state = SLOT_BROKEN; /* QEMU may still hold scsi<c>-<l>: never reuse it */
    } else {
        s->state = SLOT_ATTACHED;
        s->refs = 1;
        s->fdset = fdset;
        set_out(controller, lun, (int)c, (int32_t)l);
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    image_info_release(&img);
    return rc;
}

static int do_add_scsi(struct uvm *vm, const char *host_path, const char *uvm_path,
                       int *controller, int32_t *lun);

int
uvm_add_scsi(struct uvm *vm, const char *host_path, const char *uvm_path, int *controller,
             int32_t *lun)
{
    if (!vm)
        return do_add_scsi(vm, host_path, uvm_path, controller, lun); /* it says what is wrong */
    int rc = uvm_call_enter(vm, "add scsi");
    if (rc == 0) {
        rc = do_add_scsi(vm, host_path, uvm_path, controller, lun);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_add_scsi(struct uvm *vm, const char *host_path, const char *uvm_path, int *controller,
            int32_t *lun)
{
    struct scsi_add_args a = {.host_path = host_path, .uvm_path = uvm_path, .controller = -1,
                              .lun = -1};
    return scsi_add(vm, &a, controller, lun);
}

static int do_add_scsi_layer(struct uvm *vm, const char *host_path, int *controller, int32_t *lun);

int
uvm_add_scsi_layer(struct uvm *vm, const char *host_path, int *controller, int32_t *lun)
{
    if (!vm)
        return do_add_scsi_layer(vm, host_path, controller, lun); /* it says what is wrong */
    int rc = uvm_call_enter(vm, "add scsi layer");
    if (rc == 0) {
        rc = do_add_scsi_layer(vm, host_path, controller, lun);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_add_scsi_layer(struct uvm *vm, const char *host_path, int *controller, int32_t *lun)
{
    struct scsi_add_args a = {.host_path = host_path, .layer = true, .read_only = true,
                              .controller = -1, .lun = -1};
    return scsi_add(vm, &a, controller, lun);
}

static int do_remove_scsi(struct uvm *vm, const char *host_path);

int
uvm_remove_scsi(struct uvm *vm, const char *host_path)
{
    if (!vm)
        return do_remove_scsi(vm, host_path); /* it says what is wrong */
    int rc = uvm_call_enter(vm, "remove scsi");
    if (rc == 0) {
        rc = do_remove_scsi(vm, host_path);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_remove_scsi(struct uvm *vm, const char *host_path)
{
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove scsi: host path is empty");
    return scsi_remove(vm, host_path, -1, -1, NULL);
}

/* Lock held: the attached or busy slot of host_path (key), or the one at (controller, lun). */
static struct scsi_slot *
lookup(struct uvm *vm, const char *key, int controller, int lun, unsigned *c, unsigned *l)
{
    if (key)
        return find(vm, key, c, l);
    *c = (unsigned)controller;
    *l = (unsigned)lun;
    struct scsi_slot *s = &vm->scsi[*c][*l];
    return s->state == SLOT_FREE || s->state == SLOT_BROKEN ? NULL : s;
}

int
scsi_remove(struct uvm *vm, const char *host_path, int controller, int lun,
            const struct guest_part *guest)
{
    char where[64];
    snprintf(where, sizeof(where), "SCSI slot %d:%d", controller, lun);
    const char *name = host_path ? host_path : where;
    if (vm->cfg.scsi_count == 0)
        return uvm_error(UVM_E_NO_SCSI_CONTROLLERS, "remove scsi '%s': %s", name,
                         uvm_strerror(UVM_E_NO_SCSI_CONTROLLERS));
    if (!host_path && (controller < 0 || (unsigned)controller >= vm->cfg.scsi_count))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "remove scsi: controller %d is out of range (%u configured)", controller,
                         vm->cfg.scsi_count);
    if (!host_path && (lun < 0 || lun >= UVM_SCSI_LUNS))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove scsi: LUN %d is out of range (0..%d)",
                         lun, UVM_SCSI_LUNS - 1);
    char real[4096];
    const char *key = !host_path ? NULL : realpath(host_path, real) ? real : host_path;
    cleanup_free char *mount = NULL;

    pthread_mutex_lock(&vm->lock);
    unsigned c = 0, l = 0;
    struct scsi_slot *s;
    int rc;
    for (;;) {
        rc = uvm_check_running(vm, "remove scsi");
        if (rc < 0)
            goto out_unlock;
        s = lookup(vm, key, controller, lun, &c, &l);
        if (!s || (s->state != SLOT_ADDING && s->state != SLOT_REMOVING))
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    if (!s) {
        rc = uvm_error(UVM_E_NOT_ATTACHED, "remove scsi '%s': not attached", name);
        goto out_unlock;
    }
    if (s->refs > 1) {
        s->refs--;
        rc = 0;
        goto out_unlock;
    }
    s->state = SLOT_REMOVING;
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    mount = s->uvm_path ? xstrdup(s->uvm_path) : NULL;
    bool ro = s->layer;
    int fdset = s->fdset;
    pthread_mutex_unlock(&vm->lock);

    /* The guest lets go first (unmount, delete the device), then the host unplugs. */
    rc = guest_part(b, guest, "Remove", mount, c, l, ro);
    if (rc == 0)
        rc = host_detach(vm, q, c, l, fdset);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "remove scsi '%s' at %u:%u (still attached)",
                            name, c, l);
        s->state = SLOT_ATTACHED; /* bookkeeping stays true: a retry works */
    } else {
        slot_clear(s);
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

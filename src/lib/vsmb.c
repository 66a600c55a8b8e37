/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VSMB shares (hcsshim AddVSMB / RemoveVSMB / GetVSMBUvmPath), a resource kind (res.h).
 *
 * Windows VM (cannot boot here): hcsshim's bookkeeping, and the share goes into the VM document
 * (VirtualSmb.Shares), which is what HCS would be given.
 * Linux VM (beyond hcsshim): a share is virtio-fs. Add (new host path): bind the directory (share.h: opened once, fresh entry, nosuid, nodev, read-only
 *     when asked) at <rundir>/vsmb/<name> -> start virtiofsd on it (virtiofsd.h: one confined
 *     daemon per share, watched through a pidfd) and wait until it listens -> QMP chardev-add +
 *     device_add vhost-user-fs-pci (tag <name>) on a hot-plug slot -> guest VirtioFs Add (mount
 *     at /run/vsmb/<name>) -> ready. Failures undo in reverse.
 * Remove (last reference): guest VirtioFs Remove (a lazy detach when the daemon died) ->
 *     device_del + DEVICE_DELETED -> chardev-remove -> the daemon exits (killed after a grace
 *     period) and is reaped -> unbind (only the mount we made) and its socket removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "modreq.h"
#include "qmpcmd.h"
#include "share.h"
#include "virtiofsd.h"

#define VSMB_GUEST_DIR "/run/vsmb"
#define VSMB_WINDOWS_PREFIX "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\"
#define DAEMON_EXIT_MS 5000u
#define DAEMON_TAIL_LINES 2

struct vsmb_share {
    struct share_rec sh; /* name "s<hex counter>" or the caller's */
    struct uvm_vsmb_options options;
    char *guest_request; /* stored, never sent (hcsshim) */
    /* linux: virtio-fs */
    int slot;            /* hot-plug slot, -1 */
    struct virtiofsd daemon;
    bool broken; /* the daemon died while the share was in use */
};

/* --- bookkeeping ---------------------------------------------------------------------------- */

#define share(r) ((struct vsmb_share *)(r)) /* its struct res is first */

static void
share_free(struct res *r)
{
    struct vsmb_share *s = share(r);
    virtiofsd_stop(&s->daemon, 0); /* never started (windows) or already stopped: a no-op */
    free(s->guest_request);
}

/* The record leaves the VM: its hot-plug slot is free again. */
static void
share_drop(struct uvm *vm, struct res *r)
{
    if (share(r)->slot >= 0)
        hotslot_put(vm, (unsigned)share(r)->slot);
}

static struct vsmb_share *
share_new(const char *host_path, const struct uvm_vsmb_options *o, const char *guest_request,
          const char *name)
{
    struct vsmb_share *s = res_new(&vsmb_kind, sizeof(*s), host_path);
    snprintf(s->sh.name, sizeof(s->sh.name), "%s", name);
    s->options = *o;
    s->guest_request = guest_request ? xstrdup(guest_request) : NULL;
    s->slot = -1;
    virtiofsd_init(&s->daemon);
    return s;
}

/* Stop a share's daemon (after a grace period), unbind its directory, remove its socket.
 * Failures are logged: the guest uses the share no more. */
static void
host_release(struct res_txn *t, struct vsmb_share *s, unsigned grace_ms)
{
    const struct share_state *st = share_state(t->vm, &vsmb_kind); /* fixed until close */
    const char *id = t->vm->cfg.id;
    if (virtiofsd_stop(&s->daemon, grace_ms) < 0)
        uvm_log(UVM_LOG_ERROR, id, "VSMB share %s: %s", s->sh.name, uvm_last_error());
    if (s->sh.mnt_id && share_unbind(st->dirfd, st->staging, s->sh.name, s->sh.mnt_id) < 0)
        uvm_log(UVM_LOG_WARNING, id, "VSMB share %s: %s", s->sh.name, uvm_last_error());
    s->sh.mnt_id = 0;
    cleanup_free char *sock = xasprintf("%s.sock", s->sh.name);
    unlinkat(st->dirfd, sock, 0);
}

/* The VM is gone (terminated or exited): stop and reap every daemon now rather than at close.
 * Taken out under the lock, stopped without it (a stop waits and reaps). A share being added
 * or removed belongs to that call, which fails now and stops its own daemon. */
static void
vsmb_vm_gone(struct uvm *vm)
{
    pthread_mutex_lock(&vm->lock);
    size_t n = 0;
    struct res *r;
    RES_FOREACH(r, vm, &vsmb_kind)
        n++;
    struct virtiofsd *d = n ? xcalloc(n, sizeof(*d)) : NULL;
    n = 0;
    RES_FOREACH(r, vm, &vsmb_kind) {
        if (r->state != RES_READY)
            continue;
        d[n++] = share(r)->daemon;
        virtiofsd_init(&share(r)->daemon);
    }
    pthread_mutex_unlock(&vm->lock);
    for (size_t i = 0; i < n; i++)
        virtiofsd_stop(&d[i], 0);
    free(d);
}

/* Lock held: a daemon that died while its share was in use makes the share broken (reaped
 * here). Returns the warning to log once unlocked (owned), or NULL. */
static char *
check_daemon(struct vsmb_share *s)
{
    int status;
    if (s->broken || !virtiofsd_exited(&s->daemon, &status))
        return NULL;
    s->broken = true;
    cleanup_free char *tail = virtiofsd_log_tail(&s->daemon, DAEMON_TAIL_LINES);
    return xasprintf("VSMB share %s ('%s'): virtiofsd exited (status 0x%x): the share is broken; "
                     "remove it%s%s",
                     s->sh.name, s->sh.res.key, (unsigned)status, *tail ? ": " : "", tail);
}

/* hcsshim's VirtualSmbShareOptions: every field is `omitempty`, so only the true flags appear
 * (as in the "os" share of the document). */
static json_t *
options_json(const struct uvm_vsmb_options *o)
{
    const struct {
        const char *name;
        bool on;
    } flags[] = {
        {"ReadOnly", o->read_only},
        {"ShareRead", o->share_read},
        {"CacheIo", o->cache_io},
        {"NoOplocks", o->no_oplocks},
        {"TakeBackupPrivilege", o->take_backup_privilege},
        {"UseShareRootIdentity", o->use_share_root_identity},
        {"NoDirectmap", o->no_directmap},
        {"NoLocks", o->no_locks},
        {"RestrictFileAccess", o->restrict_file_access},
        {"ForceLevelIIOplocks", o->force_level_ii_oplocks},
        {"ReparseBaseLayer", o->reparse_base_layer},
        {"PseudoOplocks", o->pseudo_oplocks},
        {"NonCacheIo", o->non_cache_io},
        {"PseudoDirnotify", o->pseudo_dirnotify},
        {"SingleFileMapping", o->single_file_mapping},
        {"SupportCloudFiles", o->support_cloud_files},
    };
    json_t *j = json_object();
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (flags[i].on)
            json_object_set_new(j, flags[i].name, json_true());
    return j;
}

/* --- windows: the document ------------------------------------------------------------------ */

/* Lock held. Apply an add (settings) or a remove (name) to VirtualSmb.Shares of the document. */
static int
document_update(struct uvm *vm, json_t *add, const char *remove_name)
{
    json_error_t err;
    cleanup_json json_t *doc = json_loads(vm->document, JSON_PRESERVE_ORDER, &err);
    json_t *vsmb = json_object_get(
        json_object_get(json_object_get(doc, "VirtualMachine"), "Devices"), "VirtualSmb");
    json_t *shares = json_object_get(vsmb, "Shares");
    if (!json_is_array(shares)) {
        json_decref(add);
        return uvm_error(UVM_E_INVALID_STATE, "the VM document has no VirtualSmb.Shares");
    }
    if (add)
        json_array_append_new(shares, add);
    for (size_t i = 0; !add && i < json_array_size(shares); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(shares, i), "Name"));
        if (n && !strcmp(n, remove_name)) {
            json_array_remove(shares, i);
            break;
        }
    }
    vm_document_replace(vm, json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
    return 0;
}

/* Windows (the VM never runs): bookkeeping and the document, under the lock. */
static int
windows_add(struct res_txn *t, const struct vsmb_add_args *a, const struct uvm_vsmb_options *o)
{
    cleanup_json json_t *path = json_string(a->host_path); /* NULL: not UTF-8 */
    if (!path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add vsmb '%s': the path is not UTF-8",
                         a->host_path);
    int rc = res_enter(t, NULL, a->host_path);
    if (rc < 0)
        return rc;
    if (t->r) { /* shared already: another reference */
        t->r->refs++;
        return res_leave(t, 0);
    }
    char name[24];
    if ((rc = share_name_take(t->vm, &vsmb_kind, a->name, true, "add vsmb", a->host_path,
                              name)) < 0)
        return res_leave(t, rc);
    struct vsmb_share *s = share_new(a->host_path, o, a->guest_request_json, name);
    rc = document_update(t->vm, json_pack("{s:s, s:O, s:o}", "Name", s->sh.name, "Path", path,
                                          "Options", options_json(o)),
                         NULL);
    if (rc < 0) {
        res_free(&s->sh.res);
        return res_leave(t, rc);
    }
    res_begin(t, &s->sh.res, RES_ADDING);
    return res_end(t, 0);
}

static int
windows_remove(struct res_txn *t, const char *path, const char *name)
{
    int rc = res_remove_enter(t, path ? NULL : share_find_name, path ? path : name,
                              UVM_E_NOT_ATTACHED);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if ((rc = document_update(t->vm, NULL, share(t->r)->sh.name)) < 0)
        return res_leave(t, rc);
    res_begin(t, t->r, RES_REMOVING);
    return res_end(t, 0);
}

/* --- linux: virtio-fs ----------------------------------------------------------------------- */

static void
qemu_ids(const struct vsmb_share *s, char chardev[40], char dev[40])
{
    snprintf(chardev, 40, "vfs-%s", s->sh.name);
    snprintf(dev, 40, "vfsdev-%s", s->sh.name);
}

static int
host_plug(struct res_txn *t, const struct vsmb_share *s, const char *sock)
{
    char chardev[40], dev[40], bus[16], addr[8];
    qemu_ids(s, chardev, dev);
    hotslot_place(t->vm, (unsigned)s->slot, bus, addr);
    cleanup_json json_t *cargs =
        json_pack("{s:s, s:{s:s, s:{s:{s:s, s:{s:s}}, s:b}}}", "id", chardev, "backend", "type",
                  "socket", "data", "addr", "type", "unix", "data", "path", sock, "server", 0);
    cleanup_json json_t *dargs =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "driver", "vhost-user-fs-pci", "id", dev,
                  "chardev", chardev, "tag", s->sh.name, "bus", bus);
    if (*addr)
        json_object_set_new(dargs, "addr", json_string(addr));
    const struct qmpc_backend be = QMPC_CHARDEV(cargs, chardev);
    bool lost = false; /* a chardev left behind holds only its socket name: the slot is free */
    return qmpc_plug(t->qmp, &be, dargs, &lost, NULL);
}

static int
host_unplug(struct res_txn *t, const struct vsmb_share *s)
{
    char chardev[40], dev[40];
    qemu_ids(s, chardev, dev);
    const struct qmpc_backend be = QMPC_CHARDEV(NULL, chardev);
    return qmpc_unplug(t->qmp, dev, &be);
}

static int
guest_request(struct res_txn *t, const char *type, const struct vsmb_share *s, bool lazy)
{
    cleanup_free char *mount = xasprintf(VSMB_GUEST_DIR "/%s", s->sh.name);
    json_t *settings = json_pack("{s:s, s:s, s:b, s:s}", "Tag", s->sh.name, "MountPath", mount,
                                 "ReadOnly", s->options.read_only, "Options", "");
    if (lazy)
        json_object_set_new(settings, "Lazy", json_true());
    return bridge_guest_part(t->bridge, NULL, bridge_guest_request("VirtioFs", type, settings));
}

/* The mount in the guest (VirtioFs, which stands for HCS making the share visible), then the
 * caller's GuestRequest of a uvm_modify (the mount is undone when it fails). */
static int
guest_attach(struct res_txn *t, struct vsmb_share *s, const struct guest_part *g)
{
    int rc = guest_request(t, "Add", s, false);
    if (rc < 0 || !g || !g->request)
        return rc;
    rc = bridge_guest_part(t->bridge, g, NULL);
    if (rc < 0) {
        struct uvm_error_state es;
        uvm_error_capture(&es);
        guest_request(t, "Remove", s, false); /* its failure shows in the unplug that follows */
        uvm_error_restore(&es, rc);
    }
    return rc;
}

/* The daemon, the device, the guest; undone in reverse on failure. */
static int
plug_and_mount(struct res_txn *t, struct vsmb_share *s, const char *source, const char *sock,
               const struct guest_part *g)
{
    int rc = virtiofsd_start(&s->daemon, &s->options, source, sock, s->sh.res.key);
    if (rc < 0)
        return rc;
    uvm_log(UVM_LOG_DEBUG, t->vm->cfg.id, "VSMB share %s: virtiofsd pid %d on %s", s->sh.name,
            (int)s->daemon.proc.pid, source);
    if ((rc = host_plug(t, s, sock)) < 0)
        return rc;
    if ((rc = guest_attach(t, s, g)) < 0) {
        struct uvm_error_state es;
        uvm_error_capture(&es);
        if (host_unplug(t, s) < 0)
            uvm_log(UVM_LOG_WARNING, t->vm->cfg.id, "VSMB share %s: unplug failed: %s",
                    s->sh.name, uvm_last_error());
        uvm_error_restore(&es, rc);
    }
    return rc;
}

/* Everything of a linux add outside the lock; undone on failure. */
static int
linux_attach(struct res_txn *t, struct vsmb_share *s, int dirfd, const struct guest_part *g)
{
    const struct share_state *st = share_state(t->vm, &vsmb_kind); /* fixed until close */
    cleanup_free char *source = xasprintf("%s/%s", st->staging, s->sh.name);
    cleanup_free char *sock = xasprintf("%s/%s.sock", st->staging, s->sh.name);
    int rc = share_bind(st->dirfd, st->staging, s->sh.name, dirfd, s->sh.res.key,
                        s->options.read_only, &s->sh.mnt_id);
    if (rc < 0)
        return rc;
    if ((rc = plug_and_mount(t, s, source, sock, g)) < 0) {
        struct uvm_error_state es;
        uvm_error_capture(&es);
        host_release(t, s, 0);
        uvm_error_restore(&es, rc);
    }
    return rc;
}

/* The stored guest request must be JSON (hcsshim keeps it; we never send it). */
static int
check_guest_request(const char *host_path, const char *json)
{
    if (!json)
        return 0;
    json_error_t err;
    json_t *j = json_loads(json, 0, &err);
    json_decref(j);
    if (!j)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add vsmb '%s': guest request is not JSON: %s",
                         host_path, err.text);
    return 0;
}

/* Lock held: another add of a shared directory takes a reference, unless the share is broken or
 * the add names it differently. */
static int
add_again(struct res_txn *t, struct vsmb_share *s, const struct vsmb_add_args *a)
{
    if (a->name && strcmp(s->sh.name, a->name))
        return uvm_error(UVM_E_ALREADY_ATTACHED, "add vsmb '%s': already shared as '%s'",
                         a->host_path, s->sh.name);
    res_note(t, check_daemon(s));
    if (s->broken)
        return uvm_error(UVM_E_HYPERVISOR, "add vsmb '%s': share %s is broken (its virtiofsd "
                         "exited); remove it first",
                         a->host_path, s->sh.name);
    s->sh.res.refs++;
    return 0;
}

/* Lock held: a new linux share with its name and hot-plug slot, or an error. */
static struct vsmb_share *
linux_new(struct uvm *vm, const struct vsmb_add_args *a, const struct uvm_vsmb_options *o,
          const char *real, int *rc)
{
    char name[24];
    if ((*rc = share_name_take(vm, &vsmb_kind, a->name, true, "add vsmb", a->host_path, name)) <
        0)
        return NULL;
    int slot = hotslot_take(vm);
    if (slot < 0) {
        *rc = uvm_error(UVM_E_NO_AVAILABLE_LOCATION, "add vsmb '%s': all %u hot-plug slots are "
                        "in use",
                        a->host_path, hotslot_count(vm));
        return NULL;
    }
    struct vsmb_share *s = share_new(real, o, a->guest_request_json, name);
    s->slot = slot;
    return s;
}

static int
linux_add(struct res_txn *t, const struct vsmb_add_args *a, const struct uvm_vsmb_options *o)
{
    cleanup_free char *real = NULL;
    cleanup_close int dirfd = -1;
    int rc = share_resolve_dir("add vsmb", a->host_path, &dirfd, &real);
    if (rc < 0)
        return rc;
    if (access(VIRTIOFSD, X_OK) < 0)
        return uvm_error(UVM_E_NOT_SUPPORTED, "add vsmb '%s': %s is not installed (Debian: "
                         "qemu-system-common)",
                         a->host_path, VIRTIOFSD);
    if ((rc = res_enter(t, NULL, real)) < 0)
        return rc;
    struct vsmb_share *s = t->r ? NULL : linux_new(t->vm, a, o, real, &rc);
    if (!s)
        return res_leave(t, t->r ? add_again(t, share(t->r), a) : rc);
    res_txn_fail(t, "add vsmb '%s'", a->host_path);
    res_begin(t, &s->sh.res, RES_ADDING);
    return res_end(t, linux_attach(t, s, dirfd, a->guest));
}

int
vsmb_add(struct uvm *vm, const struct vsmb_add_args *a)
{
    static const struct uvm_vsmb_options none;
    const struct uvm_vsmb_options *o = a->options ? a->options : &none;
    int rc = res_check_key(vm, "add vsmb", a->host_path);
    if (rc == 0)
        rc = check_guest_request(a->host_path, a->guest_request_json);
    if (rc < 0)
        return rc;
    struct res_txn t = RES_TXN(vm, &vsmb_kind, "add vsmb");
    t.offline = vm->cfg.windows;
    return vm->cfg.windows ? windows_add(&t, a, o) : linux_add(&t, a, o);
}

int
uvm_add_vsmb(struct uvm *vm, const char *host_path, const char *guest_request_json,
             const struct uvm_vsmb_options *options)
{
    struct vsmb_add_args a = {.host_path = host_path, .guest_request_json = guest_request_json,
                              .options = options};
    return vm ? UVM_CALL(vm, "add vsmb", vsmb_add(vm, &a))
              : vsmb_add(vm, &a); /* it says what is wrong */
}

int
uvm_remove_vsmb(struct uvm *vm, const char *host_path)
{
    int rc = res_check_key(vm, "remove vsmb", host_path);
    return rc < 0 ? rc : UVM_CALL(vm, "remove vsmb", vsmb_remove(vm, host_path, NULL, NULL));
}

/* Outside the lock: the caller's GuestRequest, the unmount, the unplug, the daemon. A dead
 * daemon never answers: the guest aborts the connection and detaches lazily. Linux 6.1 cannot
 * then release the device (it waits for the requests queued to the dead daemon), so it stays
 * plugged and its slot is lost (t->dirty), said in a warning. */
static int
linux_detach(struct res_txn *t, struct vsmb_share *s, bool lazy, const struct guest_part *g)
{
    int rc = g && g->request ? bridge_guest_part(t->bridge, g, NULL) : 0;
    if (rc == 0)
        rc = guest_request(t, "Remove", s, lazy);
    if (rc == 0 && !lazy)
        rc = host_unplug(t, s);
    if (rc < 0)
        return rc;
    host_release(t, s, DAEMON_EXIT_MS); /* the daemon exits once QEMU lets go of the socket */
    t->dirty = lazy;
    if (lazy)
        res_note(t, xasprintf("VSMB share %s removed after its virtiofsd died; its device stays "
                              "plugged (the guest kernel cannot release it) and hot-plug slot %d "
                              "stays taken",
                              s->sh.name, s->slot));
    return 0;
}

int
vsmb_remove(struct uvm *vm, const char *path, const char *name, const struct guest_part *guest)
{
    const char *shown = path ? path : name;
    cleanup_free char *key = !path ? NULL : vm->cfg.windows ? xstrdup(path) : share_key(path);
    struct res_txn t = RES_TXN(vm, &vsmb_kind, "remove vsmb");
    t.offline = vm->cfg.windows;
    res_txn_fail(&t, "%s is not present as a VSMB share in %s, cannot remove", shown, vm->cfg.id);
    if (vm->cfg.windows)
        return windows_remove(&t, key, name);
    int rc = res_remove_enter(&t, key ? NULL : share_find_name, key ? key : name,
                              UVM_E_NOT_ATTACHED);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    struct vsmb_share *s = share(t.r);
    res_note(&t, check_daemon(s));
    bool lazy = s->broken;
    res_txn_fail(&t, "failed to remove vsmb share %s from %s", shown, vm->cfg.id);
    res_begin(&t, t.r, RES_REMOVING);
    return res_end(&t, linux_detach(&t, s, lazy, guest));
}

/* --- GetVSMBUvmPath ------------------------------------------------------------------------- */

static int
get_uvm_path(struct uvm *vm, const char *host_path, char **uvm_path)
{
    if (!uvm_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "get vsmb uvm path: uvm_path is NULL");
    *uvm_path = NULL;
    if (!host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "no hostPath passed to GetVSMBUvmPath");
    cleanup_free char *key = vm->cfg.windows ? xstrdup(host_path) : share_key(host_path);
    cleanup_free char *note = NULL;
    pthread_mutex_lock(&vm->lock);
    struct res *r = res_find(vm, &vsmb_kind, key);
    int rc = 0;
    if (!r || r->state == RES_ADDING) {
        rc = uvm_error(UVM_E_NOT_FOUND, "%s not found as VSMB share in %s", host_path, vm->cfg.id);
    } else {
        if (r->state == RES_READY)
            note = check_daemon(share(r));
        *uvm_path = vm->cfg.windows ? xasprintf(VSMB_WINDOWS_PREFIX "%s", share(r)->sh.name)
                                    : xasprintf(VSMB_GUEST_DIR "/%s", share(r)->sh.name);
    }
    pthread_mutex_unlock(&vm->lock);
    if (note)
        uvm_log(UVM_LOG_WARNING, vm->cfg.id, "%s", note);
    return rc;
}

int
uvm_get_vsmb_uvm_path(struct uvm *vm, const char *host_path, char **uvm_path)
{
    if (uvm_path)
        *uvm_path = NULL;
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "get vsmb uvm path: vm or uvm_path is NULL");
    return UVM_CALL(vm, "get vsmb uvm path", get_uvm_path(vm, host_path, uvm_path));
}

/* --- uvm_modify: VirtualMachine/Devices/VirtualSmb/Shares ----------------------------------- */

/* hcsshim's VirtualSmbShareOptions -> ours; offset -1: accepted, no effect here. */
static const struct {
    const char *name;
    ptrdiff_t offset;
} vsmb_flags[] = {
#define FLAG(n, f) {n, offsetof(struct uvm_vsmb_options, f)}
    FLAG("ReadOnly", read_only),
    FLAG("ShareRead", share_read),
    FLAG("CacheIo", cache_io),
    FLAG("NoOplocks", no_oplocks),
    FLAG("TakeBackupPrivilege", take_backup_privilege),
    FLAG("UseShareRootIdentity", use_share_root_identity),
    FLAG("NoDirectmap", no_directmap),
    FLAG("NoLocks", no_locks),
    {"NoDirnotify", -1},
    {"VmSharedMemory", -1},
    FLAG("RestrictFileAccess", restrict_file_access),
    FLAG("ForceLevelIIOplocks", force_level_ii_oplocks),
    FLAG("ReparseBaseLayer", reparse_base_layer),
    FLAG("PseudoOplocks", pseudo_oplocks),
    FLAG("NonCacheIo", non_cache_io),
    FLAG("PseudoDirnotify", pseudo_dirnotify),
    FLAG("SingleFileMapping", single_file_mapping),
    FLAG("SupportCloudFiles", support_cloud_files),
#undef FLAG
};

static int
modify_options(const struct modify_req *r, struct uvm_vsmb_options *o)
{
    json_t *opts = json_object_get(r->settings, "Options");
    if (!opts)
        return 0;
    if (!json_is_object(opts))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.Options must be an "
                         "object",
                         r->id, r->path);
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v) {
        size_t i = 0;
        while (i < ARRAY_SIZE(vsmb_flags) && strcmp(vsmb_flags[i].name, key))
            i++;
        if (i == ARRAY_SIZE(vsmb_flags))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "modify '%s' %s: Settings.Options.%s is not a VSMB share option",
                             r->id, r->path, key);
        if (!json_is_boolean(v))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "modify '%s' %s: Settings.Options.%s must be a boolean", r->id,
                             r->path, key);
        if (vsmb_flags[i].offset >= 0)
            *(bool *)((char *)o + vsmb_flags[i].offset) = json_is_true(v);
    }
    return 0;
}

int
vsmb_modify(struct uvm *vm, struct modify_req *r)
{
    const char *name = NULL, *path = NULL;
    struct uvm_vsmb_options o = {0};
    int rc = modreq_need_settings(r);
    if (rc == 0)
        rc = modreq_string(r, "Name", true, &name);
    if (rc == 0 && r->add)
        rc = modreq_string(r, "Path", true, &path);
    if (rc == 0 && r->add)
        rc = modify_options(r, &o);
    if (rc < 0)
        return rc;
    if (!modreq_name_ok(name))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.Name '%s' is not a "
                         "share name (1 to 20 of [A-Za-z0-9_-])",
                         r->id, r->path, name);
    if (!r->add)
        return modreq_wrap(r, vsmb_remove(vm, NULL, name, &r->guest));
    struct vsmb_add_args a = {.host_path = path, .options = &o, .name = name,
                              .guest = &r->guest};
    return modreq_wrap(r, vsmb_add(vm, &a));
}

static const struct share_conf conf = {VSMB_STAGING_DIR, false};

const struct res_kind vsmb_kind = {
    SHARE_KIND("vsmb", &conf),
    .vm_gone = vsmb_vm_gone,
    .needs_shared_ram = true, /* vhost-user-fs (virtiofsd maps the guest RAM) */
    .drop = share_drop,
    .free = share_free,
};

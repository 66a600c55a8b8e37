/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VSMB shares (hcsshim AddVSMB / RemoveVSMB / GetVSMBUvmPath).
 *
 * Windows VM (cannot boot here): hcsshim's bookkeeping, and the share goes into the VM document
 * (VirtualSmb.Shares), which is what HCS would be given.
 * Linux VM (beyond hcsshim): a share is virtio-fs. Add (new host path): record as adding ->
 *     unlock -> bind the directory (share.h: opened once, fresh entry, nosuid, nodev, read-only
 *     when asked) at <rundir>/vsmb/<name> -> start virtiofsd on it (virtiofsd.h: one confined
 *     daemon per share, watched through a pidfd) and wait until it listens -> QMP chardev-add +
 *     device_add vhost-user-fs-pci (tag <name>) on a hot-plug slot -> guest VirtioFs Add (mount
 *     at /run/vsmb/<name>) -> lock -> ready. Failures undo in reverse.
 * Remove (last reference): guest VirtioFs Remove (a lazy detach when the daemon died) ->
 *     device_del + DEVICE_DELETED -> chardev-remove -> the daemon exits (killed after a grace
 *     period) and is reaped -> unbind (only the mount we made) and its socket removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "hotslot.h"
#include "proto.h"
#include "qmp.h"
#include "share.h"
#include "timeutil.h"
#include "uvm-internal.h"
#include "virtiofsd.h"

#define VSMB_GUEST_DIR "/run/vsmb"
#define VSMB_WINDOWS_PREFIX "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\"
#define DAEMON_EXIT_MS 5000u
#define DAEMON_TAIL_LINES 2
#define DEVICE_DELETED_TIMEOUT_MS 10000u

/* --- bookkeeping ---------------------------------------------------------------------------- */

static void
share_free(struct vsmb_share *s)
{
    virtiofsd_stop(&s->daemon, 0); /* never started (windows) or already stopped: a no-op */
    free(s->host_path);
    free(s->guest_request);
    free(s);
}

/* Lock held: a.name's share, or NULL. */
static struct vsmb_share *
find_name(struct uvm *vm, const char *name)
{
    struct vsmb_share *s;
    LIST_FOREACH(s, &vm->vsmb, link)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

/* Lock held: the share's name, a->name or "s<next counter in hex>". A caller's "s<hex>" moves
 * the counter past it, so the typed calls never take it. UVM_E_ALREADY_ATTACHED when taken. */
static int
name_take(struct uvm *vm, const struct vsmb_add_args *a, char name[24])
{
    if (!a->name) {
        snprintf(name, 24, "s%llx", (unsigned long long)++vm->vsmb_counter);
        return 0;
    }
    if (find_name(vm, a->name))
        return uvm_error(UVM_E_ALREADY_ATTACHED, "add vsmb '%s': share name '%s' is in use",
                         a->host_path, a->name);
    snprintf(name, 24, "%s", a->name);
    char *end = NULL;
    unsigned long long n = name[0] == 's' && name[1] ? strtoull(name + 1, &end, 16) : 0;
    if (end && !*end && n > vm->vsmb_counter)
        vm->vsmb_counter = n;
    return 0;
}

static struct vsmb_share *
share_new(const char *host_path, const struct uvm_vsmb_options *o, const char *guest_request,
          const char *name)
{
    struct vsmb_share *s = xcalloc(1, sizeof(*s));
    s->host_path = xstrdup(host_path);
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->options = *o;
    s->guest_request = guest_request ? xstrdup(guest_request) : NULL;
    s->slot = -1;
    virtiofsd_init(&s->daemon);
    return s;
}

/* Stop a share's daemon (after a grace period), unbind its directory, remove its socket.
 * Failures are logged: the guest uses the share no more. */
static void
host_release(struct uvm *vm, struct vsmb_share *s, int stagingfd, const char *staging,
             unsigned grace_ms)
{
    if (virtiofsd_stop(&s->daemon, grace_ms) < 0)
        uvm_log(UVM_LOG_ERROR, vm->cfg.id, "VSMB share %s: %s", s->name, uvm_last_error());
    if (s->mnt_id && share_unbind(stagingfd, staging, s->name, s->mnt_id) < 0)
        uvm_log(UVM_LOG_WARNING, vm->cfg.id, "VSMB share %s: %s", s->name, uvm_last_error());
    s->mnt_id = 0;
    cleanup_free char *sock = xasprintf("%s.sock", s->name);
    unlinkat(stagingfd, sock, 0);
}

void
vsmb_release_all(struct uvm *vm)
{
    while (!LIST_EMPTY(&vm->vsmb)) {
        struct vsmb_share *s = LIST_FIRST(&vm->vsmb);
        LIST_REMOVE(s, link);
        share_free(s); /* kills its daemon; the binds go with the runtime directory */
    }
    if (vm->vsmb_dirfd >= 0)
        close(vm->vsmb_dirfd);
    vm->vsmb_dirfd = -1;
    for (size_t i = 0; i < vm->n_old_documents; i++)
        free(vm->old_documents[i]);
    free(vm->old_documents);
    vm->old_documents = NULL;
    vm->n_old_documents = 0;
}

void
vsmb_stop_daemons(struct uvm *vm)
{
    /* Taken out under the lock, stopped without it (a stop waits and reaps). A share being
     * added or removed belongs to that call, which fails now and stops its own daemon. */
    pthread_mutex_lock(&vm->lock);
    size_t n = 0;
    struct vsmb_share *s;
    LIST_FOREACH(s, &vm->vsmb, link)
        n++;
    struct virtiofsd *d = n ? xcalloc(n, sizeof(*d)) : NULL;
    n = 0;
    LIST_FOREACH(s, &vm->vsmb, link) {
        if (s->state != SHARE_READY)
            continue;
        d[n++] = s->daemon;
        virtiofsd_init(&s->daemon);
    }
    pthread_mutex_unlock(&vm->lock);
    for (size_t i = 0; i < n; i++)
        virtiofsd_stop(&d[i], 0);
    free(d);
}

/* Lock held. */
static struct vsmb_share *
find(struct uvm *vm, const char *host_path)
{
    struct vsmb_share *s;
    LIST_FOREACH(s, &vm->vsmb, link)
        if (!strcmp(s->host_path, host_path))
            return s;
    return NULL;
}

/* Lock held: a daemon that died while its share was in use makes the share broken (reaped
 * here). Returns the warning to log once unlocked (owned), or NULL. */
static char *
check_daemon(struct uvm *vm, struct vsmb_share *s)
{
    int status;
    if (s->broken || !virtiofsd_exited(&s->daemon, &status))
        return NULL;
    s->broken = true;
    cleanup_free char *tail = virtiofsd_log_tail(&s->daemon, DAEMON_TAIL_LINES);
    return xasprintf("VSMB share %s ('%s'): virtiofsd exited (status 0x%x): the share is broken; "
                     "remove it%s%s",
                     s->name, s->host_path, (unsigned)status, *tail ? ": " : "", tail);
}

/* Outside the lock: a warning check_daemon (or a removal) left. */
static void
log_note(struct uvm *vm, const char *note)
{
    if (note)
        uvm_log(UVM_LOG_WARNING, vm->cfg.id, "%s", note);
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

/* Lock held. Apply an add (settings) or a remove (name) to VirtualSmb.Shares of the document;
 * the previous text stays valid until close (uvm_document's pointer never dangles). */
static int
document_update(struct uvm *vm, json_t *add, const char *remove_name)
{
    json_error_t err;
    json_t *doc = json_loads(vm->document, JSON_PRESERVE_ORDER, &err);
    json_t *vsmb = json_object_get(
        json_object_get(json_object_get(doc, "VirtualMachine"), "Devices"), "VirtualSmb");
    json_t *shares = json_object_get(vsmb, "Shares");
    if (!json_is_array(shares)) {
        json_decref(doc);
        json_decref(add);
        return uvm_error(UVM_E_INVALID_STATE, "the VM document has no VirtualSmb.Shares");
    }
    if (add) {
        json_array_append_new(shares, add);
    } else {
        for (size_t i = 0; i < json_array_size(shares); i++) {
            const char *n = json_string_value(json_object_get(json_array_get(shares, i), "Name"));
            if (n && !strcmp(n, remove_name)) {
                json_array_remove(shares, i);
                break;
            }
        }
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    vm->old_documents = xrealloc(vm->old_documents,
                                 (vm->n_old_documents + 1) * sizeof(*vm->old_documents));
    vm->old_documents[vm->n_old_documents++] = vm->document;
    /* uvm_document reads it without the lock: publish the text with its contents */
    __atomic_store_n(&vm->document, text, __ATOMIC_RELEASE);
    return 0;
}

static int
windows_add(struct uvm *vm, const struct vsmb_add_args *a, const struct uvm_vsmb_options *o)
{
    const char *host_path = a->host_path;
    json_t *path = json_string(host_path); /* NULL: not UTF-8, cannot go into the document */
    if (!path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add vsmb '%s': the path is not UTF-8", host_path);
    pthread_mutex_lock(&vm->lock);
    int rc = 0;
    char name[24];
    struct vsmb_share *s = find(vm, host_path);
    if (!s && (rc = name_take(vm, a, name)) < 0)
        goto out;
    if (!s) {
        s = share_new(host_path, o, a->guest_request_json, name);
        s->state = SHARE_READY;
        rc = document_update(vm, json_pack("{s:s, s:O, s:o}", "Name", s->name, "Path", path,
                                           "Options", options_json(o)),
                             NULL);
        if (rc < 0) {
            share_free(s);
            goto out;
        }
        LIST_INSERT_HEAD(&vm->vsmb, s, link);
    }
    s->refs++;
out:
    pthread_mutex_unlock(&vm->lock);
    json_decref(path);
    return rc;
}

/* --- linux: virtio-fs ----------------------------------------------------------------------- */

static int
host_plug(struct uvm *vm, struct qmp *q, const struct vsmb_share *s, const char *sock)
{
    char chardev[40], dev[40], bus[16], addr[8];
    snprintf(chardev, sizeof(chardev), "vfs-%s", s->name);
    snprintf(dev, sizeof(dev), "vfsdev-%s", s->name);
    hotslot_place(vm, (unsigned)s->slot, bus, addr);
    json_t *cargs = json_pack("{s:s, s:{s:s, s:{s:{s:s, s:{s:s}}, s:b}}}", "id", chardev,
                              "backend", "type", "socket", "data", "addr", "type", "unix",
                              "data", "path", sock, "server", 0);
    int rc = qmp_execute(q, "chardev-add", cargs, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(cargs);
    if (rc < 0)
        return rc;
    json_t *dargs = json_pack("{s:s, s:s, s:s, s:s, s:s}", "driver", "vhost-user-fs-pci", "id", dev,
                              "chardev", chardev, "tag", s->name, "bus", bus);
    if (*addr)
        json_object_set_new(dargs, "addr", json_string(addr));
    rc = qmp_execute(q, "device_add", dargs, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(dargs);
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        json_t *del = json_pack("{s:s}", "id", chardev);
        if (qmp_execute(q, "chardev-remove", del, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS)) < 0)
            uvm_log(UVM_LOG_WARNING, vm->cfg.id, "chardev %s: rollback failed: %s", chardev,
                    uvm_last_error());
        json_decref(del);
        return uvm_error(rc, "%s", msg);
    }
    return 0;
}

static int
host_unplug(struct qmp *q, const struct vsmb_share *s)
{
    char chardev[40], dev[40];
    snprintf(chardev, sizeof(chardev), "vfs-%s", s->name);
    snprintf(dev, sizeof(dev), "vfsdev-%s", s->name);
    json_t *args = json_pack("{s:s}", "id", dev);
    int rc = qmp_execute(q, "device_del", args, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(args);
    if (rc < 0)
        return rc;
    json_t *match = json_pack("{s:s}", "device", dev);
    rc = qmp_wait_event(q, "DEVICE_DELETED", match, NULL,
                        deadline_after_ms(DEVICE_DELETED_TIMEOUT_MS));
    json_decref(match);
    if (rc < 0)
        return rc;
    args = json_pack("{s:s}", "id", chardev);
    rc = qmp_execute(q, "chardev-remove", args, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(args);
    return rc;
}

static int
guest_request(struct bridge *b, const char *type, const struct vsmb_share *s, bool lazy)
{
    cleanup_free char *mount = xasprintf(VSMB_GUEST_DIR "/%s", s->name);
    json_t *settings = json_pack("{s:s, s:s, s:b, s:s}", "Tag", s->name, "MountPath", mount,
                                 "ReadOnly", s->options.read_only, "Options", "");
    if (lazy)
        json_object_set_new(settings, "Lazy", json_true());
    json_t *req = json_pack("{s:{s:s, s:s, s:o}}", "Request", "ResourceType", "VirtioFs",
                            "RequestType", type, "Settings", settings);
    return bridge_call(b, PROTO_REQ_MODIFY_SETTINGS, req, NULL,
                       deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

/* The mount in the guest (VirtioFs, which stands for HCS making the share visible), then the
 * caller's GuestRequest of a uvm_modify (the mount is undone when it fails). */
static int
guest_attach(struct bridge *b, struct vsmb_share *s, const struct guest_part *g)
{
    int rc = guest_request(b, "Add", s, false);
    if (rc < 0 || !g || !g->request)
        return rc;
    rc = bridge_modify(b, g->request, deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        guest_request(b, "Remove", s, false); /* its failure shows in the unplug that follows */
        uvm_error(rc, "%s", msg);
    }
    return rc;
}

/* Everything of a linux add outside the lock; undone on failure. */
static int
linux_attach(struct uvm *vm, struct qmp *q, struct bridge *b, struct vsmb_share *s, int dirfd,
             int stagingfd, const char *staging, const struct guest_part *g)
{
    cleanup_free char *source = xasprintf("%s/%s", staging, s->name);
    cleanup_free char *sock = xasprintf("%s/%s.sock", staging, s->name);
    uint64_t mnt_id = 0;
    int rc = share_bind(stagingfd, staging, s->name, dirfd, s->host_path, s->options.read_only,
                        &mnt_id);
    if (rc < 0)
        return rc;
    s->mnt_id = mnt_id; /* nobody reads an adding share's mount or daemon */
    rc = virtiofsd_start(&s->daemon, &s->options, source, sock, s->host_path);
    if (rc == 0) {
        uvm_log(UVM_LOG_DEBUG, vm->cfg.id, "VSMB share %s: virtiofsd pid %d on %s", s->name,
                (int)s->daemon.proc.pid, source);
        rc = host_plug(vm, q, s, sock);
    }
    if (rc == 0) {
        rc = guest_attach(b, s, g);
        if (rc < 0) {
            cleanup_free char *msg = xstrdup(uvm_last_error());
            if (host_unplug(q, s) < 0)
                uvm_log(UVM_LOG_WARNING, vm->cfg.id, "VSMB share %s: unplug failed: %s", s->name,
                        uvm_last_error());
            uvm_error(rc, "%s", msg);
        }
    }
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        host_release(vm, s, stagingfd, staging, 0);
        uvm_error(rc, "%s", msg);
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
 * the add names it differently. *note: a warning to log once unlocked. */
static int
share_ref(struct uvm *vm, struct vsmb_share *s, const struct vsmb_add_args *a, char **note)
{
    if (a->name && strcmp(s->name, a->name))
        return uvm_error(UVM_E_ALREADY_ATTACHED, "add vsmb '%s': already shared as '%s'",
                         a->host_path, s->name);
    *note = check_daemon(vm, s);
    if (s->broken)
        return uvm_error(UVM_E_HYPERVISOR, "add vsmb '%s': share %s is broken (its virtiofsd "
                         "exited); remove it first",
                         a->host_path, s->name);
    s->refs++;
    return 0;
}

static int do_add_vsmb(struct uvm *vm, const char *host_path, const char *guest_request_json,
                       const struct uvm_vsmb_options *options);

int
uvm_add_vsmb(struct uvm *vm, const char *host_path, const char *guest_request_json,
             const struct uvm_vsmb_options *options)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add vsmb: vm is NULL");
    int rc = uvm_call_enter(vm, "add vsmb");
    if (rc == 0) {
        rc = do_add_vsmb(vm, host_path, guest_request_json, options);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_add_vsmb(struct uvm *vm, const char *host_path, const char *guest_request_json,
            const struct uvm_vsmb_options *options)
{
    struct vsmb_add_args a = {.host_path = host_path, .guest_request_json = guest_request_json,
                              .options = options};
    return vsmb_add(vm, &a);
}

int
vsmb_add(struct uvm *vm, const struct vsmb_add_args *a)
{
    cleanup_free char *staging = NULL;
    cleanup_free char *note = NULL;
    static const struct uvm_vsmb_options none;
    const struct uvm_vsmb_options *o = a->options ? a->options : &none;
    const char *host_path = a->host_path;
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add vsmb: host path is empty");
    int rc = check_guest_request(host_path, a->guest_request_json);
    if (rc < 0)
        return rc;
    if (vm->cfg.windows)
        return windows_add(vm, a, o);

    cleanup_free char *real = NULL;
    cleanup_close int dirfd = -1;
    rc = share_resolve_dir("add vsmb", host_path, &dirfd, &real);
    if (rc < 0)
        return rc;
    if (access(VIRTIOFSD, X_OK) < 0)
        return uvm_error(UVM_E_NOT_SUPPORTED, "add vsmb '%s': %s is not installed (Debian: "
                         "qemu-system-common)",
                         host_path, VIRTIOFSD);
    pthread_mutex_lock(&vm->lock);
    struct vsmb_share *s;
    for (;;) {
        rc = uvm_check_running(vm, "add vsmb");
        if (rc < 0)
            goto out_unlock;
        s = find(vm, real);
        if (!s || s->state == SHARE_READY)
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    if (s) {
        rc = share_ref(vm, s, a, &note);
        goto out_unlock;
    }
    char name[24];
    if ((rc = name_take(vm, a, name)) < 0)
        goto out_unlock;
    int slot = hotslot_take(vm);
    if (slot < 0) {
        rc = uvm_error(UVM_E_NO_AVAILABLE_LOCATION, "add vsmb '%s': all %u hot-plug slots are in "
                       "use",
                       host_path, hotslot_count(vm));
        goto out_unlock;
    }
    s = share_new(real, o, a->guest_request_json, name);
    s->slot = slot;
    s->state = SHARE_ADDING;
    LIST_INSERT_HEAD(&vm->vsmb, s, link);
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    int stagingfd = vm->vsmb_dirfd; /* open until close */
    staging = xasprintf("%s/" VSMB_STAGING_DIR, vm->rd.path);
    pthread_mutex_unlock(&vm->lock);

    rc = linux_attach(vm, q, b, s, dirfd, stagingfd, staging, a->guest);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "add vsmb '%s'", host_path);
        hotslot_put(vm, (unsigned)s->slot);
        LIST_REMOVE(s, link);
        share_free(s);
    } else {
        s->state = SHARE_READY;
        s->refs = 1;
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    log_note(vm, note);
    return rc;
}

static int do_remove_vsmb(struct uvm *vm, const char *host_path);

int
uvm_remove_vsmb(struct uvm *vm, const char *host_path)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove vsmb: vm is NULL");
    int rc = uvm_call_enter(vm, "remove vsmb");
    if (rc == 0) {
        rc = do_remove_vsmb(vm, host_path);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_remove_vsmb(struct uvm *vm, const char *host_path)
{
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove vsmb: host path is empty");
    return vsmb_remove(vm, host_path, NULL, NULL);
}

/* The caller's GuestRequest of a uvm_modify Remove, before the share goes. */
static int
guest_detach(struct bridge *b, const struct guest_part *g)
{
    if (!g || !g->request)
        return 0;
    return bridge_modify(b, g->request, deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

int
vsmb_remove(struct uvm *vm, const char *path, const char *name, const struct guest_part *guest)
{
    cleanup_free char *staging = NULL;
    cleanup_free char *note = NULL;
    const char *host_path = path ? path : name;
    cleanup_free char *key = !path ? NULL : vm->cfg.windows ? xstrdup(path) : share_key(path);
    pthread_mutex_lock(&vm->lock);
    struct vsmb_share *s;
    int rc;
    for (;;) {
        if (!vm->cfg.windows && (rc = uvm_check_running(vm, "remove vsmb")) < 0)
            goto out_unlock;
        s = key ? find(vm, key) : find_name(vm, name);
        if (!s || s->state == SHARE_READY)
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    if (!s) {
        rc = uvm_error(UVM_E_NOT_ATTACHED, "%s is not present as a VSMB share in %s, cannot "
                       "remove",
                       host_path, vm->cfg.id);
        goto out_unlock;
    }
    if (s->refs > 1) {
        s->refs--;
        rc = 0;
        goto out_unlock;
    }
    if (vm->cfg.windows) {
        rc = document_update(vm, NULL, s->name);
        if (rc == 0) {
            LIST_REMOVE(s, link);
            share_free(s);
        }
        goto out_unlock;
    }
    note = check_daemon(vm, s);
    s->state = SHARE_REMOVING;
    bool lazy = s->broken;
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    int stagingfd = vm->vsmb_dirfd;
    staging = xasprintf("%s/" VSMB_STAGING_DIR, vm->rd.path);
    pthread_mutex_unlock(&vm->lock);
    log_note(vm, note);
    free(steal_ptr(&note));

    /* A dead daemon never answers: the guest aborts the connection and detaches lazily. Linux
     * 6.1 cannot then release the device (it waits for the requests queued to the dead daemon),
     * so it stays plugged and its slot is lost, said in a warning. */
    rc = guest_detach(b, guest);
    if (rc == 0)
        rc = guest_request(b, "Remove", s, lazy);
    if (rc == 0 && !lazy)
        rc = host_unplug(q, s);
    if (rc == 0) /* the daemon exits once QEMU lets go of the socket */
        host_release(vm, s, stagingfd, staging, DAEMON_EXIT_MS);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "failed to remove vsmb share %s from %s",
                            host_path, vm->cfg.id);
        s->state = SHARE_READY;
    } else {
        if (lazy)
            note = xasprintf("VSMB share %s removed after its virtiofsd died; its device stays "
                             "plugged (the guest kernel cannot release it) and hot-plug slot %d "
                             "stays taken",
                             s->name, s->slot);
        else
            hotslot_put(vm, (unsigned)s->slot);
        LIST_REMOVE(s, link);
        share_free(s);
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    log_note(vm, note);
    return rc;
}

static int do_get_vsmb_uvm_path(struct uvm *vm, const char *host_path, char **uvm_path);

int
uvm_get_vsmb_uvm_path(struct uvm *vm, const char *host_path, char **uvm_path)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "get vsmb uvm path: vm is NULL");
    int rc = uvm_call_enter(vm, "get vsmb uvm path");
    if (rc == 0) {
        rc = do_get_vsmb_uvm_path(vm, host_path, uvm_path);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_get_vsmb_uvm_path(struct uvm *vm, const char *host_path, char **uvm_path)
{
    if (uvm_path)
        *uvm_path = NULL;
    if (!vm || !uvm_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "get vsmb uvm path: vm or uvm_path is NULL");
    if (!host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "no hostPath passed to GetVSMBUvmPath");
    cleanup_free char *key = vm->cfg.windows ? xstrdup(host_path) : share_key(host_path);
    cleanup_free char *note = NULL;
    pthread_mutex_lock(&vm->lock);
    struct vsmb_share *s = find(vm, key);
    int rc = 0;
    if (!s || s->state == SHARE_ADDING) {
        rc = uvm_error(UVM_E_NOT_FOUND, "%s not found as VSMB share in %s", host_path, vm->cfg.id);
    } else {
        if (s->state == SHARE_READY)
            note = check_daemon(vm, s);
        *uvm_path = vm->cfg.windows ? xasprintf(VSMB_WINDOWS_PREFIX "%s", s->name)
                                    : xasprintf(VSMB_GUEST_DIR "/%s", s->name);
    }
    pthread_mutex_unlock(&vm->lock);
    log_note(vm, note);
    return rc;
}

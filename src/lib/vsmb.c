/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VSMB shares (hcsshim AddVSMB / RemoveVSMB / GetVSMBUvmPath).
 *
 * Windows VM (cannot boot here): hcsshim's bookkeeping, and the share goes into the VM document
 * (VirtualSmb.Shares), which is what HCS would be given.
 * Linux VM (beyond hcsshim): a share is virtio-fs. Add (new host path): record as adding ->
 *     unlock -> bind the directory (read-only when asked) at <rundir>/vsmb/<name> -> start
 *     virtiofsd on it (one daemon per share, watched through a pidfd) and wait for its socket ->
 *     QMP chardev-add + device_add vhost-user-fs-pci (tag <name>) on a hot-plug slot -> guest
 *     VirtioFs Add (mount at /run/vsmb/<name>) -> lock -> ready. Failures undo in reverse.
 * Remove (last reference): guest VirtioFs Remove (a lazy detach when the daemon died) ->
 *     device_del + DEVICE_DELETED -> chardev-remove -> the daemon exits (killed after a grace
 *     period) and is reaped -> unbind.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

#define VIRTIOFSD "/usr/lib/qemu/virtiofsd"
#define VSMB_GUEST_DIR "/run/vsmb"
#define VSMB_WINDOWS_PREFIX "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\"
#define DAEMON_READY_MS 10000u
#define DAEMON_EXIT_MS 5000u
#define DEVICE_DELETED_TIMEOUT_MS 10000u

/* --- bookkeeping ---------------------------------------------------------------------------- */

static void
share_free(struct vsmb_share *s)
{
    if (s->pidfd >= 0)
        close(s->pidfd);
    free(s->host_path);
    free(s->guest_request);
    free(s);
}

/* Kill and reap a daemon (no wait beyond the kill: used at close, QEMU is gone). */
static void
daemon_reap(struct vsmb_share *s, unsigned grace_ms)
{
    if (s->daemon <= 0)
        return;
    struct pollfd p = {.fd = s->pidfd, .events = POLLIN};
    if (s->pidfd < 0 || poll(&p, 1, (int)grace_ms) <= 0)
        kill(s->daemon, SIGKILL);
    while (waitpid(s->daemon, NULL, 0) < 0 && errno == EINTR)
        ;
    s->daemon = 0;
    if (s->pidfd >= 0)
        close(s->pidfd);
    s->pidfd = -1;
}

void
vsmb_release_all(struct uvm *vm)
{
    while (!LIST_EMPTY(&vm->vsmb)) {
        struct vsmb_share *s = LIST_FIRST(&vm->vsmb);
        LIST_REMOVE(s, link);
        daemon_reap(s, 0);
        share_free(s);
    }
    for (size_t i = 0; i < vm->n_old_documents; i++)
        free(vm->old_documents[i]);
    free(vm->old_documents);
    vm->old_documents = NULL;
    vm->n_old_documents = 0;
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
 * here, reported once). */
static void
check_daemon(struct uvm *vm, struct vsmb_share *s)
{
    if (s->daemon <= 0 || s->broken)
        return;
    struct pollfd p = {.fd = s->pidfd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return;
    int status = 0;
    while (waitpid(s->daemon, &status, 0) < 0 && errno == EINTR)
        ;
    s->daemon = 0;
    s->broken = true;
    uvm_log(UVM_LOG_WARNING, vm->cfg.id,
            "VSMB share %s ('%s'): virtiofsd exited (status 0x%x): the share is broken; remove "
            "it",
            s->name, s->host_path, status);
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
windows_add(struct uvm *vm, const char *host_path, const char *guest_request,
            const struct uvm_vsmb_options *o)
{
    json_t *path = json_string(host_path); /* NULL: not UTF-8, cannot go into the document */
    if (!path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add vsmb '%s': the path is not UTF-8", host_path);
    pthread_mutex_lock(&vm->lock);
    int rc = 0;
    struct vsmb_share *s = find(vm, host_path);
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->host_path = xstrdup(host_path);
        snprintf(s->name, sizeof(s->name), "s%llx", (unsigned long long)++vm->vsmb_counter);
        s->options = *o;
        s->guest_request = guest_request ? xstrdup(guest_request) : NULL;
        s->slot = -1;
        s->pidfd = -1;
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
spawn_daemon(struct uvm *vm, struct vsmb_share *s, const char *source, const char *sock,
             const char *log)
{
    const struct uvm_vsmb_options *o = &s->options;
    cleanup_free char *src_opt = xasprintf("source=%s", source);
    cleanup_free char *sock_opt = xasprintf("--socket-path=%s", sock);
    const char *cache = o->non_cache_io || o->no_directmap ? "cache=none"
                        : o->cache_io                      ? "cache=always"
                                                           : "cache=auto";
    const char *argv[16] = {VIRTIOFSD, sock_opt, "-o", src_opt, "-o", "sandbox=chroot", "-o",
                            cache};
    size_t n = 8;
    if (o->no_locks) {
        argv[n++] = "-o";
        argv[n++] = "no_posix_lock";
        argv[n++] = "-o";
        argv[n++] = "no_flock";
    }
    argv[n] = NULL;
    cleanup_close int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (logfd < 0)
        return uvm_error_errno(-errno, "virtiofsd log '%s'", log);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return uvm_error_errno(-errno, "start virtiofsd for '%s'", s->host_path);
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(127);
        execv(VIRTIOFSD, (char *const *)argv);
        _exit(127);
    }
    s->daemon = pid;
    s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    uvm_log(UVM_LOG_DEBUG, vm->cfg.id, "VSMB share %s: virtiofsd pid %d on %s", s->name, (int)pid,
            source);
    return 0;
}

/* virtiofsd logs this once its socket is bound and listening (QEMU 7.2, fuse_virtio.c). */
#define DAEMON_LISTENING "Waiting for vhost-user socket connection"

static bool
log_says_listening(const char *log)
{
    char buf[4096];
    cleanup_close int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strstr(buf, DAEMON_LISTENING) != NULL;
}

/* Wait until the daemon listens (its log says so: the socket file alone appears at bind(), before
 * listen()) or exits; event-driven with inotify on its directory. */
static int
wait_socket(struct vsmb_share *s, const char *dir, const char *sock, const char *log)
{
    cleanup_close int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (in < 0 || inotify_add_watch(in, dir, IN_CREATE | IN_MODIFY | IN_MOVED_TO) < 0)
        return uvm_error_errno(-errno, "watch '%s'", dir);
    int64_t deadline = deadline_after_ms(DAEMON_READY_MS);
    for (;;) {
        struct stat st;
        if (log_says_listening(log) && stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
            return 0;
        struct pollfd p[2] = {{.fd = in, .events = POLLIN}, {.fd = s->pidfd, .events = POLLIN}};
        int r = poll(p, s->pidfd >= 0 ? 2 : 1, deadline_poll_ms(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return uvm_error(UVM_E_TIMEOUT, "virtiofsd for '%s' did not create %s within %u ms",
                             s->host_path, sock, DAEMON_READY_MS);
        if (p[1].revents) {
            cleanup_free char *tail = rundir_tail(NULL, log, 2);
            return uvm_error(UVM_E_HYPERVISOR, "virtiofsd for '%s' exited at start%s%s",
                             s->host_path, *tail ? ": " : "", tail);
        }
        char buf[4096];
        while (read(in, buf, sizeof(buf)) > 0)
            ;
    }
}

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

/* Everything of a linux add outside the lock; undone on failure. */
static int
linux_attach(struct uvm *vm, struct qmp *q, struct bridge *b, struct vsmb_share *s,
             const char *real, const char *rundir)
{
    cleanup_free char *source = NULL;
    cleanup_free char *dir = xasprintf("%s/vsmb", rundir);
    source = xasprintf("%s/%s", dir, s->name);
    cleanup_free char *sock = xasprintf("%s/%s.sock", dir, s->name);
    cleanup_free char *log = xasprintf("%s/%s.log", dir, s->name);
    int rc = share_bind(real, source, s->options.read_only);
    if (rc < 0)
        return rc;
    rc = spawn_daemon(vm, s, source, sock, log);
    if (rc == 0)
        rc = wait_socket(s, dir, sock, log);
    if (rc == 0) {
        rc = host_plug(vm, q, s, sock);
        if (rc == 0) {
            rc = guest_request(b, "Add", s, false);
            if (rc < 0) {
                cleanup_free char *msg = xstrdup(uvm_last_error());
                if (host_unplug(q, s) < 0)
                    uvm_log(UVM_LOG_WARNING, vm->cfg.id, "VSMB share %s: unplug failed: %s",
                            s->name, uvm_last_error());
                uvm_error(rc, "%s", msg);
            }
        }
    }
    if (rc < 0) {
        daemon_reap(s, 0);
        share_unbind(source);
        unlink(sock);
    }
    return rc;
}

int
uvm_add_vsmb(struct uvm *vm, const char *host_path, const char *guest_request_json,
             const struct uvm_vsmb_options *options)
{
    cleanup_free char *rundir = NULL;
    static const struct uvm_vsmb_options none;
    const struct uvm_vsmb_options *o = options ? options : &none;
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add vsmb: host path is empty");
    if (guest_request_json) {
        json_error_t err;
        json_t *j = json_loads(guest_request_json, 0, &err);
        json_decref(j);
        if (!j)
            return uvm_error(UVM_E_INVALID_ARGUMENT, "add vsmb '%s': guest request is not JSON: %s",
                             host_path, err.text);
    }
    if (vm->cfg.windows)
        return windows_add(vm, host_path, guest_request_json, o);

    cleanup_free char *real = NULL;
    int rc = share_resolve_dir("add vsmb", host_path, &real);
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
        check_daemon(vm, s);
        if (s->broken) {
            rc = uvm_error(UVM_E_HYPERVISOR, "add vsmb '%s': share %s is broken (its virtiofsd "
                           "exited); remove it first",
                           host_path, s->name);
            goto out_unlock;
        }
        s->refs++;
        rc = 0;
        goto out_unlock;
    }
    int slot = hotslot_take(vm);
    if (slot < 0) {
        rc = uvm_error(UVM_E_NO_AVAILABLE_LOCATION, "add vsmb '%s': all %u hot-plug slots are in "
                       "use",
                       host_path, hotslot_count(vm));
        goto out_unlock;
    }
    s = xcalloc(1, sizeof(*s));
    s->host_path = xstrdup(real);
    snprintf(s->name, sizeof(s->name), "s%llx", (unsigned long long)++vm->vsmb_counter);
    s->options = *o;
    s->guest_request = guest_request_json ? xstrdup(guest_request_json) : NULL;
    s->slot = slot;
    s->pidfd = -1;
    s->state = SHARE_ADDING;
    LIST_INSERT_HEAD(&vm->vsmb, s, link);
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    rundir = xstrdup(vm->rd.path);
    pthread_mutex_unlock(&vm->lock);

    rc = linux_attach(vm, q, b, s, real, rundir);

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
    return rc;
}

int
uvm_remove_vsmb(struct uvm *vm, const char *host_path)
{
    cleanup_free char *source = NULL;
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove vsmb: host path is empty");
    char real[4096];
    const char *key = vm->cfg.windows || !realpath(host_path, real) ? host_path : real;
    pthread_mutex_lock(&vm->lock);
    struct vsmb_share *s;
    int rc;
    for (;;) {
        if (!vm->cfg.windows && (rc = uvm_check_running(vm, "remove vsmb")) < 0)
            goto out_unlock;
        s = find(vm, key);
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
    check_daemon(vm, s);
    s->state = SHARE_REMOVING;
    bool lazy = s->broken;
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    source = xasprintf("%s/vsmb/%s", vm->rd.path, s->name);
    pthread_mutex_unlock(&vm->lock);

    /* A dead daemon never answers: the guest aborts the connection and detaches lazily. Linux
     * 6.1 cannot then release the device (it waits for the requests queued to the dead daemon),
     * so it stays plugged and its slot is lost, said in a warning. */
    rc = guest_request(b, "Remove", s, lazy);
    if (rc == 0 && !lazy)
        rc = host_unplug(q, s);
    if (rc == 0) {
        daemon_reap(s, DAEMON_EXIT_MS); /* it exits once QEMU lets go of the socket */
        share_unbind(source);
    }

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "failed to remove vsmb share %s from %s",
                            host_path, vm->cfg.id);
        s->state = SHARE_READY;
    } else {
        if (lazy)
            uvm_log(UVM_LOG_WARNING, vm->cfg.id,
                    "VSMB share %s removed after its virtiofsd died; its device stays plugged "
                    "(the guest kernel cannot release it) and hot-plug slot %d stays taken",
                    s->name, s->slot);
        else
            hotslot_put(vm, (unsigned)s->slot);
        LIST_REMOVE(s, link);
        share_free(s);
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

int
uvm_get_vsmb_uvm_path(struct uvm *vm, const char *host_path, char **uvm_path)
{
    if (uvm_path)
        *uvm_path = NULL;
    if (!vm || !uvm_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "get vsmb uvm path: vm or uvm_path is NULL");
    if (!host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "no hostPath passed to GetVSMBUvmPath");
    char real[4096];
    const char *key = vm->cfg.windows || !realpath(host_path, real) ? host_path : real;
    pthread_mutex_lock(&vm->lock);
    struct vsmb_share *s = find(vm, key);
    int rc = 0;
    if (!s || s->state == SHARE_ADDING) {
        rc = uvm_error(UVM_E_NOT_FOUND, "%s not found as VSMB share in %s", host_path, vm->cfg.id);
    } else {
        if (s->state == SHARE_READY)
            check_daemon(vm, s);
        *uvm_path = vm->cfg.windows ? xasprintf(VSMB_WINDOWS_PREFIX "%s", s->name)
                                    : xasprintf(VSMB_GUEST_DIR "/%s", s->name);
    }
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

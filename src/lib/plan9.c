/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Plan9 shares (hcsshim AddPlan9 / RemovePlan9).
 *
 * QEMU 7.2 cannot add a 9p fsdev at run time, so every linux VM exports one directory for its
 * whole life: <rundir>/9p (tag "uvm9p", security_model=mapped-xattr: guest owners, modes and
 * device nodes are xattrs on the host, never host owners, modes or devices). A share is the host
 * directory, opened once, bind-mounted (share.h: fresh entry, by fd, nosuid, nodev, read-only
 * when asked: the host enforces it) at <rundir>/9p/s<n>; the guest mounts the export once and
 * bind-mounts s<n> on the share's uvm_path (MappedDirectory). One VM's export only ever holds
 * its own shares.
 *
 * Add (new host path): record as adding -> unlock -> host bind -> guest MappedDirectory Add ->
 *     lock -> ready; a failure undoes the bind. Re-adds take a reference (a different uvm_path or
 *     read_only is ignored, as hcsshim).
 * Remove (last reference): guest MappedDirectory Remove -> host unbind (only the mount we made:
 *     its id is checked). A guest failure keeps the share as it was, so a retry works.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "proto.h"
#include "share.h"
#include "timeutil.h"
#include "uvm-internal.h"

/* Unbind a share, saying so when it cannot be done (the guest is using the share no more). */
static void
unbind(struct uvm *vm, int stagingfd, const char *staging, const struct plan9_share *s)
{
    if (share_unbind(stagingfd, staging, s->name, s->mnt_id) < 0)
        uvm_log(UVM_LOG_WARNING, vm->cfg.id, "Plan9 share %s: %s", s->name, uvm_last_error());
}

static void
share_free(struct plan9_share *s)
{
    free(s->host_path);
    free(s->uvm_path);
    free(s);
}

void
plan9_release_all(struct uvm *vm)
{
    while (!LIST_EMPTY(&vm->plan9)) {
        struct plan9_share *s = LIST_FIRST(&vm->plan9);
        LIST_REMOVE(s, link);
        share_free(s); /* the binds go with the runtime directory */
    }
    if (vm->plan9_dirfd >= 0)
        close(vm->plan9_dirfd);
    vm->plan9_dirfd = -1;
}

/* Lock held. */
static struct plan9_share *
find(struct uvm *vm, const char *host_path)
{
    struct plan9_share *s;
    LIST_FOREACH(s, &vm->plan9, link)
        if (!strcmp(s->host_path, host_path))
            return s;
    return NULL;
}

static int
guest_request(struct bridge *b, const char *type, const struct plan9_share *s, uint64_t port)
{
    json_t *settings = json_pack("{s:s, s:s, s:I, s:b}", "MountPath", s->uvm_path, "ShareName",
                                 s->name, "Port", (json_int_t)port, "ReadOnly", s->read_only);
    json_t *req = json_pack("{s:{s:s, s:s, s:o}}", "Request", "ResourceType", "MappedDirectory",
                            "RequestType", type, "Settings", settings);
    return bridge_call(b, PROTO_REQ_MODIFY_SETTINGS, req, NULL,
                       deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

static uint64_t
port_of(const struct plan9_share *s)
{
    return strtoull(s->name + 1, NULL, 10);
}

static int do_add_plan9(struct uvm *vm, const char *host_path, const char *uvm_path,
                        bool read_only);

int
uvm_add_plan9(struct uvm *vm, const char *host_path, const char *uvm_path, bool read_only)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add plan9: vm is NULL");
    int rc = uvm_call_enter(vm, "add plan9");
    if (rc == 0) {
        rc = do_add_plan9(vm, host_path, uvm_path, read_only);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_add_plan9(struct uvm *vm, const char *host_path, const char *uvm_path, bool read_only)
{
    cleanup_free char *staging = NULL;
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add plan9: host path is empty");
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "add plan9 '%s': not supported for Windows "
                         "utility VMs",
                         host_path);
    if (!uvm_path || !*uvm_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "uvmPath must be passed to AddPlan9");
    json_t *up = json_string(uvm_path); /* NULL: not UTF-8 */
    json_decref(up);
    if (uvm_path[0] != '/' || !up || strlen(uvm_path) > 4096)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add plan9 '%s': guest path '%s' is not an "
                         "absolute path",
                         host_path, uvm_path);
    cleanup_free char *real = NULL;
    cleanup_close int dirfd = -1;
    int rc = share_resolve_dir("add plan9", host_path, &dirfd, &real);
    if (rc < 0)
        return rc;

    pthread_mutex_lock(&vm->lock);
    struct plan9_share *s;
    for (;;) {
        rc = uvm_check_running(vm, "add plan9");
        if (rc < 0)
            goto out_unlock;
        s = find(vm, real);
        if (!s || s->state == SHARE_READY)
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    if (s) {
        s->refs++;
        rc = 0;
        goto out_unlock;
    }
    s = xcalloc(1, sizeof(*s));
    s->host_path = xstrdup(real);
    s->uvm_path = xstrdup(uvm_path);
    s->read_only = read_only;
    s->state = SHARE_ADDING;
    snprintf(s->name, sizeof(s->name), "s%llu", (unsigned long long)++vm->plan9_counter);
    LIST_INSERT_HEAD(&vm->plan9, s, link);
    struct bridge *b = vm->bridge;
    int stagingfd = vm->plan9_dirfd; /* open until close */
    staging = xasprintf("%s/" ARGV_PLAN9_DIR, vm->rd.path);
    pthread_mutex_unlock(&vm->lock);

    uint64_t mnt_id = 0;
    rc = share_bind(stagingfd, staging, s->name, dirfd, host_path, read_only, &mnt_id);
    if (rc == 0) {
        s->mnt_id = mnt_id; /* nobody reads an adding share's mount */
        rc = guest_request(b, "Add", s, port_of(s));
        if (rc < 0) {
            cleanup_free char *msg = xstrdup(uvm_last_error());
            unbind(vm, stagingfd, staging, s);
            uvm_error(rc, "%s", msg);
        }
    }

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "add plan9 '%s' at '%s'", host_path,
                            uvm_path);
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

static int do_remove_plan9(struct uvm *vm, const char *host_path);

int
uvm_remove_plan9(struct uvm *vm, const char *host_path)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove plan9: vm is NULL");
    int rc = uvm_call_enter(vm, "remove plan9");
    if (rc == 0) {
        rc = do_remove_plan9(vm, host_path);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_remove_plan9(struct uvm *vm, const char *host_path)
{
    cleanup_free char *staging = NULL;
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove plan9: host path is empty");
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "remove plan9 '%s': not supported for Windows "
                         "utility VMs",
                         host_path);
    cleanup_free char *key = share_key(host_path);
    pthread_mutex_lock(&vm->lock);
    struct plan9_share *s;
    int rc;
    for (;;) {
        rc = uvm_check_running(vm, "remove plan9");
        if (rc < 0)
            goto out_unlock;
        s = find(vm, key);
        if (!s || s->state == SHARE_READY)
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    if (!s) {
        rc = uvm_error(UVM_E_NOT_ATTACHED, "%s is not present as a Plan9 share in %s, cannot "
                       "remove",
                       host_path, vm->cfg.id);
        goto out_unlock;
    }
    if (s->refs > 1) {
        s->refs--;
        rc = 0;
        goto out_unlock;
    }
    s->state = SHARE_REMOVING;
    struct bridge *b = vm->bridge;
    int stagingfd = vm->plan9_dirfd;
    staging = xasprintf("%s/" ARGV_PLAN9_DIR, vm->rd.path);
    pthread_mutex_unlock(&vm->lock);

    rc = guest_request(b, "Remove", s, port_of(s));
    if (rc == 0)
        unbind(vm, stagingfd, staging, s);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "failed to remove plan9 share %s from %s",
                            host_path, vm->cfg.id);
        s->state = SHARE_READY; /* still shared: a retry works */
    } else {
        LIST_REMOVE(s, link);
        share_free(s);
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

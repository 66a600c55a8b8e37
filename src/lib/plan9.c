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

/* Lock held. */
static struct plan9_share *
find_name(struct uvm *vm, const char *name)
{
    struct plan9_share *s;
    LIST_FOREACH(s, &vm->plan9, link)
        if (!strcmp(s->name, name))
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

/* The guest part: MappedDirectory for the typed calls (none when the share has no guest path),
 * else the caller's. */
static int
guest_part(struct bridge *b, const struct guest_part *g, const char *type,
           const struct plan9_share *s)
{
    if (!g || !g->custom)
        return *s->uvm_path ? guest_request(b, type, s, port_of(s)) : 0;
    if (!g->request)
        return 0;
    return bridge_modify(b, g->request, deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

/* Lock held: a new share record named for a->port (the counter moves past it so that the typed
 * calls never take that name), or the next counter value. */
static struct plan9_share *
share_new(struct uvm *vm, const struct plan9_add_args *a, const char *real, int *rc)
{
    char name[24];
    uint64_t n = a->port ? a->port : ++vm->plan9_counter;
    snprintf(name, sizeof(name), "s%llu", (unsigned long long)n);
    if (find_name(vm, name)) {
        *rc = uvm_error(UVM_E_ALREADY_ATTACHED, "add plan9 '%s': port %llu is in use",
                        a->host_path, (unsigned long long)n);
        return NULL;
    }
    if (n > vm->plan9_counter)
        vm->plan9_counter = n;
    struct plan9_share *s = xcalloc(1, sizeof(*s));
    s->host_path = xstrdup(real);
    s->uvm_path = xstrdup(a->uvm_path ? a->uvm_path : "");
    s->read_only = a->read_only;
    s->state = SHARE_ADDING;
    memcpy(s->name, name, sizeof(name));
    LIST_INSERT_HEAD(&vm->plan9, s, link);
    return s;
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
    if (!uvm_path || !*uvm_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "uvmPath must be passed to AddPlan9");
    struct plan9_add_args a = {.host_path = host_path, .uvm_path = uvm_path,
                               .read_only = read_only};
    return plan9_add(vm, &a);
}

static int
add_check(struct uvm *vm, const struct plan9_add_args *a)
{
    if (!vm || !a->host_path || !*a->host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add plan9: host path is empty");
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "add plan9 '%s': not supported for Windows "
                         "utility VMs",
                         a->host_path);
    const char *up = a->uvm_path ? a->uvm_path : "";
    json_t *j = json_string(up); /* NULL: not UTF-8 */
    json_decref(j);
    if ((*up && up[0] != '/') || !j || strlen(up) > 4096)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add plan9 '%s': guest path '%s' is not an "
                         "absolute path",
                         a->host_path, up);
    return 0;
}

int
plan9_add(struct uvm *vm, const struct plan9_add_args *a)
{
    cleanup_free char *staging = NULL;
    int rc = add_check(vm, a);
    if (rc < 0)
        return rc;
    cleanup_free char *real = NULL;
    cleanup_close int dirfd = -1;
    rc = share_resolve_dir("add plan9", a->host_path, &dirfd, &real);
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
    if (s && a->port && port_of(s) != a->port) {
        rc = uvm_error(UVM_E_ALREADY_ATTACHED, "add plan9 '%s': already shared on port %llu",
                       a->host_path, (unsigned long long)port_of(s));
        goto out_unlock;
    }
    if (s) {
        s->refs++;
        rc = 0;
        goto out_unlock;
    }
    s = share_new(vm, a, real, &rc);
    if (!s)
        goto out_unlock;
    struct bridge *b = vm->bridge;
    int stagingfd = vm->plan9_dirfd; /* open until close */
    staging = xasprintf("%s/" ARGV_PLAN9_DIR, vm->rd.path);
    pthread_mutex_unlock(&vm->lock);

    uint64_t mnt_id = 0;
    rc = share_bind(stagingfd, staging, s->name, dirfd, a->host_path, a->read_only, &mnt_id);
    if (rc == 0) {
        s->mnt_id = mnt_id; /* nobody reads an adding share's mount */
        rc = guest_part(b, a->guest, "Add", s);
        if (rc < 0) {
            cleanup_free char *msg = xstrdup(uvm_last_error());
            unbind(vm, stagingfd, staging, s);
            uvm_error(rc, "%s", msg);
        }
    }

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "add plan9 '%s' at '%s'", a->host_path,
                            s->uvm_path);
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
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove plan9: host path is empty");
    return plan9_remove(vm, host_path, 0, NULL);
}

int
plan9_remove(struct uvm *vm, const char *host_path, uint64_t port, const struct guest_part *guest)
{
    cleanup_free char *staging = NULL;
    char name[24];
    snprintf(name, sizeof(name), "s%llu", (unsigned long long)port);
    char what[48];
    snprintf(what, sizeof(what), "port %llu", (unsigned long long)port);
    const char *shown = host_path ? host_path : what;
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "remove plan9 '%s': not supported for Windows "
                         "utility VMs",
                         shown);
    cleanup_free char *key = host_path ? share_key(host_path) : NULL;
    pthread_mutex_lock(&vm->lock);
    struct plan9_share *s;
    int rc;
    for (;;) {
        rc = uvm_check_running(vm, "remove plan9");
        if (rc < 0)
            goto out_unlock;
        s = key ? find(vm, key) : find_name(vm, name);
        if (!s || s->state == SHARE_READY)
            break;
        pthread_cond_wait(&vm->cond, &vm->lock);
    }
    if (!s) {
        rc = uvm_error(UVM_E_NOT_ATTACHED, "%s is not present as a Plan9 share in %s, cannot "
                       "remove",
                       shown, vm->cfg.id);
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

    rc = guest_part(b, guest, "Remove", s);
    if (rc == 0)
        unbind(vm, stagingfd, staging, s);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "failed to remove plan9 share %s from %s",
                            shown, vm->cfg.id);
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

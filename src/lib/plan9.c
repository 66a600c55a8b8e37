/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Plan9 shares (hcsshim AddPlan9 / RemovePlan9), a resource kind (res.h).
 *
 * QEMU 7.2 cannot add a 9p fsdev at run time, so every linux VM exports one directory for its
 * whole life: <rundir>/9p (tag "uvm9p", security_model=none, served by the jailed QEMU under a
 * file-mode filter: no set-id modes, no device nodes, no chown to others). A share is the host
 * directory, opened once, bind-mounted (share.h: fresh entry, by fd, nosuid, nodev, read-only
 * when asked: the host enforces it) at <rundir>/9p/s<n>; the guest mounts the export once and
 * bind-mounts s<n> on the share's uvm_path (MappedDirectory). One VM's export only ever holds
 * its own shares.
 *
 * Add (new host path): host bind -> guest MappedDirectory Add -> ready; a failure undoes the bind. Re-adds take a reference (a different uvm_path or
 *     read_only is ignored, as hcsshim).
 * Remove (last reference): guest MappedDirectory Remove -> host unbind (only the mount we made:
 *     its id is checked). A guest failure keeps the share as it was, so a retry works.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"
#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "modreq.h"
#include "share.h"

struct plan9_share {
    struct share_rec sh; /* name "s<port>" */
    char *uvm_path;
    bool read_only;
};

#define share(r) ((struct plan9_share *)(r)) /* its struct res is first */

static void
share_free(struct res *r)
{
    free(share(r)->uvm_path);
}

static uint64_t
port_of(const struct plan9_share *s)
{
    return strtoull(s->sh.name + 1, NULL, 10);
}

/* Unbind a share, saying so when it cannot be done (the guest is using the share no more). */
static void
unbind(struct res_txn *t, const struct share_state *st, const struct plan9_share *s)
{
    if (share_unbind(st->dirfd, st->staging, s->sh.name, s->sh.mnt_id) < 0)
        uvm_log(UVM_LOG_WARNING, t->vm->cfg.id, "Plan9 share %s: %s", s->sh.name,
                uvm_last_error());
}

/* The guest part: MappedDirectory for the typed calls (none when the share has no guest path),
 * else the caller's. */
static int
guest_part(struct res_txn *t, const struct guest_part *g, const char *type,
           const struct plan9_share *s)
{
    json_t *typed = NULL;
    if (*s->uvm_path)
        typed = bridge_guest_request(
            "MappedDirectory", type,
            json_pack("{s:s, s:s, s:I, s:b}", "MountPath", s->uvm_path, "ShareName", s->sh.name,
                      "Port", (json_int_t)port_of(s), "ReadOnly", s->read_only));
    return bridge_guest_part(t->bridge, g, typed);
}

/* Lock held: a new share record named for a->port, or the next counter value. */
static struct plan9_share *
share_new(struct uvm *vm, const struct plan9_add_args *a, const char *real, int *rc)
{
    char want[24], name[24];
    snprintf(want, sizeof(want), "s%llu", (unsigned long long)a->port);
    *rc = share_name_take(vm, &plan9_kind, a->port ? want : NULL, false, "add plan9",
                          a->host_path, name);
    if (*rc < 0)
        return NULL;
    struct plan9_share *s = res_new(&plan9_kind, sizeof(*s), real);
    memcpy(s->sh.name, name, sizeof(name));
    s->uvm_path = xstrdup(a->uvm_path ? a->uvm_path : "");
    s->read_only = a->read_only;
    return s;
}

static int
add_check(struct uvm *vm, const struct plan9_add_args *a)
{
    int rc = res_check_path(vm, "add plan9", a->host_path);
    if (rc < 0)
        return rc;
    const char *up = a->uvm_path ? a->uvm_path : "";
    json_t *j = json_string(up); /* NULL: not UTF-8 */
    json_decref(j);
    if ((*up && up[0] != '/') || !j || strlen(up) > 4096)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add plan9 '%s': guest path '%s' is not an "
                         "absolute path",
                         a->host_path, up);
    return 0;
}

/* Bind, then the guest part; the bind is undone when the guest fails. */
static int
attach(struct res_txn *t, struct plan9_share *s, const struct share_state *st, int dirfd,
       const struct guest_part *g)
{
    int rc = share_bind(st->dirfd, st->staging, s->sh.name, dirfd, s->sh.res.key, s->read_only,
                        &s->sh.mnt_id);
    if (rc < 0)
        return rc;
    rc = guest_part(t, g, "Add", s);
    if (rc < 0) {
        struct uvm_error_state es;
        uvm_error_capture(&es);
        unbind(t, st, s);
        uvm_error_restore(&es, rc);
    }
    return rc;
}

/* Lock held: another add of a shared directory takes a reference (on the same port). */
static int
add_again(struct res *r, const struct plan9_add_args *a)
{
    if (a->port && port_of(share(r)) != a->port)
        return uvm_error(UVM_E_ALREADY_ATTACHED, "add plan9 '%s': already shared on port %llu",
                         a->host_path, (unsigned long long)port_of(share(r)));
    r->refs++;
    return 0;
}

int
plan9_add(struct uvm *vm, const struct plan9_add_args *a)
{
    int rc = add_check(vm, a);
    if (rc < 0)
        return rc;
    cleanup_free char *real = NULL;
    cleanup_close int dirfd = -1;
    rc = share_resolve_dir("add plan9", a->host_path, &dirfd, &real);
    if (rc < 0)
        return rc;
    struct res_txn t = RES_TXN(vm, &plan9_kind, "add plan9");
    if ((rc = res_enter(&t, NULL, real)) < 0)
        return rc;
    struct plan9_share *s = t.r ? NULL : share_new(vm, a, real, &rc);
    if (!s)
        return res_leave(&t, t.r ? add_again(t.r, a) : rc);
    const struct share_state *st = share_state(vm, &plan9_kind); /* fixed until close */
    res_txn_fail(&t, "add plan9 '%s' at '%s'", a->host_path, s->uvm_path);
    res_begin(&t, &s->sh.res, RES_ADDING);
    return res_end(&t, attach(&t, s, st, dirfd, a->guest));
}

int
uvm_add_plan9(struct uvm *vm, const char *host_path, const char *uvm_path, bool read_only)
{
    struct plan9_add_args a = {.host_path = host_path, .uvm_path = uvm_path,
                               .read_only = read_only};
    if (vm && (!uvm_path || !*uvm_path))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "uvmPath must be passed to AddPlan9");
    return vm ? UVM_CALL(vm, "add plan9", plan9_add(vm, &a))
              : plan9_add(vm, &a); /* it says what is wrong */
}

int
uvm_remove_plan9(struct uvm *vm, const char *host_path)
{
    int rc = res_check_key(vm, "remove plan9", host_path);
    return rc < 0 ? rc : UVM_CALL(vm, "remove plan9", plan9_remove(vm, host_path, 0, NULL));
}

int
plan9_remove(struct uvm *vm, const char *host_path, uint64_t port, const struct guest_part *guest)
{
    char name[24], what[48];
    snprintf(name, sizeof(name), "s%llu", (unsigned long long)port);
    snprintf(what, sizeof(what), "port %llu", (unsigned long long)port);
    const char *shown = host_path ? host_path : what;
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "remove plan9 '%s': not supported for Windows "
                         "utility VMs",
                         shown);
    cleanup_free char *key = host_path ? share_key(host_path) : NULL;
    struct res_txn t = RES_TXN(vm, &plan9_kind, "remove plan9");
    res_txn_fail(&t, "%s is not present as a Plan9 share in %s, cannot remove", shown,
                 vm->cfg.id);
    int rc = res_remove_enter(&t, key ? NULL : share_find_name, key ? key : name,
                              UVM_E_NOT_ATTACHED);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    const struct share_state *st = share_state(vm, &plan9_kind);
    res_txn_fail(&t, "failed to remove plan9 share %s from %s", shown, vm->cfg.id);
    res_begin(&t, t.r, RES_REMOVING);
    rc = guest_part(&t, guest, "Remove", share(t.r));
    if (rc == 0)
        unbind(&t, st, share(t.r));
    return res_end(&t, rc);
}

/* --- uvm_modify: VirtualMachine/Devices/Plan9/Shares ----------------------------------------- */

/* hcsshim's Plan9ShareFlags. */
#define PLAN9_FLAG_READ_ONLY 0x1u
#define PLAN9_FLAGS_KNOWN (0x1u | 0x4u | 0x8u) /* ReadOnly, LinuxMetadata, CaseSensitive */

/* Our guest finds a Plan9 share by name, s<port>: a MappedDirectory GuestRequest without a
 * ShareName gets it (a copy; the caller's JSON is not changed). */
static json_t *
named_guest(const struct modify_req *r, uint64_t port)
{
    json_t *g = r->guest.request;
    if (!g || strcmp(json_string_value(json_object_get(g, "ResourceType")), "MappedDirectory"))
        return NULL;
    json_t *settings = json_object_get(g, "Settings");
    if (!json_is_object(settings) || json_object_get(settings, "ShareName"))
        return NULL;
    json_t *copy = json_deep_copy(g);
    char name[24];
    snprintf(name, sizeof(name), "s%llu", (unsigned long long)port);
    json_object_set_new(json_object_get(copy, "Settings"), "ShareName", json_string(name));
    return copy;
}

int
plan9_modify(struct uvm *vm, struct modify_req *r)
{
    const char *name = NULL, *path = NULL;
    uint64_t port = 0, flags = 0;
    int rc = modreq_need_settings(r);
    if (rc == 0 && r->add)
        rc = modreq_string(r, "Name", true, &name);
    if (rc == 0 && r->add)
        rc = modreq_string(r, "Path", true, &path);
    if (rc == 0)
        rc = modreq_uint(r, "Port", true, 1, UINT32_MAX, &port);
    if (rc == 0)
        rc = modreq_uint(r, "Flags", false, 0, UINT32_MAX, &flags);
    if (rc < 0)
        return rc;
    if (flags & ~(uint64_t)PLAN9_FLAGS_KNOWN)
        return uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s' %s: Settings.Flags 0x%llx has unknown "
                         "bits",
                         r->id, r->path, (unsigned long long)flags);
    cleanup_json json_t *named = named_guest(r, port);
    struct guest_part g = {.custom = true, .request = named ? named : r->guest.request};
    if (!r->add)
        return modreq_wrap(r, plan9_remove(vm, NULL, port, &g));
    struct plan9_add_args a = {.host_path = path, .port = port,
                               .read_only = flags & PLAN9_FLAG_READ_ONLY,
                               .uvm_path = modreq_guest_setting(r, "MappedDirectory", "MountPath"),
                               .guest = &g};
    return modreq_wrap(r, plan9_add(vm, &a));
}

static const struct share_conf conf = {ARGV_PLAN9_DIR, true};

const struct res_kind plan9_kind = {SHARE_KIND("plan9", &conf), .free = share_free};

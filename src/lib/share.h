/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What Plan9 and VSMB shares have in common: host directories checked once and bind-mounted
 * into the VM's private staging directories, and the bookkeeping of both kinds. */
#ifndef UVM_LIB_SHARE_H
#define UVM_LIB_SHARE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "res.h"
#include "uvm.h"

/* The staging directory of VSMB binds and sockets in the runtime directory (9p: argv.h). */
#define VSMB_STAGING_DIR "vsmb"

/* What a Plan9 and a VSMB share record (res.h) have in common: first in both. */
struct share_rec {
    struct res res;  /* key: the host path, canonical (linux) or as given (windows) */
    char name[24];   /* "s<n>": its entry in the staging directory and its guest name */
    uint64_t mnt_id; /* our bind at <staging>/<name>, 0: none */
};

/* The per-VM state of both share kinds (res_kind_state): the staging directory, made at
 * create and open until close, and the counter that names new shares. */
struct share_state {
    bool made;     /* set up (dirfd -1) */
    int dirfd;     /* -1 until prepared */
    char *staging; /* its path, for messages and unmounting */
    uint64_t counter;
};

struct uvm;
struct res_kind;
extern const struct res_kind plan9_kind, vsmb_kind;

/* The conf (res_kind.conf) of a share kind: its staging directory in the runtime directory,
 * shared (a bind mount of itself, nosuid, nodev, noexec, shared: QEMU's jail sees it as a
 * read-only slave, so the binds below it reach QEMU by propagation) or plain. */
struct share_conf {
    const char *dir;
    bool shared;
};
/* The kinds' prepare hook: the staging directory, created fresh and kept open until close. */
int share_prepare(struct uvm *vm, const struct res_kind *kind);
/* What both share kinds' res_kind say. */
#define SHARE_KIND(name_, conf_) \
    .name = (name_), .conf = (conf_), .prepare = share_prepare, .release = share_release
/* Lock held: the kind's share state (made on first use, dirfd -1). */
struct share_state *share_state(struct uvm *vm, const struct res_kind *kind);
/* The kinds' release hook: close the staging directory, free the state. */
void share_release(struct uvm *vm, void *state);
/* Lock held: the share of t->kind called `name` (res_find_fn), never a broken one. */
struct res *share_find_name(const struct res_txn *t, const void *name);
/* Lock held: a name for a new share: `want` unless taken (then an error naming `host_path`),
 * or (want NULL) "s<next counter>" in decimal or hex. A caller's "s<n>" moves the counter past
 * n, so that the typed calls never take it. */
int share_name_take(struct uvm *vm, const struct res_kind *kind, const char *want, bool hex,
                    const char *what, const char *host_path, char name[24]);
/* Open host_path once (O_PATH; the operator's symlinks are followed): it must be a directory.
 * *fd (owned) and *real, its canonical path (owned, for bookkeeping: the same string
 * share_key gives). Errors name the path. */
int share_resolve_dir(const char *what, const char *host_path, int *fd, char **real);
/* The bookkeeping key of host_path: its canonical path when it can be opened, else a copy. */
char *share_key(const char *host_path);
/* Bind the directory dirfd (not recursively; nosuid, nodev, read-only if asked) on a fresh
 * entry `name` of the staging directory stagingfd (at path `staging`, for messages and
 * unmounting): an existing entry is an error, nothing is followed. *mnt_id: the new mount.
 * Undone on failure. */
int share_bind(int stagingfd, const char *staging, const char *name, int dirfd,
               const char *host_path, bool read_only, uint64_t *mnt_id);
/* Detach the bind `name` if it still is mount mnt_id, then remove the entry. 0 or an error
 * (nothing is detached when the mount there is not ours). */
int share_unbind(int stagingfd, const char *staging, const char *name, uint64_t mnt_id);
/* The mount id (unique when the kernel has them) of dirfd/name, never following a link. */
int share_mount_id(int dirfd, const char *name, uint64_t *id);
struct guest_part;
/* One Plan9 add, for uvm_add_plan9 and uvm_modify. */
struct plan9_add_args {
    const char *host_path;
    const char *uvm_path; /* guest mount point; NULL/"": none (the typed remove then sends no
                           * guest request) */
    bool read_only;       /* enforced by the host bind */
    uint64_t port;        /* hcsshim's Port: the share is "s<port>"; 0: the next counter value */
    const struct guest_part *guest; /* NULL: MappedDirectory Add at uvm_path (typed call) */
};
/* Bind the directory into the VM's 9p export, then the guest part (the bind is undone when it
 * fails). Ref-counted per host path. UVM_E_ALREADY_ATTACHED when the port's name is taken or
 * the directory is shared on another port. */
int plan9_add(struct uvm *vm, const struct plan9_add_args *a);
/* Drop a reference to host_path's share, or (host_path NULL) to the share of port; the last
 * one sends the guest part (NULL: MappedDirectory Remove) and unbinds. */
int plan9_remove(struct uvm *vm, const char *host_path, uint64_t port,
                 const struct guest_part *guest);
/* One VSMB add, for uvm_add_vsmb and uvm_modify. */
struct vsmb_add_args {
    const char *host_path;
    const char *guest_request_json;       /* stored, never sent (hcsshim's AddVSMB) */
    const struct uvm_vsmb_options *options; /* NULL: all false */
    const char *name;                     /* hcsshim's share Name, or NULL: "s<next hex>" */
    const struct guest_part *guest;       /* a GuestRequest sent after the share is mounted at
                                           * /run/vsmb/<name> (undone when it fails), or NULL */
};
/* Share the directory (linux: virtio-fs, mounted in the guest; windows: the document).
 * Ref-counted per host path. UVM_E_ALREADY_ATTACHED when the name is taken or the directory is
 * shared under another name. */
int vsmb_add(struct uvm *vm, const struct vsmb_add_args *a);
/* Drop a reference to the share of path, or (path NULL) the share called name; the last one
 * sends the GuestRequest (if any), unmounts it in the guest and unplugs. */
int vsmb_remove(struct uvm *vm, const char *path, const char *name,
                const struct guest_part *guest);

struct modify_req;
/* uvm_modify handlers (kinds.h): Plan9/Shares, VirtualSmb/Shares. */
int plan9_modify(struct uvm *vm, struct modify_req *r);
int vsmb_modify(struct uvm *vm, struct modify_req *r);

#endif

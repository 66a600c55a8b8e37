/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What Plan9 and VSMB shares have in common: host directories checked once and bind-mounted
 * into the VM's private staging directories, and the bookkeeping of both kinds. */
#ifndef UVM_LIB_SHARE_H
#define UVM_LIB_SHARE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "uvm.h"
#include "virtiofsd.h"

/* The staging directory of VSMB binds and sockets in the runtime directory (9p: argv.h). */
#define VSMB_STAGING_DIR "vsmb"

enum share_state { SHARE_ADDING, SHARE_READY, SHARE_REMOVING };

struct plan9_share {
    LIST_ENTRY(plan9_share) link;
    char *host_path; /* canonical */
    char *uvm_path;
    char name[24]; /* "s<counter>": its directory in the 9p export */
    bool read_only;
    unsigned refs;
    enum share_state state;
    uint64_t mnt_id; /* our bind at <rundir>/9p/<name> */
};

struct vsmb_share {
    LIST_ENTRY(vsmb_share) link;
    char *host_path; /* canonical (linux) or as given (windows) */
    char name[24];   /* "s<hex counter>" */
    struct uvm_vsmb_options options;
    char *guest_request; /* stored, never sent (hcsshim) */
    unsigned refs;
    enum share_state state;
    /* linux: virtio-fs */
    int slot;               /* hot-plug slot, -1 */
    uint64_t mnt_id;        /* our bind at <rundir>/vsmb/<name> */
    struct virtiofsd daemon;
    bool broken; /* the daemon died while the share was in use */
};

struct uvm;
/* At create (linux): the staging directories of the runtime directory, created fresh and kept
 * open in the VM: 9p/ (a bind mount of itself, nosuid, nodev, noexec, shared: QEMU's jail sees
 * it as a read-only slave, so the binds below it reach QEMU by propagation) and vsmb/. Undone
 * on failure. */
int shares_prepare(struct uvm *vm);
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
void plan9_release_all(struct uvm *vm);

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
void vsmb_release_all(struct uvm *vm);

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
/* The VM is gone (terminated or exited): stop and reap every virtiofsd now rather than at
 * close. Takes the VM lock only to take the daemons out. */
void vsmb_stop_daemons(struct uvm *vm);

#endif

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

enum share_state { SHARE_ADDING, SHARE_READY, SHARE_REMOVING };

struct plan9_share {
    LIST_ENTRY(plan9_share) link;
    char *host_path; /* canonical */
    char *uvm_path;
    char name[24]; /* "s<counter>": its directory in the 9p export */
    bool read_only;
    unsigned refs;
    enum share_state state;
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
    int slot;        /* hot-plug slot, -1 */
    pid_t daemon;    /* virtiofsd, 0 when reaped */
    int pidfd;       /* -1 */
    bool broken;     /* the daemon died while the share was in use */
};

struct uvm;
/* At create (linux): the staging directories 9p/ and vsmb/ of the runtime directory. */
int shares_prepare(struct uvm *vm);
/* Resolve host_path once (symlinks, ".."): it must be a directory. Errors name the path. */
int share_resolve_dir(const char *what, const char *host_path, char **real);
/* Bind-mount dir (canonical) on the staging directory target (created), read-only if asked;
 * undone on failure. */
int share_bind(const char *dir, const char *target, bool read_only);
/* Detach target and remove the directory. */
void share_unbind(const char *target);
void plan9_release_all(struct uvm *vm);
void vsmb_release_all(struct uvm *vm);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl run --bundle DIR: an OCI bundle (DIR/config.json and the root file system it names) run
 * as a container in the VM. The root file system is shared into the VM with virtio-fs;
 * relative bind-mount sources are taken from DIR; COMMAND, when given, replaces process.args. */
#ifndef UVM_CLI_BUNDLE_H
#define UVM_CLI_BUNDLE_H

#include <stdbool.h>

#include "uvm.h"

struct bundle {
    char *dir;    /* absolute */
    char *rootfs; /* host path of the root file system */
    bool rootfs_ro;
    char *spec;   /* config.json as it will be sent (root.path is set by libuvm) */
    struct uvm_container *c;
};

/* Read DIR/config.json. cmd (NULL or empty: the spec's process.args) replaces the args. 0, or
 * -1 after printing "PROG: bundle DIR: why". */
int bundle_load(struct bundle *b, const char *prog, const char *dir, char *const *cmd);
/* Share the root file system, create and start the container (stdin only if want_stdin; in
 * guest network namespace netns unless NULL). 0 and *init, or a libuvm code (uvm_last_error). */
int bundle_start(struct bundle *b, struct uvm *vm, bool want_stdin, const char *netns,
                 struct uvm_process **init);
/* Delete the container (if any) and free. */
void bundle_free(struct bundle *b);

#endif

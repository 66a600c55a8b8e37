/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl run --bundle DIR: an OCI bundle (DIR/config.json and the root file system it names) run
 * as a container in the VM. The root file system is shared into the VM with virtio-fs;
 * relative bind-mount sources are taken from DIR; COMMAND, when given, replaces process.args. */
#ifndef UVM_CLI_BUNDLE_H
#define UVM_CLI_BUNDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "uvm.h"

struct bundle {
    char *dir;    /* absolute */
    char *rootfs; /* host path of the root file system */
    bool rootfs_ro;
    char *spec;   /* config.json as it will be sent, but for the terminal (bundle_start) */
    struct uvm_container *c;
};

/* Read DIR/config.json. cmd (NULL or empty: the spec's process.args) replaces the args. 0, or
 * -1 after printing "PROG: bundle DIR: why". */
int bundle_load(struct bundle *b, const char *prog, const char *dir, char *const *cmd);
/* How the container's process gets its stdio: pipes (stdout, stderr and, with stdin, stdin),
 * or a terminal of rows x cols (0x0: crun's default). */
struct bundle_stdio {
    bool stdin, terminal;
    uint16_t rows, cols;
};
/* Share the root file system, create and start the container (in guest network namespace
 * netns unless NULL). 0 and *init, or a libuvm code (uvm_last_error). */
int bundle_start(struct bundle *b, struct uvm *vm, const struct bundle_stdio *io,
                 const char *netns, struct uvm_process **init);
/* Delete the container (if any) and free. */
void bundle_free(struct bundle *b);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl run: the hot-add options (--disk, --scsi-layer, --vpmem, --nic, --share). Parsed before the VM
 * boots; added in the order given once it runs; read-write disks detached after the command. */
#ifndef UVM_CLI_ATTACH_H
#define UVM_CLI_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "uvm.h"

/* The guest network namespace that every --nic goes into and COMMAND then runs in. */
#define ATTACH_NETNS_ID "uvmctl"

enum attach_kind { ATTACH_DISK, ATTACH_SCSI_LAYER, ATTACH_VPMEM, ATTACH_NETNS, ATTACH_SHARE };

struct attach {
    enum attach_kind kind;
    char *buf;         /* owned copy of the option's argument; host and guest point into it */
    const char *host;  /* disk, layer, vpmem: the image on the host; share: the directory */
    const char *guest; /* disk: mount point in the guest, NULL: attach only; share: where */
    bool read_only;    /* share */

    /* set by attach_add / attach_remove */
    bool tried, added, remove_tried, removed;
    double add_ms, remove_ms;
    int controller; /* disk, layer */
    int32_t lun;
    uint32_t location; /* vpmem */
    char *uvm_path;    /* vpmem (owned) */
};

struct attach_nic {
    char *buf; /* owned copy of the SPEC; the endpoint's strings point into it */
    char id[32];
};

struct attach_list {
    struct attach *items; /* in the order given; the first --nic is the ATTACH_NETNS item */
    size_t count;
    struct uvm_endpoint *eps; /* one per --nic, for the one uvm_add_netns call */
    struct attach_nic *nics;
    size_t nic_count;
};

/* Room for max options (at most one per command-line argument). Returns -1 when out of memory. */
int attach_list_init(struct attach_list *l, size_t max);
void attach_list_free(struct attach_list *l);

/* Parse option `name` ("disk", "scsi-layer", "vpmem", "nic" or "share") with argument arg into
 * l. Returns
 * 0, or -1 after printing "PROG: invalid --NAME 'ARG': why" on stderr. */
int attach_parse(struct attach_list *l, const char *prog, const char *name, const char *arg);

/* Perform item i on vm (blocking). Returns 0 or the libuvm code (uvm_last_error() says why). */
int attach_add(struct attach_list *l, size_t i, struct uvm *vm);
/* Whether item i is a read-write disk that was added and must be removed before the VM goes,
 * so that the guest unmounts it and its writes reach the image. */
bool attach_needs_remove(const struct attach_list *l, size_t i);
int attach_remove(struct attach_list *l, size_t i, struct uvm *vm);

/* Where the added items landed, one "uvmctl: ..." line each. */
void attach_print_placement(const struct attach_list *l, FILE *f);
/* Timing lines of the hot-adds (removals: remove = true) for the "timings in ms" block. */
void attach_print_timings(const struct attach_list *l, bool remove, FILE *f);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SCSI attachment bookkeeping: controller x LUN slots. */
#ifndef UVM_LIB_SCSI_H
#define UVM_LIB_SCSI_H

#include <stdbool.h>

#define UVM_SCSI_LUNS 64 /* per controller, as hcsshim */

/* BROKEN: a failed add could not be rolled back in QEMU; the slot is never handed out again. */
enum slot_state { SLOT_FREE = 0, SLOT_ADDING, SLOT_ATTACHED, SLOT_REMOVING, SLOT_BROKEN };

struct scsi_slot {
    enum slot_state state;
    char *host_path; /* canonical */
    char *uvm_path;  /* guest mount point, NULL when attach-only */
    bool layer;      /* read-only layer: ref-counted */
    unsigned refs;
    int fdset;       /* QEMU fd set holding the image: set while attached or removing */
};

struct uvm;
/* QEMU id and block node name of the disk at (c, l): "scsi<c>-<l>". */
void scsi_node_name(unsigned c, unsigned l, char out[32]);
/* Free the bookkeeping (at close). */
void scsi_release_all(struct uvm *vm);

#endif

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
struct guest_part;

/* One add, for uvm_add_scsi / uvm_add_scsi_layer and uvm_modify. */
struct scsi_add_args {
    const char *host_path;
    const char *uvm_path; /* mount point recorded for the remove (NULL/"": none) */
    bool layer;           /* ref-counted per host path; at the first free slot: /tmp/S<c>/<l> */
    bool read_only;       /* the image is opened and attached read-only */
    int controller, lun;  /* the slot to take, or -1, -1: the first free one */
    const struct guest_part *guest; /* NULL: MappedVirtualDisk Add at uvm_path (typed calls) */
};
/* Reserve the slot, hot-plug the disk, then the guest part (rolled back when it fails).
 * *controller and *lun (may be NULL) are set, -1 on error. UVM_E_ALREADY_ATTACHED when the path
 * or the asked slot is taken, UVM_E_INVALID_ARGUMENT for a slot out of range. */
int scsi_add(struct uvm *vm, const struct scsi_add_args *a, int *controller, int32_t *lun);
/* Drop a reference to the disk of host_path, or (host_path NULL) to the one at (controller,
 * lun); the last one sends the guest part (NULL: MappedVirtualDisk Remove) and then unplugs.
 * UVM_E_NOT_ATTACHED when nothing is there. */
int scsi_remove(struct uvm *vm, const char *host_path, int controller, int lun,
                const struct guest_part *guest);

/* QEMU id and block node name of the disk at (c, l): "scsi<c>-<l>". */
void scsi_node_name(unsigned c, unsigned l, char out[32]);
/* Free the bookkeeping (at close). */
void scsi_release_all(struct uvm *vm);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SCSI disks and layers: controller x LUN slots, one record (res.h) per slot in use. */
#ifndef UVM_LIB_SCSI_H
#define UVM_LIB_SCSI_H

#include <stdbool.h>
#include <stdint.h>

#define UVM_SCSI_LUNS 64 /* per controller, as hcsshim */

struct uvm;
struct guest_part;
struct res_kind;

extern const struct res_kind scsi_kind;

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

struct modify_req;
/* uvm_modify handler (kinds.h). */
int scsi_modify(struct uvm *vm, struct modify_req *r);

#endif

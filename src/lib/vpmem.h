/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VPMem devices: device numbers 0..vpmem_count-1. */
#ifndef UVM_LIB_VPMEM_H
#define UVM_LIB_VPMEM_H

#include <stdbool.h>
#include <stdint.h>

struct uvm;
struct guest_part;
struct res_kind;

/* Records (res.h) per device number in use. QEMU 7.2 cannot unplug virtio-pmem, so a removed
 * image's device stays plugged (unmounted in the guest) as an idle record kept for that image:
 * re-adding it reuses the device without a hot-plug, another image cannot use the number.
 * Device 0 of a VHD boot (the root file system) is never handed out (topology.h). */
extern const struct res_kind vpmem_kind;

/* One add, for uvm_add_vpmem and uvm_modify. */
struct vpmem_add_args {
    const char *host_path;
    bool expose;          /* first free number (-1): mount at /tmp/p<n> */
    int number;           /* the device number to take, or -1: the first free one */
    const char *uvm_path; /* with a number: the mount point recorded (NULL: none) */
    const struct guest_part *guest; /* NULL: VPMemDevice Add at the recorded path (typed call;
                                     * also claims the guest's pmem device for the number) */
};
/* Map the image at the number (a parked device of the same image is reused), then the guest
 * part. Ref-counted per host path. UVM_E_ALREADY_ATTACHED when the number holds something else
 * or the image is mapped at another number; UVM_E_INVALID_ARGUMENT for a number out of range. */
int vpmem_add(struct uvm *vm, const struct vpmem_add_args *a, uint32_t *location,
              char **uvm_path);
/* Drop a reference to host_path's device, or (host_path NULL) to device `number`'s image; the
 * last one sends the guest part (NULL: VPMemDevice Remove) and parks the device. */
int vpmem_remove(struct uvm *vm, const char *host_path, int number,
                 const struct guest_part *guest);

struct modify_req;
/* uvm_modify handler (kinds.h). */
int vpmem_modify(struct uvm *vm, struct modify_req *r);

#endif

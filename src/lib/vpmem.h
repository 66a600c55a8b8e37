/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VPMem device bookkeeping: device numbers 0..vpmem_count-1. */
#ifndef UVM_LIB_VPMEM_H
#define UVM_LIB_VPMEM_H

#include <stdbool.h>
#include <stdint.h>

/* PARKED: QEMU 7.2 cannot unplug virtio-pmem, so a removed image's device stays plugged
 * (unmounted in the guest) and is kept for that image: re-adding it reuses the device without a
 * hot-plug, another image cannot use the number. BOOT: device 0 of a VHD boot (the root file
 * system), never handed out. BROKEN: QEMU's state is unknown after a failed rollback. */
enum vpmem_state {
    VPMEM_FREE = 0,
    VPMEM_ADDING,
    VPMEM_ATTACHED,
    VPMEM_REMOVING,
    VPMEM_PARKED,
    VPMEM_BOOT,
    VPMEM_BROKEN,
};

struct vpmem_dev {
    enum vpmem_state state;
    char *host_path; /* canonical; set unless FREE or BOOT */
    char *uvm_path;  /* "/tmp/p<n>" when exposed, else "" (ATTACHED and while busy) */
    uint64_t size;   /* bytes mapped (the backend's size) */
    unsigned refs;
};

struct uvm;
struct guest_part;

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

/* Set up the table at create (device 0 of a VHD boot is taken). */
void vpmem_init(struct uvm *vm);
/* Free the bookkeeping (at close). */
void vpmem_release_all(struct uvm *vm);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VPMem device bookkeeping: device numbers 0..vpmem_count-1. */
#ifndef UVM_LIB_VPMEM_H
#define UVM_LIB_VPMEM_H

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
/* Set up the table at create (device 0 of a VHD boot is taken). */
void vpmem_init(struct uvm *vm);
/* Free the bookkeeping (at close). */
void vpmem_release_all(struct uvm *vm);

#endif

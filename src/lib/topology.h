/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The machine's topology, in one place: where each kind of device sits on QEMU's buses. The
 * fixed part (root ports, bridges, the 9p export) is laid out by argv.c from the constants of
 * argv.h; this file places the hot-plugged devices on it:
 *   SCSI disk (c, l)  -> controller scsi<c>, LUN l; QEMU id and node "scsi<c>-<l>"
 *   VPMem device n    -> bridge vpmembr<h/32>, slot h%32 (h: n without the VHD root's device)
 *   NICs and virtio-fs -> a hot-plug slot: the spare PCIe root ports first (native hot-plug),
 *                         then the slots of the pci-bridge ARGV_HOTPLUG_BRIDGE when the VM has one
 *   Plan9 shares       -> directories of the one 9p export (ARGV_PLAN9_DIR, tag ARGV_PLAN9_TAG)
 */
#ifndef UVM_LIB_TOPOLOGY_H
#define UVM_LIB_TOPOLOGY_H

#include <stdbool.h>

#include "argv.h"

#define HOTSLOT_MAX (ARGV_SPARE_ROOT_PORTS + ARGV_HOTPLUG_BRIDGE_SLOTS)

struct topology {
    bool hotslot_used[HOTSLOT_MAX];
};

struct uvm;
/* Lock held. The number of hot-plug slots this VM has, and of those free. */
unsigned hotslot_count(const struct uvm *vm);
unsigned hotslot_free_count(const struct uvm *vm);
/* Lock held. Take the first free slot: its number, or -1 when none is free. */
int hotslot_take(struct uvm *vm);
/* Lock held. */
void hotslot_put(struct uvm *vm, unsigned slot);
/* QEMU's bus and addr ("" for a root port) of a hot-plug slot. */
void hotslot_place(const struct uvm *vm, unsigned slot, char bus[16], char addr[8]);

/* QEMU id and block node name of the SCSI disk at (c, l), and its bus. */
void topo_scsi_names(unsigned c, unsigned l, char node[32], char bus[32]);
/* QEMU bus and addr of VPMem device n (hot-added), its device and memory object ids. */
void topo_vpmem_place(const struct uvm *vm, unsigned n, char bus[32], char addr[16],
                      char dev[32], char mem[32]);
/* True when device 0 of VPMem is the VHD root file system (never hot-plugged). */
bool topo_vpmem_boot(const struct uvm *vm, unsigned n);

#endif

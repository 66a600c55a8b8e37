/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hot-plug slots for NICs and virtio-fs devices: the spare PCIe root ports first (native
 * hot-plug), then the slots of the pci-bridge ARGV_HOTPLUG_BRIDGE when the VM has one. */
#ifndef UVM_LIB_HOTSLOT_H
#define UVM_LIB_HOTSLOT_H

#include <stdbool.h>

#include "argv.h"

#define HOTSLOT_MAX (ARGV_SPARE_ROOT_PORTS + ARGV_HOTPLUG_BRIDGE_SLOTS)

struct uvm;
/* Lock held. The number of slots this VM has, and of those free. */
unsigned hotslot_count(const struct uvm *vm);
unsigned hotslot_free_count(const struct uvm *vm);
/* Lock held. Take the first free slot: its number, or -1 when none is free. */
int hotslot_take(struct uvm *vm);
/* Lock held. */
void hotslot_put(struct uvm *vm, unsigned slot);
/* QEMU's bus and addr ("" for a root port) of a slot. */
void hotslot_place(const struct uvm *vm, unsigned slot, char bus[16], char addr[8]);

#endif

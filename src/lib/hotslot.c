/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "hotslot.h"
#include "uvm-internal.h"

static bool
vhd_root(const struct uvm *vm)
{
    return vm->cfg.rootfs_type == UVM_ROOTFS_VHD;
}

unsigned
hotslot_count(const struct uvm *vm)
{
    return ARGV_SPARE_ROOT_PORTS +
           (argv_has_hotplug_bridges(vm->cfg.vpmem_count, vhd_root(vm)) ? ARGV_HOTPLUG_BRIDGE_SLOTS
                                                                         : 0);
}

unsigned
hotslot_free_count(const struct uvm *vm)
{
    unsigned n = 0;
    for (unsigned s = 0; s < hotslot_count(vm); s++)
        n += !vm->hotslot_used[s];
    return n;
}

int
hotslot_take(struct uvm *vm)
{
    for (unsigned s = 0; s < hotslot_count(vm); s++)
        if (!vm->hotslot_used[s]) {
            vm->hotslot_used[s] = true;
            return (int)s;
        }
    return -1;
}

void
hotslot_put(struct uvm *vm, unsigned slot)
{
    if (slot < HOTSLOT_MAX)
        vm->hotslot_used[slot] = false;
}

void
hotslot_place(const struct uvm *vm, unsigned slot, char bus[16], char addr[8])
{
    if (slot < ARGV_SPARE_ROOT_PORTS) {
        snprintf(bus, 16, "rp%u", argv_first_spare_port(vm->cfg.scsi_count, vhd_root(vm)) + slot);
        addr[0] = '\0';
    } else {
        snprintf(bus, 16, "%s", ARGV_HOTPLUG_BRIDGE);
        snprintf(addr, 8, "%x.0", slot - ARGV_SPARE_ROOT_PORTS);
    }
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where hot-plugged devices sit (topology.h). */
#include <stdio.h>

#include "topology.h"
#include "vm.h"

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
        n += !vm->topo.hotslot_used[s];
    return n;
}

int
hotslot_take(struct uvm *vm)
{
    for (unsigned s = 0; s < hotslot_count(vm); s++)
        if (!vm->topo.hotslot_used[s]) {
            vm->topo.hotslot_used[s] = true;
            return (int)s;
        }
    return -1;
}

void
hotslot_put(struct uvm *vm, unsigned slot)
{
    if (slot < HOTSLOT_MAX)
        vm->topo.hotslot_used[slot] = false;
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

void
topo_scsi_names(unsigned c, unsigned l, char node[32], char bus[32])
{
    snprintf(node, 32, "scsi%u-%u", c, l);
    snprintf(bus, 32, "scsi%u.0", c);
}

bool
topo_vpmem_boot(const struct uvm *vm, unsigned n)
{
    return n == 0 && !vm->cfg.windows && vhd_root(vm);
}

void
topo_vpmem_place(const struct uvm *vm, unsigned n, char bus[32], char addr[16], char dev[32],
                 char mem[32])
{
    unsigned h = vhd_root(vm) ? n - 1 : n; /* device 0 of a VHD boot is not hot-plugged */
    snprintf(bus, 32, ARGV_VPMEM_BRIDGE_FMT, h / ARGV_VPMEM_PER_BRIDGE);
    snprintf(addr, 16, "%x.0", h % ARGV_VPMEM_PER_BRIDGE);
    snprintf(dev, 32, "vpmem%u", n);
    snprintf(mem, 32, "vpmem%u-mem", n);
}

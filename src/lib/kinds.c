/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The table of resource kinds (kinds.h). */
#include "kinds.h"
#include "netns.h"
#include "scsi.h"
#include "share.h"
#include "vpmem.h"

const struct kind_entry uvm_kinds[] = {
    {&scsi_kind, "VirtualMachine/Devices/Scsi/{n}/Attachments/{n}", {"controller", "LUN"},
     scsi_modify},
    {&vpmem_kind, "VirtualMachine/Devices/VirtualPMem/Devices/{n}", {"device number"},
     vpmem_modify},
    {&plan9_kind, "VirtualMachine/Devices/Plan9/Shares", {NULL}, plan9_modify},
    {&vsmb_kind, "VirtualMachine/Devices/VirtualSmb/Shares", {NULL}, vsmb_modify},
    {&nic_kind, "VirtualMachine/Devices/NetworkAdapters/{id}", {"adapter id"}, nic_modify},
    {&netns_kind, NULL, {NULL}, NULL},
    {NULL, NULL, {NULL}, NULL},
};

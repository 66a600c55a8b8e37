/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The table of resource kinds (kinds.h). */
#include "kinds.h"
#include "netns.h"
#include "scsi.h"
#include "share.h"
#include "vpmem.h"

const struct res_kind *const uvm_kinds[] = {
    &scsi_kind,
    &vpmem_kind,
    &plan9_kind,
    &vsmb_kind,
    &nic_kind,
    &netns_kind,
    NULL,
};

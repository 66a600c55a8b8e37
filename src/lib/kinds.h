/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every resource kind (res.h), for the lifecycle (prepare at create, vm_gone at exit) and
 * uvm_modify (routing by ResourcePath). A new kind is one line in kinds.c. */
#ifndef UVM_LIB_KINDS_H
#define UVM_LIB_KINDS_H

#include "res.h"

/* NULL-terminated. */
extern const struct res_kind *const uvm_kinds[];

#endif

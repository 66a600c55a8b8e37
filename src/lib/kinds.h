/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every resource kind (res.h), for the lifecycle (prepare at create, vm_gone when the VM is gone)
 * and uvm_modify (routing by ResourcePath). A new kind is one line in kinds.c. */
#ifndef UVM_LIB_KINDS_H
#define UVM_LIB_KINDS_H

#include "res.h"

struct modify_req;
struct kind_entry {
    const struct res_kind *kind;
    /* uvm_modify: the kind's ResourcePath pattern ('/'-separated; {n}: a number, {id}: a name),
     * the placeholders' names for messages, and its handler (modreq.h), which decodes Settings
     * and calls the kind's add or remove. NULL: not reachable through uvm_modify. */
    const char *modify_path;
    const char *modify_fields[3];
    int (*modify)(struct uvm *vm, struct modify_req *r);
};

/* Ends with an entry whose kind is NULL. */
extern const struct kind_entry uvm_kinds[];

#endif

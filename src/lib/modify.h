/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm_modify's decoding, exposed for the unit tests. */
#ifndef UVM_LIB_MODIFY_H
#define UVM_LIB_MODIFY_H

/* Decode a ModifySettingRequest without applying it: 0 and *handler_pattern the ResourcePath
 * pattern it routes to (NULL for a guest-only request), or the error uvm_modify would give
 * before touching anything (UVM_E_INVALID_ARGUMENT / UVM_E_NOT_SUPPORTED naming the field).
 * Settings are decoded by the handlers, so they are not checked here. */
int modify_route(const char *vm_id, const char *json, const char **handler_pattern);

#endif

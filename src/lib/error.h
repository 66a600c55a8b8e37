/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef UVM_LIB_ERROR_H
#define UVM_LIB_ERROR_H

#include <stdarg.h>

#include "uvm.h"

/* Set the calling thread's message and return code (code < 0; -errno or UVM_E_*).
 * Usage: return uvm_error(UVM_E_NOT_ATTACHED, "remove scsi '%s': not attached", path); */
int uvm_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like uvm_error, with ": <strerror(-code)>" appended for -errno codes. */
int uvm_error_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with context ("start 'id': " + message); returns code. */
int uvm_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void uvm_error_clear(void);

/* Library logging (log.c). vm_id may be NULL. */
void uvm_log(enum uvm_log_level level, const char *vm_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool uvm_log_enabled(enum uvm_log_level level);

#endif

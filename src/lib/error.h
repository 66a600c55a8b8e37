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

/* The QMP error class (enum qmp_error_class, qmp.h) behind the thread's current error, 0 when
 * it did not come from a QMP error reply. uvm_error/uvm_error_errno reset it; wrapping keeps it. */
int uvm_error_class(void);
void uvm_error_set_class(int cls);

/* The thread's error, taken aside while a rollback runs (whose own failures overwrite it) and
 * put back afterwards, as libgit2's git_error_state_capture/restore:
 *     struct uvm_error_state st;
 *     uvm_error_capture(&st);
 *     ... undo what was made ...
 *     return uvm_error_restore(&st, rc);
 * The first error is the one the caller sees. */
struct uvm_error_state {
    char *msg;
    int cls;
};
void uvm_error_capture(struct uvm_error_state *st);
/* Put st back as the thread's error (st is emptied) and return code. */
int uvm_error_restore(struct uvm_error_state *st, int code);

/* Library logging (log.c). vm_id may be NULL. */
void uvm_log(enum uvm_log_level level, const char *vm_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool uvm_log_enabled(enum uvm_log_level level);

#endif

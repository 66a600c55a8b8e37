/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* crun's --log-format json output, read back after a call (pure: no I/O). */
#ifndef GCS_CRUNLOG_H
#define GCS_CRUNLOG_H

#include <stddef.h>

#define CRUN_LOG_LINE_MAX 8192

/* The text of crun's last error in its log: one {"level","msg","time"} object per line; the msg
 * of the last line whose level is "error" (new string), or NULL when there is none. Lines that
 * are not such objects (crun's plain-text fallbacks, a truncated write) or that are longer than
 * CRUN_LOG_LINE_MAX are skipped. Linear in len; text need not be NUL-terminated. */
char *crun_log_last_error(const char *text, size_t len);

#endif

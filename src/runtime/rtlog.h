/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How uvm-runtime reports: the shim shows the user only the msg of the last level=error JSON
 * object in --log (containerd-oci.md §0.4), and matches kill's texts on stderr. So a failure is
 * one line in --log ({"level":"error","msg":...,"time":RFC3339} with --log-format json, logrus'
 * text shape otherwise) plus "uvm-runtime: <msg>" on stderr, and exit status 1.
 */
#ifndef UVM_RUNTIME_RTLOG_H
#define UVM_RUNTIME_RTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The texts the shim matches (pkg/process/utils.go checkKillError). */
#define RT_TEXT_NOT_RUNNING "container not running"
#define RT_TEXT_NOT_EXIST "does not exist"

/* Append s to a JSON string body: quotes, backslashes and control bytes escaped, invalid UTF-8
 * bytes replaced by U+FFFD. out must hold 6 * strlen(s) + 1 bytes; returns the length written. */
size_t rtlog_json_escape(const char *s, char *out);

/* One line (with '\n'): {"level":"<level>","msg":"<msg>","time":"<RFC3339 UTC>"} or, text,
 * time="..." level=<level> msg="<msg>". Caller frees. */
char *rtlog_line(const char *level, const char *msg, time_t t, bool json);

/* Where failures go: set once from the global flags. path NULL: stderr only. */
void rtlog_setup(const char *path, bool json);
/* Log at error level (the --log line and stderr); returns 1, the exit status. */
int rtlog_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log a line at another level to --log only (debug, warning). */
void rtlog_write(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Agent logging. Lines go to /dev/kmsg (the serial console shows errors) until a sink is set
 * (the bridge, once the host has negotiated); then they go to the host as Log notifications.
 * Errors always go to /dev/kmsg as well.
 */
#ifndef GCS_LOG_H
#define GCS_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARNING, LOG_LEVEL_ERROR };

typedef void log_sink_fn(enum log_level level, const char *msg, void *ctx);

/* "debug", "info", "warning", "error": 0, or -EINVAL. */
int log_parse_level(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Open /dev/kmsg (after devtmpfs is mounted); before that lines go to stderr. */
void log_open_kmsg(void);
/* Route lines to sink (NULL: back to /dev/kmsg only). */
void log_set_sink(log_sink_fn *sink, void *ctx);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif

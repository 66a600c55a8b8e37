/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 1024 /* /dev/kmsg accepts records up to ~1 KiB */

static const char *const level_names[] = {
    [LOG_LEVEL_DEBUG] = "debug",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_WARNING] = "warning",
    [LOG_LEVEL_ERROR] = "error",
};

/* syslog priorities for the <N> prefix of /dev/kmsg records */
static const int kmsg_prio[] = {
    [LOG_LEVEL_DEBUG] = 7,
    [LOG_LEVEL_INFO] = 6,
    [LOG_LEVEL_WARNING] = 4,
    [LOG_LEVEL_ERROR] = 3,
};

static enum log_level cur_level = LOG_LEVEL_INFO;
static int kmsg_fd = -1;
static log_sink_fn *sink_fn;
static void *sink_ctx;
static int in_sink; /* a sink that logs must not recurse */

int
log_parse_level(const char *name, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *
log_level_name(enum log_level level)
{
    return level_names[level];
}

void
log_set_level(enum log_level level)
{
    cur_level = level;
}

enum log_level
log_get_level(void)
{
    return cur_level;
}

void
log_open_kmsg(void)
{
    if (kmsg_fd >= 0)
        return;
    kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
}

void
log_set_sink(log_sink_fn *sink, void *ctx)
{
    sink_fn = sink;
    sink_ctx = ctx;
}

static void
write_kmsg(enum log_level level, const char *msg)
{
    char line[LOG_LINE_MAX + 32];
    int n;
    if (kmsg_fd >= 0)
        n = snprintf(line, sizeof(line), "<%d>gcs: %s\n", kmsg_prio[level], msg);
    else
        n = snprintf(line, sizeof(line), "gcs: %s: %s\n", level_names[level], msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    int saved = errno;
    ssize_t w = write(kmsg_fd >= 0 ? kmsg_fd : STDERR_FILENO, line, (size_t)n);
    (void)w;
    errno = saved;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < cur_level)
        return;
    int saved = errno;
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    errno = saved;

    if (sink_fn && !in_sink) {
        in_sink = 1;
        sink_fn(level, msg, sink_ctx);
        in_sink = 0;
        if (level < LOG_LEVEL_ERROR)
            return;
    }
    write_kmsg(level, msg);
}

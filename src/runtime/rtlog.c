/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "rtlog.h"

static const char *log_path;
static bool log_json;

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xe0) == 0xc0   ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || s[0] == 0xc0 || s[0] == 0xc1 || s[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    uint32_t cp = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (s[i] & 0x3f);
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

size_t
rtlog_json_escape(const char *str, char *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0;
    while (*s) {
        size_t n = utf8_len(s);
        if (n == 0) { /* U+FFFD */
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            s++;
        } else if (n > 1) {
            memcpy(out + o, s, n);
            o += n;
            s += n;
        } else if (*s == '"' || *s == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*s++;
        } else if (*s == '\n' || *s == '\t' || *s == '\r') {
            out[o++] = '\\';
            out[o++] = *s == '\n' ? 'n' : *s == '\t' ? 't' : 'r';
            s++;
        } else if (*s < 0x20 || *s == 0x7f) {
            o += (size_t)sprintf(out + o, "\\u%04x", *s++);
        } else {
            out[o++] = (char)*s++;
        }
    }
    out[o] = '\0';
    return o;
}

char *
rtlog_line(const char *level, const char *msg, time_t t, bool json)
{
    struct tm tm;
    char when[32];
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cleanup_free char *esc = xmalloc(6 * strlen(msg) + 1);
    rtlog_json_escape(msg, esc);
    if (json)
        return xasprintf("{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s\"}\n", level, esc, when);
    return xasprintf("time=\"%s\" level=%s msg=\"%s\"\n", when, level, esc);
}

void
rtlog_setup(const char *path, bool json)
{
    log_path = path;
    log_json = json;
}

static void
append_line(const char *level, const char *msg)
{
    if (!log_path)
        return;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0)
        return;
    cleanup_free char *line = rtlog_line(level, msg, time(NULL), log_json);
    size_t n = strlen(line);
    ssize_t w = write(fd, line, n); /* O_APPEND: one write, one line */
    (void)w;
    close(fd);
}

int
rtlog_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    append_line("error", msg ? msg : "out of memory");
    fprintf(stderr, "uvm-runtime: %s\n", msg ? msg : "out of memory");
    free(msg);
    return 1;
}

void
rtlog_write(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg)
        append_line(level, msg);
    free(msg);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz-util.h"

void
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: property violated: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), 0 if none. */
static size_t
utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
    static const struct {
        unsigned char lo, hi; /* lead byte range */
        unsigned char lo2, hi2; /* second byte range */
        size_t len;
    } rows[] = {
        {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
        {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3}, {0xf0, 0xf0, 0x90, 0xbf, 4},
        {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
    };
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        if (s[0] < rows[r].lo || s[0] > rows[r].hi)
            continue;
        size_t len = rows[r].len;
        if (n < len || s[1] < rows[r].lo2 || s[1] > rows[r].hi2)
            return 0;
        uint32_t v = s[0] & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
        for (size_t k = 1; k < len; k++) {
            if (k > 1 && (s[k] < 0x80 || s[k] > 0xbf))
                return 0;
            v = v << 6 | (s[k] & 0x3f);
        }
        *cp = v;
        return len;
    }
    return 0;
}

const char *
fuzz_text_problem(const char *text, size_t len, bool newline_ok)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = utf8_len(s + i, len - i, &cp);
        if (!n)
            return "invalid UTF-8";
        if ((cp < 0x20 && !(cp == '\n' && newline_ok)) || cp == 0x7f)
            return "a C0 control or DEL";
        if (cp >= 0x80 && cp <= 0x9f)
            return "a C1 control";
        if (cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
            (cp >= 0x2066 && cp <= 0x2069))
            return "a bidi control";
        if (cp == 0x2028 || cp == 0x2029)
            return "a line or paragraph separator";
        i += n;
    }
    return NULL;
}

uint8_t
fuzz_u8(struct fuzz_input *in)
{
    if (!in->len)
        return 0;
    in->len--;
    return *in->data++;
}

uint32_t
fuzz_u32(struct fuzz_input *in)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++)
        v |= (uint32_t)fuzz_u8(in) << (8 * i);
    return v;
}

const uint8_t *
fuzz_bytes(struct fuzz_input *in, size_t n, size_t *len)
{
    const uint8_t *p = in->data;
    *len = n < in->len ? n : in->len;
    in->data += *len;
    in->len -= *len;
    return p;
}

int
fuzz_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
fuzz_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    while (len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t n = read(fd, p, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void
put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void
fuzz_frame(uint8_t *out, uint32_t type, uint64_t id, const void *payload, size_t len)
{
    put32(out, type);
    put32(out + 4, (uint32_t)(16 + len));
    put32(out + 8, (uint32_t)id);
    put32(out + 12, (uint32_t)(id >> 32));
    if (len)
        memcpy(out + 16, payload, len);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cleanup.h"
#include "sanitize.h"

#define KEEP (-1) /* copy the code point as it is */
#define DROP 0    /* write nothing */

/* Length of the well-formed UTF-8 sequence at s[0..n) (n >= 1) with *cp its code point, or 0
 * when the bytes there are not one (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF). */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1fu, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0fu, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0; /* a continuation byte (0x80..0xbf, C1 included), 0xc0, 0xc1, 0xf5.. */
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0u) != 0x80u)
            return 0;
        v = v << 6 | (s[k] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Unicode controls that change how the text around them is displayed. */
static int
is_format_control(uint32_t cp)
{
    return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* KEEP, DROP or the ASCII character that replaces cp. */
static int
replacement(uint32_t cp, unsigned flags)
{
    bool multi = flags & SANITIZE_NEWLINES;
    if (cp == '\t')
        return ' ';
    if (cp == '\n')
        return multi ? KEEP : ' ';
    if (cp == '\r')
        return multi ? DROP : ' ';
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || is_format_control(cp))
        return '?';
    return KEEP;
}

size_t
sanitize_text(char *out, size_t out_size, const char *in, size_t in_len, unsigned flags)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t max = out_size - 1, o = 0, i = 0;
    /* o <= i throughout (no unit grows), so out may be in. */
    while (i < in_len) {
        uint32_t cp = 0;
        size_t n = utf8_decode(s + i, in_len - i, &cp);
        int r = n ? replacement(cp, flags) : '?';
        if (!n)
            n = 1; /* one '?' per offending byte */
        size_t w = r == KEEP ? n : r == DROP ? 0 : 1;
        if (w > max - o)
            break; /* whole code points only */
        if (r == KEEP)
            memmove(out + o, s + i, n);
        else if (r != DROP)
            out[o] = (char)r;
        o += w;
        i += n;
    }
    out[o] = '\0';
    return o;
}

char *
sanitize_dup(const char *in, size_t in_len, size_t max, unsigned flags)
{
    if (!in)
        return xstrdup("");
    size_t size = (in_len < max ? in_len : max) + 1;
    char *out = xmalloc(size);
    sanitize_text(out, size, in, in_len, flags);
    return out;
}

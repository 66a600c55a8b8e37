/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The text sanitiser (src/common/sanitize.c): controls, C1 in both encodings, bidi, invalid
 * UTF-8, cuts on code point boundaries, and properties over random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "sanitize.h"

/* Clean a literal (its length given, NULs included) with a generous limit. */
static char *
clean_n(const char *in, size_t len, unsigned flags)
{
    return sanitize_dup(in, len, 4096, flags);
}

#define CLEAN(lit, flags) clean_n(lit, sizeof(lit) - 1, flags)

static void
expect(char *got, const char *want)
{
    assert_string_equal(got, want);
    free(got);
}

static void
test_plain_text_unchanged(void **state)
{
    expect(CLEAN("disk full: /dev/sda1 (98%)", 0), "disk full: /dev/sda1 (98%)");
    expect(CLEAN("caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80", 0),
           "caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80"); /* é € 中 😀 */
    expect(sanitize_dup(NULL, 0, 10, 0), "");
    expect(CLEAN("", 0), "");
}

static void
test_c0_and_del(void **state)
{
    /* An escape sequence loses its ESC; NUL, BEL, BS and DEL become '?'. */
    expect(CLEAN("\x1b[2J\x1b]0;owned\x07x", 0), "?[2J?]0;owned?x");
    expect(CLEAN("a\0b\x08" "c\x7f", 0), "a?b?c?");
    /* Whitespace: tab is a space; newline and CR are spaces on one line. */
    expect(CLEAN("a\tb\nc\r\nd", 0), "a b c  d");
    /* Multi-line: newlines stay, CR goes (CRLF line ends, no overwriting). */
    expect(CLEAN("l1\r\nl2\rX\n\tl3", SANITIZE_NEWLINES), "l1\nl2X\n l3");
}

static void
test_c1_both_encodings(void **state)
{
    /* U+009B (CSI) and U+0085 (NEL) encoded in UTF-8: one '?' each. */
    expect(CLEAN("a\xc2\x9b" "31mb\xc2\x85" "c", 0), "a?31mb?c");
    expect(CLEAN("\xc2\x80\xc2\x9f", 0), "??");
    /* U+00A0 (first code point after C1) is kept. */
    expect(CLEAN("\xc2\xa0", 0), "\xc2\xa0");
    /* Raw C1 bytes (not UTF-8): one '?' per byte. */
    expect(CLEAN("a\x9b" "31m\x85\x80\x9f" "b", 0), "a?31m???b");
}

static void
test_bidi_and_separators(void **state)
{
    /* "abc" RLO "txt.exe" would display reversed. */
    expect(CLEAN("abc\xe2\x80\xaetxt.exe", 0), "abc?txt.exe");
    static const char *const bidi[] = {
        "\xd8\x9c",                                                 /* U+061C ALM */
        "\xe2\x80\x8e", "\xe2\x80\x8f",                             /* U+200E, U+200F */
        "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae",
        "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9", /* U+2066..U+2069 */
        "\xe2\x80\xa8", "\xe2\x80\xa9",                             /* U+2028, U+2029 */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bidi); i++) {
        char in[16];
        size_t n = strlen(bidi[i]);
        in[0] = 'x';
        memcpy(in + 1, bidi[i], n);
        in[n + 1] = 'y';
        expect(clean_n(in, n + 2, SANITIZE_NEWLINES), "x?y");
    }
    /* Neighbours of the ranges stay: U+2029 is the last one, U+202F and U+2065 are kept. */
    expect(CLEAN("\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa", 0),
           "\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa");
}

static void
test_invalid_utf8(void **state)
{
    expect(CLEAN("\xc0\xaf", 0), "??");             /* overlong '/' */
    expect(CLEAN("\xe0\x80\xaf", 0), "???");        /* overlong, 3 bytes */
    expect(CLEAN("\xf0\x80\x80\xaf", 0), "????");   /* overlong, 4 bytes */
    expect(CLEAN("\xed\xa0\x80", 0), "???");        /* surrogate U+D800 */
    expect(CLEAN("\xf4\x90\x80\x80", 0), "????");   /* U+110000 */
    expect(CLEAN("\xf5\xff\xfe", 0), "???");
    expect(CLEAN("ok\xe2\x82", 0), "ok??");         /* truncated at the end */
    expect(CLEAN("\xe2\x82x\xe2\x82\xac", 0), "??x\xe2\x82\xac"); /* truncated, then valid */
    expect(CLEAN("\xa9z", 0), "?z");                /* stray continuation byte */
}

static void
test_cut_on_code_point_boundary(void **state)
{
    char out[16];
    /* "aé€" = 61 | c3 a9 | e2 82 ac: 6 bytes. */
    static const char text[] = "a\xc3\xa9\xe2\x82\xac";
    size_t n = sizeof(text) - 1;
    static const struct {
        size_t max;
        const char *want;
    } cuts[] = {
        {0, ""}, {1, "a"}, {2, "a"}, /* inside é */
        {3, "a\xc3\xa9"},            /* exactly after é */
        {4, "a\xc3\xa9"}, {5, "a\xc3\xa9"}, /* inside € */
        {6, "a\xc3\xa9\xe2\x82\xac"}, {7, "a\xc3\xa9\xe2\x82\xac"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
        size_t len = sanitize_text(out, cuts[i].max + 1, text, n, 0);
        assert_string_equal(out, cuts[i].want);
        assert_int_equal(len, strlen(cuts[i].want));
        expect(sanitize_dup(text, n, cuts[i].max, 0), cuts[i].want);
    }
    /* A 4-byte code point does not fit in 3. */
    expect(sanitize_dup("\xf0\x9f\x98\x80", 4, 3, 0), "");
    expect(sanitize_dup("\xf0\x9f\x98\x80", 4, 4, 0), "\xf0\x9f\x98\x80");
    /* A replacement counts one byte, whatever it replaces. */
    expect(sanitize_dup("\xe2\x80\xae" "ab", 5, 2, 0), "?a");
}

static void
test_in_place(void **state)
{
    char buf[] = "l1\r\n\x1b[1m\xe2\x80\xae\xc2\x9b\xff\xc3\xa9nd";
    size_t n = sizeof(buf) - 1;
    size_t len = sanitize_text(buf, sizeof(buf), buf, n, SANITIZE_NEWLINES);
    assert_string_equal(buf, "l1\n?[1m???\xc3\xa9nd");
    assert_int_equal(len, strlen(buf));
}

/* ---- properties over random bytes ------------------------------------------------------ */

/* Independent check: well-formed UTF-8, no C0 (but '\n' when allowed), DEL, C1, bidi or
 * separators. */
static bool
output_ok(const unsigned char *s, size_t len, bool newlines)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n;
        if (s[i] < 0x80) {
            cp = s[i], n = 1;
        } else if ((s[i] & 0xe0) == 0xc0) {
            cp = s[i] & 0x1fu, n = 2;
        } else if ((s[i] & 0xf0) == 0xe0) {
            cp = s[i] & 0x0fu, n = 3;
        } else if ((s[i] & 0xf8) == 0xf0) {
            cp = s[i] & 0x07u, n = 4;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        if ((cp < 0x20 && !(cp == '\n' && newlines)) || (cp >= 0x7f && cp <= 0x9f))
            return false;
        if (cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
            (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029)
            return false;
        i += n;
    }
    return true;
}

/* Random bytes, with valid and dangerous sequences mixed in so that both paths are taken. */
static size_t
random_input(unsigned char *buf, size_t cap)
{
    static const char *const pieces[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xe2\x80\xae", "\xc2\x9b", "\xd8\x9c",
        "\xe2\x81\xa6", "\r\n", "\x1b[", "\xed\xa0\x80", "\xf4\x8f\xbf\xbf", "abc",
    };
    size_t len = (size_t)rand() % cap, i = 0;
    while (i < len) {
        if (rand() % 3 == 0) {
            const char *p = pieces[(size_t)rand() % ARRAY_SIZE(pieces)];
            size_t n = strlen(p);
            if (n > len - i)
                n = len - i; /* a cut piece is invalid UTF-8: good too */
            memcpy(buf + i, p, n);
            i += n;
        } else {
            buf[i++] = (unsigned char)(rand() & 0xff);
        }
    }
    return len;
}

static void
test_random_bytes(void **state)
{
    srand(12345); /* deterministic: a failure reproduces */
    unsigned char in[300];
    char out[sizeof(in) + 1], again[sizeof(in) + 1], inplace[sizeof(in) + 1];
    for (unsigned iter = 0; iter < 20000; iter++) {
        size_t len = random_input(in, sizeof(in));
        unsigned flags = iter & 1 ? SANITIZE_NEWLINES : 0;
        size_t max = (size_t)rand() % (sizeof(in) + 1);
        size_t n = sanitize_text(out, max + 1, (const char *)in, len, flags);
        assert_true(n <= max);
        assert_int_equal(strlen(out), n); /* no NUL inside */
        assert_true(output_ok((const unsigned char *)out, n, flags));
        /* Clean text is a fixed point. */
        size_t n2 = sanitize_text(again, sizeof(again), out, n, flags);
        assert_int_equal(n2, n);
        assert_memory_equal(again, out, n);
        /* In place gives the same; never longer than the input. */
        memcpy(inplace, in, len);
        size_t n3 = sanitize_text(inplace, max + 1 < len + 1 ? max + 1 : len + 1, inplace, len,
                                  flags);
        assert_int_equal(n3, n);
        assert_memory_equal(inplace, out, n);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_c0_and_del),
        cmocka_unit_test(test_c1_both_encodings),
        cmocka_unit_test(test_bidi_and_separators),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_cut_on_code_point_boundary),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "sanitize": the text sanitiser (src/common/sanitize.c) on any bytes.
 * Input: 1 byte of flags (bit 0: SANITIZE_NEWLINES), 2 bytes of output size, then the text.
 * Properties: the output is clean text (fuzz_text_problem: valid UTF-8, no C0 but '\n' when
 * allowed, no DEL, C1, bidi controls or separators), NUL-terminated, no longer than the input
 * nor the room given; cleaning in place gives the same; a smaller room gives a prefix of the
 * output (cut on a code point boundary); cleaning clean text changes nothing; sanitize_dup
 * agrees with sanitize_text.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "sanitize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    unsigned flags = fuzz_u8(&in) & SANITIZE_NEWLINES;
    size_t room = (size_t)fuzz_u8(&in) | (size_t)fuzz_u8(&in) << 8;
    room = room % 4096 + 1;
    const char *text = (const char *)in.data;
    size_t len = in.len;
    bool nl = flags & SANITIZE_NEWLINES;

    /* Full room: the whole input is looked at. */
    char *full = malloc(len + 1);
    size_t nfull = sanitize_text(full, len + 1, text, len, flags);
    FUZZ_CHECK(nfull <= len && full[nfull] == '\0' && strlen(full) == nfull, "length %zu of %zu",
               nfull, len);
    const char *why = fuzz_text_problem(full, nfull, nl);
    FUZZ_CHECK(!why, "output has %s", why);

    /* Limited room: a prefix, cut between code points. */
    char *part = malloc(room);
    size_t npart = sanitize_text(part, room, text, len, flags);
    FUZZ_CHECK(npart < room && npart <= nfull && !memcmp(part, full, npart),
               "room %zu: not a prefix (%zu of %zu)", room, npart, nfull);
    why = fuzz_text_problem(part, npart, nl);
    FUZZ_CHECK(!why, "cut output has %s", why);

    /* In place. */
    char *inplace = malloc(len + 1);
    memcpy(inplace, text, len);
    size_t nin = sanitize_text(inplace, len + 1, inplace, len, flags);
    FUZZ_CHECK(nin == nfull && !memcmp(inplace, full, nfull), "in place differs");

    /* Idempotent. */
    char *again = malloc(nfull + 1);
    size_t nagain = sanitize_text(again, nfull + 1, full, nfull, flags);
    FUZZ_CHECK(nagain == nfull && !memcmp(again, full, nfull), "cleaning clean text changed it");

    /* sanitize_dup with the same limit. */
    char *dup = sanitize_dup(text, len, room - 1, flags);
    FUZZ_CHECK(!strcmp(dup, part), "sanitize_dup differs from sanitize_text");

    free(full);
    free(part);
    free(inplace);
    free(again);
    free(dup);
    return 0;
}

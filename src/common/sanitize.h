/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Text from the guest (log lines, error messages, console output) made safe to show: to a log
 * handler, in an error message, on a terminal. The guest is root-level hostile; what it writes
 * must neither drive the reader's terminal (escape sequences, C1 controls such as CSI 0x9b) nor
 * disguise itself (bidi overrides that reorder what is displayed, fake line breaks).
 *
 * The output is always valid UTF-8 without C0 controls (except '\n' with SANITIZE_NEWLINES),
 * DEL or C1 controls, and never longer than the input, so a buffer can be cleaned in place:
 *   - '\t' becomes ' '; '\n' becomes ' ' unless SANITIZE_NEWLINES keeps it; '\r' becomes ' ',
 *     or is dropped with SANITIZE_NEWLINES (CRLF line ends; a lone CR would let later text
 *     overwrite earlier text on a terminal);
 *   - other C0 controls (NUL and ESC included), DEL, C1 controls (U+0080..U+009F encoded in
 *     UTF-8, and the raw bytes 0x80..0x9F, which are invalid UTF-8 anyway), bidi controls
 *     (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) and the line and paragraph
 *     separators U+2028, U+2029 become '?';
 *   - invalid UTF-8 (stray continuation bytes, overlong forms, surrogates, code points over
 *     U+10FFFF, truncated sequences) becomes one '?' per offending byte.
 * One pass, linear in the input; it stops reading once the output is full.
 */
#ifndef UVM_COMMON_SANITIZE_H
#define UVM_COMMON_SANITIZE_H

#include <stddef.h>

#define SANITIZE_NEWLINES 0x1u /* keep '\n' (multi-line text such as a console tail) */

/* Clean in[0..in_len) into out, at most out_size - 1 bytes plus a NUL (out_size >= 1), cut on a
 * code point boundary. out may be in itself (in place). Returns the output length. */
size_t sanitize_text(char *out, size_t out_size, const char *in, size_t in_len, unsigned flags);

/* The same into a new string of at most max bytes (plus the NUL); in NULL gives "". */
char *sanitize_dup(const char *in, size_t in_len, size_t max, unsigned flags);

#endif

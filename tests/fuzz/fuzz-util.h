/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the libFuzzer targets (docs/reliability.md): the properties the targets
 * check on what the library makes of hostile input, and small I/O helpers for the targets that
 * play the guest or QEMU on a socketpair.
 *
 * A property that does not hold is a finding: FUZZ_CHECK prints what and where and aborts, so
 * libFuzzer saves the input as a crash.
 */
#ifndef UVM_FUZZ_UTIL_H
#define UVM_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
    } while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Why s[0..len) is not clean text (sanitize.h's promise): not valid UTF-8 (RFC 3629), or a
 * C0 control (but '\n' when newline_ok), DEL, a C1 control, a bidi control or U+2028/U+2029.
 * NULL when it is clean. Written independently of sanitize.c, to check it. */
const char *fuzz_text_problem(const char *s, size_t len, bool newline_ok);

/* A reader of the fuzz input: bytes are taken from the front; past the end, zeros. */
struct fuzz_input {
    const uint8_t *data;
    size_t len;
};
uint8_t fuzz_u8(struct fuzz_input *in);
uint32_t fuzz_u32(struct fuzz_input *in);
/* Up to n bytes (fewer at the end): *len set, a pointer into the input. */
const uint8_t *fuzz_bytes(struct fuzz_input *in, size_t n, size_t *len);

/* Write all of buf to fd (blocking; MSG_NOSIGNAL for sockets): 0, or -errno. */
int fuzz_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes within timeout_ms: 0, -ETIMEDOUT, -EPIPE at end of file, -errno. */
int fuzz_read_exact(int fd, void *buf, size_t len, int timeout_ms);

/* Encode one agent frame (header + payload) into out (16 + len bytes). */
void fuzz_frame(uint8_t *out, uint32_t type, uint64_t id, const void *payload, size_t len);

/* Route the library's log lines (every level) through a checker: each must be clean text
 * (fuzz-log.c, for the targets that link the library). Count of lines seen so far. */
void fuzz_log_check_install(void);
unsigned long fuzz_log_lines(void);

#endif

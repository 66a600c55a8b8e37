/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Read buffer for a byte stream cut into messages (agent frames, QMP lines).
 *
 * A fill appends at the end; consuming a message only advances an offset, so a read holding
 * thousands of tiny messages costs one pass over its bytes. The consumed prefix is reclaimed
 * by the next reserve, and only when it is at least as large as the live bytes to move: every
 * byte moved is paid for by a byte consumed since the previous compaction, so the bytes ever
 * moved never exceed the bytes ever consumed, whatever the peer sends (rbuf.moved counts them
 * for tests). Growth is geometric; the caller bounds the live bytes (its message limit).
 *
 * Not thread-safe: one reader at a time.
 */
#ifndef UVM_COMMON_RBUF_H
#define UVM_COMMON_RBUF_H

#include <stddef.h>
#include <stdint.h>

struct rbuf {
    uint8_t *buf;
    size_t off;   /* first unconsumed byte */
    size_t len;   /* end of the data */
    size_t cap;
    size_t moved; /* bytes moved by compaction so far (cost accounting for tests) */
};

/* The unconsumed bytes: rbuf_avail(r) of them at rbuf_data(r) (NULL when the buffer is empty
 * and was never filled). Valid until the next rbuf_reserve or rbuf_release. */
static inline const uint8_t *
rbuf_data(const struct rbuf *r)
{
    return r->buf ? r->buf + r->off : NULL;
}

static inline size_t
rbuf_avail(const struct rbuf *r)
{
    return r->len - r->off;
}

/* Room for at least `room` bytes after the data: returns where to write and sets *got to the
 * room there (>= room). Follow with rbuf_commit(r, bytes written). */
uint8_t *rbuf_reserve(struct rbuf *r, size_t room, size_t *got);
void rbuf_commit(struct rbuf *r, size_t n);
/* Drop the first n unconsumed bytes (n <= rbuf_avail). */
void rbuf_consume(struct rbuf *r, size_t n);
/* Free the memory; the buffer is empty and reusable afterwards. */
void rbuf_release(struct rbuf *r);

#endif

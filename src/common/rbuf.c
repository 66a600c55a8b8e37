/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "cleanup.h"
#include "rbuf.h"

uint8_t *
rbuf_reserve(struct rbuf *r, size_t room, size_t *got)
{
    if (r->off == r->len)
        r->off = r->len = 0; /* all consumed: nothing to move */
    size_t live = r->len - r->off;
    if (r->cap - r->len < room && r->off > 0 && live <= r->off) {
        /* Paid for by the r->off bytes consumed since the last compaction. */
        memmove(r->buf, r->buf + r->off, live);
        r->moved += live;
        r->off = 0;
        r->len = live;
    }
    if (r->cap - r->len < room) {
        size_t ncap = r->cap * 2 > r->len + room ? r->cap * 2 : r->len + room;
        r->buf = xrealloc(r->buf, ncap);
        r->cap = ncap;
    }
    *got = r->cap - r->len;
    return r->buf + r->len;
}

void
rbuf_commit(struct rbuf *r, size_t n)
{
    r->len += n;
}

void
rbuf_consume(struct rbuf *r, size_t n)
{
    size_t live = r->len - r->off;
    r->off += n < live ? n : live;
}

void
rbuf_release(struct rbuf *r)
{
    free(r->buf);
    *r = (struct rbuf){0};
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "agent-frames": the agent protocol's frame codec and incremental reader
 * (src/common/proto.c, rbuf.c), used by both ends of the channel.
 * Input: 1 byte choosing the read sizes, then the byte stream, fed through a pipe in reads of
 * those sizes. Properties: every frame the reader returns re-encodes to the bytes it came from
 * and has a valid header (size in [16, 1 MiB], stream frames within their limits); the frames
 * returned and the partial frame left tile the input up to the first bad header; the reader
 * moves no more bytes than it consumed (linear time); a frame queued with proto_outq comes out
 * byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rd_pipe[2] = {-1, -1}, wr_pipe[2] = {-1, -1};

static void
pipes_once(void)
{
    if (rd_pipe[0] >= 0)
        return;
    if (pipe2(rd_pipe, O_NONBLOCK | O_CLOEXEC) < 0 || pipe2(wr_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        abort();
}

/* Queue the frame on an outq, flush it into a pipe and check what comes out. */
static void
check_outq(const struct proto_header *h, const uint8_t *payload, size_t len, const uint8_t *raw)
{
    struct proto_outq q = {0};
    FUZZ_CHECK(proto_outq_push(&q, h->type, h->id, payload, len) == 0, "push of %zu bytes", len);
    FUZZ_CHECK(q.bytes == PROTO_HEADER_SIZE + len, "queued %zu", q.bytes);
    size_t got = 0;
    uint8_t *out = malloc(PROTO_HEADER_SIZE + len);
    for (;;) {
        int rc = proto_outq_flush(&q, wr_pipe[1]);
        FUZZ_CHECK(rc >= 0, "flush: %d", rc);
        ssize_t n = read(wr_pipe[0], out + got, PROTO_HEADER_SIZE + len - got);
        if (n > 0)
            got += (size_t)n;
        if (rc == 0 && (n <= 0 || got == PROTO_HEADER_SIZE + len))
            break;
    }
    FUZZ_CHECK(got == PROTO_HEADER_SIZE + len && !memcmp(out, raw, got), "outq bytes differ");
    FUZZ_CHECK(proto_outq_empty(&q), "outq not empty");
    proto_outq_release(&q);
    free(out);
}

static void
check_frame(const struct proto_header *h, const uint8_t *payload, size_t len, const uint8_t *raw)
{
    FUZZ_CHECK(len == h->size - PROTO_HEADER_SIZE && !memcmp(payload, raw + PROTO_HEADER_SIZE, len),
               "payload of %zu bytes for size %u", len, h->size);
    FUZZ_CHECK(h->size >= PROTO_HEADER_SIZE && h->size <= PROTO_MAX_MESSAGE, "size %u", h->size);
    uint8_t enc[PROTO_HEADER_SIZE];
    proto_header_encode(enc, h);
    FUZZ_CHECK(!memcmp(enc, raw, PROTO_HEADER_SIZE), "header does not re-encode");
    FUZZ_CHECK(h->type != PROTO_STREAM_DATA || len <= PROTO_MAX_CHUNK, "data frame of %zu", len);
    FUZZ_CHECK(h->type != PROTO_STREAM_ACK || len == 0, "ack with %zu bytes", len);
    FUZZ_CHECK(proto_type_name(h->type) != NULL, "type 0x%08x has no name", h->type);
    if (len <= 4096) /* the outq copy is checked on small frames (the pipe holds 64 KiB) */
        check_outq(h, payload, len, raw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pipes_once();
    struct fuzz_input in = {data, size};
    uint8_t sizes = fuzz_u8(&in);
    const uint8_t *stream = in.data;
    size_t total = in.len, fed = 0, consumed = 0;
    struct proto_reader r = {0};
    bool bad = false;
    unsigned step = 0;
    while (fed < total && !bad) {
        /* Reads of 1..256 bytes, or up to the pipe's 64 KiB, as the first byte says. */
        size_t chunk = sizes & 0x80 ? 65536 : (size_t)((sizes + step * 37u) % 256u) + 1;
        step++;
        if (chunk > total - fed)
            chunk = total - fed;
        ssize_t w = write(rd_pipe[1], stream + fed, chunk);
        FUZZ_CHECK(w > 0, "pipe write: %d", errno);
        fed += (size_t)w;
        for (;;) {
            long n = proto_reader_fill(&r, rd_pipe[0]);
            if (n == -EAGAIN)
                break;
            FUZZ_CHECK(n > 0, "fill: %ld", n);
        }
        for (;;) {
            struct proto_header h;
            const uint8_t *payload = NULL;
            size_t len = 0;
            int rc = proto_reader_next(&r, &h, &payload, &len);
            if (rc == 0)
                break;
            if (rc < 0) {
                FUZZ_CHECK(rc == -EMSGSIZE || rc == -EBADMSG, "next: %d", rc);
                struct proto_header h2;
                FUZZ_CHECK(proto_header_decode(stream + consumed, &h2) == rc, "decode disagrees");
                bad = true;
                break;
            }
            check_frame(&h, payload, len, stream + consumed);
            proto_reader_consume(&r, h.size);
            consumed += h.size;
            FUZZ_CHECK(proto_reader_moved(&r) <= consumed, "moved %zu > consumed %zu",
                       proto_reader_moved(&r), consumed);
        }
    }
    if (!bad) { /* what is left is one partial frame */
        size_t left = total - consumed;
        struct proto_header h;
        FUZZ_CHECK(left < PROTO_HEADER_SIZE || (proto_header_decode(stream + consumed, &h) == 0 &&
                                                left < h.size),
                   "%zu bytes left over", left);
    }
    proto_reader_release(&r);
    /* Drain what a bad frame left in the pipe. */
    uint8_t sink[4096];
    while (read(rd_pipe[0], sink, sizeof(sink)) > 0)
        ;
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host <-> guest agent (GCS) wire protocol, shared by libuvm and the guest agent.
 *
 * Framing follows hcsshim's bridge: a 16-byte little-endian header
 *     u32 type | u32 size (total, header included) | u64 id
 * followed by size-16 bytes of payload. Control messages carry UTF-8 JSON; responses echo the
 * request id and may arrive out of order. Two message classes are libuvm extensions (class 0x4):
 * stdio stream data (raw bytes) and stream acknowledgements, multiplexed over the same channel
 * because this host has no vsock to give each stream a connection of its own.
 *
 * Every frame is bounded (PROTO_MAX_MESSAGE) and validated before its payload is read.
 * The JSON schemas of each message are in docs/protocol.md.
 */
#ifndef UVM_COMMON_PROTO_H
#define UVM_COMMON_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rbuf.h"

#define PROTO_HEADER_SIZE 16u
#define PROTO_MAX_MESSAGE (1u << 20) /* total frame size, header included */
#define PROTO_MAX_CHUNK (64u * 1024) /* payload of one stream data frame */
#define PROTO_STREAM_WINDOW 4u       /* unacknowledged data frames per stream */
#define PROTO_VERSION 4u
#define PROTO_NULL_CONTAINER "00000000-0000-0000-0000-000000000000"
#define PROTO_PORT_NAME "gcs"       /* virtio-serial port name of the bridge */
#define PROTO_E_FAIL ((int32_t)0x80004005u) /* HRESULT E_FAIL */

/* Type = class(4 bits) | category(8) | message id(12) | version(8). */
enum proto_type {
    PROTO_REQ_CREATE_CONTAINER = 0x10100101u,
    PROTO_REQ_EXECUTE_PROCESS = 0x10100501u,
    PROTO_REQ_WAIT_PROCESS = 0x10100601u,
    PROTO_REQ_SIGNAL_PROCESS = 0x10100701u,
    PROTO_REQ_RESIZE_CONSOLE = 0x10100801u,
    PROTO_REQ_GET_PROPERTIES = 0x10100901u,
    PROTO_REQ_MODIFY_SETTINGS = 0x10100a01u,
    PROTO_REQ_NEGOTIATE_PROTOCOL = 0x10100b01u,
    PROTO_REQ_DELETE_CONTAINER_STATE = 0x10100d01u,
    PROTO_REQ_QUIESCE = 0x10108001u,  /* libuvm: ready the guest for a template save */
    PROTO_REQ_RESUME = 0x10108101u,   /* libuvm: a clone's identity, or the end of a quiesce */
    PROTO_NOTIFY_LOG = 0x30100201u,   /* guest -> host, JSON {"level","msg"} */
    PROTO_STREAM_DATA = 0x40100101u,  /* raw bytes, id = stream id, empty = end of stream */
    PROTO_STREAM_ACK = 0x40100201u,   /* empty, id = stream id: one data frame consumed */
};

#define PROTO_CLASS(t) ((uint32_t)(t) >> 28)
#define PROTO_CLASS_REQUEST 0x1u
#define PROTO_CLASS_RESPONSE 0x2u
#define PROTO_CLASS_NOTIFY 0x3u
#define PROTO_CLASS_STREAM 0x4u
#define PROTO_RESPONSE_OF(t) (((uint32_t)(t) & 0x0fffffffu) | 0x20000000u)

/* Stream ids: the host picks a handle per process; stream = handle << 2 | index. */
enum proto_stream_index { PROTO_STDIN = 0, PROTO_STDOUT = 1, PROTO_STDERR = 2 };
#define PROTO_STREAM_ID(handle, idx) (((uint64_t)(handle) << 2) | (uint64_t)(idx))
#define PROTO_STREAM_HANDLE(id) ((uint64_t)(id) >> 2)
#define PROTO_STREAM_INDEX(id) ((unsigned)((id)&3u))

struct proto_header {
    uint32_t type;
    uint32_t size; /* total */
    uint64_t id;
};

void proto_header_encode(uint8_t out[PROTO_HEADER_SIZE], const struct proto_header *h);

/* Decode and validate a header: 0, -EMSGSIZE (size < 16 or > PROTO_MAX_MESSAGE, or a stream
 * frame larger than a chunk), -EBADMSG (unknown type). */
int proto_header_decode(const uint8_t in[PROTO_HEADER_SIZE], struct proto_header *h);

/* Name of a known message type for logs ("ExecuteProcess"), or NULL. */
const char *proto_type_name(uint32_t type);

/* Incremental frame reader over a (non-blocking) byte stream. Linear in the bytes read however
 * small the frames (see rbuf.h): consuming a frame moves nothing. Zero-initialise. */
struct proto_reader {
    struct rbuf in;
};

/* Read what is available from fd into the reader: >0 bytes read, 0 on EOF, -EAGAIN when
 * nothing is available, other -errno on error. */
long proto_reader_fill(struct proto_reader *r, int fd);

/* Peek at the next complete frame: 1 and h, payload, len set (valid until consumed),
 * 0 when more bytes are needed, negative (from proto_header_decode) on a bad frame: the stream
 * cannot be resynchronised and must be dropped. */
int proto_reader_next(struct proto_reader *r, struct proto_header *h, const uint8_t **payload,
                      size_t *len);
/* Drop the first n bytes (h->size after handling a frame from proto_reader_next). */
void proto_reader_consume(struct proto_reader *r, size_t n);
void proto_reader_release(struct proto_reader *r);
/* Bytes moved in memory so far to reclaim consumed space (for tests: never more than the
 * bytes consumed). */
size_t proto_reader_moved(const struct proto_reader *r);

/* Queue of encoded frames waiting to be written to a non-blocking fd. */
struct proto_frame;
struct proto_outq {
    struct proto_frame *head, *tail;
    size_t off;   /* bytes of head already written */
    size_t bytes; /* queued bytes */
};

/* Append a frame; payload may be NULL when len is 0. -EMSGSIZE when too big. */
int proto_outq_push(struct proto_outq *q, uint32_t type, uint64_t id, const void *payload,
                    size_t len);
/* Write as much as possible: 0 when empty, 1 when bytes remain (wait for POLLOUT), -errno. */
int proto_outq_flush(struct proto_outq *q, int fd);
bool proto_outq_empty(const struct proto_outq *q);
void proto_outq_release(struct proto_outq *q);

#endif

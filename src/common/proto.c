/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "proto.h"

struct proto_frame {
    struct proto_frame *next;
    size_t len;
    uint8_t data[];
};

static void
put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void
proto_header_encode(uint8_t out[PROTO_HEADER_SIZE], const struct proto_header *h)
{
    put32(out, h->type);
    put32(out + 4, h->size);
    put32(out + 8, (uint32_t)h->id);
    put32(out + 12, (uint32_t)(h->id >> 32));
}

static const struct {
    uint32_t type;
    const char *name;
} type_names[] = {
    {PROTO_REQ_CREATE_CONTAINER, "CreateContainer"},
    {PROTO_REQ_EXECUTE_PROCESS, "ExecuteProcess"},
    {PROTO_REQ_WAIT_PROCESS, "WaitForProcess"},
    {PROTO_REQ_SIGNAL_PROCESS, "SignalProcess"},
    {PROTO_REQ_RESIZE_CONSOLE, "ResizeConsole"},
    {PROTO_REQ_GET_PROPERTIES, "GetProperties"},
    {PROTO_REQ_MODIFY_SETTINGS, "ModifySettings"},
    {PROTO_REQ_NEGOTIATE_PROTOCOL, "NegotiateProtocol"},
    {PROTO_REQ_DELETE_CONTAINER_STATE, "DeleteContainerState"},
    {PROTO_REQ_QUIESCE, "Quiesce"},
    {PROTO_REQ_RESUME, "Resume"},
    {PROTO_NOTIFY_LOG, "Log"},
    {PROTO_STREAM_DATA, "StreamData"},
    {PROTO_STREAM_ACK, "StreamAck"},
};

const char *
proto_type_name(uint32_t type)
{
    uint32_t base = type;
    if (PROTO_CLASS(type) == PROTO_CLASS_RESPONSE)
        base = (type & 0x0fffffffu) | 0x10000000u;
    for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
        if (type_names[i].type == base)
            return type_names[i].name;
    return NULL;
}

int
proto_header_decode(const uint8_t in[PROTO_HEADER_SIZE], struct proto_header *h)
{
    h->type = get32(in);
    h->size = get32(in + 4);
    h->id = (uint64_t)get32(in + 8) | (uint64_t)get32(in + 12) << 32;
    if (h->size < PROTO_HEADER_SIZE || h->size > PROTO_MAX_MESSAGE)
        return -EMSGSIZE;
    uint32_t cls = PROTO_CLASS(h->type);
    if (cls == PROTO_CLASS_RESPONSE) {
        uint32_t req = (h->type & 0x0fffffffu) | 0x10000000u;
        if (!proto_type_name(req))
            return -EBADMSG;
    } else if (!proto_type_name(h->type)) {
        return -EBADMSG;
    }
    if (h->type == PROTO_STREAM_DATA && h->size - PROTO_HEADER_SIZE > PROTO_MAX_CHUNK)
        return -EMSGSIZE;
    if (h->type == PROTO_STREAM_ACK && h->size != PROTO_HEADER_SIZE)
        return -EMSGSIZE;
    return 0;
}

long
proto_reader_fill(struct proto_reader *r, int fd)
{
    /* The caller handles every complete frame after a fill, so what stays buffered is at most
     * one partial frame (<= PROTO_MAX_MESSAGE) plus one read. */
    size_t room;
    uint8_t *dst = rbuf_reserve(&r->in, 64 * 1024, &room);
    ssize_t n = read(fd, dst, room);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    rbuf_commit(&r->in, (size_t)n);
    return n;
}

int
proto_reader_next(struct proto_reader *r, struct proto_header *h, const uint8_t **payload,
                  size_t *len)
{
    size_t avail = rbuf_avail(&r->in);
    const uint8_t *data = rbuf_data(&r->in);
    if (avail < PROTO_HEADER_SIZE)
        return 0;
    int rc = proto_header_decode(data, h);
    if (rc < 0)
        return rc;
    if (avail < h->size)
        return 0;
    *payload = data + PROTO_HEADER_SIZE;
    *len = h->size - PROTO_HEADER_SIZE;
    return 1;
}

void
proto_reader_consume(struct proto_reader *r, size_t n)
{
    rbuf_consume(&r->in, n);
}

void
proto_reader_release(struct proto_reader *r)
{
    rbuf_release(&r->in);
}

size_t
proto_reader_moved(const struct proto_reader *r)
{
    return r->in.moved;
}

int
proto_outq_push(struct proto_outq *q, uint32_t type, uint64_t id, const void *payload, size_t len)
{
    if (len > PROTO_MAX_MESSAGE - PROTO_HEADER_SIZE)
        return -EMSGSIZE;
    struct proto_frame *f = xmalloc(sizeof(*f) + PROTO_HEADER_SIZE + len);
    struct proto_header h = {.type = type, .size = (uint32_t)(PROTO_HEADER_SIZE + len), .id = id};
    proto_header_encode(f->data, &h);
    if (len)
        memcpy(f->data + PROTO_HEADER_SIZE, payload, len);
    f->len = PROTO_HEADER_SIZE + len;
    f->next = NULL;
    if (q->tail)
        q->tail->next = f;
    else
        q->head = f;
    q->tail = f;
    q->bytes += f->len;
    return 0;
}

int
proto_outq_flush(struct proto_outq *q, int fd)
{
    while (q->head) {
        struct proto_frame *f = q->head;
        ssize_t n = write(fd, f->data + q->off, f->len - q->off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            return -errno;
        }
        q->off += (size_t)n;
        q->bytes -= (size_t)n;
        if (q->off == f->len) {
            q->head = f->next;
            if (!q->head)
                q->tail = NULL;
            q->off = 0;
            free(f);
        }
    }
    return 0;
}

bool
proto_outq_empty(const struct proto_outq *q)
{
    return q->head == NULL;
}

void
proto_outq_release(struct proto_outq *q)
{
    struct proto_frame *f = q->head;
    while (f) {
        struct proto_frame *n = f->next;
        free(f);
        f = n;
    }
    q->head = q->tail = NULL;
    q->off = q->bytes = 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "log.h"
#include "proto.h"
#include "stream.h"

struct chunk {
    struct chunk *next;
    size_t len;
    uint8_t data[];
};

struct stream {
    struct stream *next, *prev;
    uint64_t id;
    uint64_t key; /* unique for the agent's lifetime */
    int fd;       /* -1 once closed */
    bool output;
    /* output */
    unsigned unacked;
    bool ended;
    stream_end_fn *on_end;
    void *ctx;
    /* input */
    struct chunk *head, *tail;
    unsigned queued;
    size_t off;
    bool eof;    /* end-of-stream received */
    bool broken; /* the pipe is gone: chunks are acknowledged and dropped */
};

static struct stream *streams;
static size_t nstreams;
static uint64_t next_key = 1;
static uint8_t readbuf[PROTO_MAX_CHUNK];

static struct stream *
stream_add(uint64_t id, int fd, bool output)
{
    struct stream *s = xcalloc(1, sizeof(*s));
    s->id = id;
    s->key = next_key++;
    s->fd = fd;
    s->output = output;
    s->next = streams;
    if (streams)
        streams->prev = s;
    streams = s;
    nstreams++;
    return s;
}

struct stream *
stream_new_output(uint64_t id, int fd, stream_end_fn *on_end, void *ctx)
{
    struct stream *s = stream_add(id, fd, true);
    s->on_end = on_end;
    s->ctx = ctx;
    return s;
}

struct stream *
stream_new_input(uint64_t id, int fd)
{
    return stream_add(id, fd, false);
}

static void
close_fd(struct stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static void
drop_chunks(struct stream *s)
{
    while (s->head) {
        struct chunk *c = s->head;
        s->head = c->next;
        free(c);
    }
    s->tail = NULL;
    s->queued = 0;
    s->off = 0;
}

void
stream_free(struct stream *s)
{
    if (!s)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    nstreams--;
    close_fd(s);
    drop_chunks(s);
    free(s);
}

static struct stream *
find_id(uint64_t id)
{
    for (struct stream *s = streams; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static struct stream *
find_key(uint64_t key)
{
    for (struct stream *s = streams; s; s = s->next)
        if (s->key == key)
            return s;
    return NULL;
}

/* Output stream reached its end: queue the end-of-stream frame. May free s. */
static void
output_end(struct bridge *b, struct stream *s)
{
    close_fd(s);
    s->ended = true;
    bridge_send(b, PROTO_STREAM_DATA, s->id, NULL, 0);
    log_debug("stream 0x%llx: end", (unsigned long long)s->id);
    if (s->on_end)
        s->on_end(b, s->ctx);
}

static void
output_read(struct bridge *b, struct stream *s)
{
    ssize_t n = read(s->fd, readbuf, sizeof(readbuf));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        /* EIO: a terminal's master once every holder of its slave closed it (tty.h). */
        if (errno != EIO)
            log_warn("stream 0x%llx: read: %s", (unsigned long long)s->id, strerror(errno));
        output_end(b, s);
        return;
    }
    if (n == 0) {
        output_end(b, s);
        return;
    }
    bridge_send(b, PROTO_STREAM_DATA, s->id, readbuf, (size_t)n);
    s->unacked++;
}

static void
ack(struct bridge *b, struct stream *s)
{
    bridge_send(b, PROTO_STREAM_ACK, s->id, NULL, 0);
}

/* Close the pipe once everything received before end-of-stream was written. */
static void
input_maybe_close(struct stream *s)
{
    if (s->eof && !s->head && s->fd >= 0) {
        log_debug("stream 0x%llx: end, stdin closed", (unsigned long long)s->id);
        close_fd(s);
    }
}

static void
input_break(struct bridge *b, struct stream *s, int err)
{
    log_debug("stream 0x%llx: stdin: %s; further data is dropped", (unsigned long long)s->id,
              strerror(err));
    for (unsigned i = 0; i < s->queued; i++)
        ack(b, s); /* let the host's writer go on: nothing will read it */
    drop_chunks(s);
    close_fd(s);
    s->broken = true;
}

static void
input_write(struct bridge *b, struct stream *s)
{
    while (s->head) {
        struct chunk *c = s->head;
        ssize_t n = write(s->fd, c->data + s->off, c->len - s->off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            input_break(b, s, errno);
            return;
        }
        s->off += (size_t)n;
        if (s->off < c->len)
            continue;
        s->head = c->next;
        if (!s->head)
            s->tail = NULL;
        s->queued--;
        s->off = 0;
        free(c);
        ack(b, s);
    }
    input_maybe_close(s);
}

void
stream_on_data(struct bridge *b, uint64_t id, const uint8_t *data, size_t len)
{
    struct stream *s = find_id(id);
    if (!s && len == 0) { /* an input's end after its process was forgotten: nothing lost */
        log_debug("end of unknown stream 0x%llx ignored", (unsigned long long)id);
        return;
    }
    if (!s || s->output) {
        log_warn("stream data for unknown stream 0x%llx (%zu bytes) dropped",
                 (unsigned long long)id, len);
        return;
    }
    if (s->eof) {
        log_warn("stream 0x%llx: data after end of stream dropped", (unsigned long long)id);
        return;
    }
    if (len == 0) {
        s->eof = true;
        input_maybe_close(s);
        return;
    }
    if (s->broken) {
        ack(b, s);
        return;
    }
    if (s->queued >= PROTO_STREAM_WINDOW) {
        log_warn("stream 0x%llx: data frame beyond the window of %u dropped",
                 (unsigned long long)id, PROTO_STREAM_WINDOW);
        return;
    }
    struct chunk *c = xmalloc(sizeof(*c) + len);
    c->next = NULL;
    c->len = len;
    memcpy(c->data, data, len);
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->queued++;
    if (s->queued == 1)
        input_write(b, s); /* usually the pipe has room: no poll round trip */
}

void
stream_on_ack(struct bridge *b, uint64_t id)
{
    struct stream *s = find_id(id);
    if (!s) {
        log_debug("ack for unknown stream 0x%llx ignored", (unsigned long long)id);
        return;
    }
    if (!s->output || s->unacked == 0) {
        log_warn("unexpected ack for stream 0x%llx ignored", (unsigned long long)id);
        return;
    }
    s->unacked--;
}

size_t
stream_count(void)
{
    return nstreams;
}

size_t
stream_poll_fill(struct pollfd *pfds, uint64_t *keys, size_t max)
{
    size_t n = 0;
    for (struct stream *s = streams; s && n < max; s = s->next) {
        if (s->fd < 0)
            continue;
        short ev = 0;
        if (s->output && !s->ended && s->unacked < PROTO_STREAM_WINDOW)
            ev = POLLIN;
        else if (!s->output && s->head)
            ev = POLLOUT;
        if (!ev)
            continue;
        pfds[n] = (struct pollfd){.fd = s->fd, .events = ev};
        keys[n] = s->key;
        n++;
    }
    return n;
}

void
stream_poll_handle(struct bridge *b, uint64_t key, short revents)
{
    struct stream *s = find_key(key);
    if (!s || s->fd < 0 || !revents)
        return;
    if (s->output) {
        if (!s->ended && s->unacked < PROTO_STREAM_WINDOW)
            output_read(b, s);
    } else if (s->head) {
        input_write(b, s);
    }
}

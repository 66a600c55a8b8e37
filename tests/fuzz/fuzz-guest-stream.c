/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "guest-stream": the guest agent's stdio stream state machine (src/guest/stream.c) with
 * real pipes standing for the processes' stdio and bridge_send stubbed to record what would go
 * to the host. The agent's own log (src/guest/log.c) goes to a sink.
 *
 * Input: operations, 1 byte each plus arguments: start a process (stdin, stdout, stderr streams
 * with ids handle << 2 | 0, 1, 2), host data / end of stream / ack on any of its streams or an
 * unknown one, the process writing to or closing stdout/stderr, reading or closing stdin, a poll
 * round, the process exiting (its streams are freed once its outputs ended, as process.c does,
 * possibly from the end-of-stream callback).
 * Properties, checked as frames are sent: an output stream never has more than the window of
 * data frames unacknowledged, sends exactly the bytes the process wrote, in order, then one end
 * of stream and nothing after it; an input stream acknowledges no more frames than it was sent
 * and hands the process whole frames, in order. At the end (every process closes its stdio,
 * the host acknowledges everything): every output stream ends with all its bytes sent, and
 * freeing the streams closes every fd the agent was given.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "fuzz-util.h"
#include "log.h"
#include "proto.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_PROCS 4
#define MAX_CHUNKS 128 /* stdin chunks per process */
#define MAX_OPS 512

struct out_model {           /* stdout or stderr */
    int wfd;                 /* the process's end, -1 once closed */
    uint8_t *written;        /* what the process wrote */
    size_t nwritten, nsent;  /* bytes written; bytes the agent sent (a prefix of them) */
    unsigned unacked;        /* data frames sent and not acknowledged (the agent's view) */
    bool ended;              /* end of stream sent */
};

struct in_model {            /* stdin */
    int rfd;                 /* the process's end, -1 once closed */
    unsigned delivered, acks; /* non-empty data frames the host sent; acks the agent sent */
    uint32_t next_seq;       /* sequence number of the next chunk the host sends */
    uint8_t *got;            /* what the process read */
    size_t ngot, checked;    /* bytes read; bytes checked (a chunk boundary) */
    uint32_t last_seq;       /* the last whole chunk checked */
    size_t chunk_len[MAX_CHUNKS]; /* by sequence number (1..) */
};

struct proc {
    bool used, exited, freed;
    uint32_t handle;
    struct stream *s[3];
    int agent_fds[3];
    unsigned open_outputs;
    struct in_model in;
    struct out_model out[3]; /* [1], [2] */
};

static struct proc procs[MAX_PROCS];
static uint32_t next_handle = 1;
static uint8_t chunk[PROTO_MAX_CHUNK];

static struct proc *
proc_of(uint64_t id, unsigned *idx)
{
    for (unsigned i = 0; i < MAX_PROCS; i++) {
        if (procs[i].used && !procs[i].freed && PROTO_STREAM_HANDLE(id) == procs[i].handle) {
            *idx = PROTO_STREAM_INDEX(id);
            return *idx < 3 ? &procs[i] : NULL;
        }
    }
    return NULL;
}

/* The content of stdin chunk seq: its number, then a pattern of it. */
static uint8_t
chunk_byte(uint32_t seq, size_t i)
{
    return i < 4 ? (uint8_t)(seq >> (8 * i)) : (uint8_t)(seq * 31u + i);
}

/* The stub: what the agent sends to the host, checked as it goes. */
int
bridge_send(struct bridge *b, uint32_t type, uint64_t id, const void *payload, size_t len)
{
    (void)b;
    unsigned idx = 0;
    struct proc *p = proc_of(id, &idx);
    FUZZ_CHECK(p, "frame 0x%08x for stream 0x%llx, which the agent does not have", type,
               (unsigned long long)id);
    if (type == PROTO_STREAM_ACK) {
        FUZZ_CHECK(idx == PROTO_STDIN, "ack on output stream %u", idx);
        p->in.acks++;
        FUZZ_CHECK(p->in.acks <= p->in.delivered, "%u acks for %u data frames", p->in.acks,
                   p->in.delivered);
        return 0;
    }
    FUZZ_CHECK(type == PROTO_STREAM_DATA && idx != PROTO_STDIN, "frame 0x%08x on stream %u", type,
               idx);
    struct out_model *o = &p->out[idx];
    FUZZ_CHECK(!o->ended, "frame after the end of stream %u", idx);
    if (len == 0) {
        o->ended = true;
        FUZZ_CHECK(o->nsent == o->nwritten && o->wfd < 0,
                   "end of stream with %zu of %zu bytes sent (writer %s)", o->nsent, o->nwritten,
                   o->wfd < 0 ? "closed" : "open");
        return 0;
    }
    FUZZ_CHECK(len <= PROTO_MAX_CHUNK, "data frame of %zu bytes", len);
    FUZZ_CHECK(o->nsent + len <= o->nwritten && !memcmp(o->written + o->nsent, payload, len),
               "stream %u sent bytes the process did not write", idx);
    o->nsent += len;
    o->unacked++;
    FUZZ_CHECK(o->unacked <= PROTO_STREAM_WINDOW, "%u frames unacknowledged", o->unacked);
    return 0;
}

static void
log_sink(enum log_level level, const char *msg, void *ctx)
{
    (void)level;
    (void)ctx;
    FUZZ_CHECK(strlen(msg) < 1024, "log line of %zu bytes", strlen(msg));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN); /* as the agent: a closed pipe is EPIPE */
    log_set_level(LOG_LEVEL_DEBUG);
    log_set_sink(log_sink, NULL);
    return 0;
}

static void
proc_free(struct proc *p)
{
    if (p->freed)
        return;
    p->freed = true;
    for (unsigned i = 0; i < 3; i++)
        stream_free(p->s[i]);
}

static void
on_end(struct bridge *b, void *ctx)
{
    (void)b;
    struct proc *p = ctx;
    p->open_outputs--;
    if (p->exited && p->open_outputs == 0)
        proc_free(p);
}

static void
proc_start(void)
{
    struct proc *p = NULL;
    for (unsigned i = 0; i < MAX_PROCS && !p; i++)
        if (!procs[i].used)
            p = &procs[i];
    if (!p)
        return;
    *p = (struct proc){.used = true, .handle = next_handle++, .open_outputs = 2};
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        abort();
    p->in.rfd = fds[0];
    p->agent_fds[0] = fds[1];
    p->s[0] = stream_new_input(PROTO_STREAM_ID(p->handle, 0), fds[1]);
    for (unsigned i = 1; i < 3; i++) {
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
            abort();
        p->out[i].wfd = fds[1];
        p->agent_fds[i] = fds[0];
        p->s[i] = stream_new_output(PROTO_STREAM_ID(p->handle, i), fds[0], on_end, p);
    }
}

static struct proc *
pick(struct fuzz_input *in)
{
    struct proc *p = &procs[fuzz_u8(in) % MAX_PROCS];
    return p->used ? p : NULL;
}

/* The host sends a data frame (len > 0: a numbered chunk) or end of stream on id. */
static void
host_data(struct proc *p, unsigned idx, size_t len)
{
    uint64_t id = PROTO_STREAM_ID(p->handle, idx);
    if (len == 0 || p->freed || idx != PROTO_STDIN) {
        if (len)
            memset(chunk, 0xee, len);
        stream_on_data(NULL, id, chunk, len);
        return;
    }
    if (p->in.next_seq + 1 >= MAX_CHUNKS)
        return;
    uint32_t seq = ++p->in.next_seq;
    len = len < 4 ? 4 : len;
    for (size_t i = 0; i < len; i++)
        chunk[i] = chunk_byte(seq, i);
    p->in.chunk_len[seq] = len;
    p->in.delivered++;
    stream_on_data(NULL, id, chunk, len);
}

/* What the process read from stdin is whole chunks, in increasing order (frames beyond the
 * window are dropped); the last one may be partly read. */
static void
check_stdin(struct in_model *m)
{
    while (m->checked < m->ngot) {
        size_t left = m->ngot - m->checked;
        const uint8_t *c = m->got + m->checked;
        if (left < 4)
            return; /* a chunk's number, partly read */
        uint32_t seq = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
                       (uint32_t)c[3] << 24;
        FUZZ_CHECK(seq > m->last_seq && seq <= m->next_seq, "stdin chunk %u after %u", seq,
                   m->last_seq);
        size_t len = m->chunk_len[seq];
        for (size_t i = 4; i < len && i < left; i++)
            FUZZ_CHECK(c[i] == chunk_byte(seq, i), "stdin chunk %u byte %zu", seq, i);
        if (left < len)
            return;
        m->last_seq = seq;
        m->checked += len;
    }
}

static void
proc_read(struct proc *p, size_t max)
{
    struct in_model *m = &p->in;
    while (max && m->rfd >= 0) {
        m->got = realloc(m->got, m->ngot + 4096);
        ssize_t n = read(m->rfd, m->got + m->ngot, max < 4096 ? max : 4096);
        if (n <= 0)
            break;
        m->ngot += (size_t)n;
        max -= (size_t)n;
    }
    check_stdin(m);
}

static void
proc_write(struct proc *p, unsigned idx, size_t len)
{
    struct out_model *o = &p->out[idx];
    if (o->wfd < 0)
        return;
    o->written = realloc(o->written, o->nwritten + len);
    for (size_t i = 0; i < len; i++)
        o->written[o->nwritten + i] = (uint8_t)(o->nwritten + i) ^ (uint8_t)(idx << 7);
    ssize_t n = write(o->wfd, o->written + o->nwritten, len);
    if (n > 0)
        o->nwritten += (size_t)n;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The host acknowledges an output frame (only counted when the agent has one outstanding). */
static void
host_ack(struct proc *p, unsigned idx)
{
    uint64_t id = PROTO_STREAM_ID(p->handle, idx);
    if (!p->freed && idx != PROTO_STDIN && idx < 3 && p->out[idx].unacked)
        p->out[idx].unacked--;
    stream_on_ack(NULL, id);
}

static void
poll_round(void)
{
    struct pollfd pfds[3 * MAX_PROCS];
    uint64_t keys[3 * MAX_PROCS];
    size_t n = stream_poll_fill(pfds, keys, 3 * MAX_PROCS);
    FUZZ_CHECK(n <= stream_count(), "%zu poll entries for %zu streams", n, stream_count());
    if (n && poll(pfds, n, 0) < 0)
        abort();
    for (size_t i = 0; i < n; i++)
        stream_poll_handle(NULL, keys[i], pfds[i].revents);
}

static void
proc_exit(struct proc *p)
{
    p->exited = true;
    if (p->open_outputs == 0)
        proc_free(p);
}

static void
operation(struct fuzz_input *in)
{
    uint8_t op = fuzz_u8(in);
    struct proc *p = op % 10 ? pick(in) : NULL;
    unsigned idx = (op >> 4) & 3;
    size_t len = ((size_t)fuzz_u8(in) << 8 | fuzz_u8(in)) % PROTO_MAX_CHUNK + 1;
    if (op % 10 == 0) {
        proc_start();
        return;
    }
    if (!p)
        return;
    switch (op % 10) {
    case 1:
        host_data(p, idx, len);
        break;
    case 2:
        host_data(p, idx, 0);
        break;
    case 3:
        host_ack(p, idx);
        break;
    case 4:
        proc_write(p, 1 + (idx & 1), len);
        break;
    case 5:
        close_fd(&p->out[1 + (idx & 1)].wfd);
        break;
    case 6:
        proc_read(p, len);
        break;
    case 7:
        close_fd(&p->in.rfd);
        break;
    case 8:
        poll_round();
        break;
    default:
        proc_exit(p);
        break;
    }
}

/* Every process closes its stdio and exits; the host acknowledges all: each output must end
 * with every byte sent. Then every fd given to the agent is closed. */
static void
finish(void)
{
    for (unsigned i = 0; i < MAX_PROCS; i++) {
        struct proc *p = &procs[i];
        if (!p->used)
            continue;
        proc_read(p, SIZE_MAX);
        close_fd(&p->in.rfd);
        close_fd(&p->out[1].wfd);
        close_fd(&p->out[2].wfd);
        p->exited = true;
    }
    for (unsigned round = 0; round < 4096; round++) {
        bool busy = false;
        for (unsigned i = 0; i < MAX_PROCS; i++) {
            struct proc *p = &procs[i];
            for (unsigned k = 1; p->used && !p->freed && k < 3; k++) {
                while (p->out[k].unacked)
                    host_ack(p, k);
                busy = busy || !p->out[k].ended;
            }
        }
        if (!busy)
            break;
        poll_round();
    }
    for (unsigned i = 0; i < MAX_PROCS; i++) {
        struct proc *p = &procs[i];
        for (unsigned k = 1; k < 3 && p->used && !p->freed; k++)
            FUZZ_CHECK(p->out[k].ended && p->out[k].nsent == p->out[k].nwritten,
                       "stream %u: %s, %zu of %zu bytes sent", k,
                       p->out[k].ended ? "ended" : "not ended", p->out[k].nsent,
                       p->out[k].nwritten);
        if (p->used)
            proc_free(p);
    }
    /* Only now: an fd closed early may have been reused by a later process's pipe. */
    for (unsigned i = 0; i < MAX_PROCS; i++) {
        struct proc *p = &procs[i];
        for (unsigned k = 0; k < 3 && p->used; k++)
            FUZZ_CHECK(fcntl(p->agent_fds[k], F_GETFD) < 0 && errno == EBADF,
                       "fd %d of stream %u still open", p->agent_fds[k], k);
        free(p->in.got);
        free(p->out[1].written);
        free(p->out[2].written);
        *p = (struct proc){0};
    }
    FUZZ_CHECK(stream_count() == 0, "%zu streams left", stream_count());
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    next_handle = 1;
    for (unsigned n = 0; n < MAX_OPS && in.len; n++)
        operation(&in);
    finish();
    return 0;
}

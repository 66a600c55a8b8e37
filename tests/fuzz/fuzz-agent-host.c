/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "agent-host": the host side of the agent channel (src/lib/bridge.c, bridgelog.c,
 * src/common/proto.c, rbuf.c) with its real I/O thread, the guest being this target on the
 * other end of a socketpair. Everything the guest can send reaches it: responses (to calls in
 * flight, unknown, duplicate, malformed), Log notifications, StreamData and StreamAck on a
 * process's streams and on unknown ones, requests, unknown types, bad headers.
 *
 * Input: 4 bytes of set-up, then the bytes the guest writes (after which it closes its side).
 *   byte 0: bit 0 trust guest log levels, bits 1-2 calls in flight (0-3), bit 3 a process with
 *           stdio (handle 1: stdin 4, stdout 5, stderr 6), bit 4 its stdout reader gone, bit 5
 *           its stdin closed after the data below, bit 6 streams removed before the end, bit 7
 *           the log rate limit on a fake clock (byte 3 us per reading)
 *   byte 1: the types of the calls in flight, 2 bits each; byte 2: chunks of stdin (0-3)
 * The calls in flight have ids 1, 2, 3 (each is on the wire before the guest writes).
 *
 * Properties: nothing crashes, leaks or hangs; every call ends (answered, refused, or failed
 * when the guest closes) with a clean message; every log line is clean text; the host
 * acknowledges no more data frames on a stream than the guest sent on it, delivers no more
 * output than was sent, never has more than the window of stdin frames unacknowledged, and
 * sends stdin bytes in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "bridge.h"
#include "fuzz-util.h"
#include "proto.h"
#include "timeutil.h"
#include "uvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CALL_DEADLINE_MS 10000 /* a call still waiting then is a hang: the guest closed long ago */
#define STDIN_CHUNK 100u
#define SID_STDIN PROTO_STREAM_ID(1, PROTO_STDIN)
#define SID_STDOUT PROTO_STREAM_ID(1, PROTO_STDOUT)
#define SID_STDERR PROTO_STREAM_ID(1, PROTO_STDERR)
#define MAX_SIDS 64

static const uint32_t call_types[4] = {PROTO_REQ_EXECUTE_PROCESS, PROTO_REQ_WAIT_PROCESS,
                                       PROTO_REQ_MODIFY_SETTINGS, PROTO_REQ_NEGOTIATE_PROTOCOL};

struct call {
    struct bridge *b;
    uint32_t type;
    int rc;
    pthread_t t;
};

static void
check_call(int rc, json_t *resp)
{
    FUZZ_CHECK(rc != UVM_E_TIMEOUT, "a call hung: %s", uvm_last_error());
    FUZZ_CHECK(rc == 0 || rc == UVM_E_GUEST || rc == UVM_E_PROTOCOL || rc == UVM_E_UNEXPECTED_EXIT,
               "call failed with %d: %s", rc, uvm_last_error());
    FUZZ_CHECK(rc < 0 || json_is_object(resp), "answered without an object");
    if (rc < 0) {
        const char *m = uvm_last_error();
        const char *why = fuzz_text_problem(m, strlen(m), false);
        FUZZ_CHECK(!why, "error message with %s: %s", why, m);
    }
    json_decref(resp);
}

static void *
call_thread(void *arg)
{
    struct call *c = arg;
    json_t *resp = NULL;
    c->rc = bridge_call(c->b, c->type, json_pack("{s:i}", "Fuzz", 1), &resp,
                        deadline_after_ms(CALL_DEADLINE_MS));
    check_call(c->rc, resp);
    return NULL;
}

struct writer {
    int fd;
    const uint8_t *data;
    size_t len;
    pthread_t t;
};

static void *
writer_thread(void *arg)
{
    struct writer *w = arg;
    (void)fuzz_write_all(w->fd, w->data, w->len); /* EPIPE once the bridge is freed */
    shutdown(w->fd, SHUT_WR);
    return NULL;
}

/* Per stream id: what the guest sent (from the input) and what the host sent back. */
struct tally {
    uint64_t sid;
    unsigned guest_data, guest_acks, host_acks, host_data;
    size_t guest_bytes;
};

struct tallies {
    struct tally t[MAX_SIDS];
    size_t n;
    bool overflow;
};

static struct tally *
tally_of(struct tallies *ts, uint64_t sid)
{
    for (size_t i = 0; i < ts->n; i++)
        if (ts->t[i].sid == sid)
            return &ts->t[i];
    if (ts->n == MAX_SIDS) {
        ts->overflow = true;
        return NULL;
    }
    ts->t[ts->n] = (struct tally){.sid = sid};
    return &ts->t[ts->n++];
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Frames in buf[0..len) up to the first the host cannot accept: fn(header, payload, len). */
static void
walk_frames(const uint8_t *buf, size_t len, struct tallies *ts, bool from_guest,
            const uint8_t *stdin_sent, size_t *stdin_off)
{
    size_t off = 0;
    while (len - off >= PROTO_HEADER_SIZE) {
        struct proto_header h;
        if (proto_header_decode(buf + off, &h) < 0 || h.size > len - off) {
            FUZZ_CHECK(from_guest || h.size > len - off, "the host sent a bad frame");
            return;
        }
        uint64_t id = (uint64_t)get32(buf + off + 8) | (uint64_t)get32(buf + off + 12) << 32;
        size_t plen = h.size - PROTO_HEADER_SIZE;
        struct tally *t = PROTO_CLASS(h.type) == PROTO_CLASS_STREAM ? tally_of(ts, id) : NULL;
        if (t && h.type == PROTO_STREAM_DATA && plen) {
            if (from_guest) {
                t->guest_data++;
                t->guest_bytes += plen;
            } else {
                t->host_data++;
                FUZZ_CHECK(id == SID_STDIN, "host data on stream 0x%llx", (unsigned long long)id);
                FUZZ_CHECK(!memcmp(buf + off + PROTO_HEADER_SIZE, stdin_sent + *stdin_off, plen),
                           "stdin bytes out of order");
                *stdin_off += plen;
            }
        } else if (t && h.type == PROTO_STREAM_ACK) {
            if (from_guest)
                t->guest_acks++;
            else
                t->host_acks++;
        }
        off += h.size;
    }
}

/* All that is readable on fd now (it is non-blocking, or at end of file). */
static uint8_t *
slurp(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + n, cap - n, MSG_DONTWAIT);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

/* Read frames the host sends until a request (a call got on the wire). */
static void
await_request(int fd, uint8_t **log, size_t *loglen)
{
    for (;;) {
        uint8_t hdr[PROTO_HEADER_SIZE];
        FUZZ_CHECK(fuzz_read_exact(fd, hdr, sizeof(hdr), 5000) == 0, "no request from the host");
        uint32_t type = get32(hdr), size = get32(hdr + 4);
        FUZZ_CHECK(size >= PROTO_HEADER_SIZE && size <= PROTO_MAX_MESSAGE, "size %u", size);
        *log = realloc(*log, *loglen + size);
        memcpy(*log + *loglen, hdr, sizeof(hdr));
        FUZZ_CHECK(fuzz_read_exact(fd, *log + *loglen + sizeof(hdr), size - sizeof(hdr), 5000) == 0,
                   "truncated frame from the host");
        *loglen += size;
        if (PROTO_CLASS(type) == PROTO_CLASS_REQUEST)
            return;
    }
}

static int64_t fake_now, fake_step;

static int64_t
fake_clock(void *opaque)
{
    (void)opaque;
    return fake_now += fake_step;
}

struct process {
    int users[3];
    uint8_t stdin_sent[3 * STDIN_CHUNK];
    size_t stdin_len;
};

static void
process_start(struct bridge *b, uint8_t flags, unsigned chunks, struct process *p)
{
    int ours[3];
    uint32_t handle = bridge_new_handle(b);
    FUZZ_CHECK(handle == 1, "handle %u", handle);
    for (unsigned i = 0; i < 3; i++) {
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
            abort();
        ours[i] = sp[0];
        p->users[i] = sp[1];
        shutdown(sp[0], i == PROTO_STDIN ? SHUT_WR : SHUT_RD);
        shutdown(sp[1], i == PROTO_STDIN ? SHUT_RD : SHUT_WR);
    }
    for (unsigned i = 0; i < chunks; i++) {
        memset(p->stdin_sent + p->stdin_len, 'a' + (int)i, STDIN_CHUNK);
        FUZZ_CHECK(fuzz_write_all(p->users[0], p->stdin_sent + p->stdin_len, STDIN_CHUNK) == 0,
                   "stdin write");
        p->stdin_len += STDIN_CHUNK;
    }
    if (flags & 0x20) {
        close(p->users[0]);
        p->users[0] = -1;
    }
    if (flags & 0x10) {
        close(p->users[1]);
        p->users[1] = -1;
    }
    bridge_stream_add(b, handle, ours);
}

/* What the host sent and delivered, against what the guest sent. */
static void
check_streams(const uint8_t *guest, size_t guest_len, const uint8_t *host, size_t host_len,
              const struct process *p, const size_t out_bytes[3])
{
    struct tallies ts = {0};
    size_t stdin_off = 0;
    walk_frames(guest, guest_len, &ts, true, NULL, NULL);
    walk_frames(host, host_len, &ts, false, p->stdin_sent, &stdin_off);
    if (ts.overflow)
        return;
    for (size_t i = 0; i < ts.n; i++) {
        const struct tally *t = &ts.t[i];
        FUZZ_CHECK(t->host_acks <= t->guest_data, "stream 0x%llx: %u acks for %u data frames",
                   (unsigned long long)t->sid, t->host_acks, t->guest_data);
        FUZZ_CHECK(t->host_data <= PROTO_STREAM_WINDOW + t->guest_acks,
                   "stream 0x%llx: %u data frames sent for %u acks",
                   (unsigned long long)t->sid, t->host_data, t->guest_acks);
        for (unsigned k = 1; k < 3; k++)
            if (t->sid == PROTO_STREAM_ID(1, k))
                FUZZ_CHECK(out_bytes[k] <= t->guest_bytes, "stream %u: %zu bytes of %zu", k,
                           out_bytes[k], t->guest_bytes);
    }
}

/* The guest's bytes: what the socket takes at once is written here, a writer thread sends the
 * rest (the bridge may stop reading: a bad frame breaks the channel). Whether a thread was
 * started (to join after bridge_free). */
static bool
guest_writes(struct writer *w)
{
    while (w->len) {
        ssize_t n = send(w->fd, w->data, w->len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        w->data += n;
        w->len -= (size_t)n;
    }
    if (w->len > 0) {
        pthread_create(&w->t, NULL, writer_thread, w);
        return true;
    }
    shutdown(w->fd, SHUT_WR);
    return false;
}

/* Calls until the guest's end of file fails them (or a bad frame broke the channel). */
static void
calls_until_down(struct bridge *b)
{
    for (unsigned k = 0; k < 64; k++) {
        json_t *resp = NULL;
        int rc = bridge_call(b, PROTO_REQ_NEGOTIATE_PROTOCOL, json_object(), &resp,
                             deadline_after_ms(CALL_DEADLINE_MS));
        bool down = rc == UVM_E_UNEXPECTED_EXIT ||
                    (rc == UVM_E_PROTOCOL && strncmp(uvm_last_error(), "malformed", 9) != 0);
        check_call(rc, resp);
        if (down)
            return;
    }
}

/* host[0..*len) followed by what is left to read on fd (the bridge is gone: to its end). */
static uint8_t *
append_rest(int fd, uint8_t *host, size_t *len)
{
    size_t more_len = 0;
    uint8_t *more = slurp(fd, &more_len);
    host = realloc(host, *len + more_len + 1);
    memcpy(host + *len, more, more_len);
    *len += more_len;
    free(more);
    return host;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_check_install();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    uint8_t flags = fuzz_u8(&in), types = fuzz_u8(&in), chunks = fuzz_u8(&in) % 4;
    fake_step = fuzz_u8(&in) * 1000;
    fake_now = 0;
    unsigned ncalls = (flags >> 1) & 3;

    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        abort();
    struct bridge *b = NULL;
    FUZZ_CHECK(bridge_new(sp[0], "fuzz", flags & 1, &b) == 0, "bridge_new");
    if (flags & 0x80)
        bridge_set_clock(b, fake_clock, NULL);
    struct process p = {.users = {-1, -1, -1}};
    if (flags & 0x08)
        process_start(b, flags, chunks, &p);

    uint8_t *host = NULL;
    size_t host_len = 0;
    struct call calls[3];
    for (unsigned i = 0; i < ncalls; i++) {
        calls[i] = (struct call){.b = b, .type = call_types[(types >> (2 * i)) & 3]};
        pthread_create(&calls[i].t, NULL, call_thread, &calls[i]);
        await_request(sp[1], &host, &host_len);
    }

    struct writer w = {.fd = sp[1], .data = in.data, .len = in.len};
    bool threaded = guest_writes(&w);
    calls_until_down(b);
    for (unsigned i = 0; i < ncalls; i++)
        pthread_join(calls[i].t, NULL);
    if (flags & 0x40)
        bridge_stream_remove(b, 1);
    bridge_free(b);
    if (threaded)
        pthread_join(w.t, NULL);

    size_t out_bytes[3] = {0};
    host = append_rest(sp[1], host, &host_len);
    for (unsigned k = 1; k < 3; k++)
        if (p.users[k] >= 0)
            free(slurp(p.users[k], &out_bytes[k]));
    check_streams(in.data, in.len, host, host_len, &p, out_bytes);
    free(host);
    for (unsigned k = 0; k < 3; k++)
        if (p.users[k] >= 0)
            close(p.users[k]);
    close(sp[1]);
    return 0;
}

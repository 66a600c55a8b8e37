/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host side of the agent protocol against a scripted fake guest on a socketpair: framing,
 * out-of-order responses, errors, truncated / oversized / garbage frames, streams. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bridge.h"
#include "cleanup.h"
#include "proto.h"
#include "timeutil.h"
#include "uvm.h"

struct fixture {
    struct bridge *b;
    int guest; /* the fake guest's end */
};

static int
setup(void **state)
{
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    struct fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(bridge_new(sp[0], "unit", false, &f->b), 0);
    f->guest = sp[1];
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    bridge_free(f->b);
    if (f->guest >= 0)
        close(f->guest);
    free(f);
    return 0;
}

static void
read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);
        ssize_t n = read(fd, (char *)buf + got, len - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
}

/* Read one frame from the host; returns the payload (NUL-terminated, caller frees). */
static char *
guest_read(int fd, struct proto_header *h)
{
    uint8_t hdr[PROTO_HEADER_SIZE];
    read_full(fd, hdr, sizeof(hdr));
    assert_int_equal(proto_header_decode(hdr, h), 0);
    size_t len = h->size - PROTO_HEADER_SIZE;
    char *payload = calloc(1, len + 1);
    read_full(fd, payload, len);
    return payload;
}

static void
guest_write(int fd, uint32_t type, uint32_t size, uint64_t id, const void *data, size_t len)
{
    uint8_t hdr[PROTO_HEADER_SIZE];
    struct proto_header h = {.type = type, .size = size, .id = id};
    proto_header_encode(hdr, &h);
    assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    if (len)
        assert_int_equal(write(fd, data, len), (ssize_t)len);
}

static void
guest_reply(int fd, const struct proto_header *req, const char *json)
{
    size_t len = strlen(json);
    guest_write(fd, PROTO_RESPONSE_OF(req->type), (uint32_t)(PROTO_HEADER_SIZE + len), req->id,
                json, len);
}

struct call {
    struct bridge *b;
    uint32_t type;
    unsigned timeout_ms;
    int rc;
    json_t *resp;
    char msg[4096];
    pthread_t t;
};

static void *
call_thread(void *arg)
{
    struct call *c = arg;
    c->rc = bridge_call(c->b, c->type, json_pack("{s:i}", "X", 1), &c->resp,
                        deadline_after_ms(c->timeout_ms));
    snprintf(c->msg, sizeof(c->msg), "%s", uvm_last_error());
    return NULL;
}

static void
call_start(struct call *c, struct bridge *b, uint32_t type, unsigned timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->b = b;
    c->type = type;
    c->timeout_ms = timeout_ms;
    assert_int_equal(pthread_create(&c->t, NULL, call_thread, c), 0);
}

static void
call_join(struct call *c)
{
    pthread_join(c->t, NULL);
}

static void
test_call_ok(void **state)
{
    struct fixture *f = *state;
    struct call c;
    call_start(&c, f->b, PROTO_REQ_NEGOTIATE_PROTOCOL, 5000);
    struct proto_header h;
    char *req = guest_read(f->guest, &h);
    assert_int_equal(h.type, PROTO_REQ_NEGOTIATE_PROTOCOL);
    json_t *j = json_loads(req, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "ContainerId")), PROTO_NULL_CONTAINER);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "ActivityId"))), 36);
    assert_int_equal(json_integer_value(json_object_get(j, "X")), 1);
    json_decref(j);
    free(req);
    guest_reply(f->guest, &h, "{\"Result\":0,\"Version\":4}");
    call_join(&c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(json_integer_value(json_object_get(c.resp, "Version")), 4);
    json_decref(c.resp);
}

static void
test_out_of_order(void **state)
{
    struct fixture *f = *state;
    struct call a, b;
    struct proto_header ha, hb;
    call_start(&a, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    free(guest_read(f->guest, &ha));
    call_start(&b, f->b, PROTO_REQ_SIGNAL_PROCESS, 5000);
    free(guest_read(f->guest, &hb));
    assert_int_not_equal(ha.id, hb.id);
    guest_reply(f->guest, &hb, "{\"Result\":0,\"Who\":\"b\"}");
    guest_reply(f->guest, &ha, "{\"Result\":0,\"Who\":\"a\"}");
    call_join(&a);
    call_join(&b);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_string_equal(json_string_value(json_object_get(a.resp, "Who")), "a");
    assert_string_equal(json_string_value(json_object_get(b.resp, "Who")), "b");
    json_decref(a.resp);
    json_decref(b.resp);
}

static void
test_error_response(void **state)
{
    struct fixture *f = *state;
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_EXECUTE_PROCESS, 5000);
    free(guest_read(f->guest, &h));
    guest_reply(f->guest, &h,
                "{\"Result\":-2147467259,\"ErrorMessage\":\"exec \\\"x\\\": No such file\\u0007\"}");
    call_join(&c);
    assert_int_equal(c.rc, UVM_E_GUEST);
    assert_string_equal(c.msg, "guest: exec \"x\": No such file?");
}

static void
test_malformed_response(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"{not json", "[1,2]", "{\"Result\":\"0\"}", "{}"};
    for (size_t i = 0; i < 4; i++) {
        struct call c;
        struct proto_header h;
        call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
        free(guest_read(f->guest, &h));
        guest_reply(f->guest, &h, bad[i]);
        call_join(&c);
        assert_int_equal(c.rc, UVM_E_PROTOCOL);
        assert_null(c.resp);
    }
    /* A response of the wrong type for the request is malformed too. */
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    free(guest_read(f->guest, &h));
    h.type = PROTO_REQ_EXECUTE_PROCESS;
    guest_reply(f->guest, &h, "{\"Result\":0}");
    call_join(&c);
    assert_int_equal(c.rc, UVM_E_PROTOCOL);
}

static void
test_unknown_id_ignored(void **state)
{
    struct fixture *f = *state;
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    free(guest_read(f->guest, &h));
    struct proto_header other = h;
    other.id = 987654;
    guest_reply(f->guest, &other, "{\"Result\":0}");
    guest_reply(f->guest, &h, "{\"Result\":0,\"Ok\":true}");
    call_join(&c);
    assert_int_equal(c.rc, 0);
    assert_true(json_is_true(json_object_get(c.resp, "Ok")));
    json_decref(c.resp);
}

static void
test_timeout(void **state)
{
    struct fixture *f = *state;
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 200);
    free(guest_read(f->guest, &h));
    call_join(&c); /* the guest never answers */
    assert_int_equal(c.rc, UVM_E_TIMEOUT);
    assert_non_null(strstr(c.msg, "GetProperties"));
    /* A late answer is dropped; the channel keeps working. */
    guest_reply(f->guest, &h, "{\"Result\":0}");
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    free(guest_read(f->guest, &h));
    guest_reply(f->guest, &h, "{\"Result\":0}");
    call_join(&c);
    assert_int_equal(c.rc, 0);
    json_decref(c.resp);
}

static void
check_channel_dead(struct fixture *f, int want)
{
    struct call c;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    call_join(&c);
    assert_int_equal(c.rc, want);
}

static void
test_garbage_frame(void **state)
{
    struct fixture *f = *state;
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    free(guest_read(f->guest, &h));
    const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(f->guest, garbage, sizeof(garbage) - 1), (ssize_t)sizeof(garbage) - 1);
    call_join(&c);
    assert_int_equal(c.rc, UVM_E_PROTOCOL);
    check_channel_dead(f, UVM_E_PROTOCOL);
}

static void
test_oversized_frame(void **state)
{
    struct fixture *f = *state;
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    free(guest_read(f->guest, &h));
    /* Announces 16 MiB: rejected from the header alone, nothing is buffered. */
    guest_write(f->guest, PROTO_RESPONSE_OF(h.type), 16u << 20, h.id, "{", 1);
    call_join(&c);
    assert_int_equal(c.rc, UVM_E_PROTOCOL);
    assert_non_null(strstr(c.msg, "oversized"));
    check_channel_dead(f, UVM_E_PROTOCOL);
}

static void
test_undersized_frame(void **state)
{
    struct fixture *f = *state;
    guest_write(f->guest, PROTO_NOTIFY_LOG, 8, 0, NULL, 0);
    check_channel_dead(f, UVM_E_PROTOCOL);
}

static void
test_truncated_frame(void **state)
{
    struct fixture *f = *state;
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    free(guest_read(f->guest, &h));
    /* Half a frame, then the guest is gone. */
    guest_write(f->guest, PROTO_RESPONSE_OF(h.type), 100, h.id, "{\"Result\"", 9);
    close(f->guest);
    f->guest = -1;
    call_join(&c);
    assert_int_equal(c.rc, UVM_E_UNEXPECTED_EXIT);
    check_channel_dead(f, UVM_E_UNEXPECTED_EXIT);
}

static void
test_shutdown_fails_pending(void **state)
{
    struct fixture *f = *state;
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_WAIT_PROCESS, 60000);
    free(guest_read(f->guest, &h));
    bridge_shutdown(f->b, UVM_E_UNEXPECTED_EXIT, "vm '%s' exited", "x");
    call_join(&c);
    assert_int_equal(c.rc, UVM_E_UNEXPECTED_EXIT);
    assert_string_equal(c.msg, "vm 'x' exited");
}

static void
test_streams(void **state)
{
    struct fixture *f = *state;
    int in[2], out[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, in), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, out), 0);
    uint32_t handle = bridge_new_handle(f->b);
    int fds[3] = {in[0], out[0], -1};
    bridge_stream_add(f->b, handle, fds);

    /* stdout: two chunks, each acknowledged once delivered, then end of stream. */
    uint64_t sid_out = PROTO_STREAM_ID(handle, PROTO_STDOUT);
    guest_write(f->guest, PROTO_STREAM_DATA, PROTO_HEADER_SIZE + 5, sid_out, "hello", 5);
    guest_write(f->guest, PROTO_STREAM_DATA, PROTO_HEADER_SIZE + 6, sid_out, " world", 6);
    struct proto_header h;
    for (int i = 0; i < 2; i++) {
        free(guest_read(f->guest, &h));
        assert_int_equal(h.type, PROTO_STREAM_ACK);
        assert_int_equal(h.id, sid_out);
    }
    guest_write(f->guest, PROTO_STREAM_DATA, PROTO_HEADER_SIZE, sid_out, NULL, 0);
    char buf[64] = {0};
    size_t got = 0;
    ssize_t n;
    while ((n = read(out[1], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    assert_string_equal(buf, "hello world"); /* then EOF */

    /* stdin: what the user writes arrives as data frames; close gives an empty frame. */
    assert_int_equal(write(in[1], "abc", 3), 3);
    char *payload = guest_read(f->guest, &h);
    assert_int_equal(h.type, PROTO_STREAM_DATA);
    assert_int_equal(h.id, PROTO_STREAM_ID(handle, PROTO_STDIN));
    assert_string_equal(payload, "abc");
    free(payload);
    guest_write(f->guest, PROTO_STREAM_ACK, PROTO_HEADER_SIZE, h.id, NULL, 0);
    close(in[1]);
    free(guest_read(f->guest, &h));
    assert_int_equal(h.type, PROTO_STREAM_DATA);
    assert_int_equal(h.size, PROTO_HEADER_SIZE);

    /* Data for an unknown stream is acknowledged and dropped. */
    guest_write(f->guest, PROTO_STREAM_DATA, PROTO_HEADER_SIZE + 1, 999999, "z", 1);
    free(guest_read(f->guest, &h));
    assert_int_equal(h.type, PROTO_STREAM_ACK);
    assert_int_equal(h.id, 999999);
    bridge_stream_remove(f->b, handle);
    close(out[1]);
}

/* A terminal's stdin and stdout on two descriptors of one socket: the user's single fd carries
 * input and output, and the end of the output reaches the user while input still flows. */
static void
test_terminal_stream(void **state)
{
    struct fixture *f = *state;
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    uint32_t handle = bridge_new_handle(f->b);
    int fds[3] = {sp[0], dup(sp[0]), -1};
    bridge_stream_add(f->b, handle, fds);
    const uint64_t sid_in = PROTO_STREAM_ID(handle, PROTO_STDIN);
    const uint64_t sid_out = PROTO_STREAM_ID(handle, PROTO_STDOUT);

    /* typed: a stdin frame, the bytes as they are (Ctrl-C included) */
    assert_int_equal(write(sp[1], "ls\r\x03", 4), 4);
    struct proto_header h;
    char *payload = guest_read(f->guest, &h);
    assert_int_equal(h.type, PROTO_STREAM_DATA);
    assert_int_equal(h.id, sid_in);
    assert_int_equal(h.size, PROTO_HEADER_SIZE + 4);
    assert_memory_equal(payload, "ls\r\x03", 4);
    free(payload);
    guest_write(f->guest, PROTO_STREAM_ACK, PROTO_HEADER_SIZE, sid_in, NULL, 0);

    /* the terminal's output on the same fd, acknowledged once delivered */
    guest_write(f->guest, PROTO_STREAM_DATA, PROTO_HEADER_SIZE + 6, sid_out, "a  b\r\n", 6);
    free(guest_read(f->guest, &h));
    assert_int_equal(h.type, PROTO_STREAM_ACK);
    assert_int_equal(h.id, sid_out);
    char buf[16] = {0};
    assert_int_equal(read(sp[1], buf, sizeof(buf)), 6);
    assert_string_equal(buf, "a  b\r\n");

    /* end of output: the user reads end-of-file although the stdin descriptor is open */
    guest_write(f->guest, PROTO_STREAM_DATA, PROTO_HEADER_SIZE, sid_out, NULL, 0);
    struct pollfd pl = {.fd = sp[1], .events = POLLIN};
    assert_int_equal(poll(&pl, 1, 10000), 1); /* a failure, not a hang */
    assert_int_equal(read(sp[1], buf, sizeof(buf)), 0);
    /* and can still type */
    assert_int_equal(write(sp[1], "x", 1), 1);
    payload = guest_read(f->guest, &h);
    assert_int_equal(h.id, sid_in);
    assert_int_equal(h.size, PROTO_HEADER_SIZE + 1);
    free(payload);
    /* closing it ends stdin */
    close(sp[1]);
    free(guest_read(f->guest, &h));
    assert_int_equal(h.type, PROTO_STREAM_DATA);
    assert_int_equal(h.id, sid_in);
    assert_int_equal(h.size, PROTO_HEADER_SIZE);
    bridge_stream_remove(f->b, handle);
}

static void
test_window_overrun(void **state)
{
    struct fixture *f = *state;
    int out[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, out), 0);
    uint32_t handle = bridge_new_handle(f->b);
    int fds[3] = {-1, out[0], -1};
    /* Nobody reads out[1] and its buffer is tiny: chunks stay queued. */
    int small = 4096;
    setsockopt(out[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(out[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    bridge_stream_add(f->b, handle, fds);
    uint64_t sid = PROTO_STREAM_ID(handle, PROTO_STDOUT);
    static char chunk[PROTO_MAX_CHUNK];
    memset(chunk, 'q', sizeof(chunk));
    for (unsigned i = 0; i < PROTO_STREAM_WINDOW + 3; i++)
        guest_write(f->guest, PROTO_STREAM_DATA, PROTO_HEADER_SIZE + sizeof(chunk), sid, chunk,
                    sizeof(chunk));
    /* A chunk bigger than allowed kills the channel; before that, the host is still healthy. */
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    do {
        free(guest_read(f->guest, &h));
    } while (h.type == PROTO_STREAM_ACK);
    guest_reply(f->guest, &h, "{\"Result\":0}");
    call_join(&c);
    assert_int_equal(c.rc, 0);
    json_decref(c.resp);
    guest_write(f->guest, PROTO_STREAM_DATA, PROTO_HEADER_SIZE + PROTO_MAX_CHUNK + 1, sid, NULL, 0);
    check_channel_dead(f, UVM_E_PROTOCOL);
    close(out[1]);
}

static int logs_seen;
static char last_log[256];

static void
log_fn(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    if (strncmp(msg, "guest: ", 7))
        return;
    logs_seen++;
    snprintf(last_log, sizeof(last_log), "%d %s %s", (int)level, vm_id, msg);
}

static void
test_log_notification(void **state)
{
    struct fixture *f = *state;
    uvm_set_log_handler(log_fn, NULL, UVM_LOG_DEBUG);
    const char *bad = "{\"level\":7}";
    guest_write(f->guest, PROTO_NOTIFY_LOG, PROTO_HEADER_SIZE + strlen(bad), 0, bad, strlen(bad));
    const char *j = "{\"level\":\"warning\",\"msg\":\"disk\\nfull\"}";
    guest_write(f->guest, PROTO_NOTIFY_LOG, PROTO_HEADER_SIZE + strlen(j), 0, j, strlen(j));
    /* A round trip orders us after the notifications. */
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 5000);
    free(guest_read(f->guest, &h));
    guest_reply(f->guest, &h, "{\"Result\":0}");
    call_join(&c);
    json_decref(c.resp);
    uvm_set_log_handler(NULL, NULL, UVM_LOG_INFO);
    assert_int_equal(logs_seen, 1);
    assert_string_equal(last_log, "1 unit guest: disk full");
}

static void
test_header_decode(void **state)
{
    uint8_t buf[PROTO_HEADER_SIZE];
    struct proto_header h = {.type = PROTO_REQ_EXECUTE_PROCESS, .size = 16, .id = 0x0102030405060708ull};
    proto_header_encode(buf, &h);
    assert_int_equal(buf[0], 0x01);
    assert_int_equal(buf[3], 0x10);
    assert_int_equal(buf[4], 16);
    assert_int_equal(buf[8], 0x08);
    assert_int_equal(buf[15], 0x01);
    struct proto_header d;
    assert_int_equal(proto_header_decode(buf, &d), 0);
    assert_int_equal(d.id, h.id);
    h.size = PROTO_MAX_MESSAGE + 1;
    proto_header_encode(buf, &h);
    assert_int_equal(proto_header_decode(buf, &d), -EMSGSIZE);
    h.size = 15;
    proto_header_encode(buf, &h);
    assert_int_equal(proto_header_decode(buf, &d), -EMSGSIZE);
    h.size = 16;
    h.type = 0x10100f01;
    proto_header_encode(buf, &h);
    assert_int_equal(proto_header_decode(buf, &d), -EBADMSG);
    h.type = 0x50000000;
    proto_header_encode(buf, &h);
    assert_int_equal(proto_header_decode(buf, &d), -EBADMSG);
    h.type = PROTO_STREAM_ACK;
    h.size = 17;
    proto_header_encode(buf, &h);
    assert_int_equal(proto_header_decode(buf, &d), -EMSGSIZE);
    h.type = PROTO_RESPONSE_OF(PROTO_REQ_MODIFY_SETTINGS);
    h.size = 100;
    proto_header_encode(buf, &h);
    assert_int_equal(proto_header_decode(buf, &d), 0);
}


/* ---- frame flood: linear work ------------------------------------------------------------ */

/* Feed `len` bytes of `stream` through a socketpair into a reader, `piece` bytes at a time,
 * handling every complete frame after each fill as the bridge does. Returns frames seen. */
static size_t
feed_reader(struct proto_reader *r, const uint8_t *stream, size_t len, size_t piece)
{
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(fcntl(sp[0], F_SETFL, O_NONBLOCK), 0);
    size_t frames = 0;
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        assert_int_equal(write(sp[1], stream + off, n), (ssize_t)n);
        size_t got = 0;
        while (got < n) {
            long got_now = proto_reader_fill(r, sp[0]);
            assert_true(got_now > 0);
            got += (size_t)got_now;
            struct proto_header h;
            const uint8_t *payload;
            size_t plen;
            int rc;
            while ((rc = proto_reader_next(r, &h, &payload, &plen)) == 1) {
                frames++;
                proto_reader_consume(r, h.size);
            }
            assert_int_equal(rc, 0);
        }
    }
    close(sp[0]);
    close(sp[1]);
    return frames;
}

static size_t
put_frame(uint8_t *at, uint32_t type, size_t payload_len)
{
    struct proto_header h = {.type = type, .size = (uint32_t)(PROTO_HEADER_SIZE + payload_len)};
    proto_header_encode(at, &h);
    memset(at + PROTO_HEADER_SIZE, 'p', payload_len);
    return PROTO_HEADER_SIZE + payload_len;
}

#define FLOOD_FRAMES 100000u

static void
test_reader_flood_linear(void **state)
{
    /* 10^5 empty frames, in pieces that cut frames anywhere: each fill holds thousands. */
    size_t len = (size_t)FLOOD_FRAMES * PROTO_HEADER_SIZE;
    uint8_t *stream = xmalloc(len);
    for (size_t i = 0; i < FLOOD_FRAMES; i++)
        put_frame(stream + i * PROTO_HEADER_SIZE, PROTO_STREAM_ACK, 0);
    struct proto_reader r = {0};
    assert_int_equal(feed_reader(&r, stream, len, 60001), FLOOD_FRAMES);
    /* A memmove per frame would move ~ frames per fill * fill size / 2 bytes per fill. */
    assert_true(proto_reader_moved(&r) <= len);
    proto_reader_release(&r);
    free(stream);

    /* Maximal frames trickling in small pieces between tiny ones: still linear. */
    size_t big = PROTO_MAX_MESSAGE - PROTO_HEADER_SIZE;
    len = 3 * (PROTO_MAX_MESSAGE + 100 * PROTO_HEADER_SIZE);
    stream = xmalloc(len);
    size_t at = 0, want = 0;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 100; i++, want++)
            at += put_frame(stream + at, PROTO_STREAM_ACK, 0);
        at += put_frame(stream + at, PROTO_RESPONSE_OF(PROTO_REQ_GET_PROPERTIES), big);
        want++;
    }
    assert_int_equal(at, len);
    assert_int_equal(feed_reader(&r, stream, len, 4099), want);
    assert_true(proto_reader_moved(&r) <= len);
    proto_reader_release(&r);
    free(stream);
}

static void *
flood_writer(void *arg)
{
    int fd = *(int *)arg;
    uint8_t *stream = xmalloc((size_t)FLOOD_FRAMES * PROTO_HEADER_SIZE);
    for (size_t i = 0; i < FLOOD_FRAMES; i++)
        put_frame(stream + i * PROTO_HEADER_SIZE, PROTO_STREAM_ACK, 0);
    size_t len = (size_t)FLOOD_FRAMES * PROTO_HEADER_SIZE, off = 0;
    while (off < len) {
        ssize_t n = write(fd, stream + off, len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    free(stream);
    return NULL;
}

static void
test_bridge_frame_flood(void **state)
{
    /* 10^5 acknowledgements for no stream: the bridge takes them all and still answers. */
    struct fixture *f = *state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flood_writer, &f->guest), 0);
    pthread_join(t, NULL);
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 30000);
    free(guest_read(f->guest, &h));
    guest_reply(f->guest, &h, "{\"Result\":0}");
    call_join(&c);
    assert_int_equal(c.rc, 0);
    json_decref(c.resp);
}

/* ---- guest log lines: sanitised, rate limited, level capped ------------------------------ */

#define MAX_CAPTURED 1024

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int level;
    char msg[4096];
} captured[MAX_CAPTURED];
static size_t n_captured;

static void
capture_fn(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    if (strncmp(msg, "guest: ", 7) != 0 && strncmp(msg, "agent: ", 7) != 0)
        return; /* our own debug lines */
    pthread_mutex_lock(&cap_lock);
    if (n_captured < MAX_CAPTURED) {
        captured[n_captured].level = (int)level;
        snprintf(captured[n_captured].msg, sizeof(captured[0].msg), "%s", msg);
        n_captured++;
    }
    pthread_mutex_unlock(&cap_lock);
}

static void
capture_start(void)
{
    pthread_mutex_lock(&cap_lock);
    n_captured = 0;
    pthread_mutex_unlock(&cap_lock);
    uvm_set_log_handler(capture_fn, NULL, UVM_LOG_DEBUG);
}

/* Lines captured that start with prefix. */
static size_t
captured_count(const char *prefix)
{
    pthread_mutex_lock(&cap_lock);
    size_t n = 0;
    for (size_t i = 0; i < n_captured; i++)
        n += strncmp(captured[i].msg, prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&cap_lock);
    return n;
}

static void
guest_log(int fd, const char *json)
{
    guest_write(fd, PROTO_NOTIFY_LOG, (uint32_t)(PROTO_HEADER_SIZE + strlen(json)), 0, json,
                strlen(json));
}

static void
guest_log_n(int fd, unsigned n, const char *level)
{
    char j[128];
    for (unsigned i = 0; i < n; i++) {
        snprintf(j, sizeof(j), "{\"level\":\"%s\",\"msg\":\"line %u\"}", level, i);
        guest_log(fd, j);
    }
}

/* A round trip: everything the guest sent before has been handled and logged. */
static void
round_trip(struct fixture *f)
{
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_GET_PROPERTIES, 10000);
    free(guest_read(f->guest, &h));
    guest_reply(f->guest, &h, "{\"Result\":0}");
    call_join(&c);
    assert_int_equal(c.rc, 0);
    json_decref(c.resp);
}

static _Atomic int64_t fake_now;

static int64_t
fake_clock(void *opaque)
{
    return fake_now;
}

static void
test_log_rate_limit(void **state)
{
    struct fixture *f = *state;
    capture_start();
    fake_now = 1000000;
    bridge_set_clock(f->b, fake_clock, NULL);

    /* A burst of 150 at a frozen clock: 100 pass, nothing is said about the rest yet. */
    guest_log_n(f->guest, 150, "info");
    round_trip(f);
    assert_int_equal(captured_count("guest: line "), 100);
    assert_int_equal(captured_count("guest: 50 log lines suppressed"), 0);

    /* One second later (20 tokens): the I/O thread reports, unprompted, with one of them. */
    fake_now += 1000000;
    for (int i = 0; i < 1000 && !captured_count("guest: 50 log lines suppressed"); i++)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000}, NULL);
    assert_int_equal(captured_count("guest: 50 log lines suppressed"), 1);

    /* 19 tokens left; a malformed line counts like any other line the guest causes. */
    guest_log(f->guest, "{\"level\":\"loud\",\"msg\":\"x\"}");
    guest_log_n(f->guest, 30, "info");
    round_trip(f);
    assert_int_equal(captured_count("agent: malformed log notification"), 1);
    assert_int_equal(captured_count("guest: line "), 118);

    /* A clock going backwards earns nothing. */
    fake_now -= 5000000;
    guest_log_n(f->guest, 5, "info");
    round_trip(f);
    assert_int_equal(captured_count("guest: line "), 118);

    /* A full refill is BURST, not more, and starts with the report of the 17 dropped. */
    fake_now += 3600 * INT64_C(1000000);
    guest_log_n(f->guest, 150, "info");
    round_trip(f);
    assert_int_equal(captured_count("guest: 17 log lines suppressed"), 1);
    assert_int_equal(captured_count("guest: line "), 118 + 99);
    uvm_set_log_handler(NULL, NULL, UVM_LOG_INFO);
}

static int
level_of(const char *msg)
{
    pthread_mutex_lock(&cap_lock);
    int level = -1;
    for (size_t i = 0; i < n_captured; i++)
        if (strcmp(captured[i].msg, msg) == 0)
            level = captured[i].level;
    pthread_mutex_unlock(&cap_lock);
    return level;
}

static void
check_levels(bool trust)
{
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    struct fixture f = {.guest = sp[1]};
    assert_int_equal(bridge_new(sp[0], "unit", trust, &f.b), 0);
    capture_start();
    guest_log(f.guest, "{\"level\":\"debug\",\"msg\":\"d\"}");
    guest_log(f.guest, "{\"level\":\"info\",\"msg\":\"i\"}");
    guest_log(f.guest, "{\"level\":\"warning\",\"msg\":\"w\"}");
    guest_log(f.guest, "{\"level\":\"error\",\"msg\":\"e\"}");
    guest_log(f.guest, "{\"level\":\"fatal\",\"msg\":\"f\"}");
    guest_log(f.guest, "{\"level\":\"Error\",\"msg\":\"x\"}");
    guest_log(f.guest, "{\"level\":\"error\",\"msg\":5}");
    round_trip(&f);
    assert_int_equal(level_of("guest: d"), UVM_LOG_DEBUG);
    assert_int_equal(level_of("guest: i"), UVM_LOG_INFO);
    assert_int_equal(level_of("guest: w"), UVM_LOG_WARNING);
    assert_int_equal(level_of("guest: e"), trust ? UVM_LOG_ERROR : UVM_LOG_WARNING);
    assert_int_equal(level_of("guest: f"), trust ? UVM_LOG_ERROR : UVM_LOG_WARNING);
    assert_int_equal(captured_count("agent: malformed log notification dropped"), 2);
    uvm_set_log_handler(NULL, NULL, UVM_LOG_INFO);
    bridge_free(f.b);
    close(f.guest);
}

static void
test_log_level_cap(void **state)
{
    check_levels(false);
    check_levels(true);
}

static void
test_guest_text_sanitized(void **state)
{
    struct fixture *f = *state;
    capture_start();
    /* ESC sequence, C1 CSI (UTF-8), RLO, tab and newline. */
    guest_log(f->guest,
              "{\"level\":\"info\",\"msg\":\"a\\u001b[2Jb\\u009bc\\u202ed\\te\\nf\"}");
    /* Strict JSON: a NUL inside a string and bytes that are not UTF-8 are malformed. */
    guest_log(f->guest, "{\"level\":\"info\",\"msg\":\"a\\u0000b\"}");
    static const char raw[] = "{\"level\":\"info\",\"msg\":\"\xff\x9b" "z\"}";
    guest_log(f->guest, raw);
    round_trip(f);
    assert_int_equal(level_of("guest: a?[2Jb?c?d e f"), UVM_LOG_INFO);
    assert_int_equal(captured_count("agent: malformed log notification dropped"), 2);
    uvm_set_log_handler(NULL, NULL, UVM_LOG_INFO);

    /* An error text of 3000 euro signs is cut to MAX_GUEST_TEXT (2048) bytes on a boundary. */
    size_t n = 3000;
    char *json = xmalloc(n * 3 + 64);
    size_t at = (size_t)sprintf(json, "{\"Result\":-1,\"ErrorMessage\":\"");
    for (size_t i = 0; i < n; i++, at += 3)
        memcpy(json + at, "\xe2\x82\xac", 3);
    strcpy(json + at, "\"}");
    struct call c;
    struct proto_header h;
    call_start(&c, f->b, PROTO_REQ_EXECUTE_PROCESS, 5000);
    free(guest_read(f->guest, &h));
    guest_reply(f->guest, &h, json);
    call_join(&c);
    free(json);
    assert_int_equal(c.rc, UVM_E_GUEST);
    assert_int_equal(strlen(c.msg), strlen("guest: ") + 2048 / 3 * 3);
    assert_memory_equal(c.msg, "guest: \xe2\x82\xac", 10);
    assert_memory_equal(c.msg + strlen(c.msg) - 3, "\xe2\x82\xac", 3);
}

/* Found by fuzzing (tests/fuzz/corpus/agent-host/regress-json-error-quotes-guest): jansson's
 * error text quotes the guest's bytes near the error, and a malformed response's message
 * carried them as they were. */
static void
test_malformed_response_text_sanitized(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {"{\"Result\":0,\x1b[2J}", "\x0f\x0f", "{\"a\":\xc2\x9b}",
                                      "[\"\xff\"]"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct call c;
        struct proto_header h;
        call_start(&c, f->b, PROTO_REQ_EXECUTE_PROCESS, 5000);
        free(guest_read(f->guest, &h));
        guest_reply(f->guest, &h, bad[i]);
        call_join(&c);
        assert_int_equal(c.rc, UVM_E_PROTOCOL);
        assert_non_null(strstr(c.msg, "malformed ExecuteProcess response from the guest agent ("));
        for (const char *m = c.msg; *m; m++)
            if ((unsigned char)*m < 0x20 || (unsigned char)*m >= 0x7f)
                fail_msg("byte 0x%02x in '%s'", (unsigned char)*m, c.msg);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_decode),
        T(test_call_ok),
        T(test_out_of_order),
        T(test_error_response),
        T(test_malformed_response),
        T(test_malformed_response_text_sanitized),
        T(test_unknown_id_ignored),
        T(test_timeout),
        T(test_garbage_frame),
        T(test_oversized_frame),
        T(test_undersized_frame),
        T(test_truncated_frame),
        T(test_shutdown_fails_pending),
        T(test_streams),
        T(test_terminal_stream),
        T(test_window_overrun),
        T(test_log_notification),
        cmocka_unit_test(test_reader_flood_linear),
        T(test_bridge_frame_flood),
        T(test_log_rate_limit),
        cmocka_unit_test(test_log_level_cap),
        T(test_guest_text_sanitized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "qmp": the QMP client (src/lib/qmp.c, qmpfd.c, rbuf.c) against a peer that sends the input:
 * greeting, replies (matching ids, unknown ids, no id, errors), events, DEVICE_DELETED in its
 * two shapes, garbage, long lines. The peer's bytes are all in the socket before the client
 * starts, followed by end of file, so every call ends.
 *
 * Input: 1 byte (bits 0-1: operations after the handshake, 1-4), 1 byte per operation (bits
 * 0-2: which, bits 3-4: the device number), then the peer's bytes.
 *   0 device_del {"id":"devN"}                 1 wait for DEVICE_DELETED {"device":"devN"}
 *   2 batch add-fd, blockdev-add, device_add   3 wait for any SHUTDOWN
 *   4 getfd, or add-fd (qmpfd.c)                5 query-status
 *   6 wait for DEVICE_DELETED, no match         7 device_del, then wait for its event
 * Properties: every call ends with 0 or UVM_E_HYPERVISOR (never a timeout: the peer's end of
 * file ends everything; add-fd also UVM_E_PROTOCOL for a reply without its numbers, and
 * non-negative numbers on success), an event handed out is the one asked for (name, and the
 * match keys),
 * and every command the client wrote is one JSON object per line with an "execute" and an
 * "id" "uvm-N", N counting up from 1.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "fuzz-util.h"
#include "qmp.h"
#include "qmpfd.h"
#include "uvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define DEADLINE_MS 5000 /* never reached: the peer's end of file fails every call */

static int devnull = -1;

static void
discard_log(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)vm_id;
    (void)msg;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* QEMU's text is not sanitised (docs/security.md): lines are formatted, not checked. */
    uvm_set_log_handler(discard_log, NULL, UVM_LOG_DEBUG);
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return 0;
}

static void
check_rc(int rc, const char *what)
{
    FUZZ_CHECK(rc == 0 || rc == UVM_E_HYPERVISOR, "%s: %d: %s", what, rc, uvm_last_error());
}

static void
wait_event(struct qmp *q, const char *name, const char *dev)
{
    json_t *match = dev ? json_pack("{s:s}", "device", dev) : NULL;
    json_t *data = NULL;
    int rc = qmp_wait_event(q, name, match, &data, qmp_deadline(DEADLINE_MS));
    check_rc(rc, name);
    FUZZ_CHECK(rc < 0 || json_is_object(data), "event data is not an object");
    if (rc == 0 && dev)
        FUZZ_CHECK(json_equal(json_object_get(data, "device"), json_object_get(match, "device")),
                   "%s handed out for another device", name);
    json_decref(data);
    json_decref(match);
}

static void
device_del(struct qmp *q, const char *dev)
{
    json_t *args = json_pack("{s:s}", "id", dev);
    check_rc(qmp_execute(q, "device_del", args, NULL, qmp_deadline(DEADLINE_MS)), "device_del");
    json_decref(args);
}

static void
batch(struct qmp *q)
{
    json_t *a0 = json_pack("{s:i}", "fdset-id", 7);
    json_t *a1 = json_pack("{s:s, s:s}", "node-name", "n1", "driver", "raw");
    json_t *a2 = json_pack("{s:s, s:s}", "driver", "scsi-hd", "id", "dev1");
    json_t *r0 = NULL, *r1 = NULL;
    struct qmp_cmd cmds[3] = {
        {.command = "add-fd", .args = a0, .fd = devnull, .reply = &r0},
        {.command = "blockdev-add", .args = a1, .fd = -1, .reply = &r1},
        {.command = "device_add", .args = a2, .fd = -1},
    };
    int rc = qmp_execute_batch(q, cmds, 3, qmp_deadline(DEADLINE_MS));
    check_rc(rc, "batch");
    for (unsigned i = 0; i < 3; i++) {
        check_rc(cmds[i].rc, cmds[i].command);
        FUZZ_CHECK(rc < 0 || cmds[i].rc == 0, "batch succeeded with a failed command");
    }
    json_decref(r0);
    json_decref(r1);
    json_decref(a0);
    json_decref(a1);
    json_decref(a2);
}

static void
operation(struct qmp *q, uint8_t op)
{
    char dev[8];
    snprintf(dev, sizeof(dev), "dev%u", (op >> 3) & 3);
    json_t *reply = NULL, *args = NULL;
    switch (op & 7) {
    case 0:
        device_del(q, dev);
        break;
    case 1:
        wait_event(q, "DEVICE_DELETED", dev);
        break;
    case 2:
        batch(q);
        break;
    case 3:
        wait_event(q, "SHUTDOWN", NULL);
        break;
    case 4:
        if (op & 8) {
            int set = 0, qfd = 0;
            int rc = qmp_add_fd(q, devnull, &set, &qfd, qmp_deadline(DEADLINE_MS));
            FUZZ_CHECK(rc == 0 || rc == UVM_E_HYPERVISOR || rc == UVM_E_PROTOCOL, "add-fd: %d",
                       rc);
            FUZZ_CHECK(rc == 0 ? set >= 0 && qfd >= 0 : set == -1 && qfd == -1,
                       "add-fd: %d with set %d fd %d", rc, set, qfd);
        } else {
            check_rc(qmp_getfd(q, devnull, "fuzz", qmp_deadline(DEADLINE_MS)), "getfd");
        }
        break;
    case 5:
        check_rc(qmp_execute(q, "query-status", NULL, &reply, qmp_deadline(DEADLINE_MS)),
                 "query-status");
        break;
    case 6:
        wait_event(q, "DEVICE_DELETED", NULL);
        break;
    default:
        device_del(q, dev);
        wait_event(q, "DEVICE_DELETED", dev);
        break;
    }
    json_decref(reply);
    json_decref(args);
}

/* The client's side of the conversation: one command per line, ids uvm-1, uvm-2, ... */
static void
check_commands(int fd)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    unsigned next = 1;
    for (char *line = buf, *end; line < buf + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + len - line));
        FUZZ_CHECK(end && end > line && end[-1] == '\r', "command line not ended by CRLF");
        json_t *cmd = json_loadb(line, (size_t)(end - line - 1), 0, NULL);
        char want[32];
        snprintf(want, sizeof(want), "uvm-%u", next++);
        FUZZ_CHECK(json_is_string(json_object_get(cmd, "execute")) &&
                       !strcmp(json_string_value(json_object_get(cmd, "id")) ?: "", want),
                   "bad command line %.*s", (int)(end - line), line);
        json_decref(cmd);
    }
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    unsigned nops = (fuzz_u8(&in) & 3) + 1;
    uint8_t ops[4];
    for (unsigned i = 0; i < nops; i++)
        ops[i] = fuzz_u8(&in);

    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        abort();
    /* The peer's bytes, as many as the socket holds (-max_len keeps inputs below that). */
    size_t off = 0;
    while (off < in.len) {
        ssize_t n = send(sp[1], in.data + off, in.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(sp[1], SHUT_WR);

    struct qmp *q = qmp_new(sp[0], "fuzz");
    FUZZ_CHECK(q, "qmp_new");
    int rc = qmp_handshake(q, qmp_deadline(DEADLINE_MS));
    check_rc(rc, "handshake");
    for (unsigned i = 0; i < nops; i++) /* a broken client must fail them at once */
        operation(q, ops[i]);
    FUZZ_CHECK(qmp_reader_moved(q) <= in.len, "the reader moved %zu bytes of %zu",
               qmp_reader_moved(q), in.len);
    qmp_free(q);
    check_commands(sp[1]);
    close(sp[1]);
    return 0;
}

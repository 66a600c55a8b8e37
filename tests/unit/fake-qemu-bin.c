/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stand-in for qemu-system-x86_64 for the create/start fault tests (test-startfaults.c): the
 * library spawns it as it spawns QEMU (vmm.h: the QMP listening socket is fd 3, the agent's is
 * fd 4), and it fails the step FAKE_QEMU_MODE names:
 *
 *   ok            QMP greeting, every command answered {"return": {}} (add-fd with its set and
 *                 fd numbers, device_del followed by DEVICE_DELETED, "quit" exits 0); the agent
 *                 answers NegotiateProtocol with version 4 and every other request with Result 0
 *   exit          says "injected: cannot initialise" on stderr and exits 1 at once
 *   no-greeting   accepts QMP and says nothing
 *   bad-greeting  accepts QMP and writes a line that is not QMP
 *   cap-error     answers qmp_capabilities with an error
 *   no-agent      QMP as ok; never accepts the agent's connection
 *   frozen        QMP as ok; the agent's connection accepted and its requests read, never
 *                 answered (an agent frozen in the guest)
 *   refuse        the agent refuses NegotiateProtocol (Result E_FAIL, with a message)
 *   bad-version   the agent negotiates protocol version 3
 *
 * It exits when the library closes the QMP connection (as QEMU does not; but the library kills
 * it anyway) or on SIGKILL. Single-threaded, bounded reads; not a library's test subject.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "proto.h"

static const char *mode = "ok";
static int next_set = 1000, next_fd = 100; /* add-fd's answers */

static bool
is(const char *m)
{
    return !strcmp(mode, m);
}

static void
put(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            exit(0);
        s += w;
        n -= (size_t)w;
    }
}

/* One QMP line: the answer to it. */
static void
qmp_line(int fd, const char *line)
{
    json_t *cmd = json_loads(line, 0, NULL);
    const char *ex = json_string_value(json_object_get(cmd, "execute"));
    json_t *args = json_object_get(cmd, "arguments");
    json_t *reply;
    if (ex && !strcmp(ex, "qmp_capabilities") && is("cap-error"))
        reply = json_pack("{s:{s:s, s:s}}", "error", "class", "GenericError", "desc",
                          "injected: capabilities refused");
    else if (ex && !strcmp(ex, "add-fd")) /* the set asked for, or the next one */
        reply = json_pack("{s:{s:I, s:i}}", "return", "fdset-id",
                          json_object_get(args, "fdset-id")
                              ? json_integer_value(json_object_get(args, "fdset-id"))
                              : (json_int_t)next_set++,
                          "fd", next_fd++);
    else
        reply = json_pack("{s:{}}", "return");
    json_t *id = json_object_get(cmd, "id");
    if (id)
        json_object_set(reply, "id", id);
    char *text = json_dumps(reply, JSON_COMPACT);
    put(fd, text);
    put(fd, "\r\n");
    free(text);
    json_decref(reply);
    if (ex && !strcmp(ex, "quit"))
        exit(0);
    const char *dev = json_string_value(json_object_get(args, "id"));
    if (ex && !strcmp(ex, "device_del") && dev) { /* the guest lets go at once */
        json_t *ev = json_pack("{s:s, s:{s:s}}", "event", "DEVICE_DELETED", "data", "device", dev);
        char *t = json_dumps(ev, JSON_COMPACT);
        put(fd, t);
        put(fd, "\r\n");
        free(t);
        json_decref(ev);
    }
    json_decref(cmd);
}

static const char *
agent_answer(uint32_t type)
{
    if (type != PROTO_REQ_NEGOTIATE_PROTOCOL)
        return "{\"Result\":0}";
    if (is("refuse"))
        return "{\"Result\":-2147467259,\"ErrorMessage\":\"injected: protocol refused\"}";
    if (is("bad-version"))
        return "{\"Result\":0,\"Version\":3}";
    return "{\"Result\":0,\"Version\":4,\"Capabilities\":{}}";
}

/* Frames in buf (len bytes): answer each whole request; returns the bytes used. */
static size_t
agent_frames(int fd, const uint8_t *buf, size_t len)
{
    size_t used = 0;
    struct proto_header h;
    while (len - used >= PROTO_HEADER_SIZE && proto_header_decode(buf + used, &h) == 0 &&
           len - used >= h.size) {
        used += h.size;
        if (PROTO_CLASS(h.type) != PROTO_CLASS_REQUEST || is("frozen"))
            continue;
        const char *a = agent_answer(h.type);
        uint8_t out[PROTO_HEADER_SIZE];
        struct proto_header rh = {.type = PROTO_RESPONSE_OF(h.type),
                                  .size = (uint32_t)(PROTO_HEADER_SIZE + strlen(a)),
                                  .id = h.id};
        proto_header_encode(out, &rh);
        if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out))
            exit(0);
        put(fd, a);
    }
    return used;
}

int
main(void)
{
    const char *m = getenv("FAKE_QEMU_MODE");
    if (m)
        mode = m;
    if (is("exit")) {
        fprintf(stderr, "fake qemu: injected: cannot initialise\n");
        return 1;
    }
    int qmp = accept4(3, NULL, NULL, SOCK_CLOEXEC);
    if (qmp < 0)
        return 2;
    if (is("bad-greeting"))
        put(qmp, "this is not QMP\r\n");
    else if (!is("no-greeting"))
        put(qmp, "{\"QMP\":{\"version\":{\"qemu\":{\"major\":7,\"minor\":2,\"micro\":0}},"
                 "\"capabilities\":[]}}\r\n");
    int agent = -1;
    static char qbuf[65536];
    static uint8_t abuf[1 << 20];
    size_t qlen = 0, alen = 0;
    for (;;) {
        struct pollfd p[2] = {{qmp, POLLIN, 0}, {agent >= 0 ? agent : 4, POLLIN, 0}};
        int np = is("no-agent") ? 1 : 2;
        if (poll(p, (nfds_t)np, -1) < 0 && errno != EINTR)
            return 3;
        if (np == 2 && agent < 0 && (p[1].revents & POLLIN))
            agent = accept4(4, NULL, NULL, SOCK_CLOEXEC);
        else if (np == 2 && agent >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
            ssize_t n = read(agent, abuf + alen, sizeof(abuf) - alen);
            if (n <= 0)
                return 0;
            alen += (size_t)n;
            size_t used = agent_frames(agent, abuf, alen);
            memmove(abuf, abuf + used, alen - used);
            alen -= used;
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(qmp, qbuf + qlen, sizeof(qbuf) - 1 - qlen);
            if (n <= 0)
                return 0;
            qlen += (size_t)n;
            qbuf[qlen] = '\0';
            char *nl;
            while (!is("no-greeting") && !is("bad-greeting") && (nl = strchr(qbuf, '\n'))) {
                *nl = '\0';
                qmp_line(qmp, qbuf);
                qlen -= (size_t)(nl + 1 - qbuf);
                memmove(qbuf, nl + 1, qlen + 1);
            }
            if (qlen == sizeof(qbuf) - 1)
                qlen = 0;
        }
    }
}

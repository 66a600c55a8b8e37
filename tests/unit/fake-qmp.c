/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Scripted fake QMP peer: see fake-qmp.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "fake-qemu.h"
#include "fake-qmp.h"

#define FAKE_QMP_DEFAULT_GREETING                                                                  \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "              \
    "\"package\": \"fake-qmp\"}, \"capabilities\": [\"oob\"]}}"

#define FAKE_QMP_MAX_FDS 16 /* fds taken with one read; more is a failure */

struct step {
    enum fake_qmp_step_kind kind;
    bool fd; /* EXPECT: one fd with the command */
    char *text;    /* GREETING: bytes to send (no CRLF) */
    json_t *json;  /* EXPECT: the command; EVENT: the event */
    json_t *reply; /* EXPECT, REPLY */
    char *raw;     /* RAW */
    size_t raw_len;
    unsigned count;
    long index; /* in the test's script; -1 for the implicit greeting */
};

struct fake_qmp {
    int fd;      /* the peer's end; -1 after a hang-up */
    int stop[2]; /* written by fake_qmp_finish */
    bool stopping;
    pthread_t thread;

    struct step *steps;
    size_t n_steps;
    size_t cur; /* the step being run, for messages */
    bool completed;

    char *rbuf;
    size_t rlen, rcap;
    uint64_t rpos; /* stream offset of rbuf[0] */
    /* fds received and not yet given to a command, each with the stream offset of the last
     * byte of the read that brought it: a read stops after the data an fd came with (Linux
     * unix stream sockets), so that byte belongs to the command the fd was sent with. */
    struct {
        uint64_t pos;
        int fd;
    } rfds[FAKE_QMP_MAX_FDS];
    size_t n_rfds;
    json_t *unanswered; /* ids of commands read and not answered yet, oldest first */

    char **commands;
    size_t n_commands;
    pthread_mutex_t hook_lock; /* guards hook, hook_opaque */
    void (*hook)(void *opaque, const char *command);
    void *hook_opaque;
    void (*fd_hook)(void *opaque, const char *command, int fd);
    void *fd_hook_opaque;
    char *failures; /* "step N: ...\n" lines, NULL when none */
    struct fake_qemu *qemu; /* the FAKE_QMP_QEMU() step's model, or NULL */
};

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fake-qmp: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void __attribute__((format(printf, 2, 3)))
fail(struct fake_qmp *f, const char *fmt, ...)
{
    cleanup_free char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        die("out of memory");
    va_end(ap);
    char where[64];
    if (f->completed)
        snprintf(where, sizeof(where), "after the script");
    else if (f->steps[f->cur].index < 0)
        snprintf(where, sizeof(where), "greeting");
    else
        snprintf(where, sizeof(where), "step %ld", f->steps[f->cur].index);
    char *all = xasprintf("%s%s: %s\n", f->failures ? f->failures : "", where, msg);
    free(f->failures);
    f->failures = all;
}

/* 'x' -> "x", \' -> ' : lets tests write JSON without escaping every quote. */
static char *
squote(const char *s)
{
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] == '\'')
            *o++ = *++s;
        else
            *o++ = *s == '\'' ? '"' : *s;
    }
    *o = '\0';
    return out;
}

static json_t *
parse_text(const char *what, const char *text)
{
    if (!text)
        die("%s: missing JSON text", what);
    cleanup_free char *s = squote(text);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    if (!j)
        die("%s: invalid JSON in script: %s: %s", what, err.text, s);
    return j;
}

static char *
dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s)
        die("out of memory");
    return s;
}

/* ---- I/O on the peer's end --------------------------------------------------------------- */

static bool
stop_requested(struct fake_qmp *f, int timeout_ms)
{
    if (f->stopping)
        return true;
    struct pollfd p = {.fd = f->stop[0], .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0)
        f->stopping = true;
    return f->stopping;
}

/* 0, or -1 (client gone, or stopped while blocked). */
static int
send_all(struct fake_qmp *f, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (f->fd < 0)
            return -1;
        struct pollfd p[2] = {{.fd = f->fd, .events = POLLOUT},
                              {.fd = f->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (p[1].revents && !(p[0].revents & POLLOUT)) {
            f->stopping = true;
            return -1;
        }
        ssize_t n = send(f->fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

static int
send_json(struct fake_qmp *f, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        die("out of memory");
    size_t n = strlen(s);
    s = xrealloc(s, n + 3);
    memcpy(s + n, "\r\n", 3);
    int r = send_all(f, s, n + 2);
    free(s);
    return r;
}

/* recv() that also takes the fds sent with the data (SCM_RIGHTS) into f->rfds. */
static ssize_t
recv_fds(struct fake_qmp *f, char *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(FAKE_QMP_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf)};
    ssize_t n = recvmsg(f->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return n;
    if (msg.msg_flags & MSG_CTRUNC)
        fail(f, "more than %d fds came with one read (some were lost)", FAKE_QMP_MAX_FDS);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (f->n_rfds == FAKE_QMP_MAX_FDS) {
                fail(f, "more than %d fds waiting for their commands", FAKE_QMP_MAX_FDS);
                close(fd);
                continue;
            }
            f->rfds[f->n_rfds].pos = f->rpos + f->rlen + (uint64_t)n - 1;
            f->rfds[f->n_rfds++].fd = fd;
        }
    }
    return n;
}

/* The fds of the line that ends at stream offset `end` (and of any before it), in order, moved
 * into fds (FAKE_QMP_MAX_FDS of room). */
static size_t
take_fds(struct fake_qmp *f, uint64_t end, int *fds)
{
    size_t n = 0, kept = 0;
    for (size_t i = 0; i < f->n_rfds; i++) {
        if (f->rfds[i].pos <= end)
            fds[n++] = f->rfds[i].fd;
        else
            f->rfds[kept++] = f->rfds[i];
    }
    f->n_rfds = kept;
    return n;
}

/* 1 with a line (owned) and the fds that came with it (*nfds of them in fds, owned), 0 when the
 * client closed or the test stopped us with nothing left. */
static int
read_line(struct fake_qmp *f, char **line, int *fds, size_t *nfds)
{
    *nfds = 0;
    for (;;) {
        char *nl = f->rlen ? memchr(f->rbuf, '\n', f->rlen) : NULL;
        if (nl) {
            size_t end = (size_t)(nl - f->rbuf);
            size_t n = end && f->rbuf[end - 1] == '\r' ? end - 1 : end;
            char *l = xmalloc(n + 1);
            memcpy(l, f->rbuf, n);
            l[n] = '\0';
            *nfds = take_fds(f, f->rpos + end, fds);
            f->rpos += end + 1;
            f->rlen -= end + 1;
            memmove(f->rbuf, nl + 1, f->rlen);
            *line = l;
            return 1;
        }
        if (f->fd < 0)
            return 0;
        /* once stopped, only take what the client has already sent */
        struct pollfd p[2] = {{.fd = f->fd, .events = POLLIN},
                              {.fd = f->stop[0], .events = POLLIN}};
        int r = poll(p, f->stopping ? 1 : 2, f->stopping ? 0 : -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("poll: %s", strerror(errno));
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (f->stopping)
                return 0;
            f->stopping = true;
            continue;
        }
        if (f->rcap - f->rlen < 4096) {
            f->rcap = f->rcap * 2 + 4096;
            f->rbuf = xrealloc(f->rbuf, f->rcap);
        }
        ssize_t n = recv_fds(f, f->rbuf + f->rlen, f->rcap - f->rlen);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return 0;
        f->rlen += (size_t)n;
    }
}

static void
close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* The hooks for one command read (recorded as the last command); its fds are closed after. */
static void
run_hooks(struct fake_qmp *f, int *fds, size_t nfds)
{
    const char *text = f->commands[f->n_commands - 1];
    pthread_mutex_lock(&f->hook_lock);
    for (size_t i = 0; f->fd_hook && i < nfds; i++)
        f->fd_hook(f->fd_hook_opaque, text, fds[i]);
    if (f->hook)
        f->hook(f->hook_opaque, text);
    pthread_mutex_unlock(&f->hook_lock);
    close_fds(fds, nfds);
}

/*
 * Read one command and record it. 1 with *cmd (without "id", owned), *id (owned, may be NULL)
 * and *nfds (fds that came with it, already closed); 0 when none came (*why says why); -1 when
 * the line was not a command (recorded as a failure; it cannot be answered).
 */
static int
read_command(struct fake_qmp *f, json_t **cmd, json_t **id, size_t *nfds, const char **why)
{
    cleanup_free char *line = NULL;
    int fds[FAKE_QMP_MAX_FDS];
    if (read_line(f, &line, fds, nfds) == 0) {
        *why = f->fd < 0     ? "the script hung up"
               : f->stopping ? "the test finished"
                             : "the client closed the connection";
        return 0;
    }
    json_error_t err;
    json_t *j = json_loads(line, 0, &err);
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "execute"))) {
        fail(f, "not a QMP command: %s", line);
        f->commands = xrealloc(f->commands, (f->n_commands + 1) * sizeof(char *));
        f->commands[f->n_commands++] = xasprintf("<invalid> %s", line);
        json_decref(j);
        close_fds(fds, *nfds);
        return -1;
    }
    *id = json_incref(json_object_get(j, "id"));
    json_object_del(j, "id");
    f->commands = xrealloc(f->commands, (f->n_commands + 1) * sizeof(char *));
    f->commands[f->n_commands++] = dump(j);
    run_hooks(f, fds, *nfds);
    *cmd = j;
    return 1;
}

/* json_equal, except that the string FAKE_QMP_ANY in `want` matches any string. */
static bool
matches(const json_t *want, const json_t *got)
{
    if (json_is_string(want) && !strcmp(json_string_value(want), FAKE_QMP_ANY))
        return json_is_string(got);
    if (json_is_object(want)) {
        if (!json_is_object(got) || json_object_size(want) != json_object_size(got))
            return false;
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)want, key, value)
            if (!matches(value, json_object_get(got, key)))
                return false;
        return true;
    }
    if (json_is_array(want)) {
        if (!json_is_array(got) || json_array_size(want) != json_array_size(got))
            return false;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!matches(json_array_get(want, i), json_array_get(got, i)))
                return false;
        return true;
    }
    return got && json_equal(want, got);
}

static int
send_reply(struct fake_qmp *f, const json_t *reply, json_t *id)
{
    json_t *r = json_deep_copy(reply);
    if (id)
        json_object_set(r, "id", id);
    int ret = send_json(f, r);
    json_decref(r);
    return ret;
}

static int
send_error(struct fake_qmp *f, json_t *id, const char *desc)
{
    json_t *e = json_pack("{s:{s:s, s:s}}", "error", "class", "GenericError", "desc", desc);
    int r = send_reply(f, e, id);
    json_decref(e);
    return r;
}

/* ---- the script -------------------------------------------------------------------------- */

/* false ends the script (a failure was recorded where it matters). */
static bool
run_step(struct fake_qmp *f, const struct step *s)
{
    switch (s->kind) {
    case FAKE_QMP_STEP_GREETING: {
        cleanup_free char *t = xasprintf("%s\r\n", s->text);
        if (send_all(f, t, strlen(t)) < 0) {
            fail(f, "cannot send the greeting");
            return false;
        }
        return true;
    }
    case FAKE_QMP_STEP_EXPECT: {
        json_t *cmd = NULL, *id = NULL;
        const char *why = NULL;
        cleanup_free char *want = dump(s->json);
        size_t nfds = 0;
        int r = read_command(f, &cmd, &id, &nfds, &why);
        if (r == 0) {
            fail(f, "expected %s, but %s", want, why);
            return false;
        }
        if (r < 0)
            return true;
        bool ok = matches(s->json, cmd);
        if (!ok) {
            cleanup_free char *got = dump(cmd);
            fail(f, "expected %s, got %s", want, got);
        } else if (nfds != (s->fd ? 1u : 0u)) {
            fail(f, "expected %s with %s, got %zu fds", want, s->fd ? "one fd" : "no fd", nfds);
            ok = false;
        }
        int sr = 0;
        if (!ok)
            sr = send_error(f, id, "fake-qmp: unexpected command");
        else if (s->reply)
            sr = send_reply(f, s->reply, id);
        else
            json_array_append_new(f->unanswered, id ? json_incref(id) : json_null());
        json_decref(cmd);
        json_decref(id);
        if (sr < 0) {
            fail(f, "cannot send the reply to %s", want);
            return false;
        }
        return true;
    }
    case FAKE_QMP_STEP_REPLY: {
        if (json_array_size(f->unanswered) == 0) {
            fail(f, "reply: no command waiting for one");
            return false;
        }
        json_t *id = json_incref(json_array_get(f->unanswered, 0));
        json_array_remove(f->unanswered, 0);
        int r = send_reply(f, s->reply, json_is_null(id) ? NULL : id);
        json_decref(id);
        if (r < 0) {
            fail(f, "cannot send a reply");
            return false;
        }
        return true;
    }
    case FAKE_QMP_STEP_EVENT:
        if (send_json(f, s->json) < 0) {
            fail(f, "cannot send an event");
            return false;
        }
        return true;
    case FAKE_QMP_STEP_RAW:
        send_all(f, s->raw, s->raw_len);
        return true;
    case FAKE_QMP_STEP_HANGUP:
        if (f->fd >= 0) {
            close(f->fd);
            f->fd = -1;
        }
        return true;
    case FAKE_QMP_STEP_SILENT:
        while (!stop_requested(f, -1))
            ;
        return true;
    case FAKE_QMP_STEP_ECHO:
        for (unsigned i = 0; i < s->count; i++) {
            json_t *cmd = NULL, *id = NULL;
            const char *why = NULL;
            size_t nfds = 0;
            int r = read_command(f, &cmd, &id, &nfds, &why);
            if (r == 0) {
                fail(f, "echo: expected %u more commands, but %s", s->count - i, why);
                return false;
            }
            if (r < 0)
                continue;
            json_t *args = json_object_get(cmd, "arguments");
            json_t *rep = json_pack("{s:o}", "return", args ? json_incref(args) : json_object());
            r = send_reply(f, rep, id);
            json_decref(rep);
            json_decref(cmd);
            json_decref(id);
            if (r < 0) {
                fail(f, "echo: cannot send a reply");
                return false;
            }
        }
        return true;
    case FAKE_QMP_STEP_SLEEP:
        stop_requested(f, (int)s->count);
        return true;
    case FAKE_QMP_STEP_QEMU:
        for (;;) {
            json_t *cmd = NULL, *id = NULL, *event = NULL;
            const char *why = NULL;
            size_t nfds = 0;
            int r = read_command(f, &cmd, &id, &nfds, &why);
            if (r == 0)
                return true; /* the test finished, or the client went away */
            if (r < 0)
                continue;
            json_t *reply = fake_qemu_answer(f->qemu, cmd, nfds, &event);
            r = send_reply(f, reply, id);
            if (r == 0 && event)
                r = send_json(f, event);
            json_decref(reply);
            json_decref(event);
            json_decref(cmd);
            json_decref(id);
            if (r < 0)
                return true;
        }
    }
    die("unknown step kind %d", (int)s->kind);
}

static void *
peer_main(void *opaque)
{
    struct fake_qmp *f = opaque;
    for (f->cur = 0; f->cur < f->n_steps; f->cur++) {
        const struct step *s = &f->steps[f->cur];
        if (!run_step(f, s))
            return NULL;
        if (s->kind == FAKE_QMP_STEP_SILENT) {
            f->completed = f->cur + 1 == f->n_steps;
            if (!f->completed)
                fail(f, "steps after FAKE_QMP_SILENT() never run");
            return NULL;
        }
    }
    f->completed = true;
    /* after the script: anything the client sends is unexpected */
    for (;;) {
        json_t *cmd = NULL, *id = NULL;
        const char *why = NULL;
        size_t nfds = 0;
        int r = read_command(f, &cmd, &id, &nfds, &why);
        if (r == 0)
            break;
        if (r < 0)
            continue;
        cleanup_free char *got = dump(cmd);
        fail(f, "unexpected command after the end of the script: %s", got);
        send_error(f, id, "fake-qmp: unexpected command");
        json_decref(cmd);
        json_decref(id);
    }
    return NULL;
}

struct fake_qmp *
fake_qmp_start(const struct fake_qmp_step *steps, size_t n, int *client_fd)
{
    struct fake_qmp *f = xcalloc(1, sizeof(*f));
    bool greeting = n > 0 && steps[0].kind == FAKE_QMP_STEP_GREETING;
    f->n_steps = n + (greeting ? 0 : 1);
    f->steps = xcalloc(f->n_steps, sizeof(*f->steps));
    size_t k = 0;
    if (!greeting)
        f->steps[k++] = (struct step){.kind = FAKE_QMP_STEP_GREETING,
                                      .text = xstrdup(FAKE_QMP_DEFAULT_GREETING),
                                      .index = -1};
    for (size_t i = 0; i < n; i++, k++) {
        const struct fake_qmp_step *in = &steps[i];
        struct step *s = &f->steps[k];
        s->kind = in->kind;
        s->count = in->count;
        s->fd = in->fd;
        s->index = (long)i;
        switch (in->kind) {
        case FAKE_QMP_STEP_GREETING:
            if (i != 0)
                die("step %zu: a greeting can only be the first step", i);
            s->text = in->text ? squote(in->text) : xstrdup(FAKE_QMP_DEFAULT_GREETING);
            break;
        case FAKE_QMP_STEP_EXPECT:
            s->json = parse_text("expected command", in->text);
            if (in->reply)
                s->reply = parse_text("reply", in->reply);
            break;
        case FAKE_QMP_STEP_REPLY:
            s->reply = parse_text("reply", in->reply);
            break;
        case FAKE_QMP_STEP_EVENT:
            s->json = parse_text("event", in->text);
            if (!json_object_get(s->json, "timestamp")) /* as QEMU does */
                json_object_set_new(
                    s->json, "timestamp",
                    json_pack("{s:i, s:i}", "seconds", 1700000000, "microseconds", 0));
            break;
        case FAKE_QMP_STEP_RAW:
            s->raw = xmalloc(in->raw_len);
            memcpy(s->raw, in->raw, in->raw_len);
            s->raw_len = in->raw_len;
            break;
        case FAKE_QMP_STEP_HANGUP:
        case FAKE_QMP_STEP_SILENT:
        case FAKE_QMP_STEP_ECHO:
        case FAKE_QMP_STEP_SLEEP:
            break;
        case FAKE_QMP_STEP_QEMU:
            if (i + 1 != n)
                die("step %zu: FAKE_QMP_QEMU() must be the last step", i);
            f->qemu = fake_qemu_new();
            break;
        default:
            die("step %zu: unknown kind %d", i, (int)in->kind);
        }
    }

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair: %s", strerror(errno));
    if (pipe2(f->stop, O_CLOEXEC) < 0)
        die("pipe: %s", strerror(errno));
    f->fd = sv[0];
    f->unanswered = json_array();
    pthread_mutex_init(&f->hook_lock, NULL);
    int r = pthread_create(&f->thread, NULL, peer_main, f);
    if (r != 0)
        die("pthread_create: %s", strerror(r));
    *client_fd = sv[1];
    return f;
}

int
fake_qmp_finish(struct fake_qmp *f, char **failure)
{
    if (failure)
        *failure = NULL;
    ssize_t w = write(f->stop[1], "x", 1);
    (void)w;
    pthread_join(f->thread, NULL);
    if (!f->failures)
        return 0;
    if (failure)
        *failure = xstrdup(f->failures);
    return -1;
}

const char *const *
fake_qmp_commands(const struct fake_qmp *f, size_t *n)
{
    *n = f->n_commands;
    return (const char *const *)f->commands;
}

int
fake_qmp_check_commands(const struct fake_qmp *f, const char *const *expected, size_t n,
                        char **failure)
{
    char *msg = NULL;
    for (size_t i = 0; i < n || i < f->n_commands; i++) {
        json_t *want = i < n ? parse_text("expected command", expected[i]) : NULL;
        json_t *got = i < f->n_commands ? json_loads(f->commands[i], 0, NULL) : NULL;
        if (!want || !got || !json_equal(want, got)) {
            cleanup_free char *w = want ? dump(want) : xstrdup("(nothing)");
            char *line = xasprintf("%scommand %zu: expected %s, got %s\n", msg ? msg : "", i, w,
                                   i < f->n_commands ? f->commands[i] : "(nothing)");
            free(msg);
            msg = line;
        }
        json_decref(want);
        json_decref(got);
    }
    if (failure)
        *failure = msg;
    else
        free(msg);
    return msg ? -1 : 0;
}

void
fake_qmp_set_hook(struct fake_qmp *f, void (*fn)(void *opaque, const char *command), void *opaque)
{
    pthread_mutex_lock(&f->hook_lock);
    f->hook = fn;
    f->hook_opaque = opaque;
    pthread_mutex_unlock(&f->hook_lock);
}

void
fake_qmp_set_fd_hook(struct fake_qmp *f, void (*fn)(void *opaque, const char *command, int fd),
                     void *opaque)
{
    pthread_mutex_lock(&f->hook_lock);
    f->fd_hook = fn;
    f->fd_hook_opaque = opaque;
    pthread_mutex_unlock(&f->hook_lock);
}

struct fake_qemu *
fake_qmp_qemu(struct fake_qmp *f)
{
    return f->qemu;
}

void
fake_qmp_free(struct fake_qmp *f)
{
    if (!f)
        return;
    fake_qemu_free(f->qemu);
    int fds[FAKE_QMP_MAX_FDS];
    close_fds(fds, take_fds(f, UINT64_MAX, fds)); /* sent with a command never read */
    pthread_mutex_destroy(&f->hook_lock);
    if (f->fd >= 0)
        close(f->fd);
    close(f->stop[0]);
    close(f->stop[1]);
    for (size_t i = 0; i < f->n_steps; i++) {
        free(f->steps[i].text);
        free(f->steps[i].raw);
        json_decref(f->steps[i].json);
        json_decref(f->steps[i].reply);
    }
    free(f->steps);
    for (size_t i = 0; i < f->n_commands; i++)
        free(f->commands[i]);
    free(f->commands);
    json_decref(f->unanswered);
    free(f->rbuf);
    free(f->failures);
    free(f);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QMP client transport.
 *
 * Locking. `lock` guards the state below it and is only held for short, non-blocking sections.
 * Two roles are handed out under it:
 *   - the exchange (`busy`): one command is on the wire at a time. Its owner writes the command
 *     and waits for the reply with the matching id; the role is held for exactly one exchange.
 *   - the reader (`reading`): one thread at a time reads the socket, without holding `lock`,
 *     and dispatches each line under it (reply -> the exchange's slot, event -> the queue).
 * A thread waiting for something that only a line from the peer can bring (the greeting, its
 * reply, an event) becomes the reader when nobody is, otherwise it sleeps on `cond`, which is
 * broadcast after every dispatched line and whenever a role is released. A thread waiting for
 * its turn never reads (a reader blocked in poll() would not see the turn being released); the
 * exchange owner guarantees progress by reading itself when nobody else does. So a thread
 * waiting for an event never blocks commands from other threads, and a reply read by the event
 * waiter is handed to the command's owner.
 *
 * Once broken (hang-up, garbage, oversized line), every later call fails at once with the
 * message of the first failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "qmp.h"
#include "rbuf.h"

#define QMP_READ_CHUNK (64u * 1024u)

/* A queued event: the whole message and its arrival number (1, 2, ...). */
struct qmp_event {
    TAILQ_ENTRY(qmp_event) link;
    uint64_t seq;
    json_t *msg;
};
TAILQ_HEAD(qmp_event_list, qmp_event);

struct qmp {
    int fd;
    char *vm_id;
    struct qmp_timeouts timeouts; /* the typed layer's (set before sharing) */

    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; broadcast on every state change */

    /* guarded by lock */
    bool broken;
    char *broken_msg; /* full message repeated by every call once broken */
    bool greeted;
    bool reading;        /* a thread owns the read side (in, scan) */
    bool busy;           /* a command exchange is in progress */
    /* the commands on the wire (a batch is sent back to back) and their replies */
    char pending_id[QMP_BATCH_MAX][32];
    json_t *replies[QMP_BATCH_MAX];
    size_t n_pending;
    uint64_t next_id;
    struct qmp_event_list events; /* oldest first, at most QMP_MAX_EVENTS */
    size_t n_events;
    uint64_t event_seq;  /* seq of the newest event queued */
    bool queue_overflow; /* dropping the oldest events (warned once per episode) */

    /* owned by the thread holding the reader role */
    struct rbuf in;
    size_t scan; /* bytes of in already searched for a line end */
};

static int64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
qmp_deadline(unsigned timeout_ms)
{
    return now_us() + (int64_t)timeout_ms * 1000;
}

/* Milliseconds left for poll(), rounded up; 0 once the deadline has passed. */
static int
poll_timeout(int64_t deadline)
{
    int64_t left = deadline - now_us();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

struct qmp *
qmp_new(int fd, const char *vm_id)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        uvm_error_errno(-errno, "QMP '%s': cannot make the socket non-blocking", vm_id);
        if (fd >= 0)
            close(fd);
        return NULL;
    }

    struct qmp *q = xcalloc(1, sizeof(*q));
    q->fd = fd;
    q->vm_id = xstrdup(vm_id);
    TAILQ_INIT(&q->events);
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &attr);
    pthread_condattr_destroy(&attr);
    return q;
}

void
qmp_set_timeouts(struct qmp *q, struct qmp_timeouts t)
{
    q->timeouts = t;
}

struct qmp_timeouts
qmp_get_timeouts(const struct qmp *q)
{
    return q->timeouts;
}

/* With lock held (or no other user). */
static void
event_remove(struct qmp *q, struct qmp_event *e)
{
    TAILQ_REMOVE(&q->events, e, link);
    q->n_events--;
    json_decref(e->msg);
    free(e);
}

void
qmp_free(struct qmp *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    struct qmp_event *e;
    while ((e = TAILQ_FIRST(&q->events)))
        event_remove(q, e);
    for (size_t i = 0; i < QMP_BATCH_MAX; i++)
        json_decref(q->replies[i]);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q->broken_msg);
    rbuf_release(&q->in);
    free(q->vm_id);
    free(q);
}

size_t
qmp_reader_moved(struct qmp *q)
{
    return q->in.moved;
}

bool
qmp_broken(struct qmp *q)
{
    pthread_mutex_lock(&q->lock);
    bool b = q->broken;
    pthread_mutex_unlock(&q->lock);
    return b;
}

/* With lock held. The first reason wins; waiters are woken to see it. */
static void __attribute__((format(printf, 2, 3)))
set_broken(struct qmp *q, const char *fmt, ...)
{
    if (q->broken)
        return;
    cleanup_free char *why = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&why, fmt, ap) < 0)
        why = NULL;
    va_end(ap);
    q->broken = true;
    q->broken_msg = xasprintf("QMP '%s': %s", q->vm_id, why ? why : "protocol failure");
    uvm_log(UVM_LOG_DEBUG, q->vm_id, "%s", q->broken_msg); /* callers get it as their error */
    pthread_cond_broadcast(&q->cond);
}

static void
cond_wait_until(struct qmp *q, int64_t deadline)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline / 1000000),
        .tv_nsec = (long)(deadline % 1000000) * 1000,
    };
    pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

/* Reader role: the next complete line in the buffer, if any (see read_line). */
static int
take_line(struct qmp *q, char **line, size_t *len, char **why)
{
    const char *data = (const char *)rbuf_data(&q->in);
    size_t avail = rbuf_avail(&q->in);
    const char *nl = avail > q->scan ? memchr(data + q->scan, '\n', avail - q->scan) : NULL;
    if (!nl) {
        q->scan = avail;
        /* room for QMP_MAX_LINE bytes plus "\r" means no newline yet is already too long */
        if (avail <= (size_t)QMP_MAX_LINE + 1)
            return 0;
        *why = xasprintf("protocol error: line longer than %u bytes", QMP_MAX_LINE);
        return -1;
    }
    size_t end = (size_t)(nl - data);
    size_t n = end > 0 && data[end - 1] == '\r' ? end - 1 : end;
    if (n > QMP_MAX_LINE) {
        *why = xasprintf("protocol error: line longer than %u bytes", QMP_MAX_LINE);
        return -1;
    }
    char *l = xmalloc(n + 1);
    memcpy(l, data, n);
    l[n] = '\0';
    rbuf_consume(&q->in, end + 1); /* moves nothing: linear in the bytes read */
    q->scan = 0;
    *line = l;
    *len = n;
    return 1;
}

/*
 * Reader role, called without lock. Returns 1 with *line (owned, NUL-terminated, line end
 * stripped), 0 on timeout, or -1 with *why (owned) when the stream is unusable.
 */
static int
read_line(struct qmp *q, int64_t deadline, char **line, size_t *len, char **why)
{
    for (;;) {
        int t = take_line(q, line, len, why);
        if (t != 0)
            return t;

        struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
        int r = poll(&pfd, 1, poll_timeout(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = xasprintf("poll: %s", strerror(errno));
            return -1;
        }
        if (r == 0)
            return 0;

        size_t room;
        uint8_t *dst = rbuf_reserve(&q->in, QMP_READ_CHUNK, &room);
        ssize_t got = recv(q->fd, dst, room, 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (got < 0 && errno != ECONNRESET) {
            *why = xasprintf("read: %s", strerror(errno));
            return -1;
        }
        if (got <= 0) {
            *why = xstrdup("connection closed");
            return -1;
        }
        rbuf_commit(&q->in, (size_t)got);
    }
}

static bool
event_matches(json_t *ev, const char *event, json_t *match)
{
    const char *name = json_string_value(json_object_get(ev, "event"));
    if (!name || strcmp(name, event) != 0)
        return false;
    if (!match)
        return true;
    json_t *data = json_object_get(ev, "data");
    const char *key;
    json_t *want;
    json_object_foreach (match, key, want) {
        json_t *have = json_object_get(data, key);
        if (!have || !json_equal(have, want))
            return false;
    }
    return true;
}

/* With lock held; takes the reference to ev. A full queue drops its oldest event. */
static void
queue_event(struct qmp *q, json_t *ev)
{
    if (q->n_events == QMP_MAX_EVENTS) {
        struct qmp_event *old = TAILQ_FIRST(&q->events);
        const char *name = json_string_value(json_object_get(old->msg, "event"));
        if (!q->queue_overflow)
            uvm_log(UVM_LOG_WARNING, q->vm_id,
                    "QMP '%s': event queue full, dropping %s (the oldest of %u; more drops go "
                    "unlogged until the queue drains)",
                    q->vm_id, name ? name : "?", QMP_MAX_EVENTS);
        q->queue_overflow = true;
        event_remove(q, old);
    } else if (q->n_events < QMP_MAX_EVENTS / 2) {
        q->queue_overflow = false;
    }
    struct qmp_event *e = xmalloc(sizeof(*e));
    e->seq = ++q->event_seq;
    e->msg = ev;
    TAILQ_INSERT_TAIL(&q->events, e, link);
    q->n_events++;
}

/* With lock held. Whether a queued DEVICE_DELETED event is about the device with QOM id `id`:
 * its "device" is id, or its "path" is /machine/peripheral/<id> or below (QEMU 7.2 sends one
 * for the virtio backend too, with only the path). */
static bool
device_deleted_is_for(json_t *ev, const char *id)
{
    static const char prefix[] = "/machine/peripheral/";
    json_t *data = json_object_get(ev, "data");
    const char *dev = json_string_value(json_object_get(data, "device"));
    const char *path = json_string_value(json_object_get(data, "path"));
    if (dev && strcmp(dev, id) == 0)
        return true;
    if (!path || strncmp(path, prefix, sizeof(prefix) - 1) != 0)
        return false;
    path += sizeof(prefix) - 1;
    size_t n = strlen(id);
    return strncmp(path, id, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/*
 * With lock held, before device_del of `id` goes on the wire: forget the DEVICE_DELETED events
 * of an earlier device with the same id, so that a wait for this unplug is only satisfied by
 * an event about it. This is complete: QEMU frees an id only after emitting the old device's
 * DEVICE_DELETED, and that event precedes the reply to the device_add that reused the id, so it
 * was queued before that device_add returned, hence before this device_del.
 */
static void
drop_stale_device_events(struct qmp *q, const char *command, json_t *args)
{
    const char *id = json_string_value(json_object_get(args, "id"));
    if (strcmp(command, "device_del") != 0 || !id)
        return;
    struct qmp_event *e, *next;
    for (e = TAILQ_FIRST(&q->events); e; e = next) {
        next = TAILQ_NEXT(e, link);
        const char *name = json_string_value(json_object_get(e->msg, "event"));
        if (!name || strcmp(name, "DEVICE_DELETED") != 0 || !device_deleted_is_for(e->msg, id))
            continue;
        uvm_log(UVM_LOG_DEBUG, q->vm_id, "QMP '%s': dropping a stale DEVICE_DELETED of '%s'",
                q->vm_id, id);
        event_remove(q, e);
    }
}

/* With lock held: one line read from the peer; msg (owned, may be NULL when not JSON). */
static void
dispatch(struct qmp *q, json_t *msg, const json_error_t *err)
{
    cleanup_json json_t *m = msg;

    if (!q->greeted) {
        if (!json_is_object(m) || !json_is_object(json_object_get(m, "QMP"))) {
            set_broken(q, "unexpected greeting (not a JSON object with \"QMP\")");
            return;
        }
        json_t *v = json_object_get(json_object_get(json_object_get(m, "QMP"), "version"), "qemu");
        uvm_log(UVM_LOG_DEBUG, q->vm_id,
                "QMP greeting from QEMU %" JSON_INTEGER_FORMAT ".%" JSON_INTEGER_FORMAT
                ".%" JSON_INTEGER_FORMAT,
                json_integer_value(json_object_get(v, "major")),
                json_integer_value(json_object_get(v, "minor")),
                json_integer_value(json_object_get(v, "micro")));
        q->greeted = true;
        return;
    }
    if (!m) {
        set_broken(q, "protocol error: invalid JSON from QEMU (%s)", err->text);
        return;
    }
    if (!json_is_object(m)) {
        set_broken(q, "protocol error: message from QEMU is not a JSON object");
        return;
    }

    if (json_is_string(json_object_get(m, "event"))) {
        json_t *data = json_object_get(m, "data");
        if (data && !json_is_object(data)) {
            set_broken(q, "protocol error: event from QEMU whose data is not a JSON object");
            return;
        }
        queue_event(q, steal_ptr(&m));
        return;
    }
    if (json_object_get(m, "return") || json_is_object(json_object_get(m, "error"))) {
        json_t *id = json_object_get(m, "id");
        /* Replies come in order. QEMU omits the id only when it could not parse the command:
         * that is the first one still waiting. */
        for (size_t i = 0; i < q->n_pending; i++) {
            if (q->replies[i])
                continue;
            if (!id || (json_is_string(id) && strcmp(json_string_value(id), q->pending_id[i]) == 0)) {
                q->replies[i] = steal_ptr(&m);
                return;
            }
            break;
        }
        cleanup_free char *s = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
        uvm_log(UVM_LOG_WARNING, q->vm_id, "QMP '%s': dropping reply with unknown id %s", q->vm_id,
                s ? s : "(none)");
        return;
    }
    uvm_log(UVM_LOG_WARNING, q->vm_id, "QMP '%s': dropping unexpected message", q->vm_id);
}

/*
 * With lock held (released while reading). Returns 0 once ready(q, opaque) is true,
 * UVM_E_HYPERVISOR with the message set once the client is broken, or UVM_E_TIMEOUT without a
 * message (the caller says what it was waiting for).
 */
static int
pump(struct qmp *q, bool (*ready)(struct qmp *, void *), void *opaque, int64_t deadline)
{
    for (;;) {
        if (ready(q, opaque))
            return 0;
        if (q->broken)
            return uvm_error(UVM_E_HYPERVISOR, "%s", q->broken_msg);
        if (now_us() >= deadline)
            return UVM_E_TIMEOUT;
        if (q->reading) {
            cond_wait_until(q, deadline);
            continue;
        }

        q->reading = true;
        pthread_mutex_unlock(&q->lock);
        char *line = NULL, *why = NULL;
        size_t len = 0;
        json_t *msg = NULL;
        json_error_t err = {0};
        int r = read_line(q, deadline, &line, &len, &why);
        if (r > 0) {
            uvm_log(UVM_LOG_DEBUG, q->vm_id, "QMP recv: %s", line);
            msg = json_loadb(line, len, 0, &err);
        }
        pthread_mutex_lock(&q->lock);
        q->reading = false;
        if (r > 0)
            dispatch(q, msg, &err);
        else if (r < 0)
            set_broken(q, "%s", why);
        pthread_cond_broadcast(&q->cond);
        free(line);
        free(why);
    }
}

/* Exchange owner, without lock. One send; with fd >= 0 it carries the fd as SCM_RIGHTS, so
 * the fd arrives with the first byte sent (QEMU takes it from the read that brings it). */
static ssize_t
send_chunk(struct qmp *q, const char *data, size_t len, int fd)
{
    if (fd < 0)
        return send(q->fd, data, len, MSG_NOSIGNAL);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(q->fd, &msg, MSG_NOSIGNAL);
}

/* Exchange owner, without lock. 0, UVM_E_TIMEOUT (nothing sent: the stream is intact) or
 * UVM_E_HYPERVISOR (broken). fd (borrowed, -1: none) goes with the first chunk sent. */
static int
write_all(struct qmp *q, const char *data, size_t len, int fd, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        struct pollfd pfd = {.fd = q->fd, .events = POLLOUT};
        int r = poll(&pfd, 1, poll_timeout(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && off == 0)
            return UVM_E_TIMEOUT;
        if (r <= 0) {
            pthread_mutex_lock(&q->lock);
            set_broken(q, r == 0 ? "timed out in the middle of sending a command"
                                 : "poll failed while sending a command");
            int ret = uvm_error(UVM_E_HYPERVISOR, "%s", q->broken_msg);
            pthread_mutex_unlock(&q->lock);
            return ret;
        }
        ssize_t n = send_chunk(q, data + off, len - off, off == 0 ? fd : -1);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0) {
            int e = errno;
            pthread_mutex_lock(&q->lock);
            if (e == EPIPE || e == ECONNRESET)
                set_broken(q, "connection closed");
            else
                set_broken(q, "send: %s", strerror(e));
            int ret = uvm_error(UVM_E_HYPERVISOR, "%s", q->broken_msg);
            pthread_mutex_unlock(&q->lock);
            return ret;
        }
        off += (size_t)n;
    }
    return 0;
}

static bool
ready_greeted(struct qmp *q, void *opaque)
{
    return q->greeted;
}

/* With lock held: wait, without reading, until no exchange is in progress. */
static int
wait_turn(struct qmp *q, int64_t deadline)
{
    for (;;) {
        if (q->broken)
            return uvm_error(UVM_E_HYPERVISOR, "%s", q->broken_msg);
        if (!q->busy)
            return 0;
        if (now_us() >= deadline)
            return UVM_E_TIMEOUT;
        cond_wait_until(q, deadline);
    }
}

static bool
ready_replies(struct qmp *q, void *opaque)
{
    for (size_t i = 0; i < q->n_pending; i++)
        if (!q->replies[i])
            return false;
    return true;
}

/* The wire text of one command ("...\r\n", owned). */
static char *
command_text(const struct qmp *q, const char *command, json_t *args, const char *id, int fd)
{
    cleanup_json json_t *cmd = json_pack("{s:s, s:s}", "execute", command, "id", id);
    if (!cmd)
        abort(); /* only fails on allocation */
    if (args)
        json_object_set(cmd, "arguments", args);
    char *text = json_dumps(cmd, JSON_COMPACT);
    if (!text)
        abort();
    uvm_log(UVM_LOG_DEBUG, q->vm_id, "QMP send%s: %s", fd >= 0 ? " with an fd" : "", text);
    size_t len = strlen(text);
    text = xrealloc(text, len + 3);
    memcpy(text + len, "\r\n", 3);
    return text;
}

/* One command's outcome from its reply (taken). */
static int
command_result(struct qmp *q, struct qmp_cmd *c, json_t *resp)
{
    json_t *error = json_object_get(resp, "error");
    if (error) {
        const char *cls = json_string_value(json_object_get(error, "class"));
        const char *desc = json_string_value(json_object_get(error, "desc"));
        uvm_log(UVM_LOG_DEBUG, q->vm_id, "QMP '%s': %s failed with class %s", q->vm_id,
                c->command, cls ? cls : "(none)");
        c->rc = uvm_error(UVM_E_HYPERVISOR, "QMP '%s': %s: %s", q->vm_id, c->command,
                          desc ? desc : "unknown error");
        uvm_error_set_class(qmp_error_class_of(cls));
    } else if (c->reply) {
        *c->reply = json_incref(json_object_get(resp, "return"));
    }
    json_decref(resp);
    return c->rc;
}

/* Send every command back to back (one round trip for the batch), each with its fd. */
static int
send_batch(struct qmp *q, const struct qmp_cmd *cmds, size_t n, char ids[][32], int64_t deadline)
{
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        cleanup_free char *text = command_text(q, cmds[i].command, cmds[i].args, ids[i],
                                               cmds[i].fd);
        r = write_all(q, text, strlen(text), cmds[i].fd, deadline);
        if (r == UVM_E_TIMEOUT && i > 0) { /* part of the batch is on the wire */
            pthread_mutex_lock(&q->lock);
            set_broken(q, "timed out in the middle of sending a batch");
            r = uvm_error(UVM_E_HYPERVISOR, "%s", q->broken_msg);
            pthread_mutex_unlock(&q->lock);
        }
    }
    return r;
}

int
qmp_execute_batch(struct qmp *q, struct qmp_cmd *cmds, size_t n, int64_t deadline)
{
    if (n == 0 || n > QMP_BATCH_MAX)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "QMP '%s': a batch of %zu commands", q->vm_id, n);
    for (size_t i = 0; i < n; i++) {
        cmds[i].rc = 0;
        if (cmds[i].reply)
            *cmds[i].reply = NULL;
        if (cmds[i].args && !json_is_object(cmds[i].args))
            return uvm_error(UVM_E_INVALID_ARGUMENT, "QMP '%s': %s: arguments must be an object",
                             q->vm_id, cmds[i].command);
    }
    char ids[QMP_BATCH_MAX][32];
    pthread_mutex_lock(&q->lock);
    int r = wait_turn(q, deadline);
    if (r < 0) {
        pthread_mutex_unlock(&q->lock);
        if (r == UVM_E_TIMEOUT)
            return uvm_error(r, "QMP '%s': %s: timed out waiting for the previous command",
                             q->vm_id, cmds[0].command);
        return r;
    }
    q->busy = true;
    for (size_t i = 0; i < n; i++) {
        drop_stale_device_events(q, cmds[i].command, cmds[i].args);
        snprintf(q->pending_id[i], sizeof(q->pending_id[i]), "uvm-%" PRIu64, ++q->next_id);
        memcpy(ids[i], q->pending_id[i], sizeof(ids[i]));
    }
    q->n_pending = n;
    pthread_mutex_unlock(&q->lock);

    r = send_batch(q, cmds, n, ids, deadline);

    pthread_mutex_lock(&q->lock);
    if (r == 0)
        r = pump(q, ready_replies, NULL, deadline);
    json_t *resp[QMP_BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        resp[i] = steal_ptr(&q->replies[i]);
    q->n_pending = 0;
    q->busy = false;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);

    int first = 0;
    struct uvm_error_state first_err = {0}; /* later failures usually follow from the first */
    for (size_t i = 0; i < n; i++) {
        if (r == 0 && command_result(q, &cmds[i], steal_ptr(&resp[i])) < 0 && first == 0) {
            first = cmds[i].rc;
            uvm_error_capture(&first_err);
        }
        json_decref(resp[i]);
    }
    if (r == UVM_E_TIMEOUT)
        r = uvm_error(r, "QMP '%s': %s: timed out waiting for the reply", q->vm_id,
                      cmds[n - 1].command);
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            cmds[i].rc = r;
        free(first_err.msg);
        return r;
    }
    return first < 0 ? uvm_error_restore(&first_err, first) : 0;
}

enum qmp_error_class
qmp_error_class_of(const char *name)
{
    static const char *const names[] = {
        [QMP_ERROR_GENERIC] = "GenericError",
        [QMP_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
        [QMP_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
        [QMP_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
        [QMP_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
    };
    for (size_t i = 1; name && i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(names[i], name))
            return (enum qmp_error_class)i;
    return QMP_ERROR_GENERIC; /* an error reply without a class we know */
}

int
qmp_execute_fd(struct qmp *q, const char *command, json_t *args, int fd, json_t **reply,
               int64_t deadline)
{
    struct qmp_cmd c = {.command = command, .args = args, .fd = fd, .reply = reply};
    return qmp_execute_batch(q, &c, 1, deadline);
}

int
qmp_execute(struct qmp *q, const char *command, json_t *args, json_t **reply, int64_t deadline)
{
    return qmp_execute_fd(q, command, args, -1, reply, deadline);
}

const char *
qmp_vm_id(const struct qmp *q)
{
    return q->vm_id;
}

/* With lock held. */
static int
check_broken(struct qmp *q)
{
    return q->broken ? uvm_error(UVM_E_HYPERVISOR, "%s", q->broken_msg) : 0;
}

int
qmp_handshake(struct qmp *q, int64_t deadline)
{
    pthread_mutex_lock(&q->lock);
    int r = check_broken(q);
    if (r == 0)
        r = pump(q, ready_greeted, NULL, deadline);
    pthread_mutex_unlock(&q->lock);
    if (r == UVM_E_TIMEOUT)
        return uvm_error(r, "QMP '%s': timed out waiting for the greeting", q->vm_id);
    if (r < 0)
        return r;
    return qmp_execute(q, "qmp_capabilities", NULL, NULL, deadline);
}

struct event_wait {
    const char *event;
    json_t *match;
    json_t *data;
    uint64_t seen; /* events up to this seq were already looked at */
};

/* With lock held. Only events queued since the last look are searched (oldest match wins), so
 * a waiter costs O(1) per line read, not O(queue). */
static bool
ready_event(struct qmp *q, void *opaque)
{
    struct event_wait *w = opaque;
    struct qmp_event *found = NULL, *e;
    TAILQ_FOREACH_REVERSE (e, &q->events, qmp_event_list, link) {
        if (e->seq <= w->seen)
            break;
        if (event_matches(e->msg, w->event, w->match))
            found = e;
    }
    w->seen = q->event_seq;
    if (!found)
        return false;
    json_t *data = json_object_get(found->msg, "data");
    w->data = data ? json_incref(data) : json_object();
    event_remove(q, found);
    return true;
}

int
qmp_wait_event(struct qmp *q, const char *event, json_t *match, json_t **data, int64_t deadline)
{
    if (data)
        *data = NULL;
    if (match && !json_is_object(match))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "QMP '%s': event %s: match must be an object",
                         q->vm_id, event);

    struct event_wait w = {.event = event, .match = match};
    pthread_mutex_lock(&q->lock);
    int r = check_broken(q);
    if (r == 0)
        r = pump(q, ready_event, &w, deadline);
    pthread_mutex_unlock(&q->lock);
    if (r == UVM_E_TIMEOUT)
        return uvm_error(r, "QMP '%s': timed out waiting for event %s", q->vm_id, event);
    if (r < 0)
        return r;
    if (data)
        *data = w.data;
    else
        json_decref(w.data);
    return 0;
}

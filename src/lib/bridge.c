/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "options.h"
#include "proto.h"
#include "timeutil.h"

#define MAX_GUEST_TEXT 2048 /* longest guest error or log text we pass on */

struct pending {
    struct pending *next;
    uint64_t id;
    uint32_t type;
    bool done;
    int rc;
    json_t *resp;
    char *msg;
};

struct chunk {
    struct chunk *next;
    size_t len, off;
    uint8_t data[];
};

struct stream {
    struct stream *next;
    uint64_t sid;
    int fd;
    bool inbound; /* stdin: host -> guest */
    /* outbound (guest -> user) */
    struct chunk *head, *tail;
    unsigned queued;
    bool eof_received;
    bool discard; /* the user closed the reading end */
    /* inbound (user -> guest) */
    unsigned unacked;
};

struct bridge {
    int fd;
    int wake_fd;
    char *vm_id;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct proto_outq outq;
    struct proto_reader rd;
    uint64_t next_id;
    uint32_t next_handle;
    struct pending *pending;
    struct stream *streams;
    bool broken, stop;
    int broken_code;
    char *broken_msg;
    /* Log lines made under the lock, handed to the log handler after unlocking: a slow
     * handler must not stall the channel, and must be free to call into libuvm. */
    struct deferred_log *logs, **logs_tail;
    unsigned nlogs, dropped_logs;
};

struct deferred_log {
    struct deferred_log *next;
    enum uvm_log_level level;
    char msg[];
};

#define MAX_DEFERRED_LOGS 256

/* Lock held. */
static void __attribute__((format(printf, 3, 4)))
blog(struct bridge *b, enum uvm_log_level level, const char *fmt, ...)
{
    if (!uvm_log_enabled(level))
        return;
    if (b->nlogs >= MAX_DEFERRED_LOGS) {
        b->dropped_logs++;
        return;
    }
    char buf[MAX_GUEST_TEXT + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    struct deferred_log *l = xmalloc(sizeof(*l) + strlen(buf) + 1);
    l->next = NULL;
    l->level = level;
    strcpy(l->msg, buf);
    if (!b->logs_tail)
        b->logs_tail = &b->logs;
    *b->logs_tail = l;
    b->logs_tail = &l->next;
    b->nlogs++;
}

/* Lock not held. */
static void
flush_logs(struct bridge *b)
{
    pthread_mutex_lock(&b->lock);
    struct deferred_log *l = b->logs;
    unsigned dropped = b->dropped_logs;
    b->logs = NULL;
    b->logs_tail = &b->logs;
    b->nlogs = 0;
    b->dropped_logs = 0;
    pthread_mutex_unlock(&b->lock);
    while (l) {
        struct deferred_log *n = l->next;
        uvm_log(l->level, b->vm_id, "%s", l->msg);
        free(l);
        l = n;
    }
    if (dropped)
        uvm_log(UVM_LOG_WARNING, b->vm_id, "agent: %u log lines dropped (too many at once)",
                dropped);
}

static void
wake(struct bridge *b)
{
    uint64_t one = 1;
    ssize_t r = write(b->wake_fd, &one, sizeof(one));
    (void)r;
}

static char *
sanitize(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *out = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
    out[n] = '\0';
    return out;
}

/* Lock held. */
static void
fail_pending(struct bridge *b)
{
    for (struct pending *p = b->pending; p; p = p->next) {
        if (p->done)
            continue;
        p->done = true;
        p->rc = b->broken_code;
        p->msg = xstrdup(b->broken_msg);
    }
    pthread_cond_broadcast(&b->cond);
}

static void
shutdown_locked(struct bridge *b, int code, const char *msg)
{
    if (b->broken)
        return;
    b->broken = true;
    b->broken_code = code;
    b->broken_msg = xstrdup(msg);
    blog(b, UVM_LOG_DEBUG, "agent bridge down: %s", msg);
    fail_pending(b);
}

void
bridge_shutdown(struct bridge *b, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&b->lock);
    shutdown_locked(b, code, msg);
    pthread_mutex_unlock(&b->lock);
    wake(b);
    flush_logs(b);
}

static struct stream *
find_stream(struct bridge *b, uint64_t sid)
{
    for (struct stream *s = b->streams; s; s = s->next)
        if (s->sid == sid)
            return s;
    return NULL;
}

/* Queue a frame to the guest (lock held). A guest that stops reading cannot make us buffer
 * without bound. */
static void
push_frame(struct bridge *b, uint32_t type, uint64_t id, const void *data, size_t len)
{
    if (b->broken)
        return;
    if (b->outq.bytes + len > BRIDGE_MAX_OUTQ) {
        shutdown_locked(b, UVM_E_PROTOCOL, "the guest agent stopped reading its channel");
        return;
    }
    proto_outq_push(&b->outq, type, id, data, len);
}

static void
handle_response(struct bridge *b, const struct proto_header *h, const uint8_t *data, size_t len)
{
    struct pending *p = b->pending;
    while (p && p->id != h->id)
        p = p->next;
    if (!p || p->done) {
        blog(b, UVM_LOG_WARNING, "agent: dropped a response with unknown id %llu",
                (unsigned long long)h->id);
        return;
    }
    p->done = true;
    const char *what = proto_type_name(p->type);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *result = json_object_get(j, "Result");
    if (h->type != PROTO_RESPONSE_OF(p->type) || !json_is_object(j) ||
        !json_is_integer(result)) {
        p->rc = UVM_E_PROTOCOL;
        p->msg = xasprintf("malformed %s response from the guest agent (%s)", what,
                           j ? "wrong type or no integer Result" : jerr.text);
        json_decref(j);
    } else if (json_integer_value(result) != 0) {
        const char *m = json_string_value(json_object_get(j, "ErrorMessage"));
        cleanup_free char *clean = sanitize(m ? m : "", MAX_GUEST_TEXT);
        p->rc = UVM_E_GUEST;
        p->msg = m ? xasprintf("guest: %s", clean)
                   : xasprintf("guest: %s failed with result 0x%08x", what,
                               (unsigned)json_integer_value(result));
        json_decref(j);
    } else {
        p->rc = 0;
        p->resp = j;
    }
    pthread_cond_broadcast(&b->cond);
}

static void
handle_log(struct bridge *b, const uint8_t *data, size_t len)
{
    json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    const char *lvl = json_string_value(json_object_get(j, "level"));
    const char *msg = json_string_value(json_object_get(j, "msg"));
    if (!lvl || !msg) {
        blog(b, UVM_LOG_WARNING, "agent: malformed log notification dropped");
    } else {
        enum uvm_log_level level = UVM_LOG_INFO;
        if (!strcmp(lvl, "debug"))
            level = UVM_LOG_DEBUG;
        else if (!strcmp(lvl, "warning"))
            level = UVM_LOG_WARNING;
        else if (!strcmp(lvl, "error") || !strcmp(lvl, "fatal"))
            level = UVM_LOG_ERROR;
        cleanup_free char *clean = sanitize(msg, MAX_GUEST_TEXT);
        blog(b, level, "guest: %s", clean);
    }
    json_decref(j);
}

static void
handle_data(struct bridge *b, const struct proto_header *h, const uint8_t *data, size_t len)
{
    struct stream *s = find_stream(b, h->id);
    if (!s || s->inbound) {
        /* A stream we closed (or never had): acknowledge so the guest is not stuck. */
        if (len)
            push_frame(b, PROTO_STREAM_ACK, h->id, NULL, 0);
        return;
    }
    if (s->eof_received) {
        blog(b, UVM_LOG_WARNING, "agent: data after end of stream %llu dropped",
                (unsigned long long)h->id);
        return;
    }
    if (len == 0) {
        s->eof_received = true;
        return;
    }
    if (s->discard) {
        push_frame(b, PROTO_STREAM_ACK, h->id, NULL, 0);
        return;
    }
    if (s->queued >= PROTO_STREAM_WINDOW) {
        blog(b, UVM_LOG_WARNING, "agent: stream %llu overran its window; data dropped",
                (unsigned long long)h->id);
        return;
    }
    struct chunk *c = xmalloc(sizeof(*c) + len);
    c->next = NULL;
    c->len = len;
    c->off = 0;
    memcpy(c->data, data, len);
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->queued++;
}

static void
handle_ack(struct bridge *b, const struct proto_header *h)
{
    struct stream *s = find_stream(b, h->id);
    if (s && s->inbound && s->unacked > 0)
        s->unacked--;
}

/* Lock held. Returns false when the channel must be dropped. */
static bool
process_frames(struct bridge *b)
{
    for (;;) {
        struct proto_header h;
        const uint8_t *data;
        size_t len;
        int rc = proto_reader_next(&b->rd, &h, &data, &len);
        if (rc == 0)
            return true;
        if (rc < 0) {
            shutdown_locked(b, UVM_E_PROTOCOL,
                            rc == -EMSGSIZE ? "the guest agent sent an oversized or truncated frame"
                                            : "the guest agent sent a frame of unknown type");
            return false;
        }
        switch (PROTO_CLASS(h.type)) {
        case PROTO_CLASS_RESPONSE:
            handle_response(b, &h, data, len);
            break;
        case PROTO_CLASS_NOTIFY:
            handle_log(b, data, len);
            break;
        case PROTO_CLASS_STREAM:
            if (h.type == PROTO_STREAM_DATA)
                handle_data(b, &h, data, len);
            else
                handle_ack(b, &h);
            break;
        default:
            blog(b, UVM_LOG_WARNING, "agent: unexpected request 0x%08x dropped",
                    h.type);
            break;
        }
        proto_reader_consume(&b->rd, h.size);
    }
}

static void
stream_free(struct stream *s)
{
    while (s->head) {
        struct chunk *c = s->head;
        s->head = c->next;
        free(c);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

/* Lock held: write queued output to the user's end. */
static void
stream_write(struct bridge *b, struct stream *s)
{
    while (s->head) {
        struct chunk *c = s->head;
        ssize_t n = send(s->fd, c->data + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            /* The reader went away: keep the guest going, drop the rest. */
            s->discard = true;
            while (s->head) {
                struct chunk *d = s->head;
                s->head = d->next;
                free(d);
                push_frame(b, PROTO_STREAM_ACK, s->sid, NULL, 0);
            }
            s->tail = NULL;
            s->queued = 0;
            break;
        }
        c->off += (size_t)n;
        if (c->off < c->len)
            continue;
        s->head = c->next;
        if (!s->head)
            s->tail = NULL;
        s->queued--;
        free(c);
        push_frame(b, PROTO_STREAM_ACK, s->sid, NULL, 0);
    }
    if (s->eof_received && !s->head && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* Lock held: send what the user wrote to stdin. */
static void
stream_read(struct bridge *b, struct stream *s)
{
    uint8_t buf[PROTO_MAX_CHUNK];
    ssize_t n = read(s->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        push_frame(b, PROTO_STREAM_DATA, s->sid, NULL, 0);
        close(s->fd);
        s->fd = -1;
        return;
    }
    push_frame(b, PROTO_STREAM_DATA, s->sid, buf, (size_t)n);
    s->unacked++;
}

static void *
io_thread(void *arg)
{
    struct bridge *b = arg;
    struct pollfd *pfd = NULL;
    struct stream **owners = NULL;
    size_t cap = 0;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        if (b->stop || b->broken) {
            pthread_mutex_unlock(&b->lock);
            break;
        }
        size_t n = 2;
        for (struct stream *s = b->streams; s; s = s->next)
            n++;
        if (n > cap) {
            cap = n * 2;
            pfd = xrealloc(pfd, cap * sizeof(*pfd));
            owners = xrealloc(owners, cap * sizeof(*owners));
        }
        pfd[0] = (struct pollfd){.fd = b->fd, .events = POLLIN};
        if (!proto_outq_empty(&b->outq))
            pfd[0].events |= POLLOUT;
        pfd[1] = (struct pollfd){.fd = b->wake_fd, .events = POLLIN};
        n = 2;
        for (struct stream *s = b->streams; s; s = s->next) {
            short ev = 0;
            if (s->fd >= 0 && s->inbound && s->unacked < PROTO_STREAM_WINDOW)
                ev = POLLIN;
            else if (s->fd >= 0 && !s->inbound && s->head)
                ev = POLLOUT;
            else if (s->fd >= 0 && !s->inbound && s->eof_received)
                ev = POLLOUT; /* close it in stream_write */
            if (!ev)
                continue;
            owners[n] = s;
            pfd[n++] = (struct pollfd){.fd = s->fd, .events = ev};
        }
        pthread_mutex_unlock(&b->lock);

        if (poll(pfd, n, -1) < 0 && errno != EINTR) {
            char msg[128];
            snprintf(msg, sizeof(msg), "agent I/O thread: poll failed: %s", strerror(errno));
            pthread_mutex_lock(&b->lock);
            shutdown_locked(b, UVM_E_HYPERVISOR, msg);
            pthread_mutex_unlock(&b->lock);
            break;
        }

        pthread_mutex_lock(&b->lock);
        if (pfd[1].revents) {
            uint64_t v;
            ssize_t r = read(b->wake_fd, &v, sizeof(v));
            (void)r;
        }
        for (size_t i = 2; i < n; i++) {
            struct stream *s = owners[i];
            /* The stream may have been removed meanwhile: check it is still listed. */
            struct stream *t = b->streams;
            while (t && t != s)
                t = t->next;
            if (!t || s->fd < 0 || !pfd[i].revents)
                continue;
            if (s->inbound)
                stream_read(b, s);
            else
                stream_write(b, s);
        }
        if (pfd[0].revents & POLLIN) {
            long r = proto_reader_fill(&b->rd, b->fd);
            if (r == 0 || (r < 0 && r != -EAGAIN && r != -EINTR))
                shutdown_locked(b, UVM_E_UNEXPECTED_EXIT,
                                "the guest agent connection closed (the utility VM stopped)");
            else if (r > 0)
                process_frames(b);
        } else if (pfd[0].revents & (POLLHUP | POLLERR)) {
            shutdown_locked(b, UVM_E_UNEXPECTED_EXIT,
                            "the guest agent connection closed (the utility VM stopped)");
        }
        if (!b->broken && !proto_outq_empty(&b->outq)) {
            int r = proto_outq_flush(&b->outq, b->fd);
            if (r < 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "write to the guest agent failed: %s", strerror(-r));
                shutdown_locked(b, UVM_E_UNEXPECTED_EXIT, msg);
            }
        }
        pthread_mutex_unlock(&b->lock);
        flush_logs(b);
    }
    /* Down: give every reader of stdout/stderr its end of file. */
    pthread_mutex_lock(&b->lock);
    for (struct stream *s = b->streams; s; s = s->next) {
        if (s->fd >= 0) {
            close(s->fd);
            s->fd = -1;
        }
    }
    pthread_mutex_unlock(&b->lock);
    free(pfd);
    free(owners);
    return NULL;
}

int
bridge_new(int fd, const char *vm_id, struct bridge **out)
{
    struct bridge *b = xcalloc(1, sizeof(*b));
    b->fd = fd;
    b->vm_id = xstrdup(vm_id);
    b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &ca);
    pthread_condattr_destroy(&ca);
    int fl = fcntl(fd, F_GETFL);
    if (b->wake_fd < 0 || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = -errno;
        bridge_free(b);
        return uvm_error_errno(e, "set up the agent channel");
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&b->thread, NULL, io_thread, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        bridge_free(b);
        return uvm_error_errno(-rc, "create the agent I/O thread");
    }
    *out = b;
    return 0;
}

void
bridge_free(struct bridge *b)
{
    if (!b)
        return;
    if (b->thread) {
        pthread_mutex_lock(&b->lock);
        b->stop = true;
        pthread_mutex_unlock(&b->lock);
        wake(b);
        pthread_join(b->thread, NULL);
    }
    while (b->streams) {
        struct stream *s = b->streams;
        b->streams = s->next;
        stream_free(s);
    }
    while (b->pending) {
        struct pending *p = b->pending;
        b->pending = p->next;
        json_decref(p->resp);
        free(p->msg);
        free(p);
    }
    while (b->logs) {
        struct deferred_log *l = b->logs;
        b->logs = l->next;
        free(l);
    }
    proto_outq_release(&b->outq);
    proto_reader_release(&b->rd);
    if (b->fd >= 0)
        close(b->fd);
    if (b->wake_fd >= 0)
        close(b->wake_fd);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    free(b->broken_msg);
    free(b->vm_id);
    free(b);
}

int
bridge_call(struct bridge *b, uint32_t type, json_t *req, json_t **resp, int64_t deadline)
{
    if (resp)
        *resp = NULL;
    if (!req)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "%s request could not be encoded (a string that is not UTF-8?)",
                         proto_type_name(type));
    char activity[37];
    options_new_guid(activity);
    json_object_set_new(req, "ContainerId", json_string(PROTO_NULL_CONTAINER));
    json_object_set_new(req, "ActivityId", json_string(activity));
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s request could not be encoded",
                         proto_type_name(type));
    size_t len = strlen(text);
    const char *what = proto_type_name(type);

    pthread_mutex_lock(&b->lock);
    if (b->broken) {
        int code = b->broken_code;
        uvm_error(code, "%s", b->broken_msg);
        pthread_mutex_unlock(&b->lock);
        free(text);
        return code;
    }
    if (len > PROTO_MAX_MESSAGE - PROTO_HEADER_SIZE) {
        pthread_mutex_unlock(&b->lock);
        free(text);
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s request of %zu bytes is over the 1 MiB limit",
                         what, len);
    }
    struct pending *p = xcalloc(1, sizeof(*p));
    p->id = ++b->next_id;
    p->type = type;
    p->next = b->pending;
    b->pending = p;
    blog(b, UVM_LOG_DEBUG, "agent <- %s #%llu %.2000s", what, (unsigned long long)p->id, text);
    push_frame(b, type, p->id, text, len);
    free(text);
    wake(b);
    while (!p->done) {
        if (deadline == DEADLINE_NEVER) {
            pthread_cond_wait(&b->cond, &b->lock);
            continue;
        }
        struct timespec ts = deadline_timespec(deadline);
        if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) == ETIMEDOUT && !p->done) {
            p->done = true;
            p->rc = uvm_error(UVM_E_TIMEOUT, "the guest agent did not answer %s in time", what);
            p->msg = xstrdup(uvm_last_error());
        }
    }
    struct pending **pp = &b->pending;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    pthread_mutex_unlock(&b->lock);
    flush_logs(b);

    int rc = p->rc;
    if (rc < 0) {
        uvm_error(rc, "%s", p->msg);
    } else {
        if (uvm_log_enabled(UVM_LOG_DEBUG)) {
            cleanup_free char *t = json_dumps(p->resp, JSON_COMPACT);
            uvm_log(UVM_LOG_DEBUG, b->vm_id, "agent -> %s #%llu %s", what,
                    (unsigned long long)p->id, t ? t : "");
        }
        if (resp)
            *resp = p->resp;
        else
            json_decref(p->resp);
    }
    free(p->msg);
    free(p);
    return rc;
}

uint32_t
bridge_new_handle(struct bridge *b)
{
    pthread_mutex_lock(&b->lock);
    uint32_t h = ++b->next_handle;
    pthread_mutex_unlock(&b->lock);
    return h;
}

void
bridge_stream_add(struct bridge *b, uint32_t handle, const int fds[3])
{
    pthread_mutex_lock(&b->lock);
    for (unsigned i = 0; i < 3; i++) {
        if (fds[i] < 0)
            continue;
        struct stream *s = xcalloc(1, sizeof(*s));
        s->sid = PROTO_STREAM_ID(handle, i);
        s->fd = fds[i];
        s->inbound = i == PROTO_STDIN;
        int fl = fcntl(s->fd, F_GETFL);
        if (fl >= 0)
            fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
        if (b->broken) { /* the VM is gone: end of file at once */
            close(s->fd);
            s->fd = -1;
        }
        s->next = b->streams;
        b->streams = s;
    }
    pthread_mutex_unlock(&b->lock);
    wake(b);
}

void
bridge_stream_remove(struct bridge *b, uint32_t handle)
{
    pthread_mutex_lock(&b->lock);
    struct stream **pp = &b->streams;
    while (*pp) {
        struct stream *s = *pp;
        if (PROTO_STREAM_HANDLE(s->sid) == handle) {
            /* Unacknowledged output would stall the guest's writer: acknowledge it. */
            for (unsigned i = 0; i < s->queued && !s->inbound; i++)
                push_frame(b, PROTO_STREAM_ACK, s->sid, NULL, 0);
            *pp = s->next;
            stream_free(s);
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&b->lock);
    wake(b);
}

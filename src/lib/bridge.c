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
#include "bridgelog.h"
#include "cleanup.h"
#include "error.h"
#include "options.h"
#include "proto.h"
#include "sanitize.h"
#include "timeutil.h"

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
    struct bridgelog log;           /* lines made under the lock, delivered after unlocking */
    unsigned call_ms, container_ms; /* BRIDGE_DEADLINE_CALL, _CONTAINER (set before sharing) */
};

static void
wake(struct bridge *b)
{
    uint64_t one = 1;
    ssize_t r = write(b->wake_fd, &one, sizeof(one));
    (void)r;
}

void
bridge_set_clock(struct bridge *b, int64_t (*clock)(void *opaque), void *opaque)
{
    pthread_mutex_lock(&b->lock);
    bridgelog_set_clock(&b->log, clock, opaque);
    pthread_mutex_unlock(&b->lock);
    wake(b);
}

/* Lock not held. */
static void
flush_logs(struct bridge *b)
{
    pthread_mutex_lock(&b->lock);
    struct bridgelog_batch batch = bridgelog_take(&b->log);
    pthread_mutex_unlock(&b->lock);
    bridgelog_deliver(batch, b->vm_id);
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
    bridgelog_add(&b->log, UVM_LOG_DEBUG, "agent bridge down: %s", msg);
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
        bridgelog_guest(&b->log, UVM_LOG_WARNING, "agent: dropped a response with unknown id %llu",
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
        /* jansson's text quotes the guest's bytes near the error: guest text, cleaned. */
        cleanup_free char *why = sanitize_dup(jerr.text, strnlen(jerr.text, sizeof(jerr.text)),
                                              sizeof(jerr.text), 0);
        p->rc = UVM_E_PROTOCOL;
        p->msg = xasprintf("malformed %s response from the guest agent (%s)", what,
                           j ? "wrong type or no integer Result" : why);
        json_decref(j);
    } else if (json_integer_value(result) != 0) {
        json_t *jm = json_object_get(j, "ErrorMessage");
        const char *m = json_string_value(jm);
        cleanup_free char *clean = sanitize_dup(m, json_string_length(jm), GUEST_TEXT_MAX, 0);
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
        bridgelog_guest(&b->log, UVM_LOG_WARNING,
                        "agent: data after end of stream %llu dropped", (unsigned long long)h->id);
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
        bridgelog_guest(&b->log, UVM_LOG_WARNING,
                        "agent: stream %llu overran its window; data dropped",
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
            bridgelog_notification(&b->log, data, len);
            break;
        case PROTO_CLASS_STREAM:
            if (h.type == PROTO_STREAM_DATA)
                handle_data(b, &h, data, len);
            else
                handle_ack(b, &h);
            break;
        default:
            bridgelog_guest(&b->log, UVM_LOG_WARNING, "agent: unexpected request 0x%08x dropped",
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
        /* The user's end may be a terminal socket we also read stdin from (another
         * descriptor): end of file for the user's reads all the same. */
        shutdown(s->fd, SHUT_WR);
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

/* What the I/O thread polls: the channel, the wake-up eventfd, then the streams in owners[]. */
struct pollset {
    struct pollfd *pfd;
    struct stream **owners;
    size_t n, cap;
};

/* Lock held. */
static void
pollset_build(struct bridge *b, struct pollset *ps)
{
    size_t n = 2;
    for (struct stream *s = b->streams; s; s = s->next)
        n++;
    if (n > ps->cap) {
        ps->cap = n * 2;
        ps->pfd = xrealloc(ps->pfd, ps->cap * sizeof(*ps->pfd));
        ps->owners = xrealloc(ps->owners, ps->cap * sizeof(*ps->owners));
    }
    ps->pfd[0] = (struct pollfd){.fd = b->fd, .events = POLLIN};
    if (!proto_outq_empty(&b->outq))
        ps->pfd[0].events |= POLLOUT;
    ps->pfd[1] = (struct pollfd){.fd = b->wake_fd, .events = POLLIN};
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
        ps->owners[n] = s;
        ps->pfd[n++] = (struct pollfd){.fd = s->fd, .events = ev};
    }
    ps->n = n;
}

/* Lock held: the agent channel's side of a poll() round. */
static void
channel_io(struct bridge *b, short revents)
{
    if (revents & POLLIN) {
        long r = proto_reader_fill(&b->rd, b->fd);
        if (r == 0 || (r < 0 && r != -EAGAIN && r != -EINTR))
            shutdown_locked(b, UVM_E_UNEXPECTED_EXIT,
                            "the guest agent connection closed (the utility VM stopped)");
        else if (r > 0)
            process_frames(b);
    } else if (revents & (POLLHUP | POLLERR)) {
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
}

/* Lock held: act on what poll() reported. */
static void
pollset_handle(struct bridge *b, const struct pollset *ps)
{
    if (ps->pfd[1].revents) {
        uint64_t v;
        ssize_t r = read(b->wake_fd, &v, sizeof(v));
        (void)r;
    }
    for (size_t i = 2; i < ps->n; i++) {
        struct stream *s = ps->owners[i];
        /* The stream may have been removed meanwhile: check it is still listed. */
        struct stream *t = b->streams;
        while (t && t != s)
            t = t->next;
        if (!t || s->fd < 0 || !ps->pfd[i].revents)
            continue;
        if (s->inbound)
            stream_read(b, s);
        else
            stream_write(b, s);
    }
    channel_io(b, ps->pfd[0].revents);
    bridgelog_tick(&b->log);
}

static void *
io_thread(void *arg)
{
    struct bridge *b = arg;
    struct pollset ps = {0};
    for (;;) {
        pthread_mutex_lock(&b->lock);
        if (b->stop || b->broken) {
            pthread_mutex_unlock(&b->lock);
            break;
        }
        pollset_build(b, &ps);
        int timeout = bridgelog_timeout_ms(&b->log);
        pthread_mutex_unlock(&b->lock);

        if (poll(ps.pfd, ps.n, timeout) < 0 && errno != EINTR) {
            char msg[128];
            snprintf(msg, sizeof(msg), "agent I/O thread: poll failed: %s", strerror(errno));
            pthread_mutex_lock(&b->lock);
            shutdown_locked(b, UVM_E_HYPERVISOR, msg);
            pthread_mutex_unlock(&b->lock);
            break;
        }

        pthread_mutex_lock(&b->lock);
        pollset_handle(b, &ps);
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
    free(ps.pfd);
    free(ps.owners);
    return NULL;
}

int
bridge_new(int fd, const char *vm_id, bool trust_guest_log_levels, struct bridge **out)
{
    struct bridge *b = xcalloc(1, sizeof(*b));
    b->fd = fd;
    b->vm_id = xstrdup(vm_id);
    b->call_ms = BRIDGE_TIMEOUT_MS;
    b->container_ms = BRIDGE_CONTAINER_TIMEOUT_MS;
    bridgelog_init(&b->log, b->vm_id, trust_guest_log_levels);
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
    bridgelog_release(&b->log);
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

static int call_named(struct bridge *b, uint32_t type, const char *what, json_t *req,
                      json_t **resp, int64_t deadline);

int
bridge_modify(struct bridge *b, const json_t *guest_request, int64_t deadline)
{
    /* the step a timeout names: "ModifySettings (Network Add)" */
    const char *res = json_string_value(json_object_get(guest_request, "ResourceType"));
    const char *type = json_string_value(json_object_get(guest_request, "RequestType"));
    char what[96];
    snprintf(what, sizeof(what), "%s (%.32s %.16s)", proto_type_name(PROTO_REQ_MODIFY_SETTINGS),
             res ? res : "?", type ? type : "?");
    json_t *req = json_pack("{s:O}", "Request", (json_t *)guest_request);
    return call_named(b, PROTO_REQ_MODIFY_SETTINGS, what, req, NULL, deadline);
}

json_t *
bridge_guest_request(const char *resource_type, const char *request_type, json_t *settings)
{
    return json_pack("{s:s, s:s, s:o}", "ResourceType", resource_type, "RequestType",
                     request_type, "Settings", settings);
}

int
bridge_guest_part(struct bridge *b, const struct guest_part *g, json_t *typed)
{
    const json_t *req = g && g->custom ? g->request : typed;
    int rc = req ? bridge_modify(b, req, BRIDGE_DEADLINE_CALL) : 0;
    json_decref(typed);
    return rc;
}

/* The request's text with the fields every request carries (req taken). NULL with the error
 * set when it cannot be encoded. */
static char *
encode(uint32_t type, json_t *req)
{
    if (!req) {
        uvm_error(UVM_E_INVALID_ARGUMENT,
                  "%s request could not be encoded (a string that is not UTF-8?)",
                  proto_type_name(type));
        return NULL;
    }
    char activity[37];
    options_new_guid(activity);
    if (!json_object_get(req, "ContainerId")) /* a container's request names it */
        json_object_set_new(req, "ContainerId", json_string(PROTO_NULL_CONTAINER));
    json_object_set_new(req, "ActivityId", json_string(activity));
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text)
        uvm_error(UVM_E_INVALID_ARGUMENT, "%s request could not be encoded",
                  proto_type_name(type));
    return text;
}

/* Lock held: queue the request's frame for the I/O thread. NULL with the error set when the
 * channel is broken or the request too long. */
static struct pending *
send_request(struct bridge *b, uint32_t type, const char *text)
{
    size_t len = strlen(text);
    const char *what = proto_type_name(type);
    if (b->broken) {
        uvm_error(b->broken_code, "%s", b->broken_msg);
        return NULL;
    }
    if (len > PROTO_MAX_MESSAGE - PROTO_HEADER_SIZE) {
        uvm_error(UVM_E_INVALID_ARGUMENT, "%s request of %zu bytes is over the 1 MiB limit", what,
                  len);
        return NULL;
    }
    struct pending *p = xcalloc(1, sizeof(*p));
    p->id = ++b->next_id;
    p->type = type;
    p->next = b->pending;
    b->pending = p;
    bridgelog_add(&b->log, UVM_LOG_DEBUG, "agent <- %s #%llu %.2000s", what,
                  (unsigned long long)p->id, text);
    push_frame(b, type, p->id, text, len);
    wake(b);
    return p;
}

/* Lock held: wait for the answer (or the deadline), then take p out of the pending list. */
static void
wait_answer(struct bridge *b, struct pending *p, const char *what, int64_t deadline)
{
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
}

void
bridge_set_timeouts(struct bridge *b, unsigned call_ms, unsigned container_ms)
{
    b->call_ms = call_ms ? call_ms : BRIDGE_TIMEOUT_MS;
    b->container_ms = container_ms ? container_ms : BRIDGE_CONTAINER_TIMEOUT_MS;
}

/* A BRIDGE_DEADLINE_* as an absolute deadline, and the option it comes from (else NULL). */
static int64_t
resolve_deadline(struct bridge *b, int64_t deadline, const char **knob, unsigned *ms)
{
    *knob = NULL;
    if (deadline == BRIDGE_DEADLINE_CALL)
        *knob = "agent_call_ms", *ms = b->call_ms;
    else if (deadline == BRIDGE_DEADLINE_CONTAINER)
        *knob = "container_ms", *ms = b->container_ms;
    return *knob ? deadline_after_ms(*ms) : deadline;
}

int
bridge_call(struct bridge *b, uint32_t type, json_t *req, json_t **resp, int64_t deadline)
{
    return call_named(b, type, proto_type_name(type), req, resp, deadline);
}

/* bridge_call, `what` naming the request in a timeout and the log. */
static int
call_named(struct bridge *b, uint32_t type, const char *what, json_t *req, json_t **resp,
           int64_t deadline)
{
    if (resp)
        *resp = NULL;
    const char *knob;
    unsigned ms = 0;
    deadline = resolve_deadline(b, deadline, &knob, &ms);
    cleanup_free char *text = encode(type, req);
    if (!text)
        return UVM_E_INVALID_ARGUMENT;
    pthread_mutex_lock(&b->lock);
    struct pending *p = send_request(b, type, text);
    int rc = p ? 0 : b->broken ? b->broken_code : UVM_E_INVALID_ARGUMENT;
    if (p)
        wait_answer(b, p, what, deadline);
    pthread_mutex_unlock(&b->lock);
    if (!p)
        return rc;
    flush_logs(b);
    rc = p->rc;
    if (rc == UVM_E_TIMEOUT && knob) {
        uvm_error(rc, "%s (uvm_options.timeouts.%s: %u ms)", p->msg, knob, ms);
    } else if (rc < 0) {
        uvm_error(rc, "%s", p->msg);
    } else {
        if (uvm_log_enabled(UVM_LOG_DEBUG)) {
            /* ASCII, controls escaped: the guest wrote this. */
            cleanup_free char *t = json_dumps(p->resp, JSON_COMPACT | JSON_ENSURE_ASCII);
            cleanup_free char *clean = sanitize_dup(t, t ? strlen(t) : 0, 4096, 0);
            uvm_log(UVM_LOG_DEBUG, b->vm_id, "agent -> %s #%llu %s", what,
                    (unsigned long long)p->id, clean);
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

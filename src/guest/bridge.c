/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "clone.h"
#include "container.h"
#include "crun.h"
#include "devwait.h"
#include "log.h"
#include "modify.h"
#include "modules.h"
#include "process.h"
#include "properties.h"
#include "proto.h"
#include "stream.h"

#define OUTQ_HIGH (8u << 20)     /* stop reading requests while this much output is queued */
#define LOG_QUEUE_MAX (4u << 20) /* drop Log notifications beyond this */
#define READS_PER_WAKEUP 64      /* then give the other fds a turn */
/* Poll slots: 0 the bridge, 1 the signalfd, then the device waits, then the streams. */
#define POLL_DEVWAIT 2
#define POLL_STREAMS (POLL_DEVWAIT + DEVWAIT_POLLFDS)

struct bridge {
    int fd;
    int sigfd;
    struct proto_reader in;
    struct proto_outq out;
    /* virtio_console reports POLLHUP (and reads return 0) while the host side of the port is
     * not connected: before the host connects, and after it went away. Only a hang-up after the
     * port was seen connected means the host is gone. */
    bool host_up;   /* a poll reported the port without POLLHUP */
    bool host_wait; /* hang-up before that: wait for SIGIO (the driver's connection change) */
    bool logging;    /* Log notifications enabled (after NegotiateProtocol) */
    bool negotiated;
    bool late_started; /* device modules: loaded once the host has its answer, not before */
    bool quiesced;     /* for a template save (clone.h): until Resume */
    int64_t init_start_us;
    struct pollfd *pfds;
    uint64_t *keys;
    size_t cap;
};

int64_t
boottime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
bridge_send(struct bridge *b, uint32_t type, uint64_t id, const void *payload, size_t len)
{
    int rc = proto_outq_push(&b->out, type, id, payload, len);
    if (rc < 0)
        log_error("cannot queue a 0x%08x frame of %zu bytes: %s", type, len, strerror(-rc));
    return rc;
}

void
bridge_reply(struct bridge *b, struct request *req, int rc)
{
    const char *name = proto_type_name(req->type);
    if (rc < 0 && !req->error)
        request_fail(req, "%s failed: %s", name, strerror(-rc));
    if (req->error)
        log_info("%s (id %llu) failed: %s", name, (unsigned long long)req->id, req->error);
    size_t len = 0;
    char *json = request_response_json(req, &len);
    if (!json || bridge_send(b, PROTO_RESPONSE_OF(req->type), req->id, json, len) < 0) {
        free(json);
        request_fail(req, "%s: the response could not be encoded", name);
        json = request_response_json(req, &len);
        if (json)
            bridge_send(b, PROTO_RESPONSE_OF(req->type), req->id, json, len);
    }
    free(json);
    request_free(req);
}

static void
log_sink(enum log_level level, const char *msg, void *ctx)
{
    struct bridge *b = ctx;
    if (b->out.bytes > LOG_QUEUE_MAX)
        return;
    json_t *j = json_pack("{s:s, s:s}", "level", log_level_name(level), "msg", msg);
    if (!j) { /* not UTF-8 (a cut multi-byte sequence, say): send it as ASCII */
        cleanup_free char *ascii = xstrdup(msg);
        for (char *c = ascii; *c; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
        j = json_pack("{s:s, s:s}", "level", log_level_name(level), "msg", ascii);
    }
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s)
        proto_outq_push(&b->out, PROTO_NOTIFY_LOG, 0, s, strlen(s));
    free(s);
    if (j)
        json_decref(j);
}

static int
handle_negotiate(struct bridge *b, struct request *req)
{
    uint64_t min = 0, max = 0;
    int rc = req_uint(req, req->body, "MinimumVersion", true, 0, UINT32_MAX, &min);
    if (rc == 0)
        rc = req_uint(req, req->body, "MaximumVersion", true, 0, UINT32_MAX, &max);
    if (rc < 0)
        return rc;
    if (min > PROTO_VERSION || max < PROTO_VERSION)
        return request_fail(req, "unsupported protocol version range [%llu, %llu]: the guest "
                                 "supports version %u",
                            (unsigned long long)min, (unsigned long long)max, PROTO_VERSION);
    req->result = json_pack(
        "{s:i, s:{s:b, s:b, s:b, s:[{s:i, s:i}, {s:i, s:i}], s:s, s:{s:b, s:b}}, s:{s:I, s:I}}",
        "Version", (int)PROTO_VERSION, "Capabilities", "SendHostCreateMessage", 0,
        "SendHostStartMessage", 0, "HvSocketConfigOnStartup", 0, "SupportedSchemaVersions",
        "Major", 1, "Minor", 0, "Major", 2, "Minor", 1, "RuntimeOsType", "Linux",
        "GuestDefinedCapabilities", "NamespaceAddRequestSupported", 0, "SignalProcessSupported",
        1, "GuestTimes", "InitStartUs", (json_int_t)b->init_start_us, "ReadyUs",
        (json_int_t)boottime_us());
    b->negotiated = true;
    log_debug("negotiated protocol %u (init at %lld us, ready at %lld us)", PROTO_VERSION,
              (long long)b->init_start_us, (long long)boottime_us());
    return 0;
}

static const struct {
    uint32_t type;
    bridge_handler_fn *fn;
} handlers[] = {
    {PROTO_REQ_NEGOTIATE_PROTOCOL, handle_negotiate},
    {PROTO_REQ_CREATE_CONTAINER, container_handle_create},
    {PROTO_REQ_EXECUTE_PROCESS, container_handle_execute}, /* -> process.c without ContainerId */
    {PROTO_REQ_WAIT_PROCESS, process_handle_wait},
    {PROTO_REQ_SIGNAL_PROCESS, container_handle_signal},   /* -> process.c without ContainerId */
    {PROTO_REQ_DELETE_CONTAINER_STATE, container_handle_delete},
    {PROTO_REQ_GET_PROPERTIES, properties_handle_get},
    {PROTO_REQ_RESIZE_CONSOLE, process_handle_resize},
    {PROTO_REQ_MODIFY_SETTINGS, modify_handle},
    {PROTO_REQ_QUIESCE, clone_handle_quiesce},
    {PROTO_REQ_RESUME, clone_handle_resume},
};

void
bridge_quiesce(struct bridge *b)
{
    b->quiesced = true;
    b->logging = false;
    log_set_sink(NULL, NULL); /* nothing of ours after the answer: the VM is about to pause */
}

void
bridge_resume(struct bridge *b)
{
    b->quiesced = false; /* the log sink comes back with the answer (dispatch_request) */
}

/* While quiesced, only what a clone's host sends first is served. */
static bool
served_quiesced(uint32_t type)
{
    return type == PROTO_REQ_NEGOTIATE_PROTOCOL || type == PROTO_REQ_RESUME;
}

static void
dispatch_request(struct bridge *b, const struct proto_header *h, const uint8_t *payload,
                 size_t len)
{
    struct request *req = request_new(h->type, h->id);
    log_debug("request %s id %llu (%zu bytes)", proto_type_name(h->type),
              (unsigned long long)h->id, len);
    int rc = request_parse(req, payload, len);
    if (rc == 0 && b->quiesced && !served_quiesced(h->type))
        rc = request_fail(req, "%s refused: the agent is quiesced for a template save "
                               "(only NegotiateProtocol and Resume are served until Resume)",
                          proto_type_name(h->type) ? proto_type_name(h->type) : "request");
    else if (rc == 0) {
        rc = request_fail(req, "the request type 0x%08x is not supported", h->type);
        for (size_t i = 0; i < ARRAY_SIZE(handlers); i++) {
            if (handlers[i].type == h->type) {
                free(req->error);
                req->error = NULL;
                rc = handlers[i].fn(b, req);
                break;
            }
        }
    }
    if (rc != BRIDGE_DEFERRED)
        bridge_reply(b, req, rc);
    if (b->negotiated && !b->logging && !b->quiesced) {
        b->logging = true; /* the host knows us now: send it our log lines */
        log_set_sink(log_sink, b);
    }
}

static void
handle_frame(struct bridge *b, const struct proto_header *h, const uint8_t *payload, size_t len)
{
    switch (PROTO_CLASS(h->type)) {
    case PROTO_CLASS_REQUEST:
        dispatch_request(b, h, payload, len);
        break;
    case PROTO_CLASS_STREAM:
        if (h->type == PROTO_STREAM_DATA)
            stream_on_data(b, h->id, payload, len);
        else
            stream_on_ack(b, h->id);
        break;
    default:
        log_warn("unexpected %s frame (type 0x%08x) from the host ignored",
                 proto_type_name(h->type), h->type);
        break;
    }
}

/* Handle every complete frame: 0, or -errno on a frame that breaks the channel. */
static int
handle_frames(struct bridge *b)
{
    for (;;) {
        struct proto_header h;
        const uint8_t *payload = NULL;
        size_t len = 0;
        int rc = proto_reader_next(&b->in, &h, &payload, &len);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            log_error("bad frame from the host (type 0x%08x, size %u): %s; the channel cannot "
                      "be resynchronised",
                      h.type, h.size, strerror(-rc));
            return rc;
        }
        handle_frame(b, &h, payload, len);
        proto_reader_consume(&b->in, h.size);
    }
}

static void
set_async(struct bridge *b, bool on)
{
    int fl = fcntl(b->fd, F_GETFL);
    if (fl < 0)
        return;
    fl = on ? fl | O_ASYNC : fl & ~O_ASYNC;
    if (on && fcntl(b->fd, F_SETOWN, getpid()) < 0)
        log_warn("bridge port: F_SETOWN: %s", strerror(errno));
    if (fcntl(b->fd, F_SETFL, fl) < 0)
        log_warn("bridge port: O_ASYNC: %s", strerror(errno));
}

/* The port hung up: before it was ever seen connected, the host is just not there yet. */
static int
on_hangup(struct bridge *b)
{
    if (b->host_up && !b->quiesced) {
        log_info("the host closed the bridge");
        return 1;
    }
    if (b->host_up) { /* a template or clone: the next host is another connection */
        log_info("bridge port: the host went away while quiesced; waiting for the next one");
        b->host_up = false;
        set_async(b, true);
        /* Nothing half-sent or half-read belongs to the next host. */
        proto_outq_release(&b->out);
        proto_reader_release(&b->in);
    }
    if (!b->host_wait)
        log_debug("bridge port: host not connected yet, waiting");
    b->host_wait = true;
    return 0;
}

/* Bridge fd events: 0, 1 when the host is gone, -errno on fatal errors. */
static int
bridge_events(struct bridge *b, short revents)
{
    if (!(revents & POLLHUP) && !b->host_up) {
        b->host_up = true;
        set_async(b, false); /* SIGIO was only needed to learn this */
    }
    if ((revents & POLLHUP) && b->host_up)
        return on_hangup(b);
    if (!(revents & (POLLIN | POLLHUP | POLLERR)))
        return 0;
    for (int i = 0; i < READS_PER_WAKEUP && b->out.bytes <= OUTQ_HIGH; i++) {
        long n = proto_reader_fill(&b->in, b->fd);
        if (n == -EAGAIN || n == -EINTR)
            return 0;
        if (n < 0) {
            log_error("bridge read: %s", strerror((int)-n));
            return (int)n;
        }
        if (n == 0)
            return on_hangup(b);
        int rc = handle_frames(b);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void
reap_children(struct bridge *b)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        if (modules_late_reaped(pid, status)) {
            modify_late_ready(b);
            clone_late_ready(b);
        }
        else if (!crun_reaped(b, pid, status))
            process_exited(b, pid, status);
    }
}

static void
signal_events(struct bridge *b)
{
    bool reap = false;
    for (;;) {
        struct signalfd_siginfo si[16];
        ssize_t n = read(b->sigfd, si, sizeof(si));
        if (n <= 0)
            break;
        for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
            if (si[i].ssi_signo == SIGCHLD)
                reap = true;
            else if (si[i].ssi_signo == SIGIO && b->host_wait) {
                log_debug("bridge port: state changed, polling it again");
                b->host_wait = false;
            }
        }
    }
    if (reap)
        reap_children(b);
}

static void
ensure_pollfds(struct bridge *b, size_t n)
{
    if (n <= b->cap)
        return;
    b->cap = n * 2;
    b->pfds = xrealloc(b->pfds, b->cap * sizeof(*b->pfds));
    b->keys = xrealloc(b->keys, b->cap * sizeof(*b->keys));
}

static int
bridge_loop(struct bridge *b)
{
    for (;;) {
        if (!b->host_wait) {
            int rc = proto_outq_flush(&b->out, b->fd);
            if (rc < 0) {
                log_error("bridge write: %s", strerror(-rc));
                return rc;
            }
            /* The late modules compete for the vCPUs: start them once the NegotiateProtocol
             * answer is on its way, so that boot (uvm_start) is not slowed by them. */
            if (b->negotiated && !b->late_started && rc == 0) {
                b->late_started = true;
                modules_late_start();
            }
        }
        ensure_pollfds(b, POLL_STREAMS + stream_count());
        struct pollfd *bp = &b->pfds[0];
        *bp = (struct pollfd){.fd = b->host_wait ? -1 : b->fd};
        if (b->out.bytes <= OUTQ_HIGH)
            bp->events |= POLLIN;
        if (!proto_outq_empty(&b->out))
            bp->events |= POLLOUT;
        b->pfds[1] = (struct pollfd){.fd = b->sigfd, .events = POLLIN};
        devwait_poll_fill(b->pfds + POLL_DEVWAIT);
        size_t ns = stream_poll_fill(b->pfds + POLL_STREAMS, b->keys, b->cap - POLL_STREAMS);

        int n = poll(b->pfds, POLL_STREAMS + ns, process_next_timeout());
        if (n < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return -errno;
        }
        /* The bridge before signals: a SIGIO (host connected) read below must not be lost
         * to a hang-up seen in the same wake-up. */
        if (n > 0 && bp->revents) {
            int rc = bridge_events(b, bp->revents);
            if (rc != 0)
                return rc < 0 ? rc : 0;
        }
        if (n > 0 && b->pfds[1].revents)
            signal_events(b);
        if (n > 0)
            devwait_poll_handle(b, b->pfds + POLL_DEVWAIT);
        for (size_t i = 0; n > 0 && i < ns; i++)
            stream_poll_handle(b, b->keys[i], b->pfds[POLL_STREAMS + i].revents);
        process_expire(b);
    }
}

int
bridge_run(int port_fd, int64_t init_start_us)
{
    struct bridge b = {.fd = port_fd, .init_start_us = init_start_us};
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGIO);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    b.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (b.sigfd < 0) {
        int err = errno;
        log_error("signalfd: %s", strerror(err));
        return -err;
    }
    set_async(&b, true); /* SIGIO tells when the host connects */
    int rc = bridge_loop(&b);
    /* Best effort: the last log lines and responses, then the caller powers off. */
    log_set_sink(NULL, NULL);
    if (!b.host_wait)
        (void)proto_outq_flush(&b.out, b.fd);
    proto_outq_release(&b.out);
    proto_reader_release(&b.in);
    close(b.sigfd);
    free(b.pfds);
    free(b.keys);
    return rc;
}

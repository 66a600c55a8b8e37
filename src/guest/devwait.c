/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "devwait.h"
#include "port.h"
#include "log.h"

#define UEVENT_MAX 8192

struct wait {
    struct wait *next;
    int64_t deadline_ms;
    devwait_check_fn *check;
    devwait_done_fn *done;
    void *ctx;
    int rc; /* set when finished */
};

static struct wait *waits, **waits_tail = &waits;
static unsigned nwaits;
static int uevent_fd = -1;
static int timer_fd = -1;

static int
open_sockets(void)
{
    if (uevent_fd >= 0 && timer_fd >= 0)
        return 0;
    if (uevent_fd < 0) {
        int fd = port_watch_open(); /* the same uevent socket set-up as the port search */
        if (fd < 0)
            return fd;
        uevent_fd = fd;
    }
    if (timer_fd < 0) {
        timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (timer_fd < 0)
            return -errno;
    }
    return 0;
}

/* Arm the timer at the earliest deadline (or disarm it). */
static void
rearm(void)
{
    int64_t first = -1;
    for (struct wait *w = waits; w; w = w->next)
        if (first < 0 || w->deadline_ms < first)
            first = w->deadline_ms;
    struct itimerspec its = {0};
    if (first >= 0) {
        its.it_value.tv_sec = first / 1000;
        its.it_value.tv_nsec = (first % 1000) * 1000000;
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1; /* zero would disarm */
    }
    if (timer_fd >= 0 && timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        log_error("devwait: timerfd_settime: %s", strerror(errno));
}

/* Move the finished waits (rc != 1 after a check said so) out of the list, then complete them
 * in order: done callbacks may start or cancel waits. */
static void
complete(struct bridge *b, struct wait *finished)
{
    rearm();
    while (finished) {
        struct wait *w = finished;
        finished = w->next;
        w->done(b, w->ctx, w->rc);
        free(w);
    }
}

typedef bool wait_pred_fn(struct wait *w, const void *arg);

/* Unlink the waits for which pred sets w->rc to a final value; returns them in order. */
static struct wait *
take(wait_pred_fn *pred, const void *arg)
{
    struct wait *finished = NULL, **ftail = &finished;
    struct wait **wp = &waits;
    while (*wp) {
        struct wait *w = *wp;
        if (!pred(w, arg)) {
            wp = &w->next;
            continue;
        }
        *wp = w->next;
        w->next = NULL;
        *ftail = w;
        ftail = &w->next;
        nwaits--;
    }
    waits_tail = wp;
    return finished;
}

/* Run the check with ev; true (w->rc set) when the wait is over. */
static bool
pred_check(struct wait *w, const void *arg)
{
    int rc = w->check(w->ctx, arg);
    if (rc == 0)
        return false;
    w->rc = rc > 0 ? 0 : rc;
    return true;
}

static bool
pred_expired(struct wait *w, const void *arg)
{
    const int64_t *now = arg;
    if (w->deadline_ms > *now)
        return false;
    int rc = w->check(w->ctx, NULL); /* a last look: an event may have been lost */
    w->rc = rc > 0 ? 0 : rc < 0 ? rc : -ETIMEDOUT;
    return true;
}

struct cancel_arg {
    devwait_check_fn *check;
    devwait_match_fn *match;
    const void *arg;
};

static bool
pred_cancel(struct wait *w, const void *arg)
{
    const struct cancel_arg *c = arg;
    if (w->check != c->check || !c->match(w->ctx, c->arg))
        return false;
    w->rc = -ECANCELED;
    return true;
}

void
devwait_start(struct bridge *b, unsigned timeout_ms, devwait_check_fn *check,
              devwait_done_fn *done, void *ctx)
{
    int rc = open_sockets(); /* subscribe before looking at sysfs */
    if (rc < 0) {
        log_error("devwait: cannot watch uevents: %s", strerror(-rc));
        done(b, ctx, rc);
        return;
    }
    rc = check(ctx, NULL);
    if (rc != 0) {
        done(b, ctx, rc > 0 ? 0 : rc);
        return;
    }
    struct wait *w = xcalloc(1, sizeof(*w));
    w->deadline_ms = monotonic_ms() + timeout_ms;
    w->check = check;
    w->done = done;
    w->ctx = ctx;
    *waits_tail = w;
    waits_tail = &w->next;
    nwaits++;
    rearm();
}

unsigned
devwait_cancel(struct bridge *b, devwait_check_fn *check, devwait_match_fn *match,
               const void *arg)
{
    struct cancel_arg c = {check, match, arg};
    struct wait *finished = take(pred_cancel, &c);
    unsigned n = 0;
    for (struct wait *w = finished; w; w = w->next)
        n++;
    complete(b, finished);
    return n;
}

unsigned
devwait_pending(void)
{
    return nwaits;
}

/* Parse "action@devpath\0KEY=value\0...": false for anything else (libudev's re-broadcasts). */
static bool
uevent_parse(char *buf, size_t len, struct uevent *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (!memchr(buf, '@', strnlen(buf, len)))
        return false;
    for (size_t off = strlen(buf) + 1; off < len;) {
        char *kv = buf + off;
        size_t n = strnlen(kv, len - off);
        if (!strncmp(kv, "ACTION=", 7))
            ev->action = kv + 7;
        else if (!strncmp(kv, "SUBSYSTEM=", 10))
            ev->subsystem = kv + 10;
        else if (!strncmp(kv, "DEVPATH=", 8))
            ev->devpath = kv + 8;
        else if (!strncmp(kv, "DEVNAME=", 8))
            ev->devname = kv + 8;
        else if (!strncmp(kv, "DEVTYPE=", 8))
            ev->devtype = kv + 8;
        off += n + 1;
    }
    return ev->action && ev->subsystem && ev->devpath;
}

/* Read every queued uevent and check the waits against each. */
static void
uevents(struct bridge *b)
{
    static char buf[UEVENT_MAX + 1];
    bool rescan = false;
    for (;;) {
        struct sockaddr_nl from;
        struct iovec iov = {.iov_base = buf, .iov_len = UEVENT_MAX};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
                            .msg_iovlen = 1};
        ssize_t n = recvmsg(uevent_fd, &mh, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS) { /* lost some: look at sysfs once this batch is read */
                log_warn("devwait: uevents were lost (receive buffer full); rechecking sysfs");
                rescan = true;
                continue;
            }
            if (errno != EAGAIN)
                log_error("devwait: uevent socket: %s", strerror(errno));
            break;
        }
        if (from.nl_pid != 0 || !waits)
            continue; /* only the kernel's uevents, and only when someone waits */
        buf[n] = '\0';
        struct uevent ev;
        if (!uevent_parse(buf, (size_t)n, &ev))
            continue;
        complete(b, take(pred_check, &ev));
    }
    if (rescan && waits)
        complete(b, take(pred_check, NULL));
}

void
devwait_poll_fill(struct pollfd *pfds)
{
    pfds[0] = (struct pollfd){.fd = uevent_fd, .events = POLLIN};
    pfds[1] = (struct pollfd){.fd = timer_fd, .events = POLLIN};
}

void
devwait_poll_handle(struct bridge *b, const struct pollfd *pfds)
{
    if (pfds[0].fd >= 0 && pfds[0].revents)
        uevents(b);
    if (pfds[1].fd >= 0 && pfds[1].revents) {
        uint64_t ticks;
        if (read(timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
            log_error("devwait: timerfd: %s", strerror(errno));
        int64_t now = monotonic_ms();
        complete(b, take(pred_expired, &now));
    }
}

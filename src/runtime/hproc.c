/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A process in the holder (holder.h): its stdio relay, its wait, its stub.
 *
 * One thread per process: stdout and stderr from the library's sockets to the shim's pipes
 * until both end (or the VM is gone), then uvm_process_wait, then the shim's pipes are closed
 * (the shim's copy sees end-of-file) and only then the stub gets EXIT: the shim reaps the stub
 * after the output is complete. A second thread per process copies the shim's stdin to the
 * library's socket until end-of-file or until the process ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "console.h"
#include "holder.h"
#include "timeutil.h"

#define RELAY_BUF 65536
#define STATUS_LOST 255 /* the guest process's status could not be had (VM gone) */
#define ATTACH_DEADLINE_MS 60000

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* An exec that is done for good: exited, no thread or caller on it, its stub attached and gone
 * (or none came within the attach deadline). Under the lock. */
static bool
reclaimable(const struct hproc *p)
{
    if (!p->exited || p->users > 0)
        return false;
    if (p->stub_pid)
        return p->stub_fd < 0;
    return now_us() - p->exited_us > (int64_t)ATTACH_DEADLINE_MS * 1000;
}

static void
hproc_free(struct hproc *p)
{
    for (int i = 0; i < 3; i++) {
        close_fd(&p->host[i]);
        close_fd(&p->lib[i]);
    }
    close_fd(&p->tty_fd);
    close_fd(&p->stop_fd);
    uvm_process_close(p->p);
    free(p);
}

/* Free the execs that are done for good (the init stays): a long-lived container may run any
 * number of execs one after another. */
static void
reclaim(struct holder *h)
{
    struct hproc *gone[HOLDER_MAX_PROCS];
    size_t n = 0, kept = 1;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 1; i < h->nprocs; i++) {
        if (reclaimable(h->procs[i]))
            gone[n++] = h->procs[i];
        else
            h->procs[kept++] = h->procs[i];
    }
    if (h->nprocs)
        h->nprocs = kept;
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < n; i++)
        hproc_free(gone[i]);
}

struct hproc *
hproc_add(struct holder *h, const char *name, const int host[3], bool terminal)
{
    reclaim(h);
    struct hproc *p = xcalloc(1, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->terminal = terminal;
    p->tty_fd = terminal && host[0] >= 0 ? fcntl(host[0], F_DUPFD_CLOEXEC, 3) : -1;
    for (int i = 0; i < 3; i++) {
        p->host[i] = host[i];
        p->lib[i] = -1;
    }
    p->stub_fd = -1;
    p->stop_fd = eventfd(0, EFD_CLOEXEC);
    pthread_mutex_lock(&h->lock);
    bool full = h->nprocs >= HOLDER_MAX_PROCS;
    if (!full)
        h->procs[h->nprocs++] = p;
    pthread_mutex_unlock(&h->lock);
    if (full) {
        hproc_free(p);
        return NULL;
    }
    return p;
}

struct hproc *
hproc_init(struct holder *h)
{
    return h->procs[0]; /* added before the holder serves; never freed */
}

struct hproc *
hproc_get(struct holder *h, const char *name)
{
    struct hproc *found = NULL;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nprocs && !found; i++)
        if (!strcmp(h->procs[i]->name, name))
            found = h->procs[i];
    if (found)
        found->users++;
    pthread_mutex_unlock(&h->lock);
    return found;
}

void
hproc_put(struct holder *h, struct hproc *p)
{
    pthread_mutex_lock(&h->lock);
    p->users--;
    pthread_mutex_unlock(&h->lock);
}

/* Write all of buf to fd, a blocking pipe; false once it is broken (the rest is dropped). */
static bool
write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

/* The shim's stdin to the library's socket (non-blocking: a stop is never stuck in a write). */
static void *
stdin_thread(void *opaque)
{
    struct hproc *p = opaque;
    char *buf = xmalloc(RELAY_BUF);
    int in = p->host[0], out = p->lib[0];
    fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK);
    for (bool done = false; !done;) {
        struct pollfd pf[2] = {{.fd = in, .events = POLLIN}, {.fd = p->stop_fd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        if (!pf[0].revents)
            continue;
        ssize_t n = read(in, buf, RELAY_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* end of input: closing our end passes it on */
        for (ssize_t off = 0; off < n && !done;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w > 0) {
                off += w;
                continue;
            }
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                done = true;
                break;
            }
            struct pollfd wp[2] = {{.fd = out, .events = POLLOUT},
                                   {.fd = p->stop_fd, .events = POLLIN}};
            if (poll(wp, 2, -1) < 0 && errno != EINTR)
                done = true;
            if (wp[1].revents)
                done = true;
        }
    }
    free(buf);
    close_fd(&p->lib[0]);
    return NULL;
}

/* stdout and stderr until both ended, or the VM is gone (then what is queued is drained). */
static void
relay_output(struct holder *h, struct hproc *p)
{
    char *buf = xmalloc(RELAY_BUF);
    bool ok[3] = {false, true, true}; /* the shim's pipe still takes data */
    bool dead = false;
    while (p->lib[1] >= 0 || p->lib[2] >= 0) {
        struct pollfd pf[3] = {{.fd = p->lib[1], .events = POLLIN},
                               {.fd = p->lib[2], .events = POLLIN},
                               {.fd = dead ? -1 : h->dead_fd, .events = POLLIN}};
        int r = poll(pf, 3, dead ? 0 : -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* the VM is gone and nothing more is queued */
        if (pf[2].revents)
            dead = true;
        for (int i = 1; i <= 2; i++) {
            if (p->lib[i] < 0 || !pf[i - 1].revents)
                continue;
            ssize_t n = read(p->lib[i], buf, RELAY_BUF);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                close_fd(&p->lib[i]);
            else if (ok[i])
                ok[i] = write_all(p->host[i], buf, (size_t)n);
        }
    }
    free(buf);
    close_fd(&p->lib[1]);
    close_fd(&p->lib[2]);
}

static void
send_exit_locked(struct hproc *p)
{
    if (p->stub_fd >= 0 && p->exited)
        rtmsg_send(p->stub_fd, RTMSG_EXIT, 0, p->status, NULL, NULL, 0);
}

static void *
proc_thread(void *opaque)
{
    void **args = opaque;
    struct holder *h = args[0];
    struct hproc *p = args[1];
    free(args);
    pthread_t in_t;
    bool have_in = p->lib[0] >= 0 && p->host[0] >= 0 &&
                   pthread_create(&in_t, NULL, stdin_thread, p) == 0;
    relay_output(h, p);
    int code = -1;
    int rc = uvm_process_wait(p->p, &code);
    if (rc < 0 || code < 0 || code > 255) {
        holder_log(h, "process %s: no exit status: %s", p->name,
                   rc < 0 ? uvm_last_error() : "out of range");
        code = STATUS_LOST;
    }
    uint64_t one = 1;
    ssize_t w = write(p->stop_fd, &one, sizeof(one));
    (void)w;
    if (have_in)
        pthread_join(in_t, NULL);
    close_fd(&p->lib[0]);
    for (int i = 0; i < 3; i++)
        close_fd(&p->host[i]); /* the shim's copies see end-of-file */
    holder_log(h, "process %s exited: %d", p->name, code);
    pthread_mutex_lock(&h->lock);
    close_fd(&p->tty_fd);
    p->exited = true;
    p->running = false;
    p->status = code;
    p->exited_us = now_us();
    send_exit_locked(p);
    h->live_threads--;
    p->users--;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* The library's ends: three pipes, or one terminal socket (read as lib[1], written as lib[0]). */
static int
lib_ends(struct hproc *p)
{
    if (!p->terminal)
        return uvm_process_stdio(p->p, &p->lib[0], &p->lib[1], &p->lib[2]);
    int fd = -1;
    int rc = uvm_process_terminal(p->p, &fd);
    if (rc < 0)
        return rc;
    p->lib[1] = fd;
    p->lib[0] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    return p->lib[0] < 0 ? -errno : 0;
}

void
hproc_resize(struct holder *h, struct hproc *p)
{
    unsigned rows = 0, cols = 0;
    pthread_mutex_lock(&h->lock);
    struct uvm_process *up = p->exited ? NULL : p->p;
    bool ok = up && p->tty_fd >= 0 && rt_console_size(p->tty_fd, &rows, &cols) == 0;
    pthread_mutex_unlock(&h->lock);
    if (ok && rows && cols && uvm_process_resize(up, rows, cols) < 0)
        holder_log(h, "resize %s to %ux%u: %s", p->name, rows, cols, uvm_last_error());
}

int
hproc_run(struct holder *h, struct hproc *p)
{
    int rc = lib_ends(p);
    if (rc < 0)
        return rc;
    hproc_resize(h, p); /* the size the shim set before the start */
    void **args = xmalloc(2 * sizeof(void *));
    args[0] = h;
    args[1] = p;
    pthread_mutex_lock(&h->lock);
    p->running = true;
    p->started_us = now_us();
    h->live_threads++;
    p->users++;
    pthread_mutex_unlock(&h->lock);
    pthread_t t;
    if (pthread_create(&t, NULL, proc_thread, args) != 0) {
        free(args);
        pthread_mutex_lock(&h->lock);
        h->live_threads--;
        p->users--;
        p->running = false;
        pthread_mutex_unlock(&h->lock);
        return -EAGAIN;
    }
    pthread_detach(t);
    return 0;
}

/* Kill what the stub stood for: the stub is gone before its process. */
static void
kill_orphan(struct holder *h, struct hproc *p)
{
    pthread_mutex_lock(&h->lock);
    bool alive = !p->exited && !h->vm_gone;
    struct uvm_process *up = p->p;
    pthread_mutex_unlock(&h->lock);
    if (!alive)
        return;
    holder_log(h, "the stub of %s went away first: killing the process", p->name);
    int rc = up ? uvm_process_signal(up, 9) : uvm_container_signal(h->ctr, 9);
    if (rc < 0)
        holder_log(h, "kill %s: %s", p->name, uvm_last_error());
}

/* An exec whose stub never attaches (its `exec` call died after the holder's answer) must not
 * run on unseen: it is killed after ATTACH_DEADLINE_MS. */
static void *
attach_watch(void *opaque)
{
    void **args = opaque;
    struct holder *h = args[0];
    struct hproc *p = args[1];
    free(args);
    int64_t deadline = deadline_after_ms(ATTACH_DEADLINE_MS);
    pthread_mutex_lock(&h->lock);
    while (p->stub_pid == 0 && !p->exited && now_us() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&h->cond, &h->lock, &ts);
    }
    bool orphan = p->stub_pid == 0 && !p->exited;
    pthread_mutex_unlock(&h->lock);
    if (orphan) {
        holder_log(h, "process %s: no stub attached within %d s: killing it", p->name,
                   ATTACH_DEADLINE_MS / 1000);
        uvm_process_signal(p->p, 9);
    }
    hproc_put(h, p);
    return NULL;
}

void
hproc_watch_attach(struct holder *h, struct hproc *p)
{
    void **args = xmalloc(2 * sizeof(void *));
    args[0] = h;
    args[1] = p;
    pthread_mutex_lock(&h->lock);
    p->users++;
    pthread_mutex_unlock(&h->lock);
    pthread_t t;
    if (pthread_create(&t, NULL, attach_watch, args) == 0) {
        pthread_detach(t);
    } else {
        free(args);
        hproc_put(h, p);
    }
}

void
hproc_stub(struct holder *h, struct hproc *p, int fd, pid_t pid)
{
    pthread_mutex_lock(&h->lock);
    bool taken = p->stub_fd >= 0;
    if (!taken) {
        p->stub_fd = fd;
        p->stub_pid = pid;
        rtmsg_send(fd, RTMSG_OK, 0, 0, NULL, NULL, 0);
        send_exit_locked(p);
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    if (taken) {
        rtmsg_send(fd, RTMSG_ERR, 0, RTMSG_ERR_FAILED, "a stub is already attached", NULL, 0);
        close(fd);
        return;
    }
    struct rtmsg *m = xmalloc(sizeof(*m));
    char err[256];
    for (;;) {
        int rc = rtmsg_recv(fd, m, -1, err, sizeof(err));
        if (rc == -EPROTO) {
            holder_log(h, "stub of %s: refused a message: %s", p->name, err);
            continue;
        }
        if (rc < 0)
            break;
        if (m->type == RTMSG_RESIZE)
            hproc_resize(h, p);
        if (m->type != RTMSG_SIGNAL)
            continue;
        pthread_mutex_lock(&h->lock);
        struct uvm_process *up = p->exited ? NULL : p->p;
        bool before_start = !p->exited && !p->p;
        pthread_mutex_unlock(&h->lock);
        if (up && uvm_process_signal(up, m->arg) < 0)
            holder_log(h, "signal %d to %s: %s", m->arg, p->name, uvm_last_error());
        else if (before_start && uvm_container_signal(h->ctr, m->arg) < 0)
            holder_log(h, "signal %d to %s: %s", m->arg, p->name, uvm_last_error());
    }
    free(m);
    pthread_mutex_lock(&h->lock);
    p->stub_fd = -1;
    pthread_mutex_unlock(&h->lock);
    close(fd);
    kill_orphan(h, p);
}

bool
hproc_wait_all(struct holder *h, int timeout_ms)
{
    pthread_mutex_lock(&h->lock);
    int64_t deadline = deadline_after_ms((unsigned)timeout_ms);
    while (h->live_threads > 0) {
        int64_t left = deadline - now_us();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000000;
        ts.tv_nsec += (left % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&h->cond, &h->lock, &ts);
    }
    bool done = h->live_threads == 0;
    pthread_mutex_unlock(&h->lock);
    return done;
}

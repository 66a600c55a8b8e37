/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"
#include "cleanup.h"
#include "error.h"
#include "fsfilter.h"
#include "sanitize.h"
#include "timeutil.h"
#include "virtiofsd.h"

#define READY_MS 10000u
/* virtiofsd logs this once its socket is bound and listening (QEMU 7.2, fuse_virtio.c); the
 * socket file alone appears at bind(), before listen(). */
#define LISTENING "Waiting for vhost-user socket connection"

void
virtiofsd_init(struct virtiofsd *d)
{
    d->proc.pid = -1;
    d->proc.pidfd = -1;
    d->log_fd = -1;
    d->tail[0] = '\0';
    d->tail_len = 0;
}

char **
virtiofsd_argv(const struct uvm_vsmb_options *o, const char *source, const char *sock)
{
    const char *cache = o->non_cache_io || o->no_directmap ? "cache=none"
                        : o->cache_io                      ? "cache=always"
                                                           : "cache=auto";
    const char *opts[] = {"sandbox=namespace", VIRTIOFSD_MODCAPS, cache,
                          o->no_locks ? "no_posix_lock" : NULL, o->no_locks ? "no_flock" : NULL};
    char **a = xcalloc(5 + 2 * ARRAY_SIZE(opts), sizeof(*a));
    size_t n = 0;
    a[n++] = xstrdup(VIRTIOFSD);
    a[n++] = xasprintf("--socket-path=%s", sock);
    a[n++] = xstrdup("-o");
    a[n++] = xasprintf("source=%s", source);
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        if (opts[i]) {
            a[n++] = xstrdup("-o");
            a[n++] = xstrdup(opts[i]);
        }
    }
    a[n] = NULL;
    return a;
}

/* Keep the last VIRTIOFSD_LOG_TAIL bytes of what the daemon wrote. */
static void
tail_append(struct virtiofsd *d, const char *buf, size_t n)
{
    if (n >= VIRTIOFSD_LOG_TAIL) {
        memcpy(d->tail, buf + n - VIRTIOFSD_LOG_TAIL, VIRTIOFSD_LOG_TAIL);
        d->tail_len = VIRTIOFSD_LOG_TAIL;
    } else {
        size_t keep = d->tail_len < VIRTIOFSD_LOG_TAIL - n ? d->tail_len : VIRTIOFSD_LOG_TAIL - n;
        memmove(d->tail, d->tail + d->tail_len - keep, keep);
        memcpy(d->tail + keep, buf, n);
        d->tail_len = keep + n;
    }
    d->tail[d->tail_len] = '\0';
}

/* Read what the pipe holds (it is bounded: at most its capacity). False at end of file. */
static bool
log_drain(struct virtiofsd *d)
{
    char buf[4096];
    while (d->log_fd >= 0) {
        ssize_t n = read(d->log_fd, buf, sizeof(buf));
        if (n > 0)
            tail_append(d, buf, (size_t)n);
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return n < 0 && errno == EAGAIN;
    }
    return false;
}

char *
virtiofsd_log_tail(struct virtiofsd *d, unsigned lines)
{
    log_drain(d);
    char *text = xmalloc(d->tail_len + 1);
    size_t len = sanitize_text(text, d->tail_len + 1, d->tail, d->tail_len, SANITIZE_NEWLINES);
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    size_t start = 0;
    unsigned seen = 0;
    for (size_t i = len; i > 0 && !start; i--)
        if (text[i - 1] == '\n' && ++seen == lines)
            start = i;
    memmove(text, text + start, len - start + 1);
    return text;
}

/* Spawn it with stderr on a fresh pipe (both ends non-blocking) and the seccomp filter. */
static int
spawn_daemon(struct virtiofsd *d, const struct uvm_vsmb_options *o, const char *source,
             const char *sock)
{
    struct fsfilter filter;
    int rc = fsfilter_build(&filter);
    if (rc < 0)
        return rc;
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
        return uvm_error_errno(-errno, "virtiofsd: pipe");
    char **argv = virtiofsd_argv(o, source, sock);
    struct spawn_opts so = {
        .argv = (const char *const *)argv,
        .stdin_fd = -1,
        .stdout_fd = -1,
        .stderr_fd = p[1],
        .hook = fsfilter_install,
        .hook_arg = &filter,
    };
    rc = spawn(&so, &d->proc);
    argv_free(argv);
    close(p[1]);
    if (rc < 0) {
        close(p[0]);
        return rc;
    }
    d->log_fd = p[0];
    return 0;
}

/* Until it says it listens, exits, or the deadline passes. */
static int
wait_listening(struct virtiofsd *d, const char *host_path)
{
    int64_t deadline = deadline_after_ms(READY_MS);
    for (;;) {
        bool open = log_drain(d);
        if (memmem(d->tail, d->tail_len, LISTENING, strlen(LISTENING)))
            return 0;
        struct pollfd p[2] = {{.fd = open ? d->log_fd : -1, .events = POLLIN},
                              {.fd = d->proc.pidfd, .events = POLLIN}};
        int r = poll(p, 2, deadline_poll_ms(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return uvm_error_errno(-errno, "virtiofsd for '%s': poll", host_path);
        if (r == 0 || p[1].revents) {
            cleanup_free char *tail = virtiofsd_log_tail(d, 2);
            if (r == 0)
                return uvm_error(UVM_E_TIMEOUT, "virtiofsd for '%s' did not listen within %u "
                                 "ms%s%s",
                                 host_path, READY_MS, *tail ? ": " : "", tail);
            return uvm_error(UVM_E_HYPERVISOR, "virtiofsd for '%s' exited at start%s%s",
                             host_path, *tail ? ": " : "", tail);
        }
    }
}

int
virtiofsd_start(struct virtiofsd *d, const struct uvm_vsmb_options *o, const char *source,
                const char *sock, const char *host_path)
{
    virtiofsd_init(d);
    int rc = spawn_daemon(d, o, source, sock);
    if (rc < 0)
        return uvm_error_wrap(rc, "start virtiofsd for '%s'", host_path);
    rc = wait_listening(d, host_path);
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        virtiofsd_stop(d, 0);
        return uvm_error(rc, "%s", msg);
    }
    return 0;
}

bool
virtiofsd_exited(struct virtiofsd *d, int *status)
{
    *status = -1;
    if (d->proc.pid <= 0)
        return false;
    int rc = spawn_reap(&d->proc, status, deadline_after_ms(0)); /* without blocking */
    if (rc == UVM_E_TIMEOUT)
        return false;
    log_drain(d);
    if (rc < 0) {
        *status = -1;
        spawn_release(&d->proc); /* ECHILD: gone, but we do not know how */
    }
    return true;
}

int
virtiofsd_stop(struct virtiofsd *d, unsigned grace_ms)
{
    int rc = 0;
    if (d->proc.pid > 0) {
        rc = spawn_reap(&d->proc, NULL, deadline_after_ms(grace_ms));
        if (rc == UVM_E_TIMEOUT) {
            spawn_signal(&d->proc, SIGKILL);
            rc = spawn_reap(&d->proc, NULL, deadline_after_ms(READY_MS));
        }
        if (rc < 0) /* still running after SIGKILL (stuck in the kernel), or ECHILD */
            rc = uvm_error_wrap(rc, "virtiofsd pid %d", (int)d->proc.pid);
        spawn_release(&d->proc);
    }
    if (d->log_fd >= 0) {
        log_drain(d);
        close(d->log_fd);
        d->log_fd = -1;
    }
    return rc;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The stub: the host process whose pid the shim gets in --pid-file (a child of create or exec,
 * re-parented to the shim, which reaps it). It holds one connection to the holder, attached to
 * its guest process; forwards the signals it gets (the shim kill(2)s exec pids) as SIGNAL; and
 * exits with the status the holder sends (EXIT: the guest's status, 128+N for signal N), after
 * the holder has written the process's output. When the holder goes away first (killed, or its
 * VM gone without a status) the stub exits 255 at once. Its stdio is /dev/null: it must not
 * hold the shim's pipes. A process on a terminal: the stub's session has the host pty as its
 * controlling terminal, and SIGWINCH becomes RESIZE.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "rtfile.h"
#include "rtlog.h"
#include "rtstate.h"
#include "runtime.h"

#define STUB_LOST 255

/* Signals the stub forwards: all but those about itself (SIGCHLD, SIGWINCH: no terminal yet)
 * and the synchronous faults; SIGKILL and SIGSTOP cannot be caught (a SIGKILLed stub makes the
 * holder SIGKILL the guest process). */
static bool
forwarded(int sig)
{
    switch (sig) {
    case SIGCHLD:
    case SIGWINCH:
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGTRAP:
    case SIGSYS:
    case SIGKILL:
    case SIGSTOP:
        return false;
    default:
        return sig >= 1 && sig <= 64;
    }
}

static void __attribute__((noreturn)) stub_loop(int conn, int sfd, int tty)
{
    struct rtmsg *m = xmalloc(sizeof(*m));
    char err[128];
    if (tty >= 0) /* a resize made before the stub owned the terminal */
        rtmsg_send(conn, RTMSG_RESIZE, 0, 0, NULL, NULL, 0);
    for (;;) {
        struct pollfd pf[2] = {{.fd = conn, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(STUB_LOST);
        }
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) != sizeof(si))
                continue;
            if (si.ssi_signo == SIGWINCH && tty >= 0)
                rtmsg_send(conn, RTMSG_RESIZE, 0, 0, NULL, NULL, 0);
            else if (forwarded((int)si.ssi_signo))
                rtmsg_send(conn, RTMSG_SIGNAL, 0, (int32_t)si.ssi_signo, NULL, NULL, 0);
        }
        if (!pf[0].revents)
            continue;
        int rc = rtmsg_recv(conn, m, 0, err, sizeof(err));
        if (rc == 0 && m->type == RTMSG_EXIT)
            _exit(m->arg);
        if (rc < 0 && rc != -ETIMEDOUT && rc != -EPROTO)
            _exit(STUB_LOST); /* the holder is gone */
    }
}

/* In the stub: wait for the go from its parent (the attach answered), then serve. With a
 * terminal, the stub's own session has the host pty as its controlling terminal: the shim's
 * resizes of the master reach the stub as SIGWINCH. */
static void __attribute__((noreturn)) stub_child(int conn, int go, bool detach, int tty)
{
    if (detach) {
        rt_stdio_null();
        int keep[3] = {conn, go, tty};
        rt_close_others(keep, 3);
        prctl(PR_SET_NAME, "uvm-rt-stub");
    }
    if (tty >= 0 && (setsid() < 0 || ioctl(tty, TIOCSCTTY, 0) < 0))
        _exit(STUB_LOST);
    sigset_t all;
    sigfillset(&all);
    int sfd = signalfd(-1, &all, SFD_CLOEXEC); /* every signal is blocked since the fork */
    char b;
    ssize_t n;
    do
        n = read(go, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || sfd < 0)
        _exit(STUB_LOST);
    close(go);
    stub_loop(conn, sfd, tty);
}

/* ATTACH name for pid on conn; 0 or 1 (logged). */
static int
attach(int conn, const char *name, pid_t pid)
{
    int rc = rtmsg_send(conn, RTMSG_ATTACH, 0, (int32_t)pid, name, NULL, 0);
    struct rtmsg *m = xmalloc(sizeof(*m));
    char err[256] = "";
    if (rc == 0)
        rc = rtmsg_recv(conn, m, RT_CALL_TIMEOUT_MS, err, sizeof(err));
    int ret = 0;
    if (rc < 0)
        ret = rtlog_error("attach to %s: the holder did not answer: %s", name,
                          err[0] ? err : strerror(-rc));
    else if (m->type != RTMSG_OK)
        ret = rtlog_error("attach to %s: %s", name, m->payload);
    free(m);
    return ret;
}

int
rt_stub_spawn(int dirfd, const char *name, bool detach, int tty, pid_t *pid)
{
    cleanup_close int conn = rtstate_connect(dirfd);
    if (conn < 0)
        return rtlog_error("attach to %s: the holder is gone: %s", name, strerror(-conn));
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return rtlog_error("attach to %s: pipe: %s", name, strerror(errno));
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t child = detach ? fork() : 0;
    if (child == 0 && detach) {
        close(go[1]);
        stub_child(conn, go[0], true, tty);
    }
    if (child < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(go[0]);
        close(go[1]);
        return rtlog_error("attach to %s: fork: %s", name, strerror(errno));
    }
    if (!detach) { /* this process is the stub: attach, then serve */
        if (attach(conn, name, getpid()))
            return 1;
        ssize_t w = write(go[1], "g", 1);
        (void)w;
        close(go[1]);
        stub_child(conn, go[0], false, -1);
    }
    close(go[0]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (attach(conn, name, child)) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        close(go[1]);
        return 1;
    }
    ssize_t w = write(go[1], "g", 1); /* the stub owns the connection from now on */
    (void)w;
    close(go[1]);
    *pid = child;
    return 0;
}

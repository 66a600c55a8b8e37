/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uvmctl run: boot a VM, hot-add what the options ask for (attach.c), run one command in it,
 * stream its output, detach read-write disks, tear the VM down.
 *
 * Every blocking libuvm call (uvm_start, the hot-adds, uvm_exec, uvm_process_wait, the disk
 * removals) runs on a helper thread while this thread polls one event pipe that receives signals
 * (self-pipe), "call finished" and "VM exited", plus the command's stdio. A signal or an
 * unexpected VM exit calls uvm_terminate(), which makes the pending call fail; the VM is closed
 * on every path. With -t the command gets a terminal: one fd both ways, the local terminal in
 * raw mode meanwhile and SIGWINCH forwarded (tty.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "bundle.h"
#include "cli.h"
#include "timeline.h"
#include "tty.h"

#define RUN_BUF_SIZE 65536
#define RUN_DRAIN_GRACE_MS 5000 /* after the process is reaped, wait this long for EOF at most */

/* Event bytes on the event pipe besides signal numbers (1..64). */
enum { EV_WINCH = 0xfd, EV_CALL_DONE = 0xfe, EV_VM_EXIT = 0xff };

/* In this order; STEP_ATTACH and STEP_DETACH only with hot-add options. */
enum run_step { STEP_START, STEP_ATTACH, STEP_EXEC, STEP_WAIT, STEP_DETACH };

enum {
    OPT_DISK = CLI_OPT_VERB,
    OPT_SCSI_LAYER,
    OPT_VPMEM,
    OPT_NIC,
    OPT_SHARE,
    OPT_BUNDLE,
    OPT_TIMELINE,
};

struct run {
    const struct cli_global *g;
    bool interactive, timings, tty;
    struct cli_tty term;
    struct uvm_options opts;
    struct attach_list att; /* the hot-add options, in the order given */
    char **cmd;
    const char *bundle_dir; /* --bundle: run the bundle as a container (bundle.c) */
    struct bundle bundle;

    struct uvm *vm;
    struct uvm_process *proc;
    int in_fd, out_fd, err_fd;
    bool stdin_eof;
    size_t in_len, in_off;
    char *in_buf;
    bool stdout_dead, stderr_dead;

    /* the helper thread running the current blocking call */
    bool call_running;
    pthread_t call_thread;
    enum run_step step;
    int call_rc;
    char call_err[1024];
    int exit_code;
    struct timespec call_end;

    /* the thread blocked in uvm_wait() once the VM runs */
    bool watcher_running;
    pthread_t watcher;
    bool vm_exited, terminated;

    bool start_attempted, have_timings, have_exit;
    struct uvm_timings boot;
    struct timespec t0, t_exec, t_exit;
    /* --timeline: where each step began (CLOCK_MONOTONIC; zero: not reached) */
    const char *timeline;
    struct timeline_kmsg kmsg; /* with -v */
    struct timespec t_created, t_start, t_attach, t_detach, t_teardown;
};

static int ev_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_signal;

static void
post_event(unsigned char ev)
{
    int saved = errno;
    while (write(ev_pipe[1], &ev, 1) < 0 && errno == EINTR)
        ;
    errno = saved;
}

static void
on_signal(int sig)
{
    if (sig == SIGWINCH) { /* not a reason to stop: a resize to forward */
        post_event(EV_WINCH);
        return;
    }
    if (!got_signal)
        got_signal = sig;
    post_event((unsigned char)sig);
}

static int
setup_signals(bool winch)
{
    if (pipe2(ev_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;

    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    if (winch && sigaction(SIGWINCH, &sa, NULL) < 0)
        return -1;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return -1;
    /* A closed stdout (uvmctl run ... | head) or a process that closed its stdin: EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static double
ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* ---- helper threads ---------------------------------------------------------------------- */

static void *
call_main(void *opaque)
{
    struct run *r = opaque;
    const char *const *argv = (const char *const *)r->cmd;
    struct uvm_process_config cfg = {
        .argv = argv,
        .create_stdin = r->interactive && !r->tty,
        .create_stdout = !r->tty,
        .create_stderr = !r->tty,
        .network_namespace = r->att.nic_count ? ATTACH_NETNS_ID : NULL,
        .terminal = r->tty,
    };
    if (r->tty)
        cli_tty_size(&r->term, &cfg.terminal_rows, &cfg.terminal_cols);
    int rc = 0;

    switch (r->step) {
    case STEP_START:
        rc = uvm_start(r->vm);
        break;
    case STEP_ATTACH: /* in order; stop at the first failure */
        for (size_t i = 0; i < r->att.count && rc == 0 && !got_signal; i++)
            rc = attach_add(&r->att, i, r->vm);
        break;
    case STEP_EXEC:
        if (r->bundle_dir)
            rc = bundle_start(&r->bundle, r->vm,
                              &(struct bundle_stdio){.stdin = cfg.create_stdin || r->tty,
                                                     .terminal = r->tty,
                                                     .rows = cfg.terminal_rows,
                                                     .cols = cfg.terminal_cols},
                              cfg.network_namespace, &r->proc);
        else
            rc = uvm_exec(r->vm, &cfg, &r->proc);
        break;
    case STEP_WAIT:
        rc = uvm_process_wait(r->proc, &r->exit_code);
        break;
    case STEP_DETACH: /* in reverse; try every disk, report the first failure */
        for (size_t i = r->att.count; i-- > 0 && !got_signal;) {
            if (!attach_needs_remove(&r->att, i))
                continue;
            int err = attach_remove(&r->att, i, r->vm);
            if (err < 0 && rc == 0) {
                rc = err;
                snprintf(r->call_err, sizeof(r->call_err), "%s", uvm_last_error());
            }
        }
        break;
    }
    clock_gettime(CLOCK_MONOTONIC, &r->call_end);
    r->call_rc = rc;
    if (rc < 0 && !r->call_err[0]) { /* uvm_last_error() is per thread: keep it for main */
        const char *msg = uvm_last_error();
        snprintf(r->call_err, sizeof(r->call_err), "%s", msg && *msg ? msg : uvm_strerror(rc));
    }
    post_event(EV_CALL_DONE);
    return NULL;
}

static int
call_begin(struct run *r, enum run_step step)
{
    r->step = step;
    r->call_rc = 0;
    r->call_err[0] = '\0';
    int err = pthread_create(&r->call_thread, NULL, call_main, r);
    if (err) {
        fprintf(stderr, "uvmctl: cannot create a thread: %s\n", strerror(err));
        return -1;
    }
    r->call_running = true;
    return 0;
}

static void *
watcher_main(void *opaque)
{
    struct run *r = opaque;
    uvm_wait(r->vm);
    post_event(EV_VM_EXIT);
    return NULL;
}

/* Hard-stop the VM (idempotent); pending libuvm calls then fail and the watcher wakes. */
static void
run_terminate(struct run *r)
{
    if (r->vm && !r->terminated) {
        r->terminated = true;
        uvm_terminate(r->vm);
    }
}

/* Read the event pipe. Returns true when the running call has finished (thread joined). */
static bool
run_events(struct run *r)
{
    unsigned char ev[64];
    bool done = false;
    ssize_t n;

    while ((n = read(ev_pipe[0], ev, sizeof(ev))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (ev[i] == EV_CALL_DONE)
                done = true;
            else if (ev[i] == EV_VM_EXIT)
                r->vm_exited = true;
            else if (ev[i] == EV_WINCH && r->tty)
                cli_tty_winch(&r->term);
        }
    }
    if (got_signal || r->vm_exited)
        run_terminate(r);
    if (done && r->call_running) {
        pthread_join(r->call_thread, NULL);
        r->call_running = false;
    }
    return done;
}

/* ---- stdio --------------------------------------------------------------------------------- */

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/*
 * Write all of buf to fd (our stdout/stderr). A slow reader must not make us deaf to signals:
 * wait for room with a short poll (a signal may land on another thread), then write at most
 * PIPE_BUF bytes, which does not block on a pipe that has room. False when fd is gone or on a
 * signal.
 */
static bool
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        if (got_signal)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = write(fd, buf, len < PIPE_BUF ? len : PIPE_BUF);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* Copy what is readable on *from to `to`; closes *from at EOF or on error. */
static void
pump_output(int *from, int to, bool *to_dead)
{
    char buf[RUN_BUF_SIZE];
    ssize_t n = read(*from, buf, sizeof(buf));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close_fd(from);
        return;
    }
    if (!*to_dead && !write_all(to, buf, (size_t)n))
        *to_dead = true; /* keep draining so the guest never blocks on a full pipe */
}

static void
pump_stdin_read(struct run *r)
{
    ssize_t n = read(STDIN_FILENO, r->in_buf, RUN_BUF_SIZE);

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) { /* with -t: the terminal stays (it has no end of input) */
        r->stdin_eof = true;
        return;
    }
    r->in_len = (size_t)n;
    r->in_off = 0;
}

static void
pump_stdin_write(struct run *r)
{
    ssize_t n = write(r->in_fd, r->in_buf + r->in_off, r->in_len - r->in_off);

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n < 0) { /* EPIPE: the process closed its stdin; stop copying */
        r->stdin_eof = true;
        r->in_len = r->in_off = 0;
        close_fd(&r->in_fd);
        return;
    }
    r->in_off += (size_t)n;
    if (r->in_off == r->in_len)
        r->in_len = r->in_off = 0;
}

/*
 * Poll the event pipe, and with stdio the process's streams, until the running call has
 * finished and, when it succeeded, its output has been copied out. Returns 0 (r->call_rc tells
 * how the call went), or -1 when interrupted by a signal (the VM is terminated by then).
 */
static int
run_loop(struct run *r, bool stdio)
{
    bool done = false;

    for (;;) {
        if (r->in_fd >= 0 && r->stdin_eof && r->in_len == 0)
            close_fd(&r->in_fd); /* end-of-file for the process */
        if (done && (!stdio || got_signal || r->call_rc < 0 || (r->out_fd < 0 && r->err_fd < 0)))
            break;

        struct pollfd p[5];
        int n = 0, i_out = -1, i_err = -1, i_stdin = -1, i_in = -1;
        p[n++] = (struct pollfd){.fd = ev_pipe[0], .events = POLLIN};
        if (stdio && !got_signal) {
            if (r->out_fd >= 0) {
                i_out = n;
                p[n++] = (struct pollfd){.fd = r->out_fd, .events = POLLIN};
            }
            if (r->err_fd >= 0) {
                i_err = n;
                p[n++] = (struct pollfd){.fd = r->err_fd, .events = POLLIN};
            }
            if (r->in_fd >= 0 && r->in_len > 0) {
                i_in = n;
                p[n++] = (struct pollfd){.fd = r->in_fd, .events = POLLOUT};
            } else if (r->in_fd >= 0 && !r->stdin_eof) {
                i_stdin = n;
                p[n++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
            }
        }

        int ready = poll(p, (nfds_t)n, done ? RUN_DRAIN_GRACE_MS : -1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            fprintf(stderr, "uvmctl: poll: %s\n", strerror(errno));
            run_terminate(r);
            stdio = false;
            continue;
        }
        if (ready == 0) { /* reaped, but a stream never reached EOF: stop waiting for it */
            fprintf(stderr, "uvmctl: warning: output of the command did not end\n");
            break;
        }
        if (p[0].revents && run_events(r))
            done = true;
        if (got_signal)
            continue;
        if (i_out >= 0 && p[i_out].revents)
            pump_output(&r->out_fd, STDOUT_FILENO, &r->stdout_dead);
        if (i_err >= 0 && p[i_err].revents)
            pump_output(&r->err_fd, STDERR_FILENO, &r->stderr_dead);
        if (i_stdin >= 0 && p[i_stdin].revents)
            pump_stdin_read(r);
        if (i_in >= 0 && (p[i_in].revents & (POLLOUT | POLLERR | POLLHUP)))
            pump_stdin_write(r);
    }
    return got_signal ? -1 : 0;
}

/* ---- the verb ------------------------------------------------------------------------------ */

static void
print_timings(const struct run *r, const struct timespec *t_end)
{
    const struct uvm_timings *b = &r->boot;
    const struct {
        const char *name;
        uint64_t us;
    } boot[] = {
        {"spawn", b->spawn_us},
        {"qmp ready", b->qmp_ready_us},
        {"guest init", b->guest_init_us},
        {"restored", b->restore_us}, /* clones only */
        {"agent ready", b->agent_ready_us},
    };

    fprintf(stderr, "uvmctl: timings in ms (boot steps since uvm_start, then durations):\n");
    for (size_t i = 0; i < sizeof(boot) / sizeof(boot[0]); i++) {
        if (!strcmp(boot[i].name, "restored") && !r->opts.template_dir)
            continue;
        if (r->have_timings && boot[i].us)
            fprintf(stderr, "  %-12s %10.1f\n", boot[i].name, (double)boot[i].us / 1e3);
        else
            fprintf(stderr, "  %-12s %10s\n", boot[i].name, "-");
    }
    attach_print_timings(&r->att, false, stderr);
    if (r->have_exit)
        fprintf(stderr, "  %-12s %10.1f\n", "command", ms_between(&r->t_exec, &r->t_exit));
    else
        fprintf(stderr, "  %-12s %10s\n", "command", "-");
    attach_print_timings(&r->att, true, stderr);
    fprintf(stderr, "  %-12s %10.1f\n", "total", ms_between(&r->t0, t_end));
}

/* ms since the run began; -1 when `at` was never reached. */
static double
since_t0(const struct run *r, const struct timespec *at)
{
    return at->tv_sec || at->tv_nsec ? ms_between(&r->t0, at) : -1;
}

/* The hot-adds (or removals) one after the other from `begin`, as attach.c timed them. */
static void
timeline_attach(const struct run *r, struct timeline *t, double begin, bool remove)
{
    static const char *const kinds[] = {"disk", "SCSI layer", "VPMem", "NIC"};
    for (size_t k = 0; k < r->att.count && begin >= 0; k++) {
        size_t i = remove ? r->att.count - 1 - k : k;
        const struct attach *a = &r->att.items[i];
        double ms = remove ? a->remove_ms : a->add_ms;
        if (!(remove ? a->remove_tried : a->tried))
            continue;
        timeline_add(t, TL_DEVICE, begin, begin + ms, "%s %s%s", remove ? "remove" : "add",
                     kinds[a->kind], a->host ? a->host : "");
        begin += ms;
    }
}

static int
write_timeline(const struct run *r, const struct timespec *t_end)
{
    static struct timeline t; /* large: not on the stack */
    memset(&t, 0, sizeof(t));
    t.clone = r->opts.template_dir != NULL;
    t.total_ms = ms_between(&r->t0, t_end);
    t.start_ms = since_t0(r, &r->t_start);
    t.have_lib = r->have_timings;
    t.lib = r->boot;
    for (char **a = r->cmd; *a; a++)
        snprintf(t.command + strlen(t.command), sizeof(t.command) - strlen(t.command), "%s%s",
                 a == r->cmd ? "" : " ", *a);
    timeline_add(&t, TL_HOST, 0, since_t0(r, &r->t_created), "create (options, document, argv)");
    timeline_add_boot(&t);
    timeline_add_kmsg(&t, &r->kmsg);
    timeline_attach(r, &t, since_t0(r, &r->t_attach), false);
    if (r->have_exit)
        timeline_add(&t, TL_COMMAND, since_t0(r, &r->t_exec), since_t0(r, &r->t_exit),
                     "command: %s", r->cmd && r->cmd[0] ? r->cmd[0] : "(bundle)");
    timeline_attach(r, &t, since_t0(r, &r->t_detach), true);
    timeline_add(&t, TL_HOST, since_t0(r, &r->t_teardown), t.total_ms,
                 "teardown (terminate, runtime directory)");
    return timeline_write(&t, r->timeline);
}

/* Exit status for a failed uvm_exec: 127/126 like a shell when the guest says why. */
static int
exec_failure_status(int rc, const char *msg)
{
    if (rc == UVM_E_NOT_FOUND || rc == -ENOENT || strstr(msg, "No such file or directory"))
        return CLI_EXIT_NOT_FOUND;
    if (rc == -EACCES || strstr(msg, "Permission denied"))
        return CLI_EXIT_CANNOT_EXEC;
    return CLI_EXIT_FAILURE;
}

/* The hot-adds, in the order given. 0, -1 when interrupted, or CLI_EXIT_FAILURE. */
static int
run_attach(struct run *r)
{
    clock_gettime(CLOCK_MONOTONIC, &r->t_attach);
    if (call_begin(r, STEP_ATTACH) < 0)
        return CLI_EXIT_FAILURE;
    if (run_loop(r, false) < 0)
        return -1;
    if (r->timings)
        attach_print_placement(&r->att, stderr);
    if (r->call_rc < 0) {
        fprintf(stderr, "uvmctl: %s\n", r->call_err);
        return CLI_EXIT_FAILURE;
    }
    return 0;
}

/* -t: the terminal's one fd, read as the output and written as the input (two descriptors, so
 * that the input's end closes one and the output goes on). 0 or a UVM_E_* / -errno code. */
static int
open_terminal(struct run *r)
{
    int rc = uvm_process_terminal(r->proc, &r->in_fd);
    if (rc < 0)
        return rc;
    r->out_fd = fcntl(r->in_fd, F_DUPFD_CLOEXEC, 3);
    return r->out_fd < 0 ? -errno : 0;
}

/* Start the command, stream its stdio until it has exited. Its exit status (or uvmctl's, >= 0),
 * or -1 when interrupted. */
static int
run_command(struct run *r)
{
    clock_gettime(CLOCK_MONOTONIC, &r->t_exec);
    if (call_begin(r, STEP_EXEC) < 0)
        return CLI_EXIT_FAILURE;
    if (run_loop(r, false) < 0)
        return -1;
    if (r->call_rc < 0) {
        fprintf(stderr, "uvmctl: %s\n", r->call_err);
        return exec_failure_status(r->call_rc, r->call_err);
    }
    int rc = r->tty ? open_terminal(r) : uvm_process_stdio(r->proc, &r->in_fd, &r->out_fd,
                                                           &r->err_fd);
    if (rc < 0) {
        cli_print_error(rc);
        return CLI_EXIT_FAILURE;
    }
    if (r->in_fd >= 0)
        fcntl(r->in_fd, F_SETFL, fcntl(r->in_fd, F_GETFL) | O_NONBLOCK);
    if (r->tty && (cli_tty_raw(&r->term) < 0 || cli_tty_follow(&r->term, r->proc) < 0))
        return CLI_EXIT_FAILURE;

    /* stream until the process has exited and its output is out */
    if (call_begin(r, STEP_WAIT) < 0)
        return CLI_EXIT_FAILURE;
    if (run_loop(r, true) < 0)
        return -1;
    cli_tty_stop(&r->term);
    cli_tty_restore(&r->term);
    if (r->call_rc < 0) {
        fprintf(stderr, "uvmctl: %s\n", r->call_err);
        return CLI_EXIT_FAILURE;
    }
    r->t_exit = r->call_end;
    r->have_exit = true;
    return r->exit_code;
}

/*
 * Remove the read-write disks while the VM still runs: the guest unmounts them, which writes
 * its cached data to the images (a hard stop would lose it). Read-only images and NICs go with
 * the VM. 0, -1 when interrupted, or CLI_EXIT_FAILURE.
 */
static int
run_detach(struct run *r)
{
    bool any = false;
    for (size_t i = 0; i < r->att.count; i++)
        any = any || attach_needs_remove(&r->att, i);
    if (!any || r->vm_exited || r->terminated)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &r->t_detach);
    if (call_begin(r, STEP_DETACH) < 0)
        return CLI_EXIT_FAILURE;
    if (run_loop(r, false) < 0)
        return -1;
    if (r->call_rc < 0) {
        fprintf(stderr, "uvmctl: %s\n", r->call_err);
        return CLI_EXIT_FAILURE;
    }
    return 0;
}

static int
run_body(struct run *r)
{
    int rc;

    if (setup_signals(r->tty) < 0) {
        fprintf(stderr, "uvmctl: cannot set up signal handling: %s\n", strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    if ((r->interactive || r->tty) && !(r->in_buf = malloc(RUN_BUF_SIZE))) {
        fprintf(stderr, "uvmctl: out of memory\n");
        return CLI_EXIT_FAILURE;
    }

    rc = uvm_create(&r->opts, &r->vm);
    clock_gettime(CLOCK_MONOTONIC, &r->t_created);
    if (rc < 0) {
        cli_print_error(rc);
        return CLI_EXIT_FAILURE;
    }

    /* boot */
    if (got_signal)
        return -1;
    r->start_attempted = true;
    clock_gettime(CLOCK_MONOTONIC, &r->t_start);
    if (call_begin(r, STEP_START) < 0)
        return CLI_EXIT_FAILURE;
    int interrupted = run_loop(r, false);
    r->have_timings = uvm_get_timings(r->vm, &r->boot) == 0;
    if (interrupted < 0)
        return -1;
    if (r->call_rc < 0) {
        fprintf(stderr, "uvmctl: %s\n", r->call_err);
        return CLI_EXIT_FAILURE;
    }
    int err = pthread_create(&r->watcher, NULL, watcher_main, r);
    if (err) {
        fprintf(stderr, "uvmctl: cannot create a thread: %s\n", strerror(err));
        return CLI_EXIT_FAILURE;
    }
    r->watcher_running = true;

    int status = r->att.count ? run_attach(r) : 0;
    if (status == 0)
        status = run_command(r);
    if (status >= 0 && r->timeline && r->timings && !r->vm_exited && !got_signal)
        timeline_read_kmsg(r->vm, &r->kmsg); /* before the teardown, not timed as a phase */
    if (status < 0)
        return -1;
    /* also after a failed hot-add or exec: disks already mounted are left clean */
    int detached = run_detach(r);
    if (detached != 0)
        return detached;
    return status;
}

/* Close everything run_body may have left open, in dependency order. */
static void
run_teardown(struct run *r)
{
    clock_gettime(CLOCK_MONOTONIC, &r->t_teardown);
    if (r->call_running) { /* only after an internal error: make the call return, then join */
        run_terminate(r);
        pthread_join(r->call_thread, NULL);
        r->call_running = false;
    }
    cli_tty_stop(&r->term); /* before the process it resizes goes */
    cli_tty_restore(&r->term);
    close_fd(&r->in_fd);
    close_fd(&r->out_fd);
    close_fd(&r->err_fd);
    if (r->proc) {
        uvm_process_close(r->proc);
        r->proc = NULL;
    }
    bundle_free(&r->bundle); /* deletes the container while the VM runs */
    if (r->vm) {
        if (r->watcher_running) {
            run_terminate(r); /* wakes the watcher's uvm_wait() */
            pthread_join(r->watcher, NULL);
            r->watcher_running = false;
        }
        uvm_close(r->vm);
        r->vm = NULL;
    }
    free(r->in_buf);
    r->in_buf = NULL;
}

/* -v's timings and --timeline's file, once the VM is gone. The exit status. */
static int
run_report(const struct run *r, int status)
{
    struct timespec t_end;
    clock_gettime(CLOCK_MONOTONIC, &t_end);
    if (r->timings && r->start_attempted)
        print_timings(r, &t_end);
    if (r->timeline && r->start_attempted && write_timeline(r, &t_end) < 0 && status == 0)
        status = CLI_EXIT_FAILURE;
    return status;
}

static void
usage(FILE *f)
{
    fprintf(f, "Usage: uvmctl run [OPTION]... [--] COMMAND [ARG]...\n"
               "       uvmctl run --bundle DIR [OPTION]... [[--] COMMAND [ARG]...]\n"
               "Boot a utility VM, run COMMAND in it with its stdout and stderr streamed to ours,\n"
               "then tear the VM down. COMMAND is looked up in the guest's PATH.\n"
               "With --bundle, run the OCI bundle DIR (config.json, and the root file system it\n"
               "names, shared into the VM) as a container instead: its process, or COMMAND in\n"
               "its place, on a terminal with -t only (whatever config.json says); the VM boots\n"
               "from rootfs.vhd (crun) unless --rootfs says otherwise.\n"
               "\n");
    fputs(cli_vm_options_help, f);
    fprintf(f, "\n"
               "Hot-add options (repeatable; done in the order given once the VM has booted,\n"
               "before COMMAND starts; a failure tears the VM down and exits 125):\n"
               "      --disk HOST[:GUESTPATH]\n"
               "                          attach image HOST (raw, qcow2, VHD or VHDX) read-write\n"
               "                          on SCSI and mount it at GUESTPATH (absolute) if given;\n"
               "                          removed after COMMAND exits so that its writes reach\n"
               "                          HOST (exit 125 if that fails)\n"
               "      --scsi-layer HOST   attach image HOST read-only on SCSI, mounted at\n"
               "                          /tmp/S<controller>/<lun> (the first: /tmp/S0/0)\n"
               "      --vpmem HOST        map image HOST (ext4 with 4 KiB blocks, or erofs) with\n"
               "                          virtio-pmem, mounted read-only (DAX) at /tmp/p<n>\n"
               "                          (the first: /tmp/p0)\n"
               "      --nic SPEC          add a NIC (eth0, eth1, ... in the order given) to the\n"
               "                          guest network namespace \"uvmctl\", where COMMAND\n"
               "                          then runs. SPEC is KEY=VALUE[,KEY=VALUE]...:\n"
               "                            ip=ADDR/PREFIX  address of the NIC (IPv4 or IPv6)\n"
               "                            gw=ADDR         default route\n"
               "                            dns=ADDR[+ADDR]...  resolv.conf name servers\n"
               "                            mac=MAC         default: generated\n"
               "                            tap=HOSTTAP     an existing host tap device (default:\n"
               "                                            a new one, deleted with the VM)\n"
               "                            hostns=NAME     host network namespace ('ip netns')\n"
               "                                            for the new tap (default: ours)\n"
               "      --share HOST:GUEST[:ro]\n"
               "                          share host directory HOST (Plan9) at GUEST\n"
               "\n"
               "Run options:\n"
               "      --bundle DIR        run the OCI bundle DIR as a container (above)\n"
               "  -i, --interactive       copy our standard input to COMMAND's\n"
               "  -t, --tty               run COMMAND on a terminal in the guest (its stdin,\n"
               "                          stdout and stderr; output on our stdout) of our\n"
               "                          terminal's size, ours in raw mode meanwhile (Ctrl-C\n"
               "                          goes to COMMAND) and its size changes forwarded;\n"
               "                          our stdin is copied to it (its end is not passed on:\n"
               "                          a terminal has none)\n"
               "  -v, --verbose           print where each hot-add landed, and a timing\n"
               "                          breakdown on stderr (boot steps, each hot-add,\n"
               "                          command = exec to exit, each disk removal, total)\n"
               "      --timeline FILE     write the phases of the run (QEMU spawn, QMP, firmware,\n"
               "                          guest kernel, /init, agent ready or the template's\n"
               "                          restore, each hot-add, the command, teardown) to\n"
               "                          FILE: a picture when it ends in .svg, data in .json;\n"
               "                          with -v also the guest kernel's milestones (its log,\n"
               "                          read after COMMAND: about a second more)\n"
               "  -h, --help              this help\n"
               "\n"
               "Exit status: COMMAND's (128+N if a signal N killed it); 125 uvmctl failed;\n"
               "126 COMMAND could not be executed; 127 COMMAND not found; 2 usage error;\n"
               "130/143/129 uvmctl got SIGINT/SIGTERM/SIGHUP (the VM is torn down first).\n");
}

/* --bundle: read the bundle before the VM exists; its VM boots from rootfs.vhd (crun) unless
 * --rootfs said otherwise. -1 after a message. */
static int
run_load_bundle(struct run *r, const char *prog)
{
    if (bundle_load(&r->bundle, prog, r->bundle_dir, r->cmd) < 0) {
        bundle_free(&r->bundle);
        return -1;
    }
    if (!r->opts.has_preferred_rootfs_type) {
        r->opts.has_preferred_rootfs_type = true;
        r->opts.preferred_rootfs_type = UVM_ROOTFS_VHD;
    }
    return 0;
}

/* Run's own options (one getopt_long result c): 0, 1 for --help, -1 for a usage error. */
static int
run_option(struct run *r, const char *prog, int c, const char *name)
{
    switch (c) {
    case OPT_DISK:
    case OPT_SCSI_LAYER:
    case OPT_VPMEM:
    case OPT_NIC:
    case OPT_SHARE:
        return attach_parse(&r->att, prog, name, optarg) < 0 ? -1 : 0;
    case OPT_BUNDLE:
        r->bundle_dir = optarg;
        return 0;
    case OPT_TIMELINE:
        if (!timeline_path_ok(optarg)) {
            fprintf(stderr, "%s: --timeline '%s': the name must end in .svg or .json\n", prog,
                    optarg);
            return -1;
        }
        r->timeline = optarg;
        return 0;
    case 'i':
        r->interactive = true;
        return 0;
    case 't':
        r->tty = true;
        return 0;
    case 'v':
        r->timings = true;
        return 0;
    case 'h':
        usage(stdout);
        return 1;
    default:
        return -1;
    }
}

int
cli_run_main(const struct cli_global *g, int argc, char **argv)
{
    static const struct option long_options[] = {
        CLI_VM_LONG_OPTIONS,
        {"disk", required_argument, NULL, OPT_DISK},
        {"scsi-layer", required_argument, NULL, OPT_SCSI_LAYER},
        {"vpmem", required_argument, NULL, OPT_VPMEM},
        {"nic", required_argument, NULL, OPT_NIC},
        {"share", required_argument, NULL, OPT_SHARE},
        {"bundle", required_argument, NULL, OPT_BUNDLE},
        {"timeline", required_argument, NULL, OPT_TIMELINE},
        {"interactive", no_argument, NULL, 'i'},
        {"tty", no_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct run r = {.g = g, .in_fd = -1, .out_fd = -1, .err_fd = -1};
    int c, idx = 0;

    if (attach_list_init(&r.att, (size_t)argc) < 0) { /* at most one hot-add per argument */
        fprintf(stderr, "uvmctl: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    while ((c = getopt_long(argc, argv, "+itvh", long_options, &idx)) != -1) {
        int rc = cli_vm_option(argv[0], c, optarg, &r.opts);
        if (rc == 0) { /* not a VM option; idx: getopt_long's index of the long option */
            int own = run_option(&r, argv[0], c, long_options[idx].name);
            rc = own > 0 ? 2 : own;
        }
        if (rc == 2) { /* --help */
            attach_list_free(&r.att);
            return CLI_EXIT_OK;
        }
        if (rc < 0)
            goto usage_error;
    }
    if (optind >= argc && !r.bundle_dir) {
        fprintf(stderr, "%s: no command given\n", argv[0]);
        goto usage_error;
    }
    r.cmd = argv + optind; /* NULL-terminated like argv */
    cli_tty_init(&r.term);
    if (r.bundle_dir && run_load_bundle(&r, argv[0]) < 0) {
        attach_list_free(&r.att);
        return CLI_EXIT_FAILURE;
    }

    clock_gettime(CLOCK_MONOTONIC, &r.t0);
    int status = run_body(&r);
    run_teardown(&r);
    if (got_signal) /* the VM is down: exit like a shell killed by that signal */
        status = 128 + got_signal;

    status = run_report(&r, status);
    attach_list_free(&r.att);
    return status;

usage_error:
    attach_list_free(&r.att);
    return cli_usage_error(argv[0]);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "execparams.h"
#include "log.h"
#include "netns.h"
#include "process.h"
#include "proto.h"
#include "stream.h"
#include "tty.h"

#define MAX_SIGNAL 64 /* SIGRTMAX on Linux */

struct waiter {
    struct waiter *next;
    struct request *req;
    int64_t deadline_ms; /* -1: none */
};

struct process {
    struct process *next;
    pid_t pid;
    uint32_t handle; /* StdioHandle, 0 without streams */
    char *cmdline;
    bool exited;
    int exit_code;
    struct stream *streams[3]; /* pipes */
    struct tty *tty;           /* or a terminal (EmulateConsole) */
    unsigned open_outputs;     /* stdout/stderr not yet at end-of-stream */
    struct waiter *waiters;
    process_exit_fn *on_exit; /* adopted processes: told of the exit (NULL: nobody) */
};

/* Exits of children nobody knew when they were reaped. A process that crun started (a
 * container's init or an exec) is adopted once crun has exited and its pid file was read; it
 * may have exited and been reaped as an orphan before that (crun exits, the process is
 * re-parented to us, we reap it, then we learn crun's exit). Its status waits here. Bounded:
 * the oldest entry is overwritten; an entry older than ORPHAN_KEEP_MS is never matched (the pid
 * may have been reused since). */
#define ORPHAN_SLOTS 64
#define ORPHAN_KEEP_MS 60000
static struct {
    pid_t pid;
    int status;
    int64_t at_ms;
} orphans[ORPHAN_SLOTS];
static unsigned orphan_next;

struct exec_args {
    struct exec_params p; /* decoded from the request (execparams.h) */
    int netns_fd;         /* /run/netns/<p.netns>, -1 */
    char *resolv;         /* its resolv.conf when it has one (owned), else NULL */
};

/* The child's stdio: pipes, or a terminal (the same slave on 0, 1 and 2). */
struct stdio_fds {
    int child[3];  /* -1: /dev/null */
    int parent[3]; /* pipes: the agent's ends; a terminal: its master at PROTO_STDOUT */
    bool ctty;     /* child[0] is a terminal's slave, to become the controlling terminal */
};

/* What a child that could not exec tells its parent through a CLOEXEC pipe. */
enum child_stage {
    STAGE_SETUP,
    STAGE_TTY,     /* make the terminal the controlling one and the stdio */
    STAGE_NETNS,   /* setns into the network namespace */
    STAGE_MOUNTNS, /* a mount namespace for its resolv.conf */
    STAGE_RESOLV,  /* bind its resolv.conf */
    STAGE_CHDIR,
    STAGE_EXEC,
};
struct child_error {
    int stage;
    int err;
};

static struct process *procs;

static struct process *
find_pid(uint64_t pid)
{
    for (struct process *p = procs; p; p = p->next)
        if ((uint64_t)p->pid == pid)
            return p;
    return NULL;
}

static void
process_remove(struct process *p)
{
    for (struct process **pp = &procs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    for (unsigned i = 0; i < 3; i++)
        stream_free(p->streams[i]);
    tty_free(p->tty);
    while (p->waiters) {
        struct waiter *w = p->waiters;
        p->waiters = w->next;
        request_free(w->req);
        free(w);
    }
    free(p->cmdline);
    free(p);
}

static bool
process_done(const struct process *p)
{
    return p->exited && p->open_outputs == 0;
}

static json_t *
exit_result(const struct process *p)
{
    return json_pack("{s:i}", "ExitCode", p->exit_code);
}

/* Answer the waiters of a finished process and forget it. */
static void
maybe_complete(struct bridge *b, struct process *p)
{
    if (!process_done(p) || !p->waiters)
        return;
    while (p->waiters) {
        struct waiter *w = p->waiters;
        p->waiters = w->next;
        w->req->result = exit_result(p);
        bridge_reply(b, w->req, 0);
        free(w);
    }
    process_remove(p);
}

static void
on_output_end(struct bridge *b, void *ctx)
{
    struct process *p = ctx;
    p->open_outputs--;
    maybe_complete(b, p);
}

static void
mark_exited(struct bridge *b, struct process *p, int status)
{
    p->exited = true;
    if (WIFEXITED(status))
        p->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        p->exit_code = 128 + WTERMSIG(status);
    else
        p->exit_code = 255;
    log_debug("process %d (%s) exited: %d", (int)p->pid, p->cmdline, p->exit_code);
    if (p->on_exit)
        p->on_exit(b, p->pid, p->exit_code);
    maybe_complete(b, p);
}

void
process_exited(struct bridge *b, pid_t pid, int status)
{
    struct process *p = find_pid((uint64_t)pid);
    if (!p || p->exited) {
        log_debug("reaped pid %d (status 0x%x)", (int)pid, status);
        orphans[orphan_next] = (__typeof__(orphans[0])){pid, status, monotonic_ms()};
        orphan_next = (orphan_next + 1) % ORPHAN_SLOTS;
        return;
    }
    mark_exited(b, p, status);
}

/* The status of pid if it was reaped as an orphan recently (the entry is consumed). */
static bool
orphan_take(pid_t pid, int *status)
{
    int64_t now = monotonic_ms();
    for (unsigned i = 0; i < ORPHAN_SLOTS; i++) {
        if (orphans[i].pid != pid || pid <= 0 || now - orphans[i].at_ms > ORPHAN_KEEP_MS)
            continue;
        *status = orphans[i].status;
        orphans[i].pid = 0;
        return true;
    }
    return false;
}

static void
exec_args_release(struct exec_args *a)
{
    exec_params_release(&a->p);
    if (a->netns_fd >= 0)
        close(a->netns_fd);
    free(a->resolv);
}

/* "NetworkNamespace": open the namespace now (an unknown one fails the request before any
 * fork) and note its resolv.conf. */
static int
open_netns(struct request *req, struct exec_args *a)
{
    if (!a->p.netns)
        return 0;
    a->netns_fd = netns_open(a->p.netns);
    if (a->netns_fd < 0)
        return request_fail(req, "exec \"%s\": network namespace %s: %s", a->p.argv[0],
                            a->p.netns,
                            a->netns_fd == -ENOENT ? "not found" : strerror(-a->netns_fd));
    cleanup_free char *resolv = netns_resolv_path(a->p.netns);
    if (access(resolv, F_OK) < 0)
        return 0;
    if (access(NETNS_RESOLV_CONF, F_OK) < 0)
        return request_fail(req, "exec \"%s\": network namespace %s has a resolv.conf but "
                                 NETNS_RESOLV_CONF " (its mount point) cannot be found: %s",
                            a->p.argv[0], a->p.netns, strerror(errno));
    a->resolv = steal_ptr(&resolv);
    return 0;
}

int
process_check_handle(struct request *req, uint32_t handle)
{
    for (struct process *p = procs; p && handle; p = p->next)
        if (p->handle == handle)
            return request_fail(req, "stdio handle %u is already in use by process %d", handle,
                                (int)p->pid);
    return 0;
}

static int
parse_exec(struct request *req, struct exec_args *a)
{
    int rc = exec_params_parse(req, &a->p);
    if (rc == 0)
        rc = process_check_handle(req, a->p.handle);
    if (rc < 0)
        return rc;
    return open_netns(req, a);
}

static void __attribute__((noreturn))
child_main(const struct exec_args *a, const struct stdio_fds *io, int errfd)
{
    struct child_error ce = {.stage = STAGE_SETUP};
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (setsid() < 0)
        goto fail;
    ce.stage = io->ctty ? STAGE_TTY : STAGE_SETUP;
    if (io->ctty && tty_child_attach(io->child[0]) < 0)
        goto fail;
    for (int i = 0; i < 3 && !io->ctty; i++) {
        int fd = io->child[i];
        if (fd < 0)
            fd = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
        if (fd < 0 || dup2(fd, i) < 0)
            goto fail;
    }
    /* Like `ip netns exec`: the network namespace, then its resolv.conf in a mount namespace of
     * the process's own, a slave of ours (nothing propagates back; unpinned namespaces under
     * the shared /run/netns are unmounted in it too). */
    ce.stage = STAGE_NETNS;
    if (a->netns_fd >= 0 && setns(a->netns_fd, CLONE_NEWNET) < 0)
        goto fail;
    if (a->netns_fd >= 0) {
        /* sysfs shows the network namespace of whoever mounted it: a fresh /sys, as `ip netns
         * exec` does, so /sys/class/net lists the namespace's devices. */
        ce.stage = STAGE_MOUNTNS;
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
            umount2("/sys", MNT_DETACH) < 0 ||
            mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            goto fail;
    }
    if (a->resolv) {
        ce.stage = STAGE_RESOLV;
        if (mount(a->resolv, NETNS_RESOLV_CONF, NULL, MS_BIND, NULL) < 0)
            goto fail;
    }
    ce.stage = STAGE_CHDIR;
    if (chdir(a->p.cwd) < 0)
        goto fail;
    ce.stage = STAGE_EXEC;
    environ = a->p.envp;
    execvp(a->p.argv[0], (char *const *)a->p.argv);
fail:
    ce.err = errno;
    ssize_t w = write(errfd, &ce, sizeof(ce));
    (void)w;
    _exit(127);
}

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void
close_pair(int p[2])
{
    close_fd(&p[0]);
    close_fd(&p[1]);
}

static void
stdio_close_child(struct stdio_fds *io)
{
    if (io->ctty) /* one slave on all three */
        io->child[1] = io->child[2] = -1;
    for (int i = 0; i < 3; i++)
        close_fd(&io->child[i]);
}

static void
stdio_close(struct stdio_fds *io)
{
    stdio_close_child(io);
    for (int i = 0; i < 3; i++)
        close_fd(&io->parent[i]);
}

/* The child's stdio as a->p asks: a terminal, or the pipes asked for. 0 or a request error. */
static int
stdio_open(struct request *req, const struct exec_args *a, struct stdio_fds *io)
{
    if (a->p.terminal) {
        int rc = tty_open(a->p.size, &io->parent[PROTO_STDOUT], &io->child[0]);
        if (rc < 0)
            return request_fail(req, "exec \"%s\": open a terminal: %s", a->p.argv[0],
                                strerror(-rc));
        io->child[1] = io->child[2] = io->child[0];
        io->ctty = true;
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        int p[2];
        if (!a->p.pipes[i])
            continue;
        if (pipe2(p, O_CLOEXEC) < 0)
            return request_fail(req, "exec \"%s\": pipe: %s", a->p.argv[0], strerror(errno));
        /* the child reads stdin's read end and writes the write ends of stdout and stderr */
        io->child[i] = p[i == PROTO_STDIN ? 0 : 1];
        io->parent[i] = p[i == PROTO_STDIN ? 1 : 0];
        fcntl(io->parent[i], F_SETFL, O_NONBLOCK);
    }
    return 0;
}

/* What the child reported through errfd (nothing: it has exec'd). 0 or a request error. */
static int
child_result(struct request *req, const struct exec_args *a, int errfd)
{
    struct child_error ce;
    ssize_t n;
    do
        n = read(errfd, &ce, sizeof(ce));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(ce))
        return 0;
    /* the child exits; it is reaped as an unknown pid */
    const char *cmd = a->p.argv[0], *err = strerror(ce.err);
    switch (ce.stage) {
    case STAGE_EXEC:
        return request_fail(req, "exec \"%s\": %s", cmd, err);
    case STAGE_CHDIR:
        return request_fail(req, "exec \"%s\": chdir \"%s\": %s", cmd, a->p.cwd, err);
    case STAGE_NETNS:
        return request_fail(req, "exec \"%s\": enter network namespace %s: %s", cmd, a->p.netns,
                            err);
    case STAGE_MOUNTNS:
        return request_fail(req, "exec \"%s\": mount namespace and /sys for network namespace "
                                 "%s: %s",
                            cmd, a->p.netns, err);
    case STAGE_RESOLV:
        return request_fail(req, "exec \"%s\": bind %s on " NETNS_RESOLV_CONF ": %s", cmd,
                            a->resolv, err);
    case STAGE_TTY:
        return request_fail(req, "exec \"%s\": make the terminal its controlling terminal: %s",
                            cmd, err);
    default:
        return request_fail(req, "exec \"%s\": child setup: %s", cmd, err);
    }
}

/* Fork and exec; on success *pid is set and io->parent holds the agent's ends (the child's
 * ends are closed either way; the agent's too on failure). */
static int
spawn(struct request *req, const struct exec_args *a, pid_t *pid, struct stdio_fds *io)
{
    int errp[2] = {-1, -1};
    int rc = stdio_open(req, a, io);
    if (rc == 0 && pipe2(errp, O_CLOEXEC) < 0)
        rc = request_fail(req, "exec \"%s\": pipe: %s", a->p.argv[0], strerror(errno));
    if (rc == 0) {
        *pid = fork();
        if (*pid < 0)
            rc = request_fail(req, "exec \"%s\": fork: %s", a->p.argv[0], strerror(errno));
        else if (*pid == 0)
            child_main(a, io, errp[1]);
    }
    if (rc == 0) {
        close_fd(&errp[1]);
        rc = child_result(req, a, errp[0]);
    }
    close_pair(errp);
    stdio_close_child(io);
    if (rc < 0)
        stdio_close(io);
    return rc;
}

static char *
join_args(const char **argv)
{
    size_t len = 1;
    for (const char **s = argv; *s; s++)
        len += strlen(*s) + 1;
    char *out = xmalloc(len), *o = out;
    for (const char **s = argv; *s; s++) {
        if (o != out)
            *o++ = ' ';
        size_t n = strlen(*s);
        memcpy(o, *s, n);
        o += n;
    }
    *o = '\0';
    return out;
}

/* Record a running process with streams over fds (taken; -1 where none). */
static struct process *
process_add(pid_t pid, uint32_t handle, const int fds[3], char *cmdline)
{
    struct process *p = xcalloc(1, sizeof(*p));
    p->pid = pid;
    p->handle = handle;
    p->cmdline = cmdline;
    if (fds[0] >= 0)
        p->streams[0] = stream_new_input(PROTO_STREAM_ID(handle, PROTO_STDIN), fds[0]);
    for (int i = 1; i < 3; i++) {
        if (fds[i] < 0)
            continue;
        p->streams[i] = stream_new_output(PROTO_STREAM_ID(handle, i), fds[i], on_output_end, p);
        p->open_outputs++;
    }
    p->next = procs;
    procs = p;
    return p;
}

void
process_adopt(struct bridge *b, pid_t pid, uint32_t handle, const int fds[3],
              const char *cmdline, process_exit_fn *on_exit)
{
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            fcntl(fds[i], F_SETFL, O_NONBLOCK);
    struct process *p = process_add(pid, handle, fds, xstrdup(cmdline));
    p->on_exit = on_exit;
    log_debug("adopted \"%s\": pid %d, stdio handle %u", p->cmdline, (int)pid, handle);
    int status;
    if (orphan_take(pid, &status))
        mark_exited(b, p, status);
}

void
process_adopt_tty(struct bridge *b, pid_t pid, uint32_t handle, int master, bool input,
                  const char *cmdline, process_exit_fn *on_exit)
{
    const int none[3] = {-1, -1, -1};
    struct process *p = process_add(pid, handle, none, xstrdup(cmdline));
    p->on_exit = on_exit;
    fcntl(master, F_SETFL, O_NONBLOCK);
    p->tty = tty_relay_new(master, handle, input, on_output_end, p);
    p->open_outputs = p->tty ? 1 : 0;
    if (!p->tty)
        log_warn("adopted \"%s\" (pid %d): no relay for its terminal: %s", p->cmdline, (int)pid,
                 strerror(errno));
    log_debug("adopted \"%s\": pid %d on a terminal, stdio handle %u", p->cmdline, (int)pid,
              handle);
    int status;
    if (orphan_take(pid, &status))
        mark_exited(b, p, status);
}

/* Relay the process's stdio (io->parent's descriptors are taken). 0, or -1 when a terminal's
 * relay could not be set up (errno set). */
static int
attach_streams(struct process *p, const struct exec_args *a, struct stdio_fds *io)
{
    if (a->p.terminal) {
        p->tty = tty_relay_new(io->parent[PROTO_STDOUT], a->p.handle, a->p.pipes[PROTO_STDIN],
                               on_output_end, p);
        io->parent[PROTO_STDOUT] = -1;
        p->open_outputs = p->tty ? 1 : 0;
        return p->tty ? 0 : -1;
    }
    if (io->parent[PROTO_STDIN] >= 0)
        p->streams[PROTO_STDIN] =
            stream_new_input(PROTO_STREAM_ID(a->p.handle, PROTO_STDIN), io->parent[PROTO_STDIN]);
    for (int i = PROTO_STDOUT; i <= PROTO_STDERR; i++) {
        if (io->parent[i] < 0)
            continue;
        p->streams[i] =
            stream_new_output(PROTO_STREAM_ID(a->p.handle, i), io->parent[i], on_output_end, p);
        p->open_outputs++;
    }
    for (int i = 0; i < 3; i++)
        io->parent[i] = -1;
    return 0;
}

int
process_handle_execute(struct bridge *b, struct request *req)
{
    struct exec_args a = {.netns_fd = -1};
    struct stdio_fds io = {.child = {-1, -1, -1}, .parent = {-1, -1, -1}};
    int rc = parse_exec(req, &a);
    pid_t pid = -1;
    if (rc == 0)
        rc = spawn(req, &a, &pid, &io);
    if (rc < 0) {
        exec_args_release(&a);
        return rc;
    }
    struct process *p = xcalloc(1, sizeof(*p));
    p->pid = pid;
    p->handle = a.p.handle;
    if (attach_streams(p, &a, &io) < 0) {
        rc = request_fail(req, "exec \"%s\": relay its terminal: %s", a.p.argv[0],
                          strerror(errno));
        kill(pid, SIGKILL); /* reaped as an unknown pid */
        free(p);
        exec_args_release(&a);
        return rc;
    }
    p->cmdline = join_args(a.p.argv);
    p->next = procs;
    procs = p;
    log_debug("exec \"%s\": pid %d, stdio handle %u%s", p->cmdline, (int)pid, a.p.handle,
              a.p.terminal ? ", terminal" : "");
    exec_args_release(&a);
    req->result = json_pack("{s:i}", "ProcessId", (int)pid);
    return 0;
}

int
process_signal(struct request *req, pid_t pid, int sig)
{
    struct process *p = find_pid((uint64_t)pid);
    if (!p)
        return request_fail(req, "signal: process %d not found", (int)pid);
    if (p->exited)
        return request_fail(req, "signal: process %d has exited", (int)pid);
    if (kill(p->pid, sig) < 0)
        return request_fail(req, "signal %d to process %d: %s", sig, (int)pid, strerror(errno));
    log_debug("signal %d sent to process %d", sig, (int)p->pid);
    return 0;
}

bool
process_running(pid_t pid)
{
    struct process *p = find_pid((uint64_t)pid);
    return p && !p->exited;
}

int
process_handle_wait(struct bridge *b, struct request *req)
{
    uint64_t pid = 0, timeout = UINT32_MAX;
    int rc = req_uint(req, req->body, "ProcessId", true, 1, INT32_MAX, &pid);
    if (rc == 0)
        rc = req_uint(req, req->body, "TimeoutInMs", false, 0, UINT32_MAX, &timeout);
    if (rc < 0)
        return rc;
    struct process *p = find_pid(pid);
    if (!p)
        return request_fail(req, "wait: process %llu not found", (unsigned long long)pid);
    if (process_done(p)) {
        req->result = exit_result(p);
        if (!p->waiters)
            process_remove(p);
        return 0;
    }
    if (timeout == 0)
        return request_fail(req, "wait: timed out waiting for process %llu",
                            (unsigned long long)pid);
    struct waiter *w = xcalloc(1, sizeof(*w));
    w->req = req;
    w->deadline_ms = timeout == UINT32_MAX ? -1 : monotonic_ms() + (int64_t)timeout;
    w->next = p->waiters;
    p->waiters = w;
    return BRIDGE_DEFERRED;
}

int
process_handle_signal(struct bridge *b, struct request *req)
{
    uint64_t pid = 0, sig = 0;
    json_t *opts = NULL;
    int rc = req_uint(req, req->body, "ProcessId", true, 1, INT32_MAX, &pid);
    if (rc == 0)
        rc = req_object(req, req->body, "Options", true, &opts);
    if (rc == 0)
        rc = req_uint(req, opts, "Signal", true, 0, MAX_SIGNAL, &sig);
    if (rc < 0)
        return rc;
    return process_signal(req, (pid_t)pid, (int)sig);
}

int
process_handle_resize(struct bridge *b, struct request *req)
{
    struct tty_resize r;
    int rc = tty_resize_parse(req, &r);
    if (rc < 0)
        return rc;
    struct process *p = find_pid(r.pid);
    if (!p)
        return request_fail(req, "resize console: process %u not found", r.pid);
    if (!p->tty)
        return request_fail(req, "resize console: process %u has no terminal", r.pid);
    if (p->exited)
        return request_fail(req, "resize console: process %u has exited", r.pid);
    rc = tty_resize(p->tty, r.size);
    if (rc < 0)
        return request_fail(req, "resize console of process %u to %ux%u: %s", r.pid,
                            r.size.rows, r.size.cols, strerror(-rc));
    log_debug("process %u: terminal resized to %ux%u", r.pid, r.size.rows, r.size.cols);
    return 0;
}

json_t *
process_list(void)
{
    json_t *list = json_array();
    for (struct process *p = procs; p; p = p->next) {
        if (p->exited)
            continue;
        json_array_append_new(list, json_pack("{s:i, s:s}", "ProcessId", (int)p->pid,
                                              "CommandLine", p->cmdline));
    }
    return list;
}

int
process_next_timeout(void)
{
    int64_t next = -1, now = monotonic_ms();
    for (struct process *p = procs; p; p = p->next) {
        for (struct waiter *w = p->waiters; w; w = w->next) {
            if (w->deadline_ms < 0)
                continue;
            int64_t left = w->deadline_ms > now ? w->deadline_ms - now : 0;
            if (next < 0 || left < next)
                next = left;
        }
    }
    return next > INT32_MAX ? INT32_MAX : (int)next;
}

void
process_expire(struct bridge *b)
{
    int64_t now = monotonic_ms();
    for (struct process *p = procs; p; p = p->next) {
        for (struct waiter **wp = &p->waiters; *wp;) {
            struct waiter *w = *wp;
            if (w->deadline_ms < 0 || w->deadline_ms > now) {
                wp = &w->next;
                continue;
            }
            *wp = w->next;
            request_fail(w->req, "wait: timed out waiting for process %d", (int)p->pid);
            bridge_reply(b, w->req, -ETIMEDOUT);
            free(w);
        }
    }
}

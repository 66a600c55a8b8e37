/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "spawn.h"
#include "timeutil.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define KILL_REAP_MS 10000u

extern char **environ;

/* What the child reports through the exec pipe when it fails. */
enum child_stage { STAGE_PARENT, STAGE_FDS, STAGE_HOOK, STAGE_EXEC, STAGE_UNSHARE };
struct child_err {
    int stage;
    int err;
};

struct request {
    const struct spawn_opts *o;
    const char *path; /* resolved argv[0] */
    pid_t parent;     /* for the fork fallback's "parent still alive" check */
    uint64_t unshare; /* fork fallback: namespaces the child makes itself */
    /* result */
    bool done;
    int rc; /* 0 or -errno of clone/pipe */
    struct child_err cerr;
    pid_t pid;
    int pidfd;
    struct request *next;
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t spawner_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spawner_cond = PTHREAD_COND_INITIALIZER; /* queue non-empty / done */
static struct request *queue_head, **queue_tail = &queue_head;
/* The process whose spawner thread runs (0: none). A fork()ed child of the caller has no
 * threads: it starts its own spawner on first use (atfork_child resets the state). */
static pid_t spawner_pid;
static pthread_t spawner_thread;
static bool spawner_quit; /* the process is exiting (destructor): the thread ends */
static int self_pidfd = -1; /* our process, for the child's "parent still alive" check */

/* --- the child ------------------------------------------------------------------------------ */

static void __attribute__((noreturn))
child_fail(int errfd, int stage, int err)
{
    struct child_err ce = {stage, err};
    ssize_t r = write(errfd, &ce, sizeof(ce));
    (void)r;
    _exit(127);
}

/* Put stdio and the extra fds in place; everything else closed but errfd (returned, moved). */
static int
child_fds(const struct spawn_opts *o, int errfd)
{
    int hi = 3 + (int)o->n_fds + 1; /* above every target */
    int src[3 + SPAWN_MAX_FDS];
    int std[3] = {o->stdin_fd, o->stdout_fd, o->stderr_fd};
    for (int i = 0; i < 3; i++) {
        int fd = std[i] >= 0 ? std[i] : open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
        if (fd < 0 || (src[i] = fcntl(fd, F_DUPFD_CLOEXEC, hi)) < 0)
            return -1;
    }
    for (unsigned i = 0; i < o->n_fds; i++)
        if ((src[3 + i] = fcntl(o->fds[i], F_DUPFD_CLOEXEC, hi)) < 0)
            return -1;
    int e = fcntl(errfd, F_DUPFD_CLOEXEC, hi);
    if (e < 0)
        return -1;
    for (int i = 0; i < 3 + (int)o->n_fds; i++)
        if (dup2(src[i], i) < 0) /* dup2 clears FD_CLOEXEC on the target */
            return -1;
    int last = 3 + (int)o->n_fds;
    if (dup2(e, last) < 0 || fcntl(last, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    if (syscall(SYS_close_range, (unsigned)last + 1, ~0U, 0) < 0)
        return -1;
    return last;
}

static void __attribute__((noreturn))
child(const struct request *r, int errfd)
{
    const struct spawn_opts *o = r->o;
    /* Die with the process (the spawner thread lives as long as it); if the process is already
     * gone, do not run an orphan. */
    struct pollfd p = {.fd = self_pidfd, .events = POLLIN};
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
        (self_pidfd >= 0 ? poll(&p, 1, 0) != 0 : getppid() != r->parent))
        child_fail(errfd, STAGE_PARENT, errno ? errno : ESRCH);
    if (r->unshare && unshare((int)r->unshare) < 0)
        child_fail(errfd, STAGE_UNSHARE, errno);
    /* The system call itself: glibc's sigaction refuses its reserved signals (32, 33), which a
     * parent such as make may have left ignored. */
    struct {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        uint64_t mask;
    } dfl = {.handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int fd = child_fds(o, errfd);
    if (fd < 0)
        child_fail(errfd, STAGE_FDS, errno);
    errfd = fd;
    if (o->hook) {
        int rc = o->hook(o->hook_arg);
        if (rc < 0)
            child_fail(errfd, STAGE_HOOK, -rc);
    }
    execve(r->path, (char *const *)o->argv, environ);
    child_fail(errfd, STAGE_EXEC, errno);
}

/* --- the spawner thread --------------------------------------------------------------------- */

/* clone3 is missing under valgrind 3.19 and in some seccomp profiles (Docker's default: ENOSYS):
 * fork(), the child unshare()s what it can (a PID namespace would only apply to its children:
 * that one is lost, said at warning), and without pidfd_open the pid is the handle (we are the
 * parent: it cannot be reused before we reap it). */
static long
fork_fallback(struct request *r, int *pidfd)
{
    static bool warned;
    r->unshare = r->o->clone_flags & ~(uint64_t)CLONE_NEWPID;
    if ((r->o->clone_flags & CLONE_NEWPID) && !warned) {
        warned = true;
        uvm_log(UVM_LOG_WARNING, NULL, "clone3 is not available: children start without a PID "
                                       "namespace of their own");
    }
    pid_t pid = fork();
    if (pid > 0) {
        *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (*pidfd >= 0)
            fcntl(*pidfd, F_SETFD, FD_CLOEXEC);
    }
    return pid;
}

static void
do_spawn(struct request *r)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        r->rc = -errno;
        return;
    }
    int pidfd = -1;
    struct clone_args ca = {
        .flags = r->o->clone_flags | CLONE_PIDFD,
        .pidfd = (uint64_t)(uintptr_t)&pidfd,
        .exit_signal = SIGCHLD,
    };
    long pid = syscall(SYS_clone3, &ca, sizeof(ca));
    if (pid < 0 && errno == ENOSYS)
        pid = fork_fallback(r, &pidfd);
    if (pid == 0)
        child(r, pipefd[1]);
    close(pipefd[1]);
    if (pid < 0) {
        r->rc = -errno;
        close(pipefd[0]);
        return;
    }
    ssize_t n;
    while ((n = read(pipefd[0], &r->cerr, sizeof(r->cerr))) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);
    if (n == (ssize_t)sizeof(r->cerr)) { /* it failed before exec: reap it here */
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (pidfd >= 0)
            close(pidfd);
        r->rc = r->cerr.err > 0 && r->cerr.err < 4096 ? -r->cerr.err : -EIO;
        return;
    }
    r->pid = (pid_t)pid;
    r->pidfd = pidfd;
}

static void *
spawner(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&spawner_lock);
    for (;;) {
        while (!queue_head && !spawner_quit)
            pthread_cond_wait(&spawner_cond, &spawner_lock);
        if (!queue_head)
            break;
        struct request *r = queue_head;
        queue_head = r->next;
        if (!queue_head)
            queue_tail = &queue_head;
        pthread_mutex_unlock(&spawner_lock);
        do_spawn(r);
        pthread_mutex_lock(&spawner_lock);
        r->done = true;
        pthread_cond_broadcast(&spawner_cond);
    }
    pthread_mutex_unlock(&spawner_lock);
    return NULL;
}

/* Lock held. 0, or -errno when the thread cannot be started. */
static int
spawner_ensure(void)
{
    if (spawner_pid == getpid())
        return 0;
    if (spawner_quit)
        return -ESHUTDOWN; /* exiting: the destructor stopped the thread */
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0); /* -1: children check getppid() */
    if (pidfd >= 0)
        fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&spawner_thread, NULL, spawner, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        if (pidfd >= 0)
            close(pidfd);
        return -rc;
    }
    if (self_pidfd >= 0)
        close(self_pidfd);
    self_pidfd = pidfd;
    spawner_pid = getpid();
    return 0;
}

/* A caller that fork()s gets a child without our thread, and possibly with the lock held by a
 * thread that does not exist there: take the lock across fork, start afresh in the child. */
static void
atfork_prepare(void)
{
    pthread_mutex_lock(&spawner_lock);
}

static void
atfork_parent(void)
{
    pthread_mutex_unlock(&spawner_lock);
}

static void
atfork_child(void)
{
    pthread_mutex_unlock(&spawner_lock);
    pthread_cond_init(&spawner_cond, NULL);
    queue_head = NULL; /* requests of the parent's threads: not ours */
    queue_tail = &queue_head;
    spawner_pid = 0;
    spawner_quit = false;
}

/* At exit, end the thread (joined: nothing of it is left for a leak checker). */
static void __attribute__((destructor))
spawner_stop(void)
{
    pthread_mutex_lock(&spawner_lock);
    bool running = spawner_pid == getpid();
    spawner_quit = true;
    pthread_cond_broadcast(&spawner_cond);
    pthread_mutex_unlock(&spawner_lock);
    if (running)
        pthread_join(spawner_thread, NULL);
}

static void
atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* --- API ------------------------------------------------------------------------------------ */

char *
spawn_which(const char *argv0)
{
    if (!argv0 || !*argv0)
        return NULL;
    if (strchr(argv0, '/'))
        return xstrdup(argv0);
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        /* Only absolute entries: "" or "." in a careless PATH must not run a local file. */
        if (len && p[0] == '/') {
            char *cand = xasprintf("%.*s/%s", (int)len, p, argv0);
            struct stat st;
            if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
                return cand;
            free(cand);
        }
        p += len;
        if (*p == ':')
            p++;
    }
    return NULL;
}

static const char *const stage_names[] = {
    [STAGE_PARENT] = "the calling process is exiting",
    [STAGE_FDS] = "set up its fds",
    [STAGE_HOOK] = "confine",
    [STAGE_EXEC] = "exec",
    [STAGE_UNSHARE] = "unshare its namespaces",
};

int
spawn(const struct spawn_opts *o, struct spawned *out)
{
    out->pid = -1;
    out->pidfd = -1;
    if (!o || !o->argv || !o->argv[0] || o->n_fds > SPAWN_MAX_FDS)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "spawn: bad arguments");
    cleanup_free char *path = spawn_which(o->argv[0]);
    if (!path)
        return uvm_error(UVM_E_NOT_FOUND, "spawn '%s': not found in PATH (not installed?)",
                         o->argv[0]);
    pthread_once(&atfork_once, atfork_register);
    struct request r = {.o = o, .path = path, .pidfd = -1, .parent = getpid()};
    pthread_mutex_lock(&spawner_lock);
    int err = spawner_ensure();
    if (err) {
        pthread_mutex_unlock(&spawner_lock);
        return uvm_error_errno(err, "spawn '%s': no spawner thread", o->argv[0]);
    }
    *queue_tail = &r;
    queue_tail = &r.next;
    pthread_cond_broadcast(&spawner_cond);
    while (!r.done)
        pthread_cond_wait(&spawner_cond, &spawner_lock);
    pthread_mutex_unlock(&spawner_lock);
    if (r.rc < 0) {
        if (r.cerr.stage == STAGE_HOOK && o->hook_explain) {
            cleanup_free char *why = o->hook_explain(o->hook_arg, -r.cerr.err);
            return uvm_error(UVM_E_HYPERVISOR, "spawn '%s': %s", path, why);
        }
        return uvm_error_errno(r.rc, "spawn '%s'%s%s", path, r.cerr.err ? ": " : "",
                               r.cerr.err ? stage_names[r.cerr.stage] : "");
    }
    out->pid = r.pid;
    out->pidfd = r.pidfd;
    return 0;
}

/* Without a pidfd (fork fallback): poll waitpid until the deadline. */
static int
wait_pid(const struct spawned *s, siginfo_t *si, int64_t deadline)
{
    for (;;) {
        memset(si, 0, sizeof(*si));
        int r = waitid(P_PID, (id_t)s->pid, si, WEXITED | WNOHANG);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) /* ECHILD: somebody else reaped it; we do not know how it ended */
            return uvm_error_errno(-errno, "reap pid %d", (int)s->pid);
        if (si->si_pid == s->pid)
            return 0;
        int ms = deadline_poll_ms(deadline);
        if (ms == 0)
            return uvm_error(UVM_E_TIMEOUT, "pid %d is still running", (int)s->pid);
        usleep((unsigned)(ms < 0 || ms > 10 ? 10 : ms) * 1000u);
    }
}

static int
wait_pidfd(const struct spawned *s, siginfo_t *si, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = s->pidfd, .events = POLLIN};
        int n = poll(&p, 1, deadline_poll_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return uvm_error_errno(-errno, "wait for pid %d", (int)s->pid);
        if (n == 0)
            return uvm_error(UVM_E_TIMEOUT, "pid %d is still running", (int)s->pid);
        break;
    }
    memset(si, 0, sizeof(*si));
    int r;
    while ((r = waitid((idtype_t)P_PIDFD, (id_t)s->pidfd, si, WEXITED)) < 0 && errno == EINTR)
        ;
    if (r < 0) /* ECHILD: somebody else reaped it; we do not know how it ended */
        return uvm_error_errno(-errno, "reap pid %d", (int)s->pid);
    return 0;
}

int
spawn_wait(const struct spawned *s, int *status, int64_t deadline)
{
    if (s->pid <= 0)
        return uvm_error(UVM_E_INVALID_STATE, "reap: no child");
    siginfo_t si;
    int rc = s->pidfd >= 0 ? wait_pidfd(s, &si, deadline) : wait_pid(s, &si, deadline);
    if (rc < 0)
        return rc;
    if (status)
        *status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0) : (si.si_status & 0x7f);
    return 0;
}

void
spawn_release(struct spawned *s)
{
    if (s->pidfd >= 0)
        close(s->pidfd);
    s->pidfd = -1;
    s->pid = -1;
}

int
spawn_reap(struct spawned *s, int *status, int64_t deadline)
{
    int rc = spawn_wait(s, status, deadline);
    if (rc == 0)
        spawn_release(s);
    return rc;
}

int
spawn_signal(const struct spawned *s, int sig)
{
    if (s->pid <= 0)
        return 0;
    int r = s->pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, s->pidfd, sig, NULL, 0)
                          : kill(s->pid, sig);
    if (r < 0 && errno != ESRCH)
        return uvm_error_errno(-errno, "signal %d to pid %d", sig, (int)s->pid);
    return 0;
}

void
spawn_kill_reap(struct spawned *s)
{
    if (s->pid <= 0)
        return;
    spawn_signal(s, SIGKILL);
    if (spawn_reap(s, NULL, deadline_after_ms(KILL_REAP_MS)) < 0)
        uvm_log(UVM_LOG_ERROR, NULL, "pid %d: %s", (int)s->pid, uvm_last_error());
}

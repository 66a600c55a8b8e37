/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "cleanup.h"
#include "error.h"
#include "sanitize.h"
#include "vmm.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct vmm {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* spawn inputs */
    char *const *argv;
    int qmp_fd, agent_fd, log_fd, console_fd, console_reader;
    char ring[VMM_CONSOLE_RING];
    size_t ring_head, ring_len;
    int max_fd; /* fallback bound for closing inherited fds */
    vmm_exit_fn fn;
    void *opaque;
    /* spawn result */
    bool spawned; /* result is known */
    int spawn_err; /* -errno of fork/exec */
    pid_t pid;
    int pidfd;
    bool exited;
    bool console_reader_eof;
    bool orphaned; /* vmm_free gave up waiting: the watcher frees itself, calls nobody */
};

#define VMM_JOIN_TIMEOUT_S 15

static void release(struct vmm *v);

static int
pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void __attribute__((noreturn))
child(struct vmm *v, pid_t parent, int errfd)
{
    /* Only async-signal-safe calls from here on. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(127);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    int q = fcntl(v->qmp_fd, F_DUPFD, 10);
    int a = fcntl(v->agent_fd, F_DUPFD, 10);
    int c = v->console_fd >= 0 ? fcntl(v->console_fd, F_DUPFD, 10) : -1;
    int e = fcntl(errfd, F_DUPFD_CLOEXEC, 10);
    if (devnull < 0 || q < 0 || a < 0 || e < 0 || (v->console_fd >= 0 && c < 0) ||
        dup2(devnull, 0) < 0 || dup2(v->log_fd, 1) < 0 || dup2(v->log_fd, 2) < 0 ||
        dup2(q, ARGV_QMP_FD) < 0 || dup2(a, ARGV_AGENT_FD) < 0 ||
        (c >= 0 && dup2(c, ARGV_CONSOLE_FD) < 0) || dup2(e, 6) < 0)
        goto fail;
    if (fcntl(6, F_SETFD, FD_CLOEXEC) < 0)
        goto fail;
    if (syscall(SYS_close_range, 7, ~0U, 0) < 0)
        for (int fd = 7; fd < v->max_fd; fd++)
            close(fd);
    execvp(v->argv[0], v->argv);
fail:;
    int err = errno;
    ssize_t r = write(6, &err, sizeof(err));
    (void)r;
    _exit(127);
}

/* Append what the console has to the ring; false at end of file. */
static bool
console_read(struct vmm *v)
{
    char buf[4096];
    ssize_t n = read(v->console_reader, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    pthread_mutex_lock(&v->lock);
    for (ssize_t i = 0; i < n; i++) {
        v->ring[(v->ring_head + v->ring_len) % VMM_CONSOLE_RING] = buf[i];
        if (v->ring_len < VMM_CONSOLE_RING)
            v->ring_len++;
        else
            v->ring_head = (v->ring_head + 1) % VMM_CONSOLE_RING;
    }
    pthread_mutex_unlock(&v->lock);
    return true;
}

char *
vmm_console_tail(struct vmm *v, unsigned lines)
{
    pthread_mutex_lock(&v->lock);
    size_t len = v->ring_len;
    char *text = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        text[i] = v->ring[(v->ring_head + i) % VMM_CONSOLE_RING];
    pthread_mutex_unlock(&v->lock);
    len = sanitize_text(text, len + 1, text, len, SANITIZE_NEWLINES); /* the guest wrote this */
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    char *start = text;
    unsigned seen = 0;
    for (size_t i = len; i > 0; i--)
        if (text[i - 1] == '\n' && ++seen == lines) {
            start = text + i;
            break;
        }
    char *out = xstrdup(start);
    free(text);
    return out;
}

static void *
watcher(void *arg)
{
    struct vmm *v = arg;
    int pipefd[2] = {-1, -1};
    int err = 0;
    pid_t pid = -1;
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        err = -errno;
    } else {
        pid_t parent = getpid();
        pid = fork();
        if (pid == 0)
            child(v, parent, pipefd[1]);
        if (pid < 0)
            err = -errno;
        close(pipefd[1]);
    }
    int pidfd = -1;
    if (pid > 0) {
        int cerr = 0;
        ssize_t n;
        while ((n = read(pipefd[0], &cerr, sizeof(cerr))) < 0 && errno == EINTR)
            ;
        if (n == (ssize_t)sizeof(cerr)) {
            err = -cerr;
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
            pid = -1;
        } else {
            pidfd = pidfd_open_(pid);
        }
    }
    if (pipefd[0] >= 0)
        close(pipefd[0]);

    pthread_mutex_lock(&v->lock);
    v->spawned = true;
    v->spawn_err = err;
    v->pid = pid;
    v->pidfd = pidfd;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
    if (err)
        return NULL;

    /* Keep the console's tail until QEMU exits (pidfd readable). */
    if (v->console_reader >= 0 && pidfd >= 0) {
        for (;;) {
            struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN},
                                  {.fd = v->console_reader, .events = POLLIN}};
            int n = poll(p, v->console_reader >= 0 ? 2 : 1, -1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 || p[0].revents)
                break;
            if (p[1].revents && !console_read(v))
                v->console_reader_eof = true;
            if (v->console_reader_eof)
                break;
        }
    }
    int status = 0;
    siginfo_t info;
    for (;;) {
        memset(&info, 0, sizeof(info));
        int r = pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED)
                           : waitid(P_PID, (id_t)pid, &info, WEXITED);
        if (r == 0) {
            status = info.si_code == CLD_EXITED ? W_EXITCODE(info.si_status, 0)
                                                : (info.si_status & 0x7f);
            break;
        }
        if (errno != EINTR) {
            /* Somebody else reaped it (a SIGCHLD handler with waitpid(-1)): report a kill. */
            status = SIGKILL;
            break;
        }
    }
    pthread_mutex_lock(&v->lock);
    v->exited = true;
    bool orphaned = v->orphaned;
    pthread_mutex_unlock(&v->lock);
    if (orphaned) {
        release(v);
        return NULL;
    }
    v->fn(v->opaque, status);
    return NULL;
}

int
vmm_spawn(char *const *argv, int qmp_fd, int agent_fd, int console_fd, int console_reader,
          const char *log_path, vmm_exit_fn fn, void *opaque, struct vmm **out)
{
    cleanup_close int reader = console_reader;
    cleanup_close int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return uvm_error_errno(-errno, "open QEMU log '%s'", log_path);
    struct vmm *v = xcalloc(1, sizeof(*v));
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->argv = argv;
    v->qmp_fd = qmp_fd;
    v->agent_fd = agent_fd;
    v->console_fd = console_fd;
    v->console_reader = steal_fd(&reader);
    v->log_fd = log_fd;
    long maxfd = sysconf(_SC_OPEN_MAX);
    v->max_fd = maxfd > 0 && maxfd < 65536 ? (int)maxfd : 65536;
    v->fn = fn;
    v->opaque = opaque;
    v->pid = -1;
    v->pidfd = -1;

    /* The watcher runs with every signal blocked; QEMU gets a clean mask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&v->thread, NULL, watcher, v);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        if (v->console_reader >= 0)
            close(v->console_reader);
        free(v);
        return uvm_error_errno(-rc, "create QEMU watcher thread");
    }
    pthread_mutex_lock(&v->lock);
    while (!v->spawned)
        pthread_cond_wait(&v->cond, &v->lock);
    int err = v->spawn_err;
    pthread_mutex_unlock(&v->lock);
    if (err) {
        pthread_join(v->thread, NULL);
        if (v->console_reader >= 0)
            close(v->console_reader);
        free(v);
        return uvm_error_errno(err, "spawn '%s'", argv[0]);
    }
    v->log_fd = -1; /* closed by cleanup; the child has its copy */
    *out = v;
    return 0;
}

static void
release(struct vmm *v)
{
    if (v->pidfd >= 0)
        close(v->pidfd);
    if (v->console_reader >= 0)
        close(v->console_reader);
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->cond);
    free(v);
}

pid_t
vmm_pid(const struct vmm *v)
{
    return v->pid;
}

int
vmm_kill(struct vmm *v, int sig)
{
    pthread_mutex_lock(&v->lock);
    bool exited = v->exited;
    pthread_mutex_unlock(&v->lock);
    if (exited)
        return 0;
    int r = v->pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, v->pidfd, sig, NULL, 0)
                          : kill(v->pid, sig);
    if (r < 0 && errno != ESRCH)
        return uvm_error_errno(-errno, "kill QEMU pid %d", (int)v->pid);
    return 0;
}

void
vmm_free(struct vmm *v)
{
    if (!v)
        return;
    vmm_kill(v, SIGKILL);
    /* A QEMU stuck in uninterruptible I/O (a hung NFS image) cannot die: do not hang with it. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += VMM_JOIN_TIMEOUT_S;
    if (pthread_timedjoin_np(v->thread, NULL, &ts) == 0) {
        release(v);
        return;
    }
    pthread_mutex_lock(&v->lock);
    if (!v->exited) {
        v->orphaned = true;
        pthread_mutex_unlock(&v->lock);
        uvm_log(UVM_LOG_ERROR, NULL, "QEMU pid %d does not die; left to its watcher", (int)v->pid);
        pthread_detach(v->thread);
        return;
    }
    pthread_mutex_unlock(&v->lock);
    pthread_join(v->thread, NULL); /* exited: the callback is running, it ends soon */
    release(v);
}

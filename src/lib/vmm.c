/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argv.h"
#include "cleanup.h"
#include "error.h"
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
    int qmp_fd, agent_fd, log_fd;
    int max_fd; /* fallback bound for closing inherited fds */
    vmm_exit_fn fn;
    void *opaque;
    /* spawn result */
    bool spawned; /* result is known */
    int spawn_err; /* -errno of fork/exec */
    pid_t pid;
    int pidfd;
    bool exited;
};

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
    int e = fcntl(errfd, F_DUPFD_CLOEXEC, 10);
    if (devnull < 0 || q < 0 || a < 0 || e < 0 || dup2(devnull, 0) < 0 ||
        dup2(v->log_fd, 1) < 0 || dup2(v->log_fd, 2) < 0 || dup2(q, ARGV_QMP_FD) < 0 ||
        dup2(a, ARGV_AGENT_FD) < 0 || dup2(e, 5) < 0)
        goto fail;
    if (fcntl(5, F_SETFD, FD_CLOEXEC) < 0)
        goto fail;
    if (syscall(SYS_close_range, 6, ~0U, 0) < 0)
        for (int fd = 6; fd < v->max_fd; fd++)
            close(fd);
    execvp(v->argv[0], v->argv);
fail:;
    int err = errno;
    ssize_t r = write(5, &err, sizeof(err));
    (void)r;
    _exit(127);
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
    pthread_mutex_unlock(&v->lock);
    v->fn(v->opaque, status);
    return NULL;
}

int
vmm_spawn(char *const *argv, int qmp_fd, int agent_fd, const char *log_path, vmm_exit_fn fn,
          void *opaque, struct vmm **out)
{
    cleanup_close int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return uvm_error_errno(-errno, "open QEMU log '%s'", log_path);
    struct vmm *v = xcalloc(1, sizeof(*v));
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->argv = argv;
    v->qmp_fd = qmp_fd;
    v->agent_fd = agent_fd;
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
        free(v);
        return uvm_error_errno(err, "spawn '%s'", argv[0]);
    }
    v->log_fd = -1; /* closed by cleanup; the child has its copy */
    *out = v;
    return 0;
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
    pthread_join(v->thread, NULL);
    if (v->pidfd >= 0)
        close(v->pidfd);
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->cond);
    free(v);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "cleanup.h"
#include "error.h"
#include "jail.h"
#include "spawn.h"
#include "timeutil.h"
#include "sanitize.h"
#include "vmm.h"


struct ring {
    char buf[VMM_CONSOLE_RING];
    size_t head, len;
};

struct vmm {
    pthread_t thread;
    pthread_mutex_t lock;
    /* Guest console and QEMU's own stderr: bounded rings, drained by the watcher (the guest
     * cannot fill the host's disk or memory through either). */
    int console_reader, log_reader;
    struct ring console, log;
    vmm_exit_fn fn;
    void *opaque;
    struct spawned child;
    pid_t pid;
    bool exited;
    bool orphaned; /* vmm_free gave up waiting: the watcher frees itself, calls nobody */
};

#define VMM_JOIN_TIMEOUT_S 15

static void release(struct vmm *v);

/* Append what fd has to the ring; false at end of file or error. */
static bool
ring_read(struct vmm *v, int fd, struct ring *r)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    pthread_mutex_lock(&v->lock);
    for (ssize_t i = 0; i < n; i++) {
        r->buf[(r->head + r->len) % VMM_CONSOLE_RING] = buf[i];
        if (r->len < VMM_CONSOLE_RING)
            r->len++;
        else
            r->head = (r->head + 1) % VMM_CONSOLE_RING;
    }
    pthread_mutex_unlock(&v->lock);
    return true;
}

static char *
ring_tail(struct vmm *v, const struct ring *r, unsigned lines)
{
    pthread_mutex_lock(&v->lock);
    size_t len = r->len;
    char *text = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        text[i] = r->buf[(r->head + i) % VMM_CONSOLE_RING];
    text[len] = '\0';
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

char *
vmm_console_tail(struct vmm *v, unsigned lines)
{
    return ring_tail(v, &v->console, lines);
}

char *
vmm_log_tail(struct vmm *v, unsigned lines)
{
    return ring_tail(v, &v->log, lines);
}

/* Drain the console and the log until QEMU has exited (pidfd readable) and both are at end of
 * file (QEMU held the only writers). */
static void
drain(struct vmm *v)
{
    bool exited = false;
    for (;;) {
        struct pollfd p[3] = {{.fd = v->child.pidfd, .events = POLLIN},
                              {.fd = v->console_reader, .events = POLLIN},
                              {.fd = v->log_reader, .events = POLLIN}};
        if (exited)
            p[0].fd = -1;
        if (p[1].fd < 0 && p[2].fd < 0 && exited)
            return;
        int n = poll(p, 3, exited ? 1000 : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) /* after the exit, a descendant holding a writer cannot keep us here */
            return;
        if (p[0].revents)
            exited = true;
        if (p[1].revents && !ring_read(v, v->console_reader, &v->console)) {
            close(v->console_reader);
            v->console_reader = -1;
        }
        if (p[2].revents && !ring_read(v, v->log_reader, &v->log)) {
            close(v->log_reader);
            v->log_reader = -1;
            /* Without a pidfd (spawn.h), the end of QEMU's stderr is its exit. */
            exited = exited || v->child.pidfd < 0;
        }
    }
}

static void *
watcher(void *arg)
{
    struct vmm *v = arg;
    drain(v);
    int status = 0;
    if (spawn_wait(&v->child, &status, DEADLINE_NEVER) < 0) {
        /* Somebody else reaped it (a SIGCHLD handler with waitpid(-1)): report a kill. */
        uvm_log(UVM_LOG_WARNING, NULL, "QEMU pid %d: %s", (int)v->pid, uvm_last_error());
        status = SIGKILL;
    }
    pthread_mutex_lock(&v->lock);
    spawn_release(&v->child); /* vmm_kill checks `exited` under the lock first */
    v->exited = true;
    bool orphaned = v->orphaned;
    pthread_mutex_unlock(&v->lock);
    if (orphaned) {
        release(v);
        return NULL;
    }
    v->fn(v->opaque, v, status);
    return NULL;
}

int
vmm_spawn(const struct vmm_config *c, struct vmm **out)
{
    cleanup_close int console_reader = c->console_reader;
    int lp[2];
    if (pipe2(lp, O_CLOEXEC) < 0)
        return uvm_error_errno(-errno, "QEMU log pipe");
    cleanup_close int log_reader = lp[0], log_writer = lp[1];
    /* QEMU drops what it cannot write rather than block on a full pipe. */
    if (fcntl(log_writer, F_SETFL, O_NONBLOCK) < 0 || fcntl(log_reader, F_SETFL, O_NONBLOCK) < 0)
        return uvm_error_errno(-errno, "QEMU log pipe");
    if (console_reader >= 0 && fcntl(console_reader, F_SETFL, O_NONBLOCK) < 0)
        return uvm_error_errno(-errno, "QEMU console");
    if (c->ram_fd >= 0 && c->console_fd < 0)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "QEMU: a RAM fd needs a console fd before it");
    int fds[4] = {c->qmp_fd, c->agent_fd, c->console_fd, c->ram_fd};
    struct spawn_opts o = {
        .argv = (const char *const *)c->argv,
        .stdin_fd = -1,
        .stdout_fd = log_writer,
        .stderr_fd = log_writer,
        .fds = fds,
        .n_fds = c->ram_fd >= 0 ? 4 : c->console_fd >= 0 ? 3 : 2,
        .clone_flags = c->jail ? jail_clone_flags() : 0,
        .hook = c->jail ? jail_enter : NULL,
        .hook_arg = c->jail,
        .hook_explain = jail_explain,
    };
    struct spawned child;
    int rc = spawn(&o, &child);
    if (rc < 0)
        return rc;
    close(steal_fd(&log_writer));
    struct vmm *v = xcalloc(1, sizeof(*v));
    pthread_mutex_init(&v->lock, NULL);
    v->console_reader = steal_fd(&console_reader);
    v->log_reader = steal_fd(&log_reader);
    v->fn = c->fn;
    v->opaque = c->opaque;
    v->child = child;
    v->pid = child.pid;

    /* The watcher runs with every signal blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&v->thread, NULL, watcher, v);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        spawn_kill_reap(&v->child);
        v->child.pidfd = -1;
        release(v);
        return uvm_error_errno(-rc, "create QEMU watcher thread");
    }
    *out = v;
    return 0;
}

static void
release(struct vmm *v)
{
    if (v->child.pidfd >= 0)
        close(v->child.pidfd);
    if (v->console_reader >= 0)
        close(v->console_reader);
    if (v->log_reader >= 0)
        close(v->log_reader);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

pid_t
vmm_pid(const struct vmm *v)
{
    return v->pid;
}

int
vmm_open_fd(struct vmm *v, int qemu_fd)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)v->pid, qemu_fd);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    int err = errno;
    pthread_mutex_lock(&v->lock);
    /* Without a pidfd (spawn.h) the pid is ours until the watcher reaps it. */
    struct pollfd p = {.fd = v->exited ? -1 : v->child.pidfd, .events = POLLIN};
    bool running = !v->exited && (p.fd < 0 || poll(&p, 1, 0) == 0);
    pthread_mutex_unlock(&v->lock);
    if (!running) {
        if (fd >= 0)
            close(fd);
        return uvm_error(UVM_E_INVALID_STATE, "QEMU pid %d has exited", (int)v->pid);
    }
    if (fd < 0)
        return uvm_error_errno(-err, "open QEMU's fd %d ('%s')", qemu_fd, path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return uvm_error(UVM_E_PROTOCOL, "QEMU's fd %d ('%s') is not a regular file", qemu_fd,
                         path);
    }
    return fd;
}

int
vmm_kill(struct vmm *v, int sig)
{
    /* Under the lock: the watcher closes the pidfd under it when it marks the exit. */
    pthread_mutex_lock(&v->lock);
    int rc = v->exited ? 0 : spawn_signal(&v->child, sig);
    pthread_mutex_unlock(&v->lock);
    return rc;
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

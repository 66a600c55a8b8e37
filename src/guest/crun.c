/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "crun.h"
#include "crunlog.h"
#include "log.h"

#define MAX_ARGS 32
#define LOG_TAIL (64u * 1024) /* the end of crun's log that is read back */

struct call {
    struct call *next;
    pid_t pid;
    char *log_path;
    crun_done_fn *done;
    void *ctx;
};

static struct call *calls;

static void __attribute__((noreturn))
child_main(const char *const *argv, const int stdio[3])
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL); /* ignored by the agent; crun's children must not inherit that */
    /* crun's libraries at the same addresses every time: under TCG, QEMU then finds the code
     * it translated for the last crun (its translation cache is keyed by virtual address), a
     * dynamically linked start of ~25 instead of ~90 ms (docs/performance.md). The container's
     * processes get address space randomization back from the spec's linux.personality, which
     * crun applies before it executes them (ctrconf.c). */
    personality(PER_LINUX | ADDR_NO_RANDOMIZE);
    if (setsid() < 0)
        _exit(126);
    for (int i = 0; i < 3; i++) {
        int fd = stdio[i];
        if (fd < 0)
            fd = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
        if (fd < 0 || dup2(fd, i) < 0)
            _exit(126);
    }
    close_range(3, ~0u, 0);
    static char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(CRUN_PATH, (char *const *)argv, env);
    _exit(127);
}

int
crun_spawn(const char *const *args, const char *log_path, const int stdio[3],
           crun_done_fn *done, void *ctx)
{
    if (access(CRUN_PATH, X_OK) < 0)
        return -errno;
    const char *argv[MAX_ARGS + 8] = {"crun", "--root", CRUN_ROOT, "--log", NULL, "--log-format",
                                      "json"};
    argv[4] = log_path;
    size_t n = 7;
    for (size_t i = 0; args[i]; i++) {
        if (i >= MAX_ARGS)
            return -E2BIG;
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    unlink(log_path); /* a fresh log: what it holds is this call's */
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        child_main(argv, stdio);
    struct call *c = xcalloc(1, sizeof(*c));
    c->pid = pid;
    c->log_path = xstrdup(log_path);
    c->done = done;
    c->ctx = ctx;
    c->next = calls;
    calls = c;
    log_debug("crun %s (pid %d) started", args[0], (int)pid);
    return 0;
}

/* The last error crun logged (the end of the file only), or NULL. */
static char *
read_error(const char *path)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return NULL;
    off_t from = st.st_size > (off_t)LOG_TAIL ? st.st_size - (off_t)LOG_TAIL : 0;
    cleanup_free char *buf = xmalloc(LOG_TAIL);
    ssize_t n = pread(fd, buf, LOG_TAIL, from);
    if (n <= 0)
        return NULL;
    return crun_log_last_error(buf, (size_t)n);
}

bool
crun_reaped(struct bridge *b, pid_t pid, int status)
{
    struct call **cp = &calls;
    while (*cp && (*cp)->pid != pid)
        cp = &(*cp)->next;
    struct call *c = *cp;
    if (!c)
        return false;
    *cp = c->next;
    cleanup_free char *error = read_error(c->log_path);
    unlink(c->log_path);
    log_debug("crun (pid %d) %s%s%s", (int)pid, crun_status_text(status), error ? ": " : "",
              error ? error : "");
    c->done(b, c->ctx, status, error);
    free(c->log_path);
    free(c);
    return true;
}

int
crun_start_init(const char *id)
{
    cleanup_free char *path = xasprintf(CRUN_ROOT "/%s/exec.fifo", id);
    cleanup_close int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
        return -EINVAL;
    if (unlink(path) < 0)
        return -errno;
    const char byte = 0;
    ssize_t n;
    do
        n = write(fd, &byte, 1);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -errno;
}

int
crun_console_listen(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int
crun_console_take(int listen_fd)
{
    cleanup_close int conn = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (conn < 0)
        return -errno;
    char data[256]; /* crun sends the terminal's name along; unused */
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) < 0)
        return -errno;
    int master = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[4];
        memcpy(fds, CMSG_DATA(c), n * sizeof(int));
        for (size_t i = 0; i < n; i++) {
            if (master < 0 && n == 1)
                master = fds[i];
            else
                close(fds[i]); /* more than one: not crun's message */
        }
    }
    struct stat st;
    if (master >= 0 && (fstat(master, &st) < 0 || !S_ISCHR(st.st_mode))) {
        close(master);
        return -ENOTTY;
    }
    return master >= 0 ? master : -EAGAIN;
}

const char *
crun_status_text(int status)
{
    static char buf[64];
    if (WIFEXITED(status))
        snprintf(buf, sizeof(buf), "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, sizeof(buf), "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, sizeof(buf), "ended with wait status 0x%x", status);
    return buf;
}

bool
crun_no_pivot(void)
{
    static int cached = -1;
    if (cached < 0) {
        struct statfs sf;
        cached = statfs("/", &sf) == 0 &&
                 (sf.f_type == RAMFS_MAGIC || sf.f_type == TMPFS_MAGIC);
    }
    return cached == 1;
}

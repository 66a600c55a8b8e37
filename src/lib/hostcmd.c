/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "hostcmd.h"
#include "timeutil.h"

#define STDERR_KEEP 2048

static void
last_line(char *buf, size_t len, char *out, size_t outlen)
{
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    char *nl = strrchr(buf, '\n');
    snprintf(out, outlen, "%s", nl ? nl + 1 : buf);
}

int
hostcmd_run(const char *const *argv, unsigned timeout_ms)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return uvm_error_errno(-errno, "run '%s': pipe", argv[0]);
    cleanup_close int rd = pipefd[0];
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(pipefd[1]);
        return uvm_error_errno(e, "run '%s': fork", argv[0]);
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        execvp(argv[0], (char *const *)argv);
        static const char msg[] = "exec failed (not installed?)\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    close(pipefd[1]);

    char buf[STDERR_KEEP + 1];
    size_t len = 0;
    int64_t deadline = deadline_after_ms(timeout_ms);
    bool timed_out = false;
    for (;;) {
        struct pollfd p = {.fd = rd, .events = POLLIN};
        int n = poll(&p, 1, deadline_poll_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        char tmp[512];
        ssize_t r = read(rd, tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        /* Keep the tail of the output (a read is smaller than the buffer). */
        if (len + (size_t)r > STDERR_KEEP) {
            size_t drop = len + (size_t)r - STDERR_KEEP;
            memmove(buf, buf + drop, len - drop);
            len -= drop;
        }
        memcpy(buf + len, tmp, (size_t)r);
        len += (size_t)r;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char line[512];
    last_line(buf, len, line, sizeof(line));
    if (timed_out)
        return uvm_error(UVM_E_TIMEOUT, "'%s' did not finish within %u ms", argv[0], timeout_ms);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return uvm_error(UVM_E_HYPERVISOR, "'%s' failed with exit status %d: %s", argv[0],
                         WEXITSTATUS(status), line);
    return uvm_error(UVM_E_HYPERVISOR, "'%s' was killed by signal %d", argv[0],
                     WTERMSIG(status));
}

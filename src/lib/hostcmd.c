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
#include "spawn.h"
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
    cleanup_close int wr = pipefd[1];
    struct spawn_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = wr, .stderr_fd = wr};
    struct spawned child;
    int rc = spawn(&o, &child);
    if (rc < 0)
        return rc;
    close(steal_fd(&wr));

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
    if (timed_out) {
        spawn_kill_reap(&child);
        return uvm_error(UVM_E_TIMEOUT, "'%s' did not finish within %u ms", argv[0], timeout_ms);
    }
    /* Output closed: the command is exiting (or closed its stdout and lingers: bounded). */
    int status = 0;
    rc = spawn_reap(&child, &status, deadline);
    if (rc == UVM_E_TIMEOUT) {
        spawn_kill_reap(&child);
        return uvm_error(UVM_E_TIMEOUT, "'%s' did not finish within %u ms", argv[0], timeout_ms);
    }
    if (rc < 0)
        return uvm_error_wrap(rc, "run '%s'", argv[0]);
    char line[512];
    last_line(buf, len, line, sizeof(line));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return uvm_error(UVM_E_HYPERVISOR, "'%s' failed with exit status %d: %s", argv[0],
                         WEXITSTATUS(status), line);
    return uvm_error(UVM_E_HYPERVISOR, "'%s' was killed by signal %d", argv[0],
                     WTERMSIG(status));
}

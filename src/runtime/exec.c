/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exec: the process (the --process file, read now: the shim deletes it when exec returns; or
 * the command after the ID) travels to the holder as a memfd beside this call's stdin, stdout
 * and stderr; the holder runs it in the container and names it; a stub attaches to that name
 * (--detach: a child whose pid goes into --pid-file; otherwise this process waits as the stub
 * and exits with the process's status).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "console.h"
#include "rtconfig.h"
#include "rtfile.h"
#include "rtlog.h"
#include "rtstate.h"
#include "runtime.h"

/* The process JSON: the file's, or one made from the command line; *terminal: its
 * process.terminal. 0 or 1. */
static int
process_text(const struct rt_cmd *c, char **text, bool *terminal)
{
    if (c->process) {
        int rc = rt_read_file(AT_FDCWD, c->process, RT_CONFIG_MAX, 0, text, NULL);
        if (rc < 0)
            return rtlog_error("exec: process file '%s': %s", c->process, strerror(-rc));
    } else {
        json_t *args = json_array(), *env = json_array();
        for (size_t i = 0; i < c->nargs; i++)
            json_array_append_new(args, json_string(c->args[i]));
        json_array_append_new(env, json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                               "/usr/bin:/sbin:/bin"));
        for (size_t i = 0; i < c->nenv; i++)
            json_array_append_new(env, json_string(c->env[i]));
        json_t *p = json_pack("{s:o, s:o, s:s, s:b}", "args", args, "env", env, "cwd",
                              c->cwd ? c->cwd : "/", "terminal", c->tty);
        *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
        json_decref(p);
        if (!*text)
            return rtlog_error("exec: the command is not valid UTF-8");
    }
    char err[256];
    char *fixed = NULL;
    if (rtconfig_process(*text, terminal, &fixed, err, sizeof(err)) < 0)
        return rtlog_error("exec: %s", err);
    free(*text);
    *text = fixed;
    if (*terminal != !!c->console_socket)
        return rtlog_error(c->console_socket ? "exec: --console-socket needs a terminal "
                                               "(process.terminal or --tty)"
                                             : "exec: a terminal needs --console-socket");
    if (*terminal && !c->detach)
        return rtlog_error("exec: a terminal needs --detach");
    return 0;
}

/* A terminal's host pty: the master sent to the console socket, the slave in *tty. 0 or 1. */
static int
open_console(const struct rt_cmd *c, int *tty)
{
    int master = -1;
    char name[64];
    int rc = rt_console_new(&master, tty, name);
    if (rc == 0) {
        rc = rt_console_send(c->console_socket, master, name);
        close(master);
        if (rc < 0) {
            close(*tty);
            *tty = -1;
        }
    }
    if (rc < 0)
        return rtlog_error("exec: console socket '%s': %s", c->console_socket, strerror(-rc));
    return 0;
}

static int
as_memfd(const char *text)
{
    int fd = memfd_create("uvm-runtime-process", MFD_CLOEXEC);
    size_t n = strlen(text);
    if (fd < 0)
        return -errno;
    if (write(fd, text, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return -EIO;
    }
    return fd;
}

int
rt_exec(const struct rt_cmd *c)
{
    cleanup_free char *text = NULL;
    bool terminal = false;
    if (process_text(c, &text, &terminal))
        return 1;
    cleanup_close int mfd = as_memfd(text);
    if (mfd < 0)
        return rtlog_error("exec: memfd: %s", strerror(-mfd));
    cleanup_close int tty = -1;
    if (terminal && open_console(c, &tty))
        return 1;
    cleanup_close int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    int fds[RTMSG_EXEC_FDS] = {0, 1, 2, mfd};
    for (int i = 0; i < 3; i++) /* a closed stdio descriptor: /dev/null instead */
        if (fcntl(i, F_GETFD) < 0)
            fds[i] = null_fd;
    if (terminal) { /* our 1 and 2 are the shim's capture pipe: the process gets the pty */
        fds[0] = fds[1] = tty;
        fds[2] = null_fd;
    }
    if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0)
        return rtlog_error("exec: /dev/null: %s", strerror(errno));
    struct rtmsg *m = xmalloc(sizeof(*m));
    int rc = rt_call(c, RTMSG_EXEC, 0, 0, fds, RTMSG_EXEC_FDS, m, RT_CALL_TIMEOUT_MS);
    if (rc == -ENOTCONN)
        rc = rtlog_error("cannot exec in a container that is not running");
    cleanup_free char *name = rc == 0 ? xstrdup(m->payload) : NULL;
    free(m);
    if (rc)
        return rc;
    if (!rtmsg_name_valid(name, strlen(name)))
        return rtlog_error("exec: the holder named the process badly");
    cleanup_close int dirfd = rtstate_open(c->root, c->id);
    if (dirfd < 0)
        return rtlog_error("container %s does not exist", c->id);
    pid_t stub = 0;
    if (rt_stub_spawn(dirfd, name, c->detach, tty, &stub))
        return 1;
    rc = c->pid_file ? rt_pidfile_write(c->pid_file, stub) : 0;
    if (rc < 0)
        return rtlog_error("exec: pid file '%s': %s", c->pid_file, strerror(-rc));
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crun, the OCI runtime, as asynchronous children of the agent: a call forks and execs
 * `crun --root /run/crun --log <file> --log-format json <args...>` and returns at once; when the
 * bridge reaps it, the caller's completion runs with its exit status and the last error crun
 * logged. PID 1 never waits for crun.
 */
#ifndef GCS_CRUN_H
#define GCS_CRUN_H

#include <stdbool.h>
#include <sys/types.h>

struct bridge;

#define CRUN_PATH "/usr/bin/crun"
#define CRUN_ROOT "/run/crun"

/* status: from waitpid. error: the msg of the last "error" line of crun's log, or NULL (then
 * describe the status with crun_status_text). ctx is the caller's. */
typedef void crun_done_fn(struct bridge *b, void *ctx, int status, const char *error);

/* Start crun with args (NULL-terminated, after the global options). stdio[i] < 0: /dev/null;
 * the fds are not taken (close yours after the call). log_path: a fresh file for this call,
 * read and removed once crun has exited. 0, or -errno (nothing started; ENOENT: crun is not in
 * this root file system). */
int crun_spawn(const char *const *args, const char *log_path, const int stdio[3],
               crun_done_fn *done, void *ctx);

/* The bridge reaped pid: if it was a crun call, run its completion and return true. */
bool crun_reaped(struct bridge *b, pid_t pid, int status);

/* Let a created container's init run: what `crun start` does for a container without hooks
 * (the host drops them), in the agent itself, which saves a crun process (70-160 ms under TCG).
 * crun's (and runc's) create leaves the init holding the read end of <root>/<id>/exec.fifo;
 * start opens it for writing (no wait: the reader is there), unlinks it (crun then reports the
 * container running) and writes one byte, after which the init execs its process. 0, or -errno:
 * -ENOENT the container is not waiting (started already), -ENXIO its init is gone. */
int crun_start_init(const char *id);

/* crun's --console-socket: a listening Unix socket at path (created fresh; non-blocking,
 * close-on-exec). crun connects and sends the terminal's master with SCM_RIGHTS before it
 * exits; the connection and the message wait in the socket's queue. fd, or -errno. */
int crun_console_listen(const char *path);
/* After crun has exited: the master crun sent (close-on-exec), or -errno (-EAGAIN: crun sent
 * none). Takes nothing: the caller closes listen_fd. */
int crun_console_take(int listen_fd);

/* "exited with status 1", "was killed by signal 9" (static buffer). */
const char *crun_status_text(int status);

/* Whether the root file system cannot be pivot_root'ed away from (an initramfs: rootfs, tmpfs
 * or ramfs), so crun needs --no-pivot. Computed once. */
bool crun_no_pivot(void);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every child process of the library (QEMU, virtiofsd, ip, qemu-img) starts here.
 *
 * Children are forked by one library-owned *spawner thread* that lives as long as the process:
 * PR_SET_PDEATHSIG (tied to the forking thread, not the process) then kills a child when the
 * process dies and never earlier, whatever thread asked for it (a thread-pool caller that exits
 * does not take its daemons along). In the child, before exec: a fresh session, every signal
 * disposition reset and the mask emptied, stdio and the listed fds put in place, every other fd
 * closed (close_range), then the caller's confinement hook. The caller gets a pidfd; exec
 * failures come back as errors (-errno with the binary named), not as exit status 127.
 *
 * Thread-safe. Never holds a caller's lock; the spawner thread runs with every signal blocked.
 */
#ifndef UVM_LIB_SPAWN_H
#define UVM_LIB_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SPAWN_MAX_FDS 8

struct spawn_opts {
    /* argv[0]: an absolute path, or a name looked up in PATH by spawn() (not in the child). */
    const char *const *argv;
    /* The child's stdin/stdout/stderr; -1 is /dev/null. Borrowed. */
    int stdin_fd, stdout_fd, stderr_fd;
    /* fds[i] becomes fd 3 + i in the child (borrowed; at most SPAWN_MAX_FDS). */
    const int *fds;
    unsigned n_fds;
    /* CLONE_NEW* flags: the child starts in new namespaces (it is PID 1 with CLONE_NEWPID). */
    uint64_t clone_flags;
    /* Runs in the child after the fds are in place and before exec. Only async-signal-safe
     * calls (raw system calls on precomputed data): the child is a copy of a threaded process.
     * Returns 0 or a negative code; spawn() reports a failure with hook_explain(arg, code)
     * (owned text) or, without it, as -errno. */
    int (*hook)(void *arg);
    void *hook_arg;
    char *(*hook_explain)(void *arg, int code);
};

struct spawned {
    pid_t pid; /* -1 when none (reaped) */
    int pidfd; /* owned: closed by spawn_reap(); -1 where the kernel (or valgrind) has no
                * pidfd_open: then the pid is the handle until we reap it */
};

/* Start a child. 0 with *out filled, or a negative code with the message set (naming argv[0]).
 * On failure nothing is left running. */
int spawn(const struct spawn_opts *o, struct spawned *out);

/* Wait for the child until the deadline (timeutil.h), reap it and close its pidfd. 0 with the
 * wait status in *status; UVM_E_TIMEOUT (child still running, nothing released); any other
 * failure (ECHILD: somebody else reaped it) is an error, never taken as success. */
int spawn_reap(struct spawned *s, int *status, int64_t deadline);

/* spawn_reap in two steps, for a pidfd others may use meanwhile: wait and reap (the pidfd stays
 * open: signals to it give ESRCH, never reach another process), then close it. */
int spawn_wait(const struct spawned *s, int *status, int64_t deadline);
void spawn_release(struct spawned *s);

/* Signal the child through its pidfd (no PID reuse race). 0 also when it already exited. */
int spawn_signal(const struct spawned *s, int sig);

/* SIGKILL and reap (bounded: a child stuck in the kernel is left, logged). */
void spawn_kill_reap(struct spawned *s);

/* Resolve argv0 like execvp would, in the caller (PATH lookup). Owned string or NULL. */
char *spawn_which(const char *argv0);

#endif

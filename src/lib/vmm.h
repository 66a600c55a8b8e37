/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU process: started by spawn.h (whose spawner thread lives as long as the process, so
 * PR_SET_PDEATHSIG kills QEMU when the owning process dies, and never earlier: hcsshim #421),
 * optionally jailed (jail.h), and watched by a per-VM thread that drains its console and stderr
 * into rings, reaps it through its pidfd and reports the exit. */
#ifndef UVM_LIB_VMM_H
#define UVM_LIB_VMM_H

#include <sys/types.h>

struct vmm;

/* Called once from the watcher thread when QEMU has exited; status as from waitpid. */
typedef void (*vmm_exit_fn)(void *opaque, struct vmm *v, int status);

#define VMM_CONSOLE_RING (64u * 1024)
struct jail;
struct vmm_config {
    char *const *argv; /* argv[0] looked up in PATH */
    /* Become fds 3, 4, 5 and 6 in QEMU (borrowed; console_fd -1: none, and then no ram_fd;
     * ram_fd -1: none): argv.h's ARGV_*_FD. */
    int qmp_fd, agent_fd, console_fd, ram_fd;
    /* The other end of the console (-1: none; taken): the watcher keeps its last
     * VMM_CONSOLE_RING bytes. */
    int console_reader;
    /* Confinement (jail.h), borrowed until vmm_spawn returns; NULL: none. */
    struct jail *jail;
    vmm_exit_fn fn;
    void *opaque;
};

/* Spawn QEMU (spawn.h: a session of its own, stdin /dev/null) with its stdout and stderr into a
 * bounded ring of VMM_CONSOLE_RING bytes (QEMU drops what does not fit rather than block). */
int vmm_spawn(const struct vmm_config *c, struct vmm **out);
/* The last `lines` lines of the console / of QEMU's stderr (owned, printable, "" when none). */
char *vmm_console_tail(struct vmm *v, unsigned lines);
char *vmm_log_tail(struct vmm *v, unsigned lines);
pid_t vmm_pid(const struct vmm *v);
/* A new fd (O_RDONLY, close-on-exec) of the file QEMU has open as its fd `qemu_fd`, opened
 * through /proc/<pid>/fd while QEMU is known to run (the pidfd is checked after the open, so a
 * reused pid cannot hand us another process's file). QEMU may be the guest's by now and may
 * have put anything at that fd: the open never blocks (O_NONBLOCK: a FIFO without a writer
 * would wait forever) nor takes a terminal, and only a regular file is returned
 * (UVM_E_PROTOCOL otherwise). -errno, or UVM_E_INVALID_STATE once QEMU has exited, with the
 * message set. */
int vmm_open_fd(struct vmm *v, int qemu_fd);
/* Send a signal through the pidfd (no PID reuse race). 0 also when already exited. */
int vmm_kill(struct vmm *v, int sig);
/* SIGKILL if still running, join the watcher (after the exit callback ran), free. NULL is fine. */
void vmm_free(struct vmm *v);

#endif

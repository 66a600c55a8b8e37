/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU process: spawned and reaped by a per-VM watcher thread that lives exactly as long as
 * the process, so that PR_SET_PDEATHSIG (tied to the spawning thread) kills QEMU when the owning
 * process dies, and never earlier (hcsshim #421: no orphaned VMs). */
#ifndef UVM_LIB_VMM_H
#define UVM_LIB_VMM_H

#include <sys/types.h>

struct vmm;

/* Called once from the watcher thread when QEMU has exited; status as from waitpid. */
typedef void (*vmm_exit_fn)(void *opaque, int status);

/* Spawn argv (argv[0] looked up in PATH) with qmp_fd, agent_fd and console_fd (-1: none) as
 * fds 3, 4 and 5, stdin /dev/null, stdout+stderr appended to log_path, in a session of its own.
 * Those fds stay owned by the caller. console_reader (-1: none; taken) is the other end of the
 * console: the watcher keeps its last VMM_CONSOLE_RING bytes. */
#define VMM_CONSOLE_RING (64u * 1024)
int vmm_spawn(char *const *argv, int qmp_fd, int agent_fd, int console_fd, int console_reader,
              const char *log_path, vmm_exit_fn fn, void *opaque, struct vmm **out);
/* The last `lines` lines of the console (owned, printable, "" when none). */
char *vmm_console_tail(struct vmm *v, unsigned lines);
pid_t vmm_pid(const struct vmm *v);
/* Send a signal through the pidfd (no PID reuse race). 0 also when already exited. */
int vmm_kill(struct vmm *v, int sig);
/* SIGKILL if still running, join the watcher (after the exit callback ran), free. NULL is fine. */
void vmm_free(struct vmm *v);

#endif

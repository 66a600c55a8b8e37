/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm-runtime: what main.c shares with the verbs (one file per verb group). */
#ifndef UVM_RUNTIME_RUNTIME_H
#define UVM_RUNTIME_RUNTIME_H

#include <stdbool.h>
#include <sys/types.h>

#include "rtcli.h"
#include "rtmsg.h"

#define RT_CALL_TIMEOUT_MS 120000   /* a start, exec or kill answered by the holder */
#define RT_CREATE_TIMEOUT_MS 600000 /* boot + share + crun create (libuvm bounds each) */
#define RT_DELETE_TIMEOUT_MS 180000 /* the holder's delete: crun delete, QEMU and virtiofsd gone */

int rt_create(const struct rt_cmd *c);
int rt_exec(const struct rt_cmd *c);
int rt_start(const struct rt_cmd *c);
int rt_kill(const struct rt_cmd *c);
int rt_delete(const struct rt_cmd *c);
int rt_ps(const struct rt_cmd *c);
int rt_state(const struct rt_cmd *c);
int rt_unsupported(const struct rt_cmd *c);

/* client.c: one request to the holder of c->id and its answer (m). 0; 1 after logging the
 * failure (no container, no holder, ERR answer with its text). no_holder_ok: a missing holder
 * gives -ENOTCONN instead of an error. */
int rt_call(const struct rt_cmd *c, enum rtmsg_type type, uint16_t flags, int32_t arg,
            const int *fds, size_t nfds, struct rtmsg *m, int timeout_ms);

/* stub.c: fork a stub for process name of the holder behind dirfd; its pid in *pid. The stub
 * is attached when this returns 0. tty (-1: none): the host pty's slave of a process on a
 * terminal, which the stub makes its controlling terminal (SIGWINCH -> RESIZE). detach false:
 * this process becomes the stub (never returns on success). 0 or 1 (logged). */
int rt_stub_spawn(int dirfd, const char *name, bool detach, int tty, pid_t *pid);
/* Stop the holder of a container whose create failed half-way, and forget it. */
void rt_abandon(const struct rt_cmd *c, int dirfd);

/* delete.c: the VM's leftovers when its holder died: processes of the VM killed and reaped by
 * their parent, its runtime directory swept. */
void rt_cleanup_vm(const char *vm_id, const char *uvm_runtime_dir);

/* The UVM_RUNTIME_DIR base the library uses ($UVM_RUNTIME_DIR or /run/uvm). */
const char *rt_uvm_runtime_dir(void);

#endif

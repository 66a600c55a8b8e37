/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Processes in the guest, for the other resource kinds: bare processes (uvm_exec) and the
 * processes of containers (container.c) are the same struct uvm_process, differing only in the
 * request that starts them and the ContainerId their signal and wait requests carry.
 */
#ifndef UVM_LIB_PROCESS_H
#define UVM_LIB_PROCESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "uvm.h"

struct bridge;

/* Socket pairs for the stdio a process asks for: ours[i] go to bridge_stream_add, users[i] to
 * the caller (process_new); -1 where !want[i]. With a terminal, one socket both ways (ours[0]
 * and ours[1] two descriptors of it, users[0] the caller's end; want is then ignored). 0, or a
 * -errno error naming `what` (nothing left open). */
int process_stdio_new(const bool want[3], bool terminal, int ours[3], int users[3],
                      const char *what);

/* The "ProcessId" of an ExecuteProcess or CreateContainer answer (1..INT32_MAX), or
 * UVM_E_PROTOCOL with "<verb> '<name>': the guest agent answered without a pid". */
int process_pid_of(const json_t *resp, const char *verb, const char *name);

/* A started process: takes a VM reference, the user fds (users, from process_stdio_new with the
 * same `terminal`) and one process reference (uvm_process_close drops it). container_id
 * (copied) goes with its signal, wait and resize requests; NULL for a bare process. */
struct uvm_process *process_new(struct uvm *vm, struct bridge *b, uint32_t handle, int pid,
                                const int users[3], bool terminal, const char *container_id);
/* One more reference (uvm_process_close drops one; the last frees). */
struct uvm_process *process_ref(struct uvm_process *p);

#endif

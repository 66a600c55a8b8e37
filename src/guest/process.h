/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Processes started for the host: ExecuteProcess (with pipes or a terminal), WaitForProcess,
 * SignalProcess, ResizeConsole and the ProcessList of GetProperties, plus the exit bookkeeping
 * of reaped children.
 */
#ifndef GCS_PROCESS_H
#define GCS_PROCESS_H

#include <stdint.h>
#include <sys/types.h>

#include "bridge.h"

bridge_handler_fn process_handle_execute;
bridge_handler_fn process_handle_wait;
bridge_handler_fn process_handle_signal;
bridge_handler_fn process_handle_resize; /* ResizeConsole */
bridge_handler_fn process_handle_get_properties;

/* A child was reaped (status from waitpid). Unknown pids (orphans) are ignored. */
void process_exited(struct bridge *b, pid_t pid, int status);

/* Milliseconds until the next WaitForProcess timeout (-1: none); answer the expired ones. */
int process_next_timeout(void);
void process_expire(struct bridge *b);

#endif

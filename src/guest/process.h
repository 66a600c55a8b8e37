/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Processes started for the host: ExecuteProcess (with pipes or a terminal), WaitForProcess,
 * SignalProcess, ResizeConsole and the ProcessList of GetProperties, plus the exit bookkeeping
 * of reaped children.
 */
#ifndef GCS_PROCESS_H
#define GCS_PROCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bridge.h"

bridge_handler_fn process_handle_execute;
bridge_handler_fn process_handle_wait;
bridge_handler_fn process_handle_signal;
bridge_handler_fn process_handle_resize; /* ResizeConsole */

/* A child was reaped (status from waitpid). The status of an unknown pid (an orphan) is kept
 * for a while, in case it is adopted later (process_adopt). */
void process_exited(struct bridge *b, pid_t pid, int status);

/* Told when an adopted process has exited (exit code: status or 128 + signal), before its
 * waiters are answered. */
typedef void process_exit_fn(struct bridge *b, pid_t pid, int exit_code);

/* A process another program started (crun), from now on ours like an executed one: stdio
 * streams over fds (parent ends, taken; -1 where none) under handle, WaitForProcess,
 * SignalProcess and ProcessList. If it was already reaped as an orphan, it is marked exited
 * at once. on_exit may be NULL. */
void process_adopt(struct bridge *b, pid_t pid, uint32_t handle, const int fds[3],
                   const char *cmdline, process_exit_fn *on_exit);

/* The same for a process on a terminal whose master (taken) another program handed over (crun's
 * --console-socket): relayed over handle's streams (input from the stdin stream when `input`),
 * resizable with ResizeConsole. */
void process_adopt_tty(struct bridge *b, pid_t pid, uint32_t handle, int master, bool input,
                       const char *cmdline, process_exit_fn *on_exit);

/* 0, or request_fail when handle (non-zero) names the streams of a known process. */
int process_check_handle(struct request *req, uint32_t handle);
/* Signal a known, running process: 0, or request_fail saying why not. */
int process_signal(struct request *req, pid_t pid, int sig);
/* A known process that has not exited. */
bool process_running(pid_t pid);

/* GetProperties' ProcessList: [{"ProcessId","CommandLine"}] of the running processes. */
json_t *process_list(void);

/* Milliseconds until the next WaitForProcess timeout (-1: none); answer the expired ones. */
int process_next_timeout(void);
void process_expire(struct bridge *b);

#endif

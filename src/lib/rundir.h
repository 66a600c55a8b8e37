/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-VM runtime directory ($UVM_RUNTIME_DIR/<id>, default /run/uvm/<id>, mode 0700): it
 * holds the QMP and agent sockets, QEMU's log, and a lock file whose flock marks
 * the ID as taken by a live VM. */
#ifndef UVM_LIB_RUNDIR_H
#define UVM_LIB_RUNDIR_H

#include <stdbool.h>

struct rundir {
    char *path; /* NULL when not claimed */
    int lock_fd;
};

#define RUNDIR_DEFAULT_BASE "/run/uvm"
/* <rundir>/lock: flock held by the owner; its text is RUNDIR_LOCK_MARK "<pid>\n". */
#define RUNDIR_LOCK_NAME "lock"
#define RUNDIR_LOCK_MARK "libuvm-rundir pid="
/* <rundir>/tap-<name>: a host tap the VM's process created; the file holds its host network
 * namespace (empty: the process's). Taps of a dead process are deleted on the next claim. */
#define RUNDIR_TAP_PREFIX "tap-"

/* Create and lock the directory of id. A directory left by a dead process is cleaned and
 * reused; one held by a live VM gives UVM_E_ALREADY_EXISTS. */
int rundir_claim(const char *id, struct rundir *rd);
/* Remove the directory and its files and drop the lock. Idempotent. */
void rundir_release(struct rundir *rd);
/* Path of a file in the directory (owned). */
char *rundir_file(const struct rundir *rd, const char *name);
/* A listening (backlog 1) / connected UNIX stream socket at rundir/name; O_CLOEXEC. */
int rundir_listen(const struct rundir *rd, const char *name, int *fd);
int rundir_connect(const struct rundir *rd, const char *name, int *fd);
/* Up to `lines` last lines of rundir/name, or of an absolute path (owned, "" if unreadable). */
char *rundir_tail(const struct rundir *rd, const char *name, unsigned lines);

#endif

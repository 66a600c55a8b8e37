/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-VM runtime directory ($UVM_RUNTIME_DIR/<id>, default /run/uvm/<id>, mode 0700): it
 * holds the QMP and agent sockets, QEMU's log, the share binds, tap records, and a lock file
 * whose flock marks the ID as taken by a live VM (its text, RUNDIR_LOCK_MARK, marks the directory
 * as ours: nothing without it is ever cleaned).
 *
 * The base is resolved once per call (a relative UVM_RUNTIME_DIR against the current directory),
 * created (0711) if missing, and must be trusted: a directory owned by our euid, not group or
 * world writable, reached from / through directories owned by root or our euid that are not
 * group or world writable unless sticky (so /tmp/x is fine), without symlinks. After the claim
 * everything works on fds; `path` is the canonical path, for those who need one (socket
 * addresses, QEMU's command line). */
#ifndef UVM_LIB_RUNDIR_H
#define UVM_LIB_RUNDIR_H

#include <stdbool.h>

struct rundir {
    char *path;  /* canonical <base>/<id>; NULL when not claimed (then the fds are unused) */
    int base_fd; /* O_PATH of the base */
    int dir_fd;  /* O_RDONLY|O_DIRECTORY of the ID directory */
    int lock_fd; /* holds the flock */
    int spare_fd; /* /dev/null, closed first at release: room for the cleanup when the
                     process is at its fd limit (EMFILE) */
};

#define RUNDIR_DEFAULT_BASE "/run/uvm"
/* <rundir>/lock: flock held by the owner; its text is RUNDIR_LOCK_MARK "<pid>\n". */
#define RUNDIR_LOCK_NAME "lock"
#define RUNDIR_LOCK_MARK "libuvm-rundir pid="
/* <rundir>/tap-<name>: a host tap the VM's process created; the file holds its host network
 * namespace (empty: the process's). Deleted by the release, or by a sweep if the process died. */
#define RUNDIR_TAP_PREFIX "tap-"

/* Release the directories of dead owners in the base: for each ID directory whose lock is
 * marked as ours and free, delete its taps, detach its mounts, remove it (logged at info).
 * Directories of live owners are left alone. Call outside any VM lock (it may run `ip`).
 * Returns how many were released, or a negative code if the base is refused or unusable. */
int rundir_sweep(void);

/* Create and lock the directory of id (a single valid name). A directory left by a dead
 * process is cleaned and reused; one held by a live VM gives UVM_E_ALREADY_EXISTS (after up to
 * RUNDIR_CLAIM_WAIT_MS while the holder is not a live owner, i.e. a sweep); an untrusted base,
 * or an existing directory that is not ours, gives UVM_E_INVALID_ARGUMENT / UVM_E_ALREADY_EXISTS.
 * On failure rd is left unclaimed. */
int rundir_claim(const char *id, struct rundir *rd);
#define RUNDIR_CLAIM_WAIT_MS 5000

/* Delete the taps, detach the mounts, remove the directory and drop the lock; entries that could
 * not be removed (a mount that would not detach) stay, with the lock file, for a later sweep.
 * Idempotent, also on a never-claimed (zeroed) struct. Needs no VM lock, but nothing may use rd
 * meanwhile: under the lock, move it out (struct rundir mine = vm->rd; vm->rd.path = NULL;) and
 * release the copy after unlocking. May take seconds (`ip`). */
void rundir_release(struct rundir *rd);

/* Path of a file in the directory (owned). */
char *rundir_file(const struct rundir *rd, const char *name);
/* A listening (backlog 1) / connected UNIX stream socket at rundir/name; O_CLOEXEC. */
int rundir_listen(const struct rundir *rd, const char *name, int *fd);
int rundir_connect(const struct rundir *rd, const char *name, int *fd);
/* Up to `lines` last lines of a regular file, owned ("" if unreadable): a relative name is
 * opened beneath the directory's fd without following symlinks (rd NULL or unclaimed: ""); an
 * absolute path is opened as given. */
char *rundir_tail(const struct rundir *rd, const char *name, unsigned lines);

#endif

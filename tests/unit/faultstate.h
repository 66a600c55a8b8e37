/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the fault-injection tests check after each fault: the state of a fixture VM (fixture.h)
 * as one sorted list of words, and the open fds of the test process.
 */
#ifndef UVM_TESTS_FAULTSTATE_H
#define UVM_TESTS_FAULTSTATE_H

#include <stdbool.h>
#include <stddef.h>

#include "fixture.h"

/* What QEMU holds (fake-qemu.h: "kind:id") and what the host holds for the VM: the entries of
 * the share staging directories under rundir ("host:9p/<name>", "host:vsmb/<name>") and the
 * test process's children ("child:<comm>": the daemons the library started), sorted, joined by
 * spaces, with the names QEMU or the library numbers replaced by '*' (fd set ids, share names).
 * Owned. */
char *fault_state(struct fixture *f, const char *rundir);

/* The test process's children, "child:<comm>" sorted and joined by spaces (owned). */
char *fault_children(void);

/* The fds open in this process (/proc/self/fd). */
size_t fault_open_fds(void);

/* Fill the file system at path: blocks (a file written until ENOSPC) or inodes (empty files
 * until ENOSPC); fault_unfill removes what it made. */
void fault_fill(const char *path, bool inodes);
void fault_unfill(const char *path);

#endif

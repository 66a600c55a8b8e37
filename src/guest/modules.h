/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernel module loading. The initrd lists modules (paths relative to /lib/modules/<release>/,
 * dependencies first) in /etc/modules.boot (what the bridge needs) and /etc/modules.late (the
 * rest, loaded by a child process while the agent already serves the host).
 */
#ifndef GCS_MODULES_H
#define GCS_MODULES_H

#include <stdbool.h>
#include <sys/types.h>

#define MODULES_BOOT_LIST "/etc/modules.boot"
#define MODULES_LATE_LIST "/etc/modules.late"

/* Load every module of a list with finit_module (already loaded ones are fine).
 * Returns the number of modules that failed (each is logged), or -errno if the list cannot be
 * read (a missing list is not an error: 0). */
int modules_load_list(const char *list);

/* Fork a child that loads MODULES_LATE_LIST. Returns its pid or -errno; on failure the late
 * modules are marked done (nothing will load them). */
pid_t modules_late_start(void);

/* Called for every reaped child: true if pid was the late-modules child (now done). */
bool modules_late_reaped(pid_t pid, int status);

/* True once the late-modules child has been reaped (or could not be started). */
bool modules_late_done(void);

#endif

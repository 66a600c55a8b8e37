/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The virtiofsd process of a linux VSMB share (QEMU 7.2's C daemon, /usr/lib/qemu/virtiofsd).
 *
 * Started by the library's spawner thread (spawn.h: it never dies with a caller's thread)
 * under the seccomp filter of fsfilter.h (no setuid/setgid file, no device node, whatever the
 * guest asks), with `sandbox=namespace` (its own mount, PID and network namespaces, pivot_root
 * into the shared directory) and without the capabilities that only serve giving the guest
 * host privileges (VIRTIOFSD_MODCAPS). Its stderr is a pipe whose write end is non-blocking:
 * once the pipe is full the daemon loses lines instead of blocking, and nothing grows on /run.
 * We read the pipe for its readiness line and keep the last bytes for error messages.
 *
 * Not thread-safe: the owner serialises calls (vsmb.c: under the VM lock or while the share is
 * being added or removed).
 */
#ifndef UVM_LIB_VIRTIOFSD_H
#define UVM_LIB_VIRTIOFSD_H

#include <stdbool.h>
#include <stddef.h>

#include "spawn.h"
#include "uvm.h"

#define VIRTIOFSD "/usr/lib/qemu/virtiofsd"
/* Capabilities dropped from the daemon's default set (chown, dac_override, fowner, fsetid,
 * setgid, setuid, mknod, setfcap): mknod (device nodes), setfcap (file capabilities),
 * fsetid (keeping set-id bits on a write or a chmod by a non-member: without it the kernel
 * clears them). What stays lets guest root own and modify its files as root would. */
#define VIRTIOFSD_MODCAPS "modcaps=-mknod:-setfcap:-fsetid"
#define VIRTIOFSD_LOG_TAIL 1024 /* bytes of its output kept for messages */

struct virtiofsd {
    struct spawned proc; /* pidfd -1 when not running or reaped */
    int log_fd;          /* read end of its stderr pipe (non-blocking), -1 */
    char tail[VIRTIOFSD_LOG_TAIL + 1]; /* the last bytes it wrote, NUL-terminated */
    size_t tail_len;
};

/* A daemon that is not running. */
void virtiofsd_init(struct virtiofsd *d);

/* The daemon's command line for a share of `source` listening on `sock` (owned, argv_free). */
char **virtiofsd_argv(const struct uvm_vsmb_options *o, const char *source, const char *sock);

/* Start it and wait (bounded) until it listens on sock. 0, or an error naming host_path with
 * its last lines; on failure nothing is left running. */
int virtiofsd_start(struct virtiofsd *d, const struct uvm_vsmb_options *o, const char *source,
                    const char *sock, const char *host_path);

/* Without blocking: true when the daemon has exited (it is then reaped: *status, -1 when the
 * status could not be had). False while it runs or when it was never started. */
bool virtiofsd_exited(struct virtiofsd *d, int *status);

/* Let it exit on its own for up to grace_ms, then kill it; reap it and close its pipe. 0, or
 * an error (it could not be reaped: ECHILD) with everything released anyway. Idempotent. */
int virtiofsd_stop(struct virtiofsd *d, unsigned grace_ms);

/* Its last `lines` lines, sanitised (owned; "" when it said nothing). */
char *virtiofsd_log_tail(struct virtiofsd *d, unsigned lines);

#endif

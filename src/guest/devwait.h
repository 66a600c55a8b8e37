/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Waiting for devices without blocking the bridge loop. A wait is a condition (a check
 * function) with a deadline. The condition is checked against sysfs when the wait starts (after
 * subscribing to kernel uevents, so nothing that happens after the check is missed), then
 * against every kernel uevent that arrives, against sysfs again after lost uevents (receive
 * buffer overrun), and a last time at the deadline. The bridge polls two fds of this module: the
 * NETLINK_KOBJECT_UEVENT socket and a timerfd armed at the earliest deadline.
 *
 * Waits are checked and completed in the order they were started (VPMem relies on that).
 */
#ifndef GCS_DEVWAIT_H
#define GCS_DEVWAIT_H

#include <poll.h>
#include <stdbool.h>

struct bridge;

/* A kernel uevent; fields that were absent are NULL (action, subsystem and devpath never are). */
struct uevent {
    const char *action; /* "add", "remove", "change", "bind", ... */
    const char *subsystem;
    const char *devpath; /* "/devices/..." */
    const char *devname; /* "sdb", "pmem0" (block and char devices) */
    const char *devtype; /* "disk", "partition", "scsi_device", ... */
};

/* The wait's condition. ev is the uevent that just arrived, or NULL to look at sysfs. Returns
 * 0 to keep waiting, 1 when satisfied, or a negative code that ends the wait with it. */
typedef int devwait_check_fn(void *ctx, const struct uevent *ev);

/* The wait ended: rc is 0 (satisfied), -ETIMEDOUT, -ECANCELED (devwait_cancel) or the check's
 * error. Called once; it owns ctx from then on and may start new waits. */
typedef void devwait_done_fn(struct bridge *b, void *ctx, int rc);

/* Start a wait. The first check runs at once: when it already decides, done is called before
 * this returns. If the uevent socket cannot be opened, done gets that error. */
void devwait_start(struct bridge *b, unsigned timeout_ms, devwait_check_fn *check,
                   devwait_done_fn *done, void *ctx);

/* End the waits for which match(ctx, arg) is true: done is called with -ECANCELED. Returns how
 * many were cancelled. */
typedef bool devwait_match_fn(void *ctx, const void *arg);
unsigned devwait_cancel(struct bridge *b, devwait_check_fn *check, devwait_match_fn *match,
                        const void *arg);

/* Number of waits in progress. */
unsigned devwait_pending(void);

/* Poll integration: fill DEVWAIT_POLLFDS entries (fd -1 when unused), then hand them back. */
#define DEVWAIT_POLLFDS 2
void devwait_poll_fill(struct pollfd *pfds);
void devwait_poll_handle(struct bridge *b, const struct pollfd *pfds);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Handing host fds to QEMU over QMP (libvirt's way): QEMU opens no host path itself, the
 * library opens images and taps and passes the open files.
 *
 * Two QMP mechanisms, for two kinds of consumer:
 *   - fd sets (add-fd / remove-fd): for code that opens paths with qemu_open(), such as the
 *     block layer's file driver: "/dev/fdset/<id>" names the set, and QEMU dups the member fd
 *     whose access mode (O_RDONLY / O_RDWR) matches the open. A set lives until remove-fd; a
 *     member that a block node has dup'ed stays open in QEMU until that node goes too.
 *   - named fds (getfd / closefd): for options that take a monitor fd name, such as
 *     netdev_add tap's "fd". The command that uses the name takes the fd out of the monitor's
 *     list (QEMU 7.2 monitor_fd_param), so closefd is only for a name never used.
 *
 * fds passed in are borrowed: QEMU receives its own copy over the socket and the caller still
 * closes its own. All calls run one QMP command (qmp_execute's locking and return codes). On
 * UVM_E_TIMEOUT QEMU may or may not have taken the fd: it stays in QEMU, unnamed by us, until
 * the VM ends.
 */
#ifndef UVM_LIB_QMPFD_H
#define UVM_LIB_QMPFD_H

#include <stdint.h>

struct qmp;

/* add-fd: put a copy of fd into a new fd set. On success *fdset_id gets the set's id and
 * *qemu_fd (may be NULL) QEMU's number for its copy (usable as /proc/self/fd/<n> inside QEMU).
 * A reply without a non-negative integer "fdset-id" and "fd" is UVM_E_PROTOCOL (the set, if
 * its id was readable, is removed again). On failure *fdset_id and *qemu_fd are -1. */
int qmp_add_fd(struct qmp *q, int fd, int *fdset_id, int *qemu_fd, int64_t deadline);

/* remove-fd: remove every fd of set fdset_id (QEMU closes those no block node has dup'ed;
 * the set goes once none is in use). */
int qmp_remove_fd(struct qmp *q, int fdset_id, int64_t deadline);

/* getfd: give QEMU a copy of fd under `name` (a name already used is replaced; QEMU refuses
 * names starting with a digit). */
int qmp_getfd(struct qmp *q, int fd, const char *name, int64_t deadline);

/* closefd: close QEMU's fd named `name` (an error if no fd has that name, e.g. because a
 * command consumed it). */
int qmp_closefd(struct qmp *q, const char *name, int64_t deadline);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Typed QMP for templates: a VM's device state saved to and loaded from an fd, and QEMU's
 * version. Below template.c, beside qmpcmd.h; over qmp.h and qmpfd.h.
 *
 * QEMU runs jailed with `-sandbox ... spawn=deny` and no host path: migration goes to and from
 * an fd the library opened (QMP getfd + the URI "fd:<name>"; QEMU 7.2 has no "file:" URI).
 * Both sides turn on the capability x-ignore-shared: RAM blocks that are shared files (the
 * guest RAM of a template, the VHD root) are not copied, they are the files themselves; and
 * "events", so that the end of a migration is the MIGRATION event (status "completed", or
 * "failed": then query-migrate's "error-desc" says why).
 */
#ifndef UVM_LIB_QMPMIG_H
#define UVM_LIB_QMPMIG_H

#include <stdint.h>

struct qmp;

#define QMPM_FD_NAME "uvm-migration" /* the getfd name of the state file */

/* Save the (paused) VM's state into fd (a regular file open for writing; borrowed: QEMU gets a
 * copy) and wait until the migration has completed or the deadline. 0 or the failure with
 * QEMU's reason, e.g. "migrate: Migration is disabled when VirtFS export path ... is mounted". */
int qmpm_save(struct qmp *q, int fd, int64_t deadline);

/* Load the state from fd (open for reading; borrowed) into a QEMU started with -incoming defer
 * and wait until it has completed. The VM is then paused: `cont` runs it. A failed load ends
 * QEMU (its log says why). */
int qmpm_load(struct qmp *q, int fd, int64_t deadline);

/* QEMU's version, "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" (owned), from query-version. */
int qmpm_version(struct qmp *q, char **out, int64_t deadline);

#endif

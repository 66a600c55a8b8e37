/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The seccomp filter a file server for the guest (virtiofsd) runs under: whatever the guest
 * asks, the daemon cannot make a setuid or setgid file or a device node on the host.
 *
 * With the filter, these system calls fail with EPERM:
 *   - chmod, fchmod, fchmodat, fchmodat2 with S_ISUID or S_ISGID in the mode;
 *   - creat, and open/openat with O_CREAT or O_TMPFILE, with S_ISUID or S_ISGID in the mode;
 *   - mkdir, mkdirat with S_ISUID or S_ISGID in the mode;
 *   - mknod, mknodat of a character or block device, or with S_ISUID or S_ISGID.
 * openat2 (its mode sits in a struct a filter cannot read) and io_uring_setup (io_uring opens
 * files without system calls) fail with ENOSYS, so nothing goes around the checks. Another
 * architecture's system calls (i386 int 0x80) kill the process; x32 calls fail with ENOSYS.
 * Everything else is allowed: the daemon's own filter and capabilities do the rest.
 *
 * The program is built in the parent (fsfilter_build); the spawn hook (fsfilter_install) only
 * sets no_new_privs and loads it, both async-signal-safe.
 */
#ifndef UVM_LIB_FSFILTER_H
#define UVM_LIB_FSFILTER_H

#include <linux/filter.h>

#define FSFILTER_MAX_INSNS 128

struct fsfilter {
    struct sock_filter insns[FSFILTER_MAX_INSNS];
    unsigned short n;
};

/* Build the program. 0, or UVM_E_NOT_SUPPORTED on an architecture it does not know. */
int fsfilter_build(struct fsfilter *f);

/* The spawn hook (spawn.h): arg is a built struct fsfilter. 0 or -errno. */
int fsfilter_install(void *arg);

#endif

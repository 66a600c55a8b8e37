/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where mount_setattr(2) is missing (Linux < 5.12, valgrind): its MOUNT_ATTR_* set as the
 * mount(2) flags of a bind remount (MS_REMOUNT | MS_BIND | ...), used by jail.c and share.c. */
#ifndef UVM_LIB_MOUNTATTR_H
#define UVM_LIB_MOUNTATTR_H

#include <stdint.h>
#include <sys/mount.h>

static inline unsigned long
mountattr_remount_flags(uint64_t attr)
{
    unsigned long flags = MS_REMOUNT | MS_BIND;
    flags |= (attr & MOUNT_ATTR_RDONLY) ? MS_RDONLY : 0;
    flags |= (attr & MOUNT_ATTR_NOSUID) ? MS_NOSUID : 0;
    flags |= (attr & MOUNT_ATTR_NODEV) ? MS_NODEV : 0;
    flags |= (attr & MOUNT_ATTR_NOEXEC) ? MS_NOEXEC : 0;
    return flags;
}

#endif

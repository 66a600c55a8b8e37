/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VPMemDevice: virtio-pmem devices hot-added by the host (they cannot be unplugged in QEMU
 * 7.2). The guest cannot see the host's device number D, so the mapping D -> /dev/pmemN is made
 * here: the first Add for D claims the lowest-numbered pmem device no other D has claimed (the
 * kernel numbers them in the order they appear), waiting (uevents, 10 s) for one when there is
 * none. This is unambiguous because the host hot-adds VPMem devices one at a time, each followed
 * by its Add; "BackingSize", when sent, must match the device's size, which skips a device an
 * earlier, failed Add left unclaimed. The mapping is kept for the agent's lifetime.
 *
 * Add:    find (or wait for) the device, then mount it read-only on MountPath when given
 *         (EROFS or ext4 by superblock, with dax when possible, else without).
 * Remove: unmount and rmdir MountPath (idempotent); the device and its mapping stay.
 */
#ifndef GCS_VPMEM_H
#define GCS_VPMEM_H

#include "modify.h"

modify_fn vpmem_modify;

/* A pmem device that holds the root file system (rootfs.vhd on VPMem, see rootfs.h) is device
 * 0: the host attaches it at boot and never sends an Add for it. Claims it (logged) on the first
 * call; later calls do nothing. Called at start and before each Add. */
void vpmem_check_root(void);

#endif

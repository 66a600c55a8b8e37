/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Booting from a read-only root file system on VPMem device 0 (hcsshim's "VHD boot": the
 * kernel command line holds "root=/dev/pmem0"). The kernel still starts gcs from the initramfs;
 * gcs loads the pmem modules, waits for /dev/pmem0, mounts it read-only (EROFS or ext4, with
 * dax when possible) on /newroot, frees the initramfs and switches root to it the way busybox
 * switch_root does, then runs the image's /init (gcs again) with the same arguments plus
 * "-init-start-us N" so that GuestTimes.InitStartUs stays the first start. In the new root,
 * / is no longer a ramfs/tmpfs, so that gcs does not switch again.
 */
#ifndef GCS_ROOTFS_H
#define GCS_ROOTFS_H

#include <stdint.h>

#define ROOTFS_DEVICE "/dev/pmem0"
#define ROOTFS_MOUNT "/newroot"
#define ROOTFS_INIT "/init"
#define MODULES_PMEM_LIST "/etc/modules.pmem"

/* True when / is the initramfs (ramfs or tmpfs) and /proc/cmdline (mounted) has the
 * parameter "root=/dev/pmem0". */
bool rootfs_wanted(void);

/* Mount ROOTFS_DEVICE and exec ROOTFS_INIT in it (needs /proc; mounts devtmpfs on /dev).
 * Returns only on failure, with -errno and nothing changed but loaded modules: the caller may
 * go on from the initramfs. */
int rootfs_switch(int argc, char **argv, int64_t init_start_us);

#endif

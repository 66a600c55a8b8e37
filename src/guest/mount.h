/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mounting block devices for ModifySettings (SCSI disks, VPMem devices): the file system is
 * detected from its superblock, the mount point is created as needed, and a failure undoes
 * what was done. Errors are recorded on the request (one sentence naming the device or path
 * and the errno text).
 */
#ifndef GCS_MOUNT_H
#define GCS_MOUNT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "mountpath.h" /* mount_check_path */
#include "request.h"

enum mount_fs { MOUNT_FS_UNKNOWN, MOUNT_FS_EXT4, MOUNT_FS_EROFS, MOUNT_FS_XFS, MOUNT_FS_VFAT };

struct mount_probe {
    enum mount_fs fs;
    unsigned block_size; /* ext2/3/4 only (0 otherwise) */
};

/* Read the superblock area of a block device: ext2/3/4 (0xEF53 at 1080), EROFS (0xE0F5E1E2 at
 * 1024), XFS ("XFSB" at 0), FAT (boot signature and a FAT type string). Returns 0 (fs may be
 * MOUNT_FS_UNKNOWN) or -errno when the device cannot be read. */
int mount_probe_fd(int fd, struct mount_probe *out);

/* The kernel's file system type for fs ("ext4" for ext2/3/4), or NULL when unknown. */
const char *mount_fs_type(enum mount_fs fs);


/* What mount_mkdir created: the prefixes of path from length first (0: nothing) down to the
 * full path. Single-threaded, so once a level was created every deeper one was too. */
struct mount_created {
    char path[PATH_MAX];
    size_t first;
};

/* mkdir -p path (0755), recording in c what it created; path must end up a directory. Returns
 * 0, or a negative code with req->error set after removing what it created. */
int mount_mkdir(struct request *req, const char *path, struct mount_created *c);

/* Remove what mount_mkdir recorded, deepest first. It stops at the first directory that cannot
 * be removed (another request may have put something in a shared parent meanwhile). */
void mount_mkdir_undo(struct mount_created *c);

#define MOUNT_READ_ONLY 0x1u /* MS_RDONLY; ext4 also gets "noload" (no journal replay) */
#define MOUNT_TRY_DAX 0x2u   /* add "dax" (EROFS, ext4 with 4 KiB blocks); retry without it */

/* Mount the block device dev (fd: the device, opened for reading, to probe) on target:
 * mkdir -p target (0755), detect the file system and mount it. When target is already the
 * mount point of dev this is a success (a retried request). On failure, the directories it
 * created are removed again. Returns 0 or a negative code with req->error set. */
int mount_device(struct request *req, const char *dev, int fd, const char *target,
                 unsigned flags);

/* Unmount target and remove the directory. Idempotent: a target that is not mounted, or is
 * gone, is fine. Returns 0 or a negative code (busy mount) with req->error set. */
int mount_remove(struct request *req, const char *target);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Emptying a runtime directory (rundir.c) through its fd: delete the taps it records, detach the
 * mounts below it, delete its files. Nothing here resolves a path string from the top: every
 * step starts at the directory's fd, so a base given with a trailing slash or through a symlink
 * cannot make it miss a mount, and the delete never enters another mount (a share's host folder
 * behind a bind that could not be detached, or that appeared meanwhile).
 *
 * Needs Linux >= 5.8 (openat2, STATX_MNT_ID). Not thread-safe for one directory: the caller owns
 * it (its lock). */
#ifndef UVM_LIB_RDCLEAN_H
#define UVM_LIB_RDCLEAN_H

#include <stdint.h>

/* Deeper directories than this are left alone (a guest can build deep trees in the export). */
#define RDCLEAN_MAX_DEPTH 64

struct rdclean_stats {
    unsigned taps;   /* recorded taps deleted */
    unsigned mounts; /* mounts detached */
    unsigned left;   /* entries that could not be removed (the lock file not counted) */
};

/* Delete the taps recorded as RUNDIR_TAP_PREFIX files in dir_fd (runs `ip`, up to 10 s each).
 * vm_id (may be NULL) and path only name things in log lines. Returns how many were deleted. */
unsigned rdclean_taps(int dir_fd, const char *path, const char *vm_id);

/* Detach every mount below dir_fd, deepest first: candidates come from /proc/self/mountinfo
 * (mount points below `path`, the directory's canonical path); each is opened beneath dir_fd
 * without following symlinks and detached through that fd only if it is the root of a mount
 * other than dir_fd's. Returns how many were detached. */
unsigned rdclean_mounts(int dir_fd, const char *path, const char *vm_id);

/* Delete everything below dir_fd but its "lock" file, never entering a directory on another
 * mount than dir_fd's (skipped with a warning). Returns how many entries were left. */
unsigned rdclean_files(int dir_fd, const char *path, const char *vm_id);

/* All three, in that order; stats may be NULL. */
void rdclean_all(int dir_fd, const char *path, const char *vm_id, struct rdclean_stats *stats);

/* Tests only: called by rdclean_all between the detach and the delete (NULL: nothing). A test
 * mounts something there to play a detach that failed or a share add racing a terminate. */
extern void (*rdclean_test_after_detach)(int dir_fd, const char *path);

/* The mount id of an open file (STATX_MNT_ID); 0 when unknown. */
uint64_t rdclean_mount_id(int fd);

#endif

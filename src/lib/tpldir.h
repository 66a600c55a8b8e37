/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A template's directory and its files, opened safely (docs/security.md "Templates and
 * clones"). A template directory is operator input that may be careless: another user's,
 * world-writable, a symlink, its files swapped or altered between the save and a clone. Below
 * template.c and tplsave.c; no QEMU here.
 *
 *   - the directory is opened once (the last component never a symlink) and every file is
 *     opened beneath its fd, O_NOFOLLOW; the directory and each file must be owned by our euid
 *     and not group- or world-writable, and each file a regular file of the recorded size:
 *     nobody but us can change what a clone reads between the check and QEMU's read;
 *   - a save holds an exclusive flock on the directory from the emptiness check to the end: a
 *     second save into the same directory is refused instead of mixing the two templates'
 *     files (or removing the other's on failure);
 *   - the device state, which QEMU parses, reaches QEMU as a sealed memfd copy whose hash was
 *     checked against the manifest's: the bytes checked are the bytes QEMU reads.
 */
#ifndef UVM_LIB_TPLDIR_H
#define UVM_LIB_TPLDIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define TPLDIR_STATE_MAX (256ull << 20) /* bytes: a device state is far smaller */

/* A template directory for a clone: opened (O_DIRECTORY), owned by euid, not group/world
 * writable. *fd close-on-exec. UVM_E_NOT_FOUND, UVM_E_INVALID_ARGUMENT naming the fault. */
int tpldir_open(const char *dir, int *fd);

/* The directory of a save: created 0700 (*created set) or an existing empty one, never through
 * a symlink, owned by euid, not group/world writable, flock'ed exclusively (held by *fd until
 * it is closed). UVM_E_ALREADY_EXISTS (not empty, or another save holds it). */
int tpldir_open_save(const char *dir, int *fd, bool *created);

#define TPLDIR_ANY_SIZE UINT64_MAX

/* `name` beneath dirfd: read-only, O_NOFOLLOW, a regular file of `size` bytes (any with
 * TPLDIR_ANY_SIZE) owned by euid and not group/world writable. *st filled. `dir` names the
 * template in messages. */
int tpldir_part(int dirfd, const char *dir, const char *name, uint64_t size, int *fd,
                struct stat *st);

/* The 64-bit hash (hash.h fnv1a64) of the first `size` bytes of fd (pread: the offset is
 * untouched). -EIO when the file is shorter. */
int tpldir_hash_fd(int fd, uint64_t size, uint64_t *hash);

/* The state file `name` (tpldir_part rules, `size` bytes, at most TPLDIR_STATE_MAX) copied into
 * a memfd sealed against any change, its hash checked against `hash`, offset 0: what QEMU is
 * given to read. UVM_E_INVALID_ARGUMENT when the content differs from the manifest's. */
int tpldir_state_memfd(int dirfd, const char *dir, const char *name, uint64_t size, uint64_t hash,
                       int *fd);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "hash.h"
#include "tpldir.h"
#include "tplfile.h"

#define CHUNK (1u << 20)

/* st (of `what` in template `dir`) is owned by euid and not group/world writable. */
static int
check_owner(const struct stat *st, const char *dir, const char *what)
{
    if (st->st_uid != geteuid())
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "template '%s': %s is owned by uid %u, not by uid %u (a template "
                         "another user could write is refused)",
                         dir, what, (unsigned)st->st_uid, (unsigned)geteuid());
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "template '%s': %s is group or world writable (mode %04o)", dir, what,
                         (unsigned)(st->st_mode & 07777));
    return 0;
}

static int
check_dirfd(int fd, const char *dir)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return uvm_error_errno(-errno, "template '%s'", dir);
    return check_owner(&st, dir, "the directory");
}

int
tpldir_open(const char *dir, int *fd)
{
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0)
        return uvm_error_errno(errno == ENOENT ? UVM_E_NOT_FOUND : -errno, "template '%s'", dir);
    int rc = check_dirfd(*fd, dir);
    if (rc < 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

static int
check_empty(int fd, const char *dir)
{
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (!d) {
        if (dup >= 0)
            close(dup);
        return uvm_error_errno(-errno, "save template: read '%s'", dir);
    }
    struct dirent *de;
    bool empty = true;
    while (empty && (de = readdir(d)))
        empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    closedir(d);
    return empty ? 0
                 : uvm_error(UVM_E_ALREADY_EXISTS, "save template: '%s' exists and is not empty",
                             dir);
}

/* Lock, then check: a second save waits for nothing and finds the first's files. */
static int
claim(int fd, const char *dir, bool created)
{
    int rc = check_dirfd(fd, dir);
    if (rc < 0)
        return rc;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK
                   ? uvm_error(UVM_E_ALREADY_EXISTS,
                               "save template: another save into '%s' is in progress", dir)
                   : uvm_error_errno(-errno, "save template: lock '%s'", dir);
    return created ? 0 : check_empty(fd, dir);
}

int
tpldir_open_save(const char *dir, int *fd, bool *created)
{
    *created = false;
    if (mkdir(dir, 0700) == 0)
        *created = true;
    else if (errno != EEXIST)
        return uvm_error_errno(-errno, "save template: create '%s'", dir);
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    int rc = *fd < 0 ? uvm_error_errno(-errno, "save template: open '%s'%s", dir,
                                       errno == ELOOP || errno == ENOTDIR ? " (a symlink?)" : "")
                     : claim(*fd, dir, *created);
    if (rc < 0) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        if (*created)
            (void)rmdir(dir);
        *created = false;
    }
    return rc;
}

int
tpldir_part(int dirfd, const char *dir, const char *name, uint64_t size, int *fd, struct stat *st)
{
    *fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (*fd < 0)
        return uvm_error_errno(errno == ENOENT ? UVM_E_NOT_FOUND : -errno,
                               "template '%s': open %s%s", dir, name,
                               errno == ELOOP ? " (a symlink)" : "");
    int rc = 0;
    if (fstat(*fd, st) < 0)
        rc = uvm_error_errno(-errno, "template '%s': %s", dir, name);
    else if (!S_ISREG(st->st_mode))
        rc = uvm_error(UVM_E_INVALID_ARGUMENT, "template '%s': %s is not a regular file", dir,
                       name);
    else if (size != TPLDIR_ANY_SIZE && (uint64_t)st->st_size != size)
        rc = uvm_error(UVM_E_INVALID_ARGUMENT,
                       "template '%s': %s has %" PRIu64 " bytes, the manifest says %" PRIu64, dir,
                       name, (uint64_t)st->st_size, size);
    else
        rc = check_owner(st, dir, name);
    if (rc < 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* Read [0, size) of src, hash it, and (dst >= 0) write it to dst. */
static int
copy_hash(int src, int dst, uint64_t size, uint64_t *hash)
{
    cleanup_free uint8_t *buf = xmalloc(CHUNK);
    uint64_t h = FNV1A64_INIT;
    for (uint64_t off = 0; off < size;) {
        size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        ssize_t n = pread(src, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        h = fnv1a64(h, buf, (size_t)n);
        for (ssize_t done = 0; dst >= 0 && done < n;) {
            ssize_t w = write(dst, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return w < 0 ? -errno : -EIO;
            done += w;
        }
        off += (uint64_t)n;
    }
    *hash = h;
    return 0;
}

int
tpldir_hash_fd(int fd, uint64_t size, uint64_t *hash)
{
    return copy_hash(fd, -1, size, hash);
}

static int
seal(int fd)
{
    const int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    if (fcntl(fd, F_ADD_SEALS, seals) < 0 || lseek(fd, 0, SEEK_SET) != 0)
        return -errno;
    return 0;
}

int
tpldir_state_memfd(int dirfd, const char *dir, const char *name, uint64_t size, uint64_t hash,
                   int *fd)
{
    *fd = -1;
    if (size > TPLDIR_STATE_MAX)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "template '%s': %s of %" PRIu64 " bytes is larger than %llu", dir, name,
                         size, (unsigned long long)TPLDIR_STATE_MAX);
    cleanup_close int src = -1;
    struct stat st;
    int rc = tpldir_part(dirfd, dir, name, size, &src, &st);
    if (rc < 0)
        return rc;
    cleanup_close int mfd = memfd_create("uvm-template-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0)
        return uvm_error_errno(-errno, "template '%s': memfd for %s", dir, name);
    uint64_t have = 0;
    if ((rc = copy_hash(src, mfd, size, &have)) < 0)
        return uvm_error_errno(rc, "template '%s': read %s", dir, name);
    if (have != hash)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "template '%s': %s is not the one saved (its hash %016" PRIx64
                         " differs from the manifest's %016" PRIx64 ")",
                         dir, name, have, hash);
    if ((rc = seal(mfd)) < 0)
        return uvm_error_errno(rc, "template '%s': seal the copy of %s", dir, name);
    *fd = steal_fd(&mfd);
    return 0;
}

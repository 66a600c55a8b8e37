/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Host binds that never follow a path the guest can influence. The host directory is opened
 * once (share_resolve_dir) and everything after works on that fd; a bind goes on a fresh
 * entry of a staging directory we hold open (mkdirat: an existing entry, whoever planted it,
 * is an error), opened with O_NOFOLLOW, and the mount is attached with open_tree + move_mount
 * onto that fd: no path is resolved at mount time. The mount id is recorded; unbinding
 * detaches only a mount that still has it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"
#include "cleanup.h"
#include "error.h"
#include "mountattr.h"
#include "share.h"
#include "vm.h"

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U /* Linux 6.8 */
#endif


int
share_mount_id(int dirfd, const char *name, uint64_t *id)
{
    struct statx sx;
    int flags = AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH);
    /* A kernel without unique ids (before 6.8) answers with the reusable one: the same kind
     * every time, so comparisons stay consistent. */
    if (statx(dirfd, name, flags, STATX_MNT_ID_UNIQUE, &sx) < 0)
        return -errno;
    if (!(sx.stx_mask & (STATX_MNT_ID_UNIQUE | STATX_MNT_ID)))
        return -EOPNOTSUPP;
    *id = sx.stx_mnt_id;
    return 0;
}

/* The path the kernel has for fd (owned), or NULL with errno set. */
static char *
fd_path(int fd)
{
    char link[64], buf[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, sizeof(buf));
    if (n < 0)
        return NULL;
    if (n == sizeof(buf) || buf[0] != '/') {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return xasprintf("%.*s", (int)n, buf);
}

int
share_resolve_dir(const char *what, const char *host_path, int *fd, char **real)
{
    *fd = -1;
    *real = NULL;
    cleanup_close int d = open(host_path, O_PATH | O_CLOEXEC);
    if (d < 0 && (errno == ENOENT || errno == ENOTDIR))
        return uvm_error(UVM_E_NOT_FOUND, "%s '%s': no such directory", what, host_path);
    if (d < 0)
        return uvm_error_errno(-errno, "%s '%s'", what, host_path);
    struct stat st;
    if (fstat(d, &st) < 0)
        return uvm_error_errno(-errno, "%s '%s'", what, host_path);
    if (!S_ISDIR(st.st_mode))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s '%s': not a directory", what, host_path);
    if (st.st_nlink == 0)
        return uvm_error(UVM_E_NOT_FOUND, "%s '%s': the directory was deleted", what, host_path);
    char *p = fd_path(d);
    if (!p)
        return uvm_error_errno(-errno, "%s '%s': its canonical path", what, host_path);
    *real = p;
    *fd = steal_fd(&d);
    return 0;
}

char *
share_key(const char *host_path)
{
    cleanup_close int d = open(host_path, O_PATH | O_CLOEXEC);
    char *p = d >= 0 ? fd_path(d) : NULL;
    return p ? p : xstrdup(host_path);
}

/* mount(2) on the object behind an fd: the /proc/self/fd link resolves to exactly it. */
static int
mount_fd(int from, int onto, unsigned long flags)
{
    char src[64], dst[64];
    snprintf(src, sizeof(src), "/proc/self/fd/%d", from);
    snprintf(dst, sizeof(dst), "/proc/self/fd/%d", onto);
    return mount(from >= 0 ? src : "none", dst, "none", flags, NULL) < 0 ? -errno : 0;
}

/* Propagation of the mount whose root is fd. */
static int
set_propagation(int fd, unsigned long type)
{
    struct mount_attr ma = {.propagation = type};
    if (mount_setattr(fd, "", AT_EMPTY_PATH, &ma, sizeof(ma)) == 0)
        return 0;
    return errno == ENOSYS ? mount_fd(-1, fd, type) : -errno;
}

/* Detach the mount whose root fd is: umount2 through the fd's /proc link resolves to that very
 * mount (no name is looked up again, so nothing the guest renames can redirect it). */
static int
detach_fd(int fd)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    return umount2(link, MNT_DETACH) < 0 ? -errno : 0;
}

/* Without open_tree/move_mount/mount_setattr (Linux < 5.12, valgrind): bind through the fds'
 * /proc links, then open the new mount by name in its parent (`parent`/`name`: our own
 * staging entry), check it is a new mount, remount its flags and make it private. */
static int
attach_legacy(int from, int onto, int parent, const char *name, uint64_t attr)
{
    int rc = mount_fd(from, onto, MS_BIND);
    if (rc < 0)
        return rc;
    int mnt = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct statx a, b;
    if (mnt < 0 || statx(mnt, "", AT_EMPTY_PATH, STATX_MNT_ID, &a) < 0 ||
        statx(onto, "", AT_EMPTY_PATH, STATX_MNT_ID, &b) < 0 || a.stx_mnt_id == b.stx_mnt_id) {
        rc = mnt < 0 ? -errno : -EIO;
        if (mnt >= 0)
            close(mnt);
        return rc;
    }
    if ((rc = mount_fd(-1, mnt, mountattr_remount_flags(attr))) < 0 ||
        (rc = mount_fd(-1, mnt, MS_PRIVATE)) < 0) {
        detach_fd(mnt);
        close(mnt);
        return rc;
    }
    return mnt;
}

/* Attach a clone of `from` (not recursive) with attributes attr on the directory `onto`
 * (which is `name` in `parent`), private (it leaves the source's peer group: host mounts made
 * later below the shared directory do not follow). The new mount's fd (owned) or -errno. */
static int
attach_clone(int from, int onto, int parent, const char *name, uint64_t attr)
{
    cleanup_close int tree =
        open_tree(from, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (tree < 0 && errno == ENOSYS)
        return attach_legacy(from, onto, parent, name, attr);
    if (tree < 0)
        return -errno;
    struct mount_attr ma = {.attr_set = attr, .propagation = MS_PRIVATE};
    if (mount_setattr(tree, "", AT_EMPTY_PATH, &ma, sizeof(ma)) < 0)
        return -errno;
    if (move_mount(tree, "", onto, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return -errno;
    return steal_fd(&tree);
}


int
share_bind(int stagingfd, const char *staging, const char *name, int dirfd,
           const char *host_path, bool read_only, uint64_t *mnt_id)
{
    if (mkdirat(stagingfd, name, 0700) < 0) {
        if (errno == EEXIST)
            return uvm_error(UVM_E_ALREADY_EXISTS, "bind '%s' on '%s/%s': the entry already "
                             "exists (never reused)",
                             host_path, staging, name);
        return uvm_error_errno(-errno, "bind '%s': create '%s/%s'", host_path, staging, name);
    }
    int rc;
    cleanup_close int mnt = -1;
    cleanup_close int target =
        openat(stagingfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (target < 0) {
        rc = uvm_error_errno(-errno, "bind '%s': open '%s/%s'", host_path, staging, name);
        goto undo_dir;
    }
    uint64_t attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
    mnt = attach_clone(dirfd, target, stagingfd, name, attr);
    if (mnt < 0) {
        rc = uvm_error_errno(mnt, "bind mount '%s' on '%s/%s'%s", host_path, staging, name,
                             mnt == -EPERM ? " (sharing directories needs CAP_SYS_ADMIN)" : "");
        goto undo_dir;
    }
    uint64_t ours = 0, there = 0;
    rc = share_mount_id(mnt, "", &ours);
    if (rc == 0)
        rc = share_mount_id(stagingfd, name, &there);
    if (rc == 0 && ours == there) {
        *mnt_id = ours;
        return 0;
    }
    detach_fd(mnt);
    if (rc < 0) {
        rc = uvm_error_errno(rc, "bind '%s': mount id of '%s/%s'", host_path, staging, name);
        goto undo_dir;
    }
    /* The entry was replaced before the mount landed: ours is gone, whatever is there stays. */
    return uvm_error(UVM_E_INVALID_STATE, "bind '%s': '%s/%s' was replaced while mounting",
                     host_path, staging, name);
undo_dir:
    unlinkat(stagingfd, name, AT_REMOVEDIR);
    return rc;
}

int
share_unbind(int stagingfd, const char *staging, const char *name, uint64_t mnt_id)
{
    cleanup_close int fd = openat(stagingfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return uvm_error_errno(-errno, "unbind '%s/%s'", staging, name);
    uint64_t id = 0;
    int rc = share_mount_id(fd, "", &id);
    if (rc < 0)
        return uvm_error_errno(rc, "unbind '%s/%s': its mount id", staging, name);
    if (id != mnt_id)
        return uvm_error(UVM_E_INVALID_STATE, "unbind '%s/%s': it is not our mount any more (left "
                         "alone)",
                         staging, name);
    rc = detach_fd(fd);
    if (rc < 0)
        return uvm_error_errno(rc, "unbind '%s/%s'", staging, name);
    if (unlinkat(stagingfd, name, AT_REMOVEDIR) < 0)
        return uvm_error_errno(-errno, "unbind: remove '%s/%s'", staging, name);
    return 0;
}

/* A fresh staging directory `name` of the runtime directory (fd rundir; path for messages),
 * opened O_PATH; with `shared`, a bind mount of itself (nosuid, nodev, noexec, shared) whose
 * root is the fd. Undone on failure. */
static int
staging_create(int rundir, const char *path, const char *name, bool shared, int *fd)
{
    if (mkdirat(rundir, name, 0700) < 0)
        return uvm_error_errno(-errno, "create staging directory '%s/%s'", path, name);
    cleanup_close int dir = openat(rundir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = dir < 0 ? -errno : 0;
    if (rc == 0 && shared) {
        int mnt = attach_clone(dir, dir, rundir, name,
                               MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (mnt == -EPERM) { /* not root: no jail, no shares either (they say why) */
            uvm_log(UVM_LOG_DEBUG, NULL, "staging directory '%s/%s' stays a plain directory: %s",
                    path, name, strerror(EPERM));
            *fd = steal_fd(&dir);
            return 0;
        }
        if (mnt >= 0 && (rc = set_propagation(mnt, MS_SHARED)) < 0) {
            detach_fd(mnt);
            close(mnt);
        } else if (mnt < 0) {
            rc = mnt;
        } else {
            close(dir);
            dir = mnt;
        }
    }
    if (rc < 0) {
        unlinkat(rundir, name, AT_REMOVEDIR);
        return uvm_error_errno(rc, "prepare staging directory '%s/%s'", path, name);
    }
    *fd = steal_fd(&dir);
    return 0;
}

struct share_state *
share_state(struct uvm *vm, const struct res_kind *kind)
{
    struct share_state *st = res_kind_state(vm, kind, sizeof(*st));
    if (!st->made) {
        st->made = true;
        st->dirfd = -1;
    }
    return st;
}

int
share_prepare(struct uvm *vm, const struct res_kind *kind)
{
    const struct share_conf *conf = kind->conf;
    pthread_mutex_lock(&vm->lock); /* at create: nobody else has the VM yet */
    struct share_state *st = share_state(vm, kind);
    int rc = staging_create(vm->rd.dir_fd, vm->rd.path, conf->dir, conf->shared, &st->dirfd);
    if (rc == 0)
        st->staging = xasprintf("%s/%s", vm->rd.path, conf->dir);
    pthread_mutex_unlock(&vm->lock);
    return rc; /* a failed create releases the runtime directory: it detaches the binds made */
}

void
share_release(struct uvm *vm, void *state)
{
    (void)vm;
    struct share_state *st = state;
    if (st->dirfd >= 0)
        close(st->dirfd);
    free(st->staging);
    free(st);
}

static struct share_rec *
rec(struct res *r)
{
    return (struct share_rec *)r;
}

struct res *
share_find_name(const struct res_txn *t, const void *name)
{
    struct res *r;
    RES_FOREACH(r, t->vm, t->kind)
        if (r->state != RES_BROKEN && !strcmp(rec(r)->name, name))
            return r;
    return NULL;
}

int
share_name_take(struct uvm *vm, const struct res_kind *kind, const char *want, bool hex,
                const char *what, const char *host_path, char name[24])
{
    struct share_state *st = share_state(vm, kind);
    if (!want) {
        snprintf(name, 24, hex ? "s%llx" : "s%llu", (unsigned long long)++st->counter);
        return 0;
    }
    struct res *r;
    RES_FOREACH(r, vm, kind) /* broken ones too: QEMU may still use the name */
        if (!strcmp(rec(r)->name, want))
            return uvm_error(UVM_E_ALREADY_ATTACHED, "%s '%s': %s '%s' is in use", what,
                             host_path, hex ? "share name" : "share", want);
    snprintf(name, 24, "%s", want);
    char *end = NULL;
    unsigned long long n = name[0] == 's' && name[1] ? strtoull(name + 1, &end, hex ? 16 : 10) : 0;
    if (end && !*end && n > st->counter)
        st->counter = n;
    return 0;
}

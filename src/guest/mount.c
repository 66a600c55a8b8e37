/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "mount.h"

#define PROBE_BYTES 4096

static uint16_t
le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int
mount_probe_fd(int fd, struct mount_probe *out)
{
    uint8_t sb[PROBE_BYTES];
    ssize_t len = pread_full(fd, sb, sizeof(sb), 0);
    if (len < 0)
        return (int)len;
    memset(sb + len, 0, sizeof(sb) - (size_t)len);
    *out = (struct mount_probe){MOUNT_FS_UNKNOWN, 0};
    if (le16(sb + 1024 + 56) == 0xEF53) { /* ext2/3/4: s_magic */
        uint32_t log = le32(sb + 1024 + 24); /* s_log_block_size */
        out->fs = MOUNT_FS_EXT4;
        out->block_size = log <= 6 ? 1024u << log : 0;
    } else if (le32(sb + 1024) == 0xE0F5E1E2u) {
        out->fs = MOUNT_FS_EROFS;
    } else if (!memcmp(sb, "XFSB", 4)) {
        out->fs = MOUNT_FS_XFS;
    } else if (sb[510] == 0x55 && sb[511] == 0xAA &&
               (!memcmp(sb + 54, "FAT", 3) || !memcmp(sb + 82, "FAT32", 5))) {
        out->fs = MOUNT_FS_VFAT;
    }
    return 0;
}

const char *
mount_fs_type(enum mount_fs fs)
{
    switch (fs) {
    case MOUNT_FS_EXT4:
        return "ext4";
    case MOUNT_FS_EROFS:
        return "erofs";
    case MOUNT_FS_XFS:
        return "xfs";
    case MOUNT_FS_VFAT:
        return "vfat";
    case MOUNT_FS_UNKNOWN:
        break;
    }
    return NULL;
}

/* Length of the parent of the prefix path[0, len) (0 at the root). */
static size_t
parent_len(const char *path, size_t len)
{
    while (len > 0 && path[len - 1] != '/')
        len--;
    while (len > 1 && path[len - 1] == '/')
        len--;
    return len > 1 ? len : 0;
}

/* Remove the created prefixes of length <= len, deepest first. A failure stops it: another
 * request may have put something in a shared parent (/tmp/S0) meanwhile. */
static void
created_undo(struct mount_created *c, size_t len)
{
    while (c->first && len >= c->first) {
        c->path[len] = '\0';
        if (rmdir(c->path) < 0) {
            log_debug("rmdir %s: %s", c->path, strerror(errno));
            break;
        }
        len = parent_len(c->path, len);
    }
    c->first = 0;
}

int
mount_mkdir(struct request *req, const char *path, struct mount_created *c)
{
    size_t len = strlen(path);
    memcpy(c->path, path, len + 1);
    c->first = 0;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue; /* not the end of a component */
        c->path[i] = '\0';
        if (mkdir(c->path, 0755) == 0) {
            if (!c->first)
                c->first = i;
        } else if (errno != EEXIST) {
            int err = errno;
            request_fail(req, "mkdir %s: %s", c->path, strerror(err));
            created_undo(c, parent_len(c->path, i));
            return -err;
        }
        c->path[i] = path[i];
    }
    struct stat st;
    int err = stat(path, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    if (err) {
        request_fail(req, "mount point %s: %s", path, strerror(err));
        created_undo(c, len);
        return -err;
    }
    return 0;
}

void
mount_mkdir_undo(struct mount_created *c)
{
    created_undo(c, strlen(c->path));
}

/* true when target is the root of a mount of the block device fd. */
static bool
already_mounted(int fd, const char *target)
{
    struct stat dev, st, parent;
    if (fstat(fd, &dev) < 0 || !S_ISBLK(dev.st_mode) || stat(target, &st) < 0)
        return false;
    if (st.st_dev != dev.st_rdev)
        return false;
    cleanup_free char *up = xasprintf("%s/..", target);
    return stat(up, &parent) == 0 && parent.st_dev != st.st_dev;
}

static int
do_mount(const char *dev, const char *target, const char *type, unsigned long mflags,
         const char *data)
{
    if (mount(dev, target, type, mflags, data && *data ? data : NULL) < 0)
        return -errno;
    return 0;
}

int
mount_device(struct request *req, const char *dev, int fd, const char *target, unsigned flags)
{
    struct mount_probe probe;
    int rc = mount_probe_fd(fd, &probe);
    if (rc < 0) {
        request_fail(req, "read the superblock of %s: %s", dev, strerror(-rc));
        return rc;
    }
    const char *type = mount_fs_type(probe.fs);
    if (!type)
        return request_fail(req,
                            "%s: unknown file system (no ext2/3/4, EROFS, XFS or FAT superblock)",
                            dev);
    if (already_mounted(fd, target)) {
        log_info("%s is already mounted on %s", dev, target);
        return 0;
    }
    bool ro = flags & MOUNT_READ_ONLY;
    unsigned long mflags = ro ? MS_RDONLY : 0;
    char data[64] = "";
    if (probe.fs == MOUNT_FS_EXT4 && ro)
        snprintf(data, sizeof(data), "noload");
    bool dax = (flags & MOUNT_TRY_DAX) &&
               (probe.fs == MOUNT_FS_EROFS ||
                (probe.fs == MOUNT_FS_EXT4 && probe.block_size == 4096));

    struct mount_created *made = xcalloc(1, sizeof(*made));
    rc = mount_mkdir(req, target, made);
    if (rc < 0) {
        free(made);
        return rc;
    }
    if (dax) {
        char with_dax[80];
        snprintf(with_dax, sizeof(with_dax), "%s%sdax", data, *data ? "," : "");
        rc = do_mount(dev, target, type, mflags, with_dax);
        if (rc == 0) {
            log_debug("mounted %s (%s, %s) on %s", dev, type, with_dax, target);
            free(made);
            return 0;
        }
        log_warn("mount %s (%s, %s) on %s: %s; retrying without dax", dev, type, with_dax,
                 target, strerror(-rc));
    }
    rc = do_mount(dev, target, type, mflags, data);
    if (rc < 0) {
        created_undo(made, strlen(target));
        free(made);
        const char *hint = rc == -ENODEV ? " (the file system's module is not loaded)" : "";
        request_fail(req, "mount %s (%s%s%s%s) on %s: %s%s", dev, type, ro ? ", ro" : "",
                     *data ? ", " : "", data, target, strerror(-rc), hint);
        return rc;
    }
    log_debug("mounted %s (%s%s%s%s) on %s", dev, type, ro ? ", ro" : "", *data ? ", " : "", data,
              target);
    free(made);
    return 0;
}

int
mount_remove(struct request *req, const char *target)
{
    if (umount2(target, 0) < 0) {
        int err = errno;
        if (err == ENOENT)
            return 0; /* nothing there: already removed */
        if (err != EINVAL) { /* EINVAL: not a mount point */
            request_fail(req, "unmount %s: %s", target, strerror(err));
            return -err;
        }
        log_debug("%s is not mounted", target);
    }
    if (rmdir(target) < 0 && errno != ENOENT)
        log_warn("rmdir %s: %s (the file system is unmounted)", target, strerror(errno));
    return 0;
}

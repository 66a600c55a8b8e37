/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "log.h"
#include "modules.h"
#include "mount.h"
#include "port.h"
#include "rootfs.h"

#define ROOTFS_WAIT_MS 10000
#define CMDLINE_MAX 4096

/* true if the kernel command line has the word param (before " -- ": init's arguments). */
static bool
cmdline_has(const char *param)
{
    char buf[CMDLINE_MAX + 1];
    cleanup_close int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, CMDLINE_MAX);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *save = NULL;
    for (char *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
        if (!strcmp(w, "--"))
            break;
        if (!strcmp(w, param))
            return true;
    }
    return false;
}

bool
rootfs_wanted(void)
{
    struct statfs sf;
    if (statfs("/", &sf) < 0)
        return false;
    if (sf.f_type != RAMFS_MAGIC && sf.f_type != TMPFS_MAGIC)
        return false;
    return cmdline_has("root=" ROOTFS_DEVICE);
}

/* Drain the uevent socket: any event is a reason to look again. */
static void
uevents_drain(int ufd)
{
    char buf[8192];
    for (;;) {
        ssize_t n = recv(ufd, buf, sizeof(buf), 0);
        if (n >= 0 || errno == EINTR || errno == ENOBUFS)
            continue;
        return;
    }
}

/* Open dev for reading once it exists: checked now, after every uevent and at the deadline. */
static int
wait_device(int ufd, const char *dev, int timeout_ms)
{
    int64_t deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        int fd = open(dev, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno != ENOENT && errno != ENXIO && errno != ENODEV)
            return -errno;
        int64_t left = deadline - monotonic_ms();
        if (left < 0 || ufd < 0)
            return ufd < 0 ? -ENOENT : -ETIMEDOUT;
        struct pollfd pfd = {.fd = ufd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            return -errno;
        uevents_drain(ufd);
    }
}

/* Mount the device read-only on target: with dax first when the file system can use it. */
static int
mount_root(const char *dev, int fd, const char *target)
{
    struct mount_probe probe;
    int rc = mount_probe_fd(fd, &probe);
    if (rc < 0) {
        log_error("root: read the superblock of %s: %s", dev, strerror(-rc));
        return rc;
    }
    if (probe.fs != MOUNT_FS_EROFS && probe.fs != MOUNT_FS_EXT4) {
        log_error("root: %s holds no EROFS or ext4 file system", dev);
        return -EINVAL;
    }
    const char *type = mount_fs_type(probe.fs);
    const char *data = probe.fs == MOUNT_FS_EXT4 ? "noload" : NULL;
    const char *with_dax = probe.fs == MOUNT_FS_EXT4 ? "noload,dax" : "dax";
    if (probe.fs == MOUNT_FS_EROFS || probe.block_size == 4096) {
        if (mount(dev, target, type, MS_RDONLY, with_dax) == 0) {
            log_debug("root: mounted %s (%s, ro, %s) on %s", dev, type, with_dax, target);
            return 0;
        }
        log_warn("root: mount %s (%s, ro, %s) on %s: %s; retrying without dax", dev, type,
                 with_dax, target, strerror(errno));
    }
    if (mount(dev, target, type, MS_RDONLY, data) < 0) {
        rc = -errno;
        log_error("root: mount %s (%s, ro) on %s: %s", dev, type, target, strerror(errno));
        return rc;
    }
    log_debug("root: mounted %s (%s, ro) on %s", dev, type, target);
    return 0;
}

/* Remove the initramfs' files (its memory is freed), as busybox switch_root does: the
 * contents of the directory dirfd, staying on device dev (skips /newroot and other mounts).
 * Consumes dirfd. Failures are ignored: this only frees memory. */
static void
delete_contents(int dirfd, dev_t dev)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                continue;
            struct stat sst;
            if (fstat(sub, &sst) < 0 || sst.st_dev != dev) { /* a mount point */
                close(sub);
                continue;
            }
            delete_contents(sub, dev);
            (void)unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
        } else {
            (void)unlinkat(dirfd, de->d_name, 0);
        }
    }
    closedir(d);
}

/* argv plus "-init-start-us N" (an earlier one is dropped). */
static char **
next_argv(int argc, char **argv, int64_t init_start_us)
{
    char **out = xcalloc((size_t)argc + 3, sizeof(*out));
    int n = 0;
    out[n++] = (char *)ROOTFS_INIT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-');
        if (!strcmp(a, "-init-start-us") && i + 1 < argc) {
            i++;
            continue;
        }
        out[n++] = argv[i];
    }
    out[n++] = (char *)"-init-start-us";
    out[n++] = xasprintf("%lld", (long long)init_start_us);
    out[n] = NULL;
    return out;
}

/* Load the modules, wait for the device and mount it on ROOTFS_MOUNT. */
static int
mount_new_root(void)
{
    int ufd = port_watch_open(); /* before the modules: no uevent is missed */
    if (ufd < 0)
        log_warn("root: uevent socket: %s; %s must already exist", strerror(-ufd),
                 ROOTFS_DEVICE);
    int failed = modules_load_list(MODULES_BOOT_LIST);
    if (failed == 0)
        failed = modules_load_list(MODULES_PMEM_LIST);
    if (failed != 0)
        log_error("root: modules for %s: %d failed", ROOTFS_DEVICE, failed);

    int rc = wait_device(ufd, ROOTFS_DEVICE, ROOTFS_WAIT_MS);
    if (ufd >= 0)
        close(ufd);
    if (rc < 0) {
        log_error("root: %s: %s", ROOTFS_DEVICE,
                  rc == -ETIMEDOUT ? "did not appear within 10 s" : strerror(-rc));
        return rc;
    }
    cleanup_close int fd = rc;
    if (mkdir(ROOTFS_MOUNT, 0755) < 0 && errno != EEXIST)
        log_warn("root: mkdir %s: %s", ROOTFS_MOUNT, strerror(errno));
    rc = mount_root(ROOTFS_DEVICE, fd, ROOTFS_MOUNT);
    if (rc < 0)
        return rc;
    if (access(ROOTFS_MOUNT ROOTFS_INIT, X_OK) < 0) {
        rc = -errno;
        log_error("root: %s%s: %s", ROOTFS_MOUNT, ROOTFS_INIT, strerror(-rc));
        umount2(ROOTFS_MOUNT, MNT_DETACH);
        return rc;
    }
    return 0;
}

int
rootfs_switch(int argc, char **argv, int64_t init_start_us)
{
    int64_t start_ms = monotonic_ms();
    bool dev_mounted = mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") == 0;
    if (!dev_mounted)
        log_error("root: mount devtmpfs on /dev: %s", strerror(errno));
    log_open_kmsg();
    int rc = mount_new_root();
    if (rc < 0) {
        if (dev_mounted)
            umount2("/dev", MNT_DETACH); /* the caller mounts it again */
        return rc;
    }
    log_info("root: %s mounted in %lld ms; switching root", ROOTFS_DEVICE,
             (long long)(monotonic_ms() - start_ms));

    /* The point of no return. The new root's gcs mounts /proc, /dev, ... afresh. */
    umount2("/dev", MNT_DETACH);
    umount2("/proc", MNT_DETACH);
    int rootfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat root;
    if (rootfd >= 0 && fstat(rootfd, &root) == 0)
        delete_contents(rootfd, root.st_dev); /* consumes rootfd */
    else if (rootfd >= 0)
        close(rootfd);
    if (chdir(ROOTFS_MOUNT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
        chdir("/") < 0) {
        rc = -errno;
        log_error("root: switch to %s: %s", ROOTFS_MOUNT, strerror(-rc));
        return rc;
    }
    char **nargv = next_argv(argc, argv, init_start_us);
    execv(ROOTFS_INIT, nargv);
    rc = -errno;
    log_error("root: exec %s: %s", ROOTFS_INIT, strerror(-rc));
    return rc;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "hostcmd.h"
#include "rundir.h"
#include "sanitize.h"

#define TAIL_BYTES 8192

static const char *
base_dir(void)
{
    const char *b = getenv("UVM_RUNTIME_DIR");
    return b && *b ? b : RUNDIR_DEFAULT_BASE;
}

static int
mkdir_parents(const char *path)
{
    cleanup_free char *tmp = xstrdup(path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Detach every mount below path (the share bind mounts of plan9.c and vsmb.c), deepest first:
 * after a crash of the process that made them they are still there. */
static void
unmount_below(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return;
    size_t plen = strlen(path), n = 0, cap = 0;
    char **points = NULL, line[8192];
    while (fgets(line, sizeof(line), f)) {
        char raw[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", raw) != 1)
            continue;
        char mnt[4096], *o = mnt; /* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo */
        for (const char *r = raw; *r && o < mnt + sizeof(mnt) - 1; r++) {
            if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                r[3] >= '0' && r[3] <= '7') {
                *o++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                r += 3;
            } else {
                *o++ = *r;
            }
        }
        *o = '\0';
        if (strncmp(mnt, path, plen) || mnt[plen] != '/')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            points = xrealloc(points, cap * sizeof(*points));
        }
        points[n++] = xstrdup(mnt);
    }
    fclose(f);
    /* mountinfo lists parents before children: undo in reverse */
    while (n--) {
        umount2(points[n], MNT_DETACH);
        free(points[n]);
    }
    free(points);
}

/* Remove everything below dirfd but the lock file, never crossing into another file system
 * (a mount that could not be detached keeps the host directory behind it safe). */
static void
clean_at(int fd, dev_t dev, bool top)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            (top && !strcmp(e->d_name, "lock")))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev)
                continue;
            int sub =
                openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                clean_at(sub, dev, false);
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        } else {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
}

/* Delete the taps recorded by a process that died (RUNDIR_TAP_PREFIX). */
static void
delete_stale_taps(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t pl = strlen(RUNDIR_TAP_PREFIX);
        if (strncmp(e->d_name, RUNDIR_TAP_PREFIX, pl) || strlen(e->d_name + pl) >= 16)
            continue;
        const char *tap = e->d_name + pl;
        char ns[80] = "";
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            ssize_t n = read(fd, ns, sizeof(ns) - 1);
            ns[n > 0 ? n : 0] = '\0';
            close(fd);
        }
        const char *argv[] = {"ip", "-n", ns, "link", "del", "dev", tap, NULL};
        if (hostcmd_run(*ns ? argv : (const char *[]){"ip", "link", "del", "dev", tap, NULL},
                        10000) == 0)
            uvm_log(UVM_LOG_INFO, NULL, "deleted tap %s left by a process that died", tap);
    }
    closedir(d);
}

static void
clean_dir(const char *path)
{
    delete_stale_taps(path);
    unmount_below(path);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return;
    }
    clean_at(fd, st.st_dev, true);
}

int
rundir_claim(const char *id, struct rundir *rd)
{
    rd->path = NULL;
    rd->lock_fd = -1;
    const char *base = base_dir();
    int rc = mkdir_parents(base);
    if (rc < 0)
        return uvm_error_errno(rc, "create runtime directory '%s'", base);
    cleanup_free char *path = xasprintf("%s/%s", base, id);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return uvm_error_errno(-errno, "create runtime directory '%s'", path);
    cleanup_free char *lock = xasprintf("%s/lock", path);
    cleanup_close int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return uvm_error_errno(-errno, "open '%s'", lock);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return uvm_error(UVM_E_ALREADY_EXISTS,
                             "utility VM '%s' already exists (runtime directory '%s' is held by a "
                             "live VM)",
                             id, path);
        return uvm_error_errno(-errno, "lock '%s'", lock);
    }
    /* The directory may have been removed between our mkdir and the lock by its last owner. */
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_nlink == 0)
        return uvm_error(UVM_E_ALREADY_EXISTS, "utility VM '%s' is being torn down; retry", id);
    chmod(path, 0700);
    clean_dir(path); /* leftovers of a process that died */
    rd->path = steal_ptr(&path);
    rd->lock_fd = steal_fd(&fd);
    return 0;
}

void
rundir_release(struct rundir *rd)
{
    if (!rd->path)
        return;
    clean_dir(rd->path);
    cleanup_free char *lock = xasprintf("%s/lock", rd->path);
    unlink(lock);
    rmdir(rd->path);
    if (rd->lock_fd >= 0)
        close(rd->lock_fd);
    rd->lock_fd = -1;
    free(rd->path);
    rd->path = NULL;
}

char *
rundir_file(const struct rundir *rd, const char *name)
{
    return xasprintf("%s/%s", rd->path, name);
}

static int
sock_addr(const struct rundir *rd, const char *name, struct sockaddr_un *sa)
{
    cleanup_free char *p = rundir_file(rd, name);
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(p) >= sizeof(sa->sun_path))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "socket path '%s' is longer than %zu bytes; use a shorter "
                         "UVM_RUNTIME_DIR",
                         p, sizeof(sa->sun_path) - 1);
    strcpy(sa->sun_path, p);
    return 0;
}

/* A UNIX stream socket at rundir/name: bound and listening, or connected. */
static int
unix_socket(const struct rundir *rd, const char *name, bool listening, int *out)
{
    struct sockaddr_un sa;
    int rc = sock_addr(rd, name, &sa);
    if (rc < 0)
        return rc;
    cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uvm_error_errno(-errno, "socket for '%s'", sa.sun_path);
    if (listening) {
        unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
            return uvm_error_errno(-errno, "listen on '%s'", sa.sun_path);
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        return uvm_error_errno(-errno, "connect to '%s'", sa.sun_path);
    }
    *out = steal_fd(&fd);
    return 0;
}

int
rundir_listen(const struct rundir *rd, const char *name, int *out)
{
    return unix_socket(rd, name, true, out);
}

int
rundir_connect(const struct rundir *rd, const char *name, int *out)
{
    return unix_socket(rd, name, false, out);
}

char *
rundir_tail(const struct rundir *rd, const char *name, unsigned lines)
{
    cleanup_free char *p = name[0] == '/' || !rd->path ? xstrdup(name) : rundir_file(rd, name);
    cleanup_close int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return xstrdup("");
    off_t off = st.st_size > TAIL_BYTES ? st.st_size - TAIL_BYTES : 0;
    char buf[TAIL_BYTES + 1];
    ssize_t n = pread(fd, buf, TAIL_BYTES, off);
    if (n <= 0)
        return xstrdup("");
    buf[n] = '\0';
    size_t len = sanitize_text(buf, sizeof(buf), buf, (size_t)n, SANITIZE_NEWLINES); /* guest's */
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    unsigned seen = 0;
    char *start = buf;
    for (size_t i = len; i > 0; i--) {
        if (buf[i - 1] == '\n' && ++seen == lines) {
            start = buf + i;
            break;
        }
    }
    return xstrdup(start);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Emptying a runtime directory without ever reaching a share's host folder (see rdclean.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "hostcmd.h"
#include "rdclean.h"
#include "rundir.h"

#define TAP_TIMEOUT_MS 10000
#define IFNAME_MAX 15 /* IFNAMSIZ - 1 */
#define NETNS_MAX 255

void (*rdclean_test_after_detach)(int dir_fd, const char *path);

/* Without openat2 (Linux < 5.6, valgrind): component by component, no "..", no symlink
 * followed (O_NOFOLLOW at every step); RESOLVE_NO_XDEV is left to the callers' mount-id
 * checks, which they make anyway. */
static int
walk_beneath(int dirfd, const char *name, int flags)
{
    int cur = -1;
    for (const char *p = name; *p;) {
        size_t len = strcspn(p, "/");
        const char *next = p + len + strspn(p + len, "/");
        char comp[256];
        if (len == 0 || len >= sizeof(comp) || (len == 1 && p[0] == '.') ||
            (len == 2 && p[0] == '.' && p[1] == '.')) {
            if (cur >= 0)
                close(cur);
            errno = EXDEV;
            return -1;
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        bool last = *next == '\0';
        int fd = openat(cur >= 0 ? cur : dirfd, comp,
                        (last ? flags : O_PATH | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        if (cur >= 0)
            close(cur);
        errno = err;
        if (fd < 0 || last)
            return fd;
        cur = fd;
        p = next;
    }
    if (cur >= 0)
        close(cur);
    errno = ENOENT;
    return -1;
}

/* glibc 2.36 has no wrapper. */
static int
openat2_beneath(int dirfd, const char *name, int flags, uint64_t resolve)
{
    struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC | O_NOFOLLOW,
                           .resolve = resolve | RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
    return fd < 0 && errno == ENOSYS ? walk_beneath(dirfd, name, flags) : fd;
}

uint64_t
rdclean_mount_id(int fd)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) < 0 ||
        !(sx.stx_mask & STATX_MNT_ID))
        return 0;
    return sx.stx_mnt_id;
}

/* ---- taps ---- */

/* An interface or namespace name we hand to `ip`: no option look-alike, no path. */
static bool
safe_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] == '-' || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && !strchr("._-", s[i]))
            return false;
    return true;
}

/* The host namespace recorded in a tap file ("" = ours); false if unreadable or odd. */
static bool
tap_netns(int dir_fd, const char *file, char ns[NETNS_MAX + 1])
{
    cleanup_close int fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    ssize_t n = read(fd, ns, NETNS_MAX);
    if (n < 0)
        return false;
    ns[n] = '\0';
    ns[strcspn(ns, "\n")] = '\0';
    return !*ns || safe_name(ns, NETNS_MAX);
}

unsigned
rdclean_taps(int dir_fd, const char *path, const char *vm_id)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    unsigned deleted = 0;
    const size_t pl = strlen(RUNDIR_TAP_PREFIX);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *tap = e->d_name + pl;
        if (strncmp(e->d_name, RUNDIR_TAP_PREFIX, pl))
            continue;
        char ns[NETNS_MAX + 1];
        if (!safe_name(tap, IFNAME_MAX) || !tap_netns(dirfd(d), e->d_name, ns)) {
            uvm_log(UVM_LOG_WARNING, vm_id, "runtime directory '%s': ignoring odd tap record '%s'",
                    path, e->d_name);
            continue;
        }
        const char *in_ns[] = {"ip", "-n", ns, "link", "del", "dev", tap, NULL};
        const char *here[] = {"ip", "link", "del", "dev", tap, NULL};
        if (hostcmd_run(*ns ? in_ns : here, TAP_TIMEOUT_MS) == 0) {
            deleted++;
            uvm_log(UVM_LOG_INFO, vm_id, "deleted tap %s%s%s left in '%s'", tap,
                    *ns ? " in namespace " : "", ns, path);
        } else {
            uvm_log(UVM_LOG_WARNING, vm_id, "tap %s left in '%s': %s", tap, path,
                    uvm_last_error());
        }
    }
    closedir(d);
    return deleted;
}

/* ---- mounts ---- */

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo: undo it in place. */
static void
unescape_octal(char *s)
{
    char *o = s;
    for (const char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *o++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *o++ = *r;
        }
    }
    *o = '\0';
}

/* The mount point of a mountinfo line (5th field, unescaped in place), or NULL. */
static char *
mount_point(char *line)
{
    char *save = NULL, *f = strtok_r(line, " ", &save);
    for (int i = 1; f && i < 5; i++)
        f = strtok_r(NULL, " ", &save);
    if (f)
        unescape_octal(f);
    return f;
}

struct point {
    char *rel; /* relative to the runtime directory */
    size_t order;
};

/* Deepest first; of mounts stacked on one point, the later (upper) one first. */
static int
point_cmp(const void *a, const void *b)
{
    const struct point *x = a, *y = b;
    size_t lx = strlen(x->rel), ly = strlen(y->rel);
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x->order > y->order ? -1 : x->order < y->order;
}

/* Mount points strictly below path, relative to it. */
static struct point *
points_below(const char *path, size_t *count)
{
    *count = 0;
    cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return NULL;
    struct point *v = NULL;
    size_t n = 0, cap = 0, plen = strlen(path), len = 0;
    cleanup_free char *line = NULL;
    while (getline(&line, &len, f) > 0) {
        const char *mp = mount_point(line);
        if (!mp || strncmp(mp, path, plen) || mp[plen] != '/' || !mp[plen + 1])
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n] = (struct point){.rel = xstrdup(mp + plen + 1), .order = n};
        n++;
    }
    if (n)
        qsort(v, n, sizeof(*v), point_cmp);
    *count = n;
    return v;
}

/* Detach the mount on rel if it is one below dir_fd: the fd we opened beneath the directory is
 * what we unmount (/proc/self/fd/N), never a path looked up again. */
static bool
detach_point(int dir_fd, uint64_t dir_mnt, const char *path, const char *rel, const char *vm_id)
{
    cleanup_close int fd = openat2_beneath(dir_fd, rel, O_PATH, 0);
    struct statx sx;
    if (fd < 0 || statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0)
        return false; /* gone, or hidden by a mount above it that goes later */
    if (!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) || !(sx.stx_mask & STATX_MNT_ID) ||
        sx.stx_mnt_id == dir_mnt)
        return false;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (umount2(proc, MNT_DETACH) < 0) {
        uvm_log(UVM_LOG_WARNING, vm_id, "could not detach the mount on '%s/%s': %s", path, rel,
                strerror(errno));
        return false;
    }
    uvm_log(UVM_LOG_DEBUG, vm_id, "detached the mount on '%s/%s'", path, rel);
    return true;
}

unsigned
rdclean_mounts(int dir_fd, const char *path, const char *vm_id)
{
    uint64_t dir_mnt = rdclean_mount_id(dir_fd);
    size_t n = 0;
    struct point *v = points_below(path, &n);
    unsigned detached = 0;
    for (size_t i = 0; i < n; i++) {
        if (dir_mnt && detach_point(dir_fd, dir_mnt, path, v[i].rel, vm_id))
            detached++;
        free(v[i].rel);
    }
    free(v);
    return detached;
}

/* ---- files ---- */

static unsigned delete_below(int fd, uint64_t mnt, const char *path, unsigned depth,
                             const char *vm_id);

/* Delete directory `name` in parent and what it holds, if it is on mount mnt. Returns how many
 * entries were left (1 + its leftovers when it stays). */
static unsigned
delete_dir(int parent, const char *name, uint64_t mnt, const char *path, unsigned depth,
           const char *vm_id)
{
    cleanup_free char *sub = xasprintf("%s/%s", path, name);
    if (depth >= RDCLEAN_MAX_DEPTH) {
        uvm_log(UVM_LOG_WARNING, vm_id, "'%s' is nested too deep: left alone", sub);
        return 1;
    }
    int fd = openat2_beneath(parent, name, O_RDONLY | O_DIRECTORY, RESOLVE_NO_XDEV);
    if (fd < 0 && errno == ENOENT)
        return 0;
    /* Out of fds (a process at its limit closing a VM): an empty directory goes without being
     * opened (rmdir follows nothing; a mount point is EBUSY, a full one ENOTEMPTY). */
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && unlinkat(parent, name, AT_REMOVEDIR) == 0)
        return 0;
    if (fd < 0) {
        uvm_log(UVM_LOG_WARNING, vm_id, "'%s' %s: left alone", sub,
                errno == EXDEV ? "is a mount point that was not detached" : strerror(errno));
        return 1;
    }
    if (rdclean_mount_id(fd) != mnt) { /* RESOLVE_NO_XDEV said otherwise: never enter */
        close(fd);
        uvm_log(UVM_LOG_WARNING, vm_id, "'%s' is on another mount: left alone", sub);
        return 1;
    }
    unsigned left = delete_below(fd, mnt, sub, depth + 1, vm_id);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0) {
        if (errno == EBUSY)
            uvm_log(UVM_LOG_WARNING, vm_id, "'%s' became a mount point: left alone", sub);
        left++;
    }
    return left;
}

/* Delete the entries of fd (consumed); depth 0 is the runtime directory, whose lock stays. */
static unsigned
delete_below(int fd, uint64_t mnt, const char *path, unsigned depth, const char *vm_id)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 1;
    }
    unsigned left = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") ||
            (depth == 0 && !strcmp(name, RUNDIR_LOCK_NAME)))
            continue;
        unsigned char type = e->d_type;
        struct stat st;
        if (type == DT_UNKNOWN && fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        if (type == DT_DIR)
            left += delete_dir(dirfd(d), name, mnt, path, depth, vm_id);
        else if (unlinkat(dirfd(d), name, 0) < 0 && errno != ENOENT)
            left++; /* EISDIR: it was a directory after all; EBUSY: a file bind mount */
    }
    closedir(d);
    return left;
}

unsigned
rdclean_files(int dir_fd, const char *path, const char *vm_id)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint64_t mnt = fd < 0 ? 0 : rdclean_mount_id(fd);
    if (!mnt) {
        if (fd >= 0)
            close(fd);
        uvm_log(UVM_LOG_WARNING, vm_id, "'%s': no mount id (Linux < 5.8?): files left", path);
        return 1;
    }
    return delete_below(fd, mnt, path, 0, vm_id);
}

void
rdclean_all(int dir_fd, const char *path, const char *vm_id, struct rdclean_stats *stats)
{
    struct rdclean_stats s = {0};
    s.taps = rdclean_taps(dir_fd, path, vm_id);
    s.mounts = rdclean_mounts(dir_fd, path, vm_id);
    if (rdclean_test_after_detach)
        rdclean_test_after_detach(dir_fd, path);
    s.left = rdclean_files(dir_fd, path, vm_id);
    if (stats)
        *stats = s;
}

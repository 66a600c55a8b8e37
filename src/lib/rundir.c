/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The runtime directory: a trusted base, one locked directory per VM, a sweep for the
 * directories of processes that died (rundir.h). The clean-up itself is rdclean.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "rdclean.h"
#include "rundir.h"
#include "sanitize.h"

#define TAIL_BYTES 8192
#define CLAIM_POLL_MS 20
#define CLAIM_ATTEMPTS 4 /* the directory was removed under us by its last owner: start again */

/* ---- the base ---- */

/* UVM_RUNTIME_DIR (or the default) made absolute against the current directory. */
static int
base_absolute(char **out)
{
    const char *b = getenv("UVM_RUNTIME_DIR");
    if (!b || !*b)
        b = RUNDIR_DEFAULT_BASE;
    if (b[0] == '/') {
        *out = xstrdup(b);
        return 0;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return uvm_error_errno(-errno, "runtime directory '%s' is relative and the current "
                                       "directory is unknown", b);
    *out = xasprintf("%s/%s", cwd, b);
    return 0;
}

/* realpath of the longest existing prefix of abs, plus the missing components (no "..": we
 * could not know where it leads). */
static int
base_canonical(const char *abs, char **out)
{
    cleanup_free char *head = xstrdup(abs);
    cleanup_free char *tail = xstrdup("");
    char buf[PATH_MAX];
    while (!realpath(head, buf)) {
        if (errno != ENOENT)
            return uvm_error_errno(-errno, "runtime directory '%s'", abs);
        char *slash = strrchr(head, '/');
        const char *comp = slash + 1;
        if (!strcmp(comp, ".."))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "runtime directory '%s': '..' after a directory that does not exist",
                             abs);
        if (*comp && strcmp(comp, ".")) {
            char *t = xasprintf("/%s%s", comp, tail);
            free(tail);
            tail = t;
        }
        slash[slash == head ? 1 : 0] = '\0';
    }
    *out = xasprintf("%s%s", strcmp(buf, "/") ? buf : "", tail);
    if (!**out || !strcmp(*out, "/"))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "runtime directory '%s': cannot be /", abs);
    return 0;
}

/* The base must be ours and closed to others; an ancestor may be root's, and world-writable
 * only if sticky. len: the length of the prefix of base that fd is. */
static int
check_dir(int fd, const char *base, size_t len, bool is_base)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return uvm_error_errno(-errno, "runtime directory '%s': stat '%.*s'", base, (int)len,
                               base);
    const char *what = is_base ? "it" : "its parent";
    const unsigned mode = st.st_mode & 07777;
    uid_t me = geteuid();
    if (st.st_uid != me && (is_base || st.st_uid != 0))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "runtime directory '%s': %s '%.*s' is owned by uid %u (not %s%u)", base,
                         what, (int)len, base, (unsigned)st.st_uid, is_base ? "" : "root or ",
                         (unsigned)me);
    if ((mode & 022) && (is_base || !(mode & S_ISVTX)))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "runtime directory '%s': %s '%.*s' is group- or world-writable (mode "
                         "%04o)%s",
                         base, what, (int)len, base, mode, is_base ? "" : " and not sticky");
    return 0;
}

/* Walk the canonical base from / without following anything, creating what is missing (0711),
 * checking each directory; the fd of the last one (O_PATH) is the base. */
static int
base_walk(const char *canon, int *out)
{
    cleanup_close int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return uvm_error_errno(-errno, "runtime directory '%s': open /", canon);
    int rc = check_dir(fd, canon, 1, false);
    cleanup_free char *copy = xstrdup(canon);
    char *save = NULL, *next = strtok_r(copy, "/", &save);
    while (rc == 0 && next) {
        char *comp = next;
        next = strtok_r(NULL, "/", &save);
        const size_t len = (size_t)(comp - copy) + strlen(comp);
        const int flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        int sub = openat(fd, comp, flags);
        if (sub < 0 && errno == ENOENT) {
            if (mkdirat(fd, comp, 0711) < 0 && errno != EEXIST)
                return uvm_error_errno(-errno, "create runtime directory '%.*s'", (int)len,
                                       canon);
            sub = openat(fd, comp, flags);
        }
        if (sub < 0 && (errno == ENOTDIR || errno == ELOOP))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "runtime directory '%s': '%.*s' is a symlink or not a directory",
                             canon, (int)len, canon);
        if (sub < 0)
            return uvm_error_errno(-errno, "runtime directory '%s': open '%.*s'", canon,
                                   (int)len, canon);
        close(fd);
        fd = sub;
        rc = check_dir(fd, canon, len, next == NULL);
    }
    if (rc == 0)
        *out = steal_fd(&fd);
    return rc;
}

/* The base, trusted: its canonical path and an O_PATH fd. */
static int
base_open(char **path, int *fd)
{
    cleanup_free char *abs = NULL, *canon = NULL;
    int rc = base_absolute(&abs);
    if (rc == 0)
        rc = base_canonical(abs, &canon);
    if (rc == 0)
        rc = base_walk(canon, fd);
    if (rc == 0)
        *path = steal_ptr(&canon);
    return rc;
}

/* ---- ID directories and their lock ---- */

/* Open base/<name>: a directory of ours, on the base's mount (not a mount point). */
static int
id_open(int base_fd, const char *name, const char *path, int *out)
{
    cleanup_close int fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ENOTDIR || errno == ELOOP))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "runtime directory '%s' is a symlink or a file",
                         path);
    if (fd < 0)
        return uvm_error_errno(-errno, "open runtime directory '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return uvm_error_errno(-errno, "runtime directory '%s'", path);
    if (st.st_uid != geteuid())
        return uvm_error(UVM_E_INVALID_ARGUMENT, "runtime directory '%s' is owned by uid %u",
                         path, (unsigned)st.st_uid);
    uint64_t mnt = rdclean_mount_id(fd);
    if (!mnt || mnt != rdclean_mount_id(base_fd))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "runtime directory '%s' is a mount point (or its mount id is unknown)",
                         path);
    *out = steal_fd(&fd);
    return 0;
}

/* Who the lock file says made the directory: a pid, 0 if empty (being created), -1 if the text
 * is not ours. */
static pid_t
lock_owner(int lock_fd)
{
    char buf[64];
    ssize_t n = pread(lock_fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return n == 0 ? 0 : -1;
    buf[n] = '\0';
    const size_t ml = strlen(RUNDIR_LOCK_MARK);
    char *end = NULL;
    long pid = strncmp(buf, RUNDIR_LOCK_MARK, ml) ? -1 : strtol(buf + ml, &end, 10);
    return pid > 0 && pid <= INT_MAX && end && *end == '\n' ? (pid_t)pid : -1;
}

/* Our mark, written over the old one, then cut: at no point is the file without a mark. */
static int
lock_mark(int lock_fd, const char *path)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), RUNDIR_LOCK_MARK "%d\n", (int)getpid());
    if (pwrite(lock_fd, buf, (size_t)n, 0) != n || ftruncate(lock_fd, n) < 0)
        return uvm_error_errno(-errno, "write '%s/" RUNDIR_LOCK_NAME "'", path);
    return 0;
}

static bool
pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* flock, waiting while the holder is not a live owner (a sweep, or a claim being made). */
static int
lock_wait(int lock_fd, const char *id, const char *path)
{
    for (unsigned waited = 0;; waited += CLAIM_POLL_MS) {
        if (flock(lock_fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK)
            return uvm_error_errno(-errno, "lock '%s/" RUNDIR_LOCK_NAME "'", path);
        pid_t owner = lock_owner(lock_fd);
        if ((owner > 0 && pid_alive(owner)) || owner < 0 || waited >= RUNDIR_CLAIM_WAIT_MS)
            return uvm_error(UVM_E_ALREADY_EXISTS,
                             "utility VM '%s' already exists (runtime directory '%s' is held "
                             "by a live VM)",
                             id, path);
        usleep(CLAIM_POLL_MS * 1000);
    }
}

/* Only the lock file in it? 1 yes, 0 no, or -errno when it cannot be read (e.g. EMFILE). */
static int
only_lock(int dir_fd)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return -err;
    }
    int only = 1;
    struct dirent *e;
    while (only && (e = readdir(d)))
        only = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
               !strcmp(e->d_name, RUNDIR_LOCK_NAME);
    closedir(d);
    return only;
}

/* The lock file, created if missing (*created says so). */
static int
lock_open(int dir_fd, bool *created)
{
    const int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
    *created = true;
    int fd = openat(dir_fd, RUNDIR_LOCK_NAME, flags | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        *created = false;
        fd = openat(dir_fd, RUNDIR_LOCK_NAME, flags);
    }
    return fd;
}

/* Take the lock and mark it ours; -EAGAIN: the directory was removed meanwhile. A directory
 * whose lock file is not ours, or that holds files but no mark, is refused. */
static int
lock_take(int dir_fd, const char *id, const char *path, int *out)
{
    bool created;
    cleanup_close int fd = lock_open(dir_fd, &created);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return uvm_error_errno(-errno, "open '%s/" RUNDIR_LOCK_NAME "'", path);
    if (S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
        int rc = lock_wait(fd, id, path);
        if (rc < 0)
            return rc;
        if (fstat(fd, &st) == 0 && st.st_nlink == 0)
            return -EAGAIN;
        pid_t owner = lock_owner(fd);
        int only = owner == 0 ? only_lock(dir_fd) : 0;
        if (only < 0) {
            if (created)
                unlinkat(dir_fd, RUNDIR_LOCK_NAME, 0);
            return uvm_error_errno(only, "read runtime directory '%s'", path);
        }
        if (owner > 0 || only) {
            if (owner > 0)
                uvm_log(UVM_LOG_INFO, id, "reusing runtime directory '%s' left by pid %d", path,
                        (int)owner);
            if ((rc = lock_mark(fd, path)) == 0)
                *out = steal_fd(&fd);
            else if (created) /* e.g. ENOSPC: leave no empty lock behind */
                unlinkat(dir_fd, RUNDIR_LOCK_NAME, 0);
            return rc;
        }
    }
    if (created)
        unlinkat(dir_fd, RUNDIR_LOCK_NAME, 0);
    return uvm_error(UVM_E_ALREADY_EXISTS,
                     "runtime directory '%s' exists but was not made by libuvm (its lock file "
                     "has no '%s' record); remove it, or use another ID or UVM_RUNTIME_DIR",
                     path, RUNDIR_LOCK_MARK);
}

static int
claim_once(int base_fd, const char *id, const char *path, struct rundir *rd)
{
    bool made = mkdirat(base_fd, id, 0700) == 0;
    if (!made && errno != EEXIST)
        return uvm_error_errno(-errno, "create runtime directory '%s'", path);
    cleanup_close int dir_fd = -1, lock_fd = -1;
    int rc = id_open(base_fd, id, path, &dir_fd);
    if (rc == 0)
        rc = lock_take(dir_fd, id, path, &lock_fd);
    if (rc == 0 && fchmod(dir_fd, 0700) < 0)
        rc = uvm_error_errno(-errno, "chmod runtime directory '%s'", path);
    if (rc < 0 && made && rc != -EAGAIN) { /* a failed claim leaves no directory it made */
        if (lock_fd >= 0)
            unlinkat(dir_fd, RUNDIR_LOCK_NAME, 0);
        unlinkat(base_fd, id, AT_REMOVEDIR); /* only if empty */
    }
    if (rc < 0)
        return rc;
    struct rdclean_stats st;
    rdclean_all(dir_fd, path, id, &st); /* leftovers of a process that died */
    rd->dir_fd = steal_fd(&dir_fd);
    rd->lock_fd = steal_fd(&lock_fd);
    return 0;
}

int
rundir_claim(const char *id, struct rundir *rd)
{
    *rd = (struct rundir){.path = NULL, .base_fd = -1, .dir_fd = -1, .lock_fd = -1};
    if (!*id || strchr(id, '/') || id[0] == '.')
        return uvm_error(UVM_E_INVALID_ARGUMENT, "runtime directory for '%s': not a valid name",
                         id);
    cleanup_free char *base = NULL;
    cleanup_close int base_fd = -1;
    int rc = base_open(&base, &base_fd);
    if (rc < 0)
        return rc;
    cleanup_close int spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (spare < 0)
        return uvm_error_errno(-errno, "runtime directory for '%s': reserve an fd", id);
    cleanup_free char *path = xasprintf("%s/%s", base, id);
    for (unsigned i = 0; i < CLAIM_ATTEMPTS; i++)
        if ((rc = claim_once(base_fd, id, path, rd)) != -EAGAIN)
            break;
    if (rc == -EAGAIN)
        rc = uvm_error(UVM_E_ALREADY_EXISTS, "utility VM '%s' is being torn down; retry", id);
    if (rc < 0)
        return rc;
    rd->base_fd = steal_fd(&base_fd);
    rd->spare_fd = steal_fd(&spare);
    rd->path = steal_ptr(&path);
    return 0;
}

/* ---- release and sweep ---- */

/* Empty the directory (taps, mounts, files), then remove its lock and itself; with leftovers
 * the lock file stays, so that the next sweep tries again once the lock is free. */
static void
dir_remove(int base_fd, int dir_fd, const char *path, struct rdclean_stats *st)
{
    const char *name = strrchr(path, '/') + 1;
    rdclean_all(dir_fd, path, name, st);
    if (st->left) {
        uvm_log(UVM_LOG_WARNING, name,
                "runtime directory '%s': %u entries could not be removed; kept with its lock "
                "for a later sweep",
                path, st->left);
        return;
    }
    if (unlinkat(dir_fd, RUNDIR_LOCK_NAME, 0) < 0 && errno != ENOENT)
        uvm_log(UVM_LOG_WARNING, name, "remove '%s/" RUNDIR_LOCK_NAME "': %s", path,
                strerror(errno));
    /* ENOTEMPTY: a new claim of this ID is already using it. */
    else if (unlinkat(base_fd, name, AT_REMOVEDIR) < 0 && errno != ENOTEMPTY)
        uvm_log(UVM_LOG_WARNING, name, "remove runtime directory '%s': %s", path,
                strerror(errno));
}

void
rundir_release(struct rundir *rd)
{
    char *path = __atomic_exchange_n(&rd->path, NULL, __ATOMIC_ACQ_REL);
    if (!path)
        return;
    close(rd->spare_fd); /* room to read the mount table and walk the directory */
    struct rdclean_stats st;
    dir_remove(rd->base_fd, rd->dir_fd, path, &st);
    close(rd->dir_fd);
    close(rd->base_fd);
    close(rd->lock_fd); /* last: the ID is free once the directory is gone */
    rd->dir_fd = rd->base_fd = rd->lock_fd = rd->spare_fd = -1;
    free(path);
}

/* Release base/<name> if it is ours and its owner is dead; 1 if it was. */
static int
sweep_one(int base_fd, const char *base, const char *name)
{
    cleanup_free char *path = xasprintf("%s/%s", base, name);
    cleanup_close int dir_fd = -1;
    if (id_open(base_fd, name, path, &dir_fd) < 0) {
        uvm_log(UVM_LOG_DEBUG, NULL, "sweep: skipped: %s", uvm_last_error());
        return 0;
    }
    cleanup_close int lock_fd =
        openat(dir_fd, RUNDIR_LOCK_NAME, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (lock_fd < 0 || fstat(lock_fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid())
        return 0;
    pid_t owner = lock_owner(lock_fd); /* the mark comes after the flock: no mark, no sweep */
    if (owner <= 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0)
        return 0;
    if (fstat(lock_fd, &st) < 0 || st.st_nlink == 0)
        return 0; /* released meanwhile */
    struct rdclean_stats s;
    dir_remove(base_fd, dir_fd, path, &s);
    uvm_log(UVM_LOG_INFO, name,
            "swept runtime directory '%s' of pid %d, which died: %u taps deleted, %u mounts "
            "detached, %u entries left",
            path, (int)owner, s.taps, s.mounts, s.left);
    return 1;
}

int
rundir_sweep(void)
{
    cleanup_free char *base = NULL;
    cleanup_close int base_fd = -1;
    int rc = base_open(&base, &base_fd);
    if (rc < 0)
        return rc;
    int fd = openat(base_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        rc = uvm_error_errno(-errno, "read runtime directory '%s'", base);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int swept = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN))
            swept += sweep_one(base_fd, base, e->d_name);
    closedir(d);
    return swept;
}

/* ---- files and sockets in the directory ---- */

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
    if (!rd->path)
        return uvm_error(UVM_E_INVALID_STATE, "socket '%s': no runtime directory", name);
    struct sockaddr_un sa;
    int rc = sock_addr(rd, name, &sa);
    if (rc < 0)
        return rc;
    cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uvm_error_errno(-errno, "socket for '%s'", sa.sun_path);
    if (listening) {
        unlinkat(rd->dir_fd, name, 0);
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

/* A file for rundir_tail: beneath the directory, no symlink, or an absolute path as given. */
static int
tail_open(const struct rundir *rd, const char *name)
{
    const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    if (name[0] == '/')
        return open(name, flags);
    if (!rd || !rd->path)
        return -1;
    struct open_how how = {.flags = flags | O_NOFOLLOW,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, rd->dir_fd, name, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS && !strchr(name, '/')) /* no openat2: one component */
        fd = openat(rd->dir_fd, name, flags | O_NOFOLLOW);
    return fd;
}

char *
rundir_tail(const struct rundir *rd, const char *name, unsigned lines)
{
    cleanup_close int fd = tail_open(rd, name);
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

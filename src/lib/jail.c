/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "fsfilter.h"
#include "jail.h"
#include "mountattr.h"

#define JAIL_MAX_OPS 96
#define OLD_ROOT ".oldroot"

enum op_kind {
    OP_MKDIR,   /* a = path */
    OP_MKFILE,  /* a = path: an empty mount point for a file bind */
    OP_SYMLINK, /* a = target, b = path */
    OP_TMPFS,   /* a = mount point */
    OP_BIND,    /* a = source, b = target, attr = mount_setattr flags, rec */
    OP_PROC,    /* a = mount point */
    OP_PIVOT,   /* a = new root */
    OP_ROOT_RO, /* the new root read-only */
};

struct op {
    enum op_kind kind;
    char *a, *b;
    uint64_t attr;
    bool rec;
};

struct jail {
    struct op ops[JAIL_MAX_OPS];
    unsigned n;
    char *root;
    struct fsfilter filter; /* no set-id files, no device nodes (the 9p server is QEMU) */
};

uint64_t
jail_clone_flags(void)
{
    return CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
}

static void
push(struct jail *j, enum op_kind kind, char *a, char *b, uint64_t attr, bool rec)
{
    if (j->n == JAIL_MAX_OPS) { /* callers stay far below; a bug, not an input */
        free(a);
        free(b);
        abort();
    }
    j->ops[j->n++] = (struct op){kind, a, b, attr, rec};
}

/* Directories of `path` (absolute) inside the new root, parents first. */
static void
push_parents(struct jail *j, const char *path)
{
    for (const char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        char *dir = xasprintf("%s%.*s", j->root, (int)(p - path), path);
        bool dup = false;
        for (unsigned i = 0; i < j->n && !dup; i++)
            dup = j->ops[i].kind == OP_MKDIR && !strcmp(j->ops[i].a, dir);
        if (dup)
            free(dir);
        else
            push(j, OP_MKDIR, dir, NULL, 0, false);
    }
}

/* Expose host `path` read-only at the same place in the jail. */
static int
expose(struct jail *j, const char *path, uint64_t attr, bool rec)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return uvm_error_errno(-errno, "QEMU jail: expose '%s'", path);
    push_parents(j, path);
    char *target = xasprintf("%s%s", j->root, path);
    push(j, S_ISDIR(st.st_mode) ? OP_MKDIR : OP_MKFILE, xstrdup(target), NULL, 0, false);
    push(j, OP_BIND, xstrdup(path), target, attr, rec);
    return 0;
}

/* /bin, /lib, ...: the same symlink (merged /usr) or a read-only bind. */
static int
expose_top(struct jail *j, const char *name)
{
    struct stat st;
    if (lstat(name, &st) < 0)
        return 0;
    if (S_ISLNK(st.st_mode)) {
        char target[256];
        ssize_t n = readlink(name, target, sizeof(target) - 1);
        if (n <= 0)
            return 0;
        target[n] = '\0';
        push(j, OP_SYMLINK, xstrdup(target), xasprintf("%s%s", j->root, name), 0, false);
        return 0;
    }
    return S_ISDIR(st.st_mode) ? expose(j, name, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                     MOUNT_ATTR_NODEV, true)
                               : 0;
}

static bool
under_usr(const char *p)
{
    return !strncmp(p, "/usr/", 5);
}

struct jail *
jail_prepare(const char *mountpoint, const char *rundir, const char *const *files, bool kvm,
             const char *writable_dir)
{
    const uint64_t ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    struct jail *j = xcalloc(1, sizeof(*j));
    j->root = xstrdup(mountpoint);
    int rc = fsfilter_build(&j->filter);
    if (rc < 0) {
        jail_free(j);
        return NULL;
    }
    push(j, OP_TMPFS, xstrdup(j->root), NULL, 0, false);
    rc = expose(j, "/usr", ro, true);
    static const char *const tops[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
    for (size_t i = 0; rc == 0 && i < sizeof(tops) / sizeof(tops[0]); i++)
        rc = expose_top(j, tops[i]);
    if (rc == 0 && access("/etc/ld.so.cache", R_OK) == 0)
        rc = expose(j, "/etc/ld.so.cache", ro, false);
    static const char *const devs[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                       "/dev/urandom"};
    for (size_t i = 0; rc == 0 && i < sizeof(devs) / sizeof(devs[0]); i++)
        rc = expose(j, devs[i], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false);
    if (rc == 0 && kvm)
        rc = expose(j, "/dev/kvm", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false);
    for (size_t i = 0; rc == 0 && files && files[i]; i++)
        if (!under_usr(files[i]))
            rc = expose(j, files[i], ro, false);
    if (rc == 0)
        rc = expose(j, rundir, ro | MOUNT_ATTR_NOEXEC, false);
    if (rc == 0) {
        /* The 9p export, read-only at its root. The library made it a shared mount; after
         * OP_TMPFS's MS_REC|MS_SLAVE our copy, and so this bind of it, is its slave: the share
         * binds made later in the host namespace propagate in. */
        cleanup_free char *p9 = xasprintf("%s/9p", rundir);
        push(j, OP_BIND, xstrdup(p9), xasprintf("%s%s", j->root, p9), ro | MOUNT_ATTR_NOEXEC,
             false);
        if (writable_dir)
            push(j, OP_BIND, xstrdup(writable_dir), xasprintf("%s%s", j->root, writable_dir),
                 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, false);
        push(j, OP_MKDIR, xasprintf("%s/proc", j->root), NULL, 0, false);
        push(j, OP_PROC, xasprintf("%s/proc", j->root), NULL, 0, false);
        push(j, OP_MKDIR, xasprintf("%s/" OLD_ROOT, j->root), NULL, 0, false);
        push(j, OP_PIVOT, xstrdup(j->root), NULL, 0, false);
        push(j, OP_ROOT_RO, NULL, NULL, 0, false);
    }
    if (rc < 0) {
        jail_free(j);
        return NULL;
    }
    return j;
}

void
jail_free(struct jail *j)
{
    if (!j)
        return;
    for (unsigned i = 0; i < j->n; i++) {
        free(j->ops[i].a);
        free(j->ops[i].b);
    }
    free(j->root);
    free(j);
}

/* --- in the child: system calls only -------------------------------------------------------- */

static int
setattr(const char *path, uint64_t attr, bool rec)
{
    struct mount_attr ma = {.attr_set = attr};
    int r = mount_setattr(AT_FDCWD, path, rec ? AT_RECURSIVE : 0, &ma, sizeof(ma));
    if (r == 0 || errno != ENOSYS)
        return r;
    /* No mount_setattr (Linux < 5.12, valgrind): a bind remount, of the top mount only. */
    return mount("none", path, "none", mountattr_remount_flags(attr), NULL);
}

static int
run_op(const struct op *o)
{
    switch (o->kind) {
    case OP_MKDIR:
        return mkdir(o->a, 0755) < 0 && errno != EEXIST ? -1 : 0;
    case OP_MKFILE: {
        int fd = open(o->a, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        return fd < 0 ? -1 : close(fd);
    }
    case OP_SYMLINK:
        return symlink(o->a, o->b);
    case OP_TMPFS:
        /* Everything we made private to us and receiving, never sending, propagation. */
        if (mount("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0)
            return -1;
        return mount("uvm-jail", o->a, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     "mode=0755,size=1m,nr_inodes=256");
    case OP_BIND:
        if (mount(o->a, o->b, "none", MS_BIND | (o->rec ? MS_REC : 0), NULL) < 0)
            return -1;
        return setattr(o->b, o->attr, o->rec);
    case OP_PROC:
        return mount("proc", o->a, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2");
    case OP_PIVOT:
        if (chdir(o->a) < 0 || syscall(SYS_pivot_root, ".", OLD_ROOT) < 0 || chdir("/") < 0)
            return -1;
        if (umount2("/" OLD_ROOT, MNT_DETACH) < 0)
            return -1;
        return rmdir("/" OLD_ROOT);
    case OP_ROOT_RO:
        return setattr("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false);
    }
    errno = EINVAL;
    return -1;
}

/* Give up every capability for good: uid 0 stays, its powers do not (not even at exec). */
static int
drop_caps(void)
{
    if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NOROOT |
                                     SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) < 0)
        return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return -1;
    for (int cap = 0; cap < 64; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return -1;
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capset, &h, d) < 0)
        return -1;
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

int
jail_enter(void *arg)
{
    const struct jail *j = arg;
    for (unsigned i = 0; i < j->n; i++)
        if (run_op(&j->ops[i]) < 0)
            return -(int)(((i + 1) << 12) | (unsigned)(errno & 0xfff));
    if (drop_caps() < 0)
        return -(int)((unsigned)(j->n + 1) << 12 | (unsigned)(errno & 0xfff));
    int rc = fsfilter_install((void *)&j->filter);
    if (rc < 0)
        return -(int)((unsigned)(j->n + 2) << 12 | (unsigned)(-rc & 0xfff));
    return 0;
}

static const char *const op_names[] = {
    [OP_MKDIR] = "create directory",
    [OP_MKFILE] = "create mount point",
    [OP_SYMLINK] = "create link",
    [OP_TMPFS] = "mount its root tmpfs on",
    [OP_BIND] = "bind",
    [OP_PROC] = "mount /proc on",
    [OP_PIVOT] = "pivot_root into",
    [OP_ROOT_RO] = "make its root read-only",
};

char *
jail_explain(void *arg, int code)
{
    const struct jail *j = arg;
    unsigned v = (unsigned)-code, step = v >> 12;
    int err = (int)(v & 0xfff);
    if (step >= 1 && step <= j->n) {
        const struct op *o = &j->ops[step - 1];
        return xasprintf("QEMU jail: %s %s%s%s: %s", op_names[o->kind], o->a ? o->a : "",
                         o->b ? " on " : "", o->b ? o->b : "", strerror(err));
    }
    if (step == j->n + 1)
        return xasprintf("QEMU jail: drop capabilities: %s", strerror(err));
    if (step == j->n + 2)
        return xasprintf("QEMU jail: load the file-mode seccomp filter: %s", strerror(err));
    return xasprintf("QEMU jail: %s", strerror(err));
}

bool
jail_supported(void)
{
    const char *e = getenv("UVM_JAIL");
    if (e && !strcmp(e, "0"))
        return false;
    return geteuid() == 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Isolation attacks against real VMs (issue 10), made the way a hostile guest (root in the VM,
 * running a shell) or a careless operator would make them:
 *   guest-attacks (one VM): QEMU confinement with a root-owned 0600 disk and a share still
 *     working; symlinks planted in the 9p export for the next share names; 32 MiB written into
 *     the export root; setuid-root files and device nodes made in writable shares; a VSMB share
 *     added from a thread that then exits;
 *   operator (a VM each): UVM_RUNTIME_DIR with a trailing slash or through a symlink, QEMU
 *     SIGKILLed with shares mounted, a runtime that exits without closing;
 *   post-close: process handles used after their VM was closed (also run under valgrind:
 *     `test-hostile post-close`).
 * Everything the test makes on the host lives in one temporary folder; the teardowns detach any
 * mount left below it before deleting it, so a failed attack never costs data. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

#define VM_ID "hostile"
#define DEAD_ID "hostile-dead"

static char top[64];    /* the test's host folder: victims, shares, runtime bases, images */
static struct uvm *vm;  /* the guest-attacks VM */
static struct uvm *own; /* an operator test's own VM (closed by the teardown) */
static char hns[32];    /* a host network namespace made by a test (deleted by the teardown) */

/* What a guest-attacks test added to vm, undone by its teardown even when an assertion failed. */
enum kind { PLAN9, VSMB, SCSI };
static struct {
    enum kind kind;
    char path[PATH_MAX];
} added[8];
static size_t n_added;
static const char *guest_undo; /* a guest shell command the teardown runs */

/* "$roots": the guest's mount points of a 9p export root (mountinfo root field "/"), found the
 * way an attacker would look for them. */
#define ROOTS_SH                                                                                   \
    "roots=$(awk '{for (i = 7; i <= NF; i++) if ($i == \"-\") { if ($(i + 1) == \"9p\" && "        \
    "$4 == \"/\") print $5; break }}' /proc/self/mountinfo); "

static void
record(enum kind kind, const char *path)
{
    assert_true(n_added < sizeof(added) / sizeof(added[0]));
    added[n_added].kind = kind;
    snprintf(added[n_added].path, sizeof(added[n_added].path), "%s", path);
    n_added++;
}

static void
add_plan9(const char *host, const char *guest, bool read_only)
{
    if (uvm_add_plan9(vm, host, guest, read_only) < 0)
        fail_msg("add plan9 '%s' at '%s': %s", host, guest, uvm_last_error());
    record(PLAN9, host);
}

/* A writable VSMB share (virtio-fs on linux); returns its guest path (caller frees). */
static char *
add_vsmb(const char *host)
{
    if (uvm_add_vsmb(vm, host, NULL, NULL) < 0)
        fail_msg("add vsmb '%s': %s", host, uvm_last_error());
    record(VSMB, host);
    char *path = NULL;
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, host, &path), 0);
    return path;
}

/* Run cmd with sh -c in v as root: its exit code; *out (may be NULL; caller frees) gets stdout
 * followed by stderr. */
static int
guest_sh(struct uvm *v, const char *cmd, char **out)
{
    struct itest_run r;
    const char *argv[] = {"sh", "-c", cmd, NULL};
    if (itest_run(v, argv, NULL, &r) < 0)
        fail_msg("exec '%s': %s", cmd, uvm_last_error());
    if (out) {
        size_t n = strlen(r.out);
        *out = realloc(r.out, n + strlen(r.err) + 1);
        strcpy(*out + n, r.err);
    } else {
        free(r.out);
    }
    free(r.err);
    return r.exit_code;
}

/* cmd must exit 0 in the guest and print exactly want. */
static void
guest_expect(struct uvm *v, const char *cmd, const char *want)
{
    char *out = NULL;
    int code = guest_sh(v, cmd, &out);
    if (code != 0 || strcmp(out, want))
        fail_msg("guest '%s' exited %d with [%s], expected 0 with [%s]", cmd, code, out, want);
    free(out);
}

static void
topath(char *buf, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", top, name);
}

/* A folder with 20 files and a small tree, the kind of data a user shares. */
static void
fill(const char *dir, const char *tag)
{
    itest_sh("mkdir -p %s/sub/deeper/deepest && for i in $(seq 1 20); do echo %s-$i > %s/f$i; "
             "done && echo a > %s/sub/a && echo b > %s/sub/deeper/b && echo c > "
             "%s/sub/deeper/deepest/c && ln -s f1 %s/link && chmod 0640 %s/f2",
             dir, tag, dir, dir, dir, dir, dir, dir);
}

/* Lines of `a` that `b` lacks, "; " separated, cut to fit out. */
static void
lines_missing(const char *a, const char *b, char *out, size_t size)
{
    size_t len = 0;
    bool cut = false;
    out[0] = '\0';
    for (const char *l = a; *l;) {
        size_t n = strcspn(l, "\n");
        bool found = false;
        for (const char *m = b; *m && !found;) {
            size_t k = strcspn(m, "\n");
            found = k == n && !strncmp(l, m, n);
            m += k + (m[k] == '\n');
        }
        if (!found && !cut && len + n + 7 < size) {
            len += (size_t)snprintf(out + len, size - len, "%s%.*s", len ? "; " : "", (int)n, l);
        } else if (!found && !cut) {
            strcpy(out + len, "; ...");
            cut = true;
        }
        l += n + (l[n] == '\n');
    }
}

/* The folder at dir still has exactly the tree `before`, or the test fails saying what changed. */
static void
assert_tree(const char *dir, const char *before, const char *what)
{
    char *after = itest_tree(dir);
    if (strcmp(before, after)) {
        char gone[600], fresh[300];
        lines_missing(before, after, gone, sizeof(gone));
        lines_missing(after, before, fresh, sizeof(fresh));
        fail_msg("%s: the folder %s changed; gone: [%s]; new: [%s]", what, dir, gone, fresh);
    }
    free(after);
}

static int
count_of(char *out)
{
    int n = atoi(out);
    free(out);
    return n;
}

/* --- guest attacks, one VM ----------------------------------------------------------------- */

static int
setup_vm(void **state)
{
    vm = itest_boot(VM_ID);
    return 0;
}

static int
teardown_vm(void **state)
{
    uvm_close(vm);
    vm = NULL;
    itest_umount_below(top);
    return 0;
}

static int
teardown_each(void **state)
{
    while (n_added) {
        n_added--;
        const char *p = added[n_added].path;
        int rc = added[n_added].kind == PLAN9  ? uvm_remove_plan9(vm, p)
                 : added[n_added].kind == VSMB ? uvm_remove_vsmb(vm, p)
                                               : uvm_remove_scsi(vm, p);
        if (rc < 0)
            fprintf(stderr, "teardown: remove '%s': %s\n", p, uvm_last_error());
    }
    if (guest_undo) {
        struct itest_run r;
        const char *argv[] = {"sh", "-c", guest_undo, NULL};
        if (itest_run(vm, argv, NULL, &r) == 0)
            itest_run_free(&r);
        guest_undo = NULL;
    }
    /* a mount that an attack left on a host folder of the test */
    int n = itest_umount_below(top);
    if (n)
        fprintf(stderr, "teardown: detached %d mount(s) left below %s\n", n, top);
    return 0;
}

/* Field `key` of a /proc/<pid>/status text ("" when absent). */
static void
status_field(const char *status, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\n%s:", key);
    const char *p = strstr(status, pat);
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(pat);
    p += strspn(p, " \t");
    size_t n = strcspn(p, "\n");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
}

/* QEMU runs without root's powers and under seccomp, and still does its job: a root-owned 0600
 * disk image hot-adds and is read-write in the guest, a Plan9 share works. */
static void
test_qemu_confined(void **state)
{
    char disk[PATH_MAX], share[PATH_MAX];
    topath(disk, "f-disk.img");
    topath(share, "f-share");
    itest_sh("truncate -s 64M %s && mkfs.ext4 -q -F -b 4096 %s && chown 0:0 %s && chmod 0600 %s "
             "&& mkdir -p %s && echo f-share-content > %s/id",
             disk, disk, disk, disk, share, share);
    if (uvm_add_scsi(vm, disk, "/mnt/f-disk", NULL, NULL) < 0)
        fail_msg("add the root-owned 0600 disk '%s': %s", disk, uvm_last_error());
    record(SCSI, disk);
    guest_expect(vm, "echo written-by-guest > /mnt/f-disk/f && sync && cat /mnt/f-disk/f",
                 "written-by-guest\n");
    n_added--; /* removed here, not by the teardown */
    assert_int_equal(uvm_remove_scsi(vm, disk), 0);
    char *out = itest_host_out("debugfs -R 'cat /f' %s 2>/dev/null", disk);
    assert_string_equal(out, "written-by-guest\n");
    free(out);
    add_plan9(share, "/mnt/f-share", false);
    guest_expect(vm, "cat /mnt/f-share/id", "f-share-content\n");

    int pid = itest_qemu_pid(VM_ID);
    assert_true(pid > 0);
    out = itest_host_out("cat /proc/%d/status", pid);
    char seccomp[32], nnp[32], uid[64], capeff[32];
    status_field(out, "Seccomp", seccomp, sizeof(seccomp));
    status_field(out, "NoNewPrivs", nnp, sizeof(nnp));
    status_field(out, "Uid", uid, sizeof(uid));
    status_field(out, "CapEff", capeff, sizeof(capeff));
    free(out);
    bool powerless = atoi(uid) != 0 || !strcmp(capeff, "0000000000000000");
    if (strcmp(seccomp, "2") || strcmp(nnp, "1") || !powerless)
        fail_msg("QEMU (pid %d) is not confined: Seccomp: %s (want 2), NoNewPrivs: %s (want 1), "
                 "Uid: %s with CapEff: %s (want a non-root uid or an empty CapEff)",
                 pid, seccomp, nnp, uid, capeff);
}

/* The guest plants symlinks named like the next shares in every 9p export root it can see, all
 * pointing at a host folder; two more shares are then added: no mount lands on the host folder,
 * its files are unchanged, and the new shares show their own content. */
static void
test_planted_symlinks(void **state)
{
    char victim[PATH_MAX], s[3][PATH_MAX], cmd[2048];
    topath(victim, "victim");
    itest_sh("mkdir -p %s/sub && echo victim-a > %s/a && echo victim-b > %s/sub/b", victim, victim,
             victim);
    char *before = itest_tree(victim);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "a-s%d", i + 1);
        topath(s[i], name);
        itest_sh("mkdir -p %s && echo share-%d > %s/id", s[i], i + 1, s[i]);
    }
    add_plan9(s[0], "/mnt/a1", false);
    /* as root in the guest: s0..s64 in decimal and hex, and the victim path made in the guest
     * too, so that the guest half of a poisoned add succeeds */
    snprintf(cmd, sizeof(cmd),
             ROOTS_SH "for r in $roots; do for i in $(seq 0 64); do "
                      "for n in s$i s$(printf %%x $i); do "
                      "[ -e $r/$n ] || [ -L $r/$n ] || ln -s %s $r/$n; done; done; done "
                      "2>/dev/null; mkdir -p %s; echo $roots",
             victim, victim);
    guest_undo = ROOTS_SH "for r in $roots; do for f in $r/s*; do [ -L $f ] && rm -f $f; done; "
                          "done; true";
    char *roots = NULL;
    guest_sh(vm, cmd, &roots);
    fprintf(stderr, "guest 9p export roots: %s", roots);
    free(roots);

    int rc[2];
    char err[2][512] = {"", ""};
    for (int i = 0; i < 2; i++) {
        char guest[16];
        snprintf(guest, sizeof(guest), "/mnt/a%d", i + 2);
        rc[i] = uvm_add_plan9(vm, s[i + 1], guest, false);
        if (rc[i] < 0)
            snprintf(err[i], sizeof(err[i]), "%s", uvm_last_error());
        else
            record(PLAN9, s[i + 1]);
    }
    int mounts = itest_mounts_below(victim);
    if (mounts) {
        char *now = itest_host_out("ls %s | tr '\\n' ' '", victim);
        fail_msg("%d mount(s) on the host folder %s after the guest planted symlinks to it "
                 "(the two share adds returned %d, %d); it now lists: %s",
                 mounts, victim, rc[0], rc[1], now);
    }
    assert_tree(victim, before, "after the guest planted symlinks");
    free(before);
    for (int i = 0; i < 2; i++)
        if (rc[i] < 0)
            fail_msg("add plan9 '%s' after the planted symlinks: %s", s[i + 1], err[i]);
    guest_expect(vm, "cat /mnt/a1/id /mnt/a2/id /mnt/a3/id", "share-1\nshare-2\nshare-3\n");
}

/* Regular-file bytes below the test's runtime base. */
static long long
runtime_bytes(void)
{
    char *out = itest_host_out("find %s -type f -printf '%%s\\n' 2>/dev/null | "
                               "awk '{s += $1} END {print s + 0}'",
                               itest_runtime_dir());
    long long n = atoll(out);
    free(out);
    return n;
}

/* 32 MiB written by the guest into the 9p export root: the write fails and the host runtime
 * directory stays small. */
static void
test_export_root_flood(void **state)
{
    char share[PATH_MAX];
    topath(share, "b-share");
    itest_sh("mkdir -p %s && echo b > %s/id", share, share);
    add_plan9(share, "/mnt/b", false); /* the export is mounted in the guest from here on */
    guest_undo = ROOTS_SH "for r in $roots; do rm -f $r/big; done; true";
    char *out = NULL;
    guest_sh(vm,
             ROOTS_SH "n=0; for r in $roots; do n=$((n + 1)); if dd if=/dev/zero of=$r/big bs=1M "
                      "count=32 2>/dev/null; then echo \"$r/big: written\"; else echo \"$r/big: "
                      "refused\"; fi; done; echo \"$n export root(s)\"",
             &out);
    long long bytes = runtime_bytes();
    fprintf(stderr, "guest: %shost runtime directory: %lld bytes in regular files\n", out, bytes);
    if (strstr(out, "written") || bytes >= 1 << 20)
        fail_msg("the guest filled the host: %s; the host runtime directory %s holds %lld bytes "
                 "(want < 1 MiB)",
                 out, itest_runtime_dir(), bytes);
    free(out);
}

static char offenders[4096];

static int
check_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    const char *what = NULL;
    if (S_ISCHR(st->st_mode))
        what = "character device";
    else if (S_ISBLK(st->st_mode))
        what = "block device";
    else if (!S_ISDIR(st->st_mode) && st->st_uid == 0 && (st->st_mode & S_ISUID))
        what = "setuid-root file";
    else if (!S_ISDIR(st->st_mode) && st->st_uid == 0 && (st->st_mode & S_ISGID))
        what = "setgid file owned by root";
    if (what) {
        size_t n = strlen(offenders);
        snprintf(offenders + n, sizeof(offenders) - n, "\n  %s: %s (mode %o, uid %d)", path, what,
                 (unsigned)st->st_mode, (int)st->st_uid);
    }
    return 0;
}

/* Guest root makes setuid/setgid-root executables and device nodes in a writable Plan9 share and
 * a writable VSMB share: on the host, the folders hold neither. */
static void
test_guest_root_in_shares(void **state)
{
    char p9[PATH_MAX], vs[PATH_MAX], cmd[1024];
    topath(p9, "c-p9");
    topath(vs, "c-vsmb");
    itest_sh("mkdir -p %s %s && chmod 0777 %s %s", p9, vs, p9, vs);
    add_plan9(p9, "/mnt/c-p9", false);
    char *vsmb = add_vsmb(vs);
    const char *guest_dirs[] = {"/mnt/c-p9", vsmb};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd),
                 "cd %s && { touch x; chown 0:0 x; chmod 4755 x; touch y; chown 0:0 y; "
                 "chmod 2755 y; cp /bin/busybox sh; chown 0:0 sh; chmod 6755 sh; "
                 "mknod c0 c 1 3; mknod b0 b 7 0; } >/dev/null 2>&1; sync; ls -ln",
                 guest_dirs[i]);
        char *out = NULL;
        guest_sh(vm, cmd, &out);
        fprintf(stderr, "guest %s:\n%s", guest_dirs[i], out);
        free(out);
    }
    free(vsmb);
    offenders[0] = '\0';
    assert_int_equal(nftw(p9, check_entry, 16, FTW_PHYS), 0);
    assert_int_equal(nftw(vs, check_entry, 16, FTW_PHYS), 0);
    if (offenders[0])
        fail_msg("guest root left these in the host's shared folders:%s", offenders);
}

struct thread_add {
    const char *path;
    int rc;
    char err[512];
};

static void *
thread_add_vsmb(void *arg)
{
    struct thread_add *a = arg;
    a->rc = uvm_add_vsmb(vm, a->path, NULL, NULL);
    if (a->rc < 0)
        snprintf(a->err, sizeof(a->err), "%s", uvm_last_error());
    return NULL;
}

/* A VSMB share added from a thread that exits keeps working: seconds later the guest writes a
 * file and the host sees it. */
static void
test_vsmb_from_exiting_thread(void **state)
{
    char share[PATH_MAX], cmd[1024];
    topath(share, "g-vsmb");
    itest_sh("mkdir -p %s && echo g > %s/id", share, share);
    struct thread_add a = {.path = share};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_add_vsmb, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (a.rc < 0)
        fail_msg("add vsmb from a thread: %s", a.err);
    record(VSMB, share);
    sleep(3);
    char *path = NULL;
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, share, &path), 0);
    /* a share whose daemon died never answers: give the write 10 s, then tell */
    snprintf(cmd, sizeof(cmd),
             "(echo after-the-thread > %s/late && sync) >/dev/null 2>&1 & pid=$!; i=0; "
             "while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); "
             "done; if kill -0 $pid 2>/dev/null; then echo 'write hangs'; else wait $pid; "
             "echo \"write exited $?\"; fi",
             path);
    free(path);
    char *out = NULL;
    guest_sh(vm, cmd, &out);
    if (strcmp(out, "write exited 0\n"))
        fail_msg("3 s after the adding thread exited, a write to the share: %s", out);
    free(out);
    out = itest_host_out("cat %s/late 2>&1", share);
    assert_string_equal(out, "after-the-thread\n");
    free(out);
}

/* --- careless operator, a VM each ----------------------------------------------------------- */

static int
teardown_own(void **state)
{
    uvm_close(own);
    own = NULL;
    setenv("UVM_RUNTIME_DIR", itest_runtime_dir(), 1);
    int n = itest_umount_below(top);
    if (n)
        fprintf(stderr, "teardown: detached %d mount(s) left below %s\n", n, top);
    if (hns[0]) {
        itest_host_out("ip netns del %s 2>&1", hns);
        hns[0] = '\0';
    }
    return 0;
}

/* Create (with UVM_RUNTIME_DIR=base) and start `own`. */
static void
boot_in(const char *base, const char *id)
{
    struct uvm_options o = {.id = id, .memory_mb = 256,
                            .console_pipe = getenv("UVM_TEST_CONSOLE")};
    setenv("UVM_RUNTIME_DIR", base, 1);
    int rc = uvm_create(&o, &own);
    setenv("UVM_RUNTIME_DIR", itest_runtime_dir(), 1);
    if (rc < 0)
        fail_msg("create '%s' in UVM_RUNTIME_DIR=%s: %s", id, base, uvm_last_error());
    rc = itest_start(own);
    if (rc < 0)
        fail_msg("start '%s' in UVM_RUNTIME_DIR=%s: %s", id, base, uvm_last_error());
}

/* A writable Plan9 share and a writable VSMB share of folders full of data are mounted in a VM
 * of runtime base `base`; QEMU is SIGKILLed when asked; after terminate and close both folders
 * keep every file and nothing stays mounted below the base. */
static void
shares_survive(const char *base, const char *id, bool kill_qemu)
{
    char p9[PATH_MAX], vs[PATH_MAX], name[80], cmd[1024];
    snprintf(name, sizeof(name), "%s-p9", id);
    topath(p9, name);
    snprintf(name, sizeof(name), "%s-vsmb", id);
    topath(vs, name);
    fill(p9, "p9");
    fill(vs, "vsmb");
    boot_in(base, id);
    if (uvm_add_plan9(own, p9, "/mnt/d", false) < 0)
        fail_msg("add plan9: %s", uvm_last_error());
    if (uvm_add_vsmb(own, vs, NULL, NULL) < 0)
        fail_msg("add vsmb: %s", uvm_last_error());
    char *vpath = NULL;
    assert_int_equal(uvm_get_vsmb_uvm_path(own, vs, &vpath), 0);
    snprintf(cmd, sizeof(cmd),
             "echo guest > /mnt/d/from-guest && echo guest > %s/from-guest && sync && "
             "cat /mnt/d/sub/deeper/b %s/sub/deeper/deepest/c",
             vpath, vpath);
    free(vpath);
    guest_expect(own, cmd, "b\nc\n");
    char *before[2] = {itest_tree(p9), itest_tree(vs)};
    if (kill_qemu) {
        int pid = itest_qemu_pid(id);
        assert_true(pid > 0);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int rc = uvm_wait(own);
        fprintf(stderr, "QEMU killed: uvm_wait %d (%s)\n", rc, rc ? uvm_last_error() : "");
    }
    assert_int_equal(uvm_terminate(own), 0);
    uvm_close(own);
    own = NULL;
    const char *dirs[] = {p9, vs};
    char what[PATH_MAX + 64];
    snprintf(what, sizeof(what), "terminate/close with UVM_RUNTIME_DIR=%s%s", base,
             kill_qemu ? " after QEMU was killed" : "");
    for (int i = 0; i < 2; i++) {
        assert_tree(dirs[i], before[i], what);
        free(before[i]);
    }
    int left = itest_mounts_below(base);
    if (left)
        fail_msg("UVM_RUNTIME_DIR=%s: %d mount(s) left below it after close", base, left);
}

static void
test_runtime_dir_trailing_slash(void **state)
{
    char base[PATH_MAX];
    snprintf(base, sizeof(base), "%s/d1-base/", top);
    shares_survive(base, "hostile-slash", false);
}

static void
test_runtime_dir_symlink(void **state)
{
    char real[PATH_MAX], link[PATH_MAX];
    topath(real, "d2-real-base");
    topath(link, "d2-link-base");
    itest_sh("mkdir -p %s && chmod 0755 %s && ln -sfn %s %s", real, real, real, link);
    shares_survive(link, "hostile-symlink", false);
}

static void
test_qemu_killed_with_shares(void **state)
{
    shares_survive(itest_runtime_dir(), "hostile-killed", true);
}

/* Library-created taps in host namespace hns. */
static int
taps_in_hns(void)
{
    return count_of(itest_host_out("ip -n %s -o link show | grep -c ': uvmt' || true", hns));
}

/* The child: a runtime that starts a VM, shares a writable folder, adds a NIC (a tap the library
 * creates), writes through the share from the guest, and exits without closing anything. */
static void __attribute__((noreturn))
dead_runtime(const char *base, const char *share, int report)
{
    setenv("UVM_RUNTIME_DIR", base, 1);
    struct uvm_options o = {.id = DEAD_ID, .memory_mb = 256};
    struct uvm *v = NULL;
    const char *step = "create";
    int rc = uvm_create(&o, &v);
    if (rc == 0) {
        step = "start";
        rc = itest_start(v);
    }
    if (rc == 0) {
        step = "add plan9";
        rc = uvm_add_plan9(v, share, "/mnt/e", false);
    }
    if (rc == 0) {
        step = "add netns";
        struct uvm_endpoint ep = {.id = "e0", .ip_address = "10.201.0.2", .prefix_length = 24,
                                  .host_netns = hns};
        rc = uvm_add_netns(v, "ne", &ep, 1);
    }
    if (rc == 0) {
        step = "write through the share";
        const char *argv[] = {"sh", "-c", "echo from-dead-guest > /mnt/e/guest && sync", NULL};
        struct uvm_process_config cfg = {.argv = argv};
        struct uvm_process *p = NULL;
        int code = -1;
        rc = uvm_exec(v, &cfg, &p);
        if (rc == 0)
            rc = uvm_process_wait(p, &code);
        if (rc == 0 && code != 0)
            rc = -EIO;
    }
    if (rc < 0)
        dprintf(report, "%s: %s", step, uvm_last_error());
    else
        dprintf(report, "ok");
    _exit(rc < 0 ? 1 : 0); /* no uvm_close: QEMU dies with this process (PDEATHSIG) */
}

/* A runtime that exits without close while a share is mounted: the next uvm_create of another
 * ID in the same base sweeps its directory, mounts and taps; the shared folder keeps its data. */
static void
test_dead_runtime_swept(void **state)
{
    char base[PATH_MAX], share[PATH_MAX], dead[PATH_MAX + 32];
    topath(base, "e-base");
    topath(share, "e-share");
    snprintf(dead, sizeof(dead), "%s/" DEAD_ID, base);
    itest_sh("mkdir -p %s", base);
    fill(share, "e");
    snprintf(hns, sizeof(hns), "uvmhe-%d", (int)getpid());
    itest_sh("ip netns add %s", hns);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        dead_runtime(base, share, pfd[1]);
    }
    close(pfd[1]);
    char msg[1024] = "";
    size_t len = 0;
    ssize_t n;
    while ((n = read(pfd[0], msg + len, sizeof(msg) - 1 - len)) > 0)
        len += (size_t)n;
    msg[len] = '\0';
    close(pfd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the runtime that was to die failed first (status 0x%x): %s", status, msg);
    for (int i = 0; i < 100 && itest_qemu_pid(DEAD_ID) > 0; i++)
        usleep(100 * 1000);
    assert_int_equal(itest_qemu_pid(DEAD_ID), -1);
    char *before = itest_tree(share);
    assert_non_null(strstr(before, "./guest"));
    fprintf(stderr, "left by the dead runtime: directory %s, %d mount(s), %d tap(s)\n",
            access(dead, F_OK) == 0 ? "present" : "absent", itest_mounts_below(base),
            taps_in_hns());

    struct uvm_options o = {.id = "hostile-sweeper", .memory_mb = 256};
    setenv("UVM_RUNTIME_DIR", base, 1);
    int rc = uvm_create(&o, &own);
    setenv("UVM_RUNTIME_DIR", itest_runtime_dir(), 1);
    if (rc < 0)
        fail_msg("create in the dead runtime's base: %s", uvm_last_error());
    /* below the dead runtime's directory: the new VM has its own (the 9p export bind) */
    int mounts = itest_mounts_below(dead), taps = taps_in_hns();
    bool dir_left = access(dead, F_OK) == 0;
    assert_tree(share, before, "the sweep of a dead runtime");
    free(before);
    if (dir_left || mounts || taps)
        fail_msg("uvm_create in %s did not sweep the dead runtime: its directory %s, %d mount(s) "
                 "below it, %d tap(s) it created",
                 base, dir_left ? "is still there" : "is gone", mounts, taps);
}

/* --- post-close ------------------------------------------------------------------------------ */

/* Boot a VM, start a process, close the VM, then use the process: wait and signal must fail
 * with UVM_E_CLOSED and a message, close must not crash. No cmocka here: it also runs in a child process. 0 or -1
 * with the reason in msg. */
static int
process_after_close(char *msg, size_t size)
{
    struct uvm_options o = {.id = "hostile-closed", .memory_mb = 256};
    struct uvm *v = NULL;
    int rc = uvm_create(&o, &v);
    if (rc == 0)
        rc = itest_start(v);
    const char *argv[] = {"sleep", "1000", NULL};
    struct uvm_process_config cfg = {.argv = argv, .create_stdout = true};
    struct uvm_process *p = NULL;
    if (rc == 0)
        rc = uvm_exec(v, &cfg, &p);
    if (rc < 0) {
        snprintf(msg, size, "boot and exec: %s", uvm_last_error());
        uvm_close(v);
        return -1;
    }
    uvm_close(v);
    int code = -1;
    rc = uvm_process_wait(p, &code);
    if (rc != UVM_E_CLOSED || !*uvm_last_error()) {
        snprintf(msg, size, "uvm_process_wait after uvm_close returned %d (message '%s')", rc,
                 uvm_last_error());
        return -1;
    }
    rc = uvm_process_signal(p, SIGKILL);
    if (rc != UVM_E_CLOSED || !*uvm_last_error()) {
        snprintf(msg, size, "uvm_process_signal after uvm_close returned %d (message '%s')", rc,
                 uvm_last_error());
        return -1;
    }
    uvm_process_close(p);
    return 0;
}

/* uvm_process_wait/signal/close on a process of a closed VM: errors with a message, no crash.
 * Run in a child process, so that a crash is reported as such and the test still cleans up. */
static void
test_process_after_close(void **state)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char msg[1024] = "";
        close(pfd[0]);
        int rc = process_after_close(msg, sizeof(msg));
        dprintf(pfd[1], "%s", msg);
        _exit(rc < 0 ? 1 : 0);
    }
    close(pfd[1]);
    char msg[1024] = "";
    size_t len = 0;
    ssize_t n;
    while ((n = read(pfd[0], msg + len, sizeof(msg) - 1 - len)) > 0)
        len += (size_t)n;
    msg[len] = '\0';
    close(pfd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("uvm_process_* after uvm_close crashed the process: signal %d (%s)",
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s", msg);
}

/* The same in this process, for valgrind (`test-hostile post-close`): freed memory is kept
 * poisoned there, so every access after the close is reported. */
static void
test_process_after_close_here(void **state)
{
    char msg[1024] = "";
    if (process_after_close(msg, sizeof(msg)) < 0)
        fail_msg("%s", msg);
}

int
main(int argc, char **argv)
{
    itest_init();
    if (getuid() != 0) {
        printf("SKIP: the attacks need root (shares are bind mounts, taps)\n");
        return 77;
    }
    strcpy(top, "/tmp/uvm-hostile-XXXXXX");
    if (!mkdtemp(top)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest guest[] = {
        cmocka_unit_test_teardown(test_qemu_confined, teardown_each),
        cmocka_unit_test_teardown(test_planted_symlinks, teardown_each),
        cmocka_unit_test_teardown(test_export_root_flood, teardown_each),
        cmocka_unit_test_teardown(test_guest_root_in_shares, teardown_each),
        cmocka_unit_test_teardown(test_vsmb_from_exiting_thread, teardown_each),
    };
    const struct CMUnitTest operator[] = {
        cmocka_unit_test_teardown(test_runtime_dir_trailing_slash, teardown_own),
        cmocka_unit_test_teardown(test_runtime_dir_symlink, teardown_own),
        cmocka_unit_test_teardown(test_qemu_killed_with_shares, teardown_own),
        cmocka_unit_test_teardown(test_dead_runtime_swept, teardown_own),
    };
    const struct CMUnitTest post_close[] = {
        cmocka_unit_test(test_process_after_close),
    };
    const struct CMUnitTest post_close_here[] = {
        cmocka_unit_test(test_process_after_close_here),
    };
    int failed = 0;
    if (argc > 1 && !strcmp(argv[1], "post-close")) {
        failed += cmocka_run_group_tests_name("post-close", post_close_here, NULL, NULL);
    } else {
        failed += cmocka_run_group_tests_name("guest-attacks", guest, setup_vm, teardown_vm);
        failed += cmocka_run_group_tests_name("operator", operator, NULL, NULL);
        failed += cmocka_run_group_tests_name("post-close", post_close, NULL, NULL);
    }
    itest_rm_rf(top);
    return itest_finish(failed);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The runtime directory (rundir.c, rdclean.c) with real directories and real bind mounts, in a
 * private mount and network namespace (root only; skipped otherwise):
 *   - the base is canonicalised (trailing slash, "//", symlink, relative, missing parts) and
 *     refused when it is not ours or is writable by others (or its parents are);
 *   - a "user folder" bind-mounted below the runtime directory as a share (under a shared self
 *     bind of 9p, as plan9.c makes it) keeps every file through a release, whatever the spelling
 *     of the base; a mount that appears after the detach step is never entered;
 *   - the sweep releases a dead owner's directory (mount, tap, files) and leaves a live one, or
 *     one that is not ours, alone;
 *   - rundir_tail reads only regular files beneath the directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testsh.h"

#include "cleanup.h"
#include "error.h"
#include "rdclean.h"
#include "rundir.h"

#define USER_FILES 5
#define TEST_TAP "uvmtest0"

static char tmp[64];       /* private scratch directory */
static char case_dir[128]; /* this test's directory below tmp */
static char user[160];     /* a "user folder" that is shared */
static char base[160];     /* its runtime base */
static unsigned case_no;

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static bool
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A user folder with files and a subdirectory. */
static void
make_user_folder(const char *dir)
{
    unit_sh("mkdir -p '%s/sub'", dir);
    for (int i = 0; i < USER_FILES; i++) {
        char p[256], text[32];
        snprintf(p, sizeof(p), "%s/%sf%d", dir, i % 2 ? "sub/" : "", i);
        snprintf(text, sizeof(text), "precious %d\n", i);
        write_file(p, text);
    }
}

static void
assert_user_folder_intact(const char *dir)
{
    for (int i = 0; i < USER_FILES; i++) {
        char p[256], want[32], got[32] = "";
        snprintf(p, sizeof(p), "%s/%sf%d", dir, i % 2 ? "sub/" : "", i);
        snprintf(want, sizeof(want), "precious %d\n", i);
        FILE *f = fopen(p, "r");
        if (!f)
            fail_msg("'%s' is gone", p);
        size_t n = fread(got, 1, sizeof(got) - 1, f);
        got[n] = '\0';
        fclose(f);
        assert_string_equal(got, want);
    }
}

/* Mount points at or below dir (from our mountinfo). */
static unsigned
mounts_below(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    assert_non_null(f);
    char line[4096], mp[4096];
    unsigned n = 0;
    size_t len = strlen(dir);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strncmp(mp, dir, len) &&
            (mp[len] == '/' || !mp[len]))
            n++;
    fclose(f);
    return n;
}

/* Lazily detach everything below dir, deepest first (test clean-up). */
static void
unmount_all_below(const char *dir)
{
    for (int round = 0; round < 16 && mounts_below(dir); round++) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096], mp[4096], deepest[4096] = "";
        size_t len = strlen(dir);
        while (f && fgets(line, sizeof(line), f))
            if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strncmp(mp, dir, len) &&
                (mp[len] == '/' || !mp[len]) && strlen(mp) > strlen(deepest))
                strcpy(deepest, mp);
        if (f)
            fclose(f);
        if (*deepest)
            umount2(deepest, MNT_DETACH);
    }
}

static void
bind_dir(const char *src, const char *dst)
{
    unit_sh("mkdir -p '%s'", dst);
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
        fail_msg("bind '%s' on '%s': %s", src, dst, strerror(errno));
}

/* A share as plan9.c makes it: <rd>/9p bound on itself and made shared, the user folder bound
 * on <rd>/9p/s1; and a VSMB-style bind on <rd>/vsmb/s2. */
static void
mount_shares(const char *rd, const char *folder)
{
    char p9[256], s1[300], s2[300];
    snprintf(p9, sizeof(p9), "%s/9p", rd);
    snprintf(s1, sizeof(s1), "%s/s1", p9);
    snprintf(s2, sizeof(s2), "%s/vsmb/s2", rd);
    bind_dir(p9, p9);
    if (mount(NULL, p9, NULL, MS_SHARED, NULL) < 0)
        fail_msg("make '%s' shared: %s", p9, strerror(errno));
    bind_dir(folder, s1);
    bind_dir(folder, s2);
}

static int
setup(void **state)
{
    snprintf(case_dir, sizeof(case_dir), "%s/c%u", tmp, ++case_no);
    snprintf(user, sizeof(user), "%s/user", case_dir);
    snprintf(base, sizeof(base), "%s/run", case_dir);
    unit_sh("mkdir -p '%s'", case_dir);
    make_user_folder(user);
    setenv("UVM_RUNTIME_DIR", base, 1);
    rdclean_test_after_detach = NULL;
    return 0;
}

static int
teardown(void **state)
{
    rdclean_test_after_detach = NULL;
    unmount_all_below(case_dir);
    assert_int_equal(mounts_below(case_dir), 0);
    unit_sh("rm -rf '%s'", case_dir);
    unsetenv("UVM_RUNTIME_DIR");
    return 0;
}

/* Claim "vm" with UVM_RUNTIME_DIR=spelling and check the canonical path. */
static void
check_canonical(const char *spelling, const char *want_base)
{
    setenv("UVM_RUNTIME_DIR", spelling, 1);
    struct rundir rd;
    int rc = rundir_claim("vm", &rd);
    if (rc < 0)
        fail_msg("claim with '%s': %s", spelling, uvm_last_error());
    char want[300];
    snprintf(want, sizeof(want), "%s/vm", want_base);
    assert_string_equal(rd.path, want);
    rundir_release(&rd);
    assert_null(rd.path);
    assert_false(exists(want));
    rundir_release(&rd); /* idempotent */
}

static void
test_canonical_spellings(void **state)
{
    char s[300];
    unit_sh("mkdir -p '%s'", base);
    snprintf(s, sizeof(s), "%s/", base);
    check_canonical(s, base);
    snprintf(s, sizeof(s), "%s//c%u//run//", tmp, case_no);
    check_canonical(s, base);
    snprintf(s, sizeof(s), "%s/./run/../run", case_dir);
    check_canonical(s, base);
    snprintf(s, sizeof(s), "%s/link", case_dir);
    assert_int_equal(symlink("run", s), 0);
    check_canonical(s, base);
    strcat(s, "/");
    check_canonical(s, base);
}

static void
test_canonical_relative(void **state)
{
    char cwd[256];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(case_dir), 0);
    unit_sh("mkdir -p run");
    check_canonical("run", base);
    check_canonical("./run/", base);
    assert_int_equal(chdir(cwd), 0);
}

/* Missing parts are created, owned by us, 0711; a symlink inside a missing part is not. */
static void
test_base_created(void **state)
{
    char s[300], want[300];
    snprintf(want, sizeof(want), "%s/new/a/b", case_dir);
    snprintf(s, sizeof(s), "%s/new//a/./b/", case_dir);
    check_canonical(s, want);
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);
    assert_int_equal(st.st_uid, geteuid());
    snprintf(s, sizeof(s), "%s/nothere/../x", case_dir);
    setenv("UVM_RUNTIME_DIR", s, 1);
    struct rundir rd;
    assert_int_equal(rundir_claim("vm", &rd), UVM_E_INVALID_ARGUMENT);
    assert_null(rd.path);
    /* a dangling symlink is never replaced by a directory */
    snprintf(s, sizeof(s), "%s/dangling", case_dir);
    assert_int_equal(symlink("/nonexistent-uvm-target", s), 0);
    setenv("UVM_RUNTIME_DIR", s, 1);
    assert_int_equal(rundir_claim("vm", &rd), UVM_E_INVALID_ARGUMENT);
    assert_false(exists("/nonexistent-uvm-target"));
}

/* Claim in base must fail with UVM_E_INVALID_ARGUMENT naming `name` and saying `why`. */
static void
check_refused(const char *name, const char *why)
{
    struct rundir rd;
    int rc = rundir_claim("vm", &rd);
    assert_int_equal(rc, UVM_E_INVALID_ARGUMENT);
    assert_null(rd.path);
    if (!strstr(uvm_last_error(), name) || !strstr(uvm_last_error(), why))
        fail_msg("message lacks '%s' / '%s': %s", name, why, uvm_last_error());
    assert_int_equal(rundir_sweep(), UVM_E_INVALID_ARGUMENT);
}

static void
test_refuse_writable_base(void **state)
{
    unit_sh("mkdir -p '%s' && chmod 0777 '%s'", base, base);
    check_refused(base, "world-writable");
    unit_sh("chmod 0770 '%s'", base);
    check_refused(base, "group- or world-writable (mode 0770)");
    unit_sh("chmod 01777 '%s'", base); /* sticky is no excuse for the base itself */
    check_refused(base, "writable");
    unit_sh("chmod 0755 '%s'", base);
    check_canonical(base, base);
}

static void
test_refuse_writable_parent(void **state)
{
    unit_sh("mkdir -p '%s' && chmod 0777 '%s'", base, case_dir);
    check_refused(case_dir, "its parent");
    unit_sh("chmod 01777 '%s'", case_dir); /* like /tmp */
    check_canonical(base, base);
    unit_sh("chmod 0700 '%s'", case_dir);
}

static void
test_refuse_other_owner(void **state)
{
    unit_sh("mkdir -p '%s' && chown 65534 '%s'", base, base);
    check_refused(base, "owned by uid 65534");
    unit_sh("chown 0 '%s' && chown 65534 '%s'", base, case_dir);
    check_refused(case_dir, "owned by uid 65534");
    unit_sh("chown 0 '%s'", case_dir);
    check_canonical(base, base);
}

static void
test_refuse_symlinked_id(void **state)
{
    char id[300];
    unit_sh("mkdir -p '%s' '%s/elsewhere'", base, case_dir);
    snprintf(id, sizeof(id), "%s/vm", base);
    assert_int_equal(symlink("../elsewhere", id), 0);
    struct rundir rd;
    assert_int_equal(rundir_claim("vm", &rd), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "symlink"));
    assert_int_equal(rundir_claim("../x", &rd), UVM_E_INVALID_ARGUMENT);
}

/* Shares below the runtime directory keep every file through a release, whatever the spelling
 * of the base; no mount is left below it. */
static void
release_with_shares(const char *spelling)
{
    setenv("UVM_RUNTIME_DIR", spelling, 1);
    struct rundir rd;
    assert_int_equal(rundir_claim("vm", &rd), 0);
    char p[300];
    unit_sh("mkdir -p '%s/9p' '%s/vsmb'", rd.path, rd.path);
    mount_shares(rd.path, user);
    snprintf(p, sizeof(p), "%s/qemu.log", rd.path);
    write_file(p, "log\n");
    snprintf(p, sizeof(p), "%s/vm", base);
    assert_int_equal(mounts_below(p), 3);
    rundir_release(&rd);
    assert_int_equal(mounts_below(p), 0);
    assert_false(exists(p));
    assert_user_folder_intact(user);
}

static void
test_shares_survive_release(void **state)
{
    char s[300];
    unit_sh("mkdir -p '%s'", base);
    release_with_shares(base);
    snprintf(s, sizeof(s), "%s/", base);
    release_with_shares(s);
    snprintf(s, sizeof(s), "%s//c%u/./run", tmp, case_no);
    release_with_shares(s);
    snprintf(s, sizeof(s), "%s/link", case_dir);
    assert_int_equal(symlink(base, s), 0);
    release_with_shares(s);
}

/* The user folder is bound below the directory after the detach step (a detach that failed, or
 * a share add racing a terminate). */
static void
mount_late(int dir_fd, const char *path)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/9p/s7", path);
    bind_dir(user, p);
}

static void
test_late_mount_not_crossed(void **state)
{
    unit_sh("mkdir -p '%s'", base);
    struct rundir rd;
    assert_int_equal(rundir_claim("vm", &rd), 0);
    char dir[300], p[320];
    snprintf(dir, sizeof(dir), "%s", rd.path);
    unit_sh("mkdir -p '%s/9p'", dir);
    snprintf(p, sizeof(p), "%s/9p/junk", dir);
    write_file(p, "x");
    rdclean_test_after_detach = mount_late;
    rundir_release(&rd);
    rdclean_test_after_detach = NULL;
    assert_user_folder_intact(user);
    /* what could go went; the mount point and the lock stay for a later sweep */
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/lock", dir);
    assert_true(exists(p));
    assert_int_equal(mounts_below(dir), 1);
    /* the next sweep (the lock is free now) detaches it and finishes */
    assert_int_equal(rundir_sweep(), 1);
    assert_false(exists(dir));
    assert_int_equal(mounts_below(dir), 0);
    assert_user_folder_intact(user);
}

/* A pid that is not running. */
static pid_t
dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

/* base/<name> as a process that died would leave it: marked lock (not held), sockets, log,
 * share binds. */
static void
make_dead_dir(const char *name, char *dir, size_t size)
{
    snprintf(dir, size, "%s/%s", base, name);
    unit_sh("mkdir -p '%s/9p' '%s/vsmb' && chmod 0700 '%s'", dir, dir, dir);
    char p[320], mark[64];
    snprintf(p, sizeof(p), "%s/lock", dir);
    snprintf(mark, sizeof(mark), RUNDIR_LOCK_MARK "%d\n", (int)dead_pid());
    write_file(p, mark);
    snprintf(p, sizeof(p), "%s/qmp.sock", dir);
    write_file(p, "");
    snprintf(p, sizeof(p), "%s/qemu.log", dir);
    write_file(p, "bye\n");
    mount_shares(dir, user);
}

static bool
tap_exists(void)
{
    return system("ip link show dev " TEST_TAP " >/dev/null 2>&1") == 0;
}

static void
test_sweep_dead_owner(void **state)
{
    char dead[256], p[320];
    unit_sh("mkdir -p '%s'", base);
    make_dead_dir("dead", dead, sizeof(dead));
    bool tap = system("ip tuntap add dev " TEST_TAP " mode tap 2>/dev/null") == 0;
    if (tap) {
        snprintf(p, sizeof(p), "%s/tap-" TEST_TAP, dead);
        write_file(p, "");
    } else {
        print_message("no tap: the tap part is not tested\n");
    }
    assert_int_equal(mounts_below(dead), 3);
    assert_int_equal(rundir_sweep(), 1);
    assert_false(exists(dead));
    assert_int_equal(mounts_below(dead), 0);
    assert_user_folder_intact(user);
    if (tap)
        assert_false(tap_exists());
    assert_int_equal(rundir_sweep(), 0);
}

/* A lock held (by the test, as a live VM would) keeps the directory; so does a foreign one. */
static void
test_sweep_leaves_live_and_foreign(void **state)
{
    char live[256], p[320];
    unit_sh("mkdir -p '%s'", base);
    make_dead_dir("live", live, sizeof(live));
    snprintf(p, sizeof(p), "%s/lock", live);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    /* not ours: no lock, an empty one (a claim being made, or someone's), someone else's text */
    unit_sh("mkdir -p '%s/nolock' '%s/empty' '%s/dpkg'", base, base, base);
    unit_sh("touch '%s/nolock/keep' '%s/empty/lock' '%s/empty/keep' '%s/dpkg/keep'", base, base, base,
       base);
    snprintf(p, sizeof(p), "%s/dpkg/lock", base);
    write_file(p, "12345\n");

    assert_int_equal(rundir_sweep(), 0);
    assert_int_equal(mounts_below(live), 3);
    snprintf(p, sizeof(p), "%s/qmp.sock", live);
    assert_true(exists(p));
    for (const char *const *d = (const char *const[]){"nolock", "empty", "dpkg", NULL}; *d; d++) {
        snprintf(p, sizeof(p), "%s/%s/keep", base, *d);
        assert_true(exists(p));
    }
    /* a claim of a foreign directory is refused and changes nothing */
    struct rundir rd;
    setenv("UVM_RUNTIME_DIR", base, 1);
    assert_int_equal(rundir_claim("nolock", &rd), UVM_E_ALREADY_EXISTS);
    snprintf(p, sizeof(p), "%s/nolock/lock", base);
    assert_false(exists(p));
    assert_int_equal(rundir_claim("dpkg", &rd), UVM_E_ALREADY_EXISTS);
    snprintf(p, sizeof(p), "%s/dpkg/keep", base);
    assert_true(exists(p));
    /* the live one's lock is dropped: now it goes */
    close(fd);
    assert_int_equal(rundir_sweep(), 1);
    assert_false(exists(live));
    assert_user_folder_intact(user);
}

/* A second claim of a live ID fails at once; a dead owner's directory is cleaned and reused. */
static void
test_claim_live_and_dead(void **state)
{
    unit_sh("mkdir -p '%s'", base);
    struct rundir a, b;
    assert_int_equal(rundir_claim("vm", &a), 0);
    assert_int_equal(rundir_claim("vm", &b), UVM_E_ALREADY_EXISTS);
    assert_non_null(strstr(uvm_last_error(), "live VM"));
    rundir_release(&a);

    char dead[256], p[320];
    make_dead_dir("old", dead, sizeof(dead));
    assert_int_equal(rundir_claim("old", &a), 0);
    assert_int_equal(mounts_below(dead), 0);
    assert_user_folder_intact(user);
    snprintf(p, sizeof(p), "%s/qmp.sock", dead);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/lock", dead);
    assert_true(exists(p));
    struct stat st;
    assert_int_equal(stat(dead, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    rundir_release(&a);
    assert_false(exists(dead));
}

static void
test_tail(void **state)
{
    unit_sh("mkdir -p '%s'", base);
    struct rundir rd;
    assert_int_equal(rundir_claim("vm", &rd), 0);
    char p[320], outside[300];
    snprintf(p, sizeof(p), "%s/qemu.log", rd.path);
    write_file(p, "one\ntwo\nthree\n");
    cleanup_free char *t = rundir_tail(&rd, "qemu.log", 2);
    assert_string_equal(t, "two\nthree");
    snprintf(outside, sizeof(outside), "%s/secret", case_dir);
    write_file(outside, "secret\n");
    snprintf(p, sizeof(p), "%s/link.log", rd.path);
    assert_int_equal(symlink(outside, p), 0);
    cleanup_free char *l = rundir_tail(&rd, "link.log", 2);
    assert_string_equal(l, "");
    cleanup_free char *up = rundir_tail(&rd, "../../secret", 2);
    assert_string_equal(up, "");
    cleanup_free char *abs = rundir_tail(&rd, outside, 2);
    assert_string_equal(abs, "secret");
    rundir_release(&rd);
    cleanup_free char *gone = rundir_tail(&rd, "qemu.log", 2);
    assert_string_equal(gone, "");
}

int
main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: test-rundir makes bind mounts and needs root\n");
        return 77;
    }
    /* Nothing we mount can outlive the test or be seen outside it. */
    if (unshare(CLONE_NEWNS | CLONE_NEWNET) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        fprintf(stderr, "skipped: no private mount namespace: %s\n", strerror(errno));
        return 77;
    }
    strcpy(tmp, "/tmp/uvm-rundir-XXXXXX");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_canonical_spellings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_canonical_relative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_writable_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_writable_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_other_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_symlinked_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shares_survive_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_mount_not_crossed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_dead_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_leaves_live_and_foreign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_live_and_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    unmount_all_below(tmp);
    if (mounts_below(tmp) == 0)
        unit_sh("rm -rf '%s'", tmp);
    return failed;
}

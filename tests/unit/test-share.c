/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host binds of shares (share.h) with real mounts in a temporary directory (root): a bind is
 * nosuid,nodev (and read-only when asked), lands only on a fresh entry (an existing directory
 * or a planted symlink is refused and nothing is mounted through it), and unbinding leaves a
 * mount that is not ours alone. The staging directories of a VM: 9p a shared bind of itself. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "testsh.h"

#include "cleanup.h"
#include "error.h"
#include "share.h"
#include "uvm.h"

static char dir[64], staging[96], host[96], victim[96];
static int stagingfd = -1;

static uint64_t
mnt_id(const char *path)
{
    uint64_t id = 0;
    assert_int_equal(share_mount_id(AT_FDCWD, path, &id), 0);
    return id;
}

/* Whether path is the root of a mount (its mount differs from its parent's). */
static bool
is_mount_point(const char *path)
{
    char parent[160];
    snprintf(parent, sizeof(parent), "%s/..", path);
    return mnt_id(path) != mnt_id(parent);
}

static unsigned long
vfs_flags(const char *path)
{
    struct statvfs sv;
    assert_int_equal(statvfs(path, &sv), 0);
    return sv.f_flag;
}

/* Bind host on staging/name; the host dir opened as share_resolve_dir does. */
static int
bind(const char *name, bool read_only, uint64_t *id)
{
    cleanup_close int fd = -1;
    cleanup_free char *real = NULL;
    int rc = share_resolve_dir("test", host, &fd, &real);
    assert_int_equal(rc, 0);
    return share_bind(stagingfd, staging, name, fd, host, read_only, id);
}

static void
test_resolve(void **state)
{
    char link[128], file[128], missing[128];
    snprintf(link, sizeof(link), "%s/link", dir);
    snprintf(file, sizeof(file), "%s/hello", host);
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    assert_int_equal(symlink(host, link), 0);
    int fd = -1;
    char *real = NULL;
    assert_int_equal(share_resolve_dir("add", link, &fd, &real), 0);
    assert_true(fd >= 0);
    assert_string_equal(real, host); /* dir is canonical (mkdtemp under /tmp) */
    char *key = share_key(link);
    assert_string_equal(key, real);
    free(key);
    free(real);
    close(fd);
    assert_int_equal(share_resolve_dir("add", file, &fd, &real), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "not a directory"));
    assert_int_equal(fd, -1);
    assert_int_equal(share_resolve_dir("add", missing, &fd, &real), UVM_E_NOT_FOUND);
    assert_non_null(strstr(uvm_last_error(), missing));
    key = share_key(missing);
    assert_string_equal(key, missing);
    free(key);
    unlink(link);
}

static void
test_bind_flags_and_unbind(void **state)
{
    uint64_t rw = 0, ro = 0;
    char p1[128], p2[128], f[160];
    snprintf(p1, sizeof(p1), "%s/s1", staging);
    snprintf(p2, sizeof(p2), "%s/s2", staging);
    assert_int_equal(bind("s1", false, &rw), 0);
    assert_int_equal(bind("s2", true, &ro), 0);
    assert_int_equal(mnt_id(p1), rw);
    assert_int_equal(mnt_id(p2), ro);
    unsigned long fl = vfs_flags(p1);
    assert_true(fl & ST_NOSUID);
    assert_true(fl & ST_NODEV);
    assert_false(fl & ST_RDONLY);
    assert_true(vfs_flags(p2) & ST_RDONLY);
    assert_true(vfs_flags(p2) & ST_NOSUID);
    snprintf(f, sizeof(f), "%s/hello", p1);
    assert_int_equal(access(f, R_OK), 0);
    snprintf(f, sizeof(f), "%s/new", p2);
    assert_int_equal(open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0600), -1);
    assert_int_equal(errno, EROFS);

    /* a mount id that is not ours: left alone */
    assert_int_equal(share_unbind(stagingfd, staging, "s1", rw + 1), UVM_E_INVALID_STATE);
    assert_true(is_mount_point(p1));
    assert_int_equal(share_unbind(stagingfd, staging, "s1", rw), 0);
    assert_int_equal(access(p1, F_OK), -1);

    /* our bind was replaced by somebody else's mount: theirs stays */
    assert_int_equal(umount2(p2, MNT_DETACH), 0);
    assert_int_equal(mount(victim, p2, NULL, MS_BIND, NULL), 0);
    assert_int_equal(share_unbind(stagingfd, staging, "s2", ro), UVM_E_INVALID_STATE);
    assert_true(is_mount_point(p2));
    assert_int_equal(umount2(p2, MNT_DETACH), 0);
    assert_int_equal(rmdir(p2), 0);
}

static void
test_bind_refuses_existing(void **state)
{
    char p[128], marker[160];
    uint64_t id = 0;
    /* an existing directory, even an empty one we could have made */
    snprintf(p, sizeof(p), "%s/s3", staging);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(bind("s3", false, &id), UVM_E_ALREADY_EXISTS);
    assert_non_null(strstr(uvm_last_error(), p));
    assert_false(is_mount_point(p));
    assert_int_equal(access(p, F_OK), 0); /* not ours to remove */
    rmdir(p);
    /* a symlink planted where the next share would go */
    snprintf(p, sizeof(p), "%s/s4", staging);
    assert_int_equal(symlink(victim, p), 0);
    assert_int_equal(bind("s4", false, &id), UVM_E_ALREADY_EXISTS);
    assert_false(is_mount_point(victim));
    snprintf(marker, sizeof(marker), "%s/victim-file", victim);
    assert_int_equal(access(marker, F_OK), 0);
    snprintf(marker, sizeof(marker), "%s/hello", victim);
    assert_int_equal(access(marker, F_OK), -1); /* the share's content never appeared there */
    unlink(p);
    /* and a symlink at an unbind: not followed */
    assert_int_equal(symlink(victim, p), 0);
    assert_int_not_equal(share_unbind(stagingfd, staging, "s4", mnt_id(victim)), 0);
    assert_int_equal(access(marker, F_OK), -1);
    unlink(p);
}

/* uvm_create makes the staging directories: 9p a shared nosuid,nodev,noexec bind of itself,
 * vsmb a directory; uvm_close releases them with the runtime directory. */
static void
test_staging_dirs(void **state)
{
    char run[128], boot[128], p9[192];
    snprintf(run, sizeof(run), "%s/run", dir);
    snprintf(boot, sizeof(boot), "%s/boot", dir);
    unit_sh("mkdir -p %s && touch %s/kernel %s/initrd.img", boot, boot, boot);
    setenv("UVM_RUNTIME_DIR", run, 1);
    struct uvm *vm = NULL;
    int rc = uvm_create(&(struct uvm_options){.id = "share-unit", .boot_files_path = boot}, &vm);
    if (rc < 0)
        fail_msg("uvm_create: %s", uvm_last_error());
    snprintf(p9, sizeof(p9), "%s/share-unit/9p", run);
    assert_true(is_mount_point(p9));
    unsigned long fl = vfs_flags(p9);
    assert_true((fl & ST_NOSUID) && (fl & ST_NODEV) && (fl & ST_NOEXEC));
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "grep -q ' %s [^ ]* shared:' /proc/self/mountinfo", p9);
    assert_int_equal(system(cmd), 0);
    snprintf(p9, sizeof(p9), "%s/share-unit/vsmb", run);
    struct stat st;
    assert_int_equal(lstat(p9, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    uvm_close(vm); /* releases the runtime directory: mounts detached, files removed */
    snprintf(p9, sizeof(p9), "%s/share-unit", run);
    assert_int_equal(access(p9, F_OK), -1);
    unsetenv("UVM_RUNTIME_DIR");
}

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-share-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(staging, sizeof(staging), "%s/staging", dir);
    snprintf(host, sizeof(host), "%s/host", dir);
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    unit_sh("mkdir -m 0700 %s %s %s && echo hi > %s/hello && touch %s/victim-file", staging, host,
       victim, host, victim);
    stagingfd = open(staging, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return stagingfd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
    close(stagingfd);
    /* Detach whatever a failed test left below dir, deepest first, then delete without ever
     * crossing into another file system (the host dir must not be deleted through a bind). */
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "awk '$5 ~ \"^%s/\" {print $5}' /proc/self/mountinfo | sort -r | "
             "xargs -r -n1 umount -l; rm -rf --one-file-system '%s'",
             dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    if (geteuid() != 0) {
        printf("SKIP: share binds need root (mounts)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_bind_flags_and_unbind),
        cmocka_unit_test(test_bind_refuses_existing),
        cmocka_unit_test(test_staging_dirs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Attacks on templates with real VMs (docs/security.md "Templates and clones"): a save into a
 * directory another save holds, or through a symlink, is refused and the VM runs on; a clone of
 * a template whose state file was altered (one byte, same size: QEMU would parse it), replaced
 * by a symlink or handed to another owner, or whose directory is group-writable, is refused
 * before QEMU reads anything, leaving no QEMU, runtime directory or fd behind; the template put
 * back, a clone starts from it (QEMU reads the state from a sealed memfd) with fresh entropy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static char shm[64];
static char tpl[128];
static struct uvm *source;
static int fds_before;

static int
setup(void **state)
{
    fds_before = itest_open_fds();
    strcpy(shm, "/dev/shm/uvm-tplsec-it-XXXXXX");
    assert_non_null(mkdtemp(shm));
    snprintf(tpl, sizeof(tpl), "%s/tpl", shm);
    struct uvm_options o = {.id = "itest-tplsec-source", .memory_mb = 256};
    assert_int_equal(uvm_create(&o, &source), 0);
    assert_int_equal(itest_start(source), 0);
    return 0;
}

static int
teardown(void **state)
{
    uvm_close(source);
    itest_rm_rf(shm);
    return 0;
}

static void
serves(struct uvm *vm)
{
    char *out = itest_guest(vm, "echo still-serving");
    assert_string_equal(out, "still-serving\n");
    free(out);
}

static void
test_save_attacks(void **state)
{
    /* Another save holds the (still empty) directory: refused, nothing removed, VM runs on. */
    char held[160], link[160];
    snprintf(held, sizeof(held), "%s/held", shm);
    assert_int_equal(mkdir(held, 0700), 0);
    int hfd = open(held, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_int_equal(flock(hfd, LOCK_EX), 0);
    assert_int_equal(uvm_save_template(source, held), UVM_E_ALREADY_EXISTS);
    assert_non_null(strstr(uvm_last_error(), "another save into"));
    close(hfd);
    struct stat st;
    assert_int_equal(stat(held, &st), 0);
    serves(source);
    /* A symlink where the directory should be (pointing at an empty directory): refused. */
    snprintf(link, sizeof(link), "%s/link", shm);
    assert_int_equal(symlink(held, link), 0);
    assert_true(uvm_save_template(source, link) < 0);
    fprintf(stderr, "refused as expected: %s\n", uvm_last_error());
    char *out = itest_host_out("ls -A %s | wc -l", held);
    assert_string_equal(out, "0\n");
    free(out);
    serves(source);
    if (uvm_save_template(source, tpl) < 0)
        fail_msg("save: %s", uvm_last_error());
}

static void
expect_refused(int code, const char *what)
{
    struct uvm_options o = {.id = "itest-tplsec-clone", .template_dir = tpl};
    struct uvm *vm = NULL;
    int rc = uvm_create(&o, &vm);
    if (rc == 0) {
        rc = uvm_start(vm);
        uvm_close(vm);
    }
    if (rc != code || !strstr(uvm_last_error(), what))
        fail_msg("expected a refusal saying '%s', got %s: %s", what, uvm_strerror(rc),
                 uvm_last_error());
    fprintf(stderr, "refused as expected: %s\n", uvm_last_error());
    assert_int_equal(itest_qemu_pid("itest-tplsec-clone"), -1);
}

static void
test_tampered_refused(void **state)
{
    itest_sh("cd %s && cp -p state %s/state.orig", tpl, shm);
    /* One byte in the middle of the device state, same size and owner. */
    itest_sh("cd %s && size=$(stat -c %%s state) && printf '\\377' | dd of=state bs=1 "
             "seek=$((size / 2)) conv=notrunc status=none",
             tpl);
    expect_refused(UVM_E_INVALID_ARGUMENT, "state is not the one saved");
    /* The state swapped for a symlink to the original. */
    itest_sh("cd %s && rm state && ln -s %s/state.orig state", tpl, shm);
    expect_refused(-ELOOP, "open state (a symlink)");
    /* Another user's state file (the original bytes). */
    itest_sh("cd %s && rm state && cp -p %s/state.orig state && chown 65534 state", tpl, shm);
    expect_refused(UVM_E_INVALID_ARGUMENT, "state is owned by uid 65534");
    itest_sh("chown 0 %s/state", tpl);
    /* A group-writable template directory: refused at create. */
    itest_sh("chmod 0770 %s", tpl);
    expect_refused(UVM_E_INVALID_ARGUMENT, "the directory is group or world writable");
    itest_sh("chmod 0700 %s", tpl);
}

static void
test_clone_after_repair(void **state)
{
    struct uvm_options o = {.id = "itest-tplsec-clone", .template_dir = tpl};
    struct uvm *a = NULL, *b = NULL;
    assert_int_equal(uvm_create(&o, &a), 0);
    assert_int_equal(itest_start(a), 0);
    o.id = "itest-tplsec-clone-b";
    assert_int_equal(uvm_create(&o, &b), 0);
    assert_int_equal(itest_start(b), 0);
    /* Each clone reseeded its CRNG from the host: different random output and UUIDs. */
    const char *cmd = "cat /proc/sys/kernel/random/uuid; head -c 16 /dev/urandom | od -An -tx1";
    char *ra = itest_guest(a, cmd), *rb = itest_guest(b, cmd);
    fprintf(stderr, "clone a: %sclone b: %s", ra, rb);
    assert_string_not_equal(ra, rb);
    free(ra);
    free(rb);
    uvm_close(a);
    uvm_close(b);
}

static void
test_nothing_left(void **state)
{
    static const char *const ids[] = {"itest-tplsec-clone", "itest-tplsec-clone-b"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(itest_qemu_pid(ids[i]), -1);
        char *out = itest_host_out("ls %s | grep -c '^%s$' || true", itest_runtime_dir(), ids[i]);
        assert_string_equal(out, "0\n");
        free(out);
    }
    uvm_close(source);
    source = NULL;
    if (itest_open_fds() != fds_before) {
        char *fds = itest_host_out("ls -l /proc/%d/fd", (int)getpid());
        fail_msg("%d fds open, %d before the tests:\n%s", itest_open_fds(), fds_before, fds);
    }
}

int
main(void)
{
    itest_init();
    if (geteuid() != 0) {
        printf("SKIP: the ownership attacks need root\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_attacks),
        cmocka_unit_test(test_tampered_refused),
        cmocka_unit_test(test_clone_after_repair),
        cmocka_unit_test(test_nothing_left),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return itest_finish(failed);
}

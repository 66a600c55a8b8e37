/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SCSI disks and layers against real VMs: hcsshim's functional scenarios and more. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

#define NDISKS 64

static char dir[64];
static char disks[NDISKS + 1][128];
static struct uvm *vm;

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-scsi-it-XXXXXX");
    assert_non_null(mkdtemp(dir));
    for (int i = 0; i <= NDISKS; i++) {
        snprintf(disks[i], sizeof(disks[i]), "%s/disk%d.img", dir, i);
        itest_sh("truncate -s 16M %s && mkfs.ext4 -q -F -b 4096 %s", disks[i], disks[i]);
    }
    vm = itest_boot("itest-scsi");
    return 0;
}

static int
teardown(void **state)
{
    uvm_close(vm);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static const char *const scsi_count_cmd = "ls /sys/bus/scsi/devices | grep -c ':0:0:' || true";

/* hcsshim TestSCSIAddRemoveLCOW, attach-only half, plus the 65th disk. */
static void
test_attach_only_64(void **state)
{
    for (int i = 0; i < NDISKS; i++) {
        int c = -1;
        int32_t l = -1;
        assert_int_equal(uvm_add_scsi(vm, disks[i], NULL, &c, &l), 0);
        assert_int_equal(c, 0);
        assert_int_equal(l, i);
    }
    for (int i = 0; i < NDISKS; i++)
        assert_int_equal(uvm_add_scsi(vm, disks[i], NULL, NULL, NULL), UVM_E_ALREADY_ATTACHED);
    int c = 0;
    int32_t l = 0;
    assert_int_equal(uvm_add_scsi(vm, disks[NDISKS], NULL, &c, &l), UVM_E_TOO_MANY_ATTACHMENTS);
    assert_int_equal(c, -1);
    assert_int_equal(uvm_remove_scsi(vm, disks[NDISKS]), UVM_E_NOT_ATTACHED);
    assert_int_equal(itest_guest_count(vm, scsi_count_cmd), NDISKS);
    for (int i = 0; i < NDISKS; i++)
        assert_int_equal(uvm_remove_scsi(vm, disks[i]), 0);
    assert_int_equal(itest_guest_count(vm, scsi_count_cmd), 0);
}

/* hcsshim TestSCSIAddRemoveLCOW, mounted half: /0 .. /63. */
static void
test_mounted_64(void **state)
{
    char path[16];
    for (int i = 0; i < NDISKS; i++) {
        snprintf(path, sizeof(path), "/%d", i);
        assert_int_equal(uvm_add_scsi(vm, disks[i], path, NULL, NULL), 0);
    }
    for (int i = 0; i < NDISKS; i++) {
        snprintf(path, sizeof(path), "/%d", i);
        assert_int_equal(uvm_add_scsi(vm, disks[i], path, NULL, NULL), UVM_E_ALREADY_ATTACHED);
    }
    assert_int_equal(itest_guest_count(vm, "grep -c ' /[0-9]* ext4 rw' /proc/mounts"), NDISKS);
    for (int i = 0; i < NDISKS; i++)
        assert_int_equal(uvm_remove_scsi(vm, disks[i]), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /[0-9]* ext4' /proc/mounts || true"), 0);
    assert_int_equal(itest_guest_count(vm, scsi_count_cmd), 0);
}

static void
test_data_reaches_host(void **state)
{
    assert_int_equal(uvm_add_scsi(vm, disks[0], "/scratch", NULL, NULL), 0);
    free(itest_guest(vm, "echo written-in-guest > /scratch/file && sync"));
    assert_int_equal(uvm_remove_scsi(vm, disks[0]), 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "debugfs -R 'cat /file' %s 2>/dev/null | grep -q written-in-guest",
             disks[0]);
    assert_int_equal(system(cmd), 0);
    /* The guest removed its mount point too. */
    assert_int_equal(itest_guest_count(vm, "test -e /scratch && echo 1 || echo 0"), 0);
}

/* QEMU opens no image path itself: the library opens the image and passes the open file, so a
 * disk only its owner (root) may open still hot-adds, and the guest can write to it. */
static void
test_root_only_image(void **state)
{
    char img[128];
    snprintf(img, sizeof(img), "%s/root-only.img", dir);
    itest_sh("truncate -s 16M %s && mkfs.ext4 -q -F -b 4096 %s && chown 0:0 %s && chmod 0600 %s",
             img, img, img, img);
    struct stat st;
    assert_int_equal(stat(img, &st), 0);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(uvm_add_scsi(vm, img, "/rootonly", NULL, NULL), 0);
    free(itest_guest(vm, "echo root-only-write > /rootonly/file && sync"));
    char *out = itest_guest(vm, "cat /rootonly/file");
    assert_string_equal(out, "root-only-write\n");
    free(out);
    assert_int_equal(uvm_remove_scsi(vm, img), 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "debugfs -R 'cat /file' %s 2>/dev/null | grep -q root-only-write",
             img);
    assert_int_equal(system(cmd), 0);
    /* the same as a read-only layer */
    assert_int_equal(uvm_add_scsi_layer(vm, img, NULL, NULL), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/S0/[0-9]* ext4 ro' /proc/mounts"), 1);
    assert_int_equal(uvm_remove_scsi(vm, img), 0);
    assert_int_equal(itest_guest_count(vm, scsi_count_cmd), 0);
}

static void
test_layer_read_only(void **state)
{
    itest_sh("mkdir -p %s/layer && echo layer-content > %s/layer/hello && "
       "mkfs.ext4 -q -F -b 4096 -d %s/layer %s/layer.img 16M",
       dir, dir, dir, dir);
    char layer[128];
    snprintf(layer, sizeof(layer), "%s/layer.img", dir);
    int c, c2;
    int32_t l, l2;
    assert_int_equal(uvm_add_scsi_layer(vm, layer, &c, &l), 0);
    assert_int_equal(uvm_add_scsi_layer(vm, layer, &c2, &l2), 0); /* ref-counted */
    assert_int_equal(c, c2);
    assert_int_equal(l, l2);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "cat /tmp/S%d/%d/hello", c, l);
    char *out = itest_guest(vm, cmd);
    assert_string_equal(out, "layer-content\n");
    free(out);
    snprintf(cmd, sizeof(cmd), "touch /tmp/S%d/%d/new 2>&1; true", c, l);
    out = itest_guest(vm, cmd);
    assert_non_null(strstr(out, "Read-only file system"));
    free(out);
    assert_int_equal(uvm_remove_scsi(vm, layer), 0);
    snprintf(cmd, sizeof(cmd), "cat /tmp/S%d/%d/hello", c, l);
    out = itest_guest(vm, cmd);
    assert_string_equal(out, "layer-content\n"); /* one reference left */
    free(out);
    assert_int_equal(uvm_remove_scsi(vm, layer), 0);
    assert_int_equal(itest_guest_count(vm, scsi_count_cmd), 0);
}

static void
test_formats(void **state)
{
    itest_sh("mkdir -p %s/fmt && echo format-ok > %s/fmt/check && "
       "mkfs.ext4 -q -F -b 4096 -d %s/fmt %s/fmt.raw 16M",
       dir, dir, dir, dir);
    const char *fmts[][2] = {{"qcow2", "qcow2"}, {"vpc", "vhd"}, {"vhdx", "vhdx"}};
    for (int i = 0; i < 3; i++) {
        char img[128], mnt[32], cmd[64];
        /* Misleading names: the format comes from the content. */
        snprintf(img, sizeof(img), "%s/fmt-%s.img", dir, fmts[i][1]);
        itest_sh("qemu-img convert -O %s %s/fmt.raw %s", fmts[i][0], dir, img);
        snprintf(mnt, sizeof(mnt), "/fmt-%s", fmts[i][1]);
        assert_int_equal(uvm_add_scsi(vm, img, mnt, NULL, NULL), 0);
        snprintf(cmd, sizeof(cmd), "cat %s/check", mnt);
        char *out = itest_guest(vm, cmd);
        assert_string_equal(out, "format-ok\n");
        free(out);
        assert_int_equal(uvm_remove_scsi(vm, img), 0);
    }
}

static void
test_bad_inputs(void **state)
{
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/missing.img", dir);
    assert_int_equal(uvm_add_scsi(vm, missing, "/m", NULL, NULL), UVM_E_NOT_FOUND);
    assert_non_null(strstr(uvm_last_error(), missing));
    assert_int_equal(uvm_add_scsi(vm, dir, "/m", NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), dir));
    /* Not a filesystem the guest can mount: the attach is rolled back. */
    char junk[128];
    snprintf(junk, sizeof(junk), "%s/junk.img", dir);
    itest_sh("head -c 4M /dev/zero > %s", junk); /* no filesystem at all */
    assert_int_equal(uvm_add_scsi(vm, junk, "/junk", NULL, NULL), UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), junk));
    assert_int_equal(itest_guest_count(vm, scsi_count_cmd), 0);
    assert_int_equal(uvm_remove_scsi(vm, junk), UVM_E_NOT_ATTACHED);
    /* A disk held by another VM: QEMU's image lock refuses, nothing is left attached. */
    struct uvm *other = itest_boot("itest-scsi-other");
    assert_int_equal(uvm_add_scsi(other, disks[1], NULL, NULL, NULL), 0);
    assert_int_equal(uvm_add_scsi(vm, disks[1], NULL, NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), disks[1]));
    assert_non_null(strstr(uvm_last_error(), "lock"));
    uvm_close(other); /* releases the lock: the disk can be attached here now */
    assert_int_equal(uvm_add_scsi(vm, disks[1], NULL, NULL, NULL), 0);
    assert_int_equal(uvm_remove_scsi(vm, disks[1]), 0);
    assert_int_equal(itest_guest_count(vm, scsi_count_cmd), 0);
}

struct worker {
    int first, count, rounds;
    int failures;
    char msg[256];
};

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    for (int r = 0; r < w->rounds; r++) {
        for (int i = w->first; i < w->first + w->count; i++) {
            char path[16];
            snprintf(path, sizeof(path), "/c%d", i);
            int rc = uvm_add_scsi(vm, disks[i], (i + r) % 2 ? path : NULL, NULL, NULL);
            if (rc < 0 && !w->failures++)
                snprintf(w->msg, sizeof(w->msg), "add %d: %s", i, uvm_last_error());
        }
        for (int i = w->first; i < w->first + w->count; i++) {
            int rc = uvm_remove_scsi(vm, disks[i]);
            if (rc < 0 && !w->failures++)
                snprintf(w->msg, sizeof(w->msg), "remove %d: %s", i, uvm_last_error());
        }
    }
    return NULL;
}

/* 8 threads adding and removing 64 disks at once. */
static void
test_concurrent(void **state)
{
    struct worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.first = i * 8, .count = 8, .rounds = 2};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        if (w[i].failures)
            fail_msg("worker %d: %d failures, first: %s", i, w[i].failures, w[i].msg);
    }
    assert_int_equal(itest_guest_count(vm, scsi_count_cmd), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /c[0-9]* ' /proc/mounts || true"), 0);
    /* Bookkeeping agrees: everything can be attached again. */
    for (int i = 0; i < NDISKS; i++)
        assert_int_equal(uvm_add_scsi(vm, disks[i], NULL, NULL, NULL), 0);
    for (int i = 0; i < NDISKS; i++)
        assert_int_equal(uvm_remove_scsi(vm, disks[i]), 0);
}

/* Two threads adding the same layer: both return after it is mounted, one reference each. */
static void *
add_layer(void *arg)
{
    return (void *)(intptr_t)uvm_add_scsi_layer(vm, arg, NULL, NULL);
}

static void
test_concurrent_same_layer(void **state)
{
    char layer[128];
    snprintf(layer, sizeof(layer), "%s/layer.img", dir);
    pthread_t a, b;
    pthread_create(&a, NULL, add_layer, layer);
    pthread_create(&b, NULL, add_layer, layer);
    void *ra, *rb;
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    assert_int_equal((int)(intptr_t)ra, 0);
    assert_int_equal((int)(intptr_t)rb, 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/S0/[0-9]* ext4 ro' /proc/mounts"), 1);
    assert_int_equal(uvm_remove_scsi(vm, layer), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/S0/[0-9]* ext4 ro' /proc/mounts"), 1);
    assert_int_equal(uvm_remove_scsi(vm, layer), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/S0/' /proc/mounts || true"), 0);
}

static void
test_close_releases_everything(void **state)
{
    struct uvm *tmp = itest_boot("itest-scsi-close");
    assert_int_equal(uvm_add_scsi(tmp, disks[2], "/data", NULL, NULL), 0);
    uvm_close(tmp); /* QEMU gone: no block node, no image lock, no runtime directory */
    char rundir[256];
    snprintf(rundir, sizeof(rundir), "%s/itest-scsi-close", itest_runtime_dir());
    struct stat st;
    assert_int_equal(stat(rundir, &st), -1);
    assert_int_equal(itest_qemu_pid("itest-scsi-close"), -1);
    assert_int_equal(uvm_add_scsi(vm, disks[2], NULL, NULL, NULL), 0);
    assert_int_equal(uvm_remove_scsi(vm, disks[2]), 0);
}

int
main(void)
{
    itest_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_only_64),
        cmocka_unit_test(test_mounted_64),
        cmocka_unit_test(test_data_reaches_host),
        cmocka_unit_test(test_root_only_image),
        cmocka_unit_test(test_layer_read_only),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_concurrent_same_layer),
        cmocka_unit_test(test_close_releases_everything),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return itest_finish(failed);
}

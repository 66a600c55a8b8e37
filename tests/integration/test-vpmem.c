/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VPMem devices against real VMs: hcsshim's TestVPMEM (one layer added 128 times), distinct
 * images up to the configured count, parked devices, image shapes, bad inputs, VHD boot. */
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

#define NDISTINCT 34 /* crosses the first 32-slot bridge */

static char dir[64];
static char images[NDISTINCT + 1][128];

/* An ext4 image (4 KiB blocks, for DAX) holding /id with `id` in it; `size` like "16M". */
static void
make_image(const char *path, const char *size, int id)
{
    itest_sh("mkdir -p %s/src%d && echo image-%d > %s/src%d/id && truncate -s %s %s && "
             "mkfs.ext4 -q -F -b 4096 -d %s/src%d %s",
             dir, id, id, dir, id, size, path, dir, id, path);
}

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-vpmem-it-XXXXXX");
    assert_non_null(mkdtemp(dir));
    for (int i = 0; i <= NDISTINCT; i++) {
        snprintf(images[i], sizeof(images[i]), "%s/layer%d.img", dir, i);
        make_image(images[i], "4M", i);
    }
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static struct uvm *
boot(const char *id, int vpmem, bool vhd)
{
    struct uvm_options o = {.id = id,
                            .memory_mb = 512,
                            .has_vpmem_device_count = true,
                            .vpmem_device_count = vpmem,
                            .has_preferred_rootfs_type = vhd,
                            .preferred_rootfs_type = vhd ? UVM_ROOTFS_VHD : UVM_ROOTFS_INITRD};
    struct uvm *vm = NULL;
    if (uvm_create(&o, &vm) < 0)
        fail_msg("create: %s", uvm_last_error());
    if (itest_start(vm) < 0)
        fail_msg("start: %s", uvm_last_error());
    return vm;
}

static void
add_ok(struct uvm *vm, const char *path, bool expose, uint32_t want_n, const char *want_path)
{
    uint32_t n = 999;
    char *p = NULL;
    if (uvm_add_vpmem(vm, path, expose, &n, &p) < 0)
        fail_msg("add vpmem %s: %s", path, uvm_last_error());
    assert_int_equal(n, want_n);
    assert_string_equal(p, want_path);
    free(p);
}

/* hcsshim TestVPMEM: the same layer 128 times -> device 0, /tmp/p0; 128 removes. */
static void
test_same_layer_128(void **state)
{
    struct uvm *vm = boot("itest-vpmem-128", 64, false);
    for (int i = 0; i < 128; i++)
        add_ok(vm, images[0], i % 2 == 0, 0, "/tmp/p0"); /* later calls ignore expose */
    char *out = itest_guest(vm, "cat /tmp/p0/id; grep ' /tmp/p0 ' /proc/mounts");
    assert_non_null(strstr(out, "image-0\n"));
    assert_non_null(strstr(out, " ext4 ro"));
    assert_non_null(strstr(out, "dax"));
    free(out);
    assert_int_equal(itest_guest_count(vm, "touch /tmp/p0/x 2>&1 | grep -c 'Read-only' || true"),
                     1);
    for (int i = 0; i < 127; i++)
        assert_int_equal(uvm_remove_vpmem(vm, images[0]), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/p0 ' /proc/mounts || true"), 1);
    assert_int_equal(uvm_remove_vpmem(vm, images[0]), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/p0 ' /proc/mounts || true"), 0);
    assert_int_equal(uvm_remove_vpmem(vm, images[0]), UVM_E_NOT_ATTACHED);
    assert_non_null(strstr(uvm_last_error(), "is not attached to VPMEM"));
    /* The parked device serves the same image again, without a hot-plug. */
    add_ok(vm, images[0], true, 0, "/tmp/p0");
    assert_int_equal(itest_guest_count(vm, "grep -c image-0 /tmp/p0/id"), 1);
    assert_int_equal(uvm_remove_vpmem(vm, images[0]), 0);
    uvm_close(vm);
}

/* Distinct images up to the configured count across two bridges, then
 * UVM_E_NO_AVAILABLE_LOCATION; parked numbers are not given to other images. */
static void
test_distinct_until_full(void **state)
{
    struct uvm *vm = boot("itest-vpmem-full", NDISTINCT, false);
    for (int i = 0; i < NDISTINCT; i++) {
        char want[16];
        snprintf(want, sizeof(want), "/tmp/p%d", i);
        add_ok(vm, images[i], i != 5, (uint32_t)i, i != 5 ? want : "");
    }
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/p[0-9]* ext4 ro' /proc/mounts"),
                     NDISTINCT - 1);
    assert_int_equal(itest_guest_count(vm, "grep -l image-33 /tmp/p33/id | wc -l"), 1);
    assert_int_equal(itest_guest_count(vm, "grep -l image-0 /tmp/p0/id | wc -l"), 1);
    uint32_t n = 7;
    char *p = (char *)"unchanged";
    assert_int_equal(uvm_add_vpmem(vm, images[NDISTINCT], true, &n, &p),
                     UVM_E_NO_AVAILABLE_LOCATION);
    assert_null(p);
    assert_int_equal(uvm_remove_vpmem(vm, images[3]), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/p3 ' /proc/mounts || true"), 0);
    assert_int_equal(uvm_add_vpmem(vm, images[NDISTINCT], true, NULL, NULL),
                     UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(strstr(uvm_last_error(), "kept plugged for removed images"));
    add_ok(vm, images[3], true, 3, "/tmp/p3");
    assert_int_equal(itest_guest_count(vm, "grep -l image-3 /tmp/p3/id | wc -l"), 1);
    for (int i = 0; i < NDISTINCT; i++)
        assert_int_equal(uvm_remove_vpmem(vm, images[i]), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/p' /proc/mounts || true"), 0);
    uvm_close(vm);
}

/* A fixed VHD (footer not mapped), an erofs image, an unaligned image (padded private copy),
 * bad inputs; after close nothing is left. */
static void
test_shapes_and_errors(void **state)
{
    char vhd[160], erofs[160], odd[160], qcow[160], junk[160];
    snprintf(vhd, sizeof(vhd), "%s/layer.vhd", dir);
    snprintf(erofs, sizeof(erofs), "%s/layer.erofs", dir);
    snprintf(odd, sizeof(odd), "%s/odd.img", dir);
    snprintf(qcow, sizeof(qcow), "%s/disk.qcow2", dir);
    snprintf(junk, sizeof(junk), "%s/junk.img", dir);
    make_image(vhd, "4M", 100);
    itest_sh("qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on %s %s.tmp && "
             "mv %s.tmp %s",
             vhd, vhd, vhd, vhd);
    itest_sh("mkdir -p %s/e && echo image-erofs > %s/e/id && mkfs.erofs %s %s/e >/dev/null && "
             "truncate -s 2M %s",
             dir, dir, erofs, dir, erofs);
    make_image(odd, "3000K", 101);
    itest_sh("qemu-img create -q -f qcow2 %s 16M && head -c 2097152 /dev/urandom > %s", qcow, junk);
    struct stat before;
    assert_int_equal(stat(odd, &before), 0);

    struct uvm *vm = boot("itest-vpmem-shapes", 8, false);
    add_ok(vm, vhd, true, 0, "/tmp/p0");
    add_ok(vm, erofs, true, 1, "/tmp/p1");
    add_ok(vm, odd, true, 2, "/tmp/p2");
    char *out = itest_guest(vm, "cat /tmp/p0/id /tmp/p1/id /tmp/p2/id");
    assert_string_equal(out, "image-100\nimage-erofs\nimage-101\n");
    free(out);
    struct stat after;
    assert_int_equal(stat(odd, &after), 0);
    assert_int_equal(after.st_size, before.st_size); /* the user's file is not padded */

    assert_int_equal(uvm_add_vpmem(vm, "/nonexistent/layer.img", true, NULL, NULL),
                     UVM_E_NOT_FOUND);
    assert_non_null(strstr(uvm_last_error(), "/nonexistent/layer.img"));
    assert_int_equal(uvm_add_vpmem(vm, dir, true, NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_vpmem(vm, qcow, true, NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "qcow2"));
    /* Junk: plugged, but the guest cannot mount it; the device stays kept for that file. */
    assert_true(uvm_add_vpmem(vm, junk, true, NULL, NULL) < 0);
    assert_int_equal(uvm_remove_vpmem(vm, junk), UVM_E_NOT_ATTACHED);
    /* The failures took at most the junk image's number: the next image gets number 4. */
    add_ok(vm, images[1], false, 4, "");
    assert_int_equal(uvm_remove_vpmem(vm, "relative/missing"), UVM_E_NOT_ATTACHED);

    char rundir[256], copy[300];
    snprintf(rundir, sizeof(rundir), "%s/itest-vpmem-shapes", itest_runtime_dir());
    snprintf(copy, sizeof(copy), "%s/vpmem2.img", rundir);
    assert_int_equal(access(copy, F_OK), 0);
    uvm_close(vm);
    assert_int_equal(access(rundir, F_OK), -1);
    assert_int_equal(itest_qemu_pid("itest-vpmem-shapes"), -1);
}

/* VHD boot: device 0 holds the root file system and is never handed out. */
static void
test_vhd_boot_numbers(void **state)
{
    struct uvm *vm = boot("itest-vpmem-vhd", 3, true);
    add_ok(vm, images[0], true, 1, "/tmp/p1");
    add_ok(vm, images[1], true, 2, "/tmp/p2");
    assert_int_equal(uvm_add_vpmem(vm, images[2], true, NULL, NULL), UVM_E_NO_AVAILABLE_LOCATION);
    char *out = itest_guest(vm, "cat /tmp/p1/id /tmp/p2/id; grep -c ' / erofs ro' /proc/mounts");
    assert_string_equal(out, "image-0\nimage-1\n1\n");
    free(out);
    uvm_close(vm);
}

int
main(void)
{
    itest_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_layer_128),
        cmocka_unit_test(test_distinct_until_full),
        cmocka_unit_test(test_shapes_and_errors),
        cmocka_unit_test(test_vhd_boot_numbers),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return itest_finish(failed);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Booting from the read-only VHD root filesystem on VPMem device 0 (hcsshim
 * TestLCOWUVMNoSCSISingleVPMemVHD). */
#include <stdarg.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static void
test_vhd_boot(void **state)
{
    struct uvm_options o = {.id = "itest-vhd",
                            .memory_mb = 256,
                            .has_vpmem_device_count = true,
                            .vpmem_device_count = 1,
                            .has_scsi_controller_count = true,
                            .scsi_controller_count = 0,
                            .has_preferred_rootfs_type = true,
                            .preferred_rootfs_type = UVM_ROOTFS_VHD};
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), 0);
    /* Boot files without vhd-initrd.img (the tailored kernel has the pmem drivers built in):
     * the VHD boots with no initrd at all. */
    char tiny[4096];
    snprintf(tiny, sizeof(tiny), "%s/vhd-initrd.img", getenv("UVM_BOOT_FILES_PATH"));
    bool has_initrd = false;
    for (const char *const *a = uvm_qemu_argv(vm); *a; a++)
        has_initrd |= !strcmp(*a, "-initrd");
    assert_int_equal(has_initrd, access(tiny, F_OK) == 0);
    if (itest_start(vm) < 0)
        fail_msg("start: %s", uvm_last_error());
    struct itest_run r;
    const char *argv[] = {"sh", "-c",
                          "cat /proc/cmdline; grep ' / ' /proc/mounts; touch /x 2>&1; "
                          "touch /tmp/x && echo tmp-ok",
                          NULL};
    assert_int_equal(itest_run(vm, argv, NULL, &r), 0);
    assert_int_equal(strncmp(r.out, "root=/dev/pmem0 init=/init", 26), 0);
    assert_non_null(strstr(r.out, " / erofs ro"));
    assert_non_null(strstr(r.out, "Read-only file system"));
    assert_non_null(strstr(r.out, "tmp-ok"));
    itest_run_free(&r);
    uvm_close(vm);
}

static void
test_vhd_needs_vpmem(void **state)
{
    struct uvm_options o = {.has_vpmem_device_count = true,
                            .vpmem_device_count = 0,
                            .has_preferred_rootfs_type = true,
                            .preferred_rootfs_type = UVM_ROOTFS_VHD};
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "PreferredRootFSTypeVHD requires at least one VPMem device");
}

int
main(void)
{
    itest_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vhd_boot),
        cmocka_unit_test(test_vhd_needs_vpmem),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return itest_finish(failed);
}

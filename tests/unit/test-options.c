/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Option validation: hcsshim's create_test.go cases with their exact texts, and every option. */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "options.h"
#include "uvm.h"

static char bootdir[64];

static void
touch(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
}

static int
setup(void **state)
{
    strcpy(bootdir, "/tmp/uvm-opt-XXXXXX");
    assert_non_null(mkdtemp(bootdir));
    touch(bootdir, "kernel");
    touch(bootdir, "initrd.img");
    touch(bootdir, "rootfs.vhd");
    touch(bootdir, "custom.vhdx");
    touch(bootdir, "custom.img");
    touch(bootdir, "custom.txt");
    unsetenv("UVM_BOOT_FILES_PATH");
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bootdir);
    return system(cmd);
}

static struct uvm_options
linux_opts(void)
{
    struct uvm_options o = {.operating_system = "linux", .boot_files_path = bootdir};
    return o;
}

static int
resolve(const struct uvm_options *o, struct uvm_config *c)
{
    return options_resolve(o, c);
}

/* hcsshim TestCreateBadOS */
static void
test_bad_os(void **state)
{
    struct uvm_options o = {.operating_system = "foobar"};
    struct uvm_config c;
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), UVM_E_INVALID_ARGUMENT);
    assert_null(vm);
    assert_string_equal(uvm_last_error(), "unsupported operating system \"foobar\"");
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
}

/* hcsshim TestCreateBadBootFilesPath */
static void
test_bad_boot_files_path(void **state)
{
    struct uvm_options o = {.operating_system = "linux", .boot_files_path = "/does/not/exist/I/hope"};
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), UVM_E_NOT_FOUND);
    assert_string_equal(uvm_last_error(), "kernel '/does/not/exist/I/hope/kernel' not found");
}

/* hcsshim TestCreateWCOWBadLayerFolders */
static void
test_wcow_bad_layer_folders(void **state)
{
    struct uvm_options o = {.operating_system = "windows"};
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "at least 2 LayerFolders must be supplied");
}

static void
test_null_options(void **state)
{
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(NULL, &vm), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "no options supplied to create");
    assert_int_equal(uvm_strerror(UVM_E_NOT_ATTACHED)[0], 'n');
    assert_string_equal(uvm_strerror(UVM_E_NO_SCSI_CONTROLLERS),
                        "no SCSI controllers configured for this utility VM");
    assert_string_equal(uvm_strerror(UVM_E_TOO_MANY_ATTACHMENTS), "too many SCSI attachments");
    assert_string_equal(uvm_strerror(UVM_E_SCSI_LAYER_WCOW_UNSUPPORTED),
                        "SCSI attached layers are not supported for WCOW");
    assert_string_equal(uvm_strerror(UVM_E_NO_AVAILABLE_LOCATION), "no available location");
    assert_string_equal(uvm_strerror(UVM_E_ALREADY_ATTACHED), "already attached");
    assert_string_equal(uvm_strerror(-2), "No such file or directory");
}

static void
test_defaults(void **state)
{
    struct uvm_options o = {.boot_files_path = bootdir};
    struct uvm_config c;
    assert_int_equal(resolve(&o, &c), 0);
    assert_false(c.windows);
    assert_int_equal(strlen(c.id), 36);
    assert_int_equal(c.id[14], '4');
    assert_int_equal(c.memory_mb, 1024);
    assert_true(c.processor_count == 2 || (c.processor_count == 1 && sysconf(_SC_NPROCESSORS_ONLN) == 1));
    assert_int_equal(c.vpmem_count, UVM_DEFAULT_VPMEM);
    assert_int_equal(c.scsi_count, 1);
    assert_int_equal(c.rootfs_type, UVM_ROOTFS_INITRD);
    assert_string_equal(c.rootfs_file, "initrd.img");
    assert_false(c.has_memory_backing);
    assert_non_null(c.owner);
    assert_true(strlen(c.owner) > 0);
    assert_int_equal(c.start_timeout_ms, UVM_DEFAULT_START_TIMEOUT_MS);
    config_release(&c);

    /* The environment supplies the boot files path when the option does not. */
    setenv("UVM_BOOT_FILES_PATH", bootdir, 1);
    o.boot_files_path = NULL;
    assert_int_equal(resolve(&o, &c), 0);
    assert_string_equal(c.boot_files_path, bootdir);
    config_release(&c);
    unsetenv("UVM_BOOT_FILES_PATH");
}

static void
test_vpmem_count(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    o.has_vpmem_device_count = true;
    int32_t bad[] = {-1, 129, INT32_MAX};
    for (size_t i = 0; i < 3; i++) {
        o.vpmem_device_count = bad[i];
        assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
        assert_string_equal(uvm_last_error(), "vpmem device count must between 0 and 128");
    }
    int32_t good[] = {0, 1, 128};
    for (size_t i = 0; i < 3; i++) {
        o.vpmem_device_count = good[i];
        assert_int_equal(resolve(&o, &c), 0);
        assert_int_equal(c.vpmem_count, (uint32_t)good[i]);
        config_release(&c);
    }
}

static void
test_scsi_count(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    o.has_scsi_controller_count = true;
    o.scsi_controller_count = 5;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "SCSI controller count must be between 0 and 4");
    o.scsi_controller_count = -1;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    for (int n = 0; n <= 4; n++) {
        o.scsi_controller_count = n;
        assert_int_equal(resolve(&o, &c), 0);
        assert_int_equal(c.scsi_count, (uint32_t)n);
        config_release(&c);
    }
}

static void
test_rootfs(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    o.has_preferred_rootfs_type = true;
    o.preferred_rootfs_type = UVM_ROOTFS_VHD;
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.rootfs_type, UVM_ROOTFS_VHD);
    assert_string_equal(c.rootfs_file, "rootfs.vhd");
    config_release(&c);

    o.has_vpmem_device_count = true;
    o.vpmem_device_count = 0;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "PreferredRootFSTypeVHD requires at least one VPMem device");
    o.has_vpmem_device_count = false;

    o.preferred_rootfs_type = (enum uvm_rootfs_type)7;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "invalid PreferredRootFSType");

    /* Explicit files: the type follows the extension (what hcsshim meant). */
    o.has_preferred_rootfs_type = false;
    o.rootfs_file = "custom.vhdx";
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.rootfs_type, UVM_ROOTFS_VHD);
    config_release(&c);
    o.rootfs_file = "custom.img";
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.rootfs_type, UVM_ROOTFS_INITRD);
    config_release(&c);
    o.rootfs_file = "custom.txt";
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "unsupported filename extension for RootFSFile"));
    o.rootfs_file = "missing.img";
    assert_int_equal(resolve(&o, &c), UVM_E_NOT_FOUND);
    char want[256];
    snprintf(want, sizeof(want), "missing.img not found under %s", bootdir);
    assert_string_equal(uvm_last_error(), want);

    o.rootfs_file = NULL;
    o.kernel_file = "vmlinux-other";
    assert_int_equal(resolve(&o, &c), UVM_E_NOT_FOUND);
    snprintf(want, sizeof(want), "kernel '%s/vmlinux-other' not found", bootdir);
    assert_string_equal(uvm_last_error(), want);
}

static void
test_missing_initrd(void **state)
{
    char dir[] = "/tmp/uvm-opt2-XXXXXX";
    assert_non_null(mkdtemp(dir));
    touch(dir, "kernel");
    struct uvm_options o = {.boot_files_path = dir};
    struct uvm_config c;
    assert_int_equal(resolve(&o, &c), UVM_E_NOT_FOUND);
    assert_non_null(strstr(uvm_last_error(), "initrd not found"));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void
test_id(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    const char *bad[] = {"../etc", "a/b", ".hidden", "with space",
                         "0123456789012345678901234567890123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.id = bad[i];
        assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
        assert_non_null(strstr(uvm_last_error(), "invalid ID"));
    }
    o.id = "TestAddRemoveSCSILCOW_1.2-x";
    assert_int_equal(resolve(&o, &c), 0);
    assert_string_equal(c.id, o.id);
    config_release(&c);
}

static void
test_resources(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    o.memory_mb = 64;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "memory 64 MB"));
    o.memory_mb = 512;
    o.processor_count = 300;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "processor count 300"));
    o.processor_count = 3;
    o.owner = "runtime-x";
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.memory_mb, 512);
    assert_int_equal(c.processor_count, 3);
    assert_string_equal(c.owner, "runtime-x");
    config_release(&c);
    o.owner = "bad\nowner";
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
}

static void
test_memory_backing(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    o.has_memory_backing_type = true;
    for (int t = 0; t <= 2; t++) {
        o.memory_backing_type = (enum uvm_memory_backing)t;
        assert_int_equal(resolve(&o, &c), 0);
        assert_true(c.has_memory_backing);
        assert_int_equal(c.memory_backing, t);
        config_release(&c);
    }
    o.memory_backing_type = (enum uvm_memory_backing)3;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "invalid memory backing type 3");
}

static void
test_console_and_kernel_options(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    o.console_pipe = "relative/path";
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    o.console_pipe = "/tmp/a\nb";
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    o.console_pipe = "/tmp/console.log";
    o.kernel_boot_options = "a -- b";
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    o.kernel_boot_options = "bad\ttab";
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    o.kernel_boot_options = "loglevel=7";
    o.enable_graphics_console = true;
    assert_int_equal(resolve(&o, &c), 0);
    assert_string_equal(c.console_pipe, "/tmp/console.log");
    assert_string_equal(c.kernel_boot_options, "loglevel=7");
    assert_true(c.graphics_console);
    config_release(&c);
}

static void
test_start_timeout(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    setenv("UVM_START_TIMEOUT_MS", "5000", 1);
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.start_timeout_ms, 5000);
    config_release(&c);
    setenv("UVM_START_TIMEOUT_MS", "garbage", 1);
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.start_timeout_ms, UVM_DEFAULT_START_TIMEOUT_MS);
    config_release(&c);
    unsetenv("UVM_START_TIMEOUT_MS");
    o.start_timeout_ms = 77;
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.start_timeout_ms, 77);
    config_release(&c);
}

/* uvm_options.timeouts: 0 is each default, 1..UVM_TIMEOUT_MAX_MS as given, above is refused
 * naming the option. */
static void
test_timeouts(void **state)
{
    struct uvm_options o = linux_opts();
    struct uvm_config c;
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.timeouts.qmp_command_ms, 10000);
    assert_int_equal(c.timeouts.unplug_ms, 10000);
    assert_int_equal(c.timeouts.agent_call_ms, 30000);
    assert_int_equal(c.timeouts.container_ms, 60000);
    config_release(&c);
    o.timeouts = (struct uvm_timeouts){1, 2, UVM_TIMEOUT_MAX_MS, 4};
    assert_int_equal(resolve(&o, &c), 0);
    assert_int_equal(c.timeouts.qmp_command_ms, 1);
    assert_int_equal(c.timeouts.unplug_ms, 2);
    assert_int_equal(c.timeouts.agent_call_ms, UVM_TIMEOUT_MAX_MS);
    assert_int_equal(c.timeouts.container_ms, 4);
    config_release(&c);
    o.timeouts.agent_call_ms = UVM_TIMEOUT_MAX_MS + 1;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "timeouts.agent_call_ms 86400001 ms is out of range "
                                          "(1..86400000, or 0 for the default 30000)");
    o.timeouts = (struct uvm_timeouts){.qmp_command_ms = UINT32_MAX};
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "timeouts.qmp_command_ms 4294967295 ms is out of range "
                                          "(1..86400000, or 0 for the default 10000)");
    o.timeouts = (struct uvm_timeouts){.unplug_ms = UVM_TIMEOUT_MAX_MS + 1};
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "timeouts.unplug_ms"));
    o.timeouts = (struct uvm_timeouts){.container_ms = UVM_TIMEOUT_MAX_MS + 1};
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "timeouts.container_ms"));
}

static void
test_windows(void **state)
{
    char dir[] = "/tmp/uvm-wcow-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char base[256], scratch[256], uvmdir[300], cmd[600];
    snprintf(base, sizeof(base), "%s/base", dir);
    snprintf(scratch, sizeof(scratch), "%s/scratch/new", dir);
    snprintf(uvmdir, sizeof(uvmdir), "%s/UtilityVM", base);
    const char *layers[] = {base, scratch};
    struct uvm_options o = {.operating_system = "windows", .layer_folders = layers,
                            .layer_folder_count = 2};
    struct uvm_config c;
    assert_int_equal(resolve(&o, &c), UVM_E_NOT_FOUND);
    assert_string_equal(uvm_last_error(), "failed to locate utility VM folder from layer folders: "
                                          "utility VM folder could not be found in layers");
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", uvmdir);
    assert_int_equal(system(cmd), 0);
    o.has_vpmem_device_count = true;
    assert_int_equal(resolve(&o, &c), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "cannot specify VPMemDeviceCount for Windows utility VMs");
    o.has_vpmem_device_count = false;
    o.has_scsi_controller_count = true; /* ignored for windows, as in hcsshim */
    o.scsi_controller_count = 0;
    assert_int_equal(resolve(&o, &c), 0);
    assert_true(c.windows);
    assert_int_equal(c.scsi_count, 1);
    assert_string_equal(c.uvm_folder, base);
    struct stat st;
    assert_int_equal(stat(c.scratch_path, &st), 0);
    config_release(&c);
    /* A windows UVM is created (document with the scratch on SCSI 0:0), but cannot start here. */
    char rt[300];
    snprintf(rt, sizeof(rt), "%s/run", dir);
    setenv("UVM_RUNTIME_DIR", rt, 1);
    o.id = "wcow-1";
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), 0);
    assert_string_equal(uvm_os(vm), "windows");
    assert_non_null(strstr(uvm_document(vm), "sandbox.vhdx"));
    assert_null(uvm_qemu_argv(vm));
    assert_int_equal(uvm_start(vm), UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "windows"));
    assert_int_equal(uvm_terminate(vm), 0);
    uvm_close(vm);
    unsetenv("UVM_RUNTIME_DIR");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_os),
        cmocka_unit_test(test_bad_boot_files_path),
        cmocka_unit_test(test_wcow_bad_layer_folders),
        cmocka_unit_test(test_null_options),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_vpmem_count),
        cmocka_unit_test(test_scsi_count),
        cmocka_unit_test(test_rootfs),
        cmocka_unit_test(test_missing_initrd),
        cmocka_unit_test(test_id),
        cmocka_unit_test(test_resources),
        cmocka_unit_test(test_memory_backing),
        cmocka_unit_test(test_console_and_kernel_options),
        cmocka_unit_test(test_start_timeout),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_windows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VM document and QEMU argv golden files (UVM_TEST_REGENERATE=1 rewrites them), and the
 * additional-JSON merge. */
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
#include <jansson.h>

#include "argv.h"
#include "document.h"
#include "options.h"
#include "uvm.h"

#define BOOT "/tmp/uvm-golden-boot"
#define WCOW "/tmp/uvm-golden-wcow"

static const char *datadir;

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void
compare_golden(const char *name, const char *actual)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", datadir, name);
    if (getenv("UVM_TEST_REGENERATE")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(actual, f);
        fclose(f);
        return;
    }
    char *want = slurp(path);
    if (!want)
        fail_msg("golden file %s is missing (run with UVM_TEST_REGENERATE=1)", path);
    if (strcmp(want, actual)) {
        fprintf(stderr, "--- %s\n%s\n+++ actual\n%s\n", path, want, actual);
        free(want);
        fail_msg("%s differs from the golden file", name);
    }
    free(want);
}

static void
check_case(const char *name, const struct uvm_options *o)
{
    struct uvm_config c;
    if (options_resolve(o, &c) < 0)
        fail_msg("resolve %s: %s", name, uvm_last_error());
    json_t *doc = document_build(&c);
    assert_int_equal(document_merge(doc, c.additional_json), 0);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t n = strlen(text);
    text = realloc(text, n + 2);
    strcpy(text + n, "\n");
    char file[128];
    snprintf(file, sizeof(file), "%s.json", name);
    compare_golden(file, text);
    free(text);
    if (!c.windows) {
        struct argv_ctx ctx = {.qemu = "qemu-system-x86_64",
                               .accel = "tcg",
                               .bios = "/usr/share/qemu/qboot.rom",
                               .name = c.id,
                               .rundir = "/run/uvm/golden"};
        char **argv = NULL;
        assert_int_equal(argv_build(doc, &ctx, &argv), 0);
        char *line = argv_join((const char *const *)argv);
        n = strlen(line);
        line = realloc(line, n + 2);
        strcpy(line + n, "\n");
        snprintf(file, sizeof(file), "%s.argv", name);
        compare_golden(file, line);
        free(line);
        argv_free(argv);
    }
    json_decref(doc);
    config_release(&c);
}

static int
setup(void **state)
{
    datadir = getenv("UVM_TEST_DATA");
    if (!datadir)
        datadir = "tests/data";
    assert_int_equal(system("mkdir -p " BOOT " " WCOW "/base/UtilityVM " WCOW "/scratch && "
                            "touch " BOOT "/kernel " BOOT "/initrd.img && truncate -s 4M " BOOT "/rootfs.vhd && "
                            "touch " WCOW "/scratch/sandbox.vhdx"),
                     0);
    return 0;
}

static int
teardown(void **state)
{
    return system("rm -rf " BOOT " " WCOW);
}

static void
test_default_linux(void **state)
{
    struct uvm_options o = {.id = "golden", .owner = "test", .boot_files_path = BOOT};
    o.processor_count = 2;
    check_case("linux-default", &o);
}

static void
test_debug_linux(void **state)
{
    struct uvm_options o = {.id = "golden-debug",
                            .owner = "test",
                            .boot_files_path = BOOT,
                            .memory_mb = 2048,
                            .processor_count = 4,
                            .console_pipe = "/tmp/console,1.log",
                            .kernel_boot_options = "loglevel=7 debug",
                            .has_scsi_controller_count = true,
                            .scsi_controller_count = 2,
                            .has_vpmem_device_count = true,
                            .vpmem_device_count = 0,
                            .has_memory_backing_type = true,
                            .memory_backing_type = UVM_MEMORY_PHYSICAL};
    check_case("linux-debug", &o);
}

static void
test_vhd_linux(void **state)
{
    struct uvm_options o = {.id = "golden-vhd",
                            .owner = "test",
                            .boot_files_path = BOOT,
                            .processor_count = 1,
                            .has_preferred_rootfs_type = true,
                            .preferred_rootfs_type = UVM_ROOTFS_VHD,
                            .has_scsi_controller_count = true,
                            .scsi_controller_count = 0,
                            .has_memory_backing_type = true,
                            .memory_backing_type = UVM_MEMORY_VIRTUAL_DEFERRED,
                            .enable_graphics_console = true};
    check_case("linux-vhd-graphics", &o);
}

static void
test_merged_linux(void **state)
{
    struct uvm_options o = {
        .id = "golden-merged",
        .owner = "test",
        .boot_files_path = BOOT,
        .processor_count = 2,
        .additional_hcs_document_json =
            "{\"VirtualMachine\":{\"ComputeTopology\":{\"Memory\":{\"SizeInMB\":512},"
            "\"Processor\":{\"Count\":1}},\"Devices\":null},\"Extra\":{\"Key\":[1,2]}}"};
    check_case("linux-merged", &o);
}

static void
test_windows(void **state)
{
    const char *layers[] = {WCOW "/base", WCOW "/scratch"};
    struct uvm_options o = {.id = "golden-wcow",
                            .owner = "test",
                            .operating_system = "windows",
                            .layer_folders = layers,
                            .layer_folder_count = 2,
                            .processor_count = 2,
                            .memory_mb = 2048};
    check_case("windows", &o);
}

static void
merge_case(const char *base, const char *add, const char *want)
{
    json_t *b = json_loads(base, 0, NULL), *w = json_loads(want, 0, NULL);
    assert_non_null(b);
    assert_non_null(w);
    assert_int_equal(document_merge(b, add), 0);
    if (!json_equal(b, w)) {
        char *got = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("merge %s + %s = %s, want %s", base, add, got, want);
    }
    json_decref(b);
    json_decref(w);
}

static void
test_merge(void **state)
{
    merge_case("{\"a\":1}", "", "{\"a\":1}");
    merge_case("{\"a\":1}", "{\"a\":2}", "{\"a\":2}");
    merge_case("{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":{\"b\":3}}", "{\"a\":{\"b\":3,\"c\":2}}");
    merge_case("{\"a\":{\"b\":1}}", "{\"a\":5}", "{\"a\":5}");         /* type mismatch */
    merge_case("{\"a\":5}", "{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}");
    merge_case("{\"a\":{\"b\":1}}", "{\"a\":null}", "{\"a\":{\"b\":1}}"); /* null keeps maps */
    merge_case("{\"a\":1}", "{\"a\":null}", "{\"a\":null}");
    merge_case("{\"a\":[1,2]}", "{\"a\":[3]}", "{\"a\":[3]}");           /* arrays replace */
    merge_case("{\"a\":1}", "{\"b\":{\"c\":1}}", "{\"a\":1,\"b\":{\"c\":1}}");
    merge_case("{\"a\":{\"b\":{\"c\":{\"d\":1}}}}", "{\"a\":{\"b\":{\"c\":{\"e\":2}}}}",
               "{\"a\":{\"b\":{\"c\":{\"d\":1,\"e\":2}}}}");

    json_t *b = json_object();
    assert_int_equal(document_merge(b, "{not json"), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "failed to merge additional JSON '{not json': "));
    assert_int_equal(document_merge(b, "[1]"), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(document_merge(b, "{\"a\":1,\"a\":2}"), UVM_E_INVALID_ARGUMENT);
    json_decref(b);
}

static void
test_argv_rejects_bad_document(void **state)
{
    struct argv_ctx ctx = {.qemu = "q", .accel = "tcg", .name = "x", .rundir = "/r"};
    const char *bad[] = {
        "{}",
        "{\"VirtualMachine\":{\"ComputeTopology\":{\"Memory\":{\"SizeInMB\":\"1024\"},"
        "\"Processor\":{\"Count\":1}}}}",
        "{\"VirtualMachine\":{\"ComputeTopology\":{\"Memory\":{\"SizeInMB\":1024},"
        "\"Processor\":{\"Count\":0}}}}",
        "{\"VirtualMachine\":{\"ComputeTopology\":{\"Memory\":{\"SizeInMB\":1024},"
        "\"Processor\":{\"Count\":1}},\"Chipset\":{\"LinuxKernelDirect\":{\"KernelFilePath\":7}}}}",
    };
    const char *field[] = {"SizeInMB", "SizeInMB", "Processor.Count", "KernelFilePath"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *doc = json_loads(bad[i], 0, NULL);
        char **argv = NULL;
        assert_int_equal(argv_build(doc, &ctx, &argv), UVM_E_INVALID_ARGUMENT);
        assert_null(argv);
        assert_non_null(strstr(uvm_last_error(), field[i]));
        json_decref(doc);
    }
}

static void
test_accel_override(void **state)
{
    setenv("UVM_ACCEL", "kvm", 1);
    assert_string_equal(argv_detect_accel(), "kvm");
    setenv("UVM_ACCEL", "tcg", 1);
    assert_string_equal(argv_detect_accel(), "tcg");
    unsetenv("UVM_ACCEL");
    const char *a = argv_detect_accel();
    assert_true(!strcmp(a, "kvm") || !strcmp(a, "tcg"));
    /* kvm_pvm is software nesting: never KVM there. */
    struct stat st;
    if (stat("/sys/module/kvm_pvm", &st) == 0)
        assert_string_equal(a, "tcg");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_linux),
        cmocka_unit_test(test_debug_linux),
        cmocka_unit_test(test_vhd_linux),
        cmocka_unit_test(test_merged_linux),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_argv_rejects_bad_document),
        cmocka_unit_test(test_accel_override),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

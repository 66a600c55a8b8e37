/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Templates without QEMU: the manifest's encoding and its strict decoding (tplfile.h), the
 * command line's key and its comparison, the clone's options merged with the template's and
 * the refusals naming the option; the typed migration commands (qmpmig.h) against the scripted
 * fake QMP peer: the exact streams of a save and a load, QEMU's reason on a failure.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "fake-qmp.h"
#include "qmp.h"
#include "qmpmig.h"
#include "timeutil.h"
#include "tplfile.h"

static const char *const argv_clone[] = {
    "qemu-system-x86_64",
    "-name",
    "guest=clone-1,debug-threads=on",
    "-m",
    "256M",
    "-object",
    "memory-backend-file,id=mem,size=256M,mem-path=/proc/self/fd/6,share=off",
    "-append",
    "console=ttyS0 quiet -- -loglevel info",
    "-fsdev",
    "local,id=uvm9p,path=/run/uvm/clone-1/9p,security_model=none",
    "-chardev",
    "socket,id=serial0,fd=5",
    "-incoming",
    "defer",
    NULL};
static const char *const argv_source[] = {
    "qemu-system-x86_64",
    "-name",
    "guest=src,debug-threads=on",
    "-m",
    "256M",
    "-object",
    "memory-backend-file,id=mem,size=256M,mem-path=/proc/self/fd/6,share=on,prealloc=on",
    "-append",
    "console=ttyS0,115200 console=ttyS0 quiet -- -loglevel info",
    "-fsdev",
    "local,id=uvm9p,path=/run/uvm/src/9p,security_model=none",
    "-chardev",
    "file,id=serial0,path=/dev/fdset/1",
    "-add-fd",
    "fd=5,set=1,opaque=console",
    NULL};

static void
free_argv(char **a)
{
    for (char **p = a; p && *p; p++)
        free(*p);
    free(a);
}

static void
test_argv_key(void **state)
{
    (void)state;
    char **k1 = tpl_argv_key(argv_clone, "/run/uvm/clone-1");
    char **k2 = tpl_argv_key(argv_source, "/run/uvm/src");
    static const char *const want[] = {
        "qemu-system-x86_64",
        "-name",
        "<name>",
        "-m",
        "256M",
        "-object",
        "memory-backend-file,id=mem,size=256M,mem-path=/proc/self/fd/6",
        "-append",
        "<append>",
        "-fsdev",
        "local,id=uvm9p,path=<rundir>/9p,security_model=none",
        "-chardev",
        "<serial0>",
        NULL};
    for (size_t i = 0; want[i]; i++) {
        assert_non_null(k1[i]);
        assert_string_equal(k1[i], want[i]);
        assert_string_equal(k2[i], want[i]);
    }
    assert_null(k1[12 + 1]);
    assert_int_equal(tpl_argv_compare(k1, k2, "/t"), 0);
    free(k2[4]);
    k2[4] = xstrdup("512M");
    assert_int_equal(tpl_argv_compare(k1, k2, "/t"), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(),
                        "template '/t' does not match this VM's QEMU command line: argument 4 is "
                        "'-m 256M' in the template and '-m 512M' here");
    free(k2[13]);
    k2[13] = NULL; /* a shorter line */
    free(k2[4]);
    k2[4] = xstrdup("256M");
    free(k1[13]);
    k1[13] = xstrdup("-extra");
    k1[14] = NULL;
    assert_int_equal(tpl_argv_compare(k2, k1, "/t"), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "argument 13 is ' (end)' in the template and "
                                             "'<serial0> -extra' here"));
    free_argv(k1);
    free_argv(k2);
}

static void
fill(struct tpl_manifest *m)
{
    memset(m, 0, sizeof(*m));
    m->source_id = xstrdup("src");
    m->saved_at = 1767225600;
    m->qemu_version = xstrdup("7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)");
    m->qemu = (struct tpl_file){xstrdup("qemu"), xstrdup("/usr/bin/qemu-system-x86_64"), 100, 12345,
                                0};
    m->accel = xstrdup("tcg");
    m->boot_files_path = xstrdup("/boot/files");
    m->kernel_file = xstrdup("kernel");
    m->rootfs_file = xstrdup("initrd.img");
    m->memory_mb = 256;
    m->processor_count = 2;
    m->vpmem_count = 64;
    m->scsi_count = 1;
    m->kernel_boot_options = xstrdup("quiet=1");
    m->has_memory_backing = true;
    m->memory_backing = UVM_MEMORY_PHYSICAL;
    m->files[0] = (struct tpl_file){xstrdup("kernel"), xstrdup("/boot/files/kernel"), 22700016, -5,
                                    0xfedcba9876543210ull};
    m->n_files = 1;
    m->argv = tpl_argv_key(argv_source, "/run/uvm/src");
    m->ram_size = 256ull << 20;
    m->ram_used = 47ull << 20;
    m->ram_ctime_ns = 1796307127123456789;
    m->state_size = 500188;
    m->state_hash = 0x0123456789abcdefull;
}

static void
test_manifest_roundtrip(void **state)
{
    (void)state;
    struct tpl_manifest m, back;
    fill(&m);
    cleanup_free char *text = tpl_manifest_encode(&m);
    assert_non_null(text);
    assert_int_equal(tpl_manifest_decode(text, strlen(text), "/t", &back), 0);
    assert_string_equal(back.source_id, "src");
    assert_string_equal(back.qemu_version, m.qemu_version);
    assert_string_equal(back.qemu.path, m.qemu.path);
    assert_int_equal(back.qemu.mtime_ns, 12345);
    assert_string_equal(back.kernel_boot_options, "quiet=1");
    assert_true(back.has_memory_backing);
    assert_int_equal(back.memory_backing, UVM_MEMORY_PHYSICAL);
    assert_null(back.additional_json);
    assert_int_equal(back.n_files, 1);
    assert_int_equal(back.files[0].hash, 0xfedcba9876543210ull);
    assert_int_equal(back.files[0].mtime_ns, -5);
    assert_int_equal(back.ram_ctime_ns, 1796307127123456789);
    assert_int_equal(back.ram_used, 47ull << 20);
    assert_int_equal(back.state_hash, 0x0123456789abcdefull);
    for (size_t i = 0; m.argv[i]; i++)
        assert_string_equal(back.argv[i], m.argv[i]);
    cleanup_free char *again = tpl_manifest_encode(&back);
    assert_string_equal(text, again);
    tpl_manifest_release(&back);
    tpl_manifest_release(&m);
}

/* The encoded manifest with `from` replaced by `to` must be refused with `what`. */
static void
refused(const char *from, const char *to, const char *what)
{
    struct tpl_manifest m, back;
    fill(&m);
    cleanup_free char *text = tpl_manifest_encode(&m);
    tpl_manifest_release(&m);
    char *at = strstr(text, from);
    if (!at)
        fail_msg("'%s' is not in the manifest", from);
    cleanup_free char *bad = xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    int rc = tpl_manifest_decode(bad, strlen(bad), "/t", &back);
    if (rc != UVM_E_INVALID_ARGUMENT || !strstr(uvm_last_error(), what))
        fail_msg("'%s' -> '%s': %d %s (wanted '%s')", from, to, rc, uvm_last_error(), what);
}

static void
test_manifest_strict(void **state)
{
    (void)state;
    refused("\"libuvm-template\"", "\"other\"", "is not a libuvm template manifest");
    refused("\"Version\": 2", "\"Version\": 1", "manifest version 1, this libuvm reads version 2");
    refused("\"SourceId\"", "\"Bogus\": 1, \"SourceId\"", "Bogus is not a known field");
    refused("\"MemoryMB\": 256", "\"MemoryMB\": -256", "Options.MemoryMB must be a non-negative");
    refused("\"MemoryMB\": 256", "\"MemoryMB\": 512", "Ram.Size is not Options.MemoryMB");
    refused("\"ProcessorCount\": 2", "\"ProcessorCount\": 256", "Options.ProcessorCount");
    refused("\"VPMemDeviceCount\": 64", "\"VPMemDeviceCount\": 129", "VPMemDeviceCount");
    refused("\"SCSIControllerCount\": 1", "\"SCSIControllerCount\": \"1\"",
            "SCSIControllerCount must be");
    refused("\"MemoryBacking\": \"Physical\"", "\"MemoryBacking\": \"Fast\"",
            "MemoryBacking must be Virtual, VirtualDeferred or Physical");
    refused("\"GraphicsConsole\": false", "\"GraphicsConsole\": 0", "must be a boolean");
    refused("\"Hash\": \"fedcba9876543210\"", "\"Hash\": \"-1\"", "Files[].Hash must be 16 hex");
    refused("\"Hash\": \"fedcba9876543210\"", "\"Hash\": \"fedcba987654321g\"", "16 hex");
    refused("\"Role\": \"kernel\"", "\"Role\": \"ker\\u0000nel\"", "not a JSON object");
    refused("\"Role\": \"kernel\"", "\"Role\": \"ker\\u0001nel\"", "control character");
    refused("\"File\": \"ram\"", "\"File\": \"../etc/passwd\"", "Ram.File must be \"ram\"");
    refused("\"File\": \"state\"", "\"File\": \"/x\"", "State.File must be \"state\"");
    /* The state's hash (QEMU parses the file: tpldir.h checks it) is not optional. */
    refused("\"Hash\": \"0123456789abcdef\"", "\"Hash\": \"0123\"", "State.Hash must be 16 hex");
    refused(",\n    \"Hash\": \"0123456789abcdef\"", "", "State.Hash must be a string");
    refused("\"Argv\": [", "\"Argv\": [1, ", "Argv[] must be a string");
    refused("\"Files\": [", "\"Files\": [{}, {}, {}, {}, ", "at most 4 files");
    refused("\"Qemu\": {", "\"Qemu\": [], \"Accel2\": {", "Accel2 is not a known field");
    refused("\"Accel\": \"tcg\",", "\"Accel\": \"tcg\", \"Qemu\": 1,", "JSON object");
    refused("{", "[", "is not a JSON object");
    refused("\"SavedAt\": 1767225600", "\"SavedAt\": 1767225600, \"SavedAt\": 1", "JSON object");
}

static void
test_merge(void **state)
{
    (void)state;
    struct tpl_manifest m;
    fill(&m);
    struct uvm_options in = {
        .id = "c1", .console_pipe = "/tmp/c", .start_timeout_ms = 5, .template_dir = "/t"};
    struct uvm_options out;
    assert_int_equal(tpl_options_merge(&m, &in, NULL, "/t", &out), 0);
    assert_string_equal(out.id, "c1");
    assert_string_equal(out.console_pipe, "/tmp/c");
    assert_int_equal(out.start_timeout_ms, 5);
    assert_int_equal(out.memory_mb, 256);
    assert_int_equal(out.processor_count, 2);
    assert_true(out.has_vpmem_device_count);
    assert_int_equal(out.vpmem_device_count, 64);
    assert_true(out.has_scsi_controller_count);
    assert_int_equal(out.scsi_controller_count, 1);
    assert_string_equal(out.boot_files_path, "/boot/files");
    assert_string_equal(out.kernel_file, "kernel");
    assert_string_equal(out.rootfs_file, "initrd.img");
    assert_string_equal(out.kernel_boot_options, "quiet=1");
    assert_true(out.has_memory_backing_type);
    assert_int_equal(out.memory_backing_type, UVM_MEMORY_PHYSICAL);
    assert_null(out.additional_hcs_document_json);
    /* repeating the template's values is fine */
    in.memory_mb = 256;
    in.has_vpmem_device_count = true;
    in.vpmem_device_count = 64;
    in.kernel_boot_options = "quiet=1";
    in.has_preferred_rootfs_type = true;
    in.preferred_rootfs_type = UVM_ROOTFS_INITRD;
    assert_int_equal(tpl_options_merge(&m, &in, "/boot/files", "/t", &out), 0);
    /* each difference is named */
    struct {
        struct uvm_options o;
        const char *boot, *what;
    } cases[] = {
        {{.memory_mb = 512}, NULL, "memory_mb 512 differs from the template's 256"},
        {{.processor_count = 1}, NULL, "processor_count 1 differs from the template's 2"},
        {{.has_vpmem_device_count = true}, NULL, "vpmem_device_count 0 differs"},
        {{.has_scsi_controller_count = true, .scsi_controller_count = 4},
         NULL,
         "scsi_controller_count 4 differs"},
        {{.has_memory_backing_type = true}, NULL, "memory_backing_type 0 differs"},
        {{.kernel_boot_options = "x"},
         NULL,
         "kernel_boot_options 'x' differs from the "
         "template's 'quiet=1'"},
        {{.additional_hcs_document_json = "{}"},
         NULL,
         "additional_hcs_document_json '{}' "
         "differs from the template's (none)"},
        {{.kernel_file = "vmlinuz"}, NULL, "kernel_file 'vmlinuz' differs"},
        {{.rootfs_file = "rootfs.vhd"}, NULL, "rootfs_file 'rootfs.vhd' differs"},
        {{.has_preferred_rootfs_type = true, .preferred_rootfs_type = UVM_ROOTFS_VHD},
         NULL,
         "preferred_rootfs_type vhd differs from the template's initrd"},
        {{.enable_graphics_console = true}, NULL, "enable_graphics_console true differs"},
        {{0}, "/other", "boot_files_path '/other' differs from the template's '/boot/files'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = tpl_options_merge(&m, &cases[i].o, cases[i].boot, "/t", &out);
        if (rc != UVM_E_INVALID_ARGUMENT || !strstr(uvm_last_error(), cases[i].what))
            fail_msg("case %zu: %d %s (wanted '%s')", i, rc, uvm_last_error(), cases[i].what);
    }
    struct uvm_options win = {.operating_system = "windows"};
    assert_int_equal(tpl_options_merge(&m, &win, NULL, "/t", &out), UVM_E_NOT_SUPPORTED);
    tpl_manifest_release(&m);
}

/* --- qmpmig against the fake QMP peer -------------------------------------------------------- */

#define CAPS                                                                                       \
    "{'execute':'migrate-set-capabilities','arguments':{'capabilities':["                          \
    "{'capability':'x-ignore-shared','state':true},{'capability':'events','state':true}]}}"
#define GETFD "{'execute':'getfd','arguments':{'fdname':'uvm-migration'}}"

static void
test_save_stream(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD(CAPS, FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(GETFD, FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'migrate','arguments':{'uri':'fd:uvm-migration'}}", FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'MIGRATION','data':{'status':'setup'}}"),
        FAKE_QMP_EVENT("{'event':'MIGRATION','data':{'status':'active'}}"),
        FAKE_QMP_EVENT("{'event':'MIGRATION','data':{'status':'completed'}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = fake_qmp_client(script, ARRAY_SIZE(script), &f);
    cleanup_close int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_int_equal(qmpm_save(q, fd, deadline_after_ms(5000)), 0);
    fake_qmp_client_finish(q, f);
}

static void
test_save_failed(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD(CAPS, FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(GETFD, FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'migrate','arguments':{'uri':'fd:uvm-migration'}}", FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'MIGRATION','data':{'status':'setup'}}"),
        FAKE_QMP_EVENT("{'event':'MIGRATION','data':{'status':'failed'}}"),
        FAKE_QMP_CMD("{'execute':'query-migrate'}",
                     "{'return':{'status':'failed','error-desc':'Migration is disabled when "
                     "VirtFS export path /x is mounted in the guest using mount_tag uvm9p'}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = fake_qmp_client(script, ARRAY_SIZE(script), &f);
    cleanup_close int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_int_equal(qmpm_save(q, fd, deadline_after_ms(5000)), UVM_E_HYPERVISOR);
    assert_string_equal(uvm_last_error(),
                        "save the VM state failed: Migration is disabled when VirtFS export path "
                        "/x is mounted in the guest using mount_tag uvm9p");
    fake_qmp_client_finish(q, f);
}

static void
test_load_refused(void **state)
{
    (void)state;
    /* migrate-incoming refused: the named fd was not taken, so it is closed again */
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD(CAPS, FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(GETFD, FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'migrate-incoming','arguments':{'uri':'fd:uvm-migration'}}",
                     FAKE_QMP_ERROR("GenericError", "The incoming migration has already been "
                                                    "started")),
        FAKE_QMP_CMD("{'execute':'closefd','arguments':{'fdname':'uvm-migration'}}", FAKE_QMP_OK),
    };
    struct fake_qmp *f;
    struct qmp *q = fake_qmp_client(script, ARRAY_SIZE(script), &f);
    cleanup_close int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(qmpm_load(q, fd, deadline_after_ms(5000)), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "load the template's VM state: "));
    assert_non_null(strstr(uvm_last_error(), "has already been started"));
    fake_qmp_client_finish(q, f);
}

static void
test_load_and_version(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD("{'execute':'query-version'}",
                     "{'return':{'qemu':{'major':7,'minor':2,'micro':22},'package':'Debian "
                     "1:7.2'}}"),
        FAKE_QMP_CMD(CAPS, FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(GETFD, FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'migrate-incoming','arguments':{'uri':'fd:uvm-migration'}}",
                     FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'MIGRATION','data':{'status':'active'}}"),
        FAKE_QMP_EVENT("{'event':'MIGRATION','data':{'status':'completed'}}"),
        FAKE_QMP_CMD("{'execute':'query-version'}", "{'return':{'qemu':{'major':7}}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = fake_qmp_client(script, ARRAY_SIZE(script), &f);
    cleanup_free char *v = NULL;
    assert_int_equal(qmpm_version(q, &v, deadline_after_ms(5000)), 0);
    assert_string_equal(v, "7.2.22 (Debian 1:7.2)");
    cleanup_close int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(qmpm_load(q, fd, deadline_after_ms(5000)), 0);
    cleanup_free char *v2 = NULL;
    assert_int_equal(qmpm_version(q, &v2, deadline_after_ms(5000)), UVM_E_PROTOCOL);
    assert_null(v2);
    fake_qmp_client_finish(q, f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_key),        cmocka_unit_test(test_manifest_roundtrip),
        cmocka_unit_test(test_manifest_strict), cmocka_unit_test(test_merge),
        cmocka_unit_test(test_save_stream),     cmocka_unit_test(test_save_failed),
        cmocka_unit_test(test_load_refused),    cmocka_unit_test(test_load_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

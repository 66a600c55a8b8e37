/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Lifecycle against real VMs: start, exec, stdio, exit codes, guest connection, ID reuse,
 * concurrent VMs and waiters, QEMU killed under us. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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

static struct uvm *shared_vm;

static int
setup_shared(void **state)
{
    shared_vm = itest_boot("itest-shared");
    return 0;
}

static int
teardown_shared(void **state)
{
    uvm_close(shared_vm);
    shared_vm = NULL;
    return 0;
}

static void
test_cmdline(void **state)
{
    struct itest_run r;
    const char *argv[] = {"cat", "/proc/cmdline", NULL};
    assert_int_equal(itest_run(shared_vm, argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "initrd=/initrd.img"));
    assert_int_equal(strncmp(r.out, "initrd=/initrd.img", 18), 0);
    itest_run_free(&r);
}

static void
test_stdio(void **state)
{
    struct itest_run r;
    const char *argv[] = {"sh", "-c", "tr a-z A-Z; echo to-stderr >&2", NULL};
    assert_int_equal(itest_run(shared_vm, argv, "hello stdin\n", &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "HELLO STDIN\n");
    assert_string_equal(r.err, "to-stderr\n");
    itest_run_free(&r);
}

static void
test_big_output(void **state)
{
    struct itest_run r;
    /* 4 MiB through the flow-controlled stream. */
    const char *argv[] = {"sh", "-c", "head -c 4194304 /dev/zero | tr '\\0' x", NULL};
    assert_int_equal(itest_run(shared_vm, argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_len, 4194304);
    assert_int_equal(r.out[0], 'x');
    assert_int_equal(r.out[4194303], 'x');
    itest_run_free(&r);
}

static void
test_exit_code(void **state)
{
    struct itest_run r;
    const char *argv[] = {"sh", "-c", "exit 42", NULL};
    assert_int_equal(itest_run(shared_vm, argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 42);
    itest_run_free(&r);
}

static void
test_signal_death(void **state)
{
    const char *argv[] = {"sleep", "1000", NULL};
    struct uvm_process_config cfg = {.argv = argv};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(shared_vm, &cfg, &p), 0);
    assert_true(uvm_process_pid(p) > 1);
    assert_int_equal(uvm_process_signal(p, SIGKILL), 0);
    int code = -1;
    assert_int_equal(uvm_process_wait(p, &code), 0);
    assert_int_equal(code, 128 + SIGKILL);
    /* Signalling an exited process is a clean error. */
    assert_int_equal(uvm_process_signal(p, SIGTERM), UVM_E_INVALID_STATE);
    uvm_process_close(p);
}

static void
test_exec_missing_command(void **state)
{
    const char *argv[] = {"/no/such/command", NULL};
    struct uvm_process_config cfg = {.argv = argv, .create_stdout = true};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(shared_vm, &cfg, &p), UVM_E_GUEST);
    assert_null(p);
    assert_non_null(strstr(uvm_last_error(), "/no/such/command"));
}

static void
test_env_and_cwd(void **state)
{
    const char *argv[] = {"sh", "-c", "echo $FOO; pwd", NULL};
    const char *env[] = {"FOO=bar baz", "PATH=/bin:/sbin", NULL};
    struct uvm_process_config cfg = {
        .argv = argv, .env = env, .working_dir = "/tmp", .create_stdout = true};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(shared_vm, &cfg, &p), 0);
    int out = -1;
    assert_int_equal(uvm_process_stdio(p, NULL, &out, NULL), 0);
    char buf[256] = {0};
    size_t len = 0;
    ssize_t n;
    while ((n = read(out, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    close(out);
    int code = -1;
    assert_int_equal(uvm_process_wait(p, &code), 0);
    assert_int_equal(code, 0);
    assert_string_equal(buf, "bar baz\n/tmp\n");
    uvm_process_close(p);
}

static void
test_guest_connection(void **state)
{
    struct uvm_guest_connection_info info;
    assert_int_equal(uvm_system_guest_connection(uvm_compute_system(shared_vm), &info), 0);
    assert_true(info.protocol_version >= 4);
    assert_true(info.signal_process_supported);
    assert_false(info.namespace_add_request_supported);
}

static void
test_modify_unknown(void **state)
{
    assert_int_equal(uvm_modify(shared_vm, "{\"ResourcePath\":\"VirtualMachine/Devices/Foo\"}"),
                     UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "VirtualMachine/Devices/Foo"));
    assert_int_equal(uvm_modify(shared_vm, "{\"GuestRequest\":{\"ResourceType\":\"Bogus\","
                                           "\"RequestType\":\"Add\",\"Settings\":{}}}"),
                     UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "Bogus"));
    assert_int_equal(uvm_modify(shared_vm, "not json"), UVM_E_INVALID_ARGUMENT);
}

static void
test_counter(void **state)
{
    assert_int_equal(uvm_container_counter(shared_vm), 1);
    assert_int_equal(uvm_container_counter(shared_vm), 2);
    assert_int_equal(uvm_container_counter(shared_vm), 3);
}

/* hcsshim TestLCOWTimeUVMStartInitRD: the same ID three times, terminate without close. */
static void
test_reuse_id(void **state)
{
    struct uvm *vms[3];
    for (int i = 0; i < 3; i++) {
        struct uvm_options o = {.id = "uvm", .memory_mb = 256, .has_vpmem_device_count = true,
                                .vpmem_device_count = 32};
        assert_int_equal(uvm_create(&o, &vms[i]), 0);
        if (i == 0) {
            /* A live ID cannot be taken twice. */
            struct uvm *dup = NULL;
            assert_int_equal(uvm_create(&o, &dup), UVM_E_ALREADY_EXISTS);
            assert_null(dup);
        }
        assert_int_equal(itest_start(vms[i]), 0);
        assert_int_equal(uvm_terminate(vms[i]), 0);
        assert_int_equal(uvm_terminate(vms[i]), 0); /* idempotent */
        struct uvm_process *p = NULL;
        const char *argv[] = {"true", NULL};
        struct uvm_process_config cfg = {.argv = argv};
        assert_int_equal(uvm_exec(vms[i], &cfg, &p), UVM_E_INVALID_STATE);
        assert_int_equal(uvm_start(vms[i]), UVM_E_INVALID_STATE);
        assert_int_equal(uvm_modify(vms[i], "{\"GuestRequest\":{}}"), UVM_E_INVALID_STATE);
    }
    for (int i = 0; i < 3; i++)
        uvm_close(vms[i]);
}

static void
test_two_vms(void **state)
{
    struct uvm *a = itest_boot("itest-a");
    struct uvm *b = itest_boot("itest-b");
    struct itest_run ra, rb;
    const char *argv[] = {"cat", "/proc/sys/kernel/random/boot_id", NULL};
    assert_int_equal(itest_run(a, argv, NULL, &ra), 0);
    assert_int_equal(itest_run(b, argv, NULL, &rb), 0);
    assert_int_equal(ra.out_len, 37);
    assert_string_not_equal(ra.out, rb.out);
    itest_run_free(&ra);
    itest_run_free(&rb);
    uvm_close(a);
    uvm_close(b);
}

static void *
waiter(void *arg)
{
    return (void *)(intptr_t)uvm_wait(arg);
}

static void
test_three_waiters(void **state)
{
    struct uvm *vm = itest_boot("itest-waiters");
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, waiter, vm), 0);
    /* The guest powers itself off: a clean exit for every waiter. */
    const char *argv[] = {"sh", "-c", "sleep 1; poweroff -f", NULL};
    struct uvm_process_config cfg = {.argv = argv};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(vm, &cfg, &p), 0);
    for (int i = 0; i < 3; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_int_equal((int)(intptr_t)ret, 0);
    }
    assert_int_equal(uvm_wait(vm), 0);
    uvm_process_close(p);
    uvm_close(vm);
}

struct hammer {
    struct uvm *vm;
    const char *disk;
    int ok, failed, bad_code;
    bool scsi;
    char first_error[512];
};

static void *
hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 400; i++) {
        int rc;
        if (h->scsi) {
            rc = uvm_add_scsi(h->vm, h->disk, NULL, NULL, NULL);
            if (rc == 0)
                rc = uvm_remove_scsi(h->vm, h->disk);
        } else {
            const char *argv[] = {"true", NULL};
            struct uvm_process_config cfg = {.argv = argv, .create_stdout = true};
            struct uvm_process *p = NULL;
            rc = uvm_exec(h->vm, &cfg, &p);
            if (rc == 0) {
                int code;
                rc = uvm_process_wait(p, &code);
                uvm_process_close(p);
            }
        }
        if (rc == 0) {
            __atomic_add_fetch(&h->ok, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (!__atomic_fetch_add(&h->failed, 1, __ATOMIC_RELAXED))
            snprintf(h->first_error, sizeof(h->first_error), "%s", uvm_last_error());
        if (rc != UVM_E_INVALID_STATE && rc != UVM_E_UNEXPECTED_EXIT)
            h->bad_code = rc;
        if (h->failed > 3)
            break; /* the VM is gone: calls fail fast and cleanly */
    }
    return NULL;
}

/* Terminate while other threads exec and hot-plug: they end with clean errors, nothing hangs. */
static void
test_terminate_under_load(void **state)
{
    char disk[] = "/tmp/uvm-hammer-XXXXXX";
    int fd = mkstemp(disk);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8 << 20), 0);
    close(fd);
    struct uvm *vm = itest_boot("itest-hammer");
    struct hammer h[3] = {{.vm = vm, .disk = disk, .scsi = true}, {.vm = vm}, {.vm = vm}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    /* Terminate once every thread is in full swing (each has succeeded at least once). */
    for (int tries = 0; tries < 600; tries++) {
        bool all = true;
        for (int i = 0; i < 3; i++)
            all = all && (__atomic_load_n(&h[i].ok, __ATOMIC_RELAXED) > 0 ||
                          __atomic_load_n(&h[i].failed, __ATOMIC_RELAXED) > 0);
        if (all)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(uvm_terminate(vm), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        if (h[i].ok == 0)
            fail_msg("thread %d: nothing succeeded before terminate; first error: %s", i,
                     h[i].first_error);
        assert_int_equal(h[i].bad_code, 0);
    }
    assert_int_equal(uvm_wait(vm), 0);
    uvm_close(vm);
    unlink(disk);
}

/* A guest kernel panic (panic=-1 resets, -no-reboot ends QEMU with status 0) is not a clean
 * exit. */
static void
test_guest_panic(void **state)
{
    struct uvm *vm = itest_boot("itest-panic");
    const char *argv[] = {"sh", "-c", "sleep 1; echo c > /proc/sysrq-trigger", NULL};
    struct uvm_process_config cfg = {.argv = argv};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(vm, &cfg, &p), 0);
    assert_int_equal(uvm_wait(vm), UVM_E_UNEXPECTED_EXIT);
    assert_non_null(strstr(uvm_last_error(), "reset"));
    uvm_process_close(p);
    uvm_close(vm);
}

static void
test_qemu_killed(void **state)
{
    struct uvm *vm = itest_boot("itest-killed");
    int pid = itest_qemu_pid("itest-killed");
    assert_true(pid > 0);
    char rundir[256];
    snprintf(rundir, sizeof(rundir), "%s/itest-killed", itest_runtime_dir());
    struct stat st;
    assert_int_equal(stat(rundir, &st), 0);
    /* A process waiting in the guest sees the VM die too. */
    const char *argv[] = {"sleep", "1000", NULL};
    struct uvm_process_config cfg = {.argv = argv, .create_stdout = true};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(vm, &cfg, &p), 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(uvm_wait(vm), UVM_E_UNEXPECTED_EXIT);
    assert_non_null(strstr(uvm_last_error(), "signal 9"));
    int code;
    assert_int_equal(uvm_process_wait(p, &code), UVM_E_UNEXPECTED_EXIT);
    uvm_process_close(p);
    assert_false(itest_pid_alive(pid));
    assert_int_equal(stat(rundir, &st), -1);
    assert_int_equal(errno, ENOENT);
    struct uvm_process *q = NULL;
    assert_int_equal(uvm_exec(vm, &cfg, &q), UVM_E_INVALID_STATE);
    uvm_close(vm);
}

/* hcsshim TestLCOWUVMNoSCSINoVPMemInitrd: no SCSI controller, no VPMEM, initrd boot. */
static void
test_no_scsi_no_vpmem(void **state)
{
    struct uvm_options o = {.id = "uvm-noscsi", .memory_mb = 256, .has_vpmem_device_count = true,
                            .vpmem_device_count = 0, .has_scsi_controller_count = true,
                            .scsi_controller_count = 0};
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), 0);
    assert_int_equal(itest_start(vm), 0);
    struct itest_run r;
    const char *argv[] = {"sh", "-c", "cat /proc/cmdline; ls /sys/class/scsi_host | wc -l", NULL};
    assert_int_equal(itest_run(vm, argv, NULL, &r), 0);
    assert_non_null(strstr(r.out, "initrd=/initrd.img"));
    assert_non_null(strstr(r.out, "\n0\n"));
    itest_run_free(&r);
    uvm_close(vm);
}

/* hcsshim TestMemBackingTypeLCOW: every backing type boots. */
static void
test_memory_backing_types(void **state)
{
    static const char *const names[] = {"Virtual", "VirtualDeferred", "Physical"};
    for (int t = UVM_MEMORY_VIRTUAL; t <= UVM_MEMORY_PHYSICAL; t++) {
        char id[64];
        snprintf(id, sizeof(id), "TestMemBackingTypeLCOW-%s", names[t]);
        struct uvm_options o = {.id = id, .memory_mb = 256, .has_memory_backing_type = true,
                                .memory_backing_type = (enum uvm_memory_backing)t};
        struct uvm *vm = NULL;
        assert_int_equal(uvm_create(&o, &vm), 0);
        assert_int_equal(itest_start(vm), 0);
        assert_int_equal(uvm_terminate(vm), 0);
        uvm_close(vm);
    }
}

static void
test_start_failure_explained(void **state)
{
    /* A kernel that is not a kernel: QEMU refuses it; the error says so, nothing is left. */
    char dir[] = "/tmp/uvm-badboot-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof(path), "%s/kernel", dir);
    FILE *f = fopen(path, "w");
    fputs("not a kernel\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/initrd.img", dir);
    f = fopen(path, "w");
    fclose(f);
    struct uvm_options o = {.id = "itest-badboot", .boot_files_path = dir, .memory_mb = 256};
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), 0);
    int rc = uvm_start(vm);
    assert_int_equal(rc, UVM_E_UNEXPECTED_EXIT);
    assert_non_null(strstr(uvm_last_error(), "itest-badboot"));
    assert_non_null(strstr(uvm_last_error(), "QEMU"));
    assert_int_equal(itest_qemu_pid("itest-badboot"), -1);
    uvm_close(vm);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

int
main(void)
{
    itest_init();
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_cmdline),
        cmocka_unit_test(test_stdio),
        cmocka_unit_test(test_big_output),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_signal_death),
        cmocka_unit_test(test_exec_missing_command),
        cmocka_unit_test(test_env_and_cwd),
        cmocka_unit_test(test_guest_connection),
        cmocka_unit_test(test_modify_unknown),
        cmocka_unit_test(test_counter),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_reuse_id),
        cmocka_unit_test(test_two_vms),
        cmocka_unit_test(test_three_waiters),
        cmocka_unit_test(test_qemu_killed),
        cmocka_unit_test(test_guest_panic),
        cmocka_unit_test(test_terminate_under_load),
        cmocka_unit_test(test_start_failure_explained),
        cmocka_unit_test(test_no_scsi_no_vpmem),
        cmocka_unit_test(test_memory_backing_types),
    };
    int failed = cmocka_run_group_tests_name("shared-vm", shared, setup_shared, teardown_shared);
    failed += cmocka_run_group_tests_name("own-vm", own, NULL, NULL);
    return itest_finish(failed);
}

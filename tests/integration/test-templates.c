/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Templates and clones against real VMs: a template saved from the default boot files, three
 * clones started at once with their own boot id, hostname and wall clock, surviving the
 * template VM's close; on each clone a SCSI disk, a Plan9 share, a NIC and processes work and
 * are removed; VSMB refused on clones; saves refused while something is attached or running
 * (the VM runs on); mismatched and altered templates refused with messages saying what; nothing
 * left behind (QEMU processes, runtime directories, taps, fds).
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

#define NCLONES 3

static char shm[64];  /* on tmpfs: the templates */
static char work[64]; /* disks, shares, a copy of the boot files */
static char tpl[128], tpl2[128];
static struct uvm *source;
static int source_pid;
static struct uvm *clones[NCLONES];
static int fds_before;

static struct uvm *
create(const struct uvm_options *o)
{
    struct uvm *vm = NULL;
    if (uvm_create(o, &vm) < 0)
        fail_msg("uvm_create %s: %s", o->id ? o->id : "", uvm_last_error());
    return vm;
}

static int
setup(void **state)
{
    fds_before = itest_open_fds();
    strcpy(shm, "/dev/shm/uvm-tpl-it-XXXXXX");
    strcpy(work, "/tmp/uvm-tpl-it-XXXXXX");
    assert_non_null(mkdtemp(shm));
    assert_non_null(mkdtemp(work));
    snprintf(tpl, sizeof(tpl), "%s/tpl", shm);
    snprintf(tpl2, sizeof(tpl2), "%s/tpl2", shm);
    for (int i = 0; i < NCLONES; i++)
        itest_sh("cd %s && truncate -s 16M disk%d.img && mkfs.ext4 -q -F -b 4096 disk%d.img && "
                 "mkdir share%d && echo share-of-clone-%d > share%d/id",
                 work, i, i, i, i, i);
    /* A template from the default boot files (the VM's memory kept small for the tests). */
    struct uvm_options o = {.id = "itest-tpl-source", .memory_mb = 256};
    source = create(&o);
    assert_int_equal(itest_start(source), 0);
    source_pid = itest_qemu_pid("itest-tpl-source");
    assert_true(source_pid > 0);
    return 0;
}

static int
teardown(void **state)
{
    for (int i = 0; i < NCLONES; i++)
        uvm_close(clones[i]);
    uvm_close(source);
    itest_rm_rf(shm);
    itest_rm_rf(work);
    return 0;
}

static void
test_save(void **state)
{
    if (uvm_save_template(source, tpl) < 0)
        fail_msg("save: %s", uvm_last_error());
    struct stat st;
    assert_int_equal(stat(tpl, &st), 0);
    char *out = itest_host_out("cd %s && ls && stat -c %%s state && du -k ram | cut -f1", tpl);
    assert_non_null(strstr(out, "ram\nstate\ntemplate.json\n"));
    fprintf(stderr, "template: %s", out);
    free(out);
    /* The source is terminated: its QEMU is gone, calls say so. */
    assert_false(itest_pid_alive(source_pid));
    struct uvm_process *p = NULL;
    const char *argv[] = {"true", NULL};
    struct uvm_process_config cfg = {.argv = argv};
    assert_int_equal(uvm_exec(source, &cfg, &p), UVM_E_INVALID_STATE);
    assert_int_equal(uvm_save_template(source, tpl2), UVM_E_INVALID_STATE);
}

static void *
start_clone(void *arg)
{
    intptr_t i = (intptr_t)arg;
    char id[32];
    snprintf(id, sizeof(id), "itest-clone-%d", (int)i);
    struct uvm_options o = {.id = id, .template_dir = tpl};
    struct uvm *vm = NULL;
    int rc = uvm_create(&o, &vm);
    if (rc == 0)
        rc = itest_start(vm);
    if (rc < 0) {
        fprintf(stderr, "clone %d: %s\n", (int)i, uvm_last_error());
        uvm_close(vm);
        vm = NULL;
    }
    clones[i] = vm;
    return NULL;
}

static void
test_three_clones(void **state)
{
    pthread_t t[NCLONES];
    for (intptr_t i = 0; i < NCLONES; i++)
        assert_int_equal(pthread_create(&t[i], NULL, start_clone, (void *)i), 0);
    for (int i = 0; i < NCLONES; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NCLONES; i++)
        assert_non_null(clones[i]);
    /* The template VM's close does not touch its clones. */
    uvm_close(source);
    source = NULL;
    char boot_id[NCLONES][64], host[NCLONES][80];
    for (int i = 0; i < NCLONES; i++) {
        struct uvm_timings tm;
        assert_int_equal(uvm_get_timings(clones[i], &tm), 0);
        assert_true(tm.restore_us > 0 && tm.restore_us <= tm.agent_ready_us);
        char *out = itest_guest(clones[i], "cat /proc/sys/kernel/random/boot_id; hostname; "
                                           "date +%s; head -c 16 /dev/urandom | od -An -tx1");
        long long guest_now = 0;
        char rnd[128] = "";
        assert_int_equal(
            sscanf(out, "%63s %79s %lld %127[^\n]", boot_id[i], host[i], &guest_now, rnd), 4);
        long long diff = guest_now - (long long)time(NULL);
        fprintf(stderr,
                "clone %d: boot_id %s, hostname %s, clock %+lld s, restored %.0f ms, "
                "ready %.0f ms, urandom %s\n",
                i, boot_id[i], host[i], diff, tm.restore_us / 1e3, tm.agent_ready_us / 1e3, rnd);
        assert_true(diff >= -2 && diff <= 2);
        char want[32];
        snprintf(want, sizeof(want), "itest-clone-%d", i);
        assert_string_equal(host[i], want);
        free(out);
    }
    for (int i = 0; i < NCLONES; i++)
        for (int j = i + 1; j < NCLONES; j++)
            assert_string_not_equal(boot_id[i], boot_id[j]);
}

/* On clone i: a SCSI disk, a Plan9 share, a NIC into a host namespace, processes; removed. */
static void
exercise_clone(int i)
{
    struct uvm *vm = clones[i];
    char path[256], hns[32], tap[16], mac[20], ip[16], host_ip[16];
    snprintf(hns, sizeof(hns), "uvmit-tpl-%d-%d", (int)getpid(), i);
    snprintf(tap, sizeof(tap), "uvmittpl%d%d", (int)getpid() % 10000, i);
    snprintf(mac, sizeof(mac), "52:54:00:7a:00:%02x", i + 1);
    snprintf(ip, sizeof(ip), "10.201.%d.2", i);
    snprintf(host_ip, sizeof(host_ip), "10.201.%d.1", i);
    snprintf(path, sizeof(path), "%s/disk%d.img", work, i);
    if (uvm_add_scsi(vm, path, "/disk", NULL, NULL) < 0)
        fail_msg("clone %d: add scsi: %s", i, uvm_last_error());
    snprintf(path, sizeof(path), "%s/share%d", work, i);
    if (uvm_add_plan9(vm, path, "/share", false) < 0)
        fail_msg("clone %d: add plan9: %s", i, uvm_last_error());
    itest_sh("ip netns add %s && ip tuntap add dev %s mode tap", hns, tap);
    struct uvm_endpoint e = {.id = "tpl-nic",
                             .mac_address = mac,
                             .ip_address = ip,
                             .prefix_length = 24,
                             .gateway_address = host_ip,
                             .host_ifname = tap};
    if (uvm_add_netns(vm, "ns", &e, 1) < 0)
        fail_msg("clone %d: add netns: %s", i, uvm_last_error());
    itest_sh("ip link set %s netns %s && ip -n %s addr add %s/24 dev %s && ip -n %s link set %s up",
             tap, hns, hns, host_ip, tap, hns, tap);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "echo written-by-clone > /disk/f && sync && cat /disk/f && cat /share/id && "
             "echo back > /share/from-guest");
    char *out = itest_guest(vm, cmd);
    char want[128];
    snprintf(want, sizeof(want), "written-by-clone\nshare-of-clone-%d\n", i);
    assert_int_equal(strncmp(out, want, strlen(want)), 0);
    free(out);
    struct itest_run r;
    const char *ping[] = {"ping", "-c", "2", "-W", "5", host_ip, NULL};
    assert_int_equal(itest_run_in(vm, "ns", ping, NULL, &r), 0);
    if (r.exit_code)
        fail_msg("clone %d: ping %s: %s%s", i, host_ip, r.out, r.err);
    itest_run_free(&r);
    out = itest_host_out("cat %s/share%d/from-guest", work, i);
    assert_string_equal(out, "back\n");
    free(out);

    assert_int_equal(uvm_remove_netns(vm, "ns"), 0);
    snprintf(path, sizeof(path), "%s/share%d", work, i);
    assert_int_equal(uvm_remove_plan9(vm, path), 0);
    snprintf(path, sizeof(path), "%s/disk%d.img", work, i);
    assert_int_equal(uvm_remove_scsi(vm, path), 0);
    out = itest_guest(vm, "ls /sys/bus/scsi/devices | grep -c ':0:0:' || true; "
                          "grep -c -e ' /share ' -e ' /disk ' /proc/mounts || true; "
                          "ls /run/netns | wc -l");
    assert_string_equal(out, "0\n0\n0\n");
    free(out);
    itest_sh("ip netns del %s", hns);
    out = itest_host_out("cat %s/disk%d.img | strings | grep -c written-by-clone || true", work, i);
    assert_string_equal(out, "1\n");
    free(out);
}

static void
test_clones_hotplug(void **state)
{
    for (int i = 0; i < NCLONES; i++)
        exercise_clone(i);
    /* virtio-fs needs the guest RAM shared with virtiofsd: not on a clone. */
    char path[256];
    snprintf(path, sizeof(path), "%s/share0", work);
    assert_int_equal(uvm_add_vsmb(clones[0], path, NULL, NULL), UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "clone"));
    /* A clone is no template. */
    assert_int_equal(uvm_save_template(clones[0], tpl2), UVM_E_NOT_SUPPORTED);
    for (int i = 0; i < NCLONES; i++) {
        char id[32];
        snprintf(id, sizeof(id), "itest-clone-%d", i);
        int pid = itest_qemu_pid(id);
        assert_true(pid > 0);
        uvm_close(clones[i]);
        clones[i] = NULL;
        assert_false(itest_pid_alive(pid));
    }
}

/* A refused save leaves the VM as it was, and the directory as it was. */
static void
test_save_refused(void **state)
{
    struct uvm_options o = {.id = "itest-tpl-refused", .memory_mb = 256};
    struct uvm *vm = create(&o);
    assert_int_equal(itest_start(vm), 0);
    char disk[256];
    snprintf(disk, sizeof(disk), "%s/disk0.img", work);
    assert_int_equal(uvm_add_scsi(vm, disk, NULL, NULL, NULL), 0);
    assert_int_equal(uvm_save_template(vm, tpl2), UVM_E_INVALID_STATE);
    assert_non_null(strstr(uvm_last_error(), "scsi"));
    struct stat st;
    assert_int_not_equal(stat(tpl2, &st), 0);
    assert_int_equal(uvm_remove_scsi(vm, disk), 0);
    /* A process running: the agent refuses, the VM serves on. */
    const char *argv[] = {"sleep", "600", NULL};
    struct uvm_process_config cfg = {.argv = argv};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(vm, &cfg, &p), 0);
    assert_int_equal(uvm_save_template(vm, tpl2), UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "process is running"));
    assert_int_not_equal(stat(tpl2, &st), 0);
    assert_int_equal(uvm_process_signal(p, 9), 0);
    int code = 0;
    assert_int_equal(uvm_process_wait(p, &code), 0);
    uvm_process_close(p);
    char *out = itest_guest(vm, "echo still-serving");
    assert_string_equal(out, "still-serving\n");
    free(out);
    /* A plan9 share that was added and removed leaves the export mounted: the save unmounts
     * it (QEMU refuses to migrate a mounted 9p device). */
    char share[256];
    snprintf(share, sizeof(share), "%s/share1", work);
    assert_int_equal(uvm_add_plan9(vm, share, "/share", true), 0);
    assert_int_equal(uvm_remove_plan9(vm, share), 0);
    /* An existing, non-empty directory is refused. */
    itest_sh("mkdir -p %s/full && touch %s/full/x", shm, shm);
    char full[128];
    snprintf(full, sizeof(full), "%s/full", shm);
    assert_int_equal(uvm_save_template(vm, full), UVM_E_ALREADY_EXISTS);
    if (uvm_save_template(vm, tpl2) < 0)
        fail_msg("save 2: %s", uvm_last_error());
    uvm_close(vm);
}

static void
expect_refused(const struct uvm_options *o, int code, const char *what)
{
    struct uvm *vm = NULL;
    int rc = uvm_create(o, &vm);
    if (rc == 0) {
        rc = uvm_start(vm);
        uvm_close(vm);
    }
    if (rc != code || !strstr(uvm_last_error(), what))
        fail_msg("expected %s saying '%s', got %s: %s", uvm_strerror(code), what, uvm_strerror(rc),
                 uvm_last_error());
    fprintf(stderr, "refused as expected: %s\n", uvm_last_error());
}

static void
test_mismatch_refused(void **state)
{
    struct uvm_options o = {.id = "itest-tpl-mismatch", .template_dir = tpl2};
    /* Options that differ from the template's. */
    o.memory_mb = 512;
    expect_refused(&o, UVM_E_INVALID_ARGUMENT, "memory_mb 512 differs from the template's 256");
    o.memory_mb = 256; /* repeating it is fine: below */
    o.has_scsi_controller_count = true;
    o.scsi_controller_count = 2;
    expect_refused(&o, UVM_E_INVALID_ARGUMENT, "scsi_controller_count 2 differs");
    o.has_scsi_controller_count = false;
    o.boot_files_path = work;
    expect_refused(&o, UVM_E_INVALID_ARGUMENT, "boot_files_path");
    o.boot_files_path = NULL;
    /* The template (made from tpl2's VM) works before we alter it. */
    o.id = "itest-tpl-clone2";
    struct uvm *vm = create(&o);
    assert_int_equal(itest_start(vm), 0);
    char *out = itest_guest(vm, "hostname");
    assert_string_equal(out, "itest-tpl-clone2\n");
    free(out);
    uvm_close(vm);
    o.id = "itest-tpl-mismatch";
    /* A manifest saying another QEMU version: refused at start, before the state is loaded. */
    itest_sh("cd %s && cp template.json orig.json && sed -i 's/\"Version\": \"7/\"Version\": \"6/' "
             "template.json",
             tpl2);
    expect_refused(&o, UVM_E_INVALID_ARGUMENT, "was made with QEMU 6");
    /* Another device count in the command line. */
    itest_sh("cd %s && cp orig.json template.json && sed -i 's/\"virtio-scsi-pci,id=scsi0,/"
             "\"virtio-scsi-pci,id=scsi9,/' template.json",
             tpl2);
    expect_refused(&o, UVM_E_INVALID_ARGUMENT, "argument");
    /* Other boot files: the recorded kernel differs in size and content. */
    itest_sh("cd %s && cp orig.json template.json && sed -i 's/\"Size\": 22/\"Size\": 33/; "
             "s/\"Hash\": \"[0-9a-f]*\"/\"Hash\": \"0000000000000000\"/' template.json",
             tpl2);
    expect_refused(&o, UVM_E_INVALID_ARGUMENT, "other boot files: kernel");
    /* A manifest with an unknown field. */
    itest_sh("cd %s && cp orig.json template.json && sed -i 's/\"SavedAt\"/\"Extra\": 1, "
             "\"SavedAt\"/' template.json",
             tpl2);
    expect_refused(&o, UVM_E_INVALID_ARGUMENT, "Extra is not a known field");
    /* A RAM file written after the save. */
    itest_sh("cd %s && cp orig.json template.json && touch ram", tpl2);
    expect_refused(&o, UVM_E_INVALID_ARGUMENT, "RAM file changed after the save");
    /* Not a template at all. */
    o.template_dir = work;
    expect_refused(&o, UVM_E_NOT_FOUND, "has no template.json");
}

static void
test_nothing_left(void **state)
{
    static const char *const ids[] = {"itest-tpl-source",  "itest-clone-0",     "itest-clone-1",
                                      "itest-clone-2",     "itest-tpl-refused", "itest-tpl-clone2",
                                      "itest-tpl-mismatch"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        assert_int_equal(itest_qemu_pid(ids[i]), -1);
        char *out = itest_host_out("ls %s | grep -c '^%s$' || true", itest_runtime_dir(), ids[i]);
        assert_string_equal(out, "0\n");
        free(out);
    }
    char *out = itest_host_out("ip -o link show | grep -c uvmittpl || true");
    assert_string_equal(out, "0\n");
    free(out);
    if (itest_open_fds() != fds_before) {
        char *fds = itest_host_out("ls -l /proc/%d/fd", (int)getpid());
        fail_msg("%d fds open, %d before the tests:\n%s", itest_open_fds(), fds_before, fds);
    }
}

int
main(void)
{
    itest_init();
    if (system("command -v ip >/dev/null && command -v mkfs.ext4 >/dev/null") != 0) {
        printf("SKIP: ip (iproute2) and mkfs.ext4 are needed\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save),
        cmocka_unit_test(test_three_clones),
        cmocka_unit_test(test_clones_hotplug),
        cmocka_unit_test(test_save_refused),
        cmocka_unit_test(test_mismatch_refused),
        cmocka_unit_test(test_nothing_left),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return itest_finish(failed);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection against real QEMU (issue 14): QEMU SIGKILLed before a QMP command (the
 * library has not noticed yet), during one (QEMU stopped with the command unread in its socket,
 * then killed) and after (resources added, then QEMU killed: their removes, the daemons); a
 * virtiofsd killed under its share; the guest frozen (its vCPU threads in a cgroup v1 freezer:
 * QMP still answers, the agent does not) for an exec, and for a terminate with calls in flight.
 * After each: the call returns an explained error with a stable code, a retry (or the next call)
 * says what state the VM is in, uvm_terminate returns, and after close nothing is left: no QEMU,
 * no virtiofsd, no runtime directory, no mount below it, no fd. (The guest killing its agent
 * is a kernel panic, gcs being PID 1: test-lifecycle's test_guest_panic.)
 * Each fault and what was checked is printed. Nothing checks wall time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static char dir[64], disk[96], share[96], share2[96];

static int
open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int
count_of(char *text)
{
    int n = atoi(text);
    free(text);
    return n;
}

/* Bytes queued unread in QEMU's end of its socket `name` (qmp.sock, gcs.sock). */
static int
unread(int qemu, const char *name)
{
    return count_of(itest_host_out("ss -xpn | awk '/\\/%s / && /pid=%d,/ {n += $3} END {print n "
                                   "+ 0}'",
                                   name, qemu));
}

/* Wait (bounded by ITEST_WAIT_MS, a failure bound) until QEMU has unread bytes on `name`: a
 * call is in flight there. */
static void
wait_unread(int qemu, const char *name)
{
    for (int i = 0; i < ITEST_WAIT_MS / 100; i++) {
        if (unread(qemu, name) > 0)
            return;
        usleep(100 * 1000);
    }
    fail_msg("no command reached QEMU's %s", name);
}

static char *
rundir_of(const char *id)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", itest_runtime_dir(), id) > 0);
    return p;
}

/* After close: no QEMU, no virtiofsd, no runtime directory, no mount below it, fds as before. */
static void
expect_nothing_left(const char *id, int fds, const char *what)
{
    char *rd = rundir_of(id);
    struct stat st;
    int daemons = count_of(itest_host_out("pgrep -f '[v]irtiofsd --socket-path=%s/' | wc -l", rd));
    if (itest_qemu_pid(id) > 0 || daemons || stat(rd, &st) == 0 || itest_mounts_below(rd) ||
        open_fds() != fds)
        fail_msg("%s: left: QEMU %d, virtiofsd %d, runtime directory %s, mounts %d, fds %d -> "
                 "%d",
                 what, itest_qemu_pid(id), daemons, stat(rd, &st) == 0 ? "kept" : "gone",
                 itest_mounts_below(rd), fds, open_fds());
    free(rd);
}

static void
expect_code(int rc, int code, const char *text, const char *what)
{
    if (rc != code || !strstr(uvm_last_error(), text))
        fail_msg("%s: %d \"%s\" (expected %d with '%s')", what, rc, uvm_last_error(), code, text);
}

static int
scsi_add(struct uvm *vm)
{
    int c = -1;
    int32_t l = -1;
    return uvm_add_scsi(vm, disk, NULL, &c, &l); /* attached only: the disk has no file system */
}

struct call {
    struct uvm *vm;
    bool exec; /* else a SCSI add */
    int rc;
    char err[512];
};

static void *
call_main(void *arg)
{
    struct call *c = arg;
    if (c->exec) {
        const char *argv[] = {"true", NULL};
        struct uvm_process_config cfg = {.argv = argv};
        struct uvm_process *p = NULL;
        c->rc = uvm_exec(c->vm, &cfg, &p);
        uvm_process_close(p);
    } else {
        c->rc = scsi_add(c->vm);
    }
    snprintf(c->err, sizeof(c->err), "%s", c->rc < 0 ? uvm_last_error() : "");
    return NULL;
}

/* QEMU stopped with a device_add unread in its QMP socket, then SIGKILLed. */
static void
test_killed_during_add(void **state)
{
    const char *id = "itest-fault-during";
    int fds = open_fds();
    struct uvm *vm = itest_boot(id);
    int qemu = itest_qemu_pid(id);
    assert_true(qemu > 0);
    assert_int_equal(kill(qemu, SIGSTOP), 0);
    struct call c = {.vm = vm};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_main, &c), 0);
    wait_unread(qemu, "qmp.sock");
    assert_int_equal(kill(qemu, SIGKILL), 0);
    pthread_join(t, NULL);
    if (c.rc != UVM_E_UNEXPECTED_EXIT || !strstr(c.err, "signal 9"))
        fail_msg("add during the kill: %d \"%s\"", c.rc, c.err);
    expect_code(scsi_add(vm), UVM_E_INVALID_STATE, "stopped", "the add retried");
    char retry[512];
    snprintf(retry, sizeof(retry), "%s", uvm_last_error());
    expect_code(uvm_wait(vm), UVM_E_UNEXPECTED_EXIT, "signal 9", "wait");
    assert_int_equal(uvm_terminate(vm), 0);
    uvm_close(vm);
    expect_nothing_left(id, fds, "killed during an add");
    print_message("  QEMU killed during a SCSI add (device_add unread): UVM_E_UNEXPECTED_EXIT "
                  "\"%s\"; the retry UVM_E_INVALID_STATE \"%s\"; terminate 0; after close no "
                  "QEMU, runtime directory, mount or fd\n",
                  c.err, retry);
}

/* QEMU SIGKILLed, then at once an add, before the library may have noticed. */
static void
test_killed_before_add(void **state)
{
    const char *id = "itest-fault-before";
    int fds = open_fds();
    struct uvm *vm = itest_boot(id);
    int qemu = itest_qemu_pid(id);
    assert_int_equal(kill(qemu, SIGKILL), 0);
    int rc = scsi_add(vm);
    char err[512];
    snprintf(err, sizeof(err), "%s", uvm_last_error());
    /* the add ran into the dead QEMU, or found the VM stopped: either names why */
    if (!(rc == UVM_E_UNEXPECTED_EXIT && strstr(err, "signal 9")) &&
        !(rc == UVM_E_INVALID_STATE && strstr(err, "stopped")))
        fail_msg("add after the kill: %d \"%s\"", rc, err);
    expect_code(uvm_wait(vm), UVM_E_UNEXPECTED_EXIT, "signal 9", "wait");
    expect_code(scsi_add(vm), UVM_E_INVALID_STATE, "stopped", "the add retried");
    assert_int_equal(uvm_terminate(vm), 0);
    uvm_close(vm);
    expect_nothing_left(id, fds, "killed before an add");
    print_message("  QEMU killed just before a SCSI add: %s \"%s\"; the retry "
                  "UVM_E_INVALID_STATE; terminate 0; nothing left after close\n",
                  rc == UVM_E_UNEXPECTED_EXIT ? "UVM_E_UNEXPECTED_EXIT" : "UVM_E_INVALID_STATE",
                  err);
}

/* Resources added (their QMP commands done), a share's virtiofsd killed, then QEMU killed. */
static void
test_killed_after_add(void **state)
{
    const char *id = "itest-fault-after";
    int fds = open_fds();
    struct uvm *vm = itest_boot(id);
    char *rd = rundir_of(id);
    assert_int_equal(scsi_add(vm), 0);
    assert_int_equal(uvm_add_vsmb(vm, share, NULL, NULL), 0);
    const char *shared2 = share2;
    if (uvm_add_vsmb(vm, shared2, NULL, NULL) < 0)
        fail_msg("add vsmb %s: %s", shared2, uvm_last_error());
    /* one daemon dies: that share is broken, its remove still works (the guest detaches it) */
    itest_sh("pkill -KILL -f '[v]irtiofsd --socket-path=%s/vsmb/s2.sock'", rd);
    for (int i = 0; i < 100 && uvm_add_vsmb(vm, shared2, NULL, NULL) == 0; i++) {
        assert_int_equal(uvm_remove_vsmb(vm, shared2), 0); /* not seen dead yet: undo the ref */
        usleep(100 * 1000);
    }
    expect_code(uvm_add_vsmb(vm, shared2, NULL, NULL), UVM_E_HYPERVISOR, "broken",
                "add of a share whose virtiofsd died");
    char broken[512];
    snprintf(broken, sizeof(broken), "%s", uvm_last_error());
    assert_int_equal(uvm_remove_vsmb(vm, shared2), 0);
    int qemu = itest_qemu_pid(id);
    assert_int_equal(kill(qemu, SIGKILL), 0);
    expect_code(uvm_wait(vm), UVM_E_UNEXPECTED_EXIT, "signal 9", "wait");
    int daemons = count_of(itest_host_out("pgrep -f '[v]irtiofsd --socket-path=%s/' | wc -l", rd));
    expect_code(uvm_remove_scsi(vm, disk), UVM_E_INVALID_STATE, "stopped", "remove scsi");
    expect_code(uvm_remove_vsmb(vm, share), UVM_E_INVALID_STATE, "stopped", "remove vsmb");
    char removed[512];
    snprintf(removed, sizeof(removed), "%s", uvm_last_error());
    assert_int_equal(uvm_terminate(vm), 0);
    uvm_close(vm);
    expect_nothing_left(id, fds, "killed after adds");
    if (daemons)
        fail_msg("%d virtiofsd left running once QEMU was gone", daemons);
    print_message("  a share's virtiofsd killed: its add UVM_E_HYPERVISOR \"%s\", its remove 0; "
                  "then QEMU killed after a SCSI and a VSMB add: the daemons stopped at once, "
                  "the removes UVM_E_INVALID_STATE \"%s\"; terminate 0; nothing left\n",
                  broken, removed);
    free(rd);
}

/* The guest's vCPU threads in a frozen cgroup v1 freezer group (QEMU's main loop, QMP, runs). */
static char freezer[128];

static void
freeze(int qemu, bool on)
{
    if (on) {
        snprintf(freezer, sizeof(freezer), "/sys/fs/cgroup/freezer/uvm-itest-%d", (int)getpid());
        itest_sh("mkdir -p %s && for t in /proc/%d/task/*; do grep -q '^CPU ' $t/comm && "
                 "echo ${t##*/} > %s/tasks; done; echo FROZEN > %s/freezer.state",
                 freezer, qemu, freezer, freezer);
    } else {
        itest_sh("echo THAWED > %s/freezer.state; for t in $(cat %s/tasks); do echo $t > "
                 "/sys/fs/cgroup/freezer/tasks || true; done; rmdir %s",
                 freezer, freezer, freezer);
    }
}

/* The guest frozen: an exec times out, a retry once thawed works; QEMU stopped with an exec
 * and an add in flight: terminate returns and so do they. */
static void
test_guest_frozen(void **state)
{
    const char *id = "itest-fault-frozen";
    int fds = open_fds();
    struct uvm *vm = itest_boot(id);
    int qemu = itest_qemu_pid(id);
    struct call c = {.vm = vm, .exec = true};
    if (access("/sys/fs/cgroup/freezer/tasks", W_OK) == 0) {
        freeze(qemu, true);
        call_main(&c);
        if (c.rc != UVM_E_TIMEOUT)
            fail_msg("exec in a frozen guest: %d \"%s\"", c.rc, c.err);
        freeze(qemu, false);
        struct call again = {.vm = vm, .exec = true};
        call_main(&again);
        if (again.rc < 0)
            fail_msg("exec once thawed: %s", again.err);
    } else {
        snprintf(c.err, sizeof(c.err), "not run: no cgroup v1 freezer on this host");
    }
    /* A frozen task cannot die until thawed: QEMU is stopped instead (SIGSTOP: its QMP and its
     * guest both frozen), with an exec and an add unread in its sockets. */
    assert_int_equal(kill(qemu, SIGSTOP), 0);
    struct call ex = {.vm = vm, .exec = true}, add = {.vm = vm};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, call_main, &ex), 0);
    wait_unread(qemu, "gcs.sock");
    assert_int_equal(pthread_create(&t2, NULL, call_main, &add), 0);
    wait_unread(qemu, "qmp.sock");
    assert_int_equal(uvm_terminate(vm), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    if (ex.rc != UVM_E_INVALID_STATE || !strstr(ex.err, "terminated"))
        fail_msg("exec in flight at terminate: %d \"%s\"", ex.rc, ex.err);
    if (add.rc != UVM_E_INVALID_STATE || !strstr(add.err, "terminated"))
        fail_msg("add in flight at terminate: %d \"%s\"", add.rc, add.err);
    uvm_close(vm);
    expect_nothing_left(id, fds, "frozen guest terminated");
    print_message("  guest frozen (vCPU threads in a frozen cgroup): exec UVM_E_TIMEOUT \"%s\"; "
                  "thawed, the retry worked; QEMU stopped (SIGSTOP) with an exec and an add "
                  "unread in its sockets: terminate returned 0, the calls UVM_E_INVALID_STATE "
                  "\"%s\" / \"%s\"; nothing left\n",
                  c.err, ex.err, add.err);
}

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-ifaults-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(disk, sizeof(disk), "%s/disk.img", dir);
    snprintf(share, sizeof(share), "%s/share", dir);
    snprintf(share2, sizeof(share2), "%s/share2", dir);
    itest_sh("truncate -s 8M %s && mkdir -p %s %s", disk, share, share2);
    /* one VM first: the library's spawner thread (and its pidfd) exists before the counts */
    uvm_close(itest_boot("itest-fault-warmup"));
    return 0;
}

static int
teardown(void **state)
{
    itest_rm_rf(dir);
    return 0;
}

int
main(int argc, char **argv)
{
    itest_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_during_add),
        cmocka_unit_test(test_killed_before_add),
        cmocka_unit_test(test_killed_after_add),
        cmocka_unit_test(test_guest_frozen),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return itest_finish(cmocka_run_group_tests(tests, setup, teardown));
}

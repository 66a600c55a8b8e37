/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection at create and start (issue 14), through the library's real create and start
 * with a stand-in for QEMU (fake-qemu-bin.c, found first in PATH) that fails the step asked:
 * QEMU cannot be spawned (not found, not executable), exits at once, never greets on QMP,
 * greets with something else, refuses qmp_capabilities; the agent never connects, refuses
 * NegotiateProtocol or negotiates another version. Then the runtime directory runs out of space
 * (a tiny tmpfs as UVM_RUNTIME_DIR: no blocks at create, no inodes at start) and the process out
 * of fds (RLIMIT_NOFILE lowered in a forked child, every limit from too low to enough).
 * After each fault:
 *   - the call's result: the expected code, a message naming the VM and the step;
 *   - nothing is left: no child process, no socket in the runtime directory after a failed
 *     start, the VM as created (a retry of the start works), and after close the runtime
 *     directory removed and the fds as before;
 *   - no memory (ASan).
 * Each fault and what was checked is printed. Deadlines are short (start_timeout_ms) so that a
 * step that never comes fails quickly; nothing checks wall time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "faultstate.h"
#include "uvm.h"

#define VM_ID "sf"
#define START_TIMEOUT_MS 1500u

static char dir[64], bin[96], empty_bin[96], boot[96], run[96], tiny[96], path_env[256];

static struct uvm *
create(void)
{
    struct uvm_options o = {.id = VM_ID,
                            .boot_files_path = boot,
                            .start_timeout_ms = START_TIMEOUT_MS};
    struct uvm *vm = NULL;
    if (uvm_create(&o, &vm) < 0)
        fail_msg("create: %s", uvm_last_error());
    return vm;
}

static bool
exists(const char *base, const char *name)
{
    char p[192];
    snprintf(p, sizeof(p), "%s/%s", base, name);
    return access(p, F_OK) == 0;
}

static void
expect_no_children(const char *when)
{
    cleanup_free char *c = fault_children();
    if (*c)
        fail_msg("%s: children left: %s", when, c);
}

/* The start failed as expected; nothing of it is left; a retry with a working QEMU starts;
 * close leaves nothing. */
static void
check_failed_start(struct uvm *vm, int rc, int code, const char *text, const char *what)
{
    const char *e = uvm_last_error();
    if (rc != code || !strstr(e, text) || !strstr(e, "start '" VM_ID "'"))
        fail_msg("%s: start returned %d: %s (expected %d with '%s')", what, rc, e, code, text);
    char msg[768];
    snprintf(msg, sizeof(msg), "%s", e);
    expect_no_children(what);
    char rd[160];
    snprintf(rd, sizeof(rd), "%s/%s", run, VM_ID);
    if (exists(rd, "qmp.sock") || exists(rd, "gcs.sock"))
        fail_msg("%s: a socket is left in %s", what, rd);
    setenv("FAKE_QEMU_MODE", "ok", 1);
    setenv("PATH", path_env, 1);
    if (uvm_start(vm) < 0)
        fail_msg("%s: the retried start failed: %s", what, uvm_last_error());
    uvm_close(vm);
    expect_no_children("after close");
    if (exists(run, VM_ID))
        fail_msg("%s: the runtime directory %s is left after close", what, rd);
    print_message("  %s: %d \"%s\"; no child, no socket left, the retried start worked, close "
                  "removed the runtime directory\n",
                  what, rc, msg);
}

static void
start_fault(const char *mode, int code, const char *text, const char *what)
{
    size_t fds = fault_open_fds();
    struct uvm *vm = create();
    setenv("FAKE_QEMU_MODE", mode, 1);
    int rc = uvm_start(vm);
    check_failed_start(vm, rc, code, text, what);
    assert_int_equal(fault_open_fds(), fds);
}

/* A clean create, start and close first (the library's spawner thread starts then). */
static void
test_clean(void **state)
{
    struct uvm *vm = create();
    setenv("FAKE_QEMU_MODE", "ok", 1);
    if (uvm_start(vm) < 0)
        fail_msg("start: %s", uvm_last_error());
    assert_int_equal(uvm_terminate(vm), 0);
    uvm_close(vm);
    assert_false(exists(run, VM_ID));
    expect_no_children("after a clean run");
    print_message("clean create, start (the fake QEMU and agent), terminate, close: nothing "
                  "left\n");
}

static void
test_start_steps(void **state)
{
    size_t fds = fault_open_fds();
    struct uvm *vm = create();
    setenv("PATH", empty_bin, 1); /* no QEMU at all */
    check_failed_start(vm, uvm_start(vm), UVM_E_NOT_FOUND, "not found in PATH",
                       "QEMU not installed");
    vm = create();
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/qemu-system-x86_64", empty_bin);
    FILE *fp = fopen(bad, "w");
    fputs("\x7f"
          "ELF not really\n",
          fp);
    fclose(fp);
    chmod(bad, 0755);
    setenv("PATH", empty_bin, 1); /* a QEMU that cannot be executed */
    check_failed_start(vm, uvm_start(vm), -ENOEXEC, "exec", "QEMU not executable");
    unlink(bad);
    start_fault("exit", UVM_E_UNEXPECTED_EXIT,
                "QEMU exited with status 1: fake qemu: injected: "
                "cannot initialise",
                "QEMU exits at once");
    start_fault("no-greeting", UVM_E_TIMEOUT, "", "QMP greeting never comes");
    start_fault("bad-greeting", UVM_E_HYPERVISOR, "", "QMP greeting not QMP");
    start_fault("cap-error", UVM_E_HYPERVISOR, "injected: capabilities refused",
                "qmp_capabilities refused");
    start_fault("no-agent", UVM_E_TIMEOUT,
                "NegotiateProtocol: the guest agent did not answer within 1500 ms "
                "(uvm_options.start_timeout_ms)",
                "the agent never connects");
    start_fault("frozen", UVM_E_TIMEOUT,
                "NegotiateProtocol: the guest agent did not answer within 1500 ms "
                "(uvm_options.start_timeout_ms)",
                "the agent frozen: NegotiateProtocol received, never answered");
    start_fault("refuse", UVM_E_GUEST, "NegotiateProtocol: guest: injected: protocol refused",
                "NegotiateProtocol refused");
    start_fault("bad-version", UVM_E_PROTOCOL,
                "'sf': NegotiateProtocol: the guest agent "
                "negotiated an unsupported protocol",
                "NegotiateProtocol with version 3");
    assert_int_equal(fault_open_fds(), fds);
}

/* ENOSPC in the runtime directory: at create (no block for the lock file's text) and at start
 * (no inode for the sockets). */
static void
test_enospc(void **state)
{
    assert_int_equal(
        mount("tmpfs", tiny, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,nr_inodes=64,mode=0700"), 0);
    setenv("UVM_RUNTIME_DIR", tiny, 1);
    size_t fds = fault_open_fds();
    fault_fill(tiny, false);
    struct uvm_options o = {.id = VM_ID, .boot_files_path = boot};
    struct uvm *vm = (void *)1;
    int rc = uvm_create(&o, &vm);
    const char *e = uvm_last_error();
    if (rc != -ENOSPC || !strstr(e, strerror(ENOSPC)) || !strstr(e, "/" VM_ID "/lock"))
        fail_msg("create on a full runtime directory: %d %s", rc, e);
    assert_null(vm);
    if (exists(tiny, VM_ID))
        fail_msg("create on a full runtime directory left %s/%s", tiny, VM_ID);
    assert_int_equal(fault_open_fds(), fds);
    print_message("  create, no space in the runtime directory: %d \"%s\"; no VM directory "
                  "left, no fd\n",
                  rc, e);
    fault_unfill(tiny);

    vm = create();
    fault_fill(tiny, true);
    setenv("FAKE_QEMU_MODE", "ok", 1);
    rc = uvm_start(vm);
    fault_unfill(tiny);
    char saved[96];
    snprintf(saved, sizeof(saved), "%s", run);
    snprintf(run, sizeof(run), "%s", tiny); /* where check_failed_start looks */
    check_failed_start(vm, rc, -ENOSPC, strerror(ENOSPC),
                       "start, no inode in the runtime "
                       "directory");
    snprintf(run, sizeof(run), "%s", saved);
    assert_int_equal(fault_open_fds(), fds);
    setenv("UVM_RUNTIME_DIR", run, 1);
    assert_int_equal(umount(tiny), 0);
}

/* The RLIMIT_NOFILE that leaves exactly `extra` fds to open: the limit bounds fd numbers, so
 * it is the (extra + 1)-th free number (holes below it are the room). */
static rlim_t
limit_for(unsigned extra)
{
    unsigned free_seen = 0;
    for (int n = 0;; n++)
        if (fcntl(n, F_GETFD) < 0 && errno == EBADF && free_seen++ == extra)
            return (rlim_t)n;
}

/* In a child: the soft RLIMIT_NOFILE leaving `extra` fds, then create + start + close.
 * Exit status: 0 success, 1 an EMFILE failure after which nothing was left, 2 anything else
 * (said on stderr). */
static int
emfile_child(unsigned extra)
{
    /* First a whole run without a limit: this process's spawner thread (and its pidfd of the
     * process, replacing the parent's) exists before the count. */
    struct uvm_options o = {.id = VM_ID,
                            .boot_files_path = boot,
                            .start_timeout_ms = START_TIMEOUT_MS};
    struct uvm *vm = NULL;
    if (uvm_create(&o, &vm) < 0 || uvm_start(vm) < 0)
        return 2;
    uvm_close(vm);
    vm = NULL;
    size_t fds = fault_open_fds();
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    rl = (struct rlimit){.rlim_cur = limit_for(extra), .rlim_max = old.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 2;
    int rc = uvm_create(&o, &vm);
    const char *step = "create";
    char e[768];
    snprintf(e, sizeof(e), "%s", uvm_last_error());
    if (rc == 0) {
        step = "start";
        rc = uvm_start(vm);
        snprintf(e, sizeof(e), "%s", uvm_last_error());
        uvm_close(vm); /* at the limit too: the release must not need more fds */
    }
    setrlimit(RLIMIT_NOFILE, &old); /* for the checks */
    cleanup_free char *children = fault_children();
    bool clean = fault_open_fds() == fds && !exists(run, VM_ID) && !*children;
    if (rc == 0 && clean)
        return 0;
    if (rc < 0 && clean && strstr(e, strerror(EMFILE))) {
        fprintf(stderr, "  %u fds free: %s fails: %d \"%s\"; nothing left\n", extra, step, rc, e);
        return 1;
    }
    fprintf(stderr, "  %u fds free: %s: %d \"%s\"; fds %zu -> %zu, rundir %s, children [%s]\n",
            extra, step, rc, e, fds, fault_open_fds(), exists(run, VM_ID) ? "left" : "gone",
            children);
    return 2;
}

/* EMFILE at every step: the limit raised one fd at a time until create and start succeed. */
static void
test_emfile(void **state)
{
    setenv("FAKE_QEMU_MODE", "ok", 1);
    unsigned failures = 0;
    for (unsigned extra = 0; extra < 64; extra++) {
        fflush(stderr);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(emfile_child(extra));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 2)
            fail_msg("with %u fds free: status 0x%x", extra, (unsigned)status);
        if (WEXITSTATUS(status) == 0) {
            print_message("  EMFILE: %u limits failed with EMFILE and left nothing; with %u fds "
                          "free create and start succeed\n",
                          failures, extra);
            assert_true(failures > 0);
            return;
        }
        failures++;
    }
    fail_msg("64 fds were not enough");
}

/* Entries of the VM's Plan9 staging directory (its binds). */
static int
p9_entries(void)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s/9p", run, VM_ID);
    DIR *d = opendir(p);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A Plan9 (scsi false) or a SCSI add with the soft fd limit leaving `extra` fds: 0 added (and
 * removed), 1 failed with EMFILE leaving nothing (its error in err), 2 anything else. */
static int
hotplug_at_limit(struct uvm *vm, bool scsi, unsigned extra, char *err, size_t len)
{
    char p9[160], disk[160];
    snprintf(p9, sizeof(p9), "%s/p9", dir);
    snprintf(disk, sizeof(disk), "%s/disk.img", dir);
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    size_t fds = fault_open_fds();
    rl = (struct rlimit){.rlim_cur = limit_for(extra), .rlim_max = old.rlim_max};
    setrlimit(RLIMIT_NOFILE, &rl);
    int c = -1;
    int32_t l = -1;
    int rc = scsi ? uvm_add_scsi(vm, disk, NULL, &c, &l) : uvm_add_plan9(vm, p9, "/mnt/p9", false);
    snprintf(err, len, "%s", rc < 0 ? uvm_last_error() : "");
    setrlimit(RLIMIT_NOFILE, &old);
    if (rc == 0 && (scsi ? uvm_remove_scsi(vm, disk) : uvm_remove_plan9(vm, p9)) < 0)
        return 2;
    if (fault_open_fds() != fds || p9_entries() != 0)
        return 2;
    return rc == 0 ? 0 : strstr(err, strerror(EMFILE)) ? 1 : 2;
}

/* In a child: a started VM (the stand-in QEMU), then each add at every fd limit until it works;
 * then the VM is closed. */
static int
emfile_hotplug_child(void)
{
    struct uvm_options o = {.id = VM_ID,
                            .boot_files_path = boot,
                            .start_timeout_ms = START_TIMEOUT_MS};
    struct uvm *vm = NULL;
    if (uvm_create(&o, &vm) < 0 || uvm_start(vm) < 0) {
        fprintf(stderr, "  create or start: %s\n", uvm_last_error());
        return 2;
    }
    char err[512] = "";
    int rc = 0;
    for (int scsi = 0; scsi < 2 && rc == 0; scsi++) {
        unsigned extra = 0;
        while (extra < 64 && (rc = hotplug_at_limit(vm, scsi, extra, err, sizeof(err))) == 1)
            fprintf(stderr, "  %s add, %u fds free: \"%s\"; nothing left\n",
                    scsi ? "SCSI" : "Plan9", extra++, err);
        if (rc == 0 && extra == 0)
            rc = 2; /* it never failed */
        if (rc == 0)
            fprintf(stderr, "  %s add: works with %u fds free\n", scsi ? "SCSI" : "Plan9", extra);
    }
    if (rc != 0)
        fprintf(stderr, "  unexpected: %d \"%s\", fds %zu, Plan9 entries %d\n", rc, err,
                fault_open_fds(), p9_entries());
    uvm_close(vm);
    return rc == 0 && !exists(run, VM_ID) ? 0 : 2;
}

/* EMFILE at every step of a Plan9 and a SCSI add (the stand-in answers add-fd and device_del
 * as QEMU does): each fails with EMFILE and leaves nothing; with enough fds both work. */
static void
test_emfile_hotplug(void **state)
{
    setenv("FAKE_QEMU_MODE", "ok", 1);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(emfile_hotplug_child());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("hot-plug at the fd limit: status 0x%x", (unsigned)status);
    print_message("  EMFILE in hot-plug: a Plan9 and a SCSI add at each fd limit failed with "
                  "EMFILE and left nothing (the fds as before, no staging entry), until each "
                  "succeeded\n");
}

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-startfaults-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(bin, sizeof(bin), "%s/bin", dir);
    snprintf(empty_bin, sizeof(empty_bin), "%s/empty", dir);
    snprintf(boot, sizeof(boot), "%s/boot", dir);
    snprintf(run, sizeof(run), "%s/run", dir);
    snprintf(tiny, sizeof(tiny), "%s/tiny", dir);
    char p9[160];
    snprintf(p9, sizeof(p9), "%s/p9", dir);
    const char *d[] = {bin, empty_bin, boot, tiny, p9};
    for (size_t i = 0; i < ARRAY_SIZE(d); i++)
        assert_int_equal(mkdir(d[i], 0700), 0);
    const char *fake = getenv("FAKE_QEMU_BIN");
    assert_non_null(fake);
    char link[160];
    snprintf(link, sizeof(link), "%s/qemu-system-x86_64", bin);
    assert_int_equal(symlink(fake, link), 0);
    const char *files[] = {"kernel", "initrd.img"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s/%s", boot, files[i]);
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    char disk[160];
    snprintf(disk, sizeof(disk), "%s/disk.img", dir);
    FILE *img = fopen(disk, "w");
    assert_non_null(img);
    fputs("raw data", img);
    fclose(img);
    snprintf(path_env, sizeof(path_env), "%s:/usr/sbin:/usr/bin:/sbin:/bin", bin);
    setenv("PATH", path_env, 1);
    setenv("UVM_RUNTIME_DIR", run, 1);
    setenv("UVM_JAIL", "0", 1); /* the stand-in is outside the jail's view */
    setenv("UVM_ACCEL", "tcg", 1);
    return 0;
}

static int
teardown(void **state)
{
    setenv("UVM_RUNTIME_DIR", run, 1);
    umount2(tiny, MNT_DETACH);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),          cmocka_unit_test(test_start_steps),
        cmocka_unit_test(test_enospc),         cmocka_unit_test(test_emfile),
        cmocka_unit_test(test_emfile_hotplug),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

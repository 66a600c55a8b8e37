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
    start_fault("no-agent", UVM_E_TIMEOUT, "the guest agent did not answer",
                "the agent never connects");
    start_fault("refuse", UVM_E_GUEST, "NegotiateProtocol: guest: injected: protocol refused",
                "NegotiateProtocol refused");
    start_fault("bad-version", UVM_E_PROTOCOL,
                "'sf': NegotiateProtocol: the guest agent "
                "negotiated an unsupported protocol",
                "NegotiateProtocol with version 3");
    assert_int_equal(fault_open_fds(), fds);
}

/* Fill the file system at path: blocks (a file written until ENOSPC) or inodes (empty files
 * until ENOSPC). */
static void
fill(const char *path, bool inodes)
{
    char p[160];
    if (!inodes) {
        snprintf(p, sizeof(p), "%s/filler", path);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        static const char block[4096];
        while (write(fd, block, sizeof(block)) > 0)
            ;
        assert_int_equal(errno, ENOSPC);
        close(fd);
        return;
    }
    for (int i = 0;; i++) {
        snprintf(p, sizeof(p), "%s/i%d", path, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            assert_int_equal(errno, ENOSPC);
            return;
        }
        close(fd);
    }
}

static void
unfill(const char *path)
{
    char cmd[192];
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/filler '%s'/i*", path, path);
    assert_int_equal(system(cmd), 0);
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
    fill(tiny, false);
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
    unfill(tiny);

    vm = create();
    fill(tiny, true);
    setenv("FAKE_QEMU_MODE", "ok", 1);
    rc = uvm_start(vm);
    unfill(tiny);
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

/* In a child: RLIMIT_NOFILE at `extra` fds above those open, then create + start + close.
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
    /* the count has ".", ".." and the directory's own fd: fds - 3 are open */
    struct rlimit rl = {.rlim_cur = fds - 3 + extra, .rlim_max = fds - 3 + extra};
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
        uvm_close(vm);
    }
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
    const char *d[] = {bin, empty_bin, boot, tiny};
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
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_start_steps),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_emfile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

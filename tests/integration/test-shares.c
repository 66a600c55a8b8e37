/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Plan9 and VSMB (virtio-fs) shares against a real VM: hcsshim's 64-times scenarios, data both
 * ways, read-only enforcement, many shares, symlinks, bad input, a dying virtiofsd, and nothing
 * left behind on the host. */
#include <signal.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static struct uvm *vm;
static char dir[64], rundir[256];

static int
count_of(char *out)
{
    int n = atoi(out);
    free(out);
    return n;
}

/* Share binds of the VM (below its 9p and vsmb staging directories; 9p itself is a bind of
 * itself). */
static int
host_binds(void)
{
    return count_of(itest_host_out("grep -cE ' %s/(9p|vsmb)/' /proc/self/mountinfo || true",
                                   rundir));
}

/* The virtiofsd daemons we started (with sandbox=namespace each has a child in its own PID
 * namespace: not counted). */
static int
daemons(void)
{
    return count_of(itest_host_out("pgrep -P %d -f '[v]irtiofsd --socket-path=%s/' | wc -l",
                                   (int)getpid(), rundir));
}

/* Every virtiofsd process of the VM, children included. */
static int
all_daemons(void)
{
    return count_of(itest_host_out("pgrep -f '[v]irtiofsd --socket-path=%s/' | wc -l", rundir));
}

/* Mounts anywhere below the runtime directory. */
static int
rundir_mounts(void)
{
    return count_of(itest_host_out("grep -c ' %s/' /proc/self/mountinfo || true", rundir));
}

static int
guest_rc(const char *cmd, char **out)
{
    struct itest_run r;
    const char *argv[] = {"sh", "-c", cmd, NULL};
    if (itest_run(vm, argv, NULL, &r) < 0)
        fail_msg("exec: %s", uvm_last_error());
    if (out)
        *out = r.out;
    else
        free(r.out);
    char *err = r.err;
    if (out && r.exit_code) {
        size_t n = strlen(*out);
        *out = realloc(*out, n + strlen(err) + 1);
        strcpy(*out + n, err);
    }
    free(err);
    return r.exit_code;
}

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-shares-it-XXXXXX");
    assert_non_null(mkdtemp(dir));
    itest_sh("mkdir -p %s/rw %s/ro %s/many && echo from-host > %s/rw/hello && "
             "echo ro-content > %s/ro/file && echo host-secret > %s/secret && "
             "ln -s %s/secret %s/rw/leak && ln -s ../../ %s/rw/up && touch %s/afile",
             dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
    vm = itest_boot("itest-shares");
    snprintf(rundir, sizeof(rundir), "%s/itest-shares", itest_runtime_dir());
    return 0;
}

static int
teardown(void **state)
{
    uvm_close(vm);
    /* after close: no bind, no daemon, no staging directory */
    int left = rundir_mounts() + all_daemons();
    int rd = access(rundir, F_OK) == 0;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0 || left || rd) {
        fprintf(stderr, "left behind after close: %d mounts/daemons, rundir %s\n", left,
                rd ? "exists" : "gone");
        return -1;
    }
    return 0;
}

/* hcsshim TestPlan9: the same directory 64 times at /tmp/<basename>, then 64 removes. */
static void
test_plan9_64(void **state)
{
    char path[128], cmd[256];
    snprintf(path, sizeof(path), "/tmp/%s", strrchr(dir, '/') + 1);
    for (int i = 0; i < 64; i++)
        if (uvm_add_plan9(vm, dir, path, false) < 0)
            fail_msg("add plan9 #%d: %s", i, uvm_last_error());
    assert_int_equal(host_binds(), 1);
    snprintf(cmd, sizeof(cmd), "grep -c ' %s ' /proc/mounts; cat %s/rw/hello", path, path);
    char *out;
    assert_int_equal(guest_rc(cmd, &out), 0);
    assert_string_equal(out, "1\nfrom-host\n");
    free(out);
    for (int i = 0; i < 63; i++)
        assert_int_equal(uvm_remove_plan9(vm, dir), 0);
    snprintf(cmd, sizeof(cmd), "grep -c ' %s ' /proc/mounts || true", path);
    assert_int_equal(guest_rc(cmd, &out), 0);
    assert_string_equal(out, "1\n");
    free(out);
    assert_int_equal(uvm_remove_plan9(vm, dir), 0);
    assert_int_equal(guest_rc(cmd, &out), 0);
    assert_string_equal(out, "0\n");
    free(out);
    assert_int_equal(host_binds(), 0);
    assert_int_equal(uvm_remove_plan9(vm, dir), UVM_E_NOT_ATTACHED);
    assert_non_null(strstr(uvm_last_error(), "is not present as a Plan9 share"));
}

static void
test_plan9_data_ro_symlinks(void **state)
{
    char rw[128], ro[128];
    snprintf(rw, sizeof(rw), "%s/rw", dir);
    snprintf(ro, sizeof(ro), "%s/ro", dir);
    assert_int_equal(uvm_add_plan9(vm, rw, "/mnt/rw", false), 0);
    assert_int_equal(uvm_add_plan9(vm, ro, "/mnt/ro", true), 0);
    char *out;
    assert_int_equal(guest_rc("cat /mnt/rw/hello /mnt/ro/file && echo from-guest > "
                              "/mnt/rw/back && sync",
                              &out),
                     0);
    assert_string_equal(out, "from-host\nro-content\n");
    free(out);
    out = itest_host_out("cat %s/back", rw);
    assert_string_equal(out, "from-guest\n");
    free(out);
    itest_sh("echo changed-on-host > %s/hello", rw);
    assert_int_equal(guest_rc("cat /mnt/rw/hello", &out), 0);
    assert_string_equal(out, "changed-on-host\n");
    free(out);
    /* read-only, whatever the guest tries */
    assert_int_not_equal(guest_rc("touch /mnt/ro/x", &out), 0);
    assert_non_null(strstr(out, "Read-only file system"));
    free(out);
    assert_int_not_equal(guest_rc("mount -o remount,rw /mnt/ro && touch /mnt/ro/x", &out), 0);
    free(out);
    assert_int_equal(access("/nonexistent-check", F_OK), -1);
    out = itest_host_out("ls %s", ro);
    assert_string_equal(out, "file\n");
    free(out);
    /* symlinks resolve in the guest, never to host files outside the share */
    assert_int_not_equal(guest_rc("cat /mnt/rw/leak", &out), 0);
    assert_null(strstr(out, "host-secret"));
    free(out);
    guest_rc("ls /mnt/rw/up/", &out);
    assert_null(strstr(out, "secret"));
    free(out);
    assert_int_equal(uvm_remove_plan9(vm, rw), 0);
    assert_int_equal(uvm_remove_plan9(vm, ro), 0);
    assert_int_equal(host_binds(), 0);
}

static void
test_plan9_16_and_errors(void **state)
{
    char sub[160], mnt[32];
    for (int i = 0; i < 16; i++) {
        snprintf(sub, sizeof(sub), "%s/many/d%d", dir, i);
        itest_sh("mkdir -p %s && echo %d > %s/n", sub, i, sub);
        snprintf(mnt, sizeof(mnt), "/mnt/m%d", i);
        if (uvm_add_plan9(vm, sub, mnt, i % 2) < 0)
            fail_msg("add %s: %s", sub, uvm_last_error());
    }
    char *out;
    assert_int_equal(guest_rc("cat /mnt/m0/n /mnt/m7/n /mnt/m15/n", &out), 0);
    assert_string_equal(out, "0\n7\n15\n");
    free(out);
    assert_int_equal(host_binds(), 16);
    for (int i = 0; i < 16; i++) {
        snprintf(sub, sizeof(sub), "%s/many/d%d", dir, i);
        assert_int_equal(uvm_remove_plan9(vm, sub), 0);
    }
    assert_int_equal(host_binds(), 0);

    char file[128], missing[128];
    snprintf(file, sizeof(file), "%s/afile", dir);
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    assert_int_equal(uvm_add_plan9(vm, missing, "/mnt/x", false), UVM_E_NOT_FOUND);
    assert_non_null(strstr(uvm_last_error(), missing));
    assert_int_equal(uvm_add_plan9(vm, file, "/mnt/x", false), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "not a directory"));
    assert_int_equal(uvm_add_plan9(vm, dir, "", false), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "uvmPath must be passed to AddPlan9");
    assert_int_equal(uvm_add_plan9(vm, dir, NULL, false), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_plan9(vm, dir, "relative", false), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_remove_plan9(vm, missing), UVM_E_NOT_ATTACHED);
    assert_int_equal(host_binds(), 0);
}

/* hcsshim TestVSMB on a linux VM: 64 adds of one directory with the test's options, 64
 * removes; one virtiofsd. */
static void
test_vsmb_64(void **state)
{
    char ro[128];
    snprintf(ro, sizeof(ro), "%s/ro", dir);
    struct uvm_vsmb_options o = {.read_only = true,
                                 .pseudo_oplocks = true,
                                 .take_backup_privilege = true,
                                 .cache_io = true,
                                 .share_read = true};
    for (int i = 0; i < 64; i++)
        if (uvm_add_vsmb(vm, ro, "{}", &o) < 0)
            fail_msg("add vsmb #%d: %s", i, uvm_last_error());
    assert_int_equal(daemons(), 1);
    char *path = NULL;
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, ro, &path), 0);
    assert_string_equal(path, "/run/vsmb/s1");
    free(path);
    char *out;
    assert_int_equal(guest_rc("cat /run/vsmb/s1/file; grep -c ' /run/vsmb/s1 virtiofs ro' "
                              "/proc/mounts",
                              &out),
                     0);
    assert_string_equal(out, "ro-content\n1\n");
    free(out);
    assert_int_not_equal(guest_rc("touch /run/vsmb/s1/x", &out), 0);
    assert_non_null(strstr(out, "Read-only file system"));
    free(out);
    for (int i = 0; i < 63; i++)
        assert_int_equal(uvm_remove_vsmb(vm, ro), 0);
    assert_int_equal(daemons(), 1);
    assert_int_equal(uvm_remove_vsmb(vm, ro), 0);
    assert_int_equal(daemons(), 0);
    assert_int_equal(host_binds(), 0);
    assert_int_equal(guest_rc("grep -c /run/vsmb /proc/mounts || true", &out), 0);
    assert_string_equal(out, "0\n");
    free(out);
    assert_int_equal(uvm_remove_vsmb(vm, ro), UVM_E_NOT_ATTACHED);
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, ro, &path), UVM_E_NOT_FOUND);
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, "", &path), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "no hostPath passed to GetVSMBUvmPath");
}

static void
test_vsmb_rw_and_dying_daemon(void **state)
{
    char rw[128];
    snprintf(rw, sizeof(rw), "%s/rw", dir);
    assert_int_equal(uvm_add_vsmb(vm, rw, NULL, NULL), 0);
    char *path = NULL;
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, rw, &path), 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "cat %s/hello && echo via-virtiofs > %s/vfs && sync", path, path);
    char *out;
    assert_int_equal(guest_rc(cmd, &out), 0);
    assert_string_equal(out, "changed-on-host\n");
    free(out);
    out = itest_host_out("cat %s/vfs", rw);
    assert_string_equal(out, "via-virtiofs\n");
    free(out);
    free(path);
    /* the daemon dies: the share is reported broken, removal still works, nothing hangs */
    itest_sh("pkill -KILL -f '[v]irtiofsd --socket-path=%s/'", rundir);
    usleep(200 * 1000);
    assert_int_equal(uvm_add_vsmb(vm, rw, NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "broken"));
    assert_int_equal(uvm_remove_vsmb(vm, rw), 0);
    assert_int_equal(daemons(), 0);
    assert_int_equal(host_binds(), 0);
    /* the VM still works, and the same directory can be shared again */
    assert_int_equal(uvm_add_vsmb(vm, rw, NULL, NULL), 0);
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, rw, &path), 0);
    snprintf(cmd, sizeof(cmd), "cat %s/vfs", path);
    assert_int_equal(guest_rc(cmd, &out), 0);
    assert_string_equal(out, "via-virtiofs\n");
    free(out);
    free(path);
    assert_int_equal(uvm_remove_vsmb(vm, rw), 0);
}

static void
test_vsmb_16(void **state)
{
    char sub[160];
    for (int i = 0; i < 16; i++) {
        snprintf(sub, sizeof(sub), "%s/many/d%d", dir, i);
        if (uvm_add_vsmb(vm, sub, NULL, NULL) < 0)
            fail_msg("add vsmb %s: %s", sub, uvm_last_error());
    }
    assert_int_equal(daemons(), 16);
    char *out;
    assert_int_equal(guest_rc("cat /run/vsmb/*/n | sort -n | tr '\\n' ' '", &out), 0);
    assert_string_equal(out, "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 ");
    free(out);
    for (int i = 0; i < 16; i++) {
        snprintf(sub, sizeof(sub), "%s/many/d%d", dir, i);
        assert_int_equal(uvm_remove_vsmb(vm, sub), 0);
    }
    assert_int_equal(daemons(), 0);
    assert_int_equal(host_binds(), 0);
    char file[128];
    snprintf(file, sizeof(file), "%s/afile", dir);
    assert_int_equal(uvm_add_vsmb(vm, file, NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_vsmb(vm, "/nonexistent/dir", NULL, NULL), UVM_E_NOT_FOUND);
    assert_int_equal(uvm_add_vsmb(vm, dir, "{not json", NULL), UVM_E_INVALID_ARGUMENT);
}

/* ---- guest root against the host ---- */

/* What a hostile guest root does in a writable share to get host privileges. */
#define SETID_ATTACK                                                                               \
    "cd %s && touch x && chown 0:0 x; chmod 4755 x; chmod 2755 x; chmod u+s,g+s x; "            \
    "mknod c0 c 1 3; mknod b0 b 7 0; mkdir -m 6755 d; ls -ln"

/* Nothing set-id and no device node below hostdir, seen from the host. */
static void
assert_no_host_privilege(const char *hostdir)
{
    char *out = itest_host_out("find %s \\( -perm /6000 -o -type c -o -type b \\) -print",
                               hostdir);
    if (*out)
        fail_msg("on the host below %s: %s", hostdir, out);
    free(out);
}

/* A field of /proc/<pid>/status ("" when missing; caller frees). */
static char *
status_field(int pid, const char *field)
{
    return itest_host_out("awk '$1 == \"%s:\" {print $2}' /proc/%d/status", field, pid);
}

/* Every virtiofsd of the VM runs under our seccomp filter with no_new_privs; the one serving
 * (sandbox=namespace: the child of the one we started, in its own mount namespace) has no
 * mknod, setfcap or fsetid capability. */
static void
assert_daemons_confined(void)
{
    char *pids = itest_host_out("pgrep -f '[v]irtiofsd --socket-path=%s/'", rundir);
    int servers = 0;
    char *save = NULL;
    for (char *tok = strtok_r(pids, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
        int pid = atoi(tok);
        char *seccomp = status_field(pid, "Seccomp"), *nnp = status_field(pid, "NoNewPrivs");
        assert_string_equal(seccomp, "2\n");
        assert_string_equal(nnp, "1\n");
        free(seccomp);
        free(nnp);
        if (count_of(status_field(pid, "PPid")) == (int)getpid())
            continue; /* the one we started: it waits for its child */
        assert_int_not_equal(count_of(itest_host_out("test $(readlink /proc/%d/ns/mnt) = "
                                                     "$(readlink /proc/self/ns/mnt); echo $?",
                                                     pid)),
                             0);
        char *capeff = status_field(pid, "CapEff");
        unsigned long long caps = strtoull(capeff, NULL, 16);
        free(capeff);
        assert_int_equal(caps & ((1ull << 27) | (1ull << 31) | (1ull << 4)), 0); /* mknod, ... */
        assert_int_not_equal(caps & (1ull << 0), 0); /* chown stays: ownership passes through */
        servers++;
    }
    free(pids);
    assert_int_equal(servers, 1);
}

static void
test_vsmb_guest_root_gets_no_host_privilege(void **state)
{
    char host[128], cmd[512], *path = NULL, *out = NULL;
    snprintf(host, sizeof(host), "%s/vfs-attack", dir);
    itest_sh("mkdir -p %s", host);
    assert_int_equal(uvm_add_vsmb(vm, host, NULL, NULL), 0);
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, host, &path), 0);
    assert_daemons_confined();
    snprintf(cmd, sizeof(cmd), "{ " SETID_ATTACK "; } 2>&1", path);
    guest_rc(cmd, &out);
    if (!strstr(out, "Operation not permitted"))
        fail_msg("the guest was not refused: %s", out);
    free(out);
    assert_no_host_privilege(host);
    /* ownership passes through (guest root's file is root's), the mode is the guest's */
    out = itest_host_out("stat -c '%%u:%%g' %s/x", host);
    assert_string_equal(out, "0:0\n");
    free(out);
    /* ordinary modes work */
    snprintf(cmd, sizeof(cmd), "chmod 0751 %s/x && stat -c %%a %s/x", path, path);
    assert_int_equal(guest_rc(cmd, &out), 0);
    assert_string_equal(out, "751\n");
    free(out);
    free(path);
    assert_int_equal(uvm_remove_vsmb(vm, host), 0);
    assert_int_equal(daemons(), 0);
    assert_int_equal(host_binds(), 0);
}

static void
test_plan9_guest_root_gets_no_host_privilege(void **state)
{
    char host[128], cmd[512], *out = NULL;
    snprintf(host, sizeof(host), "%s/p9-attack", dir);
    itest_sh("mkdir -p %s && ln -sfn target %s/link", host, host);
    assert_int_equal(uvm_add_plan9(vm, host, "/mnt/p9a", false), 0);
    snprintf(cmd, sizeof(cmd), "{ " SETID_ATTACK "; } 2>&1; readlink link", "/mnt/p9a");
    guest_rc(cmd, &out);
    /* QEMU, the 9p server, has no capability and runs under the file-mode filter */
    if (!strstr(out, "Operation not permitted"))
        fail_msg("the guest was not refused: %s", out);
    /* host symlinks in a share stay symlinks (security_model=none) */
    assert_non_null(strstr(out, "\ntarget\n"));
    free(out);
    assert_no_host_privilege(host);
    /* the guest's file is QEMU's (uid 0), with an ordinary mode */
    out = itest_host_out("stat -c '%%u %%F' %s/x", host);
    assert_string_equal(out, "0 regular empty file\n");
    free(out);
    assert_int_equal(uvm_remove_plan9(vm, host), 0);
    assert_int_equal(host_binds(), 0);
}

int
main(void)
{
    itest_init();
    if (getuid() != 0) {
        printf("SKIP: directory shares need root (bind mounts)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan9_64),
        cmocka_unit_test(test_plan9_data_ro_symlinks),
        cmocka_unit_test(test_plan9_16_and_errors),
        cmocka_unit_test(test_vsmb_64),
        cmocka_unit_test(test_vsmb_rw_and_dying_daemon),
        cmocka_unit_test(test_vsmb_16),
        cmocka_unit_test(test_vsmb_guest_root_gets_no_host_privilege),
        cmocka_unit_test(test_plan9_guest_root_gets_no_host_privilege),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return itest_finish(failed);
}

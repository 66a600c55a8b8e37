/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* spawn.c's hygiene and jail.c's confinement, checked from inside the child. */
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "error.h"
#include "jail.h"
#include "spawn.h"
#include "timeutil.h"

/* Run argv with stdout to a pipe; its output (owned) and its wait status. */
static char *
run(const char *const *argv, const struct spawn_opts *extra, int *status)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    struct spawn_opts o = extra ? *extra : (struct spawn_opts){0};
    o.argv = argv;
    o.stdin_fd = -1;
    o.stdout_fd = p[1];
    o.stderr_fd = p[1];
    struct spawned c;
    int rc = spawn(&o, &c);
    close(p[1]);
    if (rc < 0) {
        close(p[0]);
        *status = rc;
        return NULL;
    }
    char *buf = calloc(1, 65536);
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], buf + len, 65535 - len)) > 0)
        len += (size_t)n;
    close(p[0]);
    assert_int_equal(spawn_reap(&c, status, deadline_after_ms(10000)), 0);
    assert_int_equal(c.pidfd, -1);
    return buf;
}

static void
test_hygiene(void **state)
{
    (void)state;
    /* An inherited fd without CLOEXEC, a blocked signal and an ignored one in the caller. */
    int leak = open("/dev/null", O_RDONLY);
    assert_true(leak >= 0);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    signal(SIGUSR2, SIG_IGN);
    const char *argv[] = {"sh", "-c",
                          "ls /proc/self/fd | tr '\\n' ' '; echo; "
                          "grep -E '^(SigBlk|SigIgn)' /proc/self/status; "
                          "ps -o sid= -p $$ 2>/dev/null || cat /proc/self/stat",
                          NULL};
    int status;
    char *out = run(argv, NULL, &status);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR2, SIG_DFL);
    close(leak);
    assert_non_null(out);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* 0 1 2 and the one ls opens to list the directory: nothing else. */
    assert_string_equal(strtok(out, "\n"), "0 1 2 3 ");
    assert_non_null(strstr(out + strlen(out) + 1, "SigBlk:\t0000000000000000"));
    assert_non_null(strstr(out + strlen(out) + 1, "SigIgn:\t0000000000000000"));
    free(out);
}

static void
test_extra_fds(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(write(p[1], "hello", 5), 5);
    close(p[1]);
    int fds[2] = {p[0], p[0]};
    struct spawn_opts o = {.fds = fds, .n_fds = 2};
    const char *argv[] = {"sh", "-c", "cat <&4", NULL};
    int status;
    char *out = run(argv, &o, &status);
    close(p[0]);
    assert_string_equal(out, "hello");
    free(out);
}

static void
test_exec_failure_reported(void **state)
{
    (void)state;
    const char *argv[] = {"/nonexistent/binary", NULL};
    int status;
    assert_null(run(argv, NULL, &status));
    assert_int_equal(status, -ENOENT);
    assert_non_null(strstr(uvm_last_error(), "/nonexistent/binary"));
    const char *argv2[] = {"no-such-command-anywhere", NULL};
    assert_null(run(argv2, NULL, &status));
    assert_int_equal(status, UVM_E_NOT_FOUND);
}

static void
test_relative_path_entries_ignored(void **state)
{
    (void)state;
    /* A careless PATH with "" and "." must not run ./x from the current directory. */
    char dir[] = "/tmp/uvm-spawn-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    char path[512];
    snprintf(path, sizeof(path), "%s/uvm-spawn-probe", dir);
    FILE *f = fopen(path, "w");
    fputs("#!/bin/sh\necho owned\n", f);
    fclose(f);
    chmod(path, 0755);
    assert_int_equal(chdir(dir), 0);
    char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", ".::/usr/bin:/bin", 1);
    char *w = spawn_which("uvm-spawn-probe");
    if (saved)
        setenv("PATH", saved, 1);
    free(saved);
    assert_int_equal(chdir(cwd), 0);
    unlink(path);
    rmdir(dir);
    assert_null(w);
}

static void
test_reap_errors(void **state)
{
    (void)state;
    const char *argv[] = {"sleep", "30", NULL};
    struct spawn_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    struct spawned c;
    assert_int_equal(spawn(&o, &c), 0);
    /* Still running: a timeout, nothing released. */
    assert_int_equal(spawn_reap(&c, NULL, deadline_after_ms(50)), UVM_E_TIMEOUT);
    assert_true(c.pidfd >= 0);
    /* Somebody else reaps it: an error, not success. */
    assert_int_equal(kill(c.pid, SIGKILL), 0);
    assert_int_equal(waitpid(c.pid, NULL, 0), c.pid);
    assert_true(spawn_reap(&c, NULL, deadline_after_ms(5000)) < 0);
    spawn_release(&c);
}

/* A daemon started from a thread that then exits keeps running (PR_SET_PDEATHSIG is tied to
 * the spawner thread, which lives as long as the process). */
static void *
spawn_sleeper(void *arg)
{
    const char *argv[] = {"sleep", "30", NULL};
    struct spawn_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    assert_int_equal(spawn(&o, arg), 0);
    return NULL;
}

static void
test_survives_calling_thread(void **state)
{
    (void)state;
    struct spawned c;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, spawn_sleeper, &c), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    usleep(300 * 1000);
    assert_int_equal(spawn_reap(&c, NULL, deadline_after_ms(100)), UVM_E_TIMEOUT);
    assert_int_equal(kill(c.pid, 0), 0);
    spawn_kill_reap(&c);
    assert_int_equal(c.pidfd, -1);
}

/* A caller that fork()s after spawning: the child (no spawner thread) can spawn too. */
static void
test_after_fork(void **state)
{
    (void)state;
    const char *argv[] = {"true", NULL};
    int status;
    free(run(argv, NULL, &status)); /* the parent's spawner runs */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct spawn_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
        struct spawned c;
        int st = -1;
        alarm(20);
        _exit(spawn(&o, &c) == 0 && spawn_reap(&c, &st, deadline_after_ms(10000)) == 0 && st == 0
                  ? 0
                  : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_jail(void **state)
{
    (void)state;
    if (!jail_supported())
        skip();
    char dir[] = "/tmp/uvm-jail-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p9[512], mnt[512];
    snprintf(p9, sizeof(p9), "%s/9p", dir);
    snprintf(mnt, sizeof(mnt), "%s/jail", dir);
    assert_int_equal(mkdir(p9, 0700), 0);
    assert_int_equal(mkdir(mnt, 0700), 0);
    struct jail *j = jail_prepare(mnt, dir, NULL, false, NULL);
    assert_non_null(j);
    const char *argv[] = {
        "/bin/sh", "-c",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; echo pid=$$; "
        "ls /etc/passwd /root /home /run/containerd 2>&1 | grep -c 'No such file'; "
        "touch /usr/x /p 2>&1 | grep -c 'Read-only file system'; "
        "ls /sys/class/net 2>&1 | grep -c 'No such file'; "
        "grep -c . /proc/net/dev",
        NULL};
    struct spawn_opts o = {.clone_flags = jail_clone_flags(), .hook = jail_enter, .hook_arg = j,
                           .hook_explain = jail_explain};
    int status;
    char *out = run(argv, &o, &status);
    jail_free(j);
    rmdir(mnt);
    rmdir(p9);
    rmdir(dir);
    assert_non_null(out);
    assert_true(WIFEXITED(status));
    assert_non_null(strstr(out, "CapEff:\t0000000000000000"));
    assert_non_null(strstr(out, "CapBnd:\t0000000000000000"));
    assert_non_null(strstr(out, "NoNewPrivs:\t1"));
    assert_non_null(strstr(out, "pid=1\n"));           /* its own PID namespace */
    assert_non_null(strstr(out, "\n4\n2\n1\n3\n"));     /* no host files, read-only, no /sys; lo only */
    free(out);
}

static void
test_jail_failure_explained(void **state)
{
    (void)state;
    if (!jail_supported())
        skip();
    /* A mount point that does not exist: the step and the reason are named. */
    char dir[] = "/tmp/uvm-jail-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p9[512], mnt[512];
    snprintf(p9, sizeof(p9), "%s/9p", dir);
    snprintf(mnt, sizeof(mnt), "%s/missing", dir);
    assert_int_equal(mkdir(p9, 0700), 0);
    struct jail *j = jail_prepare(mnt, dir, NULL, false, NULL);
    assert_non_null(j);
    const char *argv[] = {"/bin/true", NULL};
    struct spawn_opts o = {.clone_flags = jail_clone_flags(), .hook = jail_enter, .hook_arg = j,
                           .hook_explain = jail_explain};
    int status;
    assert_null(run(argv, &o, &status));
    jail_free(j);
    rmdir(p9);
    rmdir(dir);
    assert_true(status < 0);
    assert_non_null(strstr(uvm_last_error(), "QEMU jail: mount its root tmpfs on"));
    assert_non_null(strstr(uvm_last_error(), "missing"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hygiene),
        cmocka_unit_test(test_extra_fds),
        cmocka_unit_test(test_exec_failure_reported),
        cmocka_unit_test(test_relative_path_entries_ignored),
        cmocka_unit_test(test_reap_errors),
        cmocka_unit_test(test_survives_calling_thread),
        cmocka_unit_test(test_after_fork),
        cmocka_unit_test(test_jail),
        cmocka_unit_test(test_jail_failure_explained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The file server's seccomp filter (fsfilter.h): in a child under the filter, every way of
 * making a setuid/setgid file or a device node fails with EPERM, openat2 and io_uring with
 * ENOSYS, and ordinary modes still work; then the same through spawn() and a shell. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fsfilter.h"
#include "spawn.h"
#include "timeutil.h"

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif

static char dir[64];
static int report = -1; /* the child's failure text goes here */

/* In the child: say what went wrong and exit 1. */
static void __attribute__((noreturn, format(printf, 1, 2)))
child_fail(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (write(report, buf, (size_t)(n > 0 ? n : 0)) < 0)
        _exit(2);
    _exit(1);
}

/* r must be -1 with errno e (e == 0: r >= 0). */
#define EXPECT(call, e)                                                                            \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long r_ = (long)(call);                                                                    \
        if ((e) == 0 ? r_ < 0 : (r_ != -1 || errno != (e)))                                        \
            child_fail("%s: returned %ld errno %d (%s), expected %s", #call, r_, errno,            \
                       strerror(errno), (e) ? strerror(e) : "success");                            \
    } while (0)

static void
checks_modes(int d)
{
    int fd = openat(d, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
        child_fail("create f: %s", strerror(errno));
    EXPECT(fchmodat(d, "f", 04755, 0), EPERM);
    EXPECT(fchmodat(d, "f", 02755, 0), EPERM);
    EXPECT(fchmod(fd, 04755), EPERM);
    EXPECT(syscall(__NR_fchmodat2, d, "f", 06755, 0), EPERM);
    EXPECT(syscall(SYS_chmod, "f", 04711), EPERM);
    EXPECT(fchmodat(d, "f", 0755, 0), 0);
    EXPECT(fchmod(fd, 0644), 0);
    EXPECT(syscall(SYS_chmod, "f", 01777), 0); /* sticky is fine */
    close(fd);
    struct stat st;
    if (fstatat(d, "f", &st, 0) < 0 || (st.st_mode & 07777) != 01777)
        child_fail("f has mode %o", st.st_mode & 07777);
}

static void
checks_create(int d)
{
    EXPECT(openat(d, "g", O_CREAT | O_WRONLY | O_CLOEXEC, 04755), EPERM);
    EXPECT(syscall(SYS_open, "g", O_CREAT | O_WRONLY | O_CLOEXEC, 02755), EPERM);
    EXPECT(syscall(SYS_creat, "g", 04755), EPERM);
    EXPECT(openat(d, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 04755), EPERM);
    EXPECT(faccessat(d, "g", F_OK, 0), ENOENT);
    /* without O_CREAT the mode argument means nothing: not looked at */
    EXPECT(syscall(SYS_openat, d, "f", O_RDONLY | O_CLOEXEC, 04755), 0);
    EXPECT(openat(d, "g", O_CREAT | O_WRONLY | O_CLOEXEC, 0755), 0);
    EXPECT(mkdirat(d, "sub", 02755), EPERM);
    EXPECT(syscall(SYS_mkdir, "sub", 04700), EPERM);
    EXPECT(mkdirat(d, "sub", 0755), 0);
}

static void
checks_mknod(int d)
{
    EXPECT(mknodat(d, "c0", S_IFCHR | 0600, makedev(1, 3)), EPERM);
    EXPECT(mknodat(d, "w0", S_IFCHR | 0600, makedev(0, 0)), EPERM);
    EXPECT(mknodat(d, "b0", S_IFBLK | 0600, makedev(7, 0)), EPERM);
    EXPECT(syscall(SYS_mknod, "c1", S_IFCHR | 0600, makedev(1, 3)), EPERM);
    EXPECT(mknodat(d, "r0", S_IFREG | 04755, 0), EPERM);
    EXPECT(mknodat(d, "fifo", S_IFIFO | 0600, 0), 0);
    EXPECT(mknodat(d, "r1", S_IFREG | 0644, 0), 0);
}

static void
checks_bypass(int d)
{
    EXPECT(syscall(SYS_openat2, d, "h", NULL, 0), ENOSYS);
    EXPECT(syscall(SYS_io_uring_setup, 1, NULL), ENOSYS);
#ifdef __x86_64__
    EXPECT(syscall(SYS_chmod | 0x40000000, "f", 04755), ENOSYS); /* x32 */
#endif
}

static void
test_filter_in_child(void **state)
{
    struct fsfilter f;
    assert_int_equal(fsfilter_build(&f), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        report = p[1];
        if (chdir(dir) < 0)
            child_fail("chdir: %s", strerror(errno));
        int rc = fsfilter_install(&f);
        if (rc < 0)
            child_fail("install: %s", strerror(-rc));
        int d = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        checks_modes(d);
        checks_create(d);
        checks_mknod(d);
        checks_bypass(d);
        _exit(0);
    }
    close(p[1]);
    char msg[256] = "";
    ssize_t n = read(p[0], msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        fail_msg("child status 0x%x: %s", status, msg);
    /* nothing set-id and no device made it to the disk */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test -z \"$(find %s -perm /6000 -o -type c -o -type b)\"", dir);
    assert_int_equal(system(cmd), 0);
}

/* What runs under the filter after exec: a shell's chmod. */
static int
sh_under_filter(const char *script)
{
    struct fsfilter f;
    assert_int_equal(fsfilter_build(&f), 0);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct spawn_opts o = {.argv = argv,
                           .stdin_fd = -1,
                           .stdout_fd = -1,
                           .stderr_fd = -1,
                           .hook = fsfilter_install,
                           .hook_arg = &f};
    struct spawned c;
    assert_int_equal(spawn(&o, &c), 0);
    int status = -1;
    assert_int_equal(spawn_reap(&c, &status, deadline_after_ms(10000)), 0);
    return status;
}

static void
test_filter_through_spawn(void **state)
{
    char script[256];
    snprintf(script, sizeof(script), "touch %s/x && chmod 4755 %s/x", dir, dir);
    assert_int_not_equal(sh_under_filter(script), 0);
    snprintf(script, sizeof(script), "chmod 0750 %s/x && test \"$(stat -c %%a %s/x)\" = 750", dir,
             dir);
    assert_int_equal(sh_under_filter(script), 0);
    snprintf(script, sizeof(script), "mknod %s/c9 c 1 3", dir);
    assert_int_not_equal(sh_under_filter(script), 0);
    struct stat st;
    char path[128];
    snprintf(path, sizeof(path), "%s/c9", dir);
    assert_int_equal(lstat(path, &st), -1);
}

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-fsfilter-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_in_child),
        cmocka_unit_test(test_filter_through_spawn),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

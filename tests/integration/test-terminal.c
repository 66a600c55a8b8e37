/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Terminals against real VMs: a process on a guest terminal through the library (its one fd,
 * the size at start, uvm_process_resize, Ctrl-C, stderr merged, end of output), then
 * `uvmctl run -t` on a host pty (openpty) as a user's terminal would run it: raw mode, the
 * local size, SIGWINCH forwarded, the exit status, the mode restored. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"


static struct uvm *shared_vm;

static int
setup_shared(void **state)
{
    shared_vm = itest_boot("itest-terminal");
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
assert_matches(const char *text, const char *regex)
{
    regex_t re;
    assert_int_equal(regcomp(&re, regex, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("[%s] does not match /%s/", text, regex);
}

static struct uvm_process *
exec_on_terminal(const char *const *argv, uint16_t rows, uint16_t cols, int *fd)
{
    struct uvm_process_config cfg = {
        .argv = argv, .terminal = true, .terminal_rows = rows, .terminal_cols = cols};
    struct uvm_process *p = NULL;
    int rc = uvm_exec(shared_vm, &cfg, &p);
    if (rc < 0)
        fail_msg("exec on a terminal: %s", uvm_last_error());
    assert_int_equal(uvm_process_terminal(p, fd), 0);
    assert_true(*fd >= 0);
    return p;
}

/* An interactive shell: `tty` names a pts, `stty size` says the size given at start, then the
 * size uvm_process_resize set; exit's status comes back after the output's end. */
static void
test_shell(void **state)
{
    const char *argv[] = {"sh", NULL};
    int fd;
    struct uvm_process *p = exec_on_terminal(argv, 33, 111, &fd);
    struct itest_tbuf b = {0};
    /* $((...)) markers: the terminal echoes what is typed, only the shell computes them */
    itest_type(fd, "echo A$((40+2))B; tty; stty size; echo to-stderr >&2; echo C$((5+5))D\n");
    free(itest_expect(fd, &b, "A42B\r\n"));
    char *chunk = itest_expect(fd, &b, "C10D\r\n");
    assert_matches(chunk, "^/dev/pts/[0-9]+\r\n33 111\r\nto-stderr\r\nC10D\r\n$");
    free(chunk);

    assert_int_equal(uvm_process_resize(p, 44, 155), 0);
    itest_type(fd, "stty size; echo E$((1+1))F\n");
    chunk = itest_expect(fd, &b, "E2F\r\n");
    assert_matches(chunk, "\r\n44 155\r\nE2F\r\n$");
    free(chunk);

    itest_type(fd, "exit 5\n");
    free(itest_expect_eof(fd, &b));
    int code = -1;
    assert_int_equal(uvm_process_wait(p, &code), 0);
    assert_int_equal(code, 5);
    assert_int_equal(uvm_process_resize(p, 1, 1), UVM_E_INVALID_STATE);
    close(fd);
    itest_tbuf_free(&b);
    uvm_process_close(p);
}

/* Ctrl-C typed on the terminal: SIGINT for the process in the foreground, status 130. */
static void
test_ctrl_c(void **state)
{
    const char *argv[] = {"sleep", "100", NULL};
    int fd;
    struct uvm_process *p = exec_on_terminal(argv, 24, 80, &fd);
    struct itest_tbuf b = {0};
    itest_type(fd, "\x03");
    char *rest = itest_expect_eof(fd, &b);
    assert_string_equal(rest, "^C"); /* the terminal's echo of it */
    free(rest);
    int code = -1;
    assert_int_equal(uvm_process_wait(p, &code), 0);
    assert_int_equal(code, 130);
    close(fd);
    itest_tbuf_free(&b);
    uvm_process_close(p);
}

/* stdout and stderr are the terminal: one stream, output-processed (\n -> \r\n), then EOF. */
static void
test_output_merged(void **state)
{
    const char *argv[] = {"sh", "-c", "echo out; echo err >&2; [ -t 0 ] && [ -t 2 ] && exit 7",
                          NULL};
    int fd;
    struct uvm_process *p = exec_on_terminal(argv, 0, 0, &fd);
    struct itest_tbuf b = {0};
    char *all = itest_expect_eof(fd, &b);
    assert_string_equal(all, "out\r\nerr\r\n");
    free(all);
    int code = -1;
    assert_int_equal(uvm_process_wait(p, &code), 0);
    assert_int_equal(code, 7);
    close(fd);
    itest_tbuf_free(&b);
    uvm_process_close(p);
}

/* ---- uvmctl run -t on a host pty --------------------------------------------------------- */

/* The command's script: its terminal, its size, then size changes and Ctrl-C as traps. */
static const char uvmctl_script[] = "tty; stty size; trap 'stty size; echo WINCH-$((1+1))' WINCH; "
                                    "trap 'echo INT-$((2+2)); exit 9' INT; echo READY-$((3+3)); "
                                    "while :; do sleep 1; done";

static pid_t
start_uvmctl(const char *uvmctl, int slave, int master)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* a login's shape: session leader, the pty its controlling terminal */
        if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 ||
            dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
            _exit(126);
        close(master);
        close(slave);
        execl(uvmctl, uvmctl, "run", "-t", "--memory", "256", "--", "sh", "-c", uvmctl_script,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Read the master until uvmctl exits (its output must not block it): its wait status. */
static int
reap_uvmctl(pid_t pid, int master, struct itest_tbuf *b)
{
    for (int waited = 0; waited < ITEST_WAIT_MS; waited += 500) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        struct pollfd p = {.fd = master, .events = POLLIN};
        if (poll(&p, 1, 500) == 1 && !b->eof)
            itest_tbuf_fill(master, b);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("uvmctl did not exit; output: [%.*s]", (int)b->len, b->data ? b->data : "");
    return -1;
}

static void
test_uvmctl_on_pty(void **state)
{
    const char *uvmctl = getenv("UVM_TEST_UVMCTL");
    if (!uvmctl)
        skip();
    int master, slave;
    struct winsize ws = {.ws_row = 30, .ws_col = 100};
    assert_int_equal(openpty(&master, &slave, NULL, NULL, &ws), 0);
    struct termios before, after;
    assert_int_equal(tcgetattr(slave, &before), 0);
    pid_t pid = start_uvmctl(uvmctl, slave, master);

    struct itest_tbuf b = {0};
    char *chunk = itest_expect(master, &b, "READY-6\r\n");
    assert_matches(chunk, "(^|\n)/dev/pts/[0-9]+\r\n30 100\r\nREADY-6\r\n$");
    free(chunk);

    /* The user's window grows: SIGWINCH to uvmctl, a resize in the guest, SIGWINCH there. */
    ws = (struct winsize){.ws_row = 40, .ws_col = 120};
    assert_int_equal(ioctl(master, TIOCSWINSZ, &ws), 0);
    chunk = itest_expect(master, &b, "WINCH-2\r\n");
    assert_matches(chunk, "^40 120\r\nWINCH-2\r\n$");
    free(chunk);

    /* Ctrl-C reaches the guest (raw mode), not uvmctl: the trap runs, the status is 9. */
    itest_type(master, "\x03");
    free(itest_expect(master, &b, "INT-4\r\n"));
    int status = reap_uvmctl(pid, master, &b);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 9)
        fail_msg("uvmctl: wait status 0x%x, output [%s]", status, b.data);

    /* and the terminal is as uvmctl found it */
    assert_int_equal(tcgetattr(slave, &after), 0);
    assert_int_equal(after.c_iflag, before.c_iflag);
    assert_int_equal(after.c_oflag, before.c_oflag);
    assert_int_equal(after.c_cflag, before.c_cflag);
    assert_int_equal(after.c_lflag, before.c_lflag);
    assert_memory_equal(after.c_cc, before.c_cc, sizeof(before.c_cc));
    itest_tbuf_free(&b);
    close(master);
    close(slave);
}

int
main(void)
{
    itest_init();
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_shell),
        cmocka_unit_test(test_ctrl_c),
        cmocka_unit_test(test_output_merged),
    };
    const struct CMUnitTest cli[] = {
        cmocka_unit_test(test_uvmctl_on_pty),
    };
    int failed = cmocka_run_group_tests_name("library", shared, setup_shared, teardown_shared);
    failed += cmocka_run_group_tests_name("uvmctl", cli, NULL, NULL);
    return itest_finish(failed);
}

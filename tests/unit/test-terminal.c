/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Processes with a terminal against the fake guest: the exact ExecuteProcess and ResizeConsole
 * requests, the one host fd, and the refusals that send nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "error.h"
#include "fixture.h"
#include "proto.h"

static const char *
respond(void *opaque, uint32_t type)
{
    if (type == PROTO_REQ_EXECUTE_PROCESS)
        return "{\"Result\":0,\"ProcessId\":42}";
    if (type == PROTO_REQ_WAIT_PROCESS)
        return "{\"Result\":0,\"ExitCode\":130}";
    return NULL;
}

static struct fixture *
setup_fixture(void)
{
    struct fixture *f = fixture_new(NULL, 0, &(struct fixture_config){0});
    pthread_mutex_lock(&f->guest.lock);
    f->guest.respond = respond;
    pthread_mutex_unlock(&f->guest.lock);
    return f;
}

static const char *const sh_argv[] = {"sh", "-i", NULL};

/* The i-th request's body without its ActivityId (checked: a GUID) equals `want` (single
 * quotes for double ones), and its type is `type`. */
static void
assert_call(struct fixture *f, size_t i, uint32_t type, const char *want)
{
    uint32_t got_type = 0;
    json_t *body = json_deep_copy(fixture_call(f, i, &got_type));
    assert_non_null(body);
    assert_int_equal(got_type, type);
    assert_int_equal(json_string_length(json_object_get(body, "ActivityId")), 36);
    json_object_del(body, "ActivityId");
    cleanup_free char *text = xstrdup(want);
    for (char *c = text; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_t *expected = json_loads(text, 0, NULL);
    assert_non_null(expected);
    if (!json_equal(body, expected)) {
        cleanup_free char *got = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("request %zu: got %s, expected %s", i, got, text);
    }
    json_decref(expected);
    json_decref(body);
}

static void
test_exec_and_resize(void **state)
{
    struct fixture *f = setup_fixture();
    struct uvm_process *p = NULL;
    struct uvm_process_config cfg = {
        .argv = sh_argv, .terminal = true, .terminal_rows = 24, .terminal_cols = 80};
    assert_int_equal(uvm_exec(f->vm, &cfg, &p), 0);
    assert_call(f, 0, PROTO_REQ_EXECUTE_PROCESS,
                "{'Settings':{'ProcessParameters':{'CommandArgs':['sh','-i'],"
                "'Environment':{'PATH':'/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
                "/bin','HOME':'/root','TERM':'xterm'},'WorkingDirectory':'/',"
                "'CreateStdInPipe':true,'CreateStdOutPipe':true,'CreateStdErrPipe':false,"
                "'EmulateConsole':true,'ConsoleSize':[24,80]},'StdioHandle':1},"
                "'ContainerId':'00000000-0000-0000-0000-000000000000'}");

    /* One bidirectional stream socket; no pipes. */
    int in = 0, out = 0, err = 0, fd = -1;
    assert_int_equal(uvm_process_stdio(p, &in, &out, &err), 0);
    assert_int_equal(in, -1);
    assert_int_equal(out, -1);
    assert_int_equal(err, -1);
    assert_int_equal(uvm_process_terminal(p, &fd), 0);
    assert_true(fd >= 0);
    int type = 0;
    socklen_t len = sizeof(type);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
    assert_int_equal(type, SOCK_STREAM);
    int again = 0;
    assert_int_equal(uvm_process_terminal(p, &again), 0);
    assert_int_equal(again, -1);
    close(fd);

    assert_int_equal(uvm_process_resize(p, 40, 132), 0);
    assert_call(f, 1, PROTO_REQ_RESIZE_CONSOLE,
                "{'ProcessId':42,'Height':40,'Width':132,"
                "'ContainerId':'00000000-0000-0000-0000-000000000000'}");
    assert_int_equal(uvm_process_resize(p, 65535, 0), 0);
    assert_call(f, 2, PROTO_REQ_RESIZE_CONSOLE,
                "{'ProcessId':42,'Height':65535,'Width':0,"
                "'ContainerId':'00000000-0000-0000-0000-000000000000'}");

    /* Out of range: refused before anything is sent. */
    assert_int_equal(uvm_process_resize(p, 65536, 80), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(),
                        "resize process 42 to 65536x80: rows and columns are at most 65535");
    assert_int_equal(uvm_process_resize(p, 24, 70000), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(fixture_call_count(f), 3);

    /* The guest refuses: its message. */
    pthread_mutex_lock(&f->guest.lock);
    f->guest.fail_next = 1;
    pthread_mutex_unlock(&f->guest.lock);
    assert_int_equal(uvm_process_resize(p, 1, 1), UVM_E_GUEST);
    assert_string_equal(uvm_last_error(),
                        "resize the terminal of process 42 to 1x1: guest: mount failed");

    /* Once the process has exited: INVALID_STATE, nothing sent. */
    int code = -1;
    assert_int_equal(uvm_process_wait(p, &code), 0);
    assert_int_equal(code, 130);
    size_t n = fixture_call_count(f);
    assert_int_equal(uvm_process_resize(p, 30, 100), UVM_E_INVALID_STATE);
    assert_string_equal(uvm_last_error(), "resize: process 42 has exited");
    assert_int_equal(fixture_call_count(f), n);
    uvm_process_close(p);
    fixture_finish(f, NULL, 0);
}

static void
test_no_size(void **state)
{
    struct fixture *f = setup_fixture();
    struct uvm_process *p = NULL;
    struct uvm_process_config cfg = {.argv = sh_argv, .terminal = true};
    assert_int_equal(uvm_exec(f->vm, &cfg, &p), 0);
    json_t *params = json_object_get(json_object_get(fixture_call(f, 0, NULL), "Settings"),
                                     "ProcessParameters");
    cleanup_free char *size = json_dumps(json_object_get(params, "ConsoleSize"), JSON_COMPACT);
    assert_string_equal(size, "[0,0]");
    uvm_process_close(p); /* the terminal's fd was never taken: closed here */
    fixture_finish(f, NULL, 0);
}

static void
test_refused(void **state)
{
    struct fixture *f = setup_fixture();
    struct uvm_process *p = NULL;
    struct uvm_process_config both = {.argv = sh_argv, .terminal = true, .create_stdout = true};
    assert_int_equal(uvm_exec(f->vm, &both, &p), UVM_E_INVALID_ARGUMENT);
    assert_null(p);
    assert_string_equal(uvm_last_error(),
                        "exec 'sh': a terminal is the process's stdin, stdout and stderr: "
                        "create_stdin, create_stdout and create_stderr must be false");
    struct uvm_process_config stdin_too = {.argv = sh_argv, .terminal = true, .create_stdin = true};
    assert_int_equal(uvm_exec(f->vm, &stdin_too, &p), UVM_E_INVALID_ARGUMENT);
    struct uvm_process_config size_only = {.argv = sh_argv, .terminal_cols = 80};
    assert_int_equal(uvm_exec(f->vm, &size_only, &p), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "exec 'sh': a terminal size without terminal");
    assert_int_equal(fixture_call_count(f), 0);

    /* A process without a terminal: neither its fd nor a resize. */
    struct uvm_process_config pipes = {.argv = sh_argv, .create_stdout = true};
    assert_int_equal(uvm_exec(f->vm, &pipes, &p), 0);
    int fd = 7;
    assert_int_equal(uvm_process_terminal(p, &fd), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(fd, -1);
    assert_string_equal(uvm_last_error(), "process 42 has no terminal");
    assert_int_equal(uvm_process_resize(p, 24, 80), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "resize process 42: it has no terminal");
    assert_int_equal(fixture_call_count(f), 1);
    assert_int_equal(uvm_process_resize(NULL, 24, 80), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_process_terminal(NULL, &fd), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_process_terminal(p, NULL), UVM_E_INVALID_ARGUMENT);
    uvm_process_close(p);
    fixture_finish(f, NULL, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_and_resize),
        cmocka_unit_test(test_no_size),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

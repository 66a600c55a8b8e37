/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Processes against the fake guest: what the guest answers is checked before it is believed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "error.h"
#include "fixture.h"
#include "proto.h"

struct answers {
    const char *exec;
    const char *wait;
};

static const char *
respond(void *opaque, uint32_t type)
{
    const struct answers *a = opaque;
    if (type == PROTO_REQ_EXECUTE_PROCESS)
        return a->exec;
    if (type == PROTO_REQ_WAIT_PROCESS)
        return a->wait;
    return NULL;
}

/* Exec "true" and wait for it with the guest answering `wait`: the wait's result. */
static int
exec_and_wait(const char *wait, int *code)
{
    struct answers a = {.exec = "{\"Result\":0,\"ProcessId\":42}", .wait = wait};
    struct fixture *f = fixture_new(NULL, 0, &(struct fixture_config){0});
    pthread_mutex_lock(&f->guest.lock);
    f->guest.respond = respond;
    f->guest.opaque = &a;
    pthread_mutex_unlock(&f->guest.lock);
    static const char *const argv[] = {"true", NULL};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(f->vm, &(struct uvm_process_config){.argv = argv}, &p), 0);
    assert_int_equal(uvm_process_pid(p), 42);
    int rc = uvm_process_wait(p, code);
    uvm_process_close(p);
    fixture_finish(f, NULL, 0);
    return rc;
}

static void
test_exit_code_in_range(void **state)
{
    static const struct {
        const char *wait;
        int code;
    } ok[] = {
        {"{\"Result\":0,\"ExitCode\":0}", 0},
        {"{\"Result\":0,\"ExitCode\":137}", 137},
        {"{\"Result\":0,\"ExitCode\":255}", 255},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        int code = -1;
        assert_int_equal(exec_and_wait(ok[i].wait, &code), 0);
        assert_int_equal(code, ok[i].code);
    }
}

static void
test_exit_code_out_of_range(void **state)
{
    static const char *const bad[] = {
        "{\"Result\":0,\"ExitCode\":-1}",
        "{\"Result\":0,\"ExitCode\":256}",
        "{\"Result\":0,\"ExitCode\":4294967296}", /* (int) would make it 0 */
        "{\"Result\":0,\"ExitCode\":\"0\"}",
        "{\"Result\":0}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int code = -1;
        assert_int_equal(exec_and_wait(bad[i], &code), UVM_E_PROTOCOL);
        assert_non_null(strstr(uvm_last_error(), "exit code in 0..255"));
        assert_int_equal(code, -1);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_code_in_range),
        cmocka_unit_test(test_exit_code_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checks of the guest agent's answers (answer.c): what is believed, what is a protocol
 * error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "answer.h"
#include "uvm.h"

static json_t *
parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static int
negotiate(const char *text, struct answer_negotiate *a)
{
    json_t *j = parse(text);
    int rc = answer_negotiate(j, a);
    json_decref(j);
    return rc;
}

static void
test_negotiate(void **state)
{
    struct answer_negotiate a;
    assert_int_equal(negotiate("{\"Result\":0,\"Version\":4,\"Capabilities\":{"
                               "\"GuestDefinedCapabilities\":{\"SignalProcessSupported\":true}},"
                               "\"GuestTimes\":{\"InitStartUs\":1000,\"ReadyUs\":251000}}",
                               &a),
                     0);
    assert_int_equal(a.version, 4);
    assert_true(a.signal_process_supported);
    assert_false(a.namespace_add_request_supported);
    assert_true(a.has_guest_startup);
    assert_int_equal(a.guest_startup_us, 250000);

    assert_int_equal(negotiate("{\"Version\":4}", &a), 0);
    assert_false(a.has_guest_startup);
    static const char *const bad[] = {
        "{\"Version\":3}", "{\"Version\":\"4\"}", "{}",
        "{\"Version\":4,\"Capabilities\":{\"GuestDefinedCapabilities\":[]}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(negotiate(bad[i], &a), UVM_E_PROTOCOL);
        assert_string_equal(uvm_last_error(), "the guest agent negotiated an unsupported protocol");
    }
}

/* Found by writing fuzz target agent-answers (tests/fuzz/corpus/agent-answers/
 * regress-guest-times-overflow): ReadyUs - InitStartUs overflowed (undefined behaviour) when
 * InitStartUs was negative. Times before the guest's boot are not believed. */
static void
test_negotiate_guest_times_hostile(void **state)
{
    struct answer_negotiate a;
    static const char *const ignored[] = {
        "{\"Version\":4,\"GuestTimes\":{\"InitStartUs\":-9223372036854775808,\"ReadyUs\":1}}",
        "{\"Version\":4,\"GuestTimes\":{\"InitStartUs\":-1,\"ReadyUs\":9223372036854775807}}",
        "{\"Version\":4,\"GuestTimes\":{\"InitStartUs\":5,\"ReadyUs\":4}}",
        "{\"Version\":4,\"GuestTimes\":{\"InitStartUs\":\"5\",\"ReadyUs\":6}}",
        "{\"Version\":4,\"GuestTimes\":[]}",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        assert_int_equal(negotiate(ignored[i], &a), 0);
        assert_false(a.has_guest_startup);
    }
    assert_int_equal(negotiate("{\"Version\":4,\"GuestTimes\":{\"InitStartUs\":0,"
                               "\"ReadyUs\":9223372036854775807}}",
                               &a),
                     0);
    assert_true(a.has_guest_startup);
    assert_int_equal(a.guest_startup_us, INT64_MAX);
}

static void
test_exec_and_wait(void **state)
{
    static const struct {
        const char *text;
        int pid; /* 0: refused */
    } pids[] = {
        {"{\"ProcessId\":1}", 1},          {"{\"ProcessId\":2147483647}", 2147483647},
        {"{\"ProcessId\":0}", 0},          {"{\"ProcessId\":-5}", 0},
        {"{\"ProcessId\":2147483648}", 0}, {"{\"ProcessId\":1.0}", 0},
        {"{}", 0},
    };
    for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
        json_t *j = parse(pids[i].text);
        int pid = -1;
        assert_int_equal(answer_exec(j, &pid), pids[i].pid ? 0 : UVM_E_PROTOCOL);
        assert_int_equal(pid, pids[i].pid ? pids[i].pid : -1);
        json_decref(j);
    }
    json_t *j = parse("{\"ExitCode\":255}");
    int code = -1;
    assert_int_equal(answer_wait(j, &code), 0);
    assert_int_equal(code, 255);
    json_decref(j);
    j = parse("{\"ExitCode\":256}");
    assert_int_equal(answer_wait(j, &code), UVM_E_PROTOCOL);
    assert_string_equal(uvm_last_error(), "the guest agent answered without an exit code in 0..255");
    json_decref(j);
}

static int
containers(const char *text, struct uvm_container_info **list, size_t *n)
{
    json_t *j = parse(text);
    int rc = answer_container_list(j, list, n);
    json_decref(j);
    return rc;
}

/* Found extending fuzz target agent-answers to the container list (corpus/agent-answers/
 * regress-container-list-controls): the ids and states the guest listed reached the caller
 * as they were, escape sequences included. */
static void
test_container_list(void **state)
{
    struct uvm_container_info *list = NULL;
    size_t n = 0;
    assert_int_equal(containers("{\"Properties\":{\"ContainerList\":["
                                "{\"Id\":\"c1\",\"State\":\"running\",\"InitProcessId\":42},"
                                "{\"Id\":\"c-2\",\"State\":\"being created\",\"InitProcessId\":0}]}}",
                                &list, &n),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "c1");
    assert_string_equal(list[1].state, "being created");
    assert_int_equal(list[0].init_pid, 42);
    free(list);
    assert_int_equal(containers("{\"Properties\":{\"ContainerList\":[]}}", &list, &n), 0);
    assert_null(list);
    assert_int_equal(n, 0);

    static const char *const bad[] = {
        "{}",
        "{\"Properties\":{\"ContainerList\":{}}}",
        "{\"Properties\":{\"ContainerList\":[{\"Id\":\"c\\u001b[2J\",\"State\":\"running\","
        "\"InitProcessId\":1}]}}",
        "{\"Properties\":{\"ContainerList\":[{\"Id\":\"c1\",\"State\":\"run\\u009bning\","
        "\"InitProcessId\":1}]}}",
        "{\"Properties\":{\"ContainerList\":[{\"Id\":\"../c1\",\"State\":\"running\","
        "\"InitProcessId\":1}]}}",
        "{\"Properties\":{\"ContainerList\":[{\"Id\":\"c1\",\"State\":\"running for a long time\","
        "\"InitProcessId\":1}]}}",
        "{\"Properties\":{\"ContainerList\":[{\"Id\":\"c1\",\"State\":\"\",\"InitProcessId\":1}]}}",
        "{\"Properties\":{\"ContainerList\":[{\"Id\":\"c1\",\"State\":\"running\","
        "\"InitProcessId\":2147483648}]}}",
        "{\"Properties\":{\"ContainerList\":[{\"Id\":\"c1\",\"State\":\"running\","
        "\"InitProcessId\":1}, 7]}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        list = (struct uvm_container_info *)1;
        n = 1;
        assert_int_equal(containers(bad[i], &list, &n), UVM_E_PROTOCOL);
        assert_null(list);
        assert_int_equal(n, 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiate),
        cmocka_unit_test(test_negotiate_guest_times_hostile),
        cmocka_unit_test(test_exec_and_wait),
        cmocka_unit_test(test_container_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent's terminal fields (ttyreq.c): ExecuteProcess's EmulateConsole and ConsoleSize
 * as execparams.c takes them, and the ResizeConsole body; built for the host. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "execparams.h"
#include "guest-req.h"
#include "proto.h"
#include "ttyreq.h"

/* An ExecuteProcess body with CommandArgs ["sh"], StdioHandle 5 and `fields` added to its
 * ProcessParameters. */
static int
parse_exec(const char *fields, struct request **req, struct exec_params *p)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{'Settings':{'ProcessParameters':{'CommandArgs':['sh']%s%s},'StdioHandle':5}}",
             fields[0] ? "," : "", fields);
    *req = guest_req(PROTO_REQ_EXECUTE_PROCESS, json);
    *p = (struct exec_params){0};
    return exec_params_parse(*req, p);
}

static void
test_exec_terminal(void **state)
{
    struct request *req;
    struct exec_params p;
    assert_int_equal(parse_exec("'EmulateConsole':true,'ConsoleSize':[24,80],"
                                "'CreateStdInPipe':true,'CreateStdOutPipe':true",
                                &req, &p),
                     0);
    assert_true(p.terminal);
    assert_int_equal(p.size.rows, 24);
    assert_int_equal(p.size.cols, 80);
    assert_true(p.pipes[PROTO_STDIN]);
    assert_true(p.pipes[PROTO_STDOUT]);
    assert_false(p.pipes[PROTO_STDERR]);
    exec_params_release(&p);
    request_free(req);
    /* no size: 0x0; no stdin: the host sends no input; the largest size */
    assert_int_equal(parse_exec("'EmulateConsole':true,'CreateStdOutPipe':true", &req, &p), 0);
    assert_true(p.terminal);
    assert_int_equal(p.size.rows, 0);
    assert_int_equal(p.size.cols, 0);
    assert_false(p.pipes[PROTO_STDIN]);
    exec_params_release(&p);
    request_free(req);
    assert_int_equal(parse_exec("'EmulateConsole':true,'ConsoleSize':[65535,0],"
                                "'CreateStdOutPipe':true,'CreateStdErrPipe':false",
                                &req, &p),
                     0);
    assert_int_equal(p.size.rows, 65535);
    assert_int_equal(p.size.cols, 0);
    exec_params_release(&p);
    request_free(req);
    /* absent or false: no terminal */
    const char *none[] = {"", "'EmulateConsole':false"};
    for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
        assert_int_equal(parse_exec(none[i], &req, &p), 0);
        assert_false(p.terminal);
        exec_params_release(&p);
        request_free(req);
    }
}

static void
test_exec_terminal_refused(void **state)
{
    static const struct {
        const char *fields, *what;
    } bad[] = {
        {"'EmulateConsole':1", "\"EmulateConsole\" must be a boolean"},
        {"'EmulateConsole':'true'", "\"EmulateConsole\" must be a boolean"},
        {"'EmulateConsole':null", "\"EmulateConsole\" must be a boolean"},
        {"'EmulateConsole':true", "\"CreateStdOutPipe\" must be true"},
        {"'EmulateConsole':true,'CreateStdOutPipe':false", "\"CreateStdOutPipe\" must be true"},
        {"'EmulateConsole':true,'CreateStdOutPipe':true,'CreateStdErrPipe':true",
         "\"CreateStdErrPipe\" false"},
        {"'ConsoleSize':[24,80]", "\"ConsoleSize\" needs \"EmulateConsole\": true"},
        {"'EmulateConsole':false,'ConsoleSize':[24,80]", "needs \"EmulateConsole\": true"},
    };
    static const char *const sizes[] = {
        "{'Height':24,'Width':80}",
        "[]",
        "[24]",
        "[24,80,1]",
        "[-1,80]",
        "[24,-80]",
        "[65536,80]",
        "[24,65536]",
        "[24.5,80]",
        "['24',80]",
        "[null,80]",
        "24",
        "null",
        "[4294967320,80]",
        "[true,80]",
    };
    struct request *req;
    struct exec_params p;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = parse_exec(bad[i].fields, &req, &p);
        if (rc != -EINVAL || !req->error || !strstr(req->error, bad[i].what))
            fail_msg("case %zu (%s): rc %d, error \"%s\", expected \"%s\"", i, bad[i].fields, rc,
                     req->error ? req->error : "(none)", bad[i].what);
        exec_params_release(&p);
        request_free(req);
    }
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        char fields[256];
        snprintf(fields, sizeof(fields),
                 "'EmulateConsole':true,'CreateStdOutPipe':true,'ConsoleSize':%s", sizes[i]);
        int rc = parse_exec(fields, &req, &p);
        if (rc != -EINVAL || !req->error ||
            strcmp(req->error, "invalid request: field \"ConsoleSize\" must be [Height, Width], "
                               "two integers in [0, 65535]"))
            fail_msg("ConsoleSize %s: rc %d, error \"%s\"", sizes[i], rc,
                     req->error ? req->error : "(none)");
        exec_params_release(&p);
        request_free(req);
    }
}

static int
parse_resize(const char *json, struct request **req, struct tty_resize *r)
{
    *req = guest_req(PROTO_REQ_RESIZE_CONSOLE, json);
    *r = (struct tty_resize){0};
    return tty_resize_parse(*req, r);
}

static void
test_resize(void **state)
{
    struct request *req;
    struct tty_resize r;
    assert_int_equal(parse_resize("{'ProcessId':123,'Height':40,'Width':132,"
                                  "'ContainerId':'00000000-0000-0000-0000-000000000000',"
                                  "'ActivityId':'x'}",
                                  &req, &r),
                     0);
    assert_int_equal(r.pid, 123);
    assert_int_equal(r.size.rows, 40);
    assert_int_equal(r.size.cols, 132);
    request_free(req);
    assert_int_equal(parse_resize("{'ProcessId':2147483647,'Height':0,'Width':65535}", &req, &r),
                     0);
    assert_int_equal(r.pid, INT32_MAX);
    assert_int_equal(r.size.rows, 0);
    assert_int_equal(r.size.cols, 65535);
    request_free(req);

    static const struct {
        const char *json, *what;
    } bad[] = {
        {"{'Height':1,'Width':1}", "missing field \"ProcessId\""},
        {"{'ProcessId':1,'Width':1}", "missing field \"Height\""},
        {"{'ProcessId':1,'Height':1}", "missing field \"Width\""},
        {"{'ProcessId':0,'Height':1,'Width':1}", "\"ProcessId\" = 0 is out of range"},
        {"{'ProcessId':2147483648,'Height':1,'Width':1}", "\"ProcessId\" = 2147483648 is out"},
        {"{'ProcessId':-5,'Height':1,'Width':1}", "\"ProcessId\" = -5 is out of range"},
        {"{'ProcessId':'1','Height':1,'Width':1}", "\"ProcessId\" must be an integer"},
        {"{'ProcessId':1,'Height':65536,'Width':1}",
         "\"Height\" = 65536 is out of range [0, 65535]"},
        {"{'ProcessId':1,'Height':1,'Width':-1}", "\"Width\" = -1 is out of range [0, 65535]"},
        {"{'ProcessId':1,'Height':1.0,'Width':1}", "\"Height\" must be an integer"},
        {"{'ProcessId':1,'Height':1,'Width':[80]}", "\"Width\" must be an integer"},
        {"{'ProcessId':1,'Height':1,'Width':null}", "\"Width\" must be an integer"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = parse_resize(bad[i].json, &req, &r);
        if (rc != -EINVAL || !req->error || !strstr(req->error, bad[i].what))
            fail_msg("case %zu (%s): rc %d, error \"%s\", expected \"%s\"", i, bad[i].json, rc,
                     req->error ? req->error : "(none)", bad[i].what);
        request_free(req);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_terminal),
        cmocka_unit_test(test_exec_terminal_refused),
        cmocka_unit_test(test_resize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

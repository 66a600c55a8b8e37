/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent's ExecuteProcess parameters (execparams.c) and network namespace ids
 * (nsid.c), built for the host. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "execparams.h"
#include "guest-req.h"
#include "nsid.h"
#include "proto.h"

/* Parse an ExecuteProcess body: rc; *req and *p to be released by the caller. */
static int
parse(const char *json, struct request **req, struct exec_params *p)
{
    *req = guest_req(PROTO_REQ_EXECUTE_PROCESS, json);
    *p = (struct exec_params){0};
    return exec_params_parse(*req, p);
}

static void
done(struct request *req, struct exec_params *p)
{
    exec_params_release(p);
    request_free(req);
}

static void
test_full(void **state)
{
    struct request *req;
    struct exec_params p;
    assert_int_equal(parse("{'Settings':{'ProcessParameters':{'CommandArgs':['sh','-c','echo hi'],"
                           "'Environment':{'PATH':'/bin','TERM':'xterm','EMPTY':''},"
                           "'WorkingDirectory':'/tmp','CreateStdInPipe':true,"
                           "'CreateStdOutPipe':true,'CreateStdErrPipe':false,"
                           "'NetworkNamespace':'ns-1.a_b'},'StdioHandle':4294967295}}",
                           &req, &p),
                     0);
    assert_string_equal(p.argv[0], "sh");
    assert_string_equal(p.argv[1], "-c");
    assert_string_equal(p.argv[2], "echo hi");
    assert_null(p.argv[3]);
    /* the request's order; no default PATH when the request has one */
    assert_string_equal(p.envp[0], "PATH=/bin");
    assert_string_equal(p.envp[1], "TERM=xterm");
    assert_string_equal(p.envp[2], "EMPTY=");
    assert_null(p.envp[3]);
    assert_string_equal(p.cwd, "/tmp");
    assert_true(p.pipes[0]);
    assert_true(p.pipes[1]);
    assert_false(p.pipes[2]);
    assert_int_equal(p.handle, UINT32_MAX);
    assert_string_equal(p.netns, "ns-1.a_b");
    done(req, &p);
}

static void
test_defaults(void **state)
{
    struct request *req;
    struct exec_params p;
    assert_int_equal(parse("{'Settings':{'ProcessParameters':{'CommandArgs':['true']}}}", &req, &p),
                     0);
    assert_string_equal(p.argv[0], "true");
    assert_null(p.argv[1]);
    assert_string_equal(p.envp[0], EXEC_DEFAULT_PATH);
    assert_null(p.envp[1]);
    assert_string_equal(p.cwd, "/");
    assert_false(p.pipes[0] || p.pipes[1] || p.pipes[2]);
    assert_int_equal(p.handle, 0);
    assert_null(p.netns);
    done(req, &p);
    /* an empty working directory is "/"; Environment {} still gets PATH */
    assert_int_equal(parse("{'Settings':{'ProcessParameters':{'CommandArgs':['true'],"
                           "'WorkingDirectory':'','Environment':{'path':'lower case'}}}}",
                           &req, &p),
                     0);
    assert_string_equal(p.cwd, "/");
    assert_string_equal(p.envp[0], "path=lower case");
    assert_string_equal(p.envp[1], EXEC_DEFAULT_PATH);
    done(req, &p);
    /* a handle without pipes is allowed */
    assert_int_equal(
        parse("{'Settings':{'ProcessParameters':{'CommandArgs':['true']},'StdioHandle':1}}", &req,
              &p),
        0);
    assert_int_equal(p.handle, 1);
    done(req, &p);
}

static void
test_refused(void **state)
{
    char long_ns[256];
    snprintf(long_ns, sizeof(long_ns),
             "{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':'%065d'}}}",
             0);
    char ok_ns[256];
    snprintf(ok_ns, sizeof(ok_ns),
             "{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':'%064d'}}}",
             0);
    struct request *req;
    struct exec_params p;
    assert_int_equal(parse(ok_ns, &req, &p), 0); /* 64 characters: the longest id */
    done(req, &p);
    const struct {
        const char *json, *what;
    } bad[] = {
        {"{}", "missing field \"Settings\""},
        {"{'Settings':[]}", "\"Settings\" must be an object"},
        {"{'Settings':{}}", "missing field \"ProcessParameters\""},
        {"{'Settings':{'ProcessParameters':'sh'}}", "\"ProcessParameters\" must be an object"},
        {"{'Settings':{'ProcessParameters':{}}}", "\"CommandArgs\" must be a non-empty array"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':[]}}}", "must be a non-empty array"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':'sh -c x'}}}",
         "must be a non-empty array"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['sh',1]}}}",
         "\"CommandArgs\"[1] is not a string"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':[null]}}}",
         "\"CommandArgs\"[0] is not a string"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['']}}}", "\"CommandArgs\"[0] is empty"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'Environment':['A=1']}}}",
         "\"Environment\" must be an object"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'Environment':{'':'v'}}}}",
         "bad environment variable name \"\""},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'Environment':{'A=B':'v'}}}}",
         "bad environment variable name \"A=B\""},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'Environment':{'A':1}}}}",
         "environment variable \"A\" must be a string"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'Environment':{'A':null}}}}",
         "environment variable \"A\" must be a string"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'WorkingDirectory':7}}}",
         "\"WorkingDirectory\" must be a string"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'CreateStdInPipe':1}}}",
         "\"CreateStdInPipe\" must be a boolean"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'CreateStdErrPipe':'true'}}}",
         "\"CreateStdErrPipe\" must be a boolean"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x']},'StdioHandle':0}}",
         "\"StdioHandle\" = 0 is out of range [1, 4294967295]"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x']},'StdioHandle':4294967296}}",
         "out of range [1, 4294967295]"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x']},'StdioHandle':-1}}",
         "out of range"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x']},'StdioHandle':'1'}}",
         "\"StdioHandle\" must be an integer"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'CreateStdOutPipe':true}}}",
         "\"StdioHandle\" is required with stdio pipes"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':3}}}",
         "\"NetworkNamespace\" must be a string"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':''}}}",
         "\"NetworkNamespace\": \"\" is not a network namespace id"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':'../../proc'}}}",
         "\"../../proc\" is not a network namespace id"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':'a/b'}}}",
         "is not a network namespace id"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':'.hidden'}}}",
         "is not a network namespace id"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':'ns 1'}}}",
         "is not a network namespace id"},
        {"{'Settings':{'ProcessParameters':{'CommandArgs':['x'],'NetworkNamespace':'n\\u00e9'}}}",
         "is not a network namespace id"},
        {long_ns, "is not a network namespace id"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = parse(bad[i].json, &req, &p);
        if (rc != -EINVAL || !req->error || !strstr(req->error, bad[i].what))
            fail_msg("case %zu (%s): rc %d, error \"%s\", expected \"%s\"", i, bad[i].json, rc,
                     req->error ? req->error : "(none)", bad[i].what);
        done(req, &p);
    }
}

static void
test_netns_ids(void **state)
{
    static const char *const good[] = {"a", "ns1", "A-b_c.d", "0", "a..b", "x."};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        if (!netns_id_valid(good[i]))
            fail_msg("\"%s\" refused", good[i]);
    static const char *const bad[] = {"",     ".",   "..",       ".a",   "a/b", "/",  "a b",
                                      "a\tb", "a:b", "\xc3\xa9", "a\\b", "a*",  "a\n"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (netns_id_valid(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
    char id[NETNS_ID_MAX + 2];
    memset(id, 'a', sizeof(id) - 1);
    id[NETNS_ID_MAX] = '\0';
    assert_true(netns_id_valid(id));
    id[NETNS_ID_MAX] = 'a';
    id[NETNS_ID_MAX + 1] = '\0';
    assert_false(netns_id_valid(id));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_netns_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

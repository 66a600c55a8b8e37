/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent's container requests (ctrconf.c) and crun log reading (crunlog.c), built for
 * the host. */
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
#include "crunlog.h"
#include "ctrconf.h"
#include "guest-req.h"
#include "proto.h"

/* A CreateContainer request for container `id` whose ContainerConfig is `config` (single quotes
 * become double quotes; the text is embedded as a JSON string). */
static struct request *
create_req(const char *id, const char *config)
{
    char *cfg = xstrdup(config);
    for (char *c = cfg; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_t *body = json_pack("{s:s, s:s}", "ContainerId", id, "ContainerConfig", cfg);
    char *text = json_dumps(body, JSON_COMPACT);
    struct request *req = request_new(PROTO_REQ_CREATE_CONTAINER, 7);
    int rc = request_parse(req, (const uint8_t *)text, strlen(text));
    if (rc < 0)
        fail_msg("request %s: %s", text, req->error);
    free(text);
    free(cfg);
    json_decref(body);
    return req;
}

static int
create(const char *id, const char *config, struct request **req, struct ctr_create *c)
{
    *req = create_req(id, config);
    *c = (struct ctr_create){0};
    return ctr_create_parse(*req, c);
}

#define SPEC "'OciSpecification':{'ociVersion':'1.0.0','process':{'args':['sh','-c','echo hi']," \
             "'cwd':'/'},'root':{'path':'/run/gcs/c/c1/rootfs'},'linux':{'namespaces':[" \
             "{'type':'pid'},{'type':'network','path':'/run/netns/n1'},{'type':'mount'}]}}"

static void
test_create_full(void **state)
{
    struct request *req;
    struct ctr_create c;
    assert_int_equal(create("c1", "{'OciBundlePath':'/run/gcs/c/c1'," SPEC ",'StdioHandle':9,"
                                   "'CreateStdInPipe':true,'CreateStdOutPipe':true}",
                            &req, &c),
                     0);
    assert_string_equal(c.id, "c1");
    assert_string_equal(c.bundle, "/run/gcs/c/c1");
    assert_string_equal(c.cmdline, "sh -c echo hi");
    assert_true(c.own_pid_ns);
    assert_true(c.stdio.pipes[0]);
    assert_true(c.stdio.pipes[1]);
    assert_false(c.stdio.pipes[2]);
    assert_int_equal(c.stdio.handle, 9);
    assert_false(c.stdio.terminal);
    /* the agent's cgroup; everything else as the host sent it */
    json_t *lnx = json_object_get(c.spec, "linux");
    assert_string_equal(json_string_value(json_object_get(lnx, "cgroupsPath")), "/c/c1");
    assert_int_equal(json_array_size(json_object_get(lnx, "namespaces")), 3);
    /* no personality in the spec: "LINUX", which gives crun's children randomization back */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(lnx, "personality"), "domain")),
        "LINUX");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c.spec, "root"), "path")),
        "/run/gcs/c/c1/rootfs");
    ctr_create_release(&c);
    request_free(req);
}

static void
test_create_terminal(void **state)
{
    struct request *req;
    struct ctr_create c;
    assert_int_equal(create("t1",
                            "{'OciSpecification':{'process':{'args':['sh'],'terminal':true},"
                            "'root':{'path':'/r'}},'StdioHandle':3,'CreateStdInPipe':true,"
                            "'CreateStdOutPipe':true}",
                            &req, &c),
                     0);
    assert_true(c.stdio.terminal);
    assert_true(c.stdio.pipes[0]);
    assert_int_equal(c.stdio.handle, 3);
    ctr_create_release(&c);
    request_free(req);
}

static void
test_create_defaults(void **state)
{
    struct request *req;
    struct ctr_create c;
    /* no bundle path (the agent's), no linux object (made), no pipes, a pid namespace path:
     * not the container's own */
    assert_int_equal(create("a.b-c_1",
                            "{'OciSpecification':{'process':{'args':['true']},"
                            "'root':{'path':'rootfs'}}}",
                            &req, &c),
                     0);
    assert_string_equal(c.bundle, "/run/gcs/c/a.b-c_1");
    assert_false(c.own_pid_ns);
    assert_false(c.stdio.pipes[0] || c.stdio.pipes[1] || c.stdio.pipes[2]);
    assert_int_equal(c.stdio.handle, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c.spec, "linux"),
                                                          "cgroupsPath")),
                        "/c/a.b-c_1");
    ctr_create_release(&c);
    request_free(req);

    assert_int_equal(create("c2",
                            "{'OciSpecification':{'process':{'args':['true']},'root':{'path':"
                            "'/r'},'linux':{'cgroupsPath':'/host/x','namespaces':[{'type':'pid',"
                            "'path':'/proc/1/ns/pid'}]}}}",
                            &req, &c),
                     0);
    assert_false(c.own_pid_ns);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c.spec, "linux"),
                                                          "cgroupsPath")),
                        "/c/c2");
    ctr_create_release(&c);
    request_free(req);

    /* the spec's own personality is kept */
    assert_int_equal(create("c3",
                            "{'OciSpecification':{'process':{'args':['true']},'root':{'path':"
                            "'/r'},'linux':{'personality':{'domain':'LINUX32'}}}}",
                            &req, &c),
                     0);
    json_t *pers = json_object_get(json_object_get(c.spec, "linux"), "personality");
    assert_string_equal(json_string_value(json_object_get(pers, "domain")), "LINUX32");
    assert_int_equal(json_object_size(pers), 1);
    ctr_create_release(&c);
    request_free(req);
}

/* Each bad CreateContainer is refused with a message naming what is wrong. */
static void
test_create_bad(void **state)
{
    static const struct {
        const char *id, *config, *what;
    } cases[] = {
        {"../x", "{" SPEC "}", "is not a container id"},
        {".x", "{" SPEC "}", "is not a container id"},
        {"", "{" SPEC "}", "is not a container id"},
        {"c1", "[1]", "is not a JSON object"},
        {"c1", "{'OciSpecification':1}", "\"OciSpecification\" must be an object"},
        {"c1", "{}", "missing field \"OciSpecification\""},
        {"c1", "{" SPEC ",'OciBundlePath':'/tmp/x'}", "must be \"/run/gcs/c/c1\""},
        {"c1", "{" SPEC ",'CreateStdOutPipe':true}", "\"StdioHandle\" is required"},
        {"c1", "{" SPEC ",'StdioHandle':0}", "out of range"},
        {"c1", "{" SPEC ",'StdioHandle':4294967296}", "out of range"},
        {"c1", "{" SPEC ",'CreateStdInPipe':1,'StdioHandle':1}", "must be a boolean"},
        {"c1", "{'OciSpecification':{'root':{'path':'/r'}}}", "process must be an object"},
        {"c1", "{'OciSpecification':{'process':{'args':[]},'root':{'path':'/r'}}}",
         "args must be an array"},
        {"c1", "{'OciSpecification':{'process':{'args':'sh'},'root':{'path':'/r'}}}",
         "args must be an array"},
        {"c1", "{'OciSpecification':{'process':{'args':['sh',1]},'root':{'path':'/r'}}}",
         "args[1] is not a string"},
        {"c1", "{'OciSpecification':{'process':{'args':['']},'root':{'path':'/r'}}}",
         "args[0] is empty"},
        {"c1", "{'OciSpecification':{'process':{'args':['sh'],'terminal':true},'root':{'path':"
               "'/r'}}}",
         "\"StdioHandle\" is required with a terminal"},
        {"c1", "{'OciSpecification':{'process':{'args':['sh'],'terminal':'yes'},'root':{'path':"
               "'/r'}}}",
         "terminal must be a boolean"},
        {"c1", "{'OciSpecification':{'process':{'args':['sh']}}}", "root.path must be"},
        {"c1", "{'OciSpecification':{'process':{'args':['sh']},'root':{'path':''}}}",
         "root.path must be"},
        {"c1", "{'OciSpecification':{'process':{'args':['sh']},'root':{'path':'/r'},'linux':[]}}",
         "linux must be an object"},
        {"c1", "{'OciSpecification':{'process':{'args':['sh']},'root':{'path':'/r'},'linux':{"
               "'namespaces':{}}}}",
         "namespaces must be an array"},
        {"c1", "{'OciSpecification':{'process':{'args':['sh']},'root':{'path':'/r'},'linux':{"
               "'namespaces':[{'path':'/x'}]}}}",
         "namespaces[0] has no type"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct request *req;
        struct ctr_create c;
        int rc = create(cases[i].id, cases[i].config, &req, &c);
        assert_refused(rc, req, cases[i].what);
        ctr_create_release(&c);
        request_free(req);
    }
}

static void
test_create_envelope(void **state)
{
    struct ctr_create c = {0};
    /* no ContainerId, or the UVM's own: not a container */
    struct request *req = guest_req(PROTO_REQ_CREATE_CONTAINER, "{'ContainerConfig':'{}'}");
    assert_refused(ctr_create_parse(req, &c), req, "\"ContainerId\" must name a container");
    ctr_create_release(&c);
    request_free(req);
    c = (struct ctr_create){0};
    req = guest_req(PROTO_REQ_CREATE_CONTAINER,
                    "{'ContainerId':'" PROTO_NULL_CONTAINER "','ContainerConfig':'{}'}");
    assert_null(req->container_id);
    assert_refused(ctr_create_parse(req, &c), req, "\"ContainerId\" must name a container");
    ctr_create_release(&c);
    request_free(req);
    /* a config that is not a string, or missing */
    static const char *const bodies[][2] = {
        {"{'ContainerId':'c1','ContainerConfig':{}}", "\"ContainerConfig\" must be a string"},
        {"{'ContainerId':'c1'}", "missing field \"ContainerConfig\""},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
        c = (struct ctr_create){0};
        req = guest_req(PROTO_REQ_CREATE_CONTAINER, bodies[i][0]);
        assert_refused(ctr_create_parse(req, &c), req, bodies[i][1]);
        ctr_create_release(&c);
        request_free(req);
    }
    /* a config text that is not JSON, or has a duplicate key */
    static const char *const texts[] = {"{x", "{'a':1,'a':2}", ""};
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        assert_refused(create("c1", texts[i], &req, &c), req, "\"ContainerConfig\" is not JSON");
        ctr_create_release(&c);
        request_free(req);
    }
}

static int
exec(const char *json, struct request **req, struct ctr_exec *e)
{
    *req = guest_req(PROTO_REQ_EXECUTE_PROCESS, json);
    *e = (struct ctr_exec){0};
    return ctr_exec_parse(*req, e);
}

static void
test_exec(void **state)
{
    struct request *req;
    struct ctr_exec e;
    assert_int_equal(exec("{'ContainerId':'c1','Settings':{'ProcessParameters':{'OCIProcess':{"
                          "'args':['ps','-o','pid'],'cwd':'/','user':{'uid':1000,'gid':1000}},"
                          "'CreateStdOutPipe':true,'CreateStdErrPipe':true},'StdioHandle':3}}",
                          &req, &e),
                     0);
    assert_non_null(e.process);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(e.process, "user"), "uid")),
                     1000);
    assert_string_equal(e.cmdline, "ps -o pid");
    assert_false(e.stdio.pipes[0]);
    assert_true(e.stdio.pipes[1] && e.stdio.pipes[2]);
    assert_int_equal(e.stdio.handle, 3);
    ctr_exec_release(&e);
    request_free(req);

    /* a terminal, with input */
    assert_int_equal(exec("{'ContainerId':'c1','Settings':{'ProcessParameters':{'OCIProcess':{"
                          "'args':['sh'],'terminal':true,'consoleSize':{'height':30,'width':100}},"
                          "'CreateStdInPipe':true,'CreateStdOutPipe':true},'StdioHandle':5}}",
                          &req, &e),
                     0);
    assert_true(e.stdio.terminal);
    assert_true(e.stdio.pipes[0]);
    assert_int_equal(e.stdio.handle, 5);
    ctr_exec_release(&e);
    request_free(req);

    /* no OCIProcess: start the init */
    assert_int_equal(exec("{'ContainerId':'c1','Settings':{'ProcessParameters':{}}}", &req, &e),
                     0);
    assert_null(e.process);
    assert_null(e.cmdline);
    ctr_exec_release(&e);
    request_free(req);
}

static void
test_exec_bad(void **state)
{
    static const char *const cases[][2] = {
        {"{'Settings':{'ProcessParameters':{'OCIProcess':{'args':['true']}}}}",
         "\"ContainerId\" must name a container"},
        {"{'ContainerId':'a/b','Settings':{'ProcessParameters':{}}}", "is not a container id"},
        {"{'ContainerId':'c1'}", "missing field \"Settings\""},
        {"{'ContainerId':'c1','Settings':{}}", "missing field \"ProcessParameters\""},
        {"{'ContainerId':'c1','Settings':{'ProcessParameters':{'OCIProcess':[]}}}",
         "\"OCIProcess\" must be an object"},
        {"{'ContainerId':'c1','Settings':{'ProcessParameters':{'OCIProcess':{}}}}",
         "OCIProcess.args must be an array"},
        {"{'ContainerId':'c1','Settings':{'ProcessParameters':{'OCIProcess':{'args':['sh'],"
         "'terminal':true}}}}",
         "\"StdioHandle\" is required with a terminal"},
        {"{'ContainerId':'c1','Settings':{'ProcessParameters':{'OCIProcess':{'args':['sh']},"
         "'CreateStdInPipe':true}}}",
         "\"StdioHandle\" is required"},
        {"{'ContainerId':'c1','Settings':{'ProcessParameters':{'CreateStdOutPipe':true},"
         "'StdioHandle':4}}",
         "chosen at CreateContainer"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct request *req;
        struct ctr_exec e;
        int rc = exec(cases[i][0], &req, &e);
        assert_refused(rc, req, cases[i][1]);
        ctr_exec_release(&e);
        request_free(req);
    }
}

static void
test_crun_log(void **state)
{
    /* crun 1.8.1's lines: the last error wins, warnings and other text are skipped */
    const char *log =
        "{\"msg\": \"first\", \"level\": \"error\", \"time\": \"2026-12-03T13:00:00.000000Z\"}\n"
        "{\"msg\": \"could not create a new keyring\", \"level\": \"warning\", \"time\": \"x\"}\n"
        "{\"msg\": \"executable file `nosuch` not found in $PATH: No such file or directory\", "
        "\"level\": \"error\", \"time\": \"2026-12-03T13:00:01.000000Z\"}\n"
        "plain text from crun\n\n";
    char *msg = crun_log_last_error(log, strlen(log));
    assert_string_equal(msg,
                        "executable file `nosuch` not found in $PATH: No such file or directory");
    free(msg);
    /* no trailing newline, CRLF */
    const char *crlf = "{\"level\":\"error\",\"msg\":\"a\"}\r\n{\"level\":\"error\",\"msg\":\"b\"}";
    msg = crun_log_last_error(crlf, strlen(crlf));
    assert_string_equal(msg, "b");
    free(msg);
    /* nothing usable */
    static const char *const none[] = {
        "",
        "\n\n",
        "{\"level\":\"warning\",\"msg\":\"w\"}\n",
        "{\"level\":\"error\"}\n",
        "{\"level\":\"error\",\"msg\":1}\n",
        "{\"level\":\"error\",\"msg\":\"cut",
        "[\"level\",\"error\"]\n",
        "{\"level\":\"error\",\"msg\":\"a\",\"msg\":\"b\"}\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(none); i++)
        assert_null(crun_log_last_error(none[i], strlen(none[i])));
    /* only the given length counts (not NUL-terminated) */
    const char *two = "{\"level\":\"error\",\"msg\":\"a\"}\n{\"level\":\"error\",\"msg\":\"b\"}\n";
    msg = crun_log_last_error(two, strchr(two, '\n') - two);
    assert_string_equal(msg, "a");
    free(msg);
}

static void
test_crun_log_bounds(void **state)
{
    /* a line over the limit is skipped, the error before it found */
    size_t big = CRUN_LOG_LINE_MAX + 100;
    const char *head = "{\"level\":\"error\",\"msg\":\"kept\"}\n";
    char *text = xmalloc(strlen(head) + big + 40);
    strcpy(text, head);
    char *o = text + strlen(head);
    o += sprintf(o, "{\"level\":\"error\",\"msg\":\"");
    memset(o, 'x', big);
    o += big;
    strcpy(o, "\"}\n");
    char *msg = crun_log_last_error(text, strlen(text));
    assert_string_equal(msg, "kept");
    free(msg);
    free(text);
    /* many short lines: linear */
    size_t n = 200000;
    char *lots = xmalloc(n * 2 + 1);
    for (size_t i = 0; i < n; i++) {
        lots[2 * i] = '{';
        lots[2 * i + 1] = '\n';
    }
    lots[2 * n] = '\0';
    assert_null(crun_log_last_error(lots, 2 * n));
    free(lots);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_full),  cmocka_unit_test(test_create_defaults),
        cmocka_unit_test(test_create_terminal),
        cmocka_unit_test(test_create_bad),   cmocka_unit_test(test_create_envelope),
        cmocka_unit_test(test_exec),         cmocka_unit_test(test_exec_bad),
        cmocka_unit_test(test_crun_log),     cmocka_unit_test(test_crun_log_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

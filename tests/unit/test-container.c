/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Containers on the host: the OCI spec's translation (ocispec.c), field by field; the exact
 * agent requests of each call against the fake guest; what the guest answers is checked; bad
 * input is refused before anything is sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "error.h"
#include "fixture.h"
#include "ocispec.h"
#include "proto.h"

/* JSON from a text with single quotes for double quotes. */
static json_t *
js(const char *text)
{
    cleanup_free char *t = xstrdup(text);
    for (char *c = t; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_error_t err;
    json_t *j = json_loads(t, 0, &err);
    if (!j)
        fail_msg("bad test JSON %s: %s", t, err.text);
    return j;
}

static void
assert_json(json_t *got, const char *want)
{
    json_t *w = js(want);
    if (!json_equal(got, w)) {
        cleanup_free char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        cleanup_free char *e = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got  %s\nwant %s", g, e);
    }
    json_decref(w);
}

#define PROC "'process':{'args':['sh'],'cwd':'/'}"

static void
test_translate_drops(void **state)
{
    bool term = true;
    json_t *spec = js("{'ociVersion':'1.0.2'," PROC ",'root':{'path':'/run/r','readonly':true},"
                      "'hostname':'h','hooks':{'prestart':[{'path':'/usr/bin/x'}]},"
                      "'windows':{},'solaris':{},'vm':{},'annotations':{'a':'b'},"
                      "'linux':{'cgroupsPath':'/kubepods/x','mountLabel':'system_u:x',"
                      "'devices':[{'path':'/dev/fuse','type':'c','major':10,'minor':229}],"
                      "'intelRdt':{'closID':'x'},'resources':{'devices':[{'allow':true,"
                      "'type':'c','major':10,'minor':229,'access':'rwm'}],'memory':{'limit':1}},"
                      "'namespaces':[{'type':'pid'},{'type':'network','path':'/proc/7/ns/net'},"
                      "{'type':'ipc','path':'/var/run/ipc'}],'sysctl':{'a':'1'}}}");
    json_object_set_new(json_object_get(spec, "process"), "apparmorProfile",
                        json_string("docker-default"));
    json_object_set_new(json_object_get(spec, "process"), "selinuxLabel", json_string("x"));
    struct ocispec_bind *binds = (void *)1;
    size_t n = 9;
    assert_int_equal(ocispec_translate(spec, &(struct ocispec_opts){0}, &binds, &n, &term), 0);
    assert_null(binds);
    assert_int_equal(n, 0);
    assert_false(term); /* no process.terminal */
    /* kept: ociVersion, process (without LSM labels), root, hostname, annotations, memory,
     * sysctl; namespaces without their host paths; devices: deny all */
    assert_json(spec, "{'ociVersion':'1.0.2'," PROC ",'root':{'path':'/run/r','readonly':true},"
                      "'hostname':'h','annotations':{'a':'b'},'linux':{'resources':{'devices':"
                      "[{'allow':false,'access':'rwm'}],'memory':{'limit':1}},'namespaces':["
                      "{'type':'pid'},{'type':'network'},{'type':'ipc'}],'sysctl':{'a':'1'}}}");
    json_decref(spec);
}

static void
test_translate_root_and_netns(void **state)
{
    bool term = true;
    /* the given root path replaces the spec's; the network namespace gets the guest's path */
    json_t *spec = js("{" PROC ",'root':{'path':'rootfs'},'linux':{'namespaces':["
                      "{'type':'network','path':'/var/run/netns/cni-1'},{'type':'mount'}]}}");
    struct ocispec_bind *binds = NULL;
    size_t n = 0;
    struct ocispec_opts o = {.root_path = "/run/gcs/c/1/rootfs", .netns_id = "ns1"};
    assert_int_equal(ocispec_translate(spec, &o, &binds, &n, &term), 0);
    assert_json(spec, "{" PROC ",'root':{'path':'/run/gcs/c/1/rootfs'},'linux':{'namespaces':["
                      "{'type':'network','path':'/run/netns/ns1'},{'type':'mount'}]}}");
    json_decref(spec);
    /* no network entry: one is added; no linux, no root: made */
    spec = js("{" PROC "}");
    o.root_path = "/tmp/p0";
    assert_int_equal(ocispec_translate(spec, &o, &binds, &n, &term), 0);
    assert_json(spec, "{" PROC ",'root':{'path':'/tmp/p0'},'linux':{'namespaces':["
                      "{'type':'network','path':'/run/netns/ns1'}]}}");
    json_decref(spec);
    /* no root path given: the spec's must be an absolute guest path */
    spec = js("{" PROC ",'root':{'path':'/run/vsmb/s1'}}");
    assert_int_equal(ocispec_translate(spec, &(struct ocispec_opts){0}, &binds, &n, &term), 0);
    assert_json(spec, "{" PROC ",'root':{'path':'/run/vsmb/s1'},'linux':{}}");
    json_decref(spec);
}

static void
test_translate_binds(void **state)
{
    bool term = true;
    json_t *spec = js("{" PROC ",'root':{'path':'/r'},'mounts':[{'destination':'/proc',"
                      "'type':'proc','source':'proc'},{'destination':'/a','type':'bind',"
                      "'source':'/host/a'},{'destination':'/b','source':'/host/b','options':"
                      "['rbind','ro']},{'destination':'/c','type':'none','source':'/host/c',"
                      "'options':['bind','rw']}]}");
    struct ocispec_bind *binds = NULL;
    size_t n = 0;
    assert_int_equal(ocispec_translate(spec, &(struct ocispec_opts){0}, &binds, &n, &term), 0);
    assert_int_equal(n, 3);
    assert_int_equal(binds[0].index, 1);
    assert_string_equal(binds[0].source, "/host/a");
    assert_false(binds[0].read_only);
    assert_int_equal(binds[1].index, 2);
    assert_string_equal(binds[1].source, "/host/b");
    assert_true(binds[1].read_only);
    assert_int_equal(binds[2].index, 3);
    assert_false(binds[2].read_only);
    ocispec_set_mount_source(spec, binds[1].index, "/run/vsmb/s2");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(spec, "mounts"), 2), "source")),
                        "/run/vsmb/s2");
    free(binds);
    json_decref(spec);
}

/* Each bad spec is refused, naming what is wrong, and returns no binds. */
static void
test_translate_bad(void **state)
{
    static const struct {
        const char *spec, *root, *what;
        int code;
    } cases[] = {
        {"[1]", NULL, "not a JSON object", UVM_E_INVALID_ARGUMENT},
        {"{'root':{'path':'/r'}}", NULL, "process must be an object", UVM_E_INVALID_ARGUMENT},
        {"{'process':{'args':[]},'root':{'path':'/r'}}", NULL, "process.args must be",
         UVM_E_INVALID_ARGUMENT},
        {"{'process':{'args':['']},'root':{'path':'/r'}}", NULL, "args[0] is empty",
         UVM_E_INVALID_ARGUMENT},
        {"{'process':{'args':['a',2]},'root':{'path':'/r'}}", NULL, "args[1] is not a string",
         UVM_E_INVALID_ARGUMENT},
        {"{'process':{'args':['sh'],'terminal':1},'root':{'path':'/r'}}", NULL,
         "process.terminal must be a boolean", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'rootfs'}}", NULL, "root.path 'rootfs' is not an absolute",
         UVM_E_INVALID_ARGUMENT},
        {"{" PROC "}", NULL, "root.path '' is not", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'}}", "/a/../b", "root path '/a/../b'",
         UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'}}", "/", "root path '/'", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':3}", "/r", "root must be an object", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'linux':[]}", NULL, "linux must be an object",
         UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'linux':{'namespaces':{}}}", NULL,
         "linux.namespaces must be an array", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'linux':{'namespaces':[{}]}}", NULL,
         "linux.namespaces[0] has no type", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'linux':{'resources':1}}", NULL,
         "linux.resources must be an object", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'mounts':{}}", NULL, "mounts must be an array",
         UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'mounts':[{'type':'bind'}]}", NULL,
         "mounts[0] has no destination", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'mounts':[{'destination':'/x','options':'ro'}]}", NULL,
         "mounts[0].options must be an array", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'mounts':[{'destination':'/x','type':'bind','source':"
         "'data'}]}",
         NULL, "must be an absolute host path (not 'data')", UVM_E_INVALID_ARGUMENT},
        {"{" PROC ",'root':{'path':'/r'},'mounts':[{'destination':'/x','options':['rbind']}]}",
         NULL, "must be an absolute host path (not '')", UVM_E_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *spec = js(cases[i].spec);
        struct ocispec_bind *binds = (void *)1;
        size_t n = 5;
        bool term = false;
        int rc = ocispec_translate(spec, &(struct ocispec_opts){.root_path = cases[i].root},
                                   &binds, &n, &term);
        if (rc != cases[i].code || !strstr(uvm_last_error(), cases[i].what))
            fail_msg("case %zu: %d '%s', want %d '%s'", i, rc, uvm_last_error(), cases[i].code,
                     cases[i].what);
        assert_null(binds);
        assert_int_equal(n, 0);
        json_decref(spec);
    }
}

static void
test_guest_paths(void **state)
{
    static const char *const good[] = {"/a", "/run/gcs/c/1/rootfs", "/tmp/p0", "/a/.b/..c"};
    static const char *const bad[] = {"", "/", "a", "/a/", "//a", "/a//b", "/./a", "/a/..",
                                      "/a/../b", "rootfs"};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        assert_true(ocispec_guest_path_valid(good[i]));
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (ocispec_guest_path_valid(bad[i]))
            fail_msg("'%s' accepted", bad[i]);
}

static void
test_translate_process(void **state)
{
    bool term = true;
    json_t *p = js("{'args':['ps'],'cwd':'/','apparmorProfile':'x','selinuxLabel':'y',"
                   "'user':{'uid':1000,'gid':1000},'terminal':false}");
    assert_int_equal(ocispec_translate_process(p, "process", &term), 0);
    assert_json(p, "{'args':['ps'],'cwd':'/','user':{'uid':1000,'gid':1000},'terminal':false}");
    assert_false(term);
    json_decref(p);
    p = js("{'args':['sh'],'terminal':true,'consoleSize':{'height':24,'width':80}}");
    assert_int_equal(ocispec_translate_process(p, "process", &term), 0);
    assert_true(term);
    assert_json(p, "{'args':['sh'],'terminal':true,'consoleSize':{'height':24,'width':80}}");
    json_decref(p);
    assert_int_equal(ocispec_translate_process(NULL, "process", &term), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "process must be an object");
}

/* ---- against the fake guest ------------------------------------------------------------- */

struct answers {
    const char *create, *exec, *wait, *props;
};

static const char *
respond(void *opaque, uint32_t type)
{
    const struct answers *a = opaque;
    switch (type) {
    case PROTO_REQ_CREATE_CONTAINER:
        return a->create;
    case PROTO_REQ_EXECUTE_PROCESS:
        return a->exec;
    case PROTO_REQ_WAIT_PROCESS:
        return a->wait;
    case PROTO_REQ_GET_PROPERTIES:
        return a->props;
    default:
        return NULL;
    }
}

static struct fixture *
fixture_with(struct answers *a)
{
    struct fixture *f = fixture_new(NULL, 0, &(struct fixture_config){0});
    pthread_mutex_lock(&f->guest.lock);
    f->guest.respond = respond;
    f->guest.opaque = a;
    pthread_mutex_unlock(&f->guest.lock);
    return f;
}

static void
assert_frame(struct fixture *f, size_t i, uint32_t type, const char *want)
{
    uint32_t got_type = 0;
    json_t *call = fixture_call(f, i, &got_type);
    if (!call)
        fail_msg("no request %zu", i);
    json_t *body = json_deep_copy(call);
    json_object_del(body, "ActivityId"); /* random */
    assert_int_equal(got_type, type);
    assert_json(body, want);
    json_decref(body);
}

#define SPEC "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"/r\"},\"hooks\":{}}"

static void
test_frames(void **state)
{
    struct answers a = {.create = "{\"Result\":0,\"ProcessId\":42}",
                        .exec = "{\"Result\":0,\"ProcessId\":43}",
                        .wait = "{\"Result\":0,\"ExitCode\":7}",
                        .props = "{\"Result\":0,\"Properties\":{\"ContainerList\":[{\"Id\":"
                                 "\"c1\",\"State\":\"running\",\"InitProcessId\":42}]}}"};
    struct fixture *f = fixture_with(&a);
    struct uvm_container *c = NULL;
    struct uvm_container_config cfg = {.id = "c1",
                                       .spec_json = SPEC,
                                       .network_namespace = "n1",
                                       .create_stdout = true};
    assert_int_equal(uvm_create_container(f->vm, &cfg, &c), 0);
    assert_string_equal(uvm_container_id(c), "c1");
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    assert_int_equal(uvm_process_pid(init), 42);
    struct uvm_container_process_config pc = {.process_json = "{\"args\":[\"ps\"]}",
                                              .create_stdin = true,
                                              .create_stderr = true};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_container_exec(c, &pc, &p), 0);
    assert_int_equal(uvm_process_pid(p), 43);
    assert_int_equal(uvm_process_signal(p, 15), 0);
    uvm_process_close(p);
    assert_int_equal(uvm_container_signal(c, 9), 0);
    int code = -1;
    assert_int_equal(uvm_container_wait(c, &code), 0);
    assert_int_equal(code, 7);
    struct uvm_container_info *list = NULL;
    size_t n = 0;
    assert_int_equal(uvm_list_containers(f->vm, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "c1");
    assert_string_equal(list[0].state, "running");
    assert_int_equal(list[0].init_pid, 42);
    free(list);
    assert_int_equal(uvm_container_delete(c), 0);

    /* The init's stdout stream has handle 1 (the first of the VM); the exec's, 2. */
    assert_frame(f, 0, PROTO_REQ_CREATE_CONTAINER,
                 "{'ContainerId':'c1','ContainerConfig':'{\\'OciBundlePath\\':\\'/run/gcs/c/c1\\',"
                 "\\'OciSpecification\\':{\\'process\\':{\\'args\\':[\\'sh\\']},\\'root\\':{\\'path"
                 "\\':\\'/r\\'},\\'linux\\':{\\'namespaces\\':[{\\'type\\':\\'network\\',\\'path\\'"
                 ":\\'/run/netns/n1\\'}]}},\\'StdioHandle\\':1,\\'CreateStdInPipe\\':false,"
                 "\\'CreateStdOutPipe\\':true,\\'CreateStdErrPipe\\':false}'}");
    assert_frame(f, 1, PROTO_REQ_EXECUTE_PROCESS,
                 "{'ContainerId':'c1','Settings':{'ProcessParameters':{}}}");
    assert_frame(f, 2, PROTO_REQ_EXECUTE_PROCESS,
                 "{'ContainerId':'c1','Settings':{'ProcessParameters':{'OCIProcess':{'args':"
                 "['ps']},'CreateStdInPipe':true,'CreateStdOutPipe':false,'CreateStdErrPipe':"
                 "true},'StdioHandle':2}}");
    assert_frame(f, 3, PROTO_REQ_SIGNAL_PROCESS,
                 "{'ContainerId':'c1','ProcessId':43,'Options':{'Signal':15}}");
    assert_frame(f, 4, PROTO_REQ_SIGNAL_PROCESS,
                 "{'ContainerId':'c1','ProcessId':42,'Options':{'Signal':9}}");
    assert_frame(f, 5, PROTO_REQ_WAIT_PROCESS,
                 "{'ContainerId':'c1','ProcessId':42,'TimeoutInMs':4294967295}");
    assert_frame(f, 6, PROTO_REQ_GET_PROPERTIES,
                 "{'ContainerId':'00000000-0000-0000-0000-000000000000','Query':{"
                 "'PropertyTypes':['ContainerList']}}");
    assert_frame(f, 7, PROTO_REQ_DELETE_CONTAINER_STATE, "{'ContainerId':'c1'}");

    /* deleted: no more requests */
    assert_int_equal(uvm_container_start(c, NULL), UVM_E_INVALID_STATE);
    assert_int_equal(uvm_container_exec(c, &pc, &p), UVM_E_INVALID_STATE);
    assert_null(p);
    assert_int_equal(uvm_container_delete(c), UVM_E_INVALID_STATE);
    assert_int_equal(fixture_call_count(f), 8);
    uvm_container_close(c); /* no second delete */
    assert_int_equal(fixture_call_count(f), 8);
    uvm_process_close(init); /* the last reference to the init */
    fixture_finish(f, NULL, 0);
}

/* A spec with process.terminal: one terminal stream (input and output, no stderr), the host end
 * from uvm_process_terminal; a resize names the container. */
static void
test_terminal_frames(void **state)
{
    struct answers a = {.create = "{\"Result\":0,\"ProcessId\":42}",
                        .exec = "{\"Result\":0,\"ProcessId\":43}"};
    struct fixture *f = fixture_with(&a);
    struct uvm_container *c = NULL;
    struct uvm_container_config cfg = {
        .id = "t1",
        .spec_json = "{\"process\":{\"args\":[\"sh\"],\"terminal\":true},\"root\":{\"path\":"
                     "\"/r\"}}"};
    assert_int_equal(uvm_create_container(f->vm, &cfg, &c), 0);
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    int fd = -1, in = 7;
    assert_int_equal(uvm_process_terminal(init, &fd), 0);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(uvm_process_stdio(init, &in, NULL, NULL), 0);
    assert_int_equal(in, -1);
    assert_int_equal(uvm_process_resize(init, 40, 120), 0);
    struct uvm_container_process_config pc = {.process_json = "{\"args\":[\"sh\"],"
                                                              "\"terminal\":true}"};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_container_exec(c, &pc, &p), 0);
    assert_frame(f, 0, PROTO_REQ_CREATE_CONTAINER,
                 "{'ContainerId':'t1','ContainerConfig':'{\\'OciBundlePath\\':\\'/run/gcs/c/t1\\',"
                 "\\'OciSpecification\\':{\\'process\\':{\\'args\\':[\\'sh\\'],\\'terminal\\':true},"
                 "\\'root\\':{\\'path\\':\\'/r\\'},\\'linux\\':{}},\\'StdioHandle\\':1,"
                 "\\'CreateStdInPipe\\':true,\\'CreateStdOutPipe\\':true,\\'CreateStdErrPipe\\':false}'}");
    assert_frame(f, 2, PROTO_REQ_RESIZE_CONSOLE,
                 "{'ContainerId':'t1','ProcessId':42,'Height':40,'Width':120}");
    assert_frame(f, 3, PROTO_REQ_EXECUTE_PROCESS,
                 "{'ContainerId':'t1','Settings':{'ProcessParameters':{'OCIProcess':{'args':"
                 "['sh'],'terminal':true},'CreateStdInPipe':true,'CreateStdOutPipe':true,"
                 "'CreateStdErrPipe':false},'StdioHandle':2}}");
    uvm_process_close(p);
    uvm_process_close(init);
    uvm_container_close(c);
    fixture_finish(f, NULL, 0);
}

/* A NULL id takes the VM's container counter; close deletes a container not deleted yet. */
static void
test_counter_id_and_close(void **state)
{
    struct answers a = {.create = "{\"Result\":0,\"ProcessId\":9}"};
    struct fixture *f = fixture_with(&a);
    uint64_t next = uvm_container_counter(f->vm) + 1;
    char want[32];
    snprintf(want, sizeof(want), "%llu", (unsigned long long)next);
    struct uvm_container *c = NULL;
    assert_int_equal(uvm_create_container(f->vm, &(struct uvm_container_config){.spec_json = SPEC},
                                          &c),
                     0);
    assert_string_equal(uvm_container_id(c), want);
    uvm_container_close(c);
    uint32_t type = 0;
    json_t *body = fixture_call(f, 1, &type);
    assert_int_equal(type, PROTO_REQ_DELETE_CONTAINER_STATE);
    assert_string_equal(json_string_value(json_object_get(body, "ContainerId")), want);
    fixture_finish(f, NULL, 0);
}

/* Bad arguments are refused before any request; guest answers are checked. */
static void
test_bad_input(void **state)
{
    struct answers a = {.create = "{\"Result\":0}", .exec = "{\"Result\":0,\"ProcessId\":0}",
                        .props = "{\"Result\":0,\"Properties\":{\"ContainerList\":[{\"Id\":"
                                 "\"c1\",\"State\":\"running\"}]}}"};
    struct fixture *f = fixture_with(&a);
    struct uvm_container *c = NULL;
    static const struct {
        struct uvm_container_config cfg;
        int code;
        const char *what;
    } cases[] = {
        {{.id = "c1"}, UVM_E_INVALID_ARGUMENT, "no OCI spec"},
        {{.id = "../x", .spec_json = SPEC}, UVM_E_INVALID_ARGUMENT, "'../x' is not a valid id"},
        {{.id = "c1", .spec_json = SPEC, .network_namespace = "a/b"}, UVM_E_INVALID_ARGUMENT,
         "network namespace 'a/b'"},
        {{.id = "c1", .spec_json = "{"}, UVM_E_INVALID_ARGUMENT, "the OCI spec is not JSON"},
        {{.id = "c1", .spec_json = "{\"a\":1,\"a\":2}"}, UVM_E_INVALID_ARGUMENT,
         "the OCI spec is not JSON"},
        {{.id = "c1", .spec_json = "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"/r\"},"
                                   "\"mounts\":[{\"destination\":\"/m\",\"type\":\"bind\","
                                   "\"source\":\"/nonexistent/dir\"}]}"},
         -ENOENT, "bind source '/nonexistent/dir'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int rc = uvm_create_container(f->vm, &cases[i].cfg, &c);
        if (rc != cases[i].code || !strstr(uvm_last_error(), cases[i].what))
            fail_msg("case %zu: %d '%s'", i, rc, uvm_last_error());
        assert_null(c);
    }
    assert_int_equal(fixture_call_count(f), 0); /* nothing was sent */
    assert_int_equal(uvm_create_container(NULL, &cases[1].cfg, &c), UVM_E_INVALID_ARGUMENT);
    /* the guest answers without a pid */
    struct uvm_container_config cfg = {.id = "c1", .spec_json = SPEC};
    assert_int_equal(uvm_create_container(f->vm, &cfg, &c), UVM_E_PROTOCOL);
    assert_non_null(strstr(uvm_last_error(), "create container 'c1' in"));
    assert_non_null(strstr(uvm_last_error(), "answered without a pid"));
    /* a malformed list entry (no InitProcessId) */
    struct uvm_container_info *list = (void *)1;
    size_t n = 3;
    assert_int_equal(uvm_list_containers(f->vm, &list, &n), UVM_E_PROTOCOL);
    assert_null(list);
    assert_int_equal(n, 0);
    fixture_finish(f, NULL, 0);
}

/* The guest's refusal reaches the caller with its text. */
static void
test_guest_error(void **state)
{
    struct answers a = {.create = "{\"Result\":-2147467259,\"ErrorMessage\":\"container c1: crun "
                                  "create: executable file `nosuch` not found in $PATH: No such "
                                  "file or directory\"}"};
    struct fixture *f = fixture_with(&a);
    struct uvm_container *c = NULL;
    struct uvm_container_config cfg = {.id = "c1", .spec_json = SPEC, .create_stdin = true};
    assert_int_equal(uvm_create_container(f->vm, &cfg, &c), UVM_E_GUEST);
    assert_null(c);
    assert_non_null(strstr(uvm_last_error(), "executable file `nosuch` not found"));
    fixture_finish(f, NULL, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate_drops),
        cmocka_unit_test(test_translate_root_and_netns),
        cmocka_unit_test(test_translate_binds),
        cmocka_unit_test(test_translate_bad),
        cmocka_unit_test(test_guest_paths),
        cmocka_unit_test(test_translate_process),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_terminal_frames),
        cmocka_unit_test(test_counter_id_and_close),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_guest_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

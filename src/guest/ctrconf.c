/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "cleanup.h"
#include "ctrconf.h"
#include "nsid.h"

#define MAX_ARGS 4096

bool
ctr_id_valid(const char *id)
{
    return netns_id_valid(id); /* one home for the "safe file name" rule */
}

/* The ContainerId of a container request: present, not the UVM's, a valid id. */
static int
container_id(struct request *req, const char **id)
{
    if (!req->container_id)
        return request_fail(req, "invalid request: \"ContainerId\" must name a container");
    if (!ctr_id_valid(req->container_id))
        return request_fail(req, "invalid request: field \"ContainerId\": \"%s\" is not a "
                                 "container id ([A-Za-z0-9._-]{1,64}, not starting with '.')",
                            req->container_id);
    *id = req->container_id;
    return 0;
}

static int
parse_stdio(struct request *req, json_t *pipes_obj, json_t *handle_obj, struct ctr_stdio *s)
{
    static const char *const keys[3] = {"CreateStdInPipe", "CreateStdOutPipe",
                                        "CreateStdErrPipe"};
    int rc = 0;
    for (unsigned i = 0; i < 3 && rc == 0; i++)
        rc = req_bool(req, pipes_obj, keys[i], false, &s->pipes[i]);
    uint64_t handle = 0;
    if (rc == 0)
        rc = req_uint(req, handle_obj, "StdioHandle", false, 1, UINT32_MAX, &handle);
    if (rc < 0)
        return rc;
    s->handle = (uint32_t)handle;
    if ((s->pipes[0] || s->pipes[1] || s->pipes[2]) && !s->handle)
        return request_fail(req, "invalid request: \"StdioHandle\" is required with stdio pipes");
    return 0;
}

/* An OCI process object: args a non-empty array of strings (joined into *cmdline), terminal a
 * boolean if present (*terminal). `what` names it in errors. */
static int
check_process(struct request *req, json_t *process, const char *what, char **cmdline,
              bool *terminal_out)
{
    json_t *args = json_object_get(process, "args");
    size_t n = json_array_size(args);
    if (!json_is_array(args) || n == 0 || n > MAX_ARGS)
        return request_fail(req, "invalid request: %s.args must be an array of 1 to %d strings",
                            what, MAX_ARGS);
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(args, i);
        if (!json_is_string(a))
            return request_fail(req, "invalid request: %s.args[%zu] is not a string", what, i);
        len += json_string_length(a) + 1;
    }
    if (!json_string_length(json_array_get(args, 0)))
        return request_fail(req, "invalid request: %s.args[0] is empty", what);
    json_t *terminal = json_object_get(process, "terminal");
    if (terminal && !json_is_boolean(terminal))
        return request_fail(req, "invalid request: %s.terminal must be a boolean", what);
    *terminal_out = json_is_true(terminal);
    char *out = xmalloc(len), *o = out;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(args, i);
        if (i)
            *o++ = ' ';
        memcpy(o, json_string_value(a), json_string_length(a));
        o += json_string_length(a);
    }
    *o = '\0';
    *cmdline = out;
    return 0;
}

/* The namespaces list: whether it has a pid namespace of its own (no path). */
static int
check_namespaces(struct request *req, json_t *lnx, bool *own_pid)
{
    json_t *nss = json_object_get(lnx, "namespaces");
    if (!nss)
        return 0;
    if (!json_is_array(nss))
        return request_fail(req, "invalid request: linux.namespaces must be an array");
    size_t i;
    json_t *ns;
    json_array_foreach(nss, i, ns) {
        const char *type = json_string_value(json_object_get(ns, "type"));
        if (!json_is_object(ns) || !type)
            return request_fail(req, "invalid request: linux.namespaces[%zu] has no type", i);
        if (!strcmp(type, "pid") && !json_object_get(ns, "path"))
            *own_pid = true;
    }
    return 0;
}

/* OciSpecification: an object with process (the init), root.path and, if present, a linux
 * object; linux.cgroupsPath is set to the container's cgroup, linux.personality to "LINUX"
 * when the spec has none. */
static int
check_spec(struct request *req, json_t *spec, struct ctr_create *c)
{
    json_t *process = json_object_get(spec, "process");
    if (!json_is_object(process))
        return request_fail(req, "invalid request: OciSpecification.process must be an object");
    int rc = check_process(req, process, "OciSpecification.process", &c->cmdline,
                           &c->stdio.terminal);
    if (rc < 0)
        return rc;
    json_t *root = json_object_get(spec, "root");
    const char *path = json_string_value(json_object_get(root, "path"));
    if (!path || !path[0])
        return request_fail(req, "invalid request: OciSpecification.root.path must be a "
                                 "non-empty string");
    json_t *lnx = json_object_get(spec, "linux");
    if (lnx && !json_is_object(lnx))
        return request_fail(req, "invalid request: OciSpecification.linux must be an object");
    if (!lnx) {
        lnx = json_object();
        json_object_set_new(spec, "linux", lnx);
    }
    rc = check_namespaces(req, lnx, &c->own_pid_ns);
    if (rc < 0)
        return rc;
    cleanup_free char *cg = xasprintf(CTR_CGROUP_ROOT "/%s", c->id);
    json_object_set_new(lnx, "cgroupsPath", json_string(cg));
    /* crun runs without address space randomization (crun.c); a persona set by crun
     * (personality(2) with the domain alone) gives it back to the container's processes. */
    if (!json_object_get(lnx, "personality"))
        json_object_set_new(lnx, "personality", json_pack("{s:s}", "domain", "LINUX"));
    return 0;
}

/* The ContainerConfig text: hcsshim sends the settings as a JSON string inside the JSON. */
static int
parse_config(struct request *req, json_t **out)
{
    const char *text = NULL;
    int rc = req_string(req, req->body, "ContainerConfig", true, &text);
    if (rc < 0)
        return rc;
    json_error_t jerr;
    json_t *cfg = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!cfg)
        return request_fail(req, "invalid request: \"ContainerConfig\" is not JSON: %s (at byte "
                                 "%d)",
                            jerr.text, jerr.position);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return request_fail(req, "invalid request: \"ContainerConfig\" is not a JSON object");
    }
    *out = cfg;
    return 0;
}

int
ctr_create_parse(struct request *req, struct ctr_create *c)
{
    int rc = container_id(req, &c->id);
    if (rc < 0)
        return rc;
    c->bundle = xasprintf(CTR_BUNDLE_ROOT "/%s", c->id);
    json_t *cfg = NULL;
    rc = parse_config(req, &cfg);
    if (rc < 0)
        return rc;
    const char *bundle = NULL;
    json_t *spec = NULL;
    rc = req_string(req, cfg, "OciBundlePath", false, &bundle);
    if (rc == 0 && bundle && strcmp(bundle, c->bundle) != 0)
        rc = request_fail(req, "invalid request: \"OciBundlePath\" must be \"%s\" (not \"%s\")",
                          c->bundle, bundle);
    if (rc == 0)
        rc = req_object(req, cfg, "OciSpecification", true, &spec);
    if (rc == 0)
        rc = parse_stdio(req, cfg, cfg, &c->stdio);
    if (rc == 0) {
        c->spec = json_incref(spec);
        rc = check_spec(req, c->spec, c);
    }
    if (rc == 0 && c->stdio.terminal && !c->stdio.handle)
        rc = request_fail(req, "invalid request: \"StdioHandle\" is required with a terminal");
    json_decref(cfg);
    return rc;
}

void
ctr_create_release(struct ctr_create *c)
{
    free(c->bundle);
    free(c->cmdline);
    if (c->spec)
        json_decref(c->spec);
}

int
ctr_exec_parse(struct request *req, struct ctr_exec *e)
{
    const char *id = NULL;
    json_t *settings = NULL, *params = NULL, *process = NULL;
    int rc = container_id(req, &id);
    if (rc == 0)
        rc = req_object(req, req->body, "Settings", true, &settings);
    if (rc == 0)
        rc = req_object(req, settings, "ProcessParameters", true, &params);
    if (rc == 0)
        rc = req_object(req, params, "OCIProcess", false, &process);
    if (rc == 0)
        rc = parse_stdio(req, params, settings, &e->stdio);
    if (rc < 0)
        return rc;
    if (!process && (e->stdio.pipes[0] || e->stdio.pipes[1] || e->stdio.pipes[2]))
        return request_fail(req, "invalid request: the init's stdio pipes are chosen at "
                                 "CreateContainer, not when it starts");
    if (!process)
        return 0;
    e->process = process;
    rc = check_process(req, process, "OCIProcess", &e->cmdline, &e->stdio.terminal);
    if (rc == 0 && e->stdio.terminal && !e->stdio.handle)
        rc = request_fail(req, "invalid request: \"StdioHandle\" is required with a terminal");
    return rc;
}

void
ctr_exec_release(struct ctr_exec *e)
{
    free(e->cmdline);
}

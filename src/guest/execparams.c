/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "cleanup.h"
#include "execparams.h"
#include "nsid.h"
#include "proto.h"

void
exec_params_release(struct exec_params *p)
{
    free(p->argv);
    for (char **s = p->envp; s && *s; s++)
        free(*s);
    free(p->envp);
}

static int
parse_argv(struct request *req, json_t *params, struct exec_params *p)
{
    json_t *args = json_object_get(params, "CommandArgs");
    if (!json_is_array(args) || json_array_size(args) == 0)
        return request_fail(req, "invalid request: \"CommandArgs\" must be a non-empty array "
                                 "of strings");
    size_t n = json_array_size(args);
    p->argv = xcalloc(n + 1, sizeof(*p->argv));
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(args, i);
        if (!json_is_string(v))
            return request_fail(req, "invalid request: \"CommandArgs\"[%zu] is not a string", i);
        p->argv[i] = json_string_value(v);
    }
    if (!p->argv[0][0])
        return request_fail(req, "invalid request: \"CommandArgs\"[0] is empty");
    return 0;
}

static int
parse_env(struct request *req, json_t *params, struct exec_params *p)
{
    json_t *env = NULL;
    int rc = req_object(req, params, "Environment", false, &env);
    if (rc < 0)
        return rc;
    size_t n = env ? json_object_size(env) : 0;
    p->envp = xcalloc(n + 2, sizeof(*p->envp));
    size_t i = 0;
    bool has_path = false;
    const char *key;
    json_t *val;
    if (env) {
        json_object_foreach(env, key, val) {
            if (!key[0] || strchr(key, '='))
                return request_fail(req, "invalid request: bad environment variable name "
                                         "\"%s\"", key);
            if (!json_is_string(val))
                return request_fail(req, "invalid request: environment variable \"%s\" must "
                                         "be a string", key);
            p->envp[i++] = xasprintf("%s=%s", key, json_string_value(val));
            if (!strcmp(key, "PATH"))
                has_path = true;
        }
    }
    if (!has_path)
        p->envp[i++] = xstrdup(EXEC_DEFAULT_PATH);
    return 0;
}

int
exec_params_parse(struct request *req, struct exec_params *p)
{
    json_t *settings = NULL, *params = NULL;
    int rc = req_object(req, req->body, "Settings", true, &settings);
    if (rc == 0)
        rc = req_object(req, settings, "ProcessParameters", true, &params);
    if (rc == 0)
        rc = parse_argv(req, params, p);
    if (rc == 0)
        rc = parse_env(req, params, p);
    p->cwd = "/";
    if (rc == 0)
        rc = req_string(req, params, "WorkingDirectory", false, &p->cwd);
    static const char *const pipe_keys[3] = {"CreateStdInPipe", "CreateStdOutPipe",
                                             "CreateStdErrPipe"};
    for (unsigned i = 0; i < 3 && rc == 0; i++)
        rc = req_bool(req, params, pipe_keys[i], false, &p->pipes[i]);
    uint64_t handle = 0;
    if (rc == 0)
        rc = req_uint(req, settings, "StdioHandle", false, 1, UINT32_MAX, &handle);
    if (rc == 0)
        rc = req_string(req, params, "NetworkNamespace", false, &p->netns);
    if (rc == 0)
        rc = tty_params_parse(req, params, &p->terminal, &p->size);
    if (rc < 0)
        return rc;
    if (!p->cwd[0])
        p->cwd = "/";
    p->handle = (uint32_t)handle;
    if ((p->pipes[0] || p->pipes[1] || p->pipes[2]) && !p->handle)
        return request_fail(req, "invalid request: \"StdioHandle\" is required with stdio pipes");
    if (p->terminal && (!p->pipes[PROTO_STDOUT] || p->pipes[PROTO_STDERR]))
        return request_fail(req, "invalid request: with \"EmulateConsole\" the terminal's output "
                                 "is the stdout stream: \"CreateStdOutPipe\" must be true and "
                                 "\"CreateStdErrPipe\" false");
    if (p->netns && !netns_id_valid(p->netns))
        return request_fail(req, "invalid request: field \"NetworkNamespace\": \"%s\" is not a "
                                 "network namespace id",
                            p->netns);
    return 0;
}

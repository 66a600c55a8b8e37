/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "guest-request": the guest agent's decoding of host requests and its pure parsers
 * (src/guest/request.c, modifyreq.c, clonereq.c, execparams.c, ttyreq.c, ctrconf.c, nicconf.c, shareconf.c,
 * nsid.c, mountpath.c, layercheck.c), as the agent runs them before any side effect: the
 * handlers that would mount, exec or configure are not linked; the decoded settings are checked
 * instead.
 *
 * Input: 1 byte (the request type: ExecuteProcess, in a container when the body names one,
 * ModifySettings, CreateContainer, ResizeConsole, Quiesce, Resume, or another), then the
 * request's JSON payload.
 * Properties: decoding ends with a result or an error naming the field; what is accepted is
 * what the parsers promise (argv non-empty with a non-empty argv[0], KEY=value environment with
 * a PATH, stdio pipes only with a handle, a terminal only on stdout, valid namespace and
 * container ids, a container's bundle and cgroup under its id, normalised absolute mount paths,
 * unicast MACs, interface names, virtio-fs tags and options without "source", Plan9 share
 * names, bounded overlay options, a clone's hostname, entropy and clock); the agent's response is always a JSON object with an integer
 * Result (and an ErrorMessage string when it failed).
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clonereq.h"
#include "ctrconf.h"
#include "execparams.h"
#include "fuzz-util.h"
#include "layercheck.h"
#include "modifyreq.h"
#include "mountpath.h"
#include "nicconf.h"
#include "nsid.h"
#include "plan9.h"
#include "proto.h"
#include "request.h"
#include "shareconf.h"
#include "ttyreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t types[] = {
    PROTO_REQ_EXECUTE_PROCESS, PROTO_REQ_MODIFY_SETTINGS, PROTO_REQ_CREATE_CONTAINER,
    PROTO_REQ_RESIZE_CONSOLE,  PROTO_REQ_WAIT_PROCESS,    PROTO_REQ_NEGOTIATE_PROTOCOL,
    PROTO_REQ_SIGNAL_PROCESS,  PROTO_REQ_GET_PROPERTIES,  PROTO_REQ_QUIESCE,
    PROTO_REQ_RESUME,
};

/* An independent statement of "normalised absolute path": no "//", "/./", "/../", no trailing
 * "/", "/." or "/..". */
static bool
normalised(const char *p)
{
    size_t n = strlen(p);
    if (!n || p[0] != '/' || p[n - 1] == '/' || strstr(p, "//") || strstr(p, "/./") ||
        strstr(p, "/../"))
        return false;
    return !(n >= 2 && !strcmp(p + n - 2, "/.")) && !(n >= 3 && !strcmp(p + n - 3, "/.."));
}

static bool
all_of(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

#define ID_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

static void
check_exec(struct request *req)
{
    struct exec_params p = {0};
    if (exec_params_parse(req, &p) == 0) {
        FUZZ_CHECK(p.argv && p.argv[0] && p.argv[0][0], "empty argv accepted");
        bool path = false;
        for (char **e = p.envp; *e; e++) {
            FUZZ_CHECK(strchr(*e, '=') > *e, "environment entry '%s'", *e);
            path = path || !strncmp(*e, "PATH=", 5);
        }
        FUZZ_CHECK(path, "no PATH in the environment");
        FUZZ_CHECK(p.cwd && p.cwd[0], "empty working directory");
        FUZZ_CHECK(p.handle || !(p.pipes[0] || p.pipes[1] || p.pipes[2]), "pipes without handle");
        FUZZ_CHECK(!p.terminal || (p.pipes[PROTO_STDOUT] && !p.pipes[PROTO_STDERR]),
                   "a terminal without stdout, or with stderr");
        FUZZ_CHECK(p.terminal || (!p.size.rows && !p.size.cols), "a size without a terminal");
        FUZZ_CHECK(!p.netns || (netns_id_valid(p.netns) && p.netns[0] != '.' &&
                                all_of(p.netns, ID_CHARS) && strlen(p.netns) <= NETNS_ID_MAX),
                   "namespace id '%s'", p.netns);
    }
    exec_params_release(&p);
}

static void
check_nic(struct request *req, json_t *settings)
{
    struct nic_conf n = {0};
    if (nic_conf_parse(req, settings, &n) == 0) {
        FUZZ_CHECK(netns_id_valid(n.ns), "namespace '%s'", n.ns);
        FUZZ_CHECK(strlen(n.mac_text) == MAC_TEXT_LEN && !(n.mac[0] & 1), "mac %s", n.mac_text);
        FUZZ_CHECK(n.ifname[0] && strlen(n.ifname) < IFNAMSIZ && all_of(n.ifname, ID_CHARS) &&
                       strcmp(n.ifname, ".") && strcmp(n.ifname, ".."),
                   "interface name '%s'", n.ifname);
        FUZZ_CHECK(!n.family || n.prefix <= (n.family == AF_INET ? 32u : 128u), "prefix %u",
                   n.prefix);
        if (n.resolv)
            FUZZ_CHECK(!strncmp(n.resolv, "nameserver ", 11) &&
                           n.resolv[strlen(n.resolv) - 1] == '\n',
                       "resolv.conf '%s'", n.resolv);
    }
    nic_conf_release(&n);
}

static void
check_share(struct request *req, const struct modify_request *m)
{
    if (!strcmp(m->resource_type, "MappedDirectory")) {
        struct plan9_conf c;
        if (plan9_conf_parse(req, m->type, m->settings, &c) == 0) {
            FUZZ_CHECK(c.name[0] == 's' && strlen(c.name) >= 2 && strlen(c.name) <= 17 &&
                           all_of(c.name + 1, "0123456789abcdef"),
                       "share name '%s'", c.name);
            size_t r = strlen(PLAN9_ROOT);
            bool inside = !strncmp(c.path, PLAN9_ROOT, r) && (!c.path[r] || c.path[r] == '/');
            FUZZ_CHECK(normalised(c.path) && !inside, "mount path '%s'", c.path);
        }
        return;
    }
    struct virtiofs_conf c;
    if (virtiofs_conf_parse(req, m->type, m->settings, &c) == 0) {
        FUZZ_CHECK(c.tag[0] && strlen(c.tag) <= VIRTIOFS_TAG_MAX && all_of(c.tag, ID_CHARS),
                   "tag '%s'", c.tag);
        FUZZ_CHECK(normalised(c.path), "mount path '%s'", c.path);
        FUZZ_CHECK(strlen(c.options) <= VIRTIOFS_OPTIONS_MAX &&
                       all_of(c.options, "abcdefghijklmnopqrstuvwxyz0123456789_=,"),
                   "options '%s'", c.options);
        char *copy = strdup(c.options), *rest = copy, *item;
        while (*c.options && (item = strsep(&rest, ","))) {
            FUZZ_CHECK(*item && strcmp(item, "source") && strncmp(item, "source=", 7),
                       "options '%s'", c.options);
        }
        free(copy);
    }
}

/* CombinedLayers: the strings the agent takes (layers.c), through layercheck.c. */
static void
check_layers(json_t *settings)
{
    const char *root = json_string_value(json_object_get(settings, "ContainerRootPath"));
    const char *scratch = json_string_value(json_object_get(settings, "ScratchPath"));
    json_t *arr = json_object_get(settings, "Layers");
    const char *paths[LAYERS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr) && n < LAYERS_MAX; i++) {
        const char *p = json_string_value(json_object_get(json_array_get(arr, i), "Path"));
        if (p)
            paths[n++] = p;
    }
    if (!root)
        return;
    const char *why = NULL;
    if (layers_path_ok(root, &why))
        FUZZ_CHECK(normalised(root) && strlen(root) < LAYERS_PATH_MAX && !strpbrk(root, ":,\\"),
                   "root '%s'", root);
    char options[LAYERS_OPTIONS_MAX + 1], err[160];
    if (layers_options(root, paths, n, scratch, options, sizeof(options), err, sizeof(err)) == 0) {
        FUZZ_CHECK(strlen(options) <= LAYERS_OPTIONS_MAX && !strncmp(options, "lowerdir=", 9),
                   "options '%s'", options);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(!strpbrk(paths[i], ":,\\") && normalised(paths[i]), "layer '%s'", paths[i]);
    }
}

static void
check_modify(struct request *req)
{
    struct modify_request m;
    if (modify_request_decode(req, &m) < 0)
        return;
    FUZZ_CHECK(!m.settings || json_is_object(m.settings), "settings not an object");
    if (!strcmp(m.resource_type, "Network"))
        check_nic(req, m.settings);
    else if (!strcmp(m.resource_type, "MappedDirectory") || !strcmp(m.resource_type, "VirtioFs"))
        check_share(req, &m);
    else if (!strcmp(m.resource_type, "CombinedLayers") && m.settings)
        check_layers(m.settings);
    /* Every string of the settings through the mount path check, against normalised(). */
    const char *key;
    json_t *v;
    json_object_foreach(m.settings, key, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        struct request *tmp = request_new(0, 0);
        bool ok = mount_check_path(tmp, key, s) == 0;
        FUZZ_CHECK(ok == (!*s || (normalised(s) && strlen(s) < PATH_MAX)),
                   "mount_check_path('%s') = %d", s, ok);
        FUZZ_CHECK(netns_id_valid(s) == (strlen(s) >= 1 && strlen(s) <= NETNS_ID_MAX &&
                                         s[0] != '.' && all_of(s, ID_CHARS)),
                   "netns_id_valid('%s')", s);
        request_free(tmp);
    }
}

static bool
stdio_ok(const struct ctr_stdio *s)
{
    return s->handle || !(s->pipes[0] || s->pipes[1] || s->pipes[2]);
}

static void
check_container_create(struct request *req)
{
    struct ctr_create c = {0};
    if (ctr_create_parse(req, &c) == 0) {
        FUZZ_CHECK(c.id && ctr_id_valid(c.id) && c.id[0] != '.' && all_of(c.id, ID_CHARS) &&
                       strlen(c.id) <= CTR_ID_MAX,
                   "container id '%s'", c.id);
        char want[128];
        snprintf(want, sizeof(want), CTR_BUNDLE_ROOT "/%s", c.id);
        FUZZ_CHECK(c.bundle && !strcmp(c.bundle, want), "bundle '%s'", c.bundle);
        snprintf(want, sizeof(want), CTR_CGROUP_ROOT "/%s", c.id);
        const char *cg = json_string_value(
            json_object_get(json_object_get(c.spec, "linux"), "cgroupsPath"));
        FUZZ_CHECK(cg && !strcmp(cg, want), "cgroupsPath '%s'", cg);
        FUZZ_CHECK(stdio_ok(&c.stdio), "container pipes without handle");
    }
    ctr_create_release(&c);
}

static void
check_container_exec(struct request *req)
{
    struct ctr_exec e = {0};
    if (ctr_exec_parse(req, &e) == 0) {
        FUZZ_CHECK(stdio_ok(&e.stdio), "exec pipes without handle");
        FUZZ_CHECK(e.process || !(e.stdio.pipes[0] || e.stdio.pipes[1] || e.stdio.pipes[2]),
                   "pipes for a container's init at start");
        FUZZ_CHECK(!e.process || json_is_object(e.process), "OCIProcess not an object");
    }
    ctr_exec_release(&e);
}

static void
check_resize(struct request *req)
{
    struct tty_resize r;
    if (tty_resize_parse(req, &r) == 0)
        FUZZ_CHECK(r.pid >= 1 && r.pid <= INT32_MAX, "resize of pid %u", r.pid);
}

/* A clone's identity: a hostname of 1..64 of [A-Za-z0-9._-] not starting with '.', entropy of
 * 32..256 bytes or none, a clock in 1..2^62 us or not set. */
static void
check_resume(struct request *req)
{
    struct resume_params r;
    if (resume_params_parse(req, &r) != 0)
        return;
    size_t n = strnlen(r.hostname, sizeof(r.hostname));
    FUZZ_CHECK(n < sizeof(r.hostname), "hostname not terminated");
    FUZZ_CHECK(all_of(r.hostname,
                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") &&
                   r.hostname[0] != '.',
               "hostname '%s'", r.hostname);
    FUZZ_CHECK(r.entropy_len == 0 ||
                   (r.entropy_len >= CLONE_ENTROPY_MIN && r.entropy_len <= CLONE_ENTROPY_MAX),
               "entropy of %zu bytes", r.entropy_len);
    FUZZ_CHECK(r.realtime_us <= CLONE_REALTIME_MAX, "clock %llu",
               (unsigned long long)r.realtime_us);
}

/* The agent answers every request: a JSON object with an integer Result. */
static void
check_response(struct request *req)
{
    size_t len = 0;
    char *text = request_response_json(req, &len);
    FUZZ_CHECK(text, "no response");
    json_t *j = json_loadb(text, len, 0, NULL);
    FUZZ_CHECK(json_is_object(j) && json_is_integer(json_object_get(j, "Result")), "response %s",
               text);
    FUZZ_CHECK(!req->error || json_is_string(json_object_get(j, "ErrorMessage")),
               "error response without a message: %s", text);
    json_decref(j);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    uint32_t type = types[fuzz_u8(&in) % (sizeof(types) / sizeof(types[0]))];
    struct request *req = request_new(type, 1);
    if (request_parse(req, in.data, in.len) == 0) {
        FUZZ_CHECK(json_is_object(req->body) && req->activity_id, "parsed without a body");
        if (type == PROTO_REQ_EXECUTE_PROCESS && req->container_id)
            check_container_exec(req);
        else if (type == PROTO_REQ_EXECUTE_PROCESS)
            check_exec(req);
        else if (type == PROTO_REQ_MODIFY_SETTINGS)
            check_modify(req);
        else if (type == PROTO_REQ_CREATE_CONTAINER)
            check_container_create(req);
        else if (type == PROTO_REQ_RESIZE_CONSOLE)
            check_resize(req);
        else if (type == PROTO_REQ_QUIESCE)
            (void)quiesce_params_parse(req);
        else if (type == PROTO_REQ_RESUME)
            check_resume(req);
    } else {
        FUZZ_CHECK(req->error, "failed without an error");
    }
    check_response(req);
    request_free(req);
    return 0;
}

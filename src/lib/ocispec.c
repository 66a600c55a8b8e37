/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "cleanup.h"
#include "error.h"
#include "ocispec.h"
#include "uvm.h"

#define MAX_ARGS 4096
#define MAX_MOUNTS 1024

bool
ocispec_guest_path_valid(const char *path)
{
    size_t n = strlen(path);
    if (n < 2 || n > 4095 || path[0] != '/' || path[n - 1] == '/')
        return false;
    for (const char *c = path; *c; c++) {
        if (*c != '/')
            continue;
        const char *next = c + 1;
        size_t len = strcspn(next, "/");
        if (len == 0 || (len == 1 && next[0] == '.') ||
            (len == 2 && next[0] == '.' && next[1] == '.'))
            return false;
    }
    return true;
}

int
ocispec_translate_process(json_t *process, const char *what, bool *terminal_out)
{
    if (!json_is_object(process))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s must be an object", what);
    json_t *args = json_object_get(process, "args");
    size_t n = json_array_size(args);
    if (!json_is_array(args) || n == 0 || n > MAX_ARGS)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s.args must be an array of 1 to %d strings",
                         what, MAX_ARGS);
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(args, i)))
            return uvm_error(UVM_E_INVALID_ARGUMENT, "%s.args[%zu] is not a string", what, i);
    if (!json_string_length(json_array_get(args, 0)))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s.args[0] is empty", what);
    json_t *terminal = json_object_get(process, "terminal");
    if (terminal && !json_is_boolean(terminal))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s.terminal must be a boolean", what);
    *terminal_out = json_is_true(terminal);
    json_object_del(process, "apparmorProfile");
    json_object_del(process, "selinuxLabel");
    return 0;
}

/* Every namespace loses its host path; the network one gets the guest's netns when given. */
static int
translate_namespaces(json_t *lnx, const char *netns_id)
{
    json_t *nss = json_object_get(lnx, "namespaces");
    if (!nss && !netns_id)
        return 0;
    if (nss && !json_is_array(nss))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "linux.namespaces must be an array");
    if (!nss) {
        nss = json_array();
        json_object_set_new(lnx, "namespaces", nss);
    }
    json_t *net = NULL;
    size_t i;
    json_t *ns;
    json_array_foreach(nss, i, ns) {
        const char *type = json_string_value(json_object_get(ns, "type"));
        if (!json_is_object(ns) || !type)
            return uvm_error(UVM_E_INVALID_ARGUMENT, "linux.namespaces[%zu] has no type", i);
        json_object_del(ns, "path");
        if (!strcmp(type, "network"))
            net = ns;
    }
    if (!netns_id)
        return 0;
    if (!net) {
        net = json_pack("{s:s}", "type", "network");
        json_array_append_new(nss, net);
    }
    cleanup_free char *path = xasprintf(OCISPEC_NETNS_DIR "/%s", netns_id);
    json_object_set_new(net, "path", json_string(path));
    return 0;
}

static int
translate_linux(json_t *spec, const char *netns_id)
{
    json_t *lnx = json_object_get(spec, "linux");
    if (lnx && !json_is_object(lnx))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "linux must be an object");
    if (!lnx) {
        lnx = json_object();
        json_object_set_new(spec, "linux", lnx);
    }
    json_object_del(lnx, "cgroupsPath");
    json_object_del(lnx, "mountLabel");
    json_object_del(lnx, "devices");
    json_object_del(lnx, "intelRdt");
    json_t *res = json_object_get(lnx, "resources");
    if (res && !json_is_object(res))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "linux.resources must be an object");
    if (res && json_object_get(res, "devices"))
        json_object_set_new(res, "devices",
                            json_pack("[{s:b, s:s}]", "allow", 0, "access", "rwm"));
    return translate_namespaces(lnx, netns_id);
}

/* A bind mount: type "bind", or "bind"/"rbind" among its options. */
static bool
is_bind(json_t *m, bool *read_only)
{
    const char *type = json_string_value(json_object_get(m, "type"));
    bool bind = type && !strcmp(type, "bind");
    size_t i;
    json_t *opt;
    *read_only = false;
    json_array_foreach(json_object_get(m, "options"), i, opt) {
        const char *o = json_string_value(opt);
        if (o && (!strcmp(o, "bind") || !strcmp(o, "rbind")))
            bind = true;
        if (o && !strcmp(o, "ro"))
            *read_only = true;
    }
    return bind;
}

static int
find_binds(json_t *spec, struct ocispec_bind **binds, size_t *nbinds)
{
    json_t *mounts = json_object_get(spec, "mounts");
    if (!mounts)
        return 0;
    if (!json_is_array(mounts) || json_array_size(mounts) > MAX_MOUNTS)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "mounts must be an array of at most %d mounts",
                         MAX_MOUNTS);
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m) {
        json_t *opts = json_object_get(m, "options");
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "destination")))
            return uvm_error(UVM_E_INVALID_ARGUMENT, "mounts[%zu] has no destination", i);
        if (opts && !json_is_array(opts))
            return uvm_error(UVM_E_INVALID_ARGUMENT, "mounts[%zu].options must be an array", i);
        bool ro;
        if (!is_bind(m, &ro))
            continue;
        const char *src = json_string_value(json_object_get(m, "source"));
        if (!src || src[0] != '/')
            return uvm_error(UVM_E_INVALID_ARGUMENT, "mounts[%zu]: the source of a bind mount "
                                                     "must be an absolute host path (not '%s')",
                             i, src ? src : "");
        *binds = xrealloc(*binds, (*nbinds + 1) * sizeof(**binds));
        (*binds)[(*nbinds)++] = (struct ocispec_bind){.index = i, .source = src, .read_only = ro};
    }
    return 0;
}

static int
translate_root(json_t *spec, const char *root_path)
{
    json_t *root = json_object_get(spec, "root");
    if (root && !json_is_object(root))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "root must be an object");
    if (!root) {
        root = json_object();
        json_object_set_new(spec, "root", root);
    }
    if (root_path) {
        if (!ocispec_guest_path_valid(root_path))
            return uvm_error(UVM_E_INVALID_ARGUMENT, "root path '%s' is not an absolute, "
                                                     "normalised guest path",
                             root_path);
        json_object_set_new(root, "path", json_string(root_path));
        return 0;
    }
    const char *path = json_string_value(json_object_get(root, "path"));
    if (!path || !ocispec_guest_path_valid(path))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "root.path '%s' is not an absolute, normalised "
                                                 "guest path (give the root's guest path)",
                         path ? path : "");
    return 0;
}

int
ocispec_translate(json_t *spec, const struct ocispec_opts *o, struct ocispec_bind **binds,
                  size_t *nbinds, bool *terminal)
{
    *binds = NULL;
    *nbinds = 0;
    *terminal = false;
    if (!json_is_object(spec))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "the OCI spec is not a JSON object");
    int rc = ocispec_translate_process(json_object_get(spec, "process"), "process", terminal);
    if (rc == 0)
        rc = translate_root(spec, o->root_path);
    if (rc == 0)
        rc = translate_linux(spec, o->netns_id);
    if (rc == 0)
        rc = find_binds(spec, binds, nbinds);
    if (rc < 0) {
        free(*binds);
        *binds = NULL;
        *nbinds = 0;
        return rc;
    }
    static const char *const dropped[] = {"hooks", "windows", "solaris", "vm"};
    for (size_t i = 0; i < ARRAY_SIZE(dropped); i++)
        json_object_del(spec, dropped[i]);
    return 0;
}

void
ocispec_set_mount_source(json_t *spec, size_t index, const char *source)
{
    json_t *m = json_array_get(json_object_get(spec, "mounts"), index);
    json_object_set_new(m, "source", json_string(source));
}

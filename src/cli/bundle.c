/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"

__attribute__((format(printf, 3, 4))) static int
fail(const char *prog, const char *dir, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: bundle %s: ", prog, dir);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

/* A path of the bundle: absolute as it is, else below DIR (newly allocated). */
static char *
in_bundle(const char *dir, const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char *out = NULL;
    return asprintf(&out, "%s/%s", dir, path) < 0 ? NULL : out;
}

/* Relative sources of bind mounts are the bundle's. */
static int
absolute_binds(json_t *spec, const char *dir)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i, m) {
        const char *src = json_string_value(json_object_get(m, "source"));
        const char *type = json_string_value(json_object_get(m, "type"));
        bool bind = type && !strcmp(type, "bind");
        size_t k;
        json_t *o;
        json_array_foreach(json_object_get(m, "options"), k, o) {
            const char *opt = json_string_value(o);
            bind = bind || (opt && (!strcmp(opt, "bind") || !strcmp(opt, "rbind")));
        }
        if (!bind || !src || src[0] == '/')
            continue;
        char *abs = in_bundle(dir, src);
        if (!abs)
            return -1;
        json_object_set_new(m, "source", json_string(abs));
        free(abs);
    }
    return 0;
}

static int
set_args(json_t *process, char *const *cmd)
{
    if (!cmd || !cmd[0])
        return 0;
    json_t *args = json_array();
    for (size_t i = 0; cmd[i]; i++)
        if (json_array_append_new(args, json_string(cmd[i])) < 0) {
            json_decref(args);
            return -1; /* not UTF-8 */
        }
    json_object_set_new(process, "args", args);
    return 0;
}

int
bundle_load(struct bundle *b, const char *prog, const char *dir, char *const *cmd)
{
    *b = (struct bundle){0};
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return fail(prog, dir, "%s", strerror(errno));
    b->dir = strdup(real);
    char *path = in_bundle(real, "config.json");
    json_error_t jerr = {.text = "out of memory"};
    json_t *spec = path ? json_load_file(path, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    free(path);
    if (!spec)
        return fail(prog, dir, "config.json: %s", jerr.text);
    json_t *root = json_object_get(spec, "root"), *process = json_object_get(spec, "process");
    const char *rootfs = json_string_value(json_object_get(root, "path"));
    int rc = 0;
    if (!rootfs || !json_is_object(process))
        rc = fail(prog, dir, "config.json has no root.path or no process");
    else if (set_args(process, cmd) < 0)
        rc = fail(prog, dir, "COMMAND is not UTF-8");
    else if (!(b->rootfs = in_bundle(real, rootfs)) || absolute_binds(spec, real) < 0)
        rc = fail(prog, dir, "out of memory");
    if (rc == 0) {
        b->rootfs_ro = json_is_true(json_object_get(root, "readonly"));
        b->spec = json_dumps(spec, JSON_COMPACT);
        if (!b->spec)
            rc = fail(prog, dir, "config.json cannot be encoded");
    }
    json_decref(spec);
    return rc;
}

/* The spec with uvmctl's choice of terminal: -t's (of our terminal's size), else pipes
 * whatever config.json says (`crun spec` asks for a terminal). */
static char *
spec_for(const struct bundle *b, const struct bundle_stdio *io)
{
    json_t *spec = json_loads(b->spec, 0, NULL);
    json_t *process = json_object_get(spec, "process");
    json_object_set_new(process, "terminal", json_boolean(io->terminal));
    if (io->terminal && io->rows && io->cols)
        json_object_set_new(process, "consoleSize",
                            json_pack("{s:i, s:i}", "height", io->rows, "width", io->cols));
    char *text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    if (spec)
        json_decref(spec);
    return text;
}

int
bundle_start(struct bundle *b, struct uvm *vm, const struct bundle_stdio *io,
             const char *netns, struct uvm_process **init)
{
    /* a read-only root is shared with cached I/O, as hcsshim's DefaultVSMBOptions(readOnly):
     * virtio-fs then keeps its page cache across opens (docs/containers.md, "Cost") */
    struct uvm_vsmb_options o = {.read_only = b->rootfs_ro, .cache_io = b->rootfs_ro};
    char *guest = NULL, *spec = spec_for(b, io);
    int rc = spec ? uvm_add_vsmb(vm, b->rootfs, NULL, &o) : -ENOMEM;
    if (rc == 0)
        rc = uvm_get_vsmb_uvm_path(vm, b->rootfs, &guest);
    if (rc < 0) {
        free(spec);
        return rc;
    }
    struct uvm_container_config cfg = {.spec_json = spec,
                                       .root_path = guest,
                                       .network_namespace = netns,
                                       .create_stdin = io->stdin,
                                       .create_stdout = !io->terminal,
                                       .create_stderr = !io->terminal};
    rc = uvm_create_container(vm, &cfg, &b->c);
    free(guest);
    free(spec);
    if (rc == 0)
        rc = uvm_container_start(b->c, init);
    return rc;
}

void
bundle_free(struct bundle *b)
{
    uvm_container_close(b->c);
    free(b->dir);
    free(b->rootfs);
    free(b->spec);
    *b = (struct bundle){0};
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cleanup.h"
#include "hash.h"
#include "rtconfig.h"

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* A decimal number in [min, max] from text (no sign, no spaces, at most 10 digits). */
static int
parse_num(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A path without "." or ".." components: what root.path and boot files may be. */
static bool
path_clean(const char *p)
{
    for (const char *c = p; *c;) {
        size_t len = strcspn(c, "/");
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += len;
        while (*c == '/')
            c++;
    }
    return p[0] != '\0';
}

/* memory, cpus and boot files: annotation, else environment, else default. */
static int
vm_settings(json_t *ann, const struct rt_env *env, struct rt_config *out, char *err, size_t errlen)
{
    const char *mem = json_string_value(json_object_get(ann, RT_ANN_MEMORY));
    const char *cpus = json_string_value(json_object_get(ann, RT_ANN_CPUS));
    const char *boot = json_string_value(json_object_get(ann, RT_ANN_BOOT_FILES));
    const char *mem_src = mem ? "annotation " RT_ANN_MEMORY : "UVM_RUNTIME_MEMORY_MB";
    const char *cpus_src = cpus ? "annotation " RT_ANN_CPUS : "UVM_RUNTIME_CPUS";
    const char *boot_src = boot ? "annotation " RT_ANN_BOOT_FILES : "UVM_BOOT_FILES_PATH";
    mem = mem ? mem : env->memory_mb;
    cpus = cpus ? cpus : env->cpus;
    boot = boot ? boot : env->boot_files;
    out->memory_mb = RT_DEFAULT_MEMORY_MB;
    out->cpus = RT_DEFAULT_CPUS;
    if (mem && mem[0] && parse_num(mem, 64, 1u << 20, &out->memory_mb) < 0)
        return FAIL("%s: '%s' is not a memory size in MiB (64..1048576)", mem_src, mem);
    if (cpus && cpus[0] && parse_num(cpus, 1, 128, &out->cpus) < 0)
        return FAIL("%s: '%s' is not a CPU count (1..128)", cpus_src, cpus);
    if (boot && boot[0]) {
        if (boot[0] != '/' || !path_clean(boot) || strlen(boot) > 4095)
            return FAIL("%s: '%s' is not an absolute path without '.' or '..'", boot_src, boot);
        out->boot_files = xstrdup(boot);
    }
    return 0;
}

static int
check_annotations(json_t *ann, char *err, size_t errlen)
{
    if (!ann)
        return 0;
    if (!json_is_object(ann))
        return FAIL("annotations must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(ann, key, v)
    {
        if (!json_is_string(v))
            return FAIL("annotations.%s must be a string", key);
        if (!strncmp(key, "io.libuvm.", 10) && strcmp(key, RT_ANN_MEMORY) &&
            strcmp(key, RT_ANN_CPUS) && strcmp(key, RT_ANN_BOOT_FILES))
            return FAIL("annotation %s is not known (io.libuvm.boot-files, io.libuvm.memory-mb, "
                        "io.libuvm.cpus)",
                        key);
    }
    return 0;
}

/* process.env without a PATH entry gets RT_DEFAULT_PATH first. */
static int
default_path(json_t *process, char *err, size_t errlen)
{
    json_t *env = json_object_get(process, "env");
    if (env && !json_is_array(env))
        return FAIL("process.env must be an array");
    if (!env) {
        env = json_array();
        json_object_set_new(process, "env", env);
    }
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        if (!json_is_string(e))
            return FAIL("process.env[%zu] is not a string", i);
        if (!strncmp(json_string_value(e), "PATH=", 5))
            return 0;
    }
    json_array_insert_new(env, 0, json_string(RT_DEFAULT_PATH));
    return 0;
}

static int
root_settings(json_t *spec, const char *bundle, struct rt_config *out, char *err, size_t errlen)
{
    json_t *root = json_object_get(spec, "root");
    const char *path = json_string_value(json_object_get(root, "path"));
    if (!json_is_object(root) || !path || !path[0])
        return FAIL("root.path is missing: a container needs a root file system");
    if (!path_clean(path) || strlen(path) > 4095)
        return FAIL("root.path '%s' must not have '.' or '..' components", path);
    json_t *ro = json_object_get(root, "readonly");
    if (ro && !json_is_boolean(ro))
        return FAIL("root.readonly must be a boolean");
    out->rootfs_ro = json_is_true(ro);
    out->rootfs = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", bundle, path);
    return 0;
}

int
rtconfig_parse(const char *spec_text, const char *bundle, const struct rt_env *env,
               struct rt_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *spec = json_loads(spec_text, JSON_REJECT_DUPLICATES, &jerr);
    if (!spec)
        return FAIL("config.json is not JSON: %s (line %d)", jerr.text, jerr.line);
    int rc = 0;
    json_t *process = json_object_get(spec, "process");
    json_t *terminal = json_object_get(process, "terminal");
    if (!json_is_object(spec))
        rc = FAIL("config.json must be an object");
    else if (!json_is_object(process))
        rc = FAIL("config.json has no process");
    else if (terminal && !json_is_boolean(terminal))
        rc = FAIL("process.terminal must be a boolean");
    if (rc == 0)
        rc = default_path(process, err, errlen);
    if (rc == 0)
        rc = root_settings(spec, bundle, out, err, errlen);
    json_t *ann = json_object_get(spec, "annotations");
    if (rc == 0)
        rc = check_annotations(ann, err, errlen);
    if (rc == 0)
        rc = vm_settings(ann, env, out, err, errlen);
    out->terminal = json_is_true(terminal);
    if (rc == 0)
        out->spec = json_dumps(spec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (rc == 0 && !out->spec)
        rc = FAIL("config.json cannot be encoded again");
    json_decref(spec);
    if (rc < 0)
        rtconfig_free(out);
    return rc;
}

void
rtconfig_free(struct rt_config *c)
{
    free(c->spec);
    free(c->rootfs);
    free(c->boot_files);
    c->spec = c->rootfs = c->boot_files = NULL;
}

int
rtconfig_process(const char *text, bool *terminal, char **out, char *err, size_t errlen)
{
    *out = NULL;
    json_error_t jerr;
    json_t *p = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!p)
        return FAIL("the process file is not JSON: %s (line %d)", jerr.text, jerr.line);
    json_t *t = json_object_get(p, "terminal");
    int rc = 0;
    if (!json_is_object(p))
        rc = FAIL("the process file must hold an object");
    else if (t && !json_is_boolean(t))
        rc = FAIL("process.terminal must be a boolean");
    else
        rc = default_path(p, err, errlen);
    *terminal = json_is_true(t);
    if (rc == 0 && !(*out = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        rc = FAIL("the process cannot be encoded again");
    json_decref(p);
    return rc;
}

void
rtconfig_vm_id(const char *root, const char *id, char out[64])
{
    /* over root, its NUL, id */
    uint64_t h = fnv1a64(fnv1a64(FNV1A64_INIT, root, strlen(root) + 1), id, strlen(id));
    size_t n = 0;
    for (; id[n] && n < 40; n++) {
        char c = id[n];
        out[n] = (isalnum((unsigned char)c) || c == '_' || c == '-' || (c == '.' && n > 0)) ? c
                                                                                            : '_';
    }
    snprintf(out + n, 64 - n, "-%016" PRIx64, h);
}

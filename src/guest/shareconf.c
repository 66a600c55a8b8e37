/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <string.h>

#include "cleanup.h"
#include "mountpath.h"
#include "plan9.h" /* PLAN9_ROOT */
#include "shareconf.h"

int
share_string(struct request *req, json_t *settings, const char *key, bool required,
             const char **out)
{
    const char *s = NULL;
    int rc = req_string(req, settings, key, required, &s);
    if (rc < 0 || !s)
        return rc;
    if (strlen(s) > SHARE_FIELD_MAX) /* no NUL inside: the parser rejects \u0000 */
        return request_fail(req, "invalid request: field \"%s\" is longer than %d bytes", key,
                            SHARE_FIELD_MAX);
    *out = s;
    return 0;
}

int
share_mount_path(struct request *req, json_t *settings, const char **out)
{
    int rc = share_string(req, settings, "MountPath", true, out);
    if (rc == 0 && !**out)
        rc = request_fail(req, "invalid request: field \"MountPath\" is empty");
    return rc < 0 ? rc : mount_check_path(req, "MountPath", *out);
}

/* ^s[0-9a-f]{1,16}$ */
static bool
share_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > SHARE_NAME_MAX || s[0] != 's')
        return false;
    for (const char *c = s + 1; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/* The mount path must not be the export or inside it (the bind would create folders on the
 * host). */
static bool
inside_export(const char *path)
{
    size_t n = strlen(PLAN9_ROOT);
    return !strncmp(path, PLAN9_ROOT, n) && (path[n] == '\0' || path[n] == '/');
}

int
plan9_conf_parse(struct request *req, enum modify_request_type type, json_t *settings,
                 struct plan9_conf *c)
{
    if (type != MODIFY_ADD && type != MODIFY_REMOVE)
        return request_fail(req, "MappedDirectory: the request type \"Update\" is not supported");
    if (!settings)
        return request_fail(req, "invalid request: missing field \"Settings\"");
    const char *path = NULL, *name = NULL;
    uint64_t port = 0;
    bool read_only = false;
    int rc = share_mount_path(req, settings, &path);
    if (rc == 0)
        rc = share_string(req, settings, "ShareName", true, &name);
    if (rc == 0) /* hcsshim's vsock port of the share's server: checked, not used */
        rc = req_uint(req, settings, "Port", false, 0, UINT32_MAX, &port);
    if (rc == 0)
        rc = req_bool(req, settings, "ReadOnly", false, &read_only);
    if (rc < 0)
        return rc;
    if (!share_name_valid(name))
        return request_fail(req, "invalid request: field \"ShareName\": \"%s\" is not a share "
                                 "name (s and 1 to 16 of [0-9a-f])",
                            name);
    if (inside_export(path))
        return request_fail(req, "invalid request: field \"MountPath\": \"%s\" is inside the "
                                 "Plan9 export " PLAN9_ROOT,
                            path);
    *c = (struct plan9_conf){.name = name, .path = path, .read_only = read_only};
    return 0;
}

/* 1 to 36 of [A-Za-z0-9._-] */
static bool
tag_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VIRTIOFS_TAG_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

/* "" or comma-separated "key" / "key=value" of [a-z0-9_]; not "source" (the tag is). */
static int
check_options(struct request *req, const char *options)
{
    size_t n = strlen(options);
    if (n > VIRTIOFS_OPTIONS_MAX)
        return request_fail(req, "invalid request: field \"Options\" is longer than %d bytes",
                            VIRTIOFS_OPTIONS_MAX);
    if (strspn(options, "abcdefghijklmnopqrstuvwxyz0123456789_=,") != n)
        return request_fail(req, "invalid request: field \"Options\": \"%s\" has characters "
                                 "other than [a-z0-9_=,]",
                            options);
    cleanup_free char *copy = xstrdup(options);
    char *rest = n ? copy : NULL, *item;
    while ((item = strsep(&rest, ","))) { /* keeps empty items: "a,,b" and "a," fail */
        char *eq = strchr(item, '=');
        if (!*item || eq == item || (eq && (!eq[1] || strchr(eq + 1, '='))))
            return request_fail(req, "invalid request: field \"Options\": \"%s\" is not a "
                                     "comma-separated list of key or key=value",
                                options);
        if (eq)
            *eq = '\0';
        if (!strcmp(item, "source"))
            return request_fail(req, "invalid request: field \"Options\": \"source\" is not "
                                     "allowed (the tag is the source)");
    }
    return 0;
}

int
virtiofs_conf_parse(struct request *req, enum modify_request_type type, json_t *settings,
                    struct virtiofs_conf *c)
{
    if (type != MODIFY_ADD && type != MODIFY_REMOVE)
        return request_fail(req, "VirtioFs: the request type \"Update\" is not supported");
    if (!settings)
        return request_fail(req, "invalid request: missing field \"Settings\"");
    const char *tag = NULL, *path = NULL, *options = "";
    bool read_only = false, lazy = false;
    int rc = share_string(req, settings, "Tag", true, &tag);
    if (rc == 0)
        rc = share_mount_path(req, settings, &path);
    if (rc == 0)
        rc = req_bool(req, settings, "ReadOnly", false, &read_only);
    if (rc == 0)
        rc = share_string(req, settings, "Options", false, &options);
    if (rc == 0) /* Remove: the host saw the share's virtiofsd die */
        rc = req_bool(req, settings, "Lazy", false, &lazy);
    if (rc < 0)
        return rc;
    if (!tag_valid(tag))
        return request_fail(req, "invalid request: field \"Tag\": \"%s\" is not a virtio-fs "
                                 "tag (1 to %d of [A-Za-z0-9._-])",
                            tag, VIRTIOFS_TAG_MAX);
    rc = check_options(req, options);
    if (rc < 0)
        return rc;
    *c = (struct virtiofs_conf){
        .tag = tag, .path = path, .options = options, .read_only = read_only, .lazy = lazy};
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "layercheck.h"

bool
layers_path_ok(const char *path, const char **why)
{
    size_t n = strlen(path);
    if (n == 0 || path[0] != '/')
        return *why = "not an absolute path", false;
    if (n >= LAYERS_PATH_MAX)
        return *why = "too long", false;
    if (n == 1 || path[n - 1] == '/')
        return *why = "is / or ends with /", false;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ':' || *p == ',' || *p == '\\')
            return *why = "has a ':', ',', '\\' or control character", false;
    for (const char *c = path + 1; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL) {
        size_t len = strcspn(c, "/");
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && !strncmp(c, "..", 2)))
            return *why = "has an empty, '.' or '..' component", false;
    }
    return true;
}

static int
check(const char *field, const char *path, char *err, size_t errlen)
{
    const char *why = NULL;
    if (layers_path_ok(path, &why))
        return 0;
    snprintf(err, errlen, "field \"%s\": \"%.64s\" %s", field, path, why);
    return -1;
}

int
layers_options(const char *root, const char *const *layers, size_t n, const char *scratch,
               char *out, size_t outlen, char *err, size_t errlen)
{
    if (n == 0 || n > LAYERS_MAX) {
        snprintf(err, errlen, "field \"Layers\": %zu layers (1 to %d)", n, LAYERS_MAX);
        return -1;
    }
    if (check("ContainerRootPath", root, err, errlen) < 0)
        return -1;
    if (scratch && *scratch && check("ScratchPath", scratch, err, errlen) < 0)
        return -1;
    size_t len = (size_t)snprintf(out, outlen, "lowerdir=");
    for (size_t i = 0; i < n; i++) {
        char field[32];
        snprintf(field, sizeof(field), "Layers[%zu].Path", i);
        if (check(field, layers[i], err, errlen) < 0)
            return -1;
        if (len < outlen)
            len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? ":" : "", layers[i]);
    }
    if (scratch && *scratch && len < outlen)
        len += (size_t)snprintf(out + len, outlen - len, ",upperdir=%s/upper,workdir=%s/work",
                                scratch, scratch);
    if (len >= outlen || len > LAYERS_OPTIONS_MAX) {
        snprintf(err, errlen, "field \"Layers\": the overlay options are longer than %d bytes",
                 LAYERS_OPTIONS_MAX);
        return -1;
    }
    return 0;
}

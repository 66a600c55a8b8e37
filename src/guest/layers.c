/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "layercheck.h"
#include "layers.h"
#include "log.h"
#include "mount.h"

/* <scratch>/upper and <scratch>/work (0755; existing ones are fine: a re-added scratch). */
static int
scratch_dirs(struct request *req, const char *scratch)
{
    static const char *const sub[] = {"upper", "work"};
    for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
        char dir[LAYERS_PATH_MAX + 8];
        snprintf(dir, sizeof(dir), "%s/%s", scratch, sub[i]);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return request_fail(req, "CombinedLayers: mkdir %s: %s", dir, strerror(errno));
    }
    return 0;
}

/* One read-only layer: overlay needs two lower layers without an upper, so a read-only bind. */
static int
mount_one(const char *layer, const char *root)
{
    if (mount(layer, root, NULL, MS_BIND, NULL) < 0)
        return -errno;
    if (mount(NULL, root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
        int err = errno;
        umount2(root, MNT_DETACH);
        return -err;
    }
    return 0;
}

static int
layers_add(struct request *req, const char *root, const char *const *layers, size_t n,
           const char *scratch, const char *options)
{
    bool rw = scratch && *scratch;
    if (rw && scratch_dirs(req, scratch) < 0)
        return -EINVAL;
    struct mount_created made;
    int rc = mount_mkdir(req, root, &made);
    if (rc < 0)
        return rc;
    if (!rw && n == 1)
        rc = mount_one(layers[0], root);
    else if (mount("overlay", root, "overlay", rw ? 0 : MS_RDONLY, options) < 0)
        rc = -errno;
    if (rc < 0) {
        request_fail(req, "CombinedLayers: mount overlay on %s (%s): %s", root, options,
                     strerror(-rc));
        mount_mkdir_undo(&made);
        return rc;
    }
    log_info("CombinedLayers: %s: %zu layer(s)%s%s", root, n, rw ? ", scratch " : " read-only",
             rw ? scratch : "");
    return 0;
}

/* Layers[i].Path into paths (borrowed from settings). */
static int
layer_paths(struct request *req, json_t *settings, const char **paths, size_t *n)
{
    json_t *arr = json_object_get(settings, "Layers");
    if (!json_is_array(arr))
        return request_fail(req, "invalid request: field \"Layers\" must be an array");
    if (json_array_size(arr) > LAYERS_MAX)
        return request_fail(req, "invalid request: field \"Layers\": %zu layers (at most %d)",
                            json_array_size(arr), LAYERS_MAX);
    *n = json_array_size(arr);
    for (size_t i = 0; i < *n; i++) {
        json_t *l = json_array_get(arr, i);
        const char *p = json_string_value(json_object_get(l, "Path"));
        if (!json_is_object(l) || !p)
            return request_fail(req, "invalid request: field \"Layers[%zu].Path\" must be a "
                                     "string",
                                i);
        paths[i] = p;
    }
    return 0;
}

int
layers_modify(struct bridge *b, struct request *req, enum modify_request_type type,
              json_t *settings)
{
    (void)b;
    if (type != MODIFY_ADD && type != MODIFY_REMOVE)
        return request_fail(req, "CombinedLayers: the request type \"Update\" is not supported");
    if (!settings)
        return request_fail(req, "invalid request: missing field \"Settings\"");
    const char *root = NULL, *scratch = "";
    int rc = req_string(req, settings, "ContainerRootPath", true, &root);
    if (rc == 0)
        rc = req_string(req, settings, "ScratchPath", false, &scratch);
    if (rc < 0)
        return rc;
    if (type == MODIFY_REMOVE) {
        const char *why = NULL;
        if (!layers_path_ok(root, &why))
            return request_fail(req, "invalid request: field \"ContainerRootPath\": %s", why);
        return mount_remove(req, root);
    }
    const char *paths[LAYERS_MAX];
    size_t n = 0;
    rc = layer_paths(req, settings, paths, &n);
    if (rc < 0)
        return rc;
    char options[LAYERS_OPTIONS_MAX + 1], err[160];
    if (layers_options(root, paths, n, scratch, options, sizeof(options), err, sizeof(err)) < 0)
        return request_fail(req, "invalid request: %s", err);
    return layers_add(req, root, paths, n, scratch, options);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CombinedLayers: the pure checks of a request's paths and the overlay options built from them
 * (no I/O, unit tested). */
#ifndef GCS_LAYERCHECK_H
#define GCS_LAYERCHECK_H

#include <stdbool.h>
#include <stddef.h>

#define LAYERS_MAX 32         /* layers of one overlay */
#define LAYERS_PATH_MAX 256   /* bytes of one path */
#define LAYERS_OPTIONS_MAX 4000 /* the mount data the kernel takes is one page */

/* A path from the host: absolute, normalised (no empty, "." or ".." components, no trailing
 * '/', not "/"), shorter than LAYERS_PATH_MAX, and without ':' ',' '\\' (overlay's separators)
 * or control characters. false with why (a short reason) otherwise. */
bool layers_path_ok(const char *path, const char **why);

/* The overlay mount options: "lowerdir=<l0>:<l1>..." plus, with a scratch,
 * ",upperdir=<scratch>/upper,workdir=<scratch>/work". Checks every path (field names the
 * culprit: "ContainerRootPath", "Layers[i].Path", "ScratchPath") and the count (1..LAYERS_MAX).
 * Returns 0, or -1 with err (size errlen) saying which field and why. */
int layers_options(const char *root, const char *const *layers, size_t n, const char *scratch,
                   char *out, size_t outlen, char *err, size_t errlen);

#endif

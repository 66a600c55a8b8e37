/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Mount paths from the host, checked (pure: no I/O; mount.h mounts). */
#ifndef GCS_MOUNTPATH_H
#define GCS_MOUNTPATH_H

#include "request.h"

/* Validate a mount path from the host: "" (none) or a normalised absolute path (no empty, "."
 * or ".." components, not "/", shorter than PATH_MAX). 0, or -EINVAL with req->error naming
 * field. */
int mount_check_path(struct request *req, const char *field, const char *path);

#endif

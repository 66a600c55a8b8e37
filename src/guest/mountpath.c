/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <string.h>

#include "mountpath.h"

int
mount_check_path(struct request *req, const char *field, const char *path)
{
    if (!*path)
        return 0;
    if (path[0] != '/')
        return request_fail(req, "invalid request: field \"%s\" = \"%s\" is not an absolute path",
                            field, path);
    if (strlen(path) >= PATH_MAX)
        return request_fail(req, "invalid request: field \"%s\" is too long", field);
    /* "/a/b": no empty, "." or ".." components (nor "/" itself). */
    for (const char *c = path; *c;) {
        size_t n = strcspn(++c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return request_fail(req,
                                "invalid request: field \"%s\" = \"%s\" is not a normalised "
                                "absolute path",
                                field, path);
        c += n;
    }
    return 0;
}

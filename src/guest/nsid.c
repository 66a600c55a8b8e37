/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "nsid.h"

bool
netns_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > NETNS_ID_MAX || id[0] == '.')
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

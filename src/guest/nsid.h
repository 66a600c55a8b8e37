/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network namespace ids as the host sends them (pure: no I/O; netns.h has the namespaces). */
#ifndef GCS_NSID_H
#define GCS_NSID_H

#include <stdbool.h>

#define NETNS_ID_MAX 64

/* [A-Za-z0-9._-]{1,64}, not starting with '.': a file name under /run/netns, never a path. */
bool netns_id_valid(const char *id);

#endif

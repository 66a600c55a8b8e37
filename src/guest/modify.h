/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ModifySettings: hcsshim's GuestRequest {"Request":{"ResourceType","RequestType","Settings"}},
 * dispatched through a table keyed by ResourceType. Requests for a supported type wait until
 * the late kernel modules are loaded (their drivers live there).
 */
#ifndef GCS_MODIFY_H
#define GCS_MODIFY_H

#include <stdbool.h>

#include "bridge.h"
#include "modifyreq.h"

/* A resource handler follows the bridge handler convention (0, <0 with req->error, or
 * BRIDGE_DEFERRED keeping req). settings may be NULL. */
typedef int modify_fn(struct bridge *b, struct request *req, enum modify_request_type type,
                      json_t *settings);

struct modify_handler {
    const char *resource_type;
    modify_fn *fn;
};

bridge_handler_fn modify_handle;

/* The late modules are loaded: run the requests that waited for them. */
void modify_late_ready(struct bridge *b);
/* Requests are waiting for the late modules. */
bool modify_pending(void);

#endif

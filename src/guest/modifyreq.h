/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The envelope of a ModifySettings request, decoded and checked (pure: no I/O; modify.c
 * dispatches it): {"Request":{"ResourceType":<string>, "RequestType":"Add"|"Remove"|"Update",
 * "Settings":<object, null or absent>}}.
 */
#ifndef GCS_MODIFYREQ_H
#define GCS_MODIFYREQ_H

#include <jansson.h>

#include "request.h"

enum modify_request_type { MODIFY_ADD, MODIFY_REMOVE, MODIFY_UPDATE };

struct modify_request {
    const char *resource_type; /* borrowed from the body; not checked against any table */
    enum modify_request_type type;
    json_t *settings; /* borrowed; NULL when absent or null */
};

/* Decode req->body. 0, or -EINVAL with req->error naming the field. */
int modify_request_decode(struct request *req, struct modify_request *out);

/* "Add", "Remove", "Update". */
const char *modify_request_type_name(enum modify_request_type type);

#endif

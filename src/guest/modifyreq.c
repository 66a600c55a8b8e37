/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "cleanup.h"
#include "modifyreq.h"

static const char *const request_types[] = {
    [MODIFY_ADD] = "Add",
    [MODIFY_REMOVE] = "Remove",
    [MODIFY_UPDATE] = "Update",
};

const char *
modify_request_type_name(enum modify_request_type type)
{
    return request_types[type];
}

int
modify_request_decode(struct request *req, struct modify_request *out)
{
    json_t *r = NULL;
    const char *resource = NULL, *type = NULL;
    int rc = req_object(req, req->body, "Request", true, &r);
    if (rc == 0)
        rc = req_string(req, r, "ResourceType", true, &resource);
    type = "Add"; /* hcsshim: an empty RequestType is an Add */
    if (rc == 0)
        rc = req_string(req, r, "RequestType", false, &type);
    if (rc < 0)
        return rc;
    out->resource_type = resource;
    out->settings = json_object_get(r, "Settings");
    if (out->settings && json_is_null(out->settings))
        out->settings = NULL;
    if (out->settings && !json_is_object(out->settings))
        return request_fail(req, "invalid request: field \"Settings\" must be an object");
    unsigned i;
    for (i = 0; i < ARRAY_SIZE(request_types); i++)
        if (!strcmp(type, request_types[i]))
            break;
    if (i == ARRAY_SIZE(request_types))
        return request_fail(req, "the request type \"%s\" is not supported", type);
    out->type = (enum modify_request_type)i;
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetProperties: {"Query":{"PropertyTypes":[...]}} -> {"Properties":{<type>: ...}}. */
#include <string.h>

#include "container.h"
#include "process.h"
#include "properties.h"

int
properties_handle_get(struct bridge *b, struct request *req)
{
    json_t *query = NULL, *props = json_object();
    req->result = json_pack("{s:o}", "Properties", props);
    int rc = req_object(req, req->body, "Query", false, &query);
    if (rc < 0 || !query)
        return rc;
    json_t *types = json_object_get(query, "PropertyTypes");
    if (types && !json_is_array(types))
        return request_fail(req, "invalid request: \"PropertyTypes\" must be an array");
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t) {
        if (!json_is_string(t))
            return request_fail(req, "invalid request: \"PropertyTypes\"[%zu] is not a string",
                                i);
        const char *name = json_string_value(t);
        if (!strcmp(name, "ProcessList"))
            json_object_set_new(props, "ProcessList", process_list());
        else if (!strcmp(name, "ContainerList"))
            json_object_set_new(props, "ContainerList", container_list());
        else
            return request_fail(req, "the property type \"%s\" is not supported", name);
    }
    return 0;
}


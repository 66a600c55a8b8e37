/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "proto.h"
#include "request.h"

struct request *
request_new(uint32_t type, uint64_t id)
{
    struct request *req = xcalloc(1, sizeof(*req));
    req->type = type;
    req->id = id;
    return req;
}

void
request_free(struct request *req)
{
    if (!req)
        return;
    free(req->activity_id);
    free(req->container_id);
    if (req->body)
        json_decref(req->body);
    if (req->result)
        json_decref(req->result);
    free(req->error);
    free(req);
}

int
request_fail(struct request *req, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0)
        msg = xstrdup("out of memory formatting an error");
    free(req->error);
    req->error = msg;
    return -EINVAL;
}

int
request_parse(struct request *req, const uint8_t *payload, size_t len)
{
    json_error_t jerr;
    req->activity_id = xstrdup("");
    json_t *body = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return request_fail(req, "invalid request JSON: %s (at byte %d)", jerr.text,
                            jerr.position);
    req->body = body;
    if (!json_is_object(body))
        return request_fail(req, "invalid request: the payload is not a JSON object");
    const char *activity = NULL, *container = NULL;
    int rc = req_string(req, body, "ActivityId", false, &activity);
    if (rc < 0)
        return rc;
    if (activity) {
        free(req->activity_id);
        req->activity_id = xstrdup(activity);
    }
    rc = req_string(req, body, "ContainerId", false, &container);
    if (rc == 0 && container && strcmp(container, PROTO_NULL_CONTAINER) != 0)
        req->container_id = xstrdup(container);
    return rc;
}

static json_t *
lookup(struct request *req, json_t *obj, const char *key, bool required, int *rc)
{
    json_t *v = json_object_get(obj, key);
    *rc = 0;
    if (!v && required)
        *rc = request_fail(req, "invalid request: missing field \"%s\"", key);
    return v;
}

int
req_object(struct request *req, json_t *obj, const char *key, bool required, json_t **out)
{
    int rc;
    json_t *v = lookup(req, obj, key, required, &rc);
    if (!v)
        return rc;
    if (!json_is_object(v))
        return request_fail(req, "invalid request: field \"%s\" must be an object", key);
    *out = v;
    return 0;
}

int
req_string(struct request *req, json_t *obj, const char *key, bool required, const char **out)
{
    int rc;
    json_t *v = lookup(req, obj, key, required, &rc);
    if (!v)
        return rc;
    if (!json_is_string(v))
        return request_fail(req, "invalid request: field \"%s\" must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int
req_bool(struct request *req, json_t *obj, const char *key, bool required, bool *out)
{
    int rc;
    json_t *v = lookup(req, obj, key, required, &rc);
    if (!v)
        return rc;
    if (!json_is_boolean(v))
        return request_fail(req, "invalid request: field \"%s\" must be a boolean", key);
    *out = json_is_true(v);
    return 0;
}

int
req_uint(struct request *req, json_t *obj, const char *key, bool required, uint64_t min,
         uint64_t max, uint64_t *out)
{
    int rc;
    json_t *v = lookup(req, obj, key, required, &rc);
    if (!v)
        return rc;
    if (!json_is_integer(v))
        return request_fail(req, "invalid request: field \"%s\" must be an integer", key);
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
        return request_fail(req,
                            "invalid request: field \"%s\" = %lld is out of range [%llu, %llu]",
                            key, (long long)i, (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)i;
    return 0;
}

static json_t *
error_json(const char *activity, const char *msg)
{
    return json_pack("{s:i, s:s, s:s, s:[{s:i, s:s}]}", "Result", (int)PROTO_E_FAIL,
                     "ActivityId", activity, "ErrorMessage", msg, "ErrorRecords", "Result",
                     (int)PROTO_E_FAIL, "Message", msg);
}

char *
request_response_json(struct request *req, size_t *len)
{
    const char *activity = req->activity_id ? req->activity_id : "";
    json_t *resp;
    if (req->error) {
        resp = error_json(activity, req->error);
        if (!resp) /* a message that is not valid UTF-8 */
            resp = error_json(activity, "request failed (unprintable error message)");
    } else {
        resp = req->result ? json_incref(req->result) : json_object();
        json_object_set_new(resp, "Result", json_integer(0));
        json_object_set_new(resp, "ActivityId", json_string(activity));
    }
    if (!resp)
        return NULL;
    char *out = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    if (out)
        *len = strlen(out);
    return out;
}

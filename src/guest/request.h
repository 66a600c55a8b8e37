/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One host request: its envelope (type, id, ActivityId), its parsed JSON body and, once
 * handled, its result or error. Field accessors validate JSON types strictly and record a
 * one-sentence error naming the field on the request.
 */
#ifndef GCS_REQUEST_H
#define GCS_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct request {
    uint32_t type;
    uint64_t id;
    char *activity_id; /* echoed in the response ("" when absent) */
    char *container_id; /* "ContainerId" unless absent or the UVM's own (null GUID): NULL */
    json_t *body;      /* the request object */
    json_t *result;    /* success payload (NULL: empty object) */
    char *error;       /* failure message (set by request_fail) */
};

/* Parse a request payload: the JSON object, "ActivityId" and "ContainerId" (strings when
 * present; a ContainerId other than PROTO_NULL_CONTAINER names a container). On failure returns -EINVAL with req->error set; the request still has its id. */
struct request *request_new(uint32_t type, uint64_t id);
int request_parse(struct request *req, const uint8_t *payload, size_t len);
void request_free(struct request *req);

/* Record the failure message (replacing any) and return -EINVAL. */
int request_fail(struct request *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Typed accessors of obj[key]. When the key is absent: required -> error, otherwise 0 with
 * *out untouched (so callers set defaults first). Wrong type or range -> error. */
int req_object(struct request *req, json_t *obj, const char *key, bool required, json_t **out);
int req_string(struct request *req, json_t *obj, const char *key, bool required,
               const char **out);
int req_bool(struct request *req, json_t *obj, const char *key, bool required, bool *out);
int req_uint(struct request *req, json_t *obj, const char *key, bool required, uint64_t min,
             uint64_t max, uint64_t *out);

/* The response JSON: result + Result/ActivityId, or the error shape. Caller frees. */
char *request_response_json(struct request *req, size_t *len);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One decoded uvm_modify request (hcsshim's ModifySettingRequest), as the resource kinds' modify
 * handlers see it, and the helpers they decode Settings with. Every error names the field:
 * UVM_E_INVALID_ARGUMENT for a missing or mistyped one, UVM_E_NOT_SUPPORTED for a value we do
 * not implement.
 */
#ifndef UVM_LIB_MODREQ_H
#define UVM_LIB_MODREQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "bridge.h"

#define MODREQ_MAX_NUMBERS 2

struct modify_req {
    const char *id;       /* the VM's, for messages */
    const char *path;     /* ResourcePath */
    bool add;             /* RequestType Add (else Remove) */
    json_t *settings;     /* borrowed; NULL when absent */
    struct guest_part guest;
    unsigned long long num[MODREQ_MAX_NUMBERS]; /* the path's {n} segments */
    const char *name;     /* the path's {id} segment (points into path_copy) */
    char path_copy[256];
};

/* Settings.<key>: absent -> required ? error : 0 with *out untouched. */
int modreq_string(const struct modify_req *r, const char *key, bool required, const char **out);
int modreq_bool(const struct modify_req *r, const char *key, bool *out);
int modreq_uint(const struct modify_req *r, const char *key, bool required, json_int_t min,
                json_int_t max, uint64_t *out);
/* An Add needs Settings. */
int modreq_need_settings(const struct modify_req *r);
/* GuestRequest.Settings.<key> when the GuestRequest is of resource type `type`, else NULL. */
const char *modreq_guest_setting(const struct modify_req *r, const char *type, const char *key);
/* Prefix a kind's error with the request it came from (its message names the value). */
int modreq_wrap(const struct modify_req *r, int rc);
/* The path's number k is below `limit`, else an error naming it. */
int modreq_check_number(const struct modify_req *r, unsigned k, unsigned long long limit,
                        const char *field);
/* A share name (a virtio-fs tag, part of QEMU ids): 1 to 20 of [A-Za-z0-9_-]. */
bool modreq_name_ok(const char *s);
/* "00-15-5D-0A-0B-0C" or "00:15:5d:0a:0b:0c" -> "00:15:5d:0a:0b:0c"; -1 when not a MAC. */
int modreq_mac_normalize(const char *in, char out[18]);

#endif

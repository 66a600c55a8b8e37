/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uvm_modify: hcsshim's ModifySettingRequest {ResourcePath, RequestType, Settings, GuestRequest}
 * (v0.7.13 field names). A ResourcePath is matched against the modify_path of every resource
 * kind (kinds.h: pattern -> handler, the kvmtool way); the kind's handler decodes Settings
 * (modreq.h) and calls the same internal entry point as the typed call (scsi_add, vpmem_add,
 * plan9_add, vsmb_add and their removes; a NIC for NetworkAdapters), which
 * keeps the bookkeeping and applies hcsshim's order: Add = host, then the GuestRequest, the host
 * part undone when the guest fails; Remove = the GuestRequest, then the host. Without a
 * ResourcePath the GuestRequest goes straight to the agent. Everything is decoded before
 * anything is touched; a malformed request fails UVM_E_INVALID_ARGUMENT naming the field, an
 * unknown ResourcePath or setting value UVM_E_NOT_SUPPORTED.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "kinds.h"
#include "modify.h"
#include "modreq.h"
#include "res.h"
#include "timeutil.h"

/* --- decoding (pure) -------------------------------------------------------------------------- */

/* Match path against pattern segment by segment: literal segments exactly, {n} and {id} any
 * non-empty segment; *segs gets the placeholder segments (pointers into buf, a copy of path). */
static bool
path_match(const char *pattern, const char *path, char *buf, size_t size, const char **segs,
           bool *is_id)
{
    if (strlen(path) >= size)
        return false;
    strcpy(buf, path);
    const char *p = pattern;
    char *s = buf;
    unsigned k = 0;
    for (;;) {
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (slen == 0)
            return false;
        bool hole = (plen == 3 && !strncmp(p, "{n}", 3)) || (plen == 4 && !strncmp(p, "{id}", 4));
        if (hole) {
            is_id[k] = plen == 4;
            segs[k++] = s;
        } else if (plen != slen || strncmp(p, s, plen)) {
            return false;
        }
        bool p_end = p[plen] == '\0', s_end = s[slen] == '\0';
        if (p_end || s_end)
            return p_end && s_end;
        s[slen] = '\0'; /* terminates the placeholder copied out above (or a literal) */
        p += plen + 1;
        s += slen + 1;
    }
}

/* A decimal number segment: digits only, at most 9 of them. */
static bool
parse_number(const char *s, unsigned long long *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    *out = strtoull(s, NULL, 10);
    return true;
}

/* The placeholders of a matched path into r->num / r->name. */
static int
fill_holes(struct modify_req *r, const struct kind_entry *k, const char **segs, const bool *is_id)
{
    unsigned n = 0;
    for (unsigned j = 0; segs[j]; j++) {
        if (is_id[j]) {
            r->name = segs[j];
            continue;
        }
        if (!parse_number(segs[j], &r->num[n++]))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "modify '%s': ResourcePath '%s': the %s '%s' is not a number", r->id,
                             r->path, k->modify_fields[j], segs[j]);
    }
    return 0;
}

/* The kind whose modify_path r->path matches, r->num / r->name filled. NULL with the error set. */
static const struct kind_entry *
route(struct modify_req *r, int *rc)
{
    for (size_t i = 0; uvm_kinds[i].kind; i++) {
        const struct kind_entry *k = &uvm_kinds[i];
        const char *segs[MODREQ_MAX_NUMBERS + 2] = {0};
        bool is_id[MODREQ_MAX_NUMBERS + 2] = {0};
        if (!k->modify_path ||
            !path_match(k->modify_path, r->path, r->path_copy, sizeof(r->path_copy), segs, is_id))
            continue;
        *rc = fill_holes(r, k, segs, is_id);
        return *rc < 0 ? NULL : k;
    }
    *rc = uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s': ResourcePath '%s' is not supported",
                    r->id, r->path);
    return NULL;
}

/* --- the request -------------------------------------------------------------------------- */

static int
guest_modify(struct uvm *vm, json_t *guest_request)
{
    pthread_mutex_lock(&vm->lock);
    int rc = uvm_check_running(vm, "modify");
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);
    if (rc < 0)
        return rc;
    rc = bridge_modify(b, guest_request, BRIDGE_DEADLINE_CALL);
    if (rc < 0)
        return uvm_error_wrap(rc, "modify '%s'", vm->cfg.id);
    return 0;
}

/* Every top-level field is one of hcsshim's. */
static int
check_fields(const char *id, json_t *req)
{
    static const char *const known[] = {"ResourcePath", "RequestType", "Settings",
                                        "GuestRequest"};
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v) {
        size_t i = 0;
        while (i < ARRAY_SIZE(known) && strcmp(known[i], key))
            i++;
        if (i == ARRAY_SIZE(known))
            return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': unknown field '%s'", id, key);
    }
    return 0;
}

/* The top level's fields and types; RequestType absent means Add. */
static int
decode(const char *id, json_t *req, struct modify_req *r, const char **path)
{
    int rc = check_fields(id, req);
    if (rc < 0)
        return rc;
    json_t *p = json_object_get(req, "ResourcePath");
    json_t *type = json_object_get(req, "RequestType");
    json_t *settings = json_object_get(req, "Settings");
    json_t *guest = json_object_get(req, "GuestRequest");
    if (p && !json_is_string(p))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': ResourcePath must be a string", id);
    if (type && !json_is_string(type))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': RequestType must be a string", id);
    if (settings && !json_is_null(settings) && !json_is_object(settings))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': Settings must be an object", id);
    if (guest && !json_is_object(guest))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': GuestRequest must be an object", id);
    /* A guest-only request is the agent's to check (after the VM's state): it names the field. */
    if (p && guest && !json_is_string(json_object_get(guest, "ResourceType")))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': GuestRequest.ResourceType must be a string", id);
    const char *t = type ? json_string_value(type) : "Add";
    if (p && strcmp(t, "Add") && strcmp(t, "Remove"))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': RequestType '%s' is not Add or Remove", id, t);
    r->id = id;
    r->add = !strcmp(t, "Add");
    r->settings = json_is_object(settings) ? settings : NULL;
    r->guest.custom = true;
    r->guest.request = guest;
    *path = p ? json_string_value(p) : NULL;
    return 0;
}

/* Parse and decode; *req the parsed request (owned). */
static int
parse(const char *vm_id, const char *json, json_t **req, struct modify_req *r, const char **path)
{
    json_error_t err;
    *req = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(*req))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': request is not a JSON object%s%s",
                         vm_id, *req ? "" : ": ", *req ? "" : err.text);
    return decode(vm_id, *req, r, path);
}

int
modify_route(const char *vm_id, const char *json, const char **handler_pattern)
{
    *handler_pattern = NULL;
    cleanup_json json_t *req = NULL;
    struct modify_req r = {0};
    const char *path = NULL;
    int rc = parse(vm_id, json, &req, &r, &path);
    if (rc < 0 || !path)
        return rc;
    r.path = path;
    const struct kind_entry *k = route(&r, &rc);
    *handler_pattern = k ? k->modify_path : NULL;
    return rc;
}

static int
do_modify(struct uvm *vm, const char *modify_request_json)
{
    cleanup_json json_t *req = NULL;
    struct modify_req r = {0};
    const char *path = NULL;
    int rc = parse(vm->cfg.id, modify_request_json, &req, &r, &path);
    if (rc < 0)
        return rc;
    if (!path && !r.guest.request)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': the request has neither ResourcePath nor GuestRequest",
                         vm->cfg.id);
    if (!path)
        return guest_modify(vm, r.guest.request);
    r.path = path;
    const struct kind_entry *k = route(&r, &rc);
    return k ? k->modify(vm, &r) : rc;
}

int
uvm_modify(struct uvm *vm, const char *modify_request_json)
{
    if (!vm || !modify_request_json)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify: NULL argument");
    return UVM_CALL(vm, "modify", do_modify(vm, modify_request_json));
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decoding a uvm_modify request's Settings (modreq.h). */
#include <ctype.h>
#include <string.h>

#include "error.h"
#include "modreq.h"

static json_t *
setting(const struct modify_req *r, const char *key)
{
    return r->settings ? json_object_get(r->settings, key) : NULL;
}

static int
bad(const struct modify_req *r, const char *key, const char *why)
{
    return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.%s %s", r->id, r->path,
                     key, why);
}

int
modreq_string(const struct modify_req *r, const char *key, bool required, const char **out)
{
    json_t *v = setting(r, key);
    if (!v)
        return required ? bad(r, key, "is missing") : 0;
    if (!json_is_string(v))
        return bad(r, key, "must be a string");
    *out = json_string_value(v);
    return 0;
}

int
modreq_bool(const struct modify_req *r, const char *key, bool *out)
{
    json_t *v = setting(r, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return bad(r, key, "must be a boolean");
    *out = json_is_true(v);
    return 0;
}

int
modreq_uint(const struct modify_req *r, const char *key, bool required, json_int_t min,
            json_int_t max, uint64_t *out)
{
    json_t *v = setting(r, key);
    if (!v)
        return required ? bad(r, key, "is missing") : 0;
    if (!json_is_integer(v))
        return bad(r, key, "must be an integer");
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s' %s: Settings.%s %lld is out of range (%lld..%lld)", r->id,
                         r->path, key, (long long)n, (long long)min, (long long)max);
    *out = (uint64_t)n;
    return 0;
}

int
modreq_need_settings(const struct modify_req *r)
{
    if (r->settings)
        return 0;
    return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings is missing", r->id,
                     r->path);
}

const char *
modreq_guest_setting(const struct modify_req *r, const char *type, const char *key)
{
    json_t *g = r->guest.request;
    if (!g || strcmp(json_string_value(json_object_get(g, "ResourceType")), type))
        return NULL;
    return json_string_value(json_object_get(json_object_get(g, "Settings"), key));
}

int
modreq_wrap(const struct modify_req *r, int rc)
{
    return rc < 0 ? uvm_error_wrap(rc, "modify '%s' %s %s", r->id, r->add ? "Add" : "Remove",
                                   r->path)
                  : 0;
}

int
modreq_check_number(const struct modify_req *r, unsigned k, unsigned long long limit,
                    const char *field)
{
    if (r->num[k] < limit)
        return 0;
    return uvm_error(UVM_E_INVALID_ARGUMENT,
                     "modify '%s': ResourcePath '%s': the %s must be below %llu", r->id, r->path,
                     field, limit);
}

bool
modreq_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

int
modreq_mac_normalize(const char *in, char out[18])
{
    if (strlen(in) != 17)
        return -1;
    for (size_t i = 0; i < 17; i++) {
        char c = in[i];
        if (i % 3 == 2) {
            if (c != ':' && c != '-')
                return -1;
            out[i] = ':';
        } else {
            if (!isxdigit((unsigned char)c))
                return -1;
            out[i] = (char)tolower((unsigned char)c);
        }
    }
    out[17] = '\0';
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "clonereq.h"

static const char *const envelope[] = {"ActivityId", "ContainerId"};

/* Every key of the body is one of `known` or of the envelope. */
static int
only_known(struct request *req, const char *what, const char *const *known, size_t n)
{
    const char *key;
    json_t *v;
    json_object_foreach(req->body, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = !strcmp(key, known[i]);
        for (size_t i = 0; i < 2 && !ok; i++)
            ok = !strcmp(key, envelope[i]);
        if (!ok)
            return request_fail(req, "invalid request: %s has no field \"%.64s\"", what, key);
    }
    if (req->container_id)
        return request_fail(req, "invalid request: %s is for the utility VM, not container %.64s",
                            what, req->container_id);
    return 0;
}

int
quiesce_params_parse(struct request *req)
{
    return only_known(req, "Quiesce", NULL, 0);
}

static bool
hostname_valid(const char *s, size_t n)
{
    if (n == 0 || n > CLONE_HOSTNAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int
parse_entropy(struct request *req, const char *hex, struct resume_params *out)
{
    size_t n = strnlen(hex, 2 * CLONE_ENTROPY_MAX + 1);
    if (n % 2 || n < 2 * CLONE_ENTROPY_MIN || n > 2 * CLONE_ENTROPY_MAX)
        return request_fail(req,
                            "invalid request: field \"Entropy\" must be %u to %u bytes as an "
                            "even number of hex digits",
                            CLONE_ENTROPY_MIN, CLONE_ENTROPY_MAX);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return request_fail(req,
                                "invalid request: field \"Entropy\" has a non-hex digit at "
                                "offset %zu",
                                2 * i + (hi < 0 ? 0 : 1));
        out->entropy[i] = (uint8_t)(hi << 4 | lo);
    }
    out->entropy_len = n / 2;
    return 0;
}

int
resume_params_parse(struct request *req, struct resume_params *out)
{
    static const char *const known[] = {"Hostname", "Entropy", "RealTimeUs"};
    memset(out, 0, sizeof(*out));
    int rc = only_known(req, "Resume", known, 3);
    const char *host = NULL, *hex = NULL;
    if (rc == 0)
        rc = req_string(req, req->body, "Hostname", false, &host);
    if (rc == 0)
        rc = req_string(req, req->body, "Entropy", false, &hex);
    if (rc == 0)
        rc = req_uint(req, req->body, "RealTimeUs", false, 1, CLONE_REALTIME_MAX,
                      &out->realtime_us);
    if (rc < 0)
        return rc;
    static const char *const strings[] = {"Hostname", "Entropy"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(req->body, strings[i]);
        if (v && json_string_length(v) != strlen(json_string_value(v)))
            return request_fail(req, "invalid request: field \"%s\" contains a NUL character",
                                strings[i]);
    }
    if (host) {
        size_t n = strnlen(host, CLONE_HOSTNAME_MAX + 1);
        if (!hostname_valid(host, n))
            return request_fail(req,
                                "invalid request: field \"Hostname\" must be 1 to %u of "
                                "[A-Za-z0-9._-], not starting with '.'",
                                CLONE_HOSTNAME_MAX);
        memcpy(out->hostname, host, n + 1);
    }
    return hex ? parse_entropy(req, hex, out) : 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the guest parser tests (test-guest-*.c): requests from JSON texts. */
#ifndef UVM_TESTS_GUEST_REQ_H
#define UVM_TESTS_GUEST_REQ_H

#include <string.h>

#include "request.h"

/* A parsed request of `type` whose body is `json` (single quotes become double quotes; write
 * \\' for none: no test needs one). The envelope must parse. Free with request_free. */
static inline struct request *
guest_req(uint32_t type, const char *json)
{
    char *text = xstrdup(json);
    for (char *c = text; *c; c++)
        if (*c == '\'')
            *c = '"';
    struct request *req = request_new(type, 7);
    int rc = request_parse(req, (const uint8_t *)text, strlen(text));
    if (rc < 0)
        fail_msg("request %s: %s", text, req->error);
    free(text);
    return req;
}

/* rc is -EINVAL and the request's error contains `what`. */
#define assert_refused(rc, req, what)                                                              \
    do {                                                                                           \
        assert_int_equal((rc), -EINVAL);                                                           \
        assert_non_null((req)->error);                                                             \
        if (!strstr((req)->error, (what)))                                                         \
            fail_msg("error \"%s\" does not say \"%s\"", (req)->error, (what));                    \
    } while (0)

#endif

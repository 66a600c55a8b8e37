/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent's template requests (clonereq.c): Quiesce and Resume bodies; built for the
 * host. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "clonereq.h"
#include "guest-req.h"
#include "proto.h"

static int
parse_resume(const char *json, struct request **req, struct resume_params *p)
{
    *req = guest_req(PROTO_REQ_RESUME, json);
    return resume_params_parse(*req, p);
}

static void
test_quiesce(void **state)
{
    struct request *req = guest_req(PROTO_REQ_QUIESCE, "{'ActivityId':'a'}");
    assert_int_equal(quiesce_params_parse(req), 0);
    request_free(req);
    req = guest_req(PROTO_REQ_QUIESCE, "{'Force':true}");
    assert_refused(quiesce_params_parse(req), req, "Quiesce has no field \"Force\"");
    request_free(req);
    req = guest_req(PROTO_REQ_QUIESCE, "{'ContainerId':'c1'}");
    assert_refused(quiesce_params_parse(req), req, "not container c1");
    request_free(req);
    /* the null container is the VM itself */
    req = guest_req(PROTO_REQ_QUIESCE, "{'ContainerId':'" PROTO_NULL_CONTAINER "'}");
    assert_int_equal(quiesce_params_parse(req), 0);
    request_free(req);
    (void)state;
}

static void
test_resume_full(void **state)
{
    struct request *req;
    struct resume_params p;
    char json[1024];
    char hex[2 * 64 + 1];
    for (int i = 0; i < 64; i++)
        snprintf(hex + 2 * i, 3, "%02X", i * 3 + 1);
    snprintf(json, sizeof(json),
             "{'Hostname':'-clone-1.example_x','Entropy':'%s','RealTimeUs':1767225600123456}", hex);
    assert_int_equal(parse_resume(json, &req, &p), 0);
    assert_string_equal(p.hostname, "-clone-1.example_x");
    assert_int_equal(p.entropy_len, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p.entropy[i], (uint8_t)(i * 3 + 1));
    assert_int_equal(p.realtime_us, 1767225600123456ull);
    request_free(req);
    (void)state;
}

static void
test_resume_empty(void **state)
{
    struct request *req;
    struct resume_params p;
    /* every field optional: ends a quiesce whose save failed */
    assert_int_equal(parse_resume("{}", &req, &p), 0);
    assert_string_equal(p.hostname, "");
    assert_int_equal(p.entropy_len, 0);
    assert_int_equal(p.realtime_us, 0);
    request_free(req);
    (void)state;
}

static void
test_resume_hostname(void **state)
{
    struct request *req;
    struct resume_params p;
    static const char *const bad[] = {"''",    "'.x'",         "'a b'",
                                      "'a/b'", "'a\\\\u00e9'", "'x\\\\u0000y'",
                                      "42",    "null",         "['a']"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[256];
        snprintf(json, sizeof(json), "{'Hostname':%s}", bad[i]);
        int rc = parse_resume(json, &req, &p);
        assert_int_equal(rc, -EINVAL);
        assert_non_null(strstr(req->error, "Hostname"));
        request_free(req);
    }
    char json[256], name[80];
    memset(name, 'h', 64);
    name[64] = '\0';
    snprintf(json, sizeof(json), "{'Hostname':'%s'}", name);
    assert_int_equal(parse_resume(json, &req, &p), 0); /* 64: the longest */
    assert_string_equal(p.hostname, name);
    request_free(req);
    name[64] = 'h';
    name[65] = '\0';
    snprintf(json, sizeof(json), "{'Hostname':'%s'}", name);
    assert_refused(parse_resume(json, &req, &p), req, "Hostname");
    request_free(req);
    (void)state;
}

static void
test_resume_entropy(void **state)
{
    struct request *req;
    struct resume_params p;
    char json[2048], hex[2 * 300 + 2];
    memset(hex, 'a', sizeof(hex) - 1);
    hex[sizeof(hex) - 1] = '\0';
    /* lengths: 31 bytes too short, 32 and 256 fine, 257 too long, odd refused */
    static const struct {
        size_t digits;
        bool ok;
    } cases[] = {{62, false}, {64, true}, {512, true}, {514, false}, {65, false}, {0, false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(json, sizeof(json), "{'Entropy':'%.*s'}", (int)cases[i].digits, hex);
        int rc = parse_resume(json, &req, &p);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(p.entropy_len, cases[i].digits / 2);
            assert_int_equal(p.entropy[0], 0xaa);
        } else {
            assert_refused(rc, req, "\"Entropy\" must be 32 to 256 bytes");
        }
        request_free(req);
    }
    snprintf(json, sizeof(json), "{'Entropy':'%.62sxz'}", hex);
    assert_refused(parse_resume(json, &req, &p), req, "non-hex digit at offset 62");
    request_free(req);
    assert_refused(parse_resume("{'Entropy':7}", &req, &p), req, "must be a string");
    request_free(req);
    (void)state;
}

static void
test_resume_time_and_fields(void **state)
{
    struct request *req;
    struct resume_params p;
    assert_refused(parse_resume("{'RealTimeUs':0}", &req, &p), req, "out of range");
    request_free(req);
    assert_refused(parse_resume("{'RealTimeUs':-5}", &req, &p), req, "out of range");
    request_free(req);
    assert_refused(parse_resume("{'RealTimeUs':4611686018427387905}", &req, &p), req,
                   "out of range");
    request_free(req);
    assert_refused(parse_resume("{'RealTimeUs':1.5}", &req, &p), req, "must be an integer");
    request_free(req);
    assert_int_equal(parse_resume("{'RealTimeUs':4611686018427387904}", &req, &p), 0);
    request_free(req);
    assert_refused(parse_resume("{'Hostname':'a','Clock':1}", &req, &p), req,
                   "Resume has no field \"Clock\"");
    request_free(req);
    (void)state;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiesce),        cmocka_unit_test(test_resume_full),
        cmocka_unit_test(test_resume_empty),   cmocka_unit_test(test_resume_hostname),
        cmocka_unit_test(test_resume_entropy), cmocka_unit_test(test_resume_time_and_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

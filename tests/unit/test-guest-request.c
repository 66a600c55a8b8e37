/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent's request decoding, built for the host: the envelope (request.c), the typed
 * field accessors, the response shapes, and the ModifySettings envelope (modifyreq.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "guest-req.h"
#include "modifyreq.h"
#include "proto.h"
#include "request.h"

/* request_parse of raw bytes: rc, and the request (freed by the caller). */
static int
parse_raw(const char *bytes, size_t len, struct request **out)
{
    *out = request_new(PROTO_REQ_MODIFY_SETTINGS, 1);
    return request_parse(*out, (const uint8_t *)bytes, len);
}

#define PARSE_STR(s, out) parse_raw((s), sizeof(s) - 1, (out))

static void
test_envelope(void **state)
{
    struct request *req;
    assert_int_equal(PARSE_STR("{\"ActivityId\":\"a-1\",\"ContainerId\":\"c\"}", &req), 0);
    assert_string_equal(req->activity_id, "a-1");
    assert_null(req->error);
    request_free(req);
    assert_int_equal(PARSE_STR("{}", &req), 0);
    assert_string_equal(req->activity_id, ""); /* echoed as "" when absent */
    request_free(req);

    static const struct {
        const char *bytes;
        size_t len;
        const char *what;
    } bad[] = {
#define BAD(s, w) {s, sizeof(s) - 1, w}
        BAD("", "invalid request JSON"),
        BAD("{", "invalid request JSON"),
        BAD("[1,2]", "not a JSON object"),
        BAD("\"text\"", "invalid request JSON"), /* jansson takes arrays and objects only */
        BAD("null", "invalid request JSON"),
        BAD("{\"a\":1,\"a\":2}", "invalid request JSON"), /* duplicate keys */
        BAD("{\"ActivityId\":7}", "\"ActivityId\" must be a string"),
        BAD("{\"ActivityId\":null}", "\"ActivityId\" must be a string"),
        BAD("{\"ContainerId\":[]}", "\"ContainerId\" must be a string"),
        BAD("{\"ActivityId\":\"a\\u0000b\"}", "invalid request JSON"),    /* NUL inside */
        BAD("{\"ActivityId\":\"\xc3\x28\"}", "invalid request JSON"),     /* not UTF-8 */
        BAD("{\"ActivityId\":\"\xed\xa0\x80\"}", "invalid request JSON"), /* a surrogate */
        BAD("{\"a\":1}\0{}", "invalid request JSON"),                     /* a NUL after */
        BAD("{\"a\":1} x", "invalid request JSON"),                       /* trailing text */
#undef BAD
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = parse_raw(bad[i].bytes, bad[i].len, &req);
        if (rc != -EINVAL || !req->error || !strstr(req->error, bad[i].what))
            fail_msg("case %zu: rc %d, error \"%s\", expected \"%s\"", i, rc,
                     req->error ? req->error : "(none)", bad[i].what);
        /* a refused request still answers, with its id */
        assert_int_equal(req->id, 1);
        size_t len = 0;
        char *resp = request_response_json(req, &len);
        assert_non_null(resp);
        json_t *j = json_loads(resp, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "Result")), PROTO_E_FAIL);
        json_decref(j);
        free(resp);
        request_free(req);
    }
}

static void
test_accessors(void **state)
{
    struct request *req = guest_req(PROTO_REQ_MODIFY_SETTINGS,
                                    "{'o':{},'s':'text','b':true,'u':5,'neg':-1,'big':4294967296,"
                                    "'f':1.5,'n':null}");
    json_t *body = req->body, *o = NULL;
    const char *s = NULL;
    bool b = false;
    uint64_t u = 99;
    assert_int_equal(req_object(req, body, "o", true, &o), 0);
    assert_true(json_is_object(o));
    assert_int_equal(req_string(req, body, "s", true, &s), 0);
    assert_string_equal(s, "text");
    assert_int_equal(req_bool(req, body, "b", true, &b), 0);
    assert_true(b);
    assert_int_equal(req_uint(req, body, "u", true, 0, 10, &u), 0);
    assert_int_equal(u, 5);
    /* absent and optional: 0, the output untouched */
    s = "default";
    assert_int_equal(req_string(req, body, "missing", false, &s), 0);
    assert_string_equal(s, "default");
    u = 42;
    assert_int_equal(req_uint(req, body, "missing", false, 0, 10, &u), 0);
    assert_int_equal(u, 42);
    /* absent and required */
    assert_refused(req_string(req, body, "missing", true, &s), req, "missing field \"missing\"");
    /* wrong types, null included */
    assert_refused(req_object(req, body, "s", true, &o), req, "\"s\" must be an object");
    assert_refused(req_object(req, body, "n", false, &o), req, "\"n\" must be an object");
    assert_refused(req_string(req, body, "u", true, &s), req, "\"u\" must be a string");
    assert_refused(req_string(req, body, "n", false, &s), req, "\"n\" must be a string");
    assert_refused(req_bool(req, body, "u", true, &b), req, "\"u\" must be a boolean");
    assert_refused(req_bool(req, body, "s", true, &b), req, "\"s\" must be a boolean");
    assert_refused(req_uint(req, body, "f", true, 0, 10, &u), req, "\"f\" must be an integer");
    assert_refused(req_uint(req, body, "s", true, 0, 10, &u), req, "\"s\" must be an integer");
    assert_refused(req_uint(req, body, "b", true, 0, 10, &u), req, "\"b\" must be an integer");
    /* ranges */
    assert_refused(req_uint(req, body, "neg", true, 0, 10, &u), req,
                   "\"neg\" = -1 is out of range [0, 10]");
    assert_refused(req_uint(req, body, "u", true, 6, 10, &u), req, "out of range [6, 10]");
    assert_refused(req_uint(req, body, "u", true, 0, 4, &u), req, "out of range [0, 4]");
    assert_refused(req_uint(req, body, "big", true, 0, UINT32_MAX, &u), req,
                   "\"big\" = 4294967296 is out of range [0, 4294967295]");
    u = 0;
    assert_int_equal(req_uint(req, body, "big", true, 0, UINT64_MAX, &u), 0);
    assert_int_equal(u, 4294967296ull);
    request_free(req);
}

static void
test_response(void **state)
{
    struct request *req = guest_req(PROTO_REQ_EXECUTE_PROCESS, "{'ActivityId':'act'}");
    size_t len = 0;
    char *resp = request_response_json(req, &len);
    assert_string_equal(resp, "{\"Result\":0,\"ActivityId\":\"act\"}");
    assert_int_equal(len, strlen(resp));
    free(resp);
    req->result = json_pack("{s:i}", "ProcessId", 42);
    resp = request_response_json(req, &len);
    assert_string_equal(resp, "{\"ProcessId\":42,\"Result\":0,\"ActivityId\":\"act\"}");
    free(resp);
    /* an error replaces the result: hcsshim's shape, the message twice */
    assert_int_equal(request_fail(req, "exec \"%s\": not found", "x"), -EINVAL);
    resp = request_response_json(req, &len);
    json_t *j = json_loads(resp, 0, NULL);
    json_t *want = json_pack("{s:i, s:s, s:s, s:[{s:i, s:s}]}", "Result", (int)PROTO_E_FAIL,
                             "ActivityId", "act", "ErrorMessage", "exec \"x\": not found",
                             "ErrorRecords", "Result", (int)PROTO_E_FAIL, "Message",
                             "exec \"x\": not found");
    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);
    free(resp);
    /* a message that is not UTF-8 (a file name from the guest) still gives valid JSON */
    request_fail(req, "open \"%s\": no", "\xff\xfe");
    resp = request_response_json(req, &len);
    j = json_loads(resp, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "ErrorMessage")),
                        "request failed (unprintable error message)");
    json_decref(j);
    free(resp);
    request_free(req);
}

/* modify_request_decode of a body: rc; *m filled on success. */
static int
decode(const char *json, struct request **req, struct modify_request *m)
{
    *req = guest_req(PROTO_REQ_MODIFY_SETTINGS, json);
    *m = (struct modify_request){0};
    return modify_request_decode(*req, m);
}

static void
test_modify_envelope(void **state)
{
    struct request *req;
    struct modify_request m;
    assert_int_equal(decode("{'Request':{'ResourceType':'VPMemDevice','RequestType':'Add',"
                            "'Settings':{'DeviceNumber':1}}}",
                            &req, &m),
                     0);
    assert_string_equal(m.resource_type, "VPMemDevice");
    assert_int_equal(m.type, MODIFY_ADD);
    assert_int_equal(json_integer_value(json_object_get(m.settings, "DeviceNumber")), 1);
    request_free(req);
    /* Settings null or absent: none; unknown resource types are the dispatcher's business */
    assert_int_equal(
        decode("{'Request':{'ResourceType':'Nope','RequestType':'Remove','Settings':null}}", &req,
               &m),
        0);
    assert_null(m.settings);
    assert_int_equal(m.type, MODIFY_REMOVE);
    assert_string_equal(m.resource_type, "Nope");
    request_free(req);
    /* hcsshim omits an empty RequestType: that is an Add */
    assert_int_equal(decode("{'Request':{'ResourceType':'X'}}", &req, &m), 0);
    assert_int_equal(m.type, MODIFY_ADD);
    request_free(req);
    assert_int_equal(decode("{'Request':{'ResourceType':'X','RequestType':'Update'}}", &req, &m),
                     0);
    assert_null(m.settings);
    assert_int_equal(m.type, MODIFY_UPDATE);
    request_free(req);
    assert_string_equal(modify_request_type_name(MODIFY_ADD), "Add");
    assert_string_equal(modify_request_type_name(MODIFY_REMOVE), "Remove");
    assert_string_equal(modify_request_type_name(MODIFY_UPDATE), "Update");

    static const struct {
        const char *json, *what;
    } bad[] = {
        {"{}", "missing field \"Request\""},
        {"{'Request':null}", "\"Request\" must be an object"},
        {"{'Request':'Add'}", "\"Request\" must be an object"},
        {"{'Request':{'RequestType':'Add'}}", "missing field \"ResourceType\""},
        {"{'Request':{'ResourceType':1,'RequestType':'Add'}}", "\"ResourceType\" must be a string"},
        {"{'Request':{'ResourceType':'X','RequestType':['Add']}}",
         "\"RequestType\" must be a string"},
        {"{'Request':{'ResourceType':'X','RequestType':'add'}}",
         "the request type \"add\" is not supported"},
        {"{'Request':{'ResourceType':'X','RequestType':''}}",
         "the request type \"\" is not supported"},
        {"{'Request':{'ResourceType':'X','RequestType':'Add','Settings':[]}}",
         "\"Settings\" must be an object"},
        {"{'Request':{'ResourceType':'X','RequestType':'Add','Settings':'{}'}}",
         "\"Settings\" must be an object"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = decode(bad[i].json, &req, &m);
        if (rc != -EINVAL || !req->error || !strstr(req->error, bad[i].what))
            fail_msg("case %zu (%s): rc %d, error \"%s\", expected \"%s\"", i, bad[i].json, rc,
                     req->error ? req->error : "(none)", bad[i].what);
        request_free(req);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_modify_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

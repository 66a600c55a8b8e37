/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent's share settings (shareconf.c: MappedDirectory and VirtioFs) and mount paths
 * (mountpath.c), built for the host. */
#include <errno.h>
#include <limits.h>
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
#include "guest-req.h"
#include "mountpath.h"
#include "proto.h"
#include "shareconf.h"

static struct request *
settings_req(const char *settings)
{
    cleanup_free char *json = xasprintf("{'Settings':%s}", settings);
    return guest_req(PROTO_REQ_MODIFY_SETTINGS, json);
}

static json_t *
settings_of(struct request *req)
{
    json_t *s = json_object_get(req->body, "Settings");
    return json_is_null(s) ? NULL : s; /* as modify.c hands them over */
}

static int
plan9(const char *settings, enum modify_request_type type, struct request **req,
      struct plan9_conf *c)
{
    *req = settings_req(settings);
    *c = (struct plan9_conf){0};
    return plan9_conf_parse(*req, type, settings_of(*req), c);
}

static int
virtiofs(const char *settings, enum modify_request_type type, struct request **req,
         struct virtiofs_conf *c)
{
    *req = settings_req(settings);
    *c = (struct virtiofs_conf){0};
    return virtiofs_conf_parse(*req, type, settings_of(*req), c);
}

/* A string of n copies of ch (owned). */
static char *
repeat(char ch, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

static void
test_mount_paths(void **state)
{
    struct request *req = guest_req(PROTO_REQ_MODIFY_SETTINGS, "{}");
    static const char *const good[] = {"",     "/a",   "/a/b",     "/tmp/S0/0", "/a.b/..c/c..",
                                       "/...", "/a b", "/\xc3\xa9"};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        if (mount_check_path(req, "MountPath", good[i]) != 0)
            fail_msg("\"%s\" refused: %s", good[i], req->error);
    static const char *const bad[] = {"/",    "a",    "./a", "/a/",   "//a",     "/a//b",
                                      "/./a", "/a/.", "/..", "/a/..", "/a/../b", "~/a"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = mount_check_path(req, "MountPath", bad[i]);
        if (rc != -EINVAL || !strstr(req->error, "\"MountPath\""))
            fail_msg("\"%s\": rc %d (%s)", bad[i], rc, req->error ? req->error : "");
    }
    cleanup_free char *longest = repeat('a', PATH_MAX - 1), *too_long = repeat('a', PATH_MAX);
    longest[0] = too_long[0] = '/';
    assert_int_equal(mount_check_path(req, "MountPath", longest), 0);
    assert_refused(mount_check_path(req, "MountPath", too_long), req,
                   "field \"MountPath\" is too long");
    assert_refused(mount_check_path(req, "X", "rel"), req,
                   "field \"X\" = \"rel\" is not an absolute path");
    assert_refused(mount_check_path(req, "X", "/a/../b"), req,
                   "field \"X\" = \"/a/../b\" is not a normalised absolute path");
    request_free(req);
}

static void
test_plan9(void **state)
{
    struct request *req;
    struct plan9_conf c;
    assert_int_equal(plan9("{'MountPath':'/mnt/x','ShareName':'s1f','Port':564,'ReadOnly':true}",
                           MODIFY_ADD, &req, &c),
                     0);
    assert_string_equal(c.name, "s1f");
    assert_string_equal(c.path, "/mnt/x");
    assert_true(c.read_only);
    request_free(req);
    assert_int_equal(plan9("{'MountPath':'/run/plan9x','ShareName':'s0123456789abcdef'}",
                           MODIFY_REMOVE, &req, &c),
                     0);
    assert_false(c.read_only);
    request_free(req);

    cleanup_free char *big = repeat('a', SHARE_FIELD_MAX + 1);
    cleanup_free char *big_path = xasprintf("{'MountPath':'/%s','ShareName':'s1'}", big);
    const struct {
        const char *settings;
        enum modify_request_type type;
        const char *what;
    } bad[] = {
        {"{'MountPath':'/m','ShareName':'s1'}", MODIFY_UPDATE,
         "MappedDirectory: the request type \"Update\" is not supported"},
        {"null", MODIFY_ADD, "missing field \"Settings\""},
        {"{'ShareName':'s1'}", MODIFY_ADD, "missing field \"MountPath\""},
        {"{'MountPath':'','ShareName':'s1'}", MODIFY_ADD, "field \"MountPath\" is empty"},
        {"{'MountPath':7,'ShareName':'s1'}", MODIFY_ADD, "\"MountPath\" must be a string"},
        {"{'MountPath':'mnt','ShareName':'s1'}", MODIFY_ADD, "is not an absolute path"},
        {"{'MountPath':'/mnt/../etc','ShareName':'s1'}", MODIFY_ADD,
         "is not a normalised absolute path"},
        {"{'MountPath':'/','ShareName':'s1'}", MODIFY_ADD, "is not a normalised absolute path"},
        {big_path, MODIFY_ADD, "field \"MountPath\" is longer than 4096 bytes"},
        {"{'MountPath':'/m'}", MODIFY_ADD, "missing field \"ShareName\""},
        {"{'MountPath':'/m','ShareName':['s1']}", MODIFY_ADD, "\"ShareName\" must be a string"},
        {"{'MountPath':'/m','ShareName':'s'}", MODIFY_ADD,
         "field \"ShareName\": \"s\" is not a share name"},
        {"{'MountPath':'/m','ShareName':'S1'}", MODIFY_ADD, "is not a share name"},
        {"{'MountPath':'/m','ShareName':'s1A'}", MODIFY_ADD, "is not a share name"},
        {"{'MountPath':'/m','ShareName':'s1g'}", MODIFY_ADD, "is not a share name"},
        {"{'MountPath':'/m','ShareName':'s0123456789abcdef0'}", MODIFY_ADD, "is not a share name"},
        {"{'MountPath':'/m','ShareName':'../s1'}", MODIFY_ADD, "is not a share name"},
        {"{'MountPath':'/m','ShareName':'s1/..'}", MODIFY_ADD, "is not a share name"},
        {"{'MountPath':'/m','ShareName':'s1','Port':-1}", MODIFY_ADD, "\"Port\" = -1 is out of"},
        {"{'MountPath':'/m','ShareName':'s1','Port':4294967296}", MODIFY_ADD, "out of range"},
        {"{'MountPath':'/m','ShareName':'s1','Port':'564'}", MODIFY_ADD,
         "\"Port\" must be an integer"},
        {"{'MountPath':'/m','ShareName':'s1','ReadOnly':'yes'}", MODIFY_ADD,
         "\"ReadOnly\" must be a boolean"},
        {"{'MountPath':'/run/plan9','ShareName':'s1'}", MODIFY_ADD,
         "\"MountPath\": \"/run/plan9\" is inside the Plan9 export /run/plan9"},
        {"{'MountPath':'/run/plan9/s2','ShareName':'s1'}", MODIFY_REMOVE,
         "inside the Plan9 export"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = plan9(bad[i].settings, bad[i].type, &req, &c);
        if (rc != -EINVAL || !req->error || !strstr(req->error, bad[i].what))
            fail_msg("case %zu (%.80s): rc %d, error \"%.200s\", expected \"%s\"", i,
                     bad[i].settings, rc, req->error ? req->error : "(none)", bad[i].what);
        request_free(req);
    }
}

static void
test_virtiofs(void **state)
{
    struct request *req;
    struct virtiofs_conf c;
    assert_int_equal(virtiofs("{'Tag':'vfs-0.A_b','MountPath':'/data','ReadOnly':true,"
                              "'Options':'dax,cache=always','Lazy':true}",
                              MODIFY_ADD, &req, &c),
                     0);
    assert_string_equal(c.tag, "vfs-0.A_b");
    assert_string_equal(c.path, "/data");
    assert_string_equal(c.options, "dax,cache=always");
    assert_true(c.read_only);
    assert_true(c.lazy);
    request_free(req);
    assert_int_equal(virtiofs("{'Tag':'t','MountPath':'/d'}", MODIFY_REMOVE, &req, &c), 0);
    assert_string_equal(c.options, "");
    assert_false(c.read_only || c.lazy);
    request_free(req);
    /* the longest tag and options */
    cleanup_free char *tag = repeat('t', VIRTIOFS_TAG_MAX), *opts = repeat('o', 4095);
    cleanup_free char *longest = xasprintf("{'Tag':'%s','MountPath':'/d','Options':'%s'}", tag,
                                           opts);
    assert_int_equal(virtiofs(longest, MODIFY_ADD, &req, &c), 0);
    request_free(req);

    cleanup_free char *long_tag = repeat('t', VIRTIOFS_TAG_MAX + 1);
    cleanup_free char *too_long_tag = xasprintf("{'Tag':'%s','MountPath':'/d'}", long_tag);
    cleanup_free char *long_opts = repeat('o', 4096), *huge_opts = repeat('o', 5000);
    cleanup_free char *too_long_opts = xasprintf("{'Tag':'t','MountPath':'/d','Options':'%s'}",
                                                 long_opts);
    cleanup_free char *huge = xasprintf("{'Tag':'t','MountPath':'/d','Options':'%s'}", huge_opts);
    const struct {
        const char *settings;
        enum modify_request_type type;
        const char *what;
    } bad[] = {
        {"{'Tag':'t','MountPath':'/d'}", MODIFY_UPDATE,
         "VirtioFs: the request type \"Update\" is not supported"},
        {"null", MODIFY_ADD, "missing field \"Settings\""},
        {"{'MountPath':'/d'}", MODIFY_ADD, "missing field \"Tag\""},
        {"{'Tag':1,'MountPath':'/d'}", MODIFY_ADD, "\"Tag\" must be a string"},
        {"{'Tag':'t'}", MODIFY_ADD, "missing field \"MountPath\""},
        {"{'Tag':'t','MountPath':'/d/'}", MODIFY_ADD, "is not a normalised absolute path"},
        {"{'Tag':'','MountPath':'/d'}", MODIFY_ADD, "\"Tag\": \"\" is not a virtio-fs tag"},
        {too_long_tag, MODIFY_ADD, "is not a virtio-fs tag (1 to 36 of"},
        {"{'Tag':'a/b','MountPath':'/d'}", MODIFY_ADD, "is not a virtio-fs tag"},
        {"{'Tag':'a b','MountPath':'/d'}", MODIFY_ADD, "is not a virtio-fs tag"},
        {"{'Tag':'t\\u00e9','MountPath':'/d'}", MODIFY_ADD, "is not a virtio-fs tag"},
        {"{'Tag':'t','MountPath':'/d','ReadOnly':1}", MODIFY_ADD, "\"ReadOnly\" must be a boolean"},
        {"{'Tag':'t','MountPath':'/d','Lazy':null}", MODIFY_REMOVE, "\"Lazy\" must be a boolean"},
        {"{'Tag':'t','MountPath':'/d','Options':['dax']}", MODIFY_ADD,
         "\"Options\" must be a string"},
        {too_long_opts, MODIFY_ADD, "field \"Options\" is longer than 4095 bytes"},
        {huge, MODIFY_ADD, "field \"Options\" is longer than 4096 bytes"},
        {"{'Tag':'t','MountPath':'/d','Options':'DAX'}", MODIFY_ADD,
         "\"Options\": \"DAX\" has characters other than [a-z0-9_=,]"},
        {"{'Tag':'t','MountPath':'/d','Options':'a b'}", MODIFY_ADD, "has characters other than"},
        {"{'Tag':'t','MountPath':'/d','Options':'a=/etc'}", MODIFY_ADD, "has characters other"},
        {"{'Tag':'t','MountPath':'/d','Options':'a,,b'}", MODIFY_ADD,
         "\"Options\": \"a,,b\" is not a comma-separated list of key or key=value"},
        {"{'Tag':'t','MountPath':'/d','Options':'a,'}", MODIFY_ADD, "is not a comma-separated"},
        {"{'Tag':'t','MountPath':'/d','Options':','}", MODIFY_ADD, "is not a comma-separated"},
        {"{'Tag':'t','MountPath':'/d','Options':'=x'}", MODIFY_ADD, "is not a comma-separated"},
        {"{'Tag':'t','MountPath':'/d','Options':'a='}", MODIFY_ADD, "is not a comma-separated"},
        {"{'Tag':'t','MountPath':'/d','Options':'a=b=c'}", MODIFY_ADD, "is not a comma-separated"},
        {"{'Tag':'t','MountPath':'/d','Options':'source=other'}", MODIFY_ADD,
         "\"source\" is not allowed (the tag is the source)"},
        {"{'Tag':'t','MountPath':'/d','Options':'dax,source'}", MODIFY_ADD,
         "\"source\" is not allowed"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = virtiofs(bad[i].settings, bad[i].type, &req, &c);
        if (rc != -EINVAL || !req->error || !strstr(req->error, bad[i].what))
            fail_msg("case %zu (%.80s): rc %d, error \"%.200s\", expected \"%s\"", i,
                     bad[i].settings, rc, req->error ? req->error : "(none)", bad[i].what);
        request_free(req);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mount_paths),
        cmocka_unit_test(test_plan9),
        cmocka_unit_test(test_virtiofs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uvm_save_template's failure paths without QEMU (the fixture's fake QMP peer and fake guest):
 * whatever fails, the files and the directory it made are gone, a migration that failed is
 * cancelled before the VM continues, the agent is resumed, and the VM runs on; a guest that
 * refuses Quiesce gets nothing else.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fixture.h"
#include "proto.h"

#define CAPS                                                                                       \
    "{'execute':'migrate-set-capabilities','arguments':{'capabilities':["                          \
    "{'capability':'x-ignore-shared','state':true},{'capability':'events','state':true}]}}"
#define GETFD "{'execute':'getfd','arguments':{'fdname':'uvm-migration'}}"
#define MIGRATE "{'execute':'migrate','arguments':{'uri':'fd:uvm-migration'}}"
#define VERSION_REPLY "{'return':{'qemu':{'major':7,'minor':2,'micro':22},'package':'unit'}}"

struct base {
    char path[64];
    char dir[96];
};

static int
setup(void **state)
{
    struct base *b = calloc(1, sizeof(*b));
    snprintf(b->path, sizeof(b->path), "/tmp/uvm-tplsave-XXXXXX");
    if (!mkdtemp(b->path))
        return -1;
    snprintf(b->dir, sizeof(b->dir), "%s/tpl", b->path);
    *state = b;
    return 0;
}

static int
teardown(void **state)
{
    struct base *b = *state;
    cleanup_free char *cmd = xasprintf("rm -rf '%s'", b->path);
    if (system(cmd) != 0)
        return -1;
    free(b);
    return 0;
}

/* The types of the requests the guest got, as "Quiesce Resume ...". */
static char *
guest_calls(struct fixture *f)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < fixture_call_count(f); i++) {
        uint32_t type = 0;
        (void)fixture_call(f, i, &type);
        const char *name = type == PROTO_REQ_QUIESCE  ? "Quiesce"
                           : type == PROTO_REQ_RESUME ? "Resume"
                                                      : "other";
        char *next = xasprintf("%s%s%s", out, *out ? " " : "", name);
        free(out);
        out = next;
    }
    return out;
}

static void
test_migrate_failed(void **state)
{
    struct base *b = *state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD("{'execute':'stop'}", FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'query-version'}", VERSION_REPLY),
        FAKE_QMP_CMD(CAPS, FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(GETFD, FAKE_QMP_OK),
        FAKE_QMP_CMD(MIGRATE, FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'MIGRATION','data':{'status':'failed'}}"),
        FAKE_QMP_CMD("{'execute':'query-migrate'}",
                     "{'return':{'status':'failed','error-desc':'No space left on device'}}"),
        FAKE_QMP_CMD("{'execute':'migrate_cancel'}", FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'cont'}", FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(script, ARRAY_SIZE(script),
                                    &(struct fixture_config){.saveable = true});
    assert_int_equal(uvm_save_template(f->vm, b->dir), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "No space left on device"));
    struct stat st;
    assert_int_not_equal(stat(b->dir, &st), 0); /* ours: removed with its files */
    cleanup_free char *calls = guest_calls(f);
    assert_string_equal(calls, "Quiesce Resume");
    const char *want[] = {"{'execute':'stop'}",
                          "{'execute':'query-version'}",
                          CAPS,
                          GETFD,
                          MIGRATE,
                          "{'execute':'query-migrate'}",
                          "{'execute':'migrate_cancel'}",
                          "{'execute':'cont'}"};
    fixture_finish(f, want, ARRAY_SIZE(want));
}

static void
test_quiesce_refused(void **state)
{
    struct base *b = *state;
    /* An existing empty directory of ours: left as it was, the guest's refusal reported. */
    assert_int_equal(mkdir(b->dir, 0700), 0);
    struct fixture *f = fixture_new(NULL, 0, &(struct fixture_config){.saveable = true});
    f->guest.fail_next = 1;
    assert_int_equal(uvm_save_template(f->vm, b->dir), UVM_E_GUEST);
    struct stat st;
    assert_int_equal(stat(b->dir, &st), 0);
    DIR *d = opendir(b->dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    assert_int_equal(n, 0);
    cleanup_free char *calls = guest_calls(f);
    assert_string_equal(calls, "Quiesce");
    fixture_finish(f, NULL, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiesce_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

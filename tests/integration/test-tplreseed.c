/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A clone's CRNG is reseeded by Resume, not only by the kernel's own schedule. Linux 6.1
 * reseeds on first use once its key is older than max(1 s, uptime / 2) during the first 120 s of
 * uptime, then 60 s: a template saved seconds after boot (as the other tests do) gets distinct
 * clones from the kernel alone, so they cannot tell whether Resume reseeds. Here the template
 * is saved late (uptime over 121 s), right after a read that forced the kernel's reseed (a read
 * 61 s after another one), and the clones read within seconds of guest time after it: only
 * Resume's reseed can make their UUIDs differ. About three minutes of an idle guest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static char shm[64];
static char tpl[128];

static char *
clone_uuid(const char *id)
{
    struct uvm_options o = {.id = id, .template_dir = tpl};
    struct uvm *vm = NULL;
    if (uvm_create(&o, &vm) < 0)
        fail_msg("create %s: %s", id, uvm_last_error());
    assert_int_equal(itest_start(vm), 0);
    char *out = itest_guest(vm, "cat /proc/sys/kernel/random/uuid; cut -d' ' -f1 /proc/uptime");
    uvm_close(vm);
    fprintf(stderr, "%s: uuid, uptime %s", id, out);
    return out;
}

static long
uptime_s(struct uvm *vm)
{
    char *out = itest_guest(vm, "cut -d. -f1 /proc/uptime");
    long t = atol(out);
    free(out);
    return t;
}

static void
guest_sleep(struct uvm *vm, long secs)
{
    while (secs > 0) {
        long n = secs > 50 ? 50 : secs;
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "sleep %ld; echo", n);
        free(itest_guest(vm, cmd));
        secs -= n;
    }
}

static void
guest_urandom(struct uvm *vm)
{
    free(itest_guest(vm, "head -c 1 /dev/urandom >/dev/null; echo"));
}

static void
test_late_template_clones_differ(void **state)
{
    (void)state;
    struct uvm_options o = {.id = "itest-tplreseed-source", .memory_mb = 256, .processor_count = 1};
    struct uvm *source = NULL;
    assert_int_equal(uvm_create(&o, &source), 0);
    assert_int_equal(itest_start(source), 0);
    /* Uptime past 121 s (itest_guest wants output within 60 s: sleeps of 50 s at most). */
    for (long t = 0; (t = uptime_s(source)) < 121;)
        guest_sleep(source, 121 - t);
    guest_urandom(source); /* the kernel's key is at most 60 s old */
    guest_sleep(source, 61);
    guest_urandom(source); /* older than 60 s: the kernel reseeds now */
    char *out = itest_guest(source, "cut -d' ' -f1 /proc/uptime");
    fprintf(stderr, "template saved at uptime %s", out);
    free(out);
    if (uvm_save_template(source, tpl) < 0)
        fail_msg("save: %s", uvm_last_error());
    uvm_close(source);
    char *a = clone_uuid("itest-tplreseed-a"), *b = clone_uuid("itest-tplreseed-b");
    char ua[64] = "", ub[64] = "";
    assert_int_equal(sscanf(a, "%63s", ua), 1);
    assert_int_equal(sscanf(b, "%63s", ub), 1);
    assert_string_not_equal(ua, ub);
    free(a);
    free(b);
}

int
main(void)
{
    itest_init();
    strcpy(shm, "/dev/shm/uvm-tplreseed-XXXXXX");
    if (!mkdtemp(shm))
        return 1;
    snprintf(tpl, sizeof(tpl), "%s/tpl", shm);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_late_template_clones_differ),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    itest_rm_rf(shm);
    return itest_finish(failed);
}

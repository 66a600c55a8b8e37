/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stuck guest against real VMs: the guest's own root freezes its agent (PID 1 moved into a
 * frozen cgroup v2), so it reads nothing and answers nothing while the VM keeps running. Then:
 *   - a call on that VM waits, while calls on another VM go on and finish;
 *   - uvm_terminate on the stuck VM returns and ends the call that was waiting;
 *   - with uvm_options.timeouts.agent_call_ms set, a call on a stuck VM fails with
 *     UVM_E_TIMEOUT naming that option.
 * Nothing is timed: the test checks what finished before what, and the results.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"
#include "uvm.h"

#define FROZEN_MARK "UVM-TEST-AGENT-FROZEN"
/* Long enough never to be reached by this test: only uvm_terminate can end the call. */
#define LONG_MS 600000u
#define SHORT_MS 15000u

static char dir[64];

static struct uvm *
boot(const char *id, uint32_t agent_call_ms, char *console, size_t len)
{
    snprintf(console, len, "%s/%s.console", dir, id);
    struct uvm_options o = {.id = id,
                            .memory_mb = 256,
                            .console_pipe = console,
                            .timeouts = {.agent_call_ms = agent_call_ms}};
    struct uvm *vm = NULL;
    assert_int_equal(uvm_create(&o, &vm), 0);
    assert_int_equal(itest_start(vm), 0);
    return vm;
}

/* The guest freezes its agent and says so on its console, which the host reads. The freezing
 * process's handle is returned (its exit is never reported: the agent is frozen). */
static struct uvm_process *
freeze_agent(struct uvm *vm, const char *console)
{
    static const char *const argv[] = {
        "sh", "-c",
        "set -e; g=/sys/fs/cgroup/uvm-test-frozen; mkdir -p $g; echo 1 > $g/cgroup.procs; "
        "echo 1 > $g/cgroup.freeze; until grep -qx 'frozen 1' $g/cgroup.events; do sleep 0.1; "
        "done; echo " FROZEN_MARK " > /dev/console",
        NULL};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(vm, &(struct uvm_process_config){.argv = argv}, &p), 0);
    for (unsigned waited_ms = 0;; waited_ms += 100) {
        char *log = itest_host_out("cat '%s'", console);
        bool frozen = strstr(log, FROZEN_MARK "\r") || strstr(log, FROZEN_MARK "\n");
        free(log);
        if (frozen)
            break;
        if (waited_ms > ITEST_WAIT_MS) /* a failure bound, not a timing check */
            fail_msg("the guest did not report its agent frozen");
        usleep(100 * 1000);
    }
    return p;
}

struct pending_call {
    struct uvm *vm;
    int rc;
    bool done;
    pthread_mutex_t lock;
};

static void *
exec_true(void *arg)
{
    struct pending_call *c = arg;
    static const char *const argv[] = {"true", NULL};
    struct uvm_process *p = NULL;
    int rc = uvm_exec(c->vm, &(struct uvm_process_config){.argv = argv}, &p);
    uvm_process_close(p);
    pthread_mutex_lock(&c->lock);
    c->rc = rc;
    c->done = true;
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static bool
call_done(struct pending_call *c)
{
    pthread_mutex_lock(&c->lock);
    bool done = c->done;
    pthread_mutex_unlock(&c->lock);
    return done;
}

static void
test_stuck_guest(void **state)
{
    char con_a[128], con_b[128];
    struct uvm *a = boot("itest-dl-stuck", LONG_MS, con_a, sizeof(con_a));
    struct uvm *b = boot("itest-dl-other", SHORT_MS, con_b, sizeof(con_b));
    struct uvm_process *freezer_a = freeze_agent(a, con_a);

    /* A call on the stuck VM waits ... */
    struct pending_call c = {.vm = a, .lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, exec_true, &c), 0);
    /* ... while the other VM serves its calls, one after another, to their end. */
    static const char *const echo[] = {"echo", "alive", NULL};
    for (int i = 0; i < 3; i++) {
        struct itest_run r;
        assert_int_equal(itest_run(b, echo, NULL, &r), 0);
        assert_int_equal(r.exit_code, 0);
        assert_string_equal(r.out, "alive\n");
        itest_run_free(&r);
    }
    assert_false(call_done(&c));

    /* uvm_terminate does not wait for the guest, and ends the call that did. */
    assert_int_equal(uvm_terminate(a), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(c.done);
    assert_true(c.rc < 0);
    assert_int_not_equal(c.rc, UVM_E_TIMEOUT); /* ended by the terminate, not a deadline */
    uvm_process_close(freezer_a);
    uvm_close(a);

    /* The other VM's own deadline: once its agent is stuck, a call gives up and says why. */
    struct uvm_process *freezer_b = freeze_agent(b, con_b);
    static const char *const argv[] = {"true", NULL};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(b, &(struct uvm_process_config){.argv = argv}, &p), UVM_E_TIMEOUT);
    assert_null(p);
    if (!strstr(uvm_last_error(), "(uvm_options.timeouts.agent_call_ms: 15000 ms)"))
        fail_msg("the timeout does not name its option: %s", uvm_last_error());
    assert_int_equal(uvm_terminate(b), 0);
    uvm_process_close(freezer_b);
    uvm_close(b);
}

int
main(void)
{
    itest_init();
    strcpy(dir, "/tmp/uvm-itest-dl-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stuck_guest),
    };
    int failed = cmocka_run_group_tests_name("deadlines", tests, NULL, NULL);
    itest_rm_rf(dir);
    return itest_finish(failed);
}

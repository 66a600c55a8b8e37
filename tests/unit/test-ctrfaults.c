/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection for containers (issue 14): the guest agent refuses CreateContainer, the start,
 * an exec or the delete of a container whose spec bind-mounts a host directory (shared into the
 * VM as virtio-fs: a real virtiofsd, QEMU's chardev and device in the fake QEMU, fake-qemu.h),
 * and QEMU refuses that share. After each fault:
 *   - the call's result: UVM_E_GUEST with the agent's text (UVM_E_HYPERVISOR for QEMU's), naming
 *     the container and the step;
 *   - the host state (faultstate.h: QEMU's objects, the share's staging entries, virtiofsd): a
 *     failed create leaves what the VM held before; a failed start, exec or delete leaves the
 *     container and its share whole;
 *   - a retry of the same call works, then the delete leaves what the VM held before;
 *   - no fd left (the streams of a refused create or exec are closed), no memory (ASan).
 * Each fault and what was checked is printed.
 */
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
#include "fake-qemu.h"
#include "faultstate.h"
#include "fixture.h"
#include "proto.h"
#include "uvm.h"

static char dir[64], rundir[96], src[128], spec[512];

#define GUEST_ERROR "{\"Result\":-2147467259,\"ErrorMessage\":\"crun: injected failure\"}"

/* The agent: each container request answered, or refused when it is the one to fail. */
struct agent {
    uint32_t fail_type; /* 0: none */
    unsigned fail_nth;  /* which of that type (1: the next one) */
    unsigned seen;
};

static const char *
respond(void *opaque, uint32_t type)
{
    struct agent *a = opaque;
    if (a->fail_type == type && ++a->seen == a->fail_nth)
        return GUEST_ERROR;
    switch (type) {
    case PROTO_REQ_CREATE_CONTAINER:
        return "{\"Result\":0,\"ProcessId\":42}";
    case PROTO_REQ_EXECUTE_PROCESS:
        return "{\"Result\":0,\"ProcessId\":43}";
    default:
        return NULL;
    }
}

static struct fixture *
start(struct agent *a)
{
    static const struct fake_qmp_step qemu[] = {FAKE_QMP_QEMU()};
    struct fixture *f = fixture_new(qemu, 1,
                                    &(struct fixture_config){.rundir = rundir, .shares = true});
    pthread_mutex_lock(&f->guest.lock);
    f->guest.respond = respond;
    f->guest.opaque = a;
    pthread_mutex_unlock(&f->guest.lock);
    return f;
}

/* The agent fails the n-th request of `type` from now on. */
static void
agent_fail(struct fixture *f, struct agent *a, uint32_t type, unsigned n)
{
    pthread_mutex_lock(&f->guest.lock);
    a->fail_type = type;
    a->fail_nth = n;
    a->seen = 0;
    pthread_mutex_unlock(&f->guest.lock);
}

static void
expect_state(struct fixture *f, const char *want, const char *when)
{
    cleanup_free char *got = fault_state(f, rundir);
    if (strcmp(got, want))
        fail_msg("%s: the VM holds [%s], expected [%s]", when, got, want);
}

static char last_err[512]; /* the error checked last, for the report */

static void
expect_error(int rc, int code, const char *what, const char *text1, const char *text2)
{
    const char *e = uvm_last_error();
    if (rc != code || !strstr(e, text1) || (text2 && !strstr(e, text2)))
        fail_msg("%s: returned %d: %s (expected %d with '%s')", what, rc, e, code, text1);
    snprintf(last_err, sizeof(last_err), "%s", e);
}

static int
create(struct fixture *f, struct uvm_container **c)
{
    struct uvm_container_config cfg = {
        .id = "c1", .spec_json = spec, .create_stdout = true, .create_stderr = true};
    return uvm_create_container(f->vm, &cfg, c);
}

/* The clean run: what the VM holds before and with the container. */
static void
clean_state(char **before, char **with)
{
    struct agent a = {0};
    struct fixture *f = start(&a);
    *before = fault_state(f, rundir);
    struct uvm_container *c = NULL;
    assert_int_equal(create(f, &c), 0);
    *with = fault_state(f, rundir);
    assert_int_equal(uvm_container_delete(c), 0);
    expect_state(f, *before, "after a clean delete");
    uvm_container_close(c);
    fixture_finish_qemu(f);
    print_message("container with a bind mount: the VM holds [%s] while it exists, [%s] "
                  "before and after\n",
                  *with, *before);
}

/* CreateContainer refused: nothing left (the share removed, its daemon gone); a retry works. */
static void
create_refused(const char *before, const char *with)
{
    size_t fds = fault_open_fds();
    struct agent a = {0};
    struct fixture *f = start(&a);
    agent_fail(f, &a, PROTO_REQ_CREATE_CONTAINER, 1);
    struct uvm_container *c = (void *)1;
    int rc = create(f, &c);
    expect_error(rc, UVM_E_GUEST, "CreateContainer refused", "create container 'c1'",
                 "injected failure");
    assert_null(c);
    expect_state(f, before, "after the refused create");
    assert_int_equal(create(f, &c), 0);
    expect_state(f, with, "after the retried create");
    assert_int_equal(uvm_container_delete(c), 0);
    expect_state(f, before, "after the delete");
    uvm_container_close(c);
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    print_message("    \"%s\"\n", last_err);
    print_message("  CreateContainer refused: UVM_E_GUEST naming the container and the agent's "
                  "text, the VM holds [%s] (share removed, virtiofsd gone), the retry created it, "
                  "delete ok, no fd left\n",
                  before);
}

/* QEMU refuses the bind mount's share (command n of its add): create fails naming the mount. */
static void
share_refused(const char *before, unsigned n)
{
    size_t fds = fault_open_fds();
    struct agent a = {0};
    struct fixture *f = start(&a);
    struct fake_qemu *q = fake_qmp_qemu(f->fq);
    fake_qemu_fail_nth(q, n);
    struct uvm_container *c = (void *)1;
    int rc = create(f, &c);
    fake_qemu_fail_nth(q, 0);
    char failed[64];
    snprintf(failed, sizeof(failed), "%s", fake_qemu_failed(q));
    expect_error(rc, UVM_E_HYPERVISOR, "create container 'c1'", "mounts[0]: share",
                 "injected failure");
    assert_null(c);
    expect_state(f, before, "after the create whose share failed");
    assert_int_equal(fixture_call_count(f), 0); /* no request reached the agent */
    assert_int_equal(create(f, &c), 0);
    uvm_container_close(c); /* deletes it */
    expect_state(f, before, "after close");
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    print_message("    \"%s\"\n", last_err);
    print_message("  create, QEMU failing command %u (%s) of the share: UVM_E_HYPERVISOR naming "
                  "mounts[0], nothing sent to the agent, the VM holds [%s], the retry created "
                  "it, close deleted it, no fd left\n",
                  n, failed, before);
}

/* The start (its first ExecuteProcess) or an exec refused: the container stays whole. */
static void
exec_refused(const char *before, const char *with, bool is_start)
{
    size_t fds = fault_open_fds();
    struct agent a = {0};
    struct fixture *f = start(&a);
    struct uvm_container *c = NULL;
    assert_int_equal(create(f, &c), 0);
    struct uvm_process *p = NULL;
    if (!is_start)
        assert_int_equal(uvm_container_start(c, NULL), 0);
    size_t fds_before = fault_open_fds();
    agent_fail(f, &a, PROTO_REQ_EXECUTE_PROCESS, 1);
    struct uvm_container_process_config pc = {.process_json = "{\"args\":[\"ps\"]}",
                                              .create_stdin = true,
                                              .create_stdout = true};
    int rc = is_start ? uvm_container_start(c, &p) : uvm_container_exec(c, &pc, &p);
    const char *what = is_start ? "start" : "exec";
    expect_error(rc, UVM_E_GUEST, is_start ? "start container 'c1'" : "exec in container 'c1'",
                 "injected failure", NULL);
    assert_null(p);
    assert_int_equal(fault_open_fds(), fds_before); /* a refused exec's pipes are closed */
    expect_state(f, with, what);
    rc = is_start ? uvm_container_start(c, &p) : uvm_container_exec(c, &pc, &p);
    if (rc < 0)
        fail_msg("the retried %s failed: %s", what, uvm_last_error());
    uvm_process_close(p);
    assert_int_equal(uvm_container_delete(c), 0);
    expect_state(f, before, "after the delete");
    uvm_container_close(c);
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    print_message("    \"%s\"\n", last_err);
    print_message("  %s refused: UVM_E_GUEST naming the container, no process and no stream "
                  "fd, the container and its share whole [%s], the retry worked, delete ok, no "
                  "fd left\n",
                  what, with);
}

/* The delete refused: the container and its share stay (the guest still has it); a retry
 * deletes it and removes the share; close sends no second delete. */
static void
delete_refused(const char *before, const char *with)
{
    size_t fds = fault_open_fds();
    struct agent a = {0};
    struct fixture *f = start(&a);
    struct uvm_container *c = NULL;
    assert_int_equal(create(f, &c), 0);
    agent_fail(f, &a, PROTO_REQ_DELETE_CONTAINER_STATE, 1);
    int rc = uvm_container_delete(c);
    expect_error(rc, UVM_E_GUEST, "delete container 'c1'", "injected failure", NULL);
    expect_state(f, with, "after the refused delete");
    assert_int_equal(uvm_container_delete(c), 0);
    expect_state(f, before, "after the retried delete");
    size_t calls = fixture_call_count(f);
    uvm_container_close(c);
    assert_int_equal(fixture_call_count(f), calls);
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    print_message("    \"%s\"\n", last_err);
    print_message("  delete refused: UVM_E_GUEST naming the container, the container and its "
                  "share kept [%s], the retry deleted it and removed the share, close sent "
                  "nothing more, no fd left\n",
                  with);
}

static void
test_container_faults(void **state)
{
    char *before = NULL, *with = NULL;
    clean_state(&before, &with);
    create_refused(before, with);
    share_refused(before, 1);
    share_refused(before, 2);
    exec_refused(before, with, true);
    exec_refused(before, with, false);
    delete_refused(before, with);
    free(before);
    free(with);
}

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-ctrfaults-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(rundir, sizeof(rundir), "%s/run", dir);
    snprintf(src, sizeof(src), "%s/data", dir);
    assert_int_equal(mkdir(rundir, 0700), 0);
    assert_int_equal(mkdir(src, 0755), 0);
    snprintf(spec, sizeof(spec),
             "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"/r\"},\"mounts\":[{"
             "\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s\",\"options\":["
             "\"rbind\",\"ro\"]}]}",
             src);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

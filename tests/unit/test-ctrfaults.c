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

/* ---- the guest agent frozen ---------------------------------------------------------------- */

#define CALL_MS 300 /* agent_call_ms: a share's guest part */
#define CTR_MS 400  /* container_ms: create, start, exec, delete */

enum op { OP_CREATE, OP_START, OP_EXEC, OP_DELETE };
static const char *const op_names[] = {"create", "start", "exec", "delete"};

static struct fixture *
start_frozen(struct agent *a)
{
    static const struct fake_qmp_step qemu[] = {FAKE_QMP_QEMU()};
    struct fixture *f = fixture_new(qemu, 1,
                                    &(struct fixture_config){.rundir = rundir,
                                                             .shares = true,
                                                             .timeouts = {.agent_call_ms = CALL_MS,
                                                                          .container_ms = CTR_MS}});
    pthread_mutex_lock(&f->guest.lock);
    f->guest.respond = respond;
    f->guest.opaque = a;
    pthread_mutex_unlock(&f->guest.lock);
    return f;
}

/* Run op on the container (*c made by OP_CREATE); *p: a process the op made. */
static int
run_op(struct fixture *f, enum op op, struct uvm_container **c, struct uvm_process **p)
{
    static const struct uvm_container_process_config pc = {.process_json = "{\"args\":[\"ps\"]}",
                                                           .create_stdin = true,
                                                           .create_stdout = true};
    switch (op) {
    case OP_CREATE:
        return create(f, c);
    case OP_START:
        return uvm_container_start(*c, p);
    case OP_EXEC:
        return uvm_container_exec(*c, &pc, p);
    default:
        return uvm_container_delete(*c);
    }
}

/* Bring a new container to where op applies: created (and started, for an exec). */
static void
before_op(struct fixture *f, enum op op, struct uvm_container **c)
{
    if (op == OP_CREATE)
        return;
    assert_int_equal(create(f, c), 0);
    if (op == OP_EXEC)
        assert_int_equal(uvm_container_start(*c, NULL), 0);
}

/* The guest requests each op sends in a clean run. */
static void
count_requests(size_t counts[4])
{
    struct agent a = {0};
    struct fixture *f = start_frozen(&a);
    struct uvm_container *c = NULL;
    for (enum op op = OP_CREATE; op <= OP_DELETE; op++) {
        struct uvm_process *p = NULL;
        size_t n = fixture_call_count(f);
        assert_int_equal(run_op(f, op, &c, &p), 0);
        counts[op] = fixture_call_count(f) - n;
        uvm_process_close(p);
    }
    uvm_container_close(c);
    fixture_finish_qemu(f);
}

/* The deadline a request of this type waits for, and the step a timeout names. */
static void
request_step(struct fixture *f, size_t i, char *step, size_t len, const char **knob, int *ms)
{
    uint32_t type = 0;
    json_t *body = fixture_call(f, i, &type);
    json_t *r = json_object_get(body, "Request");
    *knob = "container_ms", *ms = CTR_MS;
    if (type == PROTO_REQ_MODIFY_SETTINGS) {
        snprintf(step, len, "ModifySettings (%s %s)",
                 json_string_value(json_object_get(r, "ResourceType")),
                 json_string_value(json_object_get(r, "RequestType")));
        *knob = "agent_call_ms", *ms = CALL_MS;
    } else {
        snprintf(step, len, "%s", proto_type_name(type));
    }
}

/* What the VM must hold after op timed out at its n-th request (`step`): a create is undone,
 * but a share whose guest part was sent is kept (the guest may use it: nothing is unplugged
 * under it, and nobody holds it then: it stays until the VM closes); a start or exec changes
 * nothing the host holds; a delete keeps what it had not removed when the guest froze. */
static const char *
frozen_want(enum op op, const char *step, const char *before, const char *with)
{
    return op == OP_CREATE && !strcmp(step, "CreateContainer") ? with
           : op == OP_CREATE                                   ? before
                                                               : with;
}

/* The guest agent receives the n-th request of op and never answers it. */
static void
frozen_op(const char *before, const char *with, enum op op, size_t n)
{
    size_t fds = fault_open_fds();
    struct agent a = {0};
    struct fixture *f = start_frozen(&a);
    struct uvm_container *c = NULL;
    before_op(f, op, &c);
    size_t calls = fixture_call_count(f), op_fds = fault_open_fds();
    pthread_mutex_lock(&f->guest.lock);
    f->guest.freeze_skip = (int)n - 1;
    f->guest.freeze_next = 1;
    pthread_mutex_unlock(&f->guest.lock);
    struct uvm_process *p = NULL;
    int rc = run_op(f, op, &c, &p);
    char step[96], what[160], want[256];
    const char *knob;
    int ms;
    request_step(f, calls + n - 1, step, sizeof(step), &knob, &ms);
    snprintf(what, sizeof(what), "container %s, the guest frozen at request %zu (%s)", op_names[op],
             n, step);
    snprintf(want, sizeof(want), "did not answer %s in time (uvm_options.timeouts.%s: %d ms)", step,
             knob, ms);
    expect_error(rc, UVM_E_TIMEOUT, what, want, "container 'c1'");
    assert_null(p);
    if (op == OP_CREATE)
        assert_null(c);
    if (op == OP_START || op == OP_EXEC) /* the process's streams are closed */
        assert_int_equal(fault_open_fds(), op_fds);
    cleanup_free char *held = fault_state(f, rundir);
    bool orphan = op == OP_CREATE && !strcmp(step, "CreateContainer");
    expect_state(f, frozen_want(op, step, before, with), what);
    fake_guest_thaw(&f->guest); /* it answers late: dropped by the id */
    rc = run_op(f, op, &c, &p);
    if (rc < 0)
        fail_msg("%s: the retry failed: %s", what, uvm_last_error());
    if (orphan) { /* a delete followed the create that timed out, before the retry's create */
        uint32_t type = 0;
        json_t *del = fixture_call(f, calls + n, &type);
        const char *id = json_string_value(json_object_get(del, "ContainerId"));
        if (type != PROTO_REQ_DELETE_CONTAINER_STATE || !id || strcmp(id, "c1"))
            fail_msg("%s: no DeleteContainerState for c1 after the create", what);
    }
    uvm_process_close(p);
    if (op != OP_DELETE)
        assert_int_equal(uvm_container_delete(c), 0);
    expect_state(f, orphan ? with : before, "after the delete");
    uvm_container_close(c);
    fixture_finish_qemu(f);
    cleanup_free char *children = fault_children();
    assert_string_equal(children, ""); /* the VM closed: the kept share's daemon too */
    assert_int_equal(fault_open_fds(), fds);
    print_message("    \"%s\"\n", last_err);
    print_message("  %s: UVM_E_TIMEOUT naming the container, the step and %s; the VM holds "
                  "[%s]%s; thawed, %sthe retry worked, delete ok%s, no fd left\n",
                  what, knob, held,
                  op == OP_START || op == OP_EXEC ? ", no process, no stream fd" : "",
                  orphan ? "the guest got a DeleteContainerState for c1 after its create, " : "",
                  orphan ? " (the kept share stays until the VM closes)" : "");
}

static void
test_container_frozen(void **state)
{
    char *before = NULL, *with = NULL;
    clean_state(&before, &with);
    size_t counts[4];
    count_requests(counts);
    for (enum op op = OP_CREATE; op <= OP_DELETE; op++)
        for (size_t n = 1; n <= counts[op]; n++)
            frozen_op(before, with, op, n);
    free(before);
    free(with);
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
        cmocka_unit_test(test_container_frozen),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The per-VM deadlines (uvm_options.timeouts, uvm.h), one test per knob: a peer that freezes
 * (the fake QMP peer stops answering, the fake guest answers long after the deadline) makes the
 * call fail with UVM_E_TIMEOUT once the configured deadline has passed, and the message names
 * the option and its value. What is checked is the outcome and the message, never the time.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "fake-qmp.h"
#include "fixture.h"
#include "qmp.h"
#include "qmpcmd.h"
#include "timeutil.h"

#define SHORT_MS 200u   /* the deadline configured */
#define FROZEN_MS 3000u /* how long the fake guest sleeps before answering: past SHORT_MS */

static char disk[64];

static int
setup(void **state)
{
    strcpy(disk, "/tmp/uvm-timeouts-XXXXXX");
    int fd = mkstemp(disk);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "raw data", 8), 8);
    close(fd);
    return 0;
}

static int
teardown(void **state)
{
    unlink(disk);
    return 0;
}

/* timeouts.qmp_command_ms: QEMU stops answering; every typed command gives up at the VM's
 * deadline (and the client stays usable: a late reply would be dropped by its id). */
static void
test_qmp_command_ms(void **state)
{
    const struct fake_qmp_step script[] = {FAKE_QMP_SILENT()};
    struct fake_qmp *f;
    struct qmp *q = fake_qmp_client(script, 1, &f);
    qmp_set_timeouts(q, (struct qmp_timeouts){.command_ms = SHORT_MS});
    cleanup_json json_t *dev = json_pack("{s:s, s:s}", "driver", "scsi-hd", "id", "d1");
    assert_int_equal(qmpc_device_add(q, dev), UVM_E_TIMEOUT);
    assert_string_equal(uvm_last_error(), "QMP 'vm1': device_add: timed out waiting for the reply "
                                          "(uvm_options.timeouts.qmp_command_ms: 200 ms)");
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), set = 0;
    assert_int_equal(qmpc_add_fd(q, fd, &set, NULL), UVM_E_TIMEOUT);
    close(fd);
    assert_non_null(strstr(uvm_last_error(), "(uvm_options.timeouts.qmp_command_ms: 200 ms)"));
    assert_int_equal(qmpc_device_del(q, "d1"), UVM_E_TIMEOUT);
    assert_non_null(strstr(uvm_last_error(), "device_del: timed out waiting for the reply "
                                             "(uvm_options.timeouts.qmp_command_ms: 200 ms)"));
    fake_qmp_client_finish(q, f);
}

/* timeouts.unplug_ms: QEMU accepts device_del but the guest never lets the device go. */
static void
test_unplug_ms(void **state)
{
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD("{'execute':'device_del','arguments':{'id':'d1'}}", FAKE_QMP_OK)};
    struct fake_qmp *f;
    struct qmp *q = fake_qmp_client(script, 1, &f);
    qmp_set_timeouts(q, (struct qmp_timeouts){.command_ms = 60000, .unplug_ms = SHORT_MS});
    assert_int_equal(qmpc_device_del(q, "d1"), UVM_E_TIMEOUT);
    assert_string_equal(uvm_last_error(), "QMP 'vm1': timed out waiting for event DEVICE_DELETED "
                                          "(uvm_options.timeouts.unplug_ms: 200 ms)");
    fake_qmp_client_finish(q, f);
}

/* Through a VM: a SCSI add whose add-fd QEMU never answers fails at the VM's deadline. */
static void
test_qmp_command_ms_vm(void **state)
{
    const struct fake_qmp_step steps[] = {FAKE_QMP_SILENT()};
    struct fixture *f = fixture_new(
        steps, 1,
        &(struct fixture_config){.scsi_count = 1, .timeouts = {.qmp_command_ms = SHORT_MS}});
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), UVM_E_TIMEOUT);
    assert_non_null(strstr(uvm_last_error(), "add-fd: timed out waiting for the reply "
                                             "(uvm_options.timeouts.qmp_command_ms: 200 ms)"));
    assert_int_equal(fixture_request_count(f), 0); /* the guest was not asked */
    fixture_finish(f, NULL, 0);
}

static struct fixture *
frozen_guest(const struct uvm_timeouts *t)
{
    struct fixture *f = fixture_new(NULL, 0, &(struct fixture_config){.timeouts = *t});
    pthread_mutex_lock(&f->guest.lock);
    f->guest.delay_ms = FROZEN_MS;
    pthread_mutex_unlock(&f->guest.lock);
    return f;
}

/* timeouts.agent_call_ms: the guest agent does not answer an exec in time. */
static void
test_agent_call_ms(void **state)
{
    struct fixture *f = frozen_guest(&(struct uvm_timeouts){.agent_call_ms = SHORT_MS});
    static const char *const argv[] = {"true", NULL};
    struct uvm_process *p = NULL;
    assert_int_equal(uvm_exec(f->vm, &(struct uvm_process_config){.argv = argv}, &p),
                     UVM_E_TIMEOUT);
    assert_null(p);
    assert_non_null(strstr(uvm_last_error(), "(uvm_options.timeouts.agent_call_ms: 200 ms)"));
    fixture_finish(f, NULL, 0);
}

/* timeouts.container_ms: the guest's crun does not finish a create in time; the agent call
 * deadline does not apply to it (it is longer here, and it is not the one named). */
static void
test_container_ms(void **state)
{
    struct fixture *f = frozen_guest(
        &(struct uvm_timeouts){.agent_call_ms = 60000, .container_ms = SHORT_MS});
    struct uvm_container *c = NULL;
    struct uvm_container_config cfg = {
        .id = "c1", .spec_json = "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"/r\"}}"};
    assert_int_equal(uvm_create_container(f->vm, &cfg, &c), UVM_E_TIMEOUT);
    assert_null(c);
    assert_non_null(strstr(uvm_last_error(), "(uvm_options.timeouts.container_ms: 200 ms)"));
    fixture_finish(f, NULL, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qmp_command_ms),    cmocka_unit_test(test_unplug_ms),
        cmocka_unit_test(test_qmp_command_ms_vm), cmocka_unit_test(test_agent_call_ms),
        cmocka_unit_test(test_container_ms),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The typed QMP layer (qmpcmd.h) against the scripted fake QMP peer: the exact commands of a
 * plug, its rollback keeping the first error and its class, a rollback that fails (dirty), a
 * backend that fails (nothing to undo), device_del + DEVICE_DELETED, DeviceNotFound counting as
 * removed, the unplug timeout tests can lower; and the thread error's capture/restore.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "fake-qmp.h"
#include "qmp.h"
#include "qmpcmd.h"
#include "timeutil.h"

#define BLOCKDEV_ADD "{'execute':'blockdev-add','arguments':{'driver':'raw','node-name':'n1'}}"
#define BLOCKDEV_DEL "{'execute':'blockdev-del','arguments':{'node-name':'n1'}}"
#define DEVICE_ADD "{'execute':'device_add','arguments':{'driver':'scsi-hd','id':'n1'}}"
#define DEVICE_DEL "{'execute':'device_del','arguments':{'id':'n1'}}"
#define DELETED "{'event':'DEVICE_DELETED','data':{'device':'n1'}}"

#define START(script, f) fake_qmp_client(script, ARRAY_SIZE(script), f)

static json_t *
args(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void
test_plug_ok(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {FAKE_QMP_CMD(BLOCKDEV_ADD, FAKE_QMP_OK),
                                           FAKE_QMP_CMD(DEVICE_ADD, FAKE_QMP_OK)};
    struct fake_qmp *f;
    struct qmp *q = START(script, &f);
    cleanup_json json_t *b = args("{\"driver\":\"raw\",\"node-name\":\"n1\"}");
    cleanup_json json_t *d = args("{\"driver\":\"scsi-hd\",\"id\":\"n1\"}");
    const struct qmpc_backend be = QMPC_BLOCKDEV(b, "n1");
    bool dirty = false, no_backend = true;
    assert_int_equal(qmpc_plug(q, &be, d, &dirty, &no_backend), 0);
    assert_false(dirty);
    assert_false(no_backend);
    fake_qmp_client_finish(q, f);
}

/* The device fails: the backend is deleted, the device's error (and class) is what returns. */
static void
test_plug_rollback_keeps_first_error(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD(BLOCKDEV_ADD, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_ADD, FAKE_QMP_ERROR("DeviceNotFound", "Bus \\'scsi9.0\\' not found")),
        FAKE_QMP_CMD(BLOCKDEV_DEL, FAKE_QMP_OK)};
    struct fake_qmp *f;
    struct qmp *q = START(script, &f);
    cleanup_json json_t *b = args("{\"driver\":\"raw\",\"node-name\":\"n1\"}");
    cleanup_json json_t *d = args("{\"driver\":\"scsi-hd\",\"id\":\"n1\"}");
    const struct qmpc_backend be = QMPC_BLOCKDEV(b, "n1");
    bool dirty = false, no_backend = true;
    assert_int_equal(qmpc_plug(q, &be, d, &dirty, &no_backend), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "device_add: Bus 'scsi9.0' not found"));
    assert_int_equal(uvm_error_class(), QMP_ERROR_DEVICE_NOT_FOUND);
    assert_false(dirty);
    assert_false(no_backend);
    fake_qmp_client_finish(q, f);
}

/* The rollback fails too: dirty, and still the first error. */
static void
test_plug_rollback_fails(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD(BLOCKDEV_ADD, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_ADD, FAKE_QMP_ERROR("GenericError", "no slot")),
        FAKE_QMP_CMD(BLOCKDEV_DEL, FAKE_QMP_ERROR("GenericError", "node is in use"))};
    struct fake_qmp *f;
    struct qmp *q = START(script, &f);
    cleanup_json json_t *b = args("{\"driver\":\"raw\",\"node-name\":\"n1\"}");
    cleanup_json json_t *d = args("{\"driver\":\"scsi-hd\",\"id\":\"n1\"}");
    const struct qmpc_backend be = QMPC_BLOCKDEV(b, "n1");
    bool dirty = false;
    assert_int_equal(qmpc_plug(q, &be, d, &dirty, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "device_add: no slot"));
    assert_null(strstr(uvm_last_error(), "in use"));
    assert_int_equal(uvm_error_class(), QMP_ERROR_GENERIC);
    assert_true(dirty);
    fake_qmp_client_finish(q, f);
}

/* The backend fails: the device_add sent with it fails harmlessly, nothing is deleted. */
static void
test_plug_backend_fails(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD(BLOCKDEV_ADD, FAKE_QMP_ERROR("GenericError", "Could not open")),
        FAKE_QMP_CMD(DEVICE_ADD, FAKE_QMP_ERROR("GenericError", "drive n1 not found"))};
    struct fake_qmp *f;
    struct qmp *q = START(script, &f);
    cleanup_json json_t *b = args("{\"driver\":\"raw\",\"node-name\":\"n1\"}");
    cleanup_json json_t *d = args("{\"driver\":\"scsi-hd\",\"id\":\"n1\"}");
    const struct qmpc_backend be = QMPC_BLOCKDEV(b, "n1");
    bool dirty = false, no_backend = false;
    assert_int_equal(qmpc_plug(q, &be, d, &dirty, &no_backend), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "blockdev-add: Could not open"));
    assert_true(no_backend);
    assert_false(dirty);
    fake_qmp_client_finish(q, f);
}

static void
test_unplug(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {FAKE_QMP_CMD(DEVICE_DEL, FAKE_QMP_OK),
                                           FAKE_QMP_EVENT(DELETED),
                                           FAKE_QMP_CMD(BLOCKDEV_DEL, FAKE_QMP_OK)};
    struct fake_qmp *f;
    struct qmp *q = START(script, &f);
    const struct qmpc_backend be = QMPC_BLOCKDEV(NULL, "n1");
    assert_int_equal(qmpc_unplug(q, "n1", &be), 0);
    fake_qmp_client_finish(q, f);
}

/* A retry after DEVICE_DELETED came but the backend's delete failed: QEMU no longer knows the
 * device (DeviceNotFound), which counts as removed, and the retry goes on to the backend. */
static void
test_unplug_retry_device_gone(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD(DEVICE_DEL, FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED),
        FAKE_QMP_CMD(BLOCKDEV_DEL, FAKE_QMP_ERROR("GenericError", "busy")),
        FAKE_QMP_CMD(DEVICE_DEL, FAKE_QMP_ERROR("DeviceNotFound", "Device \\'n1\\' not found")),
        FAKE_QMP_CMD(BLOCKDEV_DEL, FAKE_QMP_OK)};
    struct fake_qmp *f;
    struct qmp *q = START(script, &f);
    const struct qmpc_backend be = QMPC_BLOCKDEV(NULL, "n1");
    assert_int_equal(qmpc_unplug(q, "n1", &be), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "blockdev-del: busy"));
    assert_int_equal(qmpc_unplug(q, "n1", &be), 0);
    fake_qmp_client_finish(q, f);
}

/* Another error class of device_del is an error; no DEVICE_DELETED: the (lowered) timeout. */
static void
test_device_del_errors_and_timeout(void **state)
{
    (void)state;
    const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD(DEVICE_DEL, FAKE_QMP_ERROR("GenericError", "already in the process of "
                                                                "unplug")),
        FAKE_QMP_CMD(DEVICE_DEL, FAKE_QMP_OK)};
    struct fake_qmp *f;
    struct qmp *q = START(script, &f);
    assert_int_equal(qmpc_device_del(q, "n1"), UVM_E_HYPERVISOR);
    assert_int_equal(uvm_error_class(), QMP_ERROR_GENERIC);
    qmp_set_timeouts(q, (struct qmp_timeouts){.unplug_ms = 200});
    assert_int_equal(qmpc_device_del(q, "n1"), UVM_E_TIMEOUT);
    assert_string_equal(uvm_last_error(), "QMP 'vm1': timed out waiting for event DEVICE_DELETED "
                                          "(uvm_options.timeouts.unplug_ms: 200 ms)");
    assert_int_equal(uvm_error_class(), 0);
    fake_qmp_client_finish(q, f);
}

static void
test_error_capture_restore(void **state)
{
    (void)state;
    uvm_error(UVM_E_HYPERVISOR, "first: %s", "device_add failed");
    uvm_error_set_class(QMP_ERROR_DEVICE_NOT_FOUND);
    struct uvm_error_state st;
    uvm_error_capture(&st);
    uvm_error(UVM_E_TIMEOUT, "the rollback timed out");
    assert_int_equal(uvm_error_class(), 0); /* a new error resets the class */
    assert_int_equal(uvm_error_restore(&st, UVM_E_HYPERVISOR), UVM_E_HYPERVISOR);
    assert_string_equal(uvm_last_error(), "first: device_add failed");
    assert_int_equal(uvm_error_class(), QMP_ERROR_DEVICE_NOT_FOUND);
    assert_null(st.msg);
    uvm_error_wrap(UVM_E_HYPERVISOR, "add scsi");
    assert_int_equal(uvm_error_class(), QMP_ERROR_DEVICE_NOT_FOUND); /* wrapping keeps it */
    assert_string_equal(uvm_last_error(), "add scsi: first: device_add failed");
}

static void
test_error_class_names(void **state)
{
    (void)state;
    assert_int_equal(qmp_error_class_of("DeviceNotFound"), QMP_ERROR_DEVICE_NOT_FOUND);
    assert_int_equal(qmp_error_class_of("CommandNotFound"), QMP_ERROR_COMMAND_NOT_FOUND);
    assert_int_equal(qmp_error_class_of("DeviceNotActive"), QMP_ERROR_DEVICE_NOT_ACTIVE);
    assert_int_equal(qmp_error_class_of("KVMMissingCap"), QMP_ERROR_KVM_MISSING_CAP);
    assert_int_equal(qmp_error_class_of("GenericError"), QMP_ERROR_GENERIC);
    assert_int_equal(qmp_error_class_of("SomethingNew"), QMP_ERROR_GENERIC);
    assert_int_equal(qmp_error_class_of(NULL), QMP_ERROR_GENERIC);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plug_ok),
        cmocka_unit_test(test_plug_rollback_keeps_first_error),
        cmocka_unit_test(test_plug_rollback_fails),
        cmocka_unit_test(test_plug_backend_fails),
        cmocka_unit_test(test_unplug),
        cmocka_unit_test(test_unplug_retry_device_gone),
        cmocka_unit_test(test_device_del_errors_and_timeout),
        cmocka_unit_test(test_error_capture_restore),
        cmocka_unit_test(test_error_class_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

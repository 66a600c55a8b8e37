/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm_modify's decoding: routing of ResourcePath, top-level fields, MACs (modify_route), and
 * the whole path of one SCSI Add/Remove through the fake QMP peer and fake guest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "fake-guest.h"
#include "fake-qmp.h"
#include "fixture.h"
#include "modify.h"
#include "modreq.h"
#include "uvm.h"

static char dir[64], disk[128];

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-modify-unit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(disk, sizeof(disk), "%s/disk.img", dir);
    FILE *fp = fopen(disk, "w");
    fputs("raw data", fp);
    fclose(fp);
    return 0;
}

static int
teardown(void **state)
{
    unlink(disk);
    return rmdir(dir);
}

static void
route_ok(const char *json, const char *want)
{
    const char *pattern = "unset";
    int rc = modify_route("t", json, &pattern);
    if (rc != 0)
        fail_msg("%s: %d %s", json, rc, uvm_last_error());
    if (want)
        assert_string_equal(pattern, want);
    else
        assert_null(pattern);
}

static void
route_err(const char *json, int code, const char *field)
{
    const char *pattern = NULL;
    int rc = modify_route("t", json, &pattern);
    if (rc != code || !strstr(uvm_last_error(), field))
        fail_msg("%s: got %d '%s', want %d naming '%s'", json, rc, uvm_last_error(), code, field);
}

static void
test_routes(void **state)
{
    route_ok("{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/3\"}",
             "VirtualMachine/Devices/Scsi/{n}/Attachments/{n}");
    route_ok("{\"ResourcePath\":\"VirtualMachine/Devices/VirtualPMem/Devices/127\","
             "\"RequestType\":\"Remove\"}",
             "VirtualMachine/Devices/VirtualPMem/Devices/{n}");
    route_ok("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\"}",
             "VirtualMachine/Devices/Plan9/Shares");
    route_ok("{\"ResourcePath\":\"VirtualMachine/Devices/VirtualSmb/Shares\"}",
             "VirtualMachine/Devices/VirtualSmb/Shares");
    route_ok("{\"ResourcePath\":\"VirtualMachine/Devices/NetworkAdapters/ab-cd\"}",
             "VirtualMachine/Devices/NetworkAdapters/{id}");
    route_ok("{\"GuestRequest\":{\"ResourceType\":\"CombinedLayers\"}}", NULL);
}

static void
test_errors(void **state)
{
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0\"}", UVM_E_NOT_SUPPORTED,
              "VirtualMachine/Devices/Scsi/0");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/3/x\"}",
              UVM_E_NOT_SUPPORTED, "ResourcePath");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Scsi//Attachments/3\"}",
              UVM_E_NOT_SUPPORTED, "ResourcePath");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/a/Attachments/3\"}",
              UVM_E_INVALID_ARGUMENT, "controller 'a'");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/-1\"}",
              UVM_E_INVALID_ARGUMENT, "LUN '-1'");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/VirtualPMem/Devices/9999999999\"}",
              UVM_E_INVALID_ARGUMENT, "device number");
    route_err("{\"ResourcePath\":3}", UVM_E_INVALID_ARGUMENT, "ResourcePath");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"RequestType\":\"Up\"}",
              UVM_E_INVALID_ARGUMENT, "RequestType");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"RequestType\":1}",
              UVM_E_INVALID_ARGUMENT, "RequestType");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"Settings\":[]}",
              UVM_E_INVALID_ARGUMENT, "Settings");
    route_err("{\"GuestRequest\":[]}", UVM_E_INVALID_ARGUMENT, "GuestRequest");
    route_err("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"GuestRequest\":{"
              "\"Settings\":{}}}",
              UVM_E_INVALID_ARGUMENT, "GuestRequest.ResourceType");
    route_err("{\"Resourcepath\":\"x\"}", UVM_E_INVALID_ARGUMENT, "Resourcepath");
    route_err("[1]", UVM_E_INVALID_ARGUMENT, "not a JSON object");
    route_err("{\"ResourcePath\":\"a\",\"ResourcePath\":\"b\"}", UVM_E_INVALID_ARGUMENT,
              "JSON");
}

static void
test_mac(void **state)
{
    char out[18];
    assert_int_equal(modreq_mac_normalize("00-15-5D-0A-0b-0C", out), 0);
    assert_string_equal(out, "00:15:5d:0a:0b:0c");
    assert_int_equal(modreq_mac_normalize("00:15:5d:0a:0b:0c", out), 0);
    assert_int_equal(modreq_mac_normalize("00:15:5d:0a:0b", out), -1);
    assert_int_equal(modreq_mac_normalize("00:15:5d:0a:0b:0g", out), -1);
    assert_int_equal(modreq_mac_normalize("00.15.5d.0a.0b.0c", out), -1);
}

/* Settings errors are found before anything is sent to QEMU or the guest. */
static void
test_settings_errors(void **state)
{
    struct fixture *f = fixture_new(NULL, 0, &(struct fixture_config){.scsi_count = 1,
                                                                       .vpmem_count = 4});
    const struct {
        const char *json, *field;
        int code;
    } cases[] = {
        {"{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/1\"}", "Settings is "
         "missing", UVM_E_INVALID_ARGUMENT},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/1\",\"Settings\":{\"Path\""
         ":1}}", "Settings.Path must be a string", UVM_E_INVALID_ARGUMENT},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/1\",\"Settings\":{\"Path\""
         ":\"/x\",\"Type\":\"PassThru\"}}", "Settings.Type", UVM_E_NOT_SUPPORTED},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/1/Attachments/1\",\"Settings\":{\"Path\""
         ":\"/x\"}}", "controller 1 is out of range", UVM_E_INVALID_ARGUMENT},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/VirtualPMem/Devices/4\",\"Settings\":{"
         "\"HostPath\":\"/x\"}}", "device number 4 is out of range", UVM_E_INVALID_ARGUMENT},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/VirtualPMem/Devices/0\",\"Settings\":{"
         "\"HostPath\":\"/x\",\"ReadOnly\":false}}", "Settings.ReadOnly", UVM_E_NOT_SUPPORTED},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"Settings\":{\"Name\":\"1\","
         "\"Path\":\"/x\",\"Port\":0}}", "Settings.Port 0 is out of range", UVM_E_INVALID_ARGUMENT},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"Settings\":{\"Name\":\"1\","
         "\"Path\":\"/x\",\"Port\":1,\"Flags\":2}}", "Settings.Flags", UVM_E_NOT_SUPPORTED},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/VirtualSmb/Shares\",\"Settings\":{\"Name\":"
         "\"a b\",\"Path\":\"/x\"}}", "Settings.Name", UVM_E_INVALID_ARGUMENT},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/VirtualSmb/Shares\",\"Settings\":{\"Name\":"
         "\"s1\",\"Path\":\"/x\",\"Options\":{\"ReadOnly\":1}}}", "Settings.Options.ReadOnly",
         UVM_E_INVALID_ARGUMENT},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/NetworkAdapters/x\",\"Settings\":{"
         "\"MacAddress\":\"00:15:5d:00:00:01\"}}", "Settings.EndpointId", UVM_E_INVALID_ARGUMENT},
        {"{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/1\",\"RequestType\":"
         "\"Remove\"}", "not attached", UVM_E_NOT_ATTACHED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = uvm_modify(f->vm, cases[i].json);
        if (rc != cases[i].code || !strstr(uvm_last_error(), cases[i].field))
            fail_msg("%s: got %d '%s', want %d with '%s'", cases[i].json, rc, uvm_last_error(),
                     cases[i].code, cases[i].field);
    }
    assert_int_equal(fixture_request_count(f), 0);
    fixture_finish(f, NULL, 0);
}

#define ADD_FD "{'execute':'add-fd'}"
#define BLOCKDEV_ADD                                                                               \
    "{'execute':'blockdev-add','arguments':{'driver':'raw','node-name':'scsi0-2',"               \
    "'read-only':false,'file':{'driver':'file','filename':'/dev/fdset/1','read-only':false}}}"
#define DEVICE_ADD                                                                                 \
    "{'execute':'device_add','arguments':{'driver':'scsi-hd','id':'scsi0-2','bus':'scsi0.0',"    \
    "'channel':0,'scsi-id':0,'lun':2,'drive':'scsi0-2'}}"
#define DEVICE_DEL "{'execute':'device_del','arguments':{'id':'scsi0-2'}}"
#define BLOCKDEV_DEL "{'execute':'blockdev-del','arguments':{'node-name':'scsi0-2'}}"
#define REMOVE_FD "{'execute':'remove-fd','arguments':{'fdset-id':1}}"

/* Add at 0:2 with a GuestRequest the guest refuses: the caller's request is sent as it is, after
 * the hot-plug, and the host part is undone; the slot is free again. */
static void
test_guest_refusal_rolls_back(void **state)
{
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, "{'return':{'fdset-id':1,'fd':40}}"),
        FAKE_QMP_CMD(BLOCKDEV_ADD, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_ADD, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL, FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'device':'scsi0-2','path':'/x'}}"),
        FAKE_QMP_CMD(BLOCKDEV_DEL, FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD, FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, 7, &(struct fixture_config){.scsi_count = 1});
    f->guest.fail_next = 1;
    char json[512];
    const char *guest = "{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":\"Add\","
                        "\"Settings\":{\"MountPath\":\"/m\",\"Lun\":2}}";
    snprintf(json, sizeof(json),
             "{\"ResourcePath\":\"VirtualMachine/Devices/Scsi/0/Attachments/2\",\"RequestType\":"
             "\"Add\",\"Settings\":{\"Path\":\"%s\",\"Type\":\"VirtualDisk\"},"
             "\"GuestRequest\":%s}",
             disk, guest);
    assert_int_equal(uvm_modify(f->vm, json), UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "at 0:2"));
    json_t *want = json_loads(guest, 0, NULL);
    assert_true(json_equal(fixture_request(f, 0), want));
    json_decref(want);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), UVM_E_NOT_ATTACHED);
    const char *stream[] = {ADD_FD, BLOCKDEV_ADD, DEVICE_ADD, DEVICE_DEL, BLOCKDEV_DEL,
                            REMOVE_FD};
    fixture_finish(f, stream, 6);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_guest_refusal_rolls_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

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

#include "modify.h"
#include "uvm.h"

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
    route_err("{\"GuestRequest\":{\"Settings\":{}}}", UVM_E_INVALID_ARGUMENT,
              "GuestRequest.ResourceType");
    route_err("{\"Resourcepath\":\"x\"}", UVM_E_INVALID_ARGUMENT, "Resourcepath");
    route_err("[1]", UVM_E_INVALID_ARGUMENT, "not a JSON object");
    route_err("{\"ResourcePath\":\"a\",\"ResourcePath\":\"b\"}", UVM_E_INVALID_ARGUMENT,
              "JSON");
}

static void
test_mac(void **state)
{
    char out[18];
    assert_int_equal(modify_mac_normalize("00-15-5D-0A-0b-0C", out), 0);
    assert_string_equal(out, "00:15:5d:0a:0b:0c");
    assert_int_equal(modify_mac_normalize("00:15:5d:0a:0b:0c", out), 0);
    assert_int_equal(modify_mac_normalize("00:15:5d:0a:0b", out), -1);
    assert_int_equal(modify_mac_normalize("00:15:5d:0a:0b:0g", out), -1);
    assert_int_equal(modify_mac_normalize("00.15.5d.0a.0b.0c", out), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_mac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

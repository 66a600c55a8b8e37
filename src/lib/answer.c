/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "answer.h"
#include "error.h"
#include "proto.h"

int
answer_negotiate(const json_t *resp, struct answer_negotiate *out)
{
    *out = (struct answer_negotiate){0};
    json_t *ver = json_object_get(resp, "Version");
    json_t *caps = json_object_get(json_object_get(resp, "Capabilities"),
                                   "GuestDefinedCapabilities");
    if (!json_is_integer(ver) || json_integer_value(ver) != PROTO_VERSION ||
        (caps && !json_is_object(caps)))
        return uvm_error(UVM_E_PROTOCOL, "the guest agent negotiated an unsupported protocol");
    out->version = PROTO_VERSION;
    out->namespace_add_request_supported =
        json_is_true(json_object_get(caps, "NamespaceAddRequestSupported"));
    out->signal_process_supported = json_is_true(json_object_get(caps, "SignalProcessSupported"));
    json_t *gt = json_object_get(resp, "GuestTimes");
    json_t *init = json_object_get(gt, "InitStartUs"), *ready = json_object_get(gt, "ReadyUs");
    /* Microseconds since the guest booted: 0 <= init <= ready, or not believed (and then the
     * difference cannot overflow). */
    if (json_is_integer(init) && json_is_integer(ready) && json_integer_value(init) >= 0 &&
        json_integer_value(ready) >= json_integer_value(init)) {
        out->has_guest_startup = true;
        out->guest_startup_us = (uint64_t)(json_integer_value(ready) - json_integer_value(init));
    }
    return 0;
}

int
answer_exec(const json_t *resp, int *pid)
{
    json_t *v = json_object_get(resp, "ProcessId");
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 0x7fffffff)
        return uvm_error(UVM_E_PROTOCOL, "the guest agent answered without a pid");
    *pid = (int)json_integer_value(v);
    return 0;
}

int
answer_wait(const json_t *resp, int *exit_code)
{
    json_t *v = json_object_get(resp, "ExitCode");
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255)
        return uvm_error(UVM_E_PROTOCOL,
                         "the guest agent answered without an exit code in 0..255");
    *exit_code = (int)json_integer_value(v);
    return 0;
}

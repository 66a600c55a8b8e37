/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "answer.h"
#include "cleanup.h"
#include "error.h"
#include "options.h"
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
        out->guest_ready_us = (uint64_t)json_integer_value(ready);
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

/* The guest's text shown to the caller as it is: printable ASCII only. */
static bool
printable(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

static int
container_entry(const json_t *e, struct uvm_container_info *out)
{
    const char *id = json_string_value(json_object_get(e, "Id"));
    const char *state = json_string_value(json_object_get(e, "State"));
    json_t *pid = json_object_get(e, "InitProcessId");
    if (!id || !options_id_valid(id) || strlen(id) >= sizeof(out->id) || !state || !*state ||
        strlen(state) >= sizeof(out->state) || !printable(state) || !json_is_integer(pid) ||
        json_integer_value(pid) < 0 || json_integer_value(pid) > 0x7fffffff)
        return uvm_error(UVM_E_PROTOCOL, "a malformed ContainerList entry from the guest agent");
    strcpy(out->id, id);
    strcpy(out->state, state);
    out->init_pid = (int)json_integer_value(pid);
    return 0;
}

int
answer_container_list(const json_t *resp, struct uvm_container_info **list, size_t *n)
{
    *list = NULL;
    *n = 0;
    json_t *arr = json_object_get(json_object_get(resp, "Properties"), "ContainerList");
    if (!json_is_array(arr))
        return uvm_error(UVM_E_PROTOCOL, "the guest agent sent no ContainerList");
    size_t count = json_array_size(arr);
    cleanup_free struct uvm_container_info *out = count ? xcalloc(count, sizeof(*out)) : NULL;
    for (size_t i = 0; i < count; i++) {
        int rc = container_entry(json_array_get(arr, i), &out[i]);
        if (rc < 0)
            return rc;
    }
    *list = steal_ptr(&out);
    *n = count;
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the guest agent's answers say: the fields of its responses the library acts on, checked
 * before they are believed (the guest is hostile: any JSON object with "Result": 0 can arrive,
 * see docs/protocol.md for the shapes). Pure functions of the response object bridge_call
 * returns (borrowed); a failure is UVM_E_PROTOCOL with the message set, which callers prefix
 * with their context.
 */
#ifndef UVM_LIB_ANSWER_H
#define UVM_LIB_ANSWER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvm.h"

/* NegotiateProtocol. */
struct answer_negotiate {
    uint32_t version; /* always PROTO_VERSION on success */
    bool namespace_add_request_supported;
    bool signal_process_supported;
    /* GuestTimes: ReadyUs - InitStartUs, the agent's own start-up on the guest's clock, when
     * both are integers with 0 <= InitStartUs <= ReadyUs. */
    bool has_guest_startup;
    uint64_t guest_startup_us;
    uint64_t guest_ready_us; /* with has_guest_startup: ReadyUs, the guest's uptime */
};

/* The version must be PROTO_VERSION and GuestDefinedCapabilities an object when present. */
int answer_negotiate(const json_t *resp, struct answer_negotiate *out);

/* ExecuteProcess: the ProcessId, an integer in 1..INT32_MAX. */
int answer_exec(const json_t *resp, int *pid);

/* WaitForProcess: the ExitCode, an integer in 0..255. */
int answer_wait(const json_t *resp, int *exit_code);

/* GetProperties ContainerList: a new array of *n entries in *list (NULL when none; the caller
 * frees it). Each entry needs an Id that is a valid ID (options_id_valid: the host named the
 * container), a State of printable ASCII that fits (the agent's "running", "being created",
 * ...) and an InitProcessId in 0..INT32_MAX. */
int answer_container_list(const json_t *resp, struct uvm_container_info **list, size_t *n);

#endif

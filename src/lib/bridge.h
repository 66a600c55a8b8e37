/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Host side of the guest agent protocol (docs/protocol.md): one I/O thread per VM owns the
 * channel fd and the host ends of every process's stdio; callers queue requests and wait for
 * their responses with a deadline. The VM lock is never held here.
 */
#ifndef UVM_LIB_BRIDGE_H
#define UVM_LIB_BRIDGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BRIDGE_TIMEOUT_MS 30000u           /* one agent request: timeouts.agent_call_ms */
#define BRIDGE_CONTAINER_TIMEOUT_MS 60000u /* a container request (crun): timeouts.container_ms */
/* Deadlines bridge_call turns into now + the bridge's own timeout of that kind: a call that runs
 * out of one fails with UVM_E_TIMEOUT and a message naming the option. */
#define BRIDGE_DEADLINE_CALL ((int64_t)-1)      /* an agent request */
#define BRIDGE_DEADLINE_CONTAINER ((int64_t)-2) /* a container request */

struct bridge;

#define BRIDGE_MAX_OUTQ (8u << 20) /* bytes queued to a guest that does not read: broken */

/* Take ownership of a connected stream fd and start the I/O thread. The guest's log lines
 * (notifications) reach the log handler cleaned (sanitize.h), rate limited per bridge and, unless
 * trust_guest_log_levels, at WARNING at most. */
int bridge_new(int fd, const char *vm_id, bool trust_guest_log_levels, struct bridge **out);
/* Test hook: the clock of the log rate limit (monotonic microseconds; NULL: the real one). The
 * bucket starts full at the clock's current value. */
void bridge_set_clock(struct bridge *b, int64_t (*clock)(void *opaque), void *opaque);
/* The VM's deadlines (uvm_options.timeouts) in ms, 0: the defaults above. Set before the bridge
 * is shared with other threads. */
void bridge_set_timeouts(struct bridge *b, unsigned call_ms, unsigned container_ms);
/* Stop the thread, fail pending calls, close every fd, free. NULL is fine. */
void bridge_free(struct bridge *b);
/* Fail all pending and future calls with code and message (the VM exited). First call wins. */
void bridge_shutdown(struct bridge *b, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Send a request (req consumed; ActivityId is added, and ContainerId = the UVM's null GUID
 * unless req has one: a container's requests name it) and wait for its response
 * until deadline (DEADLINE_NEVER allowed: the call then ends with the VM at the latest; or a
 * BRIDGE_DEADLINE_*).
 * 0 and *resp (new reference, may be NULL) on Result 0; UVM_E_GUEST with the guest's message on
 * a failed Result; UVM_E_PROTOCOL on a malformed response; UVM_E_TIMEOUT; the shutdown code. */
int bridge_call(struct bridge *b, uint32_t type, json_t *req, json_t **resp, int64_t deadline);

/* The guest part of a hot-plug: the request a resource kind builds itself (typed calls), or
 * the caller's GuestRequest of a uvm_modify, or none (a uvm_modify without one). */
struct guest_part {
    bool custom;     /* false: the kind builds its own request */
    json_t *request; /* custom: the GuestRequest object (borrowed), NULL: send nothing */
};

/* Send a GuestRequest object ({ResourceType, RequestType, Settings}, borrowed) as a
 * ModifySettings request and wait for the answer until deadline (bridge_call's codes). */
int bridge_modify(struct bridge *b, const json_t *guest_request, int64_t deadline);
/* A resource kind's guest part: g NULL or not custom -> `typed` ({ResourceType, RequestType,
 * Settings}: the kind's own request, taken; NULL: send nothing); custom -> g->request (or
 * nothing). Sent with bridge_modify and BRIDGE_DEADLINE_CALL. */
int bridge_guest_part(struct bridge *b, const struct guest_part *g, json_t *typed);
/* {ResourceType, RequestType, Settings} (settings taken). */
json_t *bridge_guest_request(const char *resource_type, const char *request_type,
                             json_t *settings);

/* A new stdio handle (unique per bridge, > 0). */
uint32_t bridge_new_handle(struct bridge *b);
/* Attach the host ends of a process's stdio to handle: fds[0] is read and sent as stdin,
 * fds[1]/fds[2] receive stdout/stderr; -1 where absent. The fds are taken (non-blocking).
 * fds[0] and fds[1] may be two descriptors of one socket (a terminal's): the end of the output
 * shuts the socket's write side down, so the user reads end-of-file while stdin stays open. */
void bridge_stream_add(struct bridge *b, uint32_t handle, const int fds[3]);
/* Detach and close the host ends of handle (data arriving later is acknowledged and dropped). */
void bridge_stream_remove(struct bridge *b, uint32_t handle);

#endif

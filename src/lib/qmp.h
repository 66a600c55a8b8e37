/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QMP client: transport (greeting, capabilities, command ids, replies, event queue).
 *
 * Synchronous and thread-safe: commands are serialised by the client's own lock, which is held
 * only while one command is on the wire. Events read while waiting for a reply are queued and
 * handed out by qmp_wait_event(). Every call takes an absolute deadline (CLOCK_MONOTONIC, in
 * microseconds, see qmp_deadline()).
 */
#ifndef UVM_LIB_QMP_H
#define UVM_LIB_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct qmp;

#define QMP_MAX_LINE (1u << 20) /* a reply or event longer than this is a protocol error */
#define QMP_MAX_EVENTS 256u     /* queued events beyond this drop the oldest (O(1)) */

/* Now + timeout_ms on CLOCK_MONOTONIC, in microseconds. */
int64_t qmp_deadline(unsigned timeout_ms);

/* Take ownership of a connected stream socket fd (closed by qmp_free, or here on failure).
 * vm_id is used in messages and logs. NULL with the message set if fd is unusable.
 * qmp_free must not race with calls in other threads. */
struct qmp *qmp_new(int fd, const char *vm_id);
void qmp_free(struct qmp *q);

/* The deadlines the typed layer (qmpcmd.h) gives this client's commands, in milliseconds (0:
 * its defaults). The transport itself only takes absolute deadlines and never reads them. Set
 * before the client is shared with other threads. */
struct qmp_timeouts {
    unsigned command_ms; /* one command or batch */
    unsigned unplug_ms;  /* device_del -> DEVICE_DELETED */
};
void qmp_set_timeouts(struct qmp *q, struct qmp_timeouts t);
struct qmp_timeouts qmp_get_timeouts(const struct qmp *q);

/* Read the greeting and send qmp_capabilities. 0 or UVM_E_TIMEOUT / UVM_E_HYPERVISOR
 * (message set with uvm_error). */
int qmp_handshake(struct qmp *q, int64_t deadline);

/* Run one command. args may be NULL; it is borrowed. On success *reply (if non-NULL) gets the
 * "return" value (new reference). A QMP error reply gives UVM_E_HYPERVISOR with the message
 * "QMP '<vm_id>': <command>: <error.desc>" and its class in uvm_error_class(); a closed
 * connection gives UVM_E_HYPERVISOR "QMP '<vm_id>': connection closed"; the deadline
 * UVM_E_TIMEOUT (the client stays usable: a late reply is dropped by its id).
 * device_del with an "id" first drops the queued DEVICE_DELETED events of that id: they are an
 * earlier device's, and must not satisfy the wait for this unplug. */
int qmp_execute(struct qmp *q, const char *command, json_t *args, json_t **reply,
                int64_t deadline);

/* qmp_execute, with fd passed to QEMU alongside the command (SCM_RIGHTS on the send that
 * carries the command's first byte), for the commands that take one: getfd, add-fd. fd is
 * borrowed: QEMU receives its own copy, the caller still owns and closes fd (-1: no fd, the
 * same as qmp_execute). Whether QEMU kept its copy depends on the command's outcome; see
 * qmpfd.h. Same return codes as qmp_execute. */
/* One command of a batch: command and args (borrowed, an object or NULL), fd (borrowed, -1:
 * none) sent with it, reply (NULL: not wanted) set to its "return" (new reference) on success;
 * rc: its own result (0 or a negative code). */
struct qmp_cmd {
    const char *command;
    json_t *args;
    int fd;
    json_t **reply;
    int rc;
};
#define QMP_BATCH_MAX 4
/* Send up to QMP_BATCH_MAX commands back to back and collect their replies (one round trip:
 * QEMU runs them in order, each whatever the previous one did; use it where a later command's
 * failure is harmless when an earlier one failed, e.g. add-fd with a chosen fdset-id, then the
 * blockdev-add that uses it). 0 when all succeeded; else the first failure's code and message,
 * every command's own outcome in its rc. Transport failures and timeouts fail them all. */
int qmp_execute_batch(struct qmp *q, struct qmp_cmd *cmds, size_t n, int64_t deadline);
int qmp_execute_fd(struct qmp *q, const char *command, json_t *args, int fd, json_t **reply,
                   int64_t deadline);

/* QEMU's error classes (qapi/error.json). After a failed command uvm_error_class() (error.h)
 * is the class of its error reply, 0 when the failure was not one (transport, timeout). */
enum qmp_error_class {
    QMP_ERROR_NONE = 0,
    QMP_ERROR_GENERIC,
    QMP_ERROR_COMMAND_NOT_FOUND,
    QMP_ERROR_DEVICE_NOT_ACTIVE,
    QMP_ERROR_DEVICE_NOT_FOUND,
    QMP_ERROR_KVM_MISSING_CAP,
};
/* The class named `name` in an error reply; GenericError for NULL or an unknown name. */
enum qmp_error_class qmp_error_class_of(const char *name);

/* The vm_id given to qmp_new (borrowed, lives as long as q), for messages of the layers above. */
const char *qmp_vm_id(const struct qmp *q);

/* Wait for an event named `event` whose data contains every key/value of `match` (may be NULL;
 * borrowed). Already-queued events are searched first. On success *data (if non-NULL) gets the
 * event's "data" (new reference) and the event is removed from the queue. */
int qmp_wait_event(struct qmp *q, const char *event, json_t *match, json_t **data,
                   int64_t deadline);

/* Bytes the line reader has moved in memory to reclaim consumed space: never more than the
 * bytes read, however short the lines (for tests; call while no other thread uses q). */
size_t qmp_reader_moved(struct qmp *q);

/* True once the peer has hung up or sent garbage (invalid JSON, a line over QMP_MAX_LINE).
 * From then on every call fails at once with UVM_E_HYPERVISOR and the first failure's message. */
bool qmp_broken(struct qmp *q);

#endif

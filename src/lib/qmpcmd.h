/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Typed QMP commands: what the resource kinds say to QEMU, between them and the transport
 * (qmp.h). Every call is one command (or one batch) with the standard deadline, returns 0 or the
 * transport's code with its message, and leaves QEMU's error class in uvm_error_class() (e.g.
 * QMP_ERROR_DEVICE_NOT_FOUND) for callers to branch on.
 *
 * A device is plugged on a backend (a block node, a memory object, a netdev, a chardev):
 * qmpc_plug adds both and rolls the backend back when the device fails; qmpc_unplug removes
 * both, the device first (device_del, then QEMU's DEVICE_DELETED once the guest let go).
 */
#ifndef UVM_LIB_QMPCMD_H
#define UVM_LIB_QMPCMD_H

#include <jansson.h>
#include <stdbool.h>

struct qmp;

/* The deadlines, unless the client has its own (qmp_set_timeouts: the VM's
 * uvm_options.timeouts). A call that runs out of one fails with UVM_E_TIMEOUT, and its message
 * names the option. */
#define QMPC_TIMEOUT_MS 10000u        /* one command (or batch): timeouts.qmp_command_ms */
#define QMPC_UNPLUG_TIMEOUT_MS 10000u /* device_del -> DEVICE_DELETED: timeouts.unplug_ms */

/* A backend: how it is made (command + arguments, borrowed) and how it is deleted (command,
 * the key naming it, its id). */
struct qmpc_backend {
    const char *add;  /* "blockdev-add", "object-add", "netdev_add", "chardev-add" */
    json_t *args;
    const char *del;  /* "blockdev-del", "object-del", "netdev_del", "chardev-remove" */
    const char *key;  /* "node-name" or "id" */
    const char *id;
};
#define QMPC_BLOCKDEV(args_, node_) {"blockdev-add", (args_), "blockdev-del", "node-name", (node_)}
#define QMPC_OBJECT(args_, id_) {"object-add", (args_), "object-del", "id", (id_)}
#define QMPC_NETDEV(args_, id_) {"netdev_add", (args_), "netdev_del", "id", (id_)}
#define QMPC_CHARDEV(args_, id_) {"chardev-add", (args_), "chardev-remove", "id", (id_)}

/* device_add with `args` (borrowed). */
int qmpc_device_add(struct qmp *q, json_t *args);
/* device_del of `id`, then its DEVICE_DELETED. A device QEMU does not know (DeviceNotFound: an
 * earlier try removed it) counts as removed. */
int qmpc_device_del(struct qmp *q, const char *id);
/* The backend's add, or its delete. */
int qmpc_backend_add(struct qmp *q, const struct qmpc_backend *be);
int qmpc_backend_del(struct qmp *q, const struct qmpc_backend *be);

/* The backend, then the device (`device`: device_add's arguments, borrowed), sent back to back
 * (one round trip; a device_add after a failed backend add fails harmlessly). When the device
 * fails, the backend is deleted again; the first error is the one returned, and *dirty is set
 * when that rollback failed (QEMU may hold the backend: the caller must never reuse its id).
 * *no_backend (may be NULL) tells a failure of the backend's add itself. */
int qmpc_plug(struct qmp *q, const struct qmpc_backend *be, json_t *device, bool *dirty,
              bool *no_backend);
/* qmpc_device_del, then the backend's delete. A retry after a failure resumes: a device that
 * is already gone is skipped. */
int qmpc_unplug(struct qmp *q, const char *device_id, const struct qmpc_backend *be);

/* qmpfd.h's calls with the command deadline. */
int qmpc_add_fd(struct qmp *q, int fd, int *fdset_id, int *qemu_fd);
int qmpc_remove_fd(struct qmp *q, int fdset_id);
int qmpc_getfd(struct qmp *q, int fd, const char *name);
int qmpc_closefd(struct qmp *q, const char *name);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Handing host fds to QEMU over QMP: see qmpfd.h. */
#include <limits.h>
#include <stdbool.h>

#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "qmp.h"
#include "qmpfd.h"

/* A non-negative int member of an object, or -1. */
static int
member_int(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
        return -1;
    return (int)json_integer_value(v);
}

int
qmp_add_fd(struct qmp *q, int fd, int *fdset_id, int *qemu_fd, int64_t deadline)
{
    *fdset_id = -1;
    if (qemu_fd)
        *qemu_fd = -1;
    if (fd < 0)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "QMP '%s': add-fd: no fd to pass",
                         qmp_vm_id(q));
    cleanup_json json_t *reply = NULL;
    int rc = qmp_execute_fd(q, "add-fd", NULL, fd, &reply, deadline);
    if (rc < 0)
        return rc;
    int set = member_int(reply, "fdset-id"), num = member_int(reply, "fd");
    if (set >= 0 && num >= 0) {
        *fdset_id = set;
        if (qemu_fd)
            *qemu_fd = num;
        return 0;
    }
    cleanup_free char *text = json_dumps(reply, JSON_COMPACT | JSON_ENCODE_ANY);
    uvm_log(UVM_LOG_DEBUG, qmp_vm_id(q), "QMP '%s': add-fd: unexpected reply %s", qmp_vm_id(q),
            text ? text : "(none)");
    if (set >= 0 && qmp_remove_fd(q, set, deadline) < 0) /* QEMU has it: do not leave it */
        uvm_log(UVM_LOG_WARNING, qmp_vm_id(q), "QMP '%s': fd set %d: remove failed: %s",
                qmp_vm_id(q), set, uvm_last_error());
    return uvm_error(UVM_E_PROTOCOL,
                     "QMP '%s': add-fd: the reply has no non-negative integer \"%s\"",
                     qmp_vm_id(q), set < 0 ? "fdset-id" : "fd");
}

int
qmp_remove_fd(struct qmp *q, int fdset_id, int64_t deadline)
{
    cleanup_json json_t *args = json_pack("{s:i}", "fdset-id", fdset_id);
    return qmp_execute(q, "remove-fd", args, NULL, deadline);
}

int
qmp_getfd(struct qmp *q, int fd, const char *name, int64_t deadline)
{
    if (fd < 0 || !name || !*name)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "QMP '%s': getfd: no fd or no name",
                         qmp_vm_id(q));
    cleanup_json json_t *args = json_pack("{s:s}", "fdname", name);
    return qmp_execute_fd(q, "getfd", args, fd, NULL, deadline);
}

int
qmp_closefd(struct qmp *q, const char *name, int64_t deadline)
{
    cleanup_json json_t *args = json_pack("{s:s}", "fdname", name);
    return qmp_execute(q, "closefd", args, NULL, deadline);
}

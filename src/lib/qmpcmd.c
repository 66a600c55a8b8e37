/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Typed QMP commands (qmpcmd.h). */
#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "qmp.h"
#include "qmpcmd.h"
#include "qmpfd.h"
#include "timeutil.h"

/* The client's deadline for one command (or the unplug), and its knob's name. */
static unsigned
command_ms(struct qmp *q)
{
    unsigned ms = qmp_get_timeouts(q).command_ms;
    return ms ? ms : QMPC_TIMEOUT_MS;
}

static unsigned
unplug_ms(struct qmp *q)
{
    unsigned ms = qmp_get_timeouts(q).unplug_ms;
    return ms ? ms : QMPC_UNPLUG_TIMEOUT_MS;
}

static int64_t
deadline(struct qmp *q)
{
    return deadline_after_ms(command_ms(q));
}

/* rc, and a timeout's message names the deadline that ran out. */
static int
timed(int rc, const char *knob, unsigned ms)
{
    if (rc == UVM_E_TIMEOUT)
        return uvm_error(rc, "%s (uvm_options.timeouts.%s: %u ms)", uvm_last_error(), knob, ms);
    return rc;
}

static int
cmd_timed(struct qmp *q, int rc)
{
    return timed(rc, "qmp_command_ms", command_ms(q));
}

int
qmpc_device_add(struct qmp *q, json_t *args)
{
    return cmd_timed(q, qmp_execute(q, "device_add", args, NULL, deadline(q)));
}

int
qmpc_device_del(struct qmp *q, const char *id)
{
    cleanup_json json_t *args = json_pack("{s:s}", "id", id);
    int rc = qmp_execute(q, "device_del", args, NULL, deadline(q));
    if (rc < 0 && uvm_error_class() == QMP_ERROR_DEVICE_NOT_FOUND)
        return 0; /* gone already: an earlier unplug got that far */
    if (rc < 0)
        return cmd_timed(q, rc);
    cleanup_json json_t *match = json_pack("{s:s}", "device", id);
    unsigned ms = unplug_ms(q);
    rc = qmp_wait_event(q, "DEVICE_DELETED", match, NULL, deadline_after_ms(ms));
    return timed(rc, "unplug_ms", ms);
}

int
qmpc_backend_add(struct qmp *q, const struct qmpc_backend *be)
{
    return cmd_timed(q, qmp_execute(q, be->add, be->args, NULL, deadline(q)));
}

int
qmpc_backend_del(struct qmp *q, const struct qmpc_backend *be)
{
    cleanup_json json_t *args = json_pack("{s:s}", be->key, be->id);
    return cmd_timed(q, qmp_execute(q, be->del, args, NULL, deadline(q)));
}

int
qmpc_plug(struct qmp *q, const struct qmpc_backend *be, json_t *device, bool *dirty,
          bool *no_backend)
{
    struct qmp_cmd cmds[2] = {{be->add, be->args, -1, NULL, 0}, {"device_add", device, -1, NULL, 0}};
    int rc = cmd_timed(q, qmp_execute_batch(q, cmds, 2, deadline(q)));
    if (no_backend)
        *no_backend = cmds[0].rc < 0;
    if (rc == 0 || cmds[0].rc < 0)
        return rc; /* nothing made */
    struct uvm_error_state st;
    uvm_error_capture(&st);
    if (qmpc_backend_del(q, be) < 0) {
        uvm_log(UVM_LOG_WARNING, qmp_vm_id(q), "%s %s: rollback failed: %s", be->del, be->id,
                uvm_last_error());
        *dirty = true;
    }
    return uvm_error_restore(&st, rc);
}

int
qmpc_unplug(struct qmp *q, const char *device_id, const struct qmpc_backend *be)
{
    int rc = qmpc_device_del(q, device_id);
    return rc < 0 ? rc : qmpc_backend_del(q, be);
}

int
qmpc_add_fd(struct qmp *q, int fd, int *fdset_id, int *qemu_fd)
{
    return cmd_timed(q, qmp_add_fd(q, fd, fdset_id, qemu_fd, deadline(q)));
}

int
qmpc_remove_fd(struct qmp *q, int fdset_id)
{
    return cmd_timed(q, qmp_remove_fd(q, fdset_id, deadline(q)));
}

int
qmpc_getfd(struct qmp *q, int fd, const char *name)
{
    return cmd_timed(q, qmp_getfd(q, fd, name, deadline(q)));
}

int
qmpc_closefd(struct qmp *q, const char *name)
{
    return cmd_timed(q, qmp_closefd(q, name, deadline(q)));
}

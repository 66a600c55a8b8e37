/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Typed QMP commands (qmpcmd.h). */
#include <jansson.h>
#include <stdatomic.h>

#include "cleanup.h"
#include "error.h"
#include "qmp.h"
#include "qmpcmd.h"
#include "timeutil.h"

static _Atomic unsigned unplug_timeout_ms = QMPC_UNPLUG_TIMEOUT_MS;

void
qmpc_set_unplug_timeout_ms(unsigned ms)
{
    atomic_store(&unplug_timeout_ms, ms ? ms : QMPC_UNPLUG_TIMEOUT_MS);
}

static int64_t
deadline(void)
{
    return deadline_after_ms(QMPC_TIMEOUT_MS);
}

int
qmpc_device_add(struct qmp *q, json_t *args)
{
    return qmp_execute(q, "device_add", args, NULL, deadline());
}

int
qmpc_device_del(struct qmp *q, const char *id)
{
    cleanup_json json_t *args = json_pack("{s:s}", "id", id);
    int rc = qmp_execute(q, "device_del", args, NULL, deadline());
    if (rc < 0 && uvm_error_class() == QMP_ERROR_DEVICE_NOT_FOUND)
        return 0; /* gone already: an earlier unplug got that far */
    if (rc < 0)
        return rc;
    cleanup_json json_t *match = json_pack("{s:s}", "device", id);
    return qmp_wait_event(q, "DEVICE_DELETED", match, NULL,
                          deadline_after_ms(atomic_load(&unplug_timeout_ms)));
}

int
qmpc_backend_add(struct qmp *q, const struct qmpc_backend *be)
{
    return qmp_execute(q, be->add, be->args, NULL, deadline());
}

int
qmpc_backend_del(struct qmp *q, const struct qmpc_backend *be)
{
    cleanup_json json_t *args = json_pack("{s:s}", be->key, be->id);
    return qmp_execute(q, be->del, args, NULL, deadline());
}

int
qmpc_plug(struct qmp *q, const struct qmpc_backend *be, json_t *device, bool *dirty,
          bool *no_backend)
{
    struct qmp_cmd cmds[2] = {{be->add, be->args, -1, NULL, 0}, {"device_add", device, -1, NULL, 0}};
    int rc = qmp_execute_batch(q, cmds, 2, deadline());
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

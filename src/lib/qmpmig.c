/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "qmp.h"
#include "qmpfd.h"
#include "qmpmig.h"

static int
set_capabilities(struct qmp *q, int64_t deadline)
{
    cleanup_json json_t *args = json_pack("{s:[{s:s, s:b}, {s:s, s:b}]}", "capabilities",
                                          "capability", "x-ignore-shared", "state", 1, "capability",
                                          "events", "state", 1);
    return qmp_execute(q, "migrate-set-capabilities", args, NULL, deadline);
}

/* Why the migration failed, from query-migrate (owned; a generic text when QEMU says nothing
 * or is gone, e.g. after a failed load). */
static char *
failure_reason(struct qmp *q)
{
    json_t *reply = NULL;
    char *why = NULL;
    if (qmp_execute(q, "query-migrate", NULL, &reply, qmp_deadline(2000)) == 0) {
        const char *desc = json_string_value(json_object_get(reply, "error-desc"));
        if (desc)
            why = xstrdup(desc);
    }
    json_decref(reply);
    return why ? why : xstrdup("QEMU gave no reason");
}

/* Wait for MIGRATION with a final status. */
static int
wait_done(struct qmp *q, const char *what, int64_t deadline)
{
    for (;;) {
        json_t *data = NULL;
        int rc = qmp_wait_event(q, "MIGRATION", NULL, &data, deadline);
        if (rc < 0)
            return rc == UVM_E_TIMEOUT ? uvm_error(rc, "%s: not done before the deadline", what)
                                       : uvm_error_wrap(rc, "%s", what);
        cleanup_free char *status = xstrdup(json_string_value(json_object_get(data, "status"))
                                                ? json_string_value(json_object_get(data, "status"))
                                                : "");
        json_decref(data);
        if (!strcmp(status, "completed"))
            return 0;
        if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
            cleanup_free char *why = failure_reason(q);
            return uvm_error(UVM_E_HYPERVISOR, "%s %s: %s", what, status, why);
        }
    }
}

/* getfd, then `command` with the URI "fd:<name>", then the wait. */
static int
migrate_fd(struct qmp *q, const char *command, int fd, const char *what, int64_t deadline)
{
    int rc = set_capabilities(q, deadline);
    if (rc == 0)
        rc = qmp_getfd(q, fd, QMPM_FD_NAME, deadline);
    if (rc < 0)
        return uvm_error_wrap(rc, "%s", what);
    cleanup_json json_t *args = json_pack("{s:s}", "uri", "fd:" QMPM_FD_NAME);
    rc = qmp_execute(q, command, args, NULL, deadline);
    if (rc < 0) {
        (void)qmp_closefd(q, QMPM_FD_NAME, qmp_deadline(2000)); /* not taken: ours to close */
        return uvm_error_wrap(rc, "%s", what);
    }
    return wait_done(q, what, deadline);
}

int
qmpm_save(struct qmp *q, int fd, int64_t deadline)
{
    return migrate_fd(q, "migrate", fd, "save the VM state", deadline);
}

int
qmpm_load(struct qmp *q, int fd, int64_t deadline)
{
    return migrate_fd(q, "migrate-incoming", fd, "load the template's VM state", deadline);
}

int
qmpm_version(struct qmp *q, char **out, int64_t deadline)
{
    json_t *reply = NULL;
    *out = NULL;
    int rc = qmp_execute(q, "query-version", NULL, &reply, deadline);
    if (rc < 0)
        return rc;
    json_t *v = json_object_get(reply, "qemu");
    json_t *major = json_object_get(v, "major"), *minor = json_object_get(v, "minor"),
           *micro = json_object_get(v, "micro");
    const char *pkg = json_string_value(json_object_get(reply, "package"));
    if (json_is_integer(major) && json_is_integer(minor) && json_is_integer(micro))
        *out = xasprintf("%lld.%lld.%lld%s%.200s%s", (long long)json_integer_value(major),
                         (long long)json_integer_value(minor), (long long)json_integer_value(micro),
                         pkg && *pkg ? " (" : "", pkg ? pkg : "", pkg && *pkg ? ")" : "");
    json_decref(reply);
    return *out ? 0
                : uvm_error(UVM_E_PROTOCOL, "QMP '%s': query-version: malformed reply",
                            qmp_vm_id(q));
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm_modify: a ModifySettingRequest. Host resource paths dispatch to the resource kind that
 * owns them (the device files register in `handlers`); a GuestRequest alone goes to the agent. */
#include <string.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "proto.h"
#include "timeutil.h"
#include "uvm-internal.h"

struct modify_handler {
    const char *prefix; /* ResourcePath prefix */
    int (*apply)(struct uvm *vm, const char *path, const char *request_type, json_t *settings,
                 json_t *guest_request);
};

/* Filled in by the device kinds (SCSI, VPMem, Plan9, VSMB, network). */
static const struct modify_handler handlers[] = {{NULL, NULL}};

static int
guest_modify(struct uvm *vm, json_t *guest_request)
{
    pthread_mutex_lock(&vm->lock);
    int rc = uvm_check_running(vm, "modify");
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);
    if (rc < 0)
        return rc;
    json_t *req = json_pack("{s:O}", "Request", guest_request);
    rc = bridge_call(b, PROTO_REQ_MODIFY_SETTINGS, req, NULL,
                     deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
    if (rc < 0)
        return uvm_error_wrap(rc, "modify '%s'", vm->cfg.id);
    return 0;
}

static int do_modify(struct uvm *vm, const char *modify_request_json);

int
uvm_modify(struct uvm *vm, const char *modify_request_json)
{
    if (!vm || !modify_request_json)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify: NULL argument");
    int rc = uvm_call_enter(vm, "modify");
    if (rc == 0) {
        rc = do_modify(vm, modify_request_json);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_modify(struct uvm *vm, const char *modify_request_json)
{
    json_error_t err;
    json_t *req = json_loads(modify_request_json, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(req)) {
        json_decref(req);
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': request is not a JSON object%s%s",
                         vm->cfg.id, req ? "" : ": ", req ? "" : err.text);
    }
    json_t *path = json_object_get(req, "ResourcePath");
    json_t *type = json_object_get(req, "RequestType");
    json_t *settings = json_object_get(req, "Settings");
    json_t *guest = json_object_get(req, "GuestRequest");
    int rc;
    if ((path && !json_is_string(path)) || (type && !json_is_string(type)) ||
        (guest && !json_is_object(guest))) {
        rc = uvm_error(UVM_E_INVALID_ARGUMENT,
                       "modify '%s': ResourcePath and RequestType must be strings and "
                       "GuestRequest an object",
                       vm->cfg.id);
    } else if (path) {
        const char *p = json_string_value(path);
        const struct modify_handler *h = handlers;
        while (h->prefix && strncmp(p, h->prefix, strlen(h->prefix)))
            h++;
        if (h->prefix)
            rc = h->apply(vm, p, type ? json_string_value(type) : "Add", settings, guest);
        else
            rc = uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s': resource path '%s' is not supported",
                           vm->cfg.id, p);
    } else if (guest) {
        rc = guest_modify(vm, guest);
    } else {
        rc = uvm_error(UVM_E_INVALID_ARGUMENT,
                       "modify '%s': the request has neither ResourcePath nor GuestRequest",
                       vm->cfg.id);
    }
    json_decref(req);
    return rc;
}

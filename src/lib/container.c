/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI containers in the guest (docs/containers.md). Create: translate the spec (ocispec.c),
 * share the host sources of its bind mounts (virtio-fs, uvm_add_vsmb) and rewrite them, make
 * the init's stdio streams, send CreateContainer (the agent runs `crun create`); the answer
 * carries the init's pid, which becomes a struct uvm_process like any other. Start, exec,
 * signal and delete are one agent request each (start / crun exec -d / kill / delete). A
 * failed create removes the shares it added; delete removes them after the guest has deleted
 * the container. The VM lock is never held across a request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "answer.h"
#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "ocispec.h"
#include "options.h"
#include "process.h"
#include "proto.h"
#include "timeutil.h"
#include "vm.h"

#define BUNDLE_ROOT "/run/gcs/c"

struct uvm_container {
    struct uvm *vm;
    struct bridge *bridge;
    char *id;
    struct uvm_process *init;
    char **shares; /* host directories added with uvm_add_vsmb, removed by delete */
    size_t nshares;
    pthread_mutex_t lock;
    bool started, deleted;
};

static int
validate(const struct uvm_container_config *cfg)
{
    if (!cfg || !cfg->spec_json)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "create container: no OCI spec");
    if (cfg->id && !options_id_valid(cfg->id))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "create container: '%s' is not a valid id ([A-Za-z0-9._-]{1,64}, not "
                         "starting with '.')",
                         cfg->id);
    if (cfg->network_namespace && !options_id_valid(cfg->network_namespace))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "create container: network namespace '%s' is not a valid id",
                         cfg->network_namespace);
    return 0;
}

static void
remove_shares(struct uvm *vm, char **shares, size_t n)
{
    bool closed = n > 0 && uvm_is_closed(vm); /* the shares went with the VM */
    for (size_t i = n; i-- > 0;) {
        if (!closed && uvm_remove_vsmb(vm, shares[i]) < 0)
            uvm_log(UVM_LOG_WARNING, vm->cfg.id, "container: remove share '%s': %s", shares[i],
                    uvm_last_error());
        free(shares[i]);
    }
    free(shares);
}

/* Share the host directory of each bind mount into the VM and point the mount at it. */
static int
share_binds(struct uvm_container *c, json_t *spec, const struct ocispec_bind *binds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(binds[i].source, &st) < 0)
            return uvm_error_errno(-errno, "mounts[%zu]: bind source '%s'", binds[i].index,
                                   binds[i].source);
        /* A file would need its whole directory shared: siblings a hostile guest must not see. */
        if (!S_ISDIR(st.st_mode))
            return uvm_error(UVM_E_NOT_SUPPORTED,
                             "mounts[%zu]: bind source '%s' is not a directory (only "
                             "directories can be shared into the VM)",
                             binds[i].index, binds[i].source);
        struct uvm_vsmb_options o = {.read_only = binds[i].read_only};
        int rc = uvm_add_vsmb(c->vm, binds[i].source, NULL, &o);
        if (rc < 0)
            return uvm_error_wrap(rc, "mounts[%zu]: share '%s'", binds[i].index,
                                  binds[i].source);
        c->shares = xrealloc(c->shares, (c->nshares + 1) * sizeof(*c->shares));
        c->shares[c->nshares++] = xstrdup(binds[i].source);
        cleanup_free char *guest = NULL;
        rc = uvm_get_vsmb_uvm_path(c->vm, binds[i].source, &guest);
        if (rc < 0)
            return rc;
        ocispec_set_mount_source(spec, binds[i].index, guest);
    }
    return 0;
}

/* The spec parsed and translated, its binds shared: the ContainerConfig text to send. */
static int
prepare_spec(struct uvm_container *c, const struct uvm_container_config *cfg, char **config,
             bool *terminal)
{
    json_error_t jerr;
    json_t *spec = json_loads(cfg->spec_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!spec)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "the OCI spec is not JSON: %s (line %d)",
                         jerr.text, jerr.line);
    struct ocispec_opts o = {.root_path = cfg->root_path, .netns_id = cfg->network_namespace};
    struct ocispec_bind *binds = NULL;
    size_t n = 0;
    int rc = ocispec_translate(spec, &o, &binds, &n, terminal);
    if (rc == 0)
        rc = share_binds(c, spec, binds, n);
    free(binds);
    if (rc == 0) {
        cleanup_free char *bundle = xasprintf(BUNDLE_ROOT "/%s", c->id);
        json_t *settings = json_pack("{s:s, s:O}", "OciBundlePath", bundle, "OciSpecification",
                                     spec);
        *config = settings ? json_dumps(settings, JSON_COMPACT) : NULL;
        if (settings)
            json_decref(settings);
        if (!*config)
            rc = uvm_error(UVM_E_INVALID_ARGUMENT, "the OCI spec could not be encoded");
    }
    json_decref(spec);
    return rc;
}

/* The stdio fields of a request (obj: where the pipes go; hobj: where the handle goes). With a
 * terminal, like uvm_exec's: input and output streams (one terminal, the spec's consoleSize),
 * no stderr. */
static void
set_stdio(json_t *obj, json_t *hobj, const bool want[3], bool terminal, uint32_t handle)
{
    if (terminal || want[0] || want[1] || want[2])
        json_object_set_new(hobj, "StdioHandle", json_integer(handle));
    json_object_set_new(obj, "CreateStdInPipe", json_boolean(terminal || want[0]));
    json_object_set_new(obj, "CreateStdOutPipe", json_boolean(terminal || want[1]));
    json_object_set_new(obj, "CreateStdErrPipe", json_boolean(!terminal && want[2]));
}

static json_t *
create_request(const struct uvm_container *c, const bool want[3], bool terminal, char *config,
               uint32_t handle)
{
    json_t *settings = json_loads(config, 0, NULL);
    if (!settings)
        return NULL;
    set_stdio(settings, settings, want, terminal, handle);
    char *text = json_dumps(settings, JSON_COMPACT);
    json_decref(settings);
    if (!text)
        return NULL;
    /* hcsshim's shape: the settings travel as a JSON text inside the JSON. */
    json_t *req = json_pack("{s:s, s:s}", "ContainerId", c->id, "ContainerConfig", text);
    free(text);
    return req;
}

static struct uvm_container *
container_new(struct uvm *vm, struct bridge *b, const char *id)
{
    struct uvm_container *c = xcalloc(1, sizeof(*c));
    c->vm = uvm_ref(vm);
    c->bridge = b;
    c->id = xstrdup(id);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void
container_free(struct uvm_container *c)
{
    if (!c)
        return;
    remove_shares(c->vm, c->shares, c->nshares);
    uvm_process_close(c->init);
    pthread_mutex_destroy(&c->lock);
    free(c->id);
    struct uvm *vm = c->vm;
    free(c);
    uvm_unref(vm);
}

/* CreateContainer timed out: the agent may still create the container (late, or once it
 * thaws), and nobody could delete it then (no handle), its id taken for good. The agent answers
 * in order, so a DeleteContainerState sent now is applied after that create: the guest ends
 * without the container even when this one times out too. The create's error is kept. */
static void
undo_late_create(struct uvm_container *c)
{
    struct uvm_error_state st;
    uvm_error_capture(&st);
    if (bridge_call(c->bridge, PROTO_REQ_DELETE_CONTAINER_STATE,
                    json_pack("{s:s}", "ContainerId", c->id), NULL, BRIDGE_DEADLINE_CONTAINER) < 0)
        uvm_log(UVM_LOG_WARNING, c->vm->cfg.id,
                "container %s: its create timed out; the delete sent after it failed too (the "
                "guest applies it in order if it ever reads it): %s",
                c->id, uvm_last_error());
    uvm_error_restore(&st, 0);
}

/* Streams, request, answer: the init process. */
static int
send_create(struct uvm_container *c, const struct uvm_container_config *cfg, char *config,
            bool terminal)
{
    int ours[3], users[3];
    const bool want[3] = {cfg->create_stdin, cfg->create_stdout, cfg->create_stderr};
    int rc = process_stdio_new(want, terminal, ours, users, c->id);
    if (rc < 0)
        return rc;
    uint32_t handle = bridge_new_handle(c->bridge);
    bridge_stream_add(c->bridge, handle, ours); /* before the request: no output is lost */
    json_t *resp = NULL;
    rc = bridge_call(c->bridge, PROTO_REQ_CREATE_CONTAINER,
                     create_request(c, want, terminal, config, handle), &resp,
                     BRIDGE_DEADLINE_CONTAINER);
    int pid = rc == 0 ? process_pid_of(resp, "create container", c->id) : rc;
    json_decref(resp);
    if (rc == UVM_E_TIMEOUT)
        undo_late_create(c);
    if (pid < 0) {
        bridge_stream_remove(c->bridge, handle);
        for (int i = 0; i < 3; i++)
            if (users[i] >= 0)
                close(users[i]);
        return pid;
    }
    c->init = process_new(c->vm, c->bridge, handle, pid, users, terminal, c->id);
    return 0;
}

static int
do_create(struct uvm *vm, const struct uvm_container_config *cfg, struct uvm_container **out)
{
    int rc = validate(cfg);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&vm->lock);
    rc = uvm_check_running(vm, "create container");
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);
    if (rc < 0)
        return rc;
    char counter[24] = "";
    if (!cfg->id) /* hcsshim's numbering: the bundle is /run/gcs/c/<N> */
        snprintf(counter, sizeof(counter), "%llu",
                 (unsigned long long)uvm_container_counter(vm));
    struct uvm_container *c = container_new(vm, b, cfg->id ? cfg->id : counter);
    cleanup_free char *config = NULL;
    bool terminal = false;
    rc = prepare_spec(c, cfg, &config, &terminal);
    if (rc == 0)
        rc = send_create(c, cfg, config, terminal);
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        container_free(c); /* removes the shares it added */
        return uvm_error(rc, "create container '%s' in '%s': %s",
                         cfg->id ? cfg->id : counter, vm->cfg.id, msg);
    }
    uvm_log(UVM_LOG_DEBUG, vm->cfg.id, "container %s created, init pid %d", c->id,
            uvm_process_pid(c->init));
    *out = c;
    return 0;
}

int
uvm_create_container(struct uvm *vm, const struct uvm_container_config *cfg,
                     struct uvm_container **out)
{
    if (!vm || !out)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "create container: NULL argument");
    *out = NULL;
    int rc = uvm_call_enter(vm, "create container");
    if (rc == 0) {
        rc = do_create(vm, cfg, out);
        uvm_call_leave(vm);
    }
    return rc;
}

const char *
uvm_container_id(const struct uvm_container *c)
{
    return c ? c->id : NULL;
}

/* 0 when the container may take a request: its VM open and the container not deleted. */
static int
check_usable(struct uvm_container *c, const char *what)
{
    if (uvm_is_closed(c->vm))
        return uvm_error(UVM_E_CLOSED, "%s container '%s': its utility VM '%s' was closed",
                         what, c->id, c->vm->cfg.id);
    pthread_mutex_lock(&c->lock);
    bool deleted = c->deleted;
    pthread_mutex_unlock(&c->lock);
    if (deleted)
        return uvm_error(UVM_E_INVALID_STATE, "%s container '%s': it was deleted", what, c->id);
    return 0;
}

int
uvm_container_start(struct uvm_container *c, struct uvm_process **init)
{
    if (!c)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "start container: NULL container");
    if (init)
        *init = NULL;
    int rc = check_usable(c, "start");
    if (rc < 0)
        return rc;
    json_t *req = json_pack("{s:s, s:{s:{}}}", "ContainerId", c->id, "Settings",
                            "ProcessParameters");
    json_t *resp = NULL;
    rc = bridge_call(c->bridge, PROTO_REQ_EXECUTE_PROCESS, req, &resp, BRIDGE_DEADLINE_CONTAINER);
    json_decref(resp);
    if (rc < 0)
        return uvm_error_wrap(rc, "start container '%s'", c->id);
    pthread_mutex_lock(&c->lock);
    c->started = true;
    pthread_mutex_unlock(&c->lock);
    if (init)
        *init = process_ref(c->init);
    return 0;
}

static json_t *
exec_request(const struct uvm_container *c, const bool want[3], bool terminal, json_t *process,
             uint32_t handle)
{
    json_t *params = json_pack("{s:O}", "OCIProcess", process);
    json_t *settings = json_pack("{s:o}", "ProcessParameters", params);
    if (settings)
        set_stdio(params, settings, want, terminal, handle);
    return json_pack("{s:s, s:o}", "ContainerId", c->id, "Settings", settings);
}

static int
do_exec(struct uvm_container *c, const struct uvm_container_process_config *cfg,
        struct uvm_process **out)
{
    json_error_t jerr;
    json_t *process = json_loads(cfg->process_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!process)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "the OCI process is not JSON: %s (line %d)",
                         jerr.text, jerr.line);
    bool terminal = false;
    int rc = ocispec_translate_process(process, "process", &terminal);
    int ours[3], users[3];
    const bool want[3] = {cfg->create_stdin, cfg->create_stdout, cfg->create_stderr};
    if (rc == 0)
        rc = process_stdio_new(want, terminal, ours, users, c->id);
    if (rc < 0) {
        json_decref(process);
        return rc;
    }
    uint32_t handle = bridge_new_handle(c->bridge);
    bridge_stream_add(c->bridge, handle, ours);
    json_t *resp = NULL;
    rc = bridge_call(c->bridge, PROTO_REQ_EXECUTE_PROCESS,
                     exec_request(c, want, terminal, process, handle), &resp,
                     BRIDGE_DEADLINE_CONTAINER);
    json_decref(process);
    int pid = rc == 0 ? process_pid_of(resp, "exec in container", c->id) : rc;
    json_decref(resp);
    if (pid < 0) {
        bridge_stream_remove(c->bridge, handle);
        for (int i = 0; i < 3; i++)
            if (users[i] >= 0)
                close(users[i]);
        return pid;
    }
    *out = process_new(c->vm, c->bridge, handle, pid, users, terminal, c->id);
    return 0;
}

int
uvm_container_exec(struct uvm_container *c, const struct uvm_container_process_config *cfg,
                   struct uvm_process **out)
{
    if (!c || !cfg || !cfg->process_json || !out)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "exec in container: NULL argument");
    *out = NULL;
    int rc = check_usable(c, "exec in");
    if (rc == 0)
        rc = do_exec(c, cfg, out);
    if (rc < 0)
        return uvm_error_wrap(rc, "exec in container '%s'", c->id);
    return 0;
}

int
uvm_container_signal(struct uvm_container *c, int sig)
{
    if (!c)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "signal container: NULL container");
    int rc = check_usable(c, "signal");
    return rc < 0 ? rc : uvm_process_signal(c->init, sig);
}

int
uvm_container_wait(struct uvm_container *c, int *exit_code)
{
    if (!c)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "wait for container: NULL container");
    return uvm_process_wait(c->init, exit_code);
}

/* The container's shares, removed; those whose remove failed (the guest did not let go in
 * time: it may still use them) stay on the container for a retried delete or the close. */
static int
delete_shares(struct uvm_container *c)
{
    pthread_mutex_lock(&c->lock);
    char **shares = c->shares;
    size_t n = c->nshares, kept = 0;
    c->shares = NULL;
    c->nshares = 0;
    pthread_mutex_unlock(&c->lock);
    int rc = 0;
    for (size_t i = n; i-- > 0;) { /* the last made first */
        int r = uvm_remove_vsmb(c->vm, shares[i]);
        if (r < 0 && rc == 0)
            rc = uvm_error_wrap(r, "delete container '%s': share '%s' kept", c->id, shares[i]);
        if (r == 0) {
            free(shares[i]);
            shares[i] = NULL;
        }
    }
    for (size_t i = 0; i < n; i++) /* what is kept, in its order */
        if (shares[i])
            shares[kept++] = shares[i];
    pthread_mutex_lock(&c->lock);
    c->shares = kept ? shares : NULL;
    c->nshares = kept;
    pthread_mutex_unlock(&c->lock);
    if (!kept)
        free(shares);
    return rc;
}

int
uvm_container_delete(struct uvm_container *c)
{
    if (!c)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "delete container: NULL container");
    if (uvm_is_closed(c->vm))
        return uvm_error(UVM_E_CLOSED, "delete container '%s': its utility VM '%s' was closed",
                         c->id, c->vm->cfg.id);
    pthread_mutex_lock(&c->lock);
    bool deleted = c->deleted, shares_left = c->nshares > 0;
    pthread_mutex_unlock(&c->lock);
    if (deleted && !shares_left) /* a delete whose share removal failed is retried */
        return uvm_error(UVM_E_INVALID_STATE, "delete container '%s': it was deleted", c->id);
    if (!deleted) {
        int rc = bridge_call(c->bridge, PROTO_REQ_DELETE_CONTAINER_STATE,
                             json_pack("{s:s}", "ContainerId", c->id), NULL,
                             BRIDGE_DEADLINE_CONTAINER);
        if (rc < 0)
            return uvm_error_wrap(rc, "delete container '%s'", c->id);
        pthread_mutex_lock(&c->lock);
        c->deleted = true;
        pthread_mutex_unlock(&c->lock);
    }
    return delete_shares(c);
}

void
uvm_container_close(struct uvm_container *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    bool done = c->deleted && c->nshares == 0;
    pthread_mutex_unlock(&c->lock);
    if (!done && !uvm_is_closed(c->vm) && uvm_container_delete(c) < 0)
        uvm_log(UVM_LOG_DEBUG, c->vm->cfg.id, "close container %s: %s", c->id,
                uvm_last_error());
    container_free(c);
}

static int
do_list(struct uvm *vm, struct uvm_container_info **list, size_t *count)
{
    pthread_mutex_lock(&vm->lock);
    int rc = uvm_check_running(vm, "list containers");
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);
    if (rc < 0)
        return rc;
    json_t *resp = NULL;
    rc = bridge_call(b, PROTO_REQ_GET_PROPERTIES,
                     json_pack("{s:{s:[s]}}", "Query", "PropertyTypes", "ContainerList"), &resp,
                     BRIDGE_DEADLINE_CALL);
    if (rc == 0 && (rc = answer_container_list(resp, list, count)) < 0)
        uvm_error_wrap(rc, "list containers");
    json_decref(resp);
    return rc;
}

int
uvm_list_containers(struct uvm *vm, struct uvm_container_info **list, size_t *count)
{
    if (!vm || !list || !count)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "list containers: NULL argument");
    *list = NULL;
    *count = 0;
    int rc = uvm_call_enter(vm, "list containers");
    if (rc == 0) {
        rc = do_list(vm, list, count);
        uvm_call_leave(vm);
    }
    return rc;
}

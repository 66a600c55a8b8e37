/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VM core (vm.h): allocation, references, call guards, state checks. */
#include <errno.h>

#include "argv.h"
#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "jail.h"
#include "qmp.h"
#include "record.h"
#include "timeutil.h"
#include "tplfile.h"
#include "vm.h"
#include "vmm.h"

static const char *const state_names[] = {
    [UVM_STATE_CREATED] = "created",   [UVM_STATE_STARTING] = "starting",
    [UVM_STATE_RUNNING] = "running",   [UVM_STATE_STOPPED] = "stopped",
    [UVM_STATE_TERMINATED] = "terminated",
};

const char *
vm_state_name(enum uvm_state s)
{
    return state_names[s];
}

int
uvm_failure_code(struct uvm *vm, int rc)
{
    if (vm->terminating)
        return UVM_E_INVALID_STATE;
    if (vm->exited)
        return UVM_E_UNEXPECTED_EXIT;
    return rc;
}

void
vm_wait_gone(struct uvm *vm, struct qmp *q)
{
    if (!q || vm->exited || vm->terminating || !qmp_broken(q))
        return;
    struct timespec ts = deadline_timespec(deadline_after_ms(VM_GONE_WAIT_MS));
    while (!vm->exited && !vm->terminating)
        if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
            break;
}

int
vm_failure(struct uvm *vm, int rc, const char *what)
{
    int code = uvm_failure_code(vm, rc);
    if (code == UVM_E_UNEXPECTED_EXIT && vm->exit_msg)
        return uvm_error_wrap(code, "%s: %s", what, vm->exit_msg);
    if (code == UVM_E_INVALID_STATE && code != rc)
        return uvm_error_wrap(code, "%s: utility VM '%s' was terminated", what, vm->cfg.id);
    return uvm_error_wrap(code, "%s", what);
}

int
uvm_check_running(struct uvm *vm, const char *what)
{
    if (vm->state == UVM_STATE_RUNNING && !vm->terminating)
        return 0;
    if (vm->terminating && vm->state != UVM_STATE_TERMINATED)
        return uvm_error(UVM_E_INVALID_STATE, "%s '%s': the utility VM is being terminated", what,
                         vm->cfg.id);
    return uvm_error(UVM_E_INVALID_STATE, "%s '%s': the utility VM is %s", what, vm->cfg.id,
                     state_names[vm->state]);
}

struct uvm *
uvm_alloc(void)
{
    struct uvm *vm = xcalloc(1, sizeof(*vm));
    pthread_mutex_init(&vm->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&vm->cond, &ca);
    pthread_condattr_destroy(&ca);
    vm->rd = (struct rundir){.base_fd = -1, .dir_fd = -1, .lock_fd = -1};
    LIST_INIT(&vm->res);
    vm->sys.vm = vm;
    atomic_init(&vm->refs, 1);
    return vm;
}

void
vm_release_resources(struct uvm *vm)
{
    while (!LIST_EMPTY(&vm->res)) {
        struct res *r = LIST_FIRST(&vm->res);
        LIST_REMOVE(r, link);
        res_free(r); /* binds and taps go with the runtime directory */
    }
    for (size_t i = 0; i < VM_KINDS_MAX && vm->kinds[i].kind; i++) {
        if (vm->kinds[i].kind->release)
            vm->kinds[i].kind->release(vm, vm->kinds[i].state);
        else
            free(vm->kinds[i].state);
        vm->kinds[i].kind = NULL;
        vm->kinds[i].state = NULL;
    }
}

static void
vm_free(struct uvm *vm)
{
    vmm_free(vm->vmm);
    bridge_free(vm->bridge);
    qmp_free(vm->qmp);
    rundir_release(&vm->rd);
    jail_free(vm->jail);
    template_free(vm->tpl);
    vm_release_resources(vm);
    argv_free(vm->argv);
    free(vm->document);
    for (size_t i = 0; i < vm->n_old_documents; i++)
        free(vm->old_documents[i]);
    free(vm->old_documents);
    free(vm->exit_msg);
    config_release(&vm->cfg);
    pthread_mutex_destroy(&vm->lock);
    pthread_cond_destroy(&vm->cond);
    free(vm);
}

struct uvm *
uvm_ref(struct uvm *vm)
{
    atomic_fetch_add(&vm->refs, 1);
    return vm;
}

void
uvm_unref(struct uvm *vm)
{
    if (vm && atomic_fetch_sub(&vm->refs, 1) == 1)
        vm_free(vm);
}

bool
uvm_is_closed(struct uvm *vm)
{
    pthread_mutex_lock(&vm->lock);
    bool closed = vm->closed;
    pthread_mutex_unlock(&vm->lock);
    return closed;
}

int
uvm_call_enter(struct uvm *vm, const char *what)
{
    pthread_mutex_lock(&vm->lock);
    bool closed = vm->closed;
    if (!closed)
        vm->calls++;
    pthread_mutex_unlock(&vm->lock);
    if (closed)
        return uvm_error(UVM_E_CLOSED, "%s '%s': the utility VM is being closed", what,
                         vm->cfg.id);
    return 0;
}

void
uvm_call_leave(struct uvm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (--vm->calls == 0 && vm->closed)
        pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
}

void
vm_document_replace(struct uvm *vm, char *text)
{
    vm->old_documents = xrealloc(vm->old_documents,
                                 (vm->n_old_documents + 1) * sizeof(*vm->old_documents));
    vm->old_documents[vm->n_old_documents++] = vm->document;
    /* uvm_document reads it without the lock: publish the text with its contents */
    __atomic_store_n(&vm->document, text, __ATOMIC_RELEASE);
}

void *
res_new(const struct res_kind *kind, size_t size, const char *key)
{
    struct res *r = xcalloc(1, size);
    r->kind = kind;
    r->key = xstrdup(key);
    return r;
}

void
res_free(struct res *r)
{
    if (r->kind->free)
        r->kind->free(r);
    free(r->key);
    free(r);
}

void *
res_kind_state(struct uvm *vm, const struct res_kind *kind, size_t size)
{
    size_t i = 0;
    while (i < VM_KINDS_MAX && vm->kinds[i].kind && vm->kinds[i].kind != kind)
        i++;
    if (i == VM_KINDS_MAX)
        abort(); /* VM_KINDS_MAX is below the number of kinds: a build-time mistake */
    if (!vm->kinds[i].kind) {
        vm->kinds[i].kind = kind;
        vm->kinds[i].state = xcalloc(1, size);
    }
    return vm->kinds[i].state;
}

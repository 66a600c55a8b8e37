/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resource state machine (res.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "error.h"
#include "res.h"

void
res_txn_fail(struct res_txn *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->fail, sizeof(t->fail), fmt, ap);
    va_end(ap);
}

void
res_note(struct res_txn *t, char *note)
{
    if (!note)
        return;
    free(t->note);
    t->note = note;
}

static void
log_note(struct res_txn *t)
{
    if (t->note)
        uvm_log(UVM_LOG_WARNING, t->vm->cfg.id, "%s", t->note);
    free(t->note);
    t->note = NULL;
}

/* Lock held: a record of the kind being added. */
static bool
kind_adding(struct uvm *vm, const struct res_kind *kind)
{
    struct res *r;
    RES_FOREACH(r, vm, kind)
        if (r->state == RES_ADDING)
            return true;
    return false;
}

struct res *
res_find(struct uvm *vm, const struct res_kind *kind, const char *key)
{
    struct res *r;
    RES_FOREACH(r, vm, kind)
        if (r->state != RES_BROKEN && !strcmp(r->key, key))
            return r;
    return NULL;
}

int
res_check_key(struct uvm *vm, const char *what, const char *key)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s: vm is NULL", what);
    if (!key || !*key)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s: host path is empty", what);
    return 0;
}

int
res_check_path(struct uvm *vm, const char *what, const char *host_path)
{
    if (!vm || !host_path || !*host_path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s: host path is empty", what);
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "%s '%s': not supported for Windows utility VMs",
                         what, host_path);
    return 0;
}

int
res_enter(struct res_txn *t, res_find_fn find, const void *key)
{
    struct uvm *vm = t->vm;
    pthread_mutex_lock(&vm->lock);
    for (;;) {
        int rc = t->offline ? 0 : uvm_check_running(vm, t->what);
        if (rc == 0 && vm->saving)
            rc = uvm_error(UVM_E_INVALID_STATE, "%s: utility VM '%s' is being saved as a template",
                           t->what, vm->cfg.id);
        if (rc < 0) {
            pthread_mutex_unlock(&vm->lock);
            t->r = NULL;
            return rc;
        }
        struct res *r = find ? find(t, key) : res_find(vm, t->kind, key);
        bool busy = r ? r->state == RES_ADDING || r->state == RES_REMOVING
                      : t->kind->serial_adds && kind_adding(vm, t->kind);
        if (!busy && !r && t->kind->needs_shared_ram && vm->tpl) {
            pthread_mutex_unlock(&vm->lock);
            t->r = NULL;
            return uvm_error(UVM_E_NOT_SUPPORTED,
                             "%s: not on a clone of a template: its devices need the guest RAM "
                             "shared with their daemon, and a clone maps its template's RAM "
                             "privately",
                             t->what);
        }
        if (!busy) {
            t->r = r;
            return 0;
        }
        pthread_cond_wait(&vm->cond, &vm->lock); /* someone else is adding or removing it */
    }
}

int
res_remove_enter(struct res_txn *t, res_find_fn find, const void *key, int absent)
{
    int rc = res_enter(t, find, key);
    if (rc < 0)
        return rc;
    if (!t->r || t->r->refs == 0) /* none, or idle: nobody uses it */
        return res_leave(t, uvm_error(absent, "%s", *t->fail ? t->fail : t->what));
    if (t->r->refs > 1) {
        t->r->refs--;
        return res_leave(t, 1);
    }
    return 0;
}

int
res_leave(struct res_txn *t, int rc)
{
    pthread_mutex_unlock(&t->vm->lock);
    log_note(t);
    return rc;
}

void
res_begin(struct res_txn *t, struct res *r, enum res_state busy)
{
    struct uvm *vm = t->vm;
    if (!r->state) /* a new record */
        LIST_INSERT_HEAD(&vm->res, r, link);
    r->state = busy;
    t->r = r;
    t->qmp = vm->qmp; /* immutable while the VM runs, alive until close */
    t->bridge = vm->bridge;
    pthread_mutex_unlock(&vm->lock);
    log_note(t);
}

/* Lock held: the record leaves the VM. */
static struct res *
unlink_record(struct res_txn *t)
{
    struct res *r = t->r;
    LIST_REMOVE(r, link);
    if (!t->dirty && r->kind->drop)
        r->kind->drop(t->vm, r);
    return r;
}

/* Lock held: the record's state after the add or remove; the record to free, or NULL. */
static struct res *
settle(struct res_txn *t, int rc)
{
    struct res *r = t->r;
    bool adding = r->state == RES_ADDING;
    if (rc == 0 && adding) {
        r->state = RES_READY;
        r->refs = 1;
    } else if (rc < 0 && !adding) {
        r->state = RES_READY; /* still there: a retry works */
    } else if (t->keep) {
        r->state = RES_READY;
        r->refs = 0;
    } else if (rc < 0 && t->dirty) {
        r->state = RES_BROKEN; /* QEMU may still hold its ids: never reused */
    } else {
        return unlink_record(t);
    }
    return NULL;
}

int
res_end(struct res_txn *t, int rc)
{
    struct uvm *vm = t->vm;
    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        vm_wait_gone(vm, t->qmp); /* a closed QMP connection: QEMU is going, say why */
        rc = vm_failure(vm, rc, *t->fail ? t->fail : t->what);
    }
    struct res *gone = settle(t, rc);
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    if (gone)
        res_free(gone);
    log_note(t);
    return rc;
}


/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VM core: struct uvm, its lock, its state checks and its references. Below the lifecycle
 * (uvm.c), the resource kinds and the resource state machine (res.h); it knows no kind: the
 * resources it holds are records of kinds that bring their own hooks.
 */
#ifndef UVM_LIB_VM_H
#define UVM_LIB_VM_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/queue.h>

#include "options.h"
#include "record.h"
#include "rundir.h"
#include "topology.h"
#include "uvm.h"

#define UVM_EXIT_TIMEOUT_MS 10000u  /* QEMU gone after SIGKILL */
#define UVM_CONSOLE_TAIL_LINES 8
#define VM_KINDS_MAX 8 /* resource kinds with per-VM state (res_kind_state) */

enum uvm_state {
    UVM_STATE_CREATED,    /* created, not started (or a start failed and was undone) */
    UVM_STATE_STARTING,   /* uvm_start in progress */
    UVM_STATE_RUNNING,    /* agent negotiated */
    UVM_STATE_STOPPED,    /* QEMU exited on its own */
    UVM_STATE_TERMINATED, /* uvm_terminate done: the ID is released */
};

struct uvm_system {
    struct uvm *vm;
};

struct vmm;
struct qmp;
struct bridge;
struct jail;
struct res;
struct res_kind;
struct template;

struct uvm {
    pthread_mutex_t lock; /* guards everything below that is not immutable */
    pthread_cond_t cond;  /* state changes: lifecycle, and resources leaving a busy state */
    struct uvm_config cfg; /* immutable after create */
    char *document;        /* windows VSMB changes replace it (vm_document_replace) */
    char **old_documents;  /* earlier versions of `document`, freed at close */
    size_t n_old_documents;
    char **argv;           /* immutable after create; NULL for windows */
    struct jail *jail;     /* QEMU's confinement (jail.h), immutable after create; NULL: none */
    struct template *tpl;  /* a clone's template (template.h), immutable after create; NULL */
    struct rundir rd;
    enum uvm_state state;
    bool terminating;
    bool undoing;            /* a failed start is killing its QEMU */
    bool releasing;          /* QEMU's exit is releasing the runtime directory (unlocked) */
    bool saving;             /* uvm_save_template in progress: no hot-plug (res.c) */
    unsigned start_failures; /* wakes waiters of a start that did not happen */
    /* Valid from start until close; the objects outlive terminate so that concurrent callers
     * never see them freed. */
    struct vmm *vmm;
    struct qmp *qmp;
    struct bridge *bridge;
    bool exited;
    int exit_code; /* 0 or UVM_E_UNEXPECTED_EXIT */
    char *exit_msg;
    struct uvm_guest_connection_info conn;
    struct uvm_timings timings;
    struct topology topo;      /* hot-plug slots in use (topology.h) */
    LIST_HEAD(, res) res;      /* every resource record of the VM (res.h) */
    struct {
        const struct res_kind *kind;
        void *state;
    } kinds[VM_KINDS_MAX];     /* per-VM state of the kinds that asked for one */
    _Atomic uint64_t container_counter;
    _Atomic unsigned refs; /* the caller's (until uvm_close) + one per open process */
    bool closed;           /* uvm_close was called */
    unsigned calls;        /* public calls in flight (uvm_call_enter) */
    struct uvm_system sys;
};

/* A zeroed VM with its lock and (monotonic) condition variable set up, one reference. */
struct uvm *uvm_alloc(void);

/* References: processes keep the VM's memory alive after uvm_close (their calls then return
 * UVM_E_CLOSED); the last uvm_unref frees it, with every resource record and kind state. */
struct uvm *uvm_ref(struct uvm *vm);
void uvm_unref(struct uvm *vm);
/* Free the resource records and the kinds' per-VM state (at the last unref; test fixtures). */
void vm_release_resources(struct uvm *vm);
/* Takes the lock. */
bool uvm_is_closed(struct uvm *vm);
/* Every public call on a VM runs between these: uvm_close (after terminating, which makes the
 * calls in flight end quickly) waits for them before freeing. UVM_E_CLOSED once closing. */
int uvm_call_enter(struct uvm *vm, const char *what);
void uvm_call_leave(struct uvm *vm);
/* The body of a public call on a VM that is not NULL: `expr` (an int) between the two. */
#define UVM_CALL(vm, what, expr)                   \
    __extension__({                                \
        int uvm_call_rc_ = uvm_call_enter(vm, what); \
        if (uvm_call_rc_ == 0) {                   \
            uvm_call_rc_ = (expr);                 \
            uvm_call_leave(vm);                    \
        }                                          \
        uvm_call_rc_;                              \
    })

/* Lock held by the caller. 0 when calls that need a running VM may proceed. */
int uvm_check_running(struct uvm *vm, const char *what);
/* Lock held. The code a failed operation reports: a QMP or agent failure caused by the VM
 * being terminated (UVM_E_INVALID_STATE) or having exited (UVM_E_UNEXPECTED_EXIT) says so. */
int uvm_failure_code(struct uvm *vm, int rc);
/* Lock held. A call failed while QEMU's QMP connection (q) is closed: QEMU is going (killed,
 * crashed) and its watcher has not said so yet. Wait for it (at most VM_GONE_WAIT_MS) so that
 * uvm_failure_code and the message can tell. No wait when q is open or the exit is known. */
#define VM_GONE_WAIT_MS 2000u
void vm_wait_gone(struct uvm *vm, struct qmp *q);
/* Lock held, after vm_wait_gone: wrap the error of a failed call (code rc, saying `what`) with
 * why the VM is gone, and return the code uvm_failure_code gives. */
int vm_failure(struct uvm *vm, int rc, const char *what);
/* The name of a state, for messages. */
const char *vm_state_name(enum uvm_state s);

/* Lock held. Replace the VM document by `text` (owned); the old text stays valid until close,
 * so that uvm_document's pointer, read without the lock, never dangles. */
void vm_document_replace(struct uvm *vm, char *text);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* struct uvm and what the per-concern files of the core share. */
#ifndef UVM_LIB_UVM_INTERNAL_H
#define UVM_LIB_UVM_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "options.h"
#include "rundir.h"
#include "hotslot.h"
#include "netns.h"
#include "scsi.h"
#include "share.h"
#include "vpmem.h"
#include "uvm.h"

#define UVM_AGENT_TIMEOUT_MS 30000u /* one agent request */
#define UVM_QMP_TIMEOUT_MS 10000u   /* one QMP command */
#define UVM_EXIT_TIMEOUT_MS 10000u  /* QEMU gone after SIGKILL */
#define UVM_CONSOLE_TAIL_LINES 8

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

struct uvm {
    pthread_mutex_t lock; /* guards everything below that is not immutable */
    pthread_cond_t cond;  /* state changes (exit) */
    struct uvm_config cfg; /* immutable after create */
    char *document;        /* windows VSMB changes replace it (atomically; old texts kept) */
    char **argv;           /* immutable after create; NULL for windows */
    struct jail *jail;     /* QEMU's confinement (jail.h), immutable after create; NULL: none */
    struct rundir rd;
    enum uvm_state state;
    bool terminating;
    bool undoing;            /* a failed start is killing its QEMU */
    bool releasing;          /* QEMU's exit is releasing the runtime directory (unlocked) */
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
    struct scsi_slot scsi[UVM_MAX_SCSI_CONTROLLERS][UVM_SCSI_LUNS];
    struct vpmem_dev vpmem[UVM_MAX_VPMEM];
    bool vpmem_hot_adding;
    LIST_HEAD(, net_ns) netns;
    bool hotslot_used[HOTSLOT_MAX];
    LIST_HEAD(, plan9_share) plan9;
    uint64_t plan9_counter;
    int plan9_dirfd; /* <rundir>/9p, the root of its shared bind (share.h); -1 */
    LIST_HEAD(, vsmb_share) vsmb;
    uint64_t vsmb_counter;
    int vsmb_dirfd; /* <rundir>/vsmb; -1 */
    char **old_documents; /* windows: earlier versions of `document` (VSMB changes), freed at close */
    size_t n_old_documents; /* new devices are plugged one at a time (the guest maps by order) */
    _Atomic uint64_t container_counter;
    _Atomic unsigned refs; /* the caller's (until uvm_close) + one per open process */
    bool closed;           /* uvm_close was called */
    unsigned calls;        /* public calls in flight (uvm_call_enter) */
    struct uvm_system sys;
};

/* A zeroed VM with its lock and (monotonic) condition variable set up. */
struct uvm *uvm_alloc(void);

/* References: processes keep the VM's memory alive after uvm_close (their calls then return
 * UVM_E_CLOSED); the last uvm_unref frees it. */
struct uvm *uvm_ref(struct uvm *vm);
void uvm_unref(struct uvm *vm);
/* Takes the lock. */
bool uvm_is_closed(struct uvm *vm);
/* Every public call on a VM runs between these: uvm_close (after terminating, which makes the
 * calls in flight end quickly) waits for them before freeing. UVM_E_CLOSED once closing. */
int uvm_call_enter(struct uvm *vm, const char *what);
void uvm_call_leave(struct uvm *vm);

/* Lock held by the caller. 0 when calls that need a running VM may proceed. */
int uvm_check_running(struct uvm *vm, const char *what);
/* Lock held. The code a failed operation reports: a QMP or agent failure caused by the VM
 * being terminated (UVM_E_INVALID_STATE) or having exited (UVM_E_UNEXPECTED_EXIT) says so. */
int uvm_failure_code(struct uvm *vm, int rc);

#endif

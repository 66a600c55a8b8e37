/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The resource state machine: one hot-plugged thing of a VM (a SCSI disk, a VPMem device, a
 * share, a network namespace, a NIC) is a record of a kind, and every add and remove of every
 * kind runs through the same transaction:
 *
 *     (no record) --add--> ADDING --ok--> READY (refs 1) --last remove--> REMOVING --ok--> (gone)
 *                            |  \--failed, undone--> (gone)              |  \--failed--> READY
 *                            \--failed, rollback failed--> BROKEN        \--ok, keep--> idle
 *
 * READY with refs 0 is "idle": the host part stays (a VPMem device QEMU cannot unplug) and a
 * later add of the same thing takes it again. BROKEN records keep what they hold (a slot, an
 * id QEMU may still use) until the VM closes and are never found again.
 *
 *     struct res_txn t = RES_TXN(vm, &scsi_kind, "add scsi");
 *     int rc = res_enter(&t, find, key);       locked: waits while t.r is busy, checks running
 *     if (rc < 0) return rc;
 *     if (t.r) { t.r->refs++; return res_leave(&t, 0); }   another reference
 *     r = new record; res_txn_fail(&t, "add scsi '%s' at %u:%u", ...);
 *     res_begin(&t, r, RES_ADDING);                        inserted, busy, unlocked
 *     rc = host part, then guest part, undone on failure (t.dirty if that failed too)
 *     return res_end(&t, rc);                              locked: commit or clear, broadcast
 *
 * The VM lock is held only inside these calls, never across a QMP or agent round trip.
 */
#ifndef UVM_LIB_RES_H
#define UVM_LIB_RES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include "record.h"
#include "vm.h"

/* One add or remove. */
struct res_txn {
    struct uvm *vm;
    const struct res_kind *kind;
    const char *what;      /* "add scsi": the message of a VM that does not run */
    struct res *r;         /* the record found by res_enter, then the one changed (res_begin) */
    struct qmp *qmp;       /* from res_begin: valid until the VM closes */
    struct bridge *bridge;
    bool dirty;  /* the host part could not be undone (add) or released (remove): the record's
                  * slots are never handed out again */
    bool keep;   /* the host part stays although the add failed or the remove is done: idle */
    bool offline; /* bookkeeping only, the VM need not run (windows VMs, which never start) */
    char fail[512]; /* what a failure is prefixed with (res_txn_fail); "": `what` */
    char *note;  /* a warning to log once unlocked (owned; res_note) */
};

/*     struct res_txn t = RES_TXN(vm, &scsi_kind, "add scsi"); */
#define RES_TXN(vm_, kind_, what_) {.vm = (vm_), .kind = (kind_), .what = (what_)}
/* The prefix of the error res_end returns on failure. */
void res_txn_fail(struct res_txn *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning logged by res_leave/res_end after unlocking (a log handler never runs under the VM
 * lock). Takes `note` (owned, may be NULL). */
void res_note(struct res_txn *t, char *note);

/* Lock held: a record of t->kind by something other than its key, never a BROKEN one. */
typedef struct res *(*res_find_fn)(const struct res_txn *t, const void *key);
/* Lock held: the record of `kind` whose key is `key`, never a BROKEN one. */
struct res *res_find(struct uvm *vm, const struct res_kind *kind, const char *key);
/* Lock the VM; wait while the record find(t, key) (find NULL: res_find by key) gives is ADDING
 * or REMOVING (and, for a
 * kind with serial_adds and no record, while another of the kind is ADDING), checking that the
 * VM runs (t->what names the call; not when t->offline). 0: locked, t->r the record (never
 * busy) or NULL. An error: unlocked. */
int res_enter(struct res_txn *t, res_find_fn find, const void *key);
/* The start of a remove: res_enter, then no record (or an idle one) -> error `absent` with t->fail as its
 * message (unlocked); a record with more references -> one dropped, 1 (unlocked); else 0,
 * locked, t->r the record to remove: set t->fail, then res_begin(t, t->r, RES_REMOVING). */
int res_remove_enter(struct res_txn *t, res_find_fn find, const void *key, int absent);
/* Locked: unlock without a change of state (a reference taken or dropped, a refusal). */
int res_leave(struct res_txn *t, int rc);
/* Locked: r (a new record, inserted here, or an idle or READY one) becomes `busy` (RES_ADDING
 * or RES_REMOVING); the transports are taken; unlocked. */
void res_begin(struct res_txn *t, struct res *r, enum res_state busy);
/* Lock and settle the record by rc (see the diagram), wake the waiters, unlock, log the note.
 * A failure's code says when the VM was terminated or exited meanwhile, and its message is
 * prefixed with t->fail. */
int res_end(struct res_txn *t, int rc);


/* A typed remove's arguments: a VM, a key (host path). */
int res_check_key(struct uvm *vm, const char *what, const char *key);
/* The checks every add of a host path shares: a path is given, the VM is a linux one. */
int res_check_path(struct uvm *vm, const char *what, const char *host_path);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A resource record and its kind: the types the VM core holds (vm.h) and the resource state
 * machine (res.h) works on. */
#ifndef UVM_LIB_RECORD_H
#define UVM_LIB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

struct uvm;

enum res_state { RES_ADDING = 1, RES_READY, RES_REMOVING, RES_BROKEN };

struct res;
struct res_kind {
    const char *name;
    const void *conf; /* the kind's own constants, for hooks shared by kinds */
    /* At create, linux VMs: what the kind needs for the VM's whole life (staging directories),
     * or NULL. Undone by `release` at close. */
    int (*prepare)(struct uvm *vm, const struct res_kind *kind);
    /* The VM is gone (terminated, or QEMU exited): stop what runs for it (daemons), or NULL.
     * Called without the lock. */
    void (*vm_gone)(struct uvm *vm);
    /* New records are added one at a time: an add without a record waits while another record
     * of the kind is being added (VPMem: the guest numbers devices in the order they arrive). */
    bool serial_adds;
    /* The kind's devices need the guest RAM shared with a daemon (vhost-user): not on a clone,
     * which maps its template's RAM privately (template.h). */
    bool needs_shared_ram;
    /* Lock held, the record out of the list: give back what it holds in the VM (hot-plug
     * slots). NULL: nothing. Not called for a record whose host part could not be undone. */
    void (*drop)(struct uvm *vm, struct res *r);
    /* Free what the record owns (its memory and key are freed after): daemons, strings. Called
     * without the lock, also at close for every record left. NULL: nothing. */
    void (*free)(struct res *r);
    /* Free the kind's per-VM state (res_kind_state) at close, or NULL. */
    void (*release)(struct uvm *vm, void *state);
};

struct res {
    LIST_ENTRY(res) link;
    const struct res_kind *kind;
    enum res_state state;
    unsigned refs; /* READY: users; 0: idle */
    char *key;     /* what callers name it by: a canonical host path, an id (owned) */
};

/* A zeroed record of `kind`, `size` bytes (its struct res first), with a copy of key. */
void *res_new(const struct res_kind *kind, size_t size, const char *key);

/* Lock held: every record of `kind` (busy and broken ones too). */
#define RES_FOREACH(r, vm, k) \
    LIST_FOREACH(r, &(vm)->res, link) \
        if ((r)->kind == (k))

/* A zeroed record of `kind`, `size` bytes (its struct res first), with a copy of key. */
void *res_new(const struct res_kind *kind, size_t size, const char *key);
/* Free a record: the kind's part, then the key and the memory. */
void res_free(struct res *r);
/* Lock held. The kind's per-VM state: `size` zeroed bytes made on first use (freed at close by
 * kind->release, which must then free the pointer too). */
void *res_kind_state(struct uvm *vm, const struct res_kind *kind, size_t size);

#endif

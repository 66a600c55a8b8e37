/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network namespace bookkeeping: ref-counted guest namespaces and their NICs. */
#ifndef UVM_LIB_NETNS_H
#define UVM_LIB_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <jansson.h>

struct net_nic {
    unsigned port;     /* hot-plug slot (topology.h); QEMU ids nic<port> / net<port> */
    char *tap;         /* host tap device */
    char *tap_netns;   /* named host namespace the created tap lives in, NULL: ours */
    bool tap_created;  /* made by us: deleted with the NIC */
    char *rundir;      /* the runtime directory holding its tap-<name> record (created taps) */
    json_t *settings;  /* the guest's Network Settings (for Remove) */
    /* How far a teardown got, so that a retry resumes there (QEMU refuses a second device_del
     * of a device that is gone). Written only by the thread adding or removing the NIC. */
    bool guest_gone;   /* the guest gave the NIC back (Network Remove done) */
    bool device_gone;  /* device_del answered and DEVICE_DELETED seen */
};

#include "res.h"

/* A record (res.h) of netns_kind (a guest network namespace with its NICs, uvm_add_netns) or of
 * nic_kind (one NIC uvm_modify added as NetworkAdapters/<id>). At close the taps we created go
 * with the runtime directory: its tap records are followed by rundir_release. */
struct net_ns {
    struct res res; /* key: the namespace or adapter id */
    struct net_nic *nics;
    size_t nnics;
};

struct uvm;
extern const struct res_kind netns_kind, nic_kind;

struct modify_req;
/* uvm_modify handler (kinds.h). */
int nic_modify(struct uvm *vm, struct modify_req *r);

#endif

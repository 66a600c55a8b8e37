/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network namespace bookkeeping: ref-counted guest namespaces and their NICs. */
#ifndef UVM_LIB_NETNS_H
#define UVM_LIB_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <jansson.h>

struct net_nic {
    unsigned port;     /* hot-plug slot (hotslot.h); QEMU ids nic<port> / net<port> */
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

enum net_ns_state { NET_NS_ADDING, NET_NS_READY, NET_NS_REMOVING };

struct net_ns {
    LIST_ENTRY(net_ns) link;
    char *id;
    bool adapter; /* one NIC that uvm_modify added (NetworkAdapters/<id>), not a namespace */
    enum net_ns_state state;
    unsigned refs;
    struct net_nic *nics;
    size_t nnics;
};

struct uvm;
/* Free the bookkeeping (at close). The taps we created go with the runtime directory: its tap
 * records are followed by rundir_release. */
void netns_release_all(struct uvm *vm);

struct guest_part;
/* One NIC (uvm_modify's NetworkAdapters/<adapter_id>): the existing host tap `tap` hot-plugged
 * with `mac` ("xx:xx:xx:xx:xx:xx") on a free hot-plug slot, then the guest part (NULL: a typed
 * Network Add; the caller's GuestRequest or none otherwise); host undone when the guest fails.
 * UVM_E_ALREADY_ATTACHED for a known adapter id, UVM_E_INVALID_ARGUMENT for a MAC in use. */
int netns_nic_add(struct uvm *vm, const char *adapter_id, const char *tap, const char *mac,
                  const struct guest_part *guest);
/* The guest part first, then the unplug. UVM_E_NOT_ATTACHED for an unknown adapter id. */
int netns_nic_remove(struct uvm *vm, const char *adapter_id, const struct guest_part *guest);

#endif

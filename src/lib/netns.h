/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network namespace bookkeeping: ref-counted guest namespaces and their NICs. */
#ifndef UVM_LIB_NETNS_H
#define UVM_LIB_NETNS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define NETNS_MAX_PORTS 4 /* NICs sit on the spare PCIe root ports (ARGV_SPARE_ROOT_PORTS) */

struct net_nic {
    unsigned port;     /* index among the spare root ports; QEMU ids nic<port> / net<port> */
    char *tap;         /* host tap device */
    char *tap_netns;   /* named host namespace the created tap lives in, NULL: ours */
    bool tap_created;  /* made by us: deleted with the NIC */
    json_t *settings;  /* the guest's Network Settings (for Remove) */
};

enum net_ns_state { NET_NS_ADDING, NET_NS_READY, NET_NS_REMOVING };

struct net_ns {
    struct net_ns *next;
    char *id;
    enum net_ns_state state;
    unsigned refs;
    struct net_nic *nics;
    size_t nnics;
};

struct uvm;
/* Free the bookkeeping and delete the taps we created (at close: QEMU is gone). */
void netns_release_all(struct uvm *vm);

#endif

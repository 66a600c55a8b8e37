/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small rtnetlink (NETLINK_ROUTE) client for the network requests: links (find by MAC, move to
 * another network namespace, rename, up/down), addresses and default routes. Requests are
 * synchronous: the kernel answers them at once, and every receive has a deadline
 * (NL_TIMEOUT_MS). Replies are parsed with strict bounds; the kernel's extended ack text, when
 * it sends one, is kept for the error message.
 *
 * A netlink socket belongs to the network namespace it was created in: nl_open_in() creates one
 * inside another namespace (the agent enters it and returns at once; it is single-threaded).
 */
#ifndef GCS_NETLINK_H
#define GCS_NETLINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NL_TIMEOUT_MS 5000
#define NL_EXTACK_MAX 160

struct nl {
    int fd;
    uint32_t seq;
    char extack[NL_EXTACK_MAX]; /* the kernel's message for the last failed request, or "" */
};

#define NL_INIT {.fd = -1}

/* Open a socket in the caller's network namespace: 0 or -errno. */
int nl_open(struct nl *nl);
/* Open a socket in the namespace of netns_fd (a /run/netns/<id> or /proc/<pid>/ns/net fd). */
int nl_open_in(struct nl *nl, int netns_fd);
void nl_close(struct nl *nl);

/* "strerror(-rc)" plus " (kernel: <extended ack>)" when the kernel sent one. Valid until the
 * next call. */
const char *nl_strerror(const struct nl *nl, int rc);

/* The agent's own (root) network namespace, opened on first use and kept: fd or -errno. */
int nl_root_netns(void);
/* Return the agent to its root network namespace after entering another one. Cannot fail in
 * practice (the agent holds the namespace and has CAP_SYS_ADMIN); if it does, the agent would
 * go on in the wrong namespace, so it aborts (the VM powers off). */
void nl_return_root(void);

#define NL_MAC_LEN 6

struct nl_link {
    int index;
    unsigned flags; /* IFF_* */
    char name[IFNAMSIZ];
};

/* Find the link whose hardware address is mac: 1 (found, *out set), 0 (none) or -errno. */
int nl_link_by_mac(struct nl *nl, const uint8_t mac[NL_MAC_LEN], struct nl_link *out);

/* RTM_NEWLINK on link index: move it into the namespace of netns_fd; with name (may be NULL)
 * it is renamed there as well (a "%d" pattern picks a free name). */
int nl_link_set_netns(struct nl *nl, int index, int netns_fd, const char *name);
int nl_link_set_name(struct nl *nl, int index, const char *name);
int nl_link_set_up(struct nl *nl, int index, bool up);

/* RTM_NEWADDR (create, exclusive) of addr/prefix (family AF_INET or AF_INET6; addr 4 or 16
 * bytes). IPv6 addresses are added with IFA_F_NODAD: usable at once. */
int nl_addr_add(struct nl *nl, int index, int family, const void *addr, unsigned prefix);

/* RTM_NEWROUTE (create, exclusive) of the default route via gw out of link index. */
int nl_route_add_default(struct nl *nl, int index, int family, const void *gw);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checks of textual network addresses, shared by the library and uvmctl. */
#ifndef UVM_COMMON_NETADDR_H
#define UVM_COMMON_NETADDR_H

#include <stdbool.h>

/* AF_INET or AF_INET6 when s is an address of that family, else 0. */
int netaddr_family(const char *s);
/* "xx:xx:xx:xx:xx:xx" (hex digits of either case), and unicast. */
bool netaddr_mac_valid(const char *mac);

#endif

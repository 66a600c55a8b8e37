/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Settings of a ModifySettings "Network" request, decoded and checked (pure: no I/O;
 * netnic.c applies them): {"NamespaceId", "ID", "MacAddress", "IfName", "IPAddress",
 * "PrefixLength", "GatewayAddress", "DNSServerList"}.
 */
#ifndef GCS_NICCONF_H
#define GCS_NICCONF_H

#include <arpa/inet.h>
#include <net/if.h>
#include <stdint.h>

#include <jansson.h>

#include "netlink.h" /* NL_MAC_LEN */
#include "nsid.h"
#include "request.h"

#define NIC_ID_MAX 128
#define NIC_DNS_MAX 8
#define MAC_TEXT_LEN 17 /* "52:54:00:ab:cd:ef" */

/* The Settings of a Network request. */
struct nic_conf {
    char ns[NETNS_ID_MAX + 1];
    char id[NIC_ID_MAX + 1];         /* the endpoint's id, for the log ("" if not sent) */
    char mac_text[MAC_TEXT_LEN + 1]; /* lower case, ':' separated */
    uint8_t mac[NL_MAC_LEN];
    char ifname[IFNAMSIZ];
    int family; /* of the address; 0: none */
    uint8_t addr[16];
    unsigned prefix;
    char addr_text[INET6_ADDRSTRLEN];
    int gw_family; /* 0: no default route */
    uint8_t gw[16];
    char gw_text[INET6_ADDRSTRLEN];
    char *resolv; /* resolv.conf text, NULL: none */
};

/* Decode settings (NULL: missing) into n (zeroed by the caller). 0, or -EINVAL with req->error
 * naming the field; release n either way. */
int nic_conf_parse(struct request *req, json_t *settings, struct nic_conf *n);

void nic_conf_release(struct nic_conf *n);

#endif

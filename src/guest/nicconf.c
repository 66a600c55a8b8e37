/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "nicconf.h"

void
nic_conf_release(struct nic_conf *n)
{
    free(n->resolv);
    n->resolv = NULL;
}

static int
hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* "52:54:00:ab:cd:ef" or "52-54-00-AB-CD-EF" (hcsshim's form); unicast, not all zeros. */
static bool
parse_mac(const char *s, uint8_t mac[NL_MAC_LEN])
{
    if (strlen(s) != MAC_TEXT_LEN || (s[2] != ':' && s[2] != '-'))
        return false;
    uint8_t any = 0;
    for (int i = 0; i < NL_MAC_LEN; i++) {
        const char *p = s + 3 * i;
        int hi = hex_digit(p[0]), lo = hex_digit(p[1]);
        if (hi < 0 || lo < 0 || (i < NL_MAC_LEN - 1 && p[2] != s[2]))
            return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
        any |= mac[i];
    }
    return any && !(mac[0] & 1);
}

static bool
ifname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

/* An IPv4 or IPv6 address: its family (and bytes, canonical text), or 0. */
static int
parse_ip(const char *s, uint8_t out[16], char text[INET6_ADDRSTRLEN])
{
    int family = inet_pton(AF_INET, s, out) == 1    ? AF_INET
                 : inet_pton(AF_INET6, s, out) == 1 ? AF_INET6
                                                    : 0;
    if (family && !inet_ntop(family, out, text, INET6_ADDRSTRLEN))
        family = 0;
    return family;
}

/* "1.1.1.1,8.8.8.8" (spaces around the commas allowed) -> "nameserver 1.1.1.1\n..." */
static int
parse_dns(struct request *req, const char *list, char **out)
{
    cleanup_free char *copy = xstrdup(list);
    char text[NIC_DNS_MAX * (INET6_ADDRSTRLEN + 12)] = "";
    size_t len = 0;
    unsigned n = 0;
    char *item = copy;
    for (;;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        item += strspn(item, " \t");
        size_t end = strlen(item);
        while (end > 0 && (item[end - 1] == ' ' || item[end - 1] == '\t'))
            item[--end] = '\0';
        uint8_t addr[16];
        char canon[INET6_ADDRSTRLEN];
        if (!parse_ip(item, addr, canon))
            return request_fail(req, "invalid request: field \"DNSServerList\": \"%s\" is not "
                                     "an IP address",
                                item);
        if (++n > NIC_DNS_MAX)
            return request_fail(req, "invalid request: field \"DNSServerList\" has more than "
                                     "%d servers",
                                NIC_DNS_MAX);
        len += (size_t)snprintf(text + len, sizeof(text) - len, "nameserver %s\n", canon);
        if (!comma)
            break;
        item = comma + 1;
    }
    *out = xstrdup(text);
    return 0;
}

static int
bad_field(struct request *req, const char *field, const char *value, const char *what)
{
    return request_fail(req, "invalid request: field \"%s\": \"%s\" is not %s", field, value,
                        what);
}

int
nic_conf_parse(struct request *req, json_t *settings, struct nic_conf *n)
{
    if (!settings)
        return request_fail(req, "invalid request: missing field \"Settings\"");
    const char *ns = NULL, *id = "", *mac = NULL, *ifname = NULL, *ip = "", *gw = "", *dns = "";
    uint64_t prefix = 0;
    bool has_prefix = json_object_get(settings, "PrefixLength") != NULL;
    int rc = req_string(req, settings, "NamespaceId", true, &ns);
    if (rc == 0)
        rc = req_string(req, settings, "ID", false, &id);
    if (rc == 0)
        rc = req_string(req, settings, "MacAddress", true, &mac);
    if (rc == 0)
        rc = req_string(req, settings, "IfName", true, &ifname);
    if (rc == 0)
        rc = req_string(req, settings, "IPAddress", false, &ip);
    if (rc == 0)
        rc = req_uint(req, settings, "PrefixLength", false, 0, 128, &prefix);
    if (rc == 0)
        rc = req_string(req, settings, "GatewayAddress", false, &gw);
    if (rc == 0)
        rc = req_string(req, settings, "DNSServerList", false, &dns);
    if (rc < 0)
        return rc;
    if (!netns_id_valid(ns))
        return bad_field(req, "NamespaceId", ns, "a network namespace id");
    bool id_ok = strlen(id) <= NIC_ID_MAX; /* the endpoint's id: only logged */
    for (const char *c = id; *c; c++)
        id_ok = id_ok && *c >= 0x20 && *c <= 0x7e;
    if (!id_ok)
        return request_fail(req, "invalid request: field \"ID\" must be at most %d printable "
                                 "ASCII characters",
                            NIC_ID_MAX);
    if (!parse_mac(mac, n->mac))
        return bad_field(req, "MacAddress", mac, "a unicast MAC address (52:54:00:ab:cd:ef)");
    if (!ifname_valid(ifname))
        return bad_field(req, "IfName", ifname,
                         "an interface name (1 to 15 of [A-Za-z0-9._-], not \".\" or \"..\")");
    strcpy(n->ns, ns);
    strcpy(n->id, id);
    snprintf(n->mac_text, sizeof(n->mac_text), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
             n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
    strcpy(n->ifname, ifname);
    if (*ip) {
        n->family = parse_ip(ip, n->addr, n->addr_text);
        if (!n->family)
            return bad_field(req, "IPAddress", ip, "an IPv4 or IPv6 address");
        if (!has_prefix)
            return request_fail(req, "invalid request: missing field \"PrefixLength\"");
        if (prefix > (n->family == AF_INET ? 32u : 128u))
            return request_fail(req, "invalid request: field \"PrefixLength\" = %llu is out of "
                                     "range for %s [0, %u]",
                                (unsigned long long)prefix, n->addr_text,
                                n->family == AF_INET ? 32u : 128u);
        n->prefix = (unsigned)prefix;
    } else if (prefix) {
        return request_fail(req, "invalid request: field \"PrefixLength\" without \"IPAddress\"");
    }
    if (*gw) {
        n->gw_family = parse_ip(gw, n->gw, n->gw_text);
        if (!n->gw_family)
            return bad_field(req, "GatewayAddress", gw, "an IPv4 or IPv6 address");
    }
    return *dns ? parse_dns(req, dns, &n->resolv) : 0;
}

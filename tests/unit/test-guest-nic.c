/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent's NIC settings (nicconf.c: ModifySettings "Network"), built for the host. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "guest-req.h"
#include "nicconf.h"
#include "proto.h"

/* Parse {"Settings": <settings>}'s Settings as modify.c hands them over (null: NULL): rc;
 * *req and *n released by done(). */
static int
parse(const char *settings, struct request **req, struct nic_conf *n)
{
    char *json = xasprintf("{'Settings':%s}", settings);
    *req = guest_req(PROTO_REQ_MODIFY_SETTINGS, json);
    free(json);
    *n = (struct nic_conf){0};
    json_t *s = json_object_get((*req)->body, "Settings");
    return nic_conf_parse(*req, json_is_null(s) ? NULL : s, n);
}

static void
done(struct request *req, struct nic_conf *n)
{
    nic_conf_release(n);
    request_free(req);
}

static void
test_minimal(void **state)
{
    struct request *req;
    struct nic_conf n;
    assert_int_equal(parse("{'NamespaceId':'ns1','MacAddress':'52-54-00-AB-CD-EF','IfName':'eth0'}",
                           &req, &n),
                     0);
    assert_string_equal(n.ns, "ns1");
    assert_string_equal(n.id, "");
    /* hcsshim's dashes and upper case, normalised */
    assert_string_equal(n.mac_text, "52:54:00:ab:cd:ef");
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
    assert_memory_equal(n.mac, mac, 6);
    assert_string_equal(n.ifname, "eth0");
    assert_int_equal(n.family, 0);
    assert_int_equal(n.gw_family, 0);
    assert_null(n.resolv);
    done(req, &n);
}

static void
test_full(void **state)
{
    struct request *req;
    struct nic_conf n;
    assert_int_equal(parse("{'NamespaceId':'ns1','ID':'ep-guid','MacAddress':'52:54:00:aa:00:01',"
                           "'IfName':'eth1','IPAddress':'10.1.0.2','PrefixLength':24,"
                           "'GatewayAddress':'10.1.0.1','DNSServerList':' 10.1.0.53 ,8.8.8.8,"
                           "2001:4860:4860:0:0:0:0:8888'}",
                           &req, &n),
                     0);
    assert_string_equal(n.id, "ep-guid");
    assert_int_equal(n.family, AF_INET);
    assert_string_equal(n.addr_text, "10.1.0.2");
    assert_int_equal(n.prefix, 24);
    assert_int_equal(n.gw_family, AF_INET);
    assert_string_equal(n.gw_text, "10.1.0.1");
    /* trimmed, canonical */
    assert_string_equal(n.resolv, "nameserver 10.1.0.53\nnameserver 8.8.8.8\n"
                                  "nameserver 2001:4860:4860::8888\n");
    done(req, &n);
}

static void
test_ipv6_and_limits(void **state)
{
    struct request *req;
    struct nic_conf n;
    assert_int_equal(
        parse("{'NamespaceId':'ns1','MacAddress':'02:00:00:00:00:01','IfName':'e',"
              "'IPAddress':'FD00::0002','PrefixLength':128,'GatewayAddress':'fd00::1'}",
              &req, &n),
        0);
    assert_int_equal(n.family, AF_INET6);
    assert_string_equal(n.addr_text, "fd00::2");
    assert_int_equal(n.prefix, 128);
    assert_int_equal(n.gw_family, AF_INET6);
    done(req, &n);
    /* 15 characters is the longest interface name; 8 DNS servers the most; 128 id bytes */
    char id[NIC_ID_MAX + 1];
    memset(id, 'x', NIC_ID_MAX);
    id[NIC_ID_MAX] = '\0';
    char *json = xasprintf("{'NamespaceId':'ns1','MacAddress':'02:00:00:00:00:01',"
                           "'IfName':'abcdefghijklmno','ID':'%s','DNSServerList':"
                           "'1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8'}",
                           id);
    assert_int_equal(parse(json, &req, &n), 0);
    assert_string_equal(n.ifname, "abcdefghijklmno");
    assert_string_equal(n.id, id);
    done(req, &n);
    free(json);
}

static void
test_refused(void **state)
{
    char long_id[NIC_ID_MAX + 2];
    memset(long_id, 'x', NIC_ID_MAX + 1);
    long_id[NIC_ID_MAX + 1] = '\0';
    cleanup_free char *too_long_id = xasprintf(
        "{'NamespaceId':'ns1','MacAddress':'02:00:00:00:00:01','IfName':'e','ID':'%s'}", long_id);
#define NIC(extra) "{'NamespaceId':'ns1','MacAddress':'02:00:00:00:00:01','IfName':'eth0'" extra "}"
    const struct {
        const char *settings, *what;
    } bad[] = {
        {"null", "missing field \"Settings\""},
        {"{'MacAddress':'02:00:00:00:00:01','IfName':'e'}", "missing field \"NamespaceId\""},
        {"{'NamespaceId':'ns1','IfName':'e'}", "missing field \"MacAddress\""},
        {"{'NamespaceId':'ns1','MacAddress':'02:00:00:00:00:01'}", "missing field \"IfName\""},
        {"{'NamespaceId':1,'MacAddress':'02:00:00:00:00:01','IfName':'e'}",
         "\"NamespaceId\" must be a string"},
        {"{'NamespaceId':'../x','MacAddress':'02:00:00:00:00:01','IfName':'e'}",
         "\"NamespaceId\": \"../x\" is not a network namespace id"},
        {"{'NamespaceId':'','MacAddress':'02:00:00:00:00:01','IfName':'e'}",
         "is not a network namespace id"},
        {NIC(",'ID':5"), "\"ID\" must be a string"},
        {too_long_id, "\"ID\" must be at most 128 printable ASCII characters"},
        {NIC(",'ID':'a\\nb'"), "printable ASCII"},
        {NIC(",'ID':'caf\\u00e9'"), "printable ASCII"},
        /* MACs: lengths, separators, digits, multicast, zero */
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00','IfName':'e'}",
         "\"MacAddress\": \"02:00:00:00:00\" is not a unicast MAC address"},
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00:011','IfName':'e'}", "MAC address"},
        {"{'NamespaceId':'n','MacAddress':'02:00-00:00:00:01','IfName':'e'}", "MAC address"},
        {"{'NamespaceId':'n','MacAddress':'02.00.00.00.00.01','IfName':'e'}", "MAC address"},
        {"{'NamespaceId':'n','MacAddress':'0g:00:00:00:00:01','IfName':'e'}", "MAC address"},
        {"{'NamespaceId':'n','MacAddress':'01:00:5e:00:00:01','IfName':'e'}", "MAC address"},
        {"{'NamespaceId':'n','MacAddress':'00:00:00:00:00:00','IfName':'e'}", "MAC address"},
        {"{'NamespaceId':'n','MacAddress':'','IfName':'e'}", "MAC address"},
        /* interface names */
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00:01','IfName':''}",
         "\"IfName\": \"\" is not an interface name"},
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00:01','IfName':'abcdefghijklmnop'}",
         "is not an interface name"},
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00:01','IfName':'..'}",
         "is not an interface name"},
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00:01','IfName':'.'}",
         "is not an interface name"},
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00:01','IfName':'a/b'}",
         "is not an interface name"},
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00:01','IfName':'eth 0'}",
         "is not an interface name"},
        {"{'NamespaceId':'n','MacAddress':'02:00:00:00:00:01','IfName':'eth:0'}",
         "is not an interface name"},
        /* addresses */
        {NIC(",'IPAddress':'10.1.0.300','PrefixLength':24"),
         "\"IPAddress\": \"10.1.0.300\" is not an IPv4 or IPv6 address"},
        {NIC(",'IPAddress':'10.1.0.2/24','PrefixLength':24"), "is not an IPv4 or IPv6 address"},
        {NIC(",'IPAddress':7"), "\"IPAddress\" must be a string"},
        {NIC(",'IPAddress':'10.1.0.2'"), "missing field \"PrefixLength\""},
        {NIC(",'IPAddress':'10.1.0.2','PrefixLength':33"),
         "\"PrefixLength\" = 33 is out of range for 10.1.0.2 [0, 32]"},
        {NIC(",'IPAddress':'fd00::2','PrefixLength':129"), "out of range [0, 128]"},
        {NIC(",'IPAddress':'10.1.0.2','PrefixLength':-1"), "out of range [0, 128]"},
        {NIC(",'IPAddress':'10.1.0.2','PrefixLength':'24'"), "\"PrefixLength\" must be an integer"},
        {NIC(",'PrefixLength':24"), "\"PrefixLength\" without \"IPAddress\""},
        {NIC(",'GatewayAddress':'gateway'"),
         "\"GatewayAddress\": \"gateway\" is not an IPv4 or IPv6 address"},
        /* DNS servers */
        {NIC(",'DNSServerList':'1.1.1.1,,8.8.8.8'"),
         "\"DNSServerList\": \"\" is not an IP address"},
        {NIC(",'DNSServerList':'1.1.1.1;8.8.8.8'"), "is not an IP address"},
        {NIC(",'DNSServerList':'dns.example'"), "\"dns.example\" is not an IP address"},
        {NIC(",'DNSServerList':'1.1.1.1,'"), "\"\" is not an IP address"},
        {NIC(",'DNSServerList':['1.1.1.1']"), "\"DNSServerList\" must be a string"},
        {NIC(",'DNSServerList':'1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,"
             "1.1.1.8,1.1.1.9'"),
         "\"DNSServerList\" has more than 8 servers"},
        {NIC(",'DNSServerList':'1.1.1.1\\nnameserver 6.6.6.6'"), "is not an IP address"},
    };
#undef NIC
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct request *req;
        struct nic_conf n;
        int rc = parse(bad[i].settings, &req, &n);
        if (rc != -EINVAL || !req->error || !strstr(req->error, bad[i].what))
            fail_msg("case %zu (%s): rc %d, error \"%s\", expected \"%s\"", i, bad[i].settings, rc,
                     req->error ? req->error : "(none)", bad[i].what);
        done(req, &n);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_ipv6_and_limits),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

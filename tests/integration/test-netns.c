/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network namespaces with NICs against a real VM: ping and TCP through a NIC into host
 * namespaces the test creates (10.200.x.0/24 only inside them), two namespaces, ref counts,
 * rollback, bad input, nothing left behind. */
#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static struct uvm *vm;
static char hns_a[32], hns_b[32], tap0[16]; /* the test's host namespaces and tap */

/* Run cmd in guest namespace ns; returns stdout (caller frees) and sets *code. */
static char *
in_ns(const char *ns, const char *cmd, int *code)
{
    struct itest_run r;
    const char *argv[] = {"sh", "-c", cmd, NULL};
    if (itest_run_in(vm, ns, argv, NULL, &r) < 0)
        fail_msg("exec in %s: %s", ns ? ns : "root", uvm_last_error());
    *code = r.exit_code;
    if (r.exit_code)
        fprintf(stderr, "guest [%s] '%s' -> %d: %s%s\n", ns ? ns : "root", cmd, r.exit_code, r.out,
                r.err);
    free(r.err);
    return r.out;
}

static int
setup(void **state)
{
    snprintf(hns_a, sizeof(hns_a), "uvmit-a-%d", (int)getpid());
    snprintf(hns_b, sizeof(hns_b), "uvmit-b-%d", (int)getpid());
    snprintf(tap0, sizeof(tap0), "uvmitap%d", (int)getpid() % 100000);
    itest_sh("ip netns add %s && ip netns add %s && ip tuntap add dev %s mode tap", hns_a, hns_b,
             tap0);
    vm = itest_boot("itest-netns");
    return 0;
}

static int
teardown(void **state)
{
    uvm_close(vm);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ip netns del %s; ip netns del %s; ip link del %s 2>/dev/null; true",
             hns_a, hns_b, tap0);
    return system(cmd);
}

/* Taps named uvmt* in a host namespace (NULL: ours). */
static int
created_taps(const char *hns)
{
    char *out = hns ? itest_host_out("ip -n %s -o link show | grep -c ': uvmt' || true", hns)
                    : itest_host_out("ip -o link show | grep -c ': uvmt' || true");
    int n = atoi(out);
    free(out);
    return n;
}

static void
test_ping_tcp_two_namespaces(void **state)
{
    /* ns1: the test's own tap; after attaching, its host end moves into hns_a at .1 */
    struct uvm_endpoint e1 = {.id = "6f3d1c52-0000-4000-8000-000000000001",
                              .name = "e1",
                              .mac_address = "52:54:00:00:01:02",
                              .ip_address = "10.200.1.2",
                              .prefix_length = 24,
                              .gateway_address = "10.200.1.1",
                              .dns_servers = "10.200.1.1,10.200.1.53",
                              .host_ifname = tap0};
    if (uvm_add_netns(vm, "ns1", &e1, 1) < 0)
        fail_msg("add ns1: %s", uvm_last_error());
    itest_sh("ip link set %s netns %s && ip -n %s addr add 10.200.1.1/24 dev %s && "
             "ip -n %s link set %s up && ip -n %s link set lo up",
             tap0, hns_a, hns_a, tap0, hns_a, tap0, hns_a);
    int code;
    char *out = in_ns("ns1", "ping -c 3 -W 5 10.200.1.1 >/dev/null && echo ping-ok; "
                             "cat /sys/class/net/eth0/address; cat /etc/resolv.conf; "
                             "ip route | grep default",
                      &code);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "ping-ok"));
    assert_non_null(strstr(out, "52:54:00:00:01:02"));
    assert_non_null(strstr(out, "nameserver 10.200.1.1\nnameserver 10.200.1.53"));
    assert_non_null(strstr(out, "default via 10.200.1.1"));
    free(out);
    /* TCP echo: a host listener in hns_a, the guest connects from ns1. */
    itest_sh("(ip netns exec %s timeout 60 socat TCP-LISTEN:7777,reuseaddr EXEC:cat "
             ">/dev/null 2>&1 &) ; sleep 0.5",
             hns_a);
    out = in_ns("ns1", "echo tcp-through-nic | nc -w 5 10.200.1.1 7777", &code);
    assert_string_equal(out, "tcp-through-nic\n");
    free(out);
    /* The root namespace does not have the NIC. */
    out = in_ns(NULL, "ls /sys/class/net; ls /run/netns", &code);
    assert_null(strstr(out, "eth0"));
    assert_non_null(strstr(out, "ns1"));
    free(out);

    /* ns2: two NICs on taps the library creates inside hns_b. */
    struct uvm_endpoint e2[2] = {{.id = "e2a", .ip_address = "10.200.2.2", .prefix_length = 24,
                                  .gateway_address = "10.200.2.1", .host_netns = hns_b},
                                 {.id = "e2b", .mac_address = "52:54:00:00:03:02",
                                  .ip_address = "fd00:200:3::2", .prefix_length = 64,
                                  .host_netns = hns_b}};
    if (uvm_add_netns(vm, "ns2", e2, 2) < 0)
        fail_msg("add ns2: %s", uvm_last_error());
    assert_int_equal(created_taps(hns_b), 2);
    assert_int_equal(created_taps(NULL), 0);
    out = in_ns("ns2", "ip -o addr show; ls /sys/class/net", &code);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "eth0    inet 10.200.2.2/24"));
    assert_non_null(strstr(out, "eth1    inet6 fd00:200:3::2/64"));
    free(out);

    assert_int_equal(uvm_remove_netns(vm, "ns1"), 0);
    /* the agent's NetworkNamespace Remove is idempotent: a retry of a remove it already did
     * (its answer came too late for the host) succeeds */
    if (uvm_modify(vm, "{\"GuestRequest\":{\"ResourceType\":\"NetworkNamespace\","
                       "\"RequestType\":\"Remove\",\"Settings\":{\"ID\":\"ns1\"}}}") < 0)
        fail_msg("guest-only NetworkNamespace Remove of a removed namespace: %s",
                 uvm_last_error());
    assert_int_equal(uvm_remove_netns(vm, "ns2"), 0);
    assert_int_equal(created_taps(hns_b), 0);
    out = in_ns(NULL, "ls /run/netns; ls /sys/class/net", &code);
    assert_null(strstr(out, "ns1"));
    assert_null(strstr(out, "ns2"));
    assert_null(strstr(out, "eth"));
    free(out);
    /* The test's own tap is left to the test. */
    out = itest_host_out("ip -n %s -o link show %s", hns_a, tap0);
    assert_non_null(strstr(out, tap0));
    free(out);
    itest_sh("ip -n %s link set %s netns 1", hns_a, tap0);
}

/* Six NICs in one namespace: four on the spare root ports, the last two behind the hot-plug
 * bridge, whose windows the guest kernel opened at boot for its placeholder (qboot opens none):
 * each gets its BARs and a driver, and the last one carries a ping. */
static void
test_nics_behind_the_bridge(void **state)
{
    struct uvm_endpoint e[6];
    char ips[6][16];
    for (int i = 0; i < 6; i++) {
        snprintf(ips[i], sizeof(ips[i]), "10.200.%d.2", 40 + i);
        e[i] = (struct uvm_endpoint){.ip_address = ips[i], .prefix_length = 24,
                                     .host_netns = hns_b};
    }
    e[5].host_netns = NULL;
    e[5].host_ifname = tap0;
    if (uvm_add_netns(vm, "br", e, 6) < 0)
        fail_msg("add 6 NICs: %s", uvm_last_error());
    itest_sh("ip link set %s netns %s && ip -n %s addr add 10.200.45.1/24 dev %s && "
             "ip -n %s link set %s up",
             tap0, hns_a, hns_a, tap0, hns_a, tap0);
    int code;
    char *out = in_ns("br",
                      "ip -o -4 addr show | grep -c ' inet 10.200.4'; "
                      "ping -c 2 -W 5 10.200.45.1 >/dev/null && echo ping-ok",
                      &code);
    assert_int_equal(code, 0);
    assert_string_equal(out, "6\nping-ok\n");
    free(out);
    /* where they sit, in the guest's view of its PCI tree: two behind a pci-bridge (1b36:0001),
     * four behind PCIe root ports (1b36:000c) */
    out = in_ns("br",
                "for n in /sys/class/net/eth*; do cat $n/device/../../device; done | sort | "
                "uniq -c | tr -s ' '",
                &code);
    assert_string_equal(out, " 2 0x0001\n 4 0x000c\n");
    free(out);
    assert_int_equal(uvm_remove_netns(vm, "br"), 0);
    itest_sh("ip -n %s link set %s netns 1", hns_a, tap0);
}

/* Add the same id 8 times, remove 8 times: only the last tears down. */
static void
test_refcount(void **state)
{
    struct uvm_endpoint e = {.id = "rc", .ip_address = "10.200.9.2", .prefix_length = 24};
    for (int i = 0; i < 8; i++)
        assert_int_equal(uvm_add_netns(vm, "rc", &e, 1), 0);
    assert_int_equal(created_taps(NULL), 1);
    int code;
    for (int i = 0; i < 7; i++)
        assert_int_equal(uvm_remove_netns(vm, "rc"), 0);
    char *out = in_ns("rc", "ls /sys/class/net", &code);
    assert_non_null(strstr(out, "eth0"));
    free(out);
    assert_int_equal(uvm_remove_netns(vm, "rc"), 0);
    assert_int_equal(uvm_remove_netns(vm, "rc"), UVM_E_NOT_FOUND);
    assert_int_equal(created_taps(NULL), 0);
    out = in_ns(NULL, "ls /run/netns", &code);
    assert_null(strstr(out, "rc"));
    free(out);
}

/* Failures leave no NIC, no namespace, no tap. */
static void
test_rollback(void **state)
{
    struct uvm_endpoint e[2] = {{.id = "ok", .ip_address = "10.200.8.2", .prefix_length = 24},
                                {.id = "missing", .host_ifname = "uvmit-nope"}};
    assert_int_equal(uvm_add_netns(vm, "rb", e, 2), UVM_E_NOT_FOUND);
    assert_non_null(strstr(uvm_last_error(), "uvmit-nope"));
    /* A tap QEMU cannot open (another NIC of this VM holds it): fails after the first NIC and
     * the namespace were made. */
    struct uvm_endpoint hold = {.id = "hold", .host_ifname = tap0};
    assert_int_equal(uvm_add_netns(vm, "hold", &hold, 1), 0);
    e[1].host_ifname = tap0;
    assert_true(uvm_add_netns(vm, "rb", e, 2) < 0);
    fprintf(stderr, "expected failure: %s\n", uvm_last_error());
    assert_int_equal(created_taps(NULL), 0);
    int code;
    char *out = in_ns(NULL, "ls /run/netns; ls /sys/class/net", &code);
    assert_null(strstr(out, "rb"));
    assert_non_null(strstr(out, "hold"));
    free(out);
    assert_int_equal(uvm_remove_netns(vm, "rb"), UVM_E_NOT_FOUND);
    assert_int_equal(uvm_remove_netns(vm, "hold"), 0);
    out = in_ns(NULL, "ls /sys/class/net", &code);
    assert_null(strstr(out, "eth"));
    free(out);
}

static void
test_bad_input(void **state)
{
    struct uvm_endpoint e = {.id = "x", .mac_address = "52:54:00:zz:00:01"};
    assert_int_equal(uvm_add_netns(vm, "bad", &e, 1), UVM_E_INVALID_ARGUMENT);
    e.mac_address = "53:54:00:00:00:01"; /* multicast */
    assert_int_equal(uvm_add_netns(vm, "bad", &e, 1), UVM_E_INVALID_ARGUMENT);
    e.mac_address = NULL;
    e.ip_address = "10.200.1.300";
    assert_int_equal(uvm_add_netns(vm, "bad", &e, 1), UVM_E_INVALID_ARGUMENT);
    e.ip_address = "10.200.1.3";
    e.prefix_length = 33;
    assert_int_equal(uvm_add_netns(vm, "bad", &e, 1), UVM_E_INVALID_ARGUMENT);
    e.ip_address = "fd00::3";
    e.prefix_length = 129;
    assert_int_equal(uvm_add_netns(vm, "bad", &e, 1), UVM_E_INVALID_ARGUMENT);
    e.prefix_length = 64;
    e.gateway_address = "10.0.0.1"; /* family mismatch */
    assert_int_equal(uvm_add_netns(vm, "bad", &e, 1), UVM_E_INVALID_ARGUMENT);
    e.gateway_address = NULL;
    e.dns_servers = "1.1.1.1,nonsense";
    assert_int_equal(uvm_add_netns(vm, "bad", &e, 1), UVM_E_INVALID_ARGUMENT);
    struct uvm_endpoint dup[2] = {{.mac_address = "52:54:00:00:00:07"},
                                  {.mac_address = "52:54:00:00:00:07"}};
    assert_int_equal(uvm_add_netns(vm, "bad", dup, 2), UVM_E_INVALID_ARGUMENT);
    struct uvm_endpoint ok = {.id = "ok"};
    assert_int_equal(uvm_add_netns(vm, "../etc", &ok, 1), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_netns(vm, "", &ok, 1), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_netns(vm, NULL, &ok, 1), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_remove_netns(vm, "never-added"), UVM_E_NOT_FOUND);
    const char *argv[] = {"true", NULL};
    struct uvm_process_config c = {.argv = argv, .network_namespace = "never-added"};
    struct uvm_process *p = NULL;
    assert_true(uvm_exec(vm, &c, &p) < 0);
    assert_null(p);
    c.network_namespace = "../x";
    assert_int_equal(uvm_exec(vm, &c, &p), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(created_taps(NULL), 0);
}

int
main(void)
{
    itest_init();
    if (system("command -v ip >/dev/null && command -v socat >/dev/null") != 0) {
        printf("SKIP: ip (iproute2) and socat are needed\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_ping_tcp_two_namespaces),
        cmocka_unit_test(test_nics_behind_the_bridge),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_rollback),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return itest_finish(failed);
}

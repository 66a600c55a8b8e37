/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/net: latency of uvm_add_netns with one NIC (tap created by the library, NIC hot-added,
 * moved into a guest namespace, addressed, routed; call to return) and of uvm_remove_netns,
 * median and p95 over N cycles; then TCP throughput between a guest namespace and a host
 * namespace through the NIC, both directions, with busybox nc in the guest and socat on the
 * host. Prints figures; asserts nothing about time.
 *
 * Usage: bench-net [CYCLES] [MIB]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"
#include "uvm.h"

#define MAXOPS 256

static void
report(const char *what, double *v, int n)
{
    double med = median(v, n);
    printf("  %-44s median %7.2f ms   p95 %7.2f ms   (n=%d)\n", what, med, percentile(v, n, 0.95),
           n);
}

static int
sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "bench-net: '%s' failed\n", cmd);
    return rc;
}

/* Run cmd in guest namespace ns; returns its exit code or -1. */
static int
guest(struct uvm *vm, const char *ns, const char *cmd)
{
    const char *argv[] = {"sh", "-c", cmd, NULL};
    struct uvm_process_config c = {.argv = argv, .network_namespace = ns};
    struct uvm_process *p = NULL;
    int code = -1;
    if (uvm_exec(vm, &c, &p) < 0 || uvm_process_wait(p, &code) < 0)
        fprintf(stderr, "bench-net: guest '%s': %s\n", cmd, uvm_last_error());
    uvm_process_close(p);
    return code;
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20;
    int mib = argc > 2 ? atoi(argv[2]) : 256;
    if (n < 1 || n > MAXOPS)
        n = 20;
    if (mib < 1 || mib > 4096)
        mib = 256;
    if (!getenv("UVM_BOOT_FILES_PATH")) {
        fprintf(stderr, "set UVM_BOOT_FILES_PATH\n");
        return 77;
    }
    if (system("command -v ip >/dev/null && command -v socat >/dev/null") != 0) {
        fprintf(stderr, "bench-net: needs ip and socat\n");
        return 77;
    }
    char hns[32], cmd[1024];
    snprintf(hns, sizeof(hns), "uvmbench-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "ip netns add %s && ip -n %s link set lo up", hns, hns);
    if (sh(cmd) != 0)
        return 1;
    struct uvm_options o = {.id = "bench-net", .memory_mb = 512};
    struct uvm *vm = NULL;
    int rc = 1;
    if (uvm_create(&o, &vm) < 0 || uvm_start(vm) < 0) {
        fprintf(stderr, "boot: %s\n", uvm_last_error());
        goto out;
    }
    static double add[MAXOPS], rm[MAXOPS];
    struct uvm_endpoint e = {.id = "bench", .ip_address = "10.200.77.2", .prefix_length = 24,
                             .gateway_address = "10.200.77.1", .host_netns = hns};
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        if (uvm_add_netns(vm, "bench", &e, 1) < 0)
            goto fail;
        double t1 = now_ms();
        if (uvm_remove_netns(vm, "bench") < 0)
            goto fail;
        add[i] = t1 - t0;
        rm[i] = now_ms() - t1;
    }
    printf("bench-net: %d cycles, 1 NIC each (tap created in a host netns)\n", n);
    report("add_netns (tap, hot-add, guest netns setup)", add, n);
    report("remove_netns (guest, device_del, tap)", rm, n);

    /* Throughput: the library's tap is in hns; give it the host address. */
    if (uvm_add_netns(vm, "bench", &e, 1) < 0)
        goto fail;
    snprintf(cmd, sizeof(cmd),
             "tap=$(ip -n %s -o link show | sed -n 's/^[0-9]*: \\(uvmt[0-9a-f]*\\).*/\\1/p') && "
             "ip -n %s addr add 10.200.77.1/24 dev $tap",
             hns, hns);
    if (sh(cmd) != 0)
        goto out;
    /* guest -> host: the host counts bytes */
    snprintf(cmd, sizeof(cmd),
             "(ip netns exec %s timeout 120 socat -u TCP-LISTEN:7001,reuseaddr OPEN:/dev/null "
             "&); sleep 0.5",
             hns);
    sh(cmd);
    snprintf(cmd, sizeof(cmd), "dd if=/dev/zero bs=1M count=%d 2>/dev/null | nc 10.200.77.1 7001",
             mib);
    double t0 = now_ms();
    int code = guest(vm, "bench", cmd);
    double up = now_ms() - t0;
    /* host -> guest: the guest listens and discards, the host times its sender */
    const char *largv[] = {"sh", "-c", "nc -l -p 7002 > /dev/null", NULL};
    struct uvm_process_config lc = {.argv = largv, .network_namespace = "bench"};
    struct uvm_process *lp = NULL;
    int code2 = -1;
    double down = 0;
    if (uvm_exec(vm, &lc, &lp) == 0) {
        snprintf(cmd, sizeof(cmd),
                 "ip netns exec %s sh -c 'head -c %dM /dev/zero | socat -u - "
                 "TCP:10.200.77.2:7002,retry=50,interval=0.1'",
                 hns, mib);
        double t2 = now_ms();
        if (sh(cmd) == 0)
            down = now_ms() - t2;
        if (uvm_process_wait(lp, &code2) < 0)
            code2 = -1;
        uvm_process_close(lp);
    }
    if (code == 0)
        printf("  TCP guest netns -> host netns: %d MiB in %.0f ms = %.1f MiB/s\n", mib, up,
               mib / (up / 1000));
    if (code2 == 0)
        printf("  TCP host netns -> guest netns: %d MiB in %.0f ms = %.1f MiB/s\n", mib, down,
               mib / (down / 1000));
    printf("  (exec overhead included; virtio-net with a tap backend, no vhost-net, %s)\n",
           getenv("UVM_ACCEL") ? getenv("UVM_ACCEL") : "accelerator auto-detected");
    uvm_remove_netns(vm, "bench");
    rc = code == 0 && code2 == 0 ? 0 : 1;
    goto out;
fail:
    fprintf(stderr, "bench-net: %s\n", uvm_last_error());
out:
    uvm_close(vm);
    snprintf(cmd, sizeof(cmd), "ip netns del %s", hns);
    sh(cmd);
    return rc;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/hotplug: latency of uvm_add_scsi (hot-add + guest mount, call to return) and
 * uvm_remove_scsi (guest unmount + eject, device_del until DEVICE_DELETED, blockdev-del) over N
 * operations each, median and p95, next to the attach-only add/remove (the QMP share: no guest
 * round trip). Prints figures; asserts nothing about time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "uvm.h"

#define MAXOPS 256

static void
report(const char *what, double *v, int n)
{
    double med = median(v, n);
    double p95 = percentile(v, n, 0.95);
    printf("  %-44s median %7.2f ms   p95 %7.2f ms   (n=%d)\n", what, med, p95, n);
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 50;
    if (n < 1 || n > MAXOPS)
        n = 50;
    if (!getenv("UVM_BOOT_FILES_PATH")) {
        fprintf(stderr, "set UVM_BOOT_FILES_PATH\n");
        return 77;
    }
    char dir[] = "/tmp/uvm-bench-hotplug-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char img[256], cmd[512];
    snprintf(img, sizeof(img), "%s/disk.img", dir);
    snprintf(cmd, sizeof(cmd), "truncate -s 64M %s && mkfs.ext4 -q -F -b 4096 %s", img, img);
    if (system(cmd) != 0)
        return 1;
    struct uvm_options o = {.id = "bench-hotplug", .memory_mb = 256};
    struct uvm *vm = NULL;
    if (uvm_create(&o, &vm) < 0 || uvm_start(vm) < 0) {
        fprintf(stderr, "boot: %s\n", uvm_last_error());
        return 1;
    }
    static double add[MAXOPS], rm[MAXOPS], add_q[MAXOPS], rm_q[MAXOPS];
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        if (uvm_add_scsi(vm, img, "/bench", NULL, NULL) < 0)
            goto fail;
        double t1 = now_ms();
        if (uvm_remove_scsi(vm, img) < 0)
            goto fail;
        double t2 = now_ms();
        if (uvm_add_scsi(vm, img, NULL, NULL, NULL) < 0)
            goto fail;
        double t3 = now_ms();
        if (uvm_remove_scsi(vm, img) < 0)
            goto fail;
        double t4 = now_ms();
        add[i] = t1 - t0;
        rm[i] = t2 - t1;
        add_q[i] = t3 - t2;
        rm_q[i] = t4 - t3;
    }
    printf("libuvm SCSI hot-plug benchmark (%d operations each, 64 MiB ext4 disk)\n", n);
    report("add_scsi: hot-add + mounted in the guest", add, n);
    report("remove_scsi: unmount + eject + unplug", rm, n);
    report("add_scsi attach-only (QMP share)", add_q, n);
    report("remove_scsi attach-only (guest eject + QMP)", rm_q, n);
    printf("  (libvirt on this machine, peers.md: attach -> usable 54 / 72 ms median / p95)\n");
    uvm_close(vm);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
fail:
    fprintf(stderr, "hot-plug failed: %s\n", uvm_last_error());
    uvm_close(vm);
    return 1;
}

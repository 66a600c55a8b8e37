/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/hotplug: latency of uvm_add_scsi (hot-add + guest mount, call to return) and
 * uvm_remove_scsi (guest unmount + eject, device_del until DEVICE_DELETED, blockdev-del) over N
 * operations each, median and p95, next to the attach-only add/remove (the QMP share: no guest
 * round trip). Then uvm_add_vpmem (expose: object-add + device_add + guest DAX mount) of N
 * distinct images, so that each add is a real hot-plug, uvm_remove_vpmem (guest unmount; the
 * device stays plugged, parked) and the re-add of those parked images (no hot-plug), with the
 * QMP share of the hot-plug adds (object-add sent -> device_add answered) taken from the
 * library's debug log. Prints figures; asserts nothing about time.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "uvm.h"

#define MAXOPS 256
#define VPMEM_DEVICES 128 /* the most a VM can have; the VPMem part uses min(n, 127) */

/* The QMP share of a VPMem hot-add, from the debug log: "QMP send" of object-add to the
 * "QMP recv" of device_add's answer. */
static struct {
    pthread_mutex_t lock;
    double start;      /* object-add sent */
    bool in_device_add; /* device_add sent, its answer not seen yet */
    double *out;
    int n, cap;
} qmp_share = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void
qmp_share_log(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    (void)opaque;
    (void)vm_id;
    if (level != UVM_LOG_DEBUG || strncmp(msg, "QMP ", 4))
        return;
    double t = now_ms();
    pthread_mutex_lock(&qmp_share.lock);
    if (!strncmp(msg, "QMP send: ", 10) && strstr(msg, "\"execute\":\"object-add\""))
        qmp_share.start = t;
    else if (!strncmp(msg, "QMP send: ", 10) && strstr(msg, "\"execute\":\"device_add\""))
        qmp_share.in_device_add = true;
    else if (!strncmp(msg, "QMP recv: ", 10) && qmp_share.in_device_add &&
             (strstr(msg, "\"return\"") || strstr(msg, "\"error\""))) {
        qmp_share.in_device_add = false;
        if (qmp_share.n < qmp_share.cap)
            qmp_share.out[qmp_share.n++] = t - qmp_share.start;
    }
    pthread_mutex_unlock(&qmp_share.lock);
}

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
    int nv = n < VPMEM_DEVICES - 1 ? n : VPMEM_DEVICES - 1; /* distinct images: one device each */
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
    /* nv distinct 8 MiB ext4 images (4 KiB blocks: mountable with DAX) */
    static char vimg[MAXOPS][256];
    for (int i = 0; i < nv; i++)
        snprintf(vimg[i], sizeof(vimg[i]), "%s/layer%d.img", dir, i);
    snprintf(cmd, sizeof(cmd), "truncate -s 8M %s && mkfs.ext4 -q -F -b 4096 %s", vimg[0],
             vimg[0]);
    if (system(cmd) != 0)
        return 1;
    for (int i = 1; i < nv; i++) {
        snprintf(cmd, sizeof(cmd), "cp %s %s", vimg[0], vimg[i]);
        if (system(cmd) != 0)
            return 1;
    }
    struct uvm_options o = {.id = "bench-hotplug",
                            .memory_mb = 256,
                            .has_vpmem_device_count = true,
                            .vpmem_device_count = VPMEM_DEVICES};
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

    static double vadd[MAXOPS], vrm[MAXOPS], vre[MAXOPS], vq[MAXOPS];
    qmp_share.out = vq;
    qmp_share.cap = nv;
    uvm_set_log_handler(qmp_share_log, NULL, UVM_LOG_DEBUG);
    for (int i = 0; i < nv; i++) {
        double t0 = now_ms();
        if (uvm_add_vpmem(vm, vimg[i], true, NULL, NULL) < 0)
            goto fail;
        vadd[i] = now_ms() - t0;
    }
    uvm_set_log_handler(NULL, NULL, UVM_LOG_ERROR);
    for (int i = 0; i < nv; i++) {
        double t0 = now_ms();
        if (uvm_remove_vpmem(vm, vimg[i]) < 0)
            goto fail;
        vrm[i] = now_ms() - t0;
    }
    for (int i = 0; i < nv; i++) {
        double t0 = now_ms();
        if (uvm_add_vpmem(vm, vimg[i], true, NULL, NULL) < 0)
            goto fail;
        vre[i] = now_ms() - t0;
    }
    for (int i = 0; i < nv; i++)
        if (uvm_remove_vpmem(vm, vimg[i]) < 0)
            goto fail;
    if (qmp_share.n != nv) {
        fprintf(stderr, "QMP share: %d object-add/device_add pairs seen for %d adds\n",
                qmp_share.n, nv);
        uvm_close(vm);
        return 1;
    }
    printf("libuvm VPMem benchmark (%d distinct 8 MiB ext4 images, %d devices)\n", nv,
           VPMEM_DEVICES);
    report("add_vpmem: hot-plug + DAX mount in guest", vadd, nv);
    report("remove_vpmem: guest unmount (device parked)", vrm, nv);
    report("add_vpmem of a parked image (no hot-plug)", vre, nv);
    report("add_vpmem QMP share (object-add+device_add)", vq, nv);
    uvm_close(vm);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
fail:
    fprintf(stderr, "hot-plug failed: %s\n", uvm_last_error());
    uvm_set_log_handler(NULL, NULL, UVM_LOG_ERROR);
    uvm_close(vm);
    return 1;
}

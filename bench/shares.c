/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/shares: Plan9 (9p, cache=mmap) next to VSMB on linux (virtio-fs, virtiofsd cache=auto),
 * both sharing the same host directory with one 1 GiB linux VM:
 *   (a) sequential read of a 256 MiB host file with dd in the guest, the guest's page cache
 *       dropped before each run ("cold": every byte crosses the share; the host's cache stays
 *       warm) and not dropped ("warm": what a second read costs);
 *   (b) find | wc -l, and find -exec stat, over 10,000 small files (100 dirs x 100), the guest's
 *       dentry and inode caches dropped before each run;
 *   (c) add and remove latency of one other directory, CYCLES add+remove cycles per kind, each
 *       add a real one (the previous remove has returned: guest unmount, unbind, and for
 *       virtio-fs device_del + DEVICE_DELETED and the daemon reaped; checked after each cycle).
 * Guest commands are timed on the host around uvm_exec + uvm_process_wait, exec included (its
 * cost is printed); (a) and (b) print the median of RUNS runs. Prints figures; asserts nothing
 * about time.
 *
 * Usage: bench-shares [RUNS] [CYCLES]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"
#include "uvm.h"

#define MAXRUNS 64
#define MAXCYCLES 256
#define BIG_MIB 256
#define TREE_DIRS 100
#define TREE_FILES 100
#define P9_PATH "/mnt/p9"
#define P9_LAT_PATH "/mnt/p9lat"

static void
log_stderr(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "bench-shares: [%d] %s: %s\n", (int)level, vm_id ? vm_id : "-", msg);
}

static void
report(const char *what, double *v, int n)
{
    double med = median(v, n);
    printf("  %-44s median %8.2f ms   p95 %8.2f ms   (n=%d)\n", what, med,
           percentile(v, n, 0.95), n);
}

static void
report_rate(const char *what, double *ms, int n, double mib)
{
    double med = median(ms, n);
    printf("  %-44s median %8.1f MB/s  (%.0f ms; min %.0f max %.0f, n=%d)\n", what,
           mib * 1.048576 / (med / 1000), med, ms[0], ms[n - 1], n);
}

/* A few timed runs: median, min and max (p95 of 3 runs would only be the max). */
static void
report_runs(const char *what, double *ms, int n, int files)
{
    double med = median(ms, n);
    printf("  %-44s median %8.0f ms   %5.0f us/file  (min %.0f max %.0f, n=%d)\n", what, med,
           med * 1000 / files, ms[0], ms[n - 1], n);
}

/* Run `sh -c cmd` in the guest; stdout and stderr (merged) into *out when out is not NULL
 * (caller frees). *ms (may be NULL): exec to exit, seen from the host. Returns the exit code,
 * or -1 with a message on stderr. */
static int
guest(struct uvm *vm, const char *cmd, char **out, double *ms)
{
    size_t flen = strlen(cmd) + 16;
    char *full = malloc(flen);
    snprintf(full, flen, "exec 2>&1; %s", cmd);
    const char *argv[] = {"sh", "-c", full, NULL};
    struct uvm_process_config c = {.argv = argv, .create_stdout = true};
    struct uvm_process *p = NULL;
    char *buf = calloc(1, 1);
    size_t len = 0;
    int code = -1, fd = -1;
    double t0 = now_ms();
    if (uvm_exec(vm, &c, &p) < 0)
        goto out;
    uvm_process_stdio(p, NULL, &fd, NULL);
    for (;;) {
        char chunk[65536];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        buf = realloc(buf, len + (size_t)n + 1);
        memcpy(buf + len, chunk, (size_t)n);
        len += (size_t)n;
        buf[len] = '\0';
    }
    if (uvm_process_wait(p, &code) < 0)
        code = -1;
out:
    if (ms)
        *ms = now_ms() - t0;
    if (code < 0)
        fprintf(stderr, "bench-shares: guest '%s': %s\n", cmd, uvm_last_error());
    else if (code != 0)
        fprintf(stderr, "bench-shares: guest '%s' exited %d: %s\n", cmd, code, buf);
    if (fd >= 0)
        close(fd);
    uvm_process_close(p);
    free(full);
    if (out)
        *out = buf;
    else
        free(buf);
    return code;
}

static int
drop_guest_caches(struct uvm *vm)
{
    return guest(vm, "sync && echo 3 > /proc/sys/vm/drop_caches", NULL, NULL);
}

/* A 256 MiB file of non-zero, non-repeating-page data (no holes, nothing to compress). */
static int
make_big(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    static unsigned char chunk[1 << 20];
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < BIG_MIB; i++) {
        for (size_t j = 0; j < sizeof(chunk); j += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(chunk + j, &x, 8);
        }
        if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk)) {
            close(fd);
            return -1;
        }
    }
    return close(fd);
}

static int
make_tree(const char *root)
{
    char p[512];
    if (mkdir(root, 0755) < 0)
        return -1;
    for (int d = 0; d < TREE_DIRS; d++) {
        snprintf(p, sizeof(p), "%s/d%02d", root, d);
        if (mkdir(p, 0755) < 0)
            return -1;
        for (int f = 0; f < TREE_FILES; f++) {
            snprintf(p, sizeof(p), "%s/d%02d/f%02d", root, d, f);
            int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0)
                return -1;
            char line[64];
            int n = snprintf(line, sizeof(line), "file %d/%d\n", d, f);
            ssize_t w = write(fd, line, (size_t)n);
            close(fd);
            if (w != n)
                return -1;
        }
    }
    return 0;
}

/* One share kind as seen from the guest. */
struct kind {
    const char *name;
    char guest_dir[128];
    double cold[MAXRUNS], warm[MAXRUNS], find[MAXRUNS], stat[MAXRUNS];
    double add[MAXCYCLES], rm[MAXCYCLES];
};

/* One dd of the big file; it must have read all of it (busybox dd counts records only). */
static int
timed_dd(struct uvm *vm, const struct kind *k, double *ms)
{
    char cmd[512], want[64];
    snprintf(cmd, sizeof(cmd), "dd if=%s/big of=/dev/null bs=1M", k->guest_dir);
    snprintf(want, sizeof(want), "%d+0 records in", BIG_MIB);
    char *out = NULL;
    int rc = guest(vm, cmd, &out, ms);
    if (rc == 0 && !strstr(out, want)) {
        fprintf(stderr, "bench-shares: '%s' gave '%s'\n", cmd, out);
        rc = -1;
    }
    free(out);
    return rc;
}

/* (a): one timed dd per kind and run, kinds interleaved so that machine noise hits both alike. */
static int
bench_read(struct uvm *vm, struct kind **kinds, int nk, int runs)
{
    for (int i = 0; i < runs; i++)
        for (int k = 0; k < nk; k++)
            if (drop_guest_caches(vm) != 0 || timed_dd(vm, kinds[k], &kinds[k]->cold[i]) != 0)
                return -1;
    for (int i = -1; i < runs; i++) /* run -1 fills the guest cache, if the share lets it */
        for (int k = 0; k < nk; k++) {
            double ms;
            if (timed_dd(vm, kinds[k], &ms) != 0)
                return -1;
            if (i >= 0)
                kinds[k]->warm[i] = ms;
        }
    return 0;
}

/* Run cmd with the guest caches dropped first; it must print the number of files. */
static int
timed_count(struct uvm *vm, const char *cmd, double *ms)
{
    char *out = NULL;
    if (drop_guest_caches(vm) != 0 || guest(vm, cmd, &out, ms) != 0 ||
        atoi(out) != TREE_DIRS * TREE_FILES) {
        fprintf(stderr, "bench-shares: '%s' gave '%s'\n", cmd, out ? out : "");
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

/* (b), interleaved as (a). */
static int
bench_tree(struct uvm *vm, struct kind **kinds, int nk, int runs)
{
    char find_cmd[512], stat_cmd[512];
    for (int i = 0; i < runs; i++)
        for (int k = 0; k < nk; k++) {
            const char *d = kinds[k]->guest_dir;
            snprintf(find_cmd, sizeof(find_cmd), "find %s/tree -type f | wc -l", d);
            snprintf(stat_cmd, sizeof(stat_cmd),
                     "find %s/tree -type f -exec stat -c %%s {} + | wc -l", d);
            if (timed_count(vm, find_cmd, &kinds[k]->find[i]) < 0 ||
                timed_count(vm, stat_cmd, &kinds[k]->stat[i]) < 0)
                return -1;
        }
    return 0;
}

static int
bench_plan9_cycles(struct uvm *vm, struct kind *k, const char *dir, int cycles)
{
    for (int i = 0; i < cycles; i++) {
        double t0 = now_ms();
        if (uvm_add_plan9(vm, dir, P9_LAT_PATH, false) < 0)
            return -1;
        double t1 = now_ms();
        if (uvm_remove_plan9(vm, dir) < 0)
            return -1;
        k->add[i] = t1 - t0;
        k->rm[i] = now_ms() - t1;
        if (uvm_remove_plan9(vm, dir) != UVM_E_NOT_ATTACHED) { /* fully gone */
            fprintf(stderr, "bench-shares: plan9 share still attached after remove\n");
            return -1;
        }
    }
    return 0;
}

static int
bench_vsmb_cycles(struct uvm *vm, struct kind *k, const char *dir, int cycles)
{
    char prev[64] = "";
    for (int i = 0; i < cycles; i++) {
        char *path = NULL;
        double t0 = now_ms();
        if (uvm_add_vsmb(vm, dir, NULL, NULL) < 0)
            return -1;
        double t1 = now_ms();
        if (uvm_get_vsmb_uvm_path(vm, dir, &path) < 0)
            return -1;
        /* a new share each time: a new name, so a new daemon and device */
        bool fresh = strcmp(prev, path) != 0;
        snprintf(prev, sizeof(prev), "%s", path);
        free(path);
        path = NULL;
        double t2 = now_ms();
        if (uvm_remove_vsmb(vm, dir) < 0)
            return -1;
        k->add[i] = t1 - t0;
        k->rm[i] = now_ms() - t2;
        if (!fresh || uvm_get_vsmb_uvm_path(vm, dir, &path) != UVM_E_NOT_FOUND) {
            fprintf(stderr, "bench-shares: vsmb share %s not fully removed in cycle %d\n", prev,
                    i);
            free(path);
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    int cycles = argc > 2 ? atoi(argv[2]) : 20;
    if (runs < 1 || runs > MAXRUNS)
        runs = 3;
    if (cycles < 1 || cycles > MAXCYCLES)
        cycles = 20;
    if (!getenv("UVM_BOOT_FILES_PATH")) {
        fprintf(stderr, "bench-shares: set UVM_BOOT_FILES_PATH\n");
        return 77;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "bench-shares: needs root (shares are bind mounts)\n");
        return 77;
    }
    uvm_set_log_handler(log_stderr, NULL, UVM_LOG_WARNING);
    char dir[] = "/tmp/uvm-bench-shares-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char big[256], tree[256], lat[256], cmd[512];
    snprintf(big, sizeof(big), "%s/big", dir);
    snprintf(tree, sizeof(tree), "%s/tree", dir);
    snprintf(lat, sizeof(lat), "%s/lat", dir);
    struct uvm *vm = NULL;
    int rc = 1;
    static struct kind p9 = {.name = "plan9"}, vfs = {.name = "virtio-fs"};
    struct kind *kinds[] = {&p9, &vfs};
    if (make_big(big) < 0 || make_tree(tree) < 0 || mkdir(lat, 0755) < 0) {
        perror("bench-shares: host files");
        goto out;
    }
    struct uvm_options o = {.id = "bench-shares", .memory_mb = 1024};
    if (uvm_create(&o, &vm) < 0 || uvm_start(vm) < 0) {
        fprintf(stderr, "bench-shares: boot: %s\n", uvm_last_error());
        goto out;
    }
    char *vpath = NULL;
    if (uvm_add_plan9(vm, dir, P9_PATH, false) < 0 || uvm_add_vsmb(vm, dir, NULL, NULL) < 0 ||
        uvm_get_vsmb_uvm_path(vm, dir, &vpath) < 0)
        goto fail;
    snprintf(p9.guest_dir, sizeof(p9.guest_dir), "%s", P9_PATH);
    snprintf(vfs.guest_dir, sizeof(vfs.guest_dir), "%s", vpath);
    free(vpath);

    double exec_ms[MAXRUNS];
    for (int i = 0; i < runs; i++)
        if (guest(vm, "true", NULL, &exec_ms[i]) != 0)
            goto fail;
    if (bench_read(vm, kinds, 2, runs) < 0 || bench_tree(vm, kinds, 2, runs) < 0)
        goto fail;
    if (uvm_remove_plan9(vm, dir) < 0 || uvm_remove_vsmb(vm, dir) < 0)
        goto fail;
    if (bench_plan9_cycles(vm, &p9, lat, cycles) < 0 ||
        bench_vsmb_cycles(vm, &vfs, lat, cycles) < 0)
        goto fail;

    printf("libuvm shares benchmark: Plan9 (9p cache=mmap) vs virtio-fs (virtiofsd cache=auto), "
           "1 GiB VM, %s\n",
           getenv("UVM_ACCEL") ? getenv("UVM_ACCEL") : "accelerator auto-detected");
    report("guest exec of `true` (in every figure below)", exec_ms, runs);
    printf(" (a) dd of a %d MiB host file, bs=1M (host page cache warm)\n", BIG_MIB);
    for (int k = 0; k < 2; k++) {
        char what[64];
        snprintf(what, sizeof(what), "%s read, guest cache dropped", kinds[k]->name);
        report_rate(what, kinds[k]->cold, runs, BIG_MIB);
        snprintf(what, sizeof(what), "%s read again (guest cache kept)", kinds[k]->name);
        report_rate(what, kinds[k]->warm, runs, BIG_MIB);
    }
    printf(" (b) %d files in %d dirs, guest caches dropped before each run\n",
           TREE_DIRS * TREE_FILES, TREE_DIRS);
    for (int k = 0; k < 2; k++) {
        char what[64];
        snprintf(what, sizeof(what), "%s find -type f | wc -l", kinds[k]->name);
        report_runs(what, kinds[k]->find, runs, TREE_DIRS * TREE_FILES);
        snprintf(what, sizeof(what), "%s find -type f -exec stat {} +", kinds[k]->name);
        report_runs(what, kinds[k]->stat, runs, TREE_DIRS * TREE_FILES);
    }
    printf(" (c) add/remove of one directory, %d cycles each\n", cycles);
    report("add_plan9 (bind + guest mount)", p9.add, cycles);
    report("remove_plan9 (guest unmount + unbind)", p9.rm, cycles);
    report("add_vsmb (bind, virtiofsd, hot-plug, mount)", vfs.add, cycles);
    report("remove_vsmb (umount, unplug, daemon reaped)", vfs.rm, cycles);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "bench-shares: %s\n",
            *uvm_last_error() ? uvm_last_error() : "stopped (see above)");
out:
    uvm_close(vm);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}

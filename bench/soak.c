/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/soak: does libuvm leak anything over many VMs and hot-plugs?
 *
 * Phase 1: CYCLES times: create, start, exec `true`, add a SCSI disk (mounted), a Plan9 share,
 * a VSMB (virtio-fs) share, a network namespace with one NIC (tap made by the library), then
 * remove them all and close. Phase 2: 4 VMs, one thread each, hot-plugging (disk, share, exec)
 * in a loop for MINUTES minutes. Before (after a warm-up of both phases: first-use allocations of
 * the libraries are not leaks) and after: open fds, child processes, mounts, taps, runtime
 * directories, QEMU and virtiofsd processes (our children), the RSS of this process and the heap
 * it holds (every allocation not freed, counted by heapcount.c). Prints the table; exits 1 when a
 * count differs, RSS or the heap grew by 5 % or more, or an operation failed. Taps are counted
 * system-wide: run it alone.
 *
 * glibc keeps freed memory for reuse: a cache per thread (tcache, up to 7 chunks per size class)
 * and an arena per group of threads. Both grow with use up to their bounds, and mallinfo2()
 * counts the cached chunks as "in use": that, not libuvm, is what grew in the first runs (docs/
 * performance.md "Soak"). So the soak re-executes itself with both reduced
 * (GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1), which its children do not
 * inherit; SOAK_GLIBC_DEFAULTS=1 keeps glibc's defaults (and RSS then grows by glibc's caches).
 * mallinfo2's figure is printed for information.
 *
 * Usage: bench-soak [CYCLES [MINUTES]]  (default 200 and 10; UVM_BOOT_FILES_PATH must be set)
 */
#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heapcount.h"
#include "stats.h"
#include "uvm.h"

#define PARALLEL_VMS 4

struct counts {
    long fds, children, mounts, taps, rundirs, qemus, virtiofsds, rss_kb;
    long heap_bytes, heap_blocks; /* allocated and not freed (heapcount.c) */
    long mallinfo_kb;             /* mallinfo2's "in use": includes glibc's per-thread caches */
};

static char tmp[] = "/tmp/uvm-soak-XXXXXX";
static char disk_dir[64];
static const char *rundir_base;
static volatile int failures;

static long
count_dir(const char *path, const char *prefix)
{
    DIR *d = opendir(path);
    long n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' && (!prefix || !strncmp(e->d_name, prefix, strlen(prefix))))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Mounts below our files' directory or our runtime directories. */
static long
count_mounts(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096], point[4096];
    long n = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 &&
            (!strncmp(point, tmp, strlen(tmp)) ||
             !strncmp(point, rundir_base, strlen(rundir_base))))
            n++;
    if (f)
        fclose(f);
    return n;
}

/* This process's children, and which of them are QEMU and virtiofsd. */
static void
count_procs(struct counts *c)
{
    DIR *d = opendir("/proc");
    pid_t self = getpid();
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close)
            continue;
        *close = '\0';
        int ppid = 0;
        sscanf(close + 2, "%*c %d", &ppid);
        c->children += ppid == self; /* QEMU and virtiofsd are our children: counted here too */
        c->qemus += ppid == self && !strncmp(open + 1, "qemu-system", 11);
        c->virtiofsds += ppid == self && !strcmp(open + 1, "virtiofsd");
    }
    if (d)
        closedir(d);
}

static void
measure(struct counts *c)
{
    malloc_trim(0); /* free memory given back: what stays is in use */
    memset(c, 0, sizeof(*c));
    c->fds = count_dir("/proc/self/fd", NULL) - 1; /* the opendir's own fd */
    c->mounts = count_mounts();
    c->taps = count_dir("/sys/class/net", "uvmt");
    c->rundirs = count_dir(rundir_base, NULL);
    count_procs(c);
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            c->rss_kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    heapcount_get(&c->heap_bytes, &c->heap_blocks);
    c->mallinfo_kb = (long)(mallinfo2().uordblks / 1024);
}

#define CHECK(what, call)                                                                          \
    do {                                                                                           \
        if ((call) < 0) {                                                                          \
            fprintf(stderr, "soak: %s: %s\n", what, uvm_last_error());                             \
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);                                    \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static int
run_true(struct uvm *vm)
{
    const char *argv[] = {"true", NULL};
    struct uvm_process_config cfg = {.argv = argv};
    struct uvm_process *p = NULL;
    int rc = uvm_exec(vm, &cfg, &p), code = -1;
    if (rc == 0)
        rc = uvm_process_wait(p, &code);
    uvm_process_close(p);
    return rc < 0 ? rc : code == 0 ? 0 : -1;
}

static int
boot(const char *id, struct uvm **vm)
{
    struct uvm_options o = {.id = id, .memory_mb = 256};
    int rc = uvm_create(&o, vm);
    if (rc == 0 && (rc = uvm_start(*vm)) < 0) {
        uvm_close(*vm);
        *vm = NULL;
    }
    return rc;
}

/* One full cycle: every kind added and removed, the VM closed. */
static void
cycle(int i, const char *disk, const char *share)
{
    char id[32];
    snprintf(id, sizeof(id), "soak-%d", i);
    struct uvm *vm = NULL;
    CHECK("boot", boot(id, &vm));
    CHECK("exec", run_true(vm));
    CHECK("add scsi", uvm_add_scsi(vm, disk, "/mnt/d", NULL, NULL));
    CHECK("add plan9", uvm_add_plan9(vm, share, "/mnt/s", false));
    CHECK("add vsmb", uvm_add_vsmb(vm, share, NULL, NULL));
    struct uvm_endpoint ep = {.id = "e0", .ip_address = "10.99.0.2", .prefix_length = 24};
    CHECK("add netns", uvm_add_netns(vm, "ns0", &ep, 1));
    CHECK("exec with all", run_true(vm));
    CHECK("remove netns", uvm_remove_netns(vm, "ns0"));
    CHECK("remove vsmb", uvm_remove_vsmb(vm, share));
    CHECK("remove plan9", uvm_remove_plan9(vm, share));
    CHECK("remove scsi", uvm_remove_scsi(vm, disk));
out:
    uvm_close(vm);
}

struct worker {
    int n;
    double until_ms;
    long ops;
};

static void *
hotplug_loop(void *arg)
{
    struct worker *w = arg;
    char id[32], disk[128], share[128];
    snprintf(id, sizeof(id), "soak-par-%d", w->n);
    snprintf(disk, sizeof(disk), "%s/disk%d.img", disk_dir, w->n);
    snprintf(share, sizeof(share), "%s/share", disk_dir);
    struct uvm *vm = NULL;
    CHECK("parallel boot", boot(id, &vm));
    while (now_ms() < w->until_ms) {
        CHECK("parallel add scsi", uvm_add_scsi(vm, disk, "/mnt/d", NULL, NULL));
        CHECK("parallel add plan9", uvm_add_plan9(vm, share, "/mnt/s", true));
        CHECK("parallel exec", run_true(vm));
        CHECK("parallel remove plan9", uvm_remove_plan9(vm, share));
        CHECK("parallel remove scsi", uvm_remove_scsi(vm, disk));
        w->ops += 5;
    }
out:
    uvm_close(vm);
    return NULL;
}

/* PARALLEL_VMS threads hot-plugging for `minutes`; the operations done. */
static long
parallel(double minutes)
{
    struct worker w[PARALLEL_VMS];
    pthread_t th[PARALLEL_VMS];
    for (int i = 0; i < PARALLEL_VMS; i++) {
        w[i] = (struct worker){.n = i, .until_ms = now_ms() + minutes * 60e3};
        pthread_create(&th[i], NULL, hotplug_loop, &w[i]);
    }
    long ops = 0;
    for (int i = 0; i < PARALLEL_VMS; i++) {
        pthread_join(th[i], NULL);
        ops += w[i].ops;
    }
    return ops;
}

static void
row(const char *what, long before, long after, bool *ok)
{
    bool same = before == after;
    printf("  %-26s %10ld %10ld  %s\n", what, before, after, same ? "same" : "DIFFERENT");
    *ok = *ok && same;
}

static int
make_files(void)
{
    char cmd[512];
    snprintf(disk_dir, sizeof(disk_dir), "%s", tmp);
    for (int i = -1; i < PARALLEL_VMS; i++) {
        snprintf(cmd, sizeof(cmd), "truncate -s 32M %s/disk%d.img && mkfs.ext4 -q -F %s/disk%d.img",
                 tmp, i, tmp, i);
        if (system(cmd) != 0)
            return -1;
    }
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/share && echo hi > %s/share/f", tmp, tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* Growth from before to after in %, and whether it is under 5 %. */
static bool
grew_little(const char *what, const char *unit, long before, long after, bool judged)
{
    double pct = before ? 100.0 * (double)(after - before) / (double)before : 0;
    bool ok = pct < 5.0;
    printf("  %-26s %7ld %-2s %7ld %-2s %+.1f %%%s\n", what, before, unit, after, unit, pct,
           !judged ? " (not judged)"
           : ok    ? ""
                   : "  GREW");
    return ok || !judged;
}

static bool
table(const struct counts *b, const struct counts *a)
{
    printf("  %-26s %10s %10s\n", "", "before", "after");
    bool ok = failures == 0;
    row("open fds", b->fds, a->fds, &ok);
    row("child processes", b->children, a->children, &ok);
    row("mounts (ours)", b->mounts, a->mounts, &ok);
    row("taps (uvmt*, system-wide)", b->taps, a->taps, &ok);
    row("runtime directories", b->rundirs, a->rundirs, &ok);
    row("QEMU processes", b->qemus, a->qemus, &ok);
    row("virtiofsd processes", b->virtiofsds, a->virtiofsds, &ok);
    ok = grew_little("RSS of this process", "kB", b->rss_kb, a->rss_kb, true) && ok;
    ok = grew_little("heap held (bytes)", "B", b->heap_bytes, a->heap_bytes, true) && ok;
    ok = grew_little("heap held (blocks)", "", b->heap_blocks, a->heap_blocks, true) && ok;
    grew_little("mallinfo2 in use", "kB", b->mallinfo_kb, a->mallinfo_kb, false);
    return ok;
}

#define TUNABLES "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1"

/* Re-execute with glibc's caches reduced (see the top), once; then hide the setting from our
 * children (QEMU, virtiofsd). */
static void
reduce_glibc_caches(char **argv)
{
    if (getenv("SOAK_GLIBC_DEFAULTS")) {
        printf("glibc: default malloc caches (SOAK_GLIBC_DEFAULTS)\n");
        return;
    }
    const char *t = getenv("GLIBC_TUNABLES");
    if (!t || strcmp(t, TUNABLES) != 0) {
        setenv("GLIBC_TUNABLES", TUNABLES, 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "soak: re-exec with GLIBC_TUNABLES failed: %m\n");
        exit(1);
    }
    unsetenv("GLIBC_TUNABLES");
    printf("glibc: GLIBC_TUNABLES=%s (freed memory is not cached per thread)\n", TUNABLES);
}

int
main(int argc, char **argv)
{
    int cycles = argc > 1 ? atoi(argv[1]) : 200;
    double minutes = argc > 2 ? atof(argv[2]) : 10;
    if (!getenv("UVM_BOOT_FILES_PATH")) {
        fprintf(stderr, "set UVM_BOOT_FILES_PATH\n");
        return 77;
    }
    reduce_glibc_caches(argv);
    rundir_base = getenv("UVM_RUNTIME_DIR") ? getenv("UVM_RUNTIME_DIR") : "/run/libuvm";
    if (!mkdtemp(tmp) || make_files() < 0)
        return 1;
    char disk[128], share[128];
    snprintf(disk, sizeof(disk), "%s/disk-1.img", tmp);
    snprintf(share, sizeof(share), "%s/share", tmp);
    /* Warm-up, both phases once: first-use allocations (the libraries', glibc's) are not
     * leaks. */
    cycle(-1, disk, share);
    parallel(1.0);
    struct counts before, after;
    measure(&before);
    double t0 = now_ms();
    for (int i = 0; i < cycles; i++)
        cycle(i, disk, share);
    double t1 = now_ms();
    long ops = parallel(minutes);
    measure(&after);
    printf("libuvm soak: %d full cycles in %.0f s (%.2f s each), then %d VMs hot-plugging for "
           "%.1f min (%ld operations); %d failures\n",
           cycles, (t1 - t0) / 1e3, (t1 - t0) / 1e3 / (cycles ? cycles : 1), PARALLEL_VMS, minutes,
           ops, failures);
    bool ok = table(&before, &after);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "soak: could not remove %s\n", tmp);
    printf("soak: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}

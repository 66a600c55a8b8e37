/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/boot: for each set of boot files (one per guest kernel), the median create -> start ->
 * agent-ready of libuvm over N boots, side by side with the median of a bare qemu-system-x86_64
 * boot of the same kernel + initrd to /init (the agent reports through QEMU's debugcon as soon
 * as it runs: `-poweroff-at-start`), their ratio, and the RSS of QEMU for an idle 256 MiB UVM.
 * With two kernels, also the ratio of their medians (the second over the first).
 *
 * Then, with the last set of boot files, cold boot vs clone side by side: a template is saved
 * from a booted VM (on /dev/shm), and N times, interleaved, a cold create -> agent ready and a
 * clone's create -> agent ready (uvm_options.template_dir), the same options; their medians and
 * ratio (target under TCG: clone <= 0.15x cold). And the memory of 8 idle VMs: the summed PSS
 * (smaps_rollup) of 8 cold VMs and of 8 clones, each set running at once, measured 3 s after
 * the last became ready (target: clones <= 0.5x). Prints figures; asserts nothing about time.
 *
 * Usage: bench-boot [RUNS] [NAME=BOOT_FILES_DIR ...]
 *   without NAME=DIR: one set, $UVM_BOOT_FILES_PATH. Boots are interleaved (kernel after
 *   kernel, libuvm then the bare boots) so that machine noise hits every figure alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "uvm.h"

#define MAX_RUNS 64
#define MAX_KERNELS 4

struct kernel {
    const char *name, *dir;
    struct uvm *keep; /* the first VM, alive: its runtime folder backs files of qargv */
    char **qargv;     /* libuvm's QEMU command line (a copy), for the bare boots */
    double ours[MAX_RUNS], bare[MAX_RUNS], bare_min[MAX_RUNS];
    double spawn[MAX_RUNS], qmp[MAX_RUNS], init[MAX_RUNS];
    long rss, priv, kernel_bytes;
};

static void
log_stderr(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    fprintf(stderr, "[%d] %s: %s\n", (int)level, vm_id ? vm_id : "-", msg);
}

/* A bare QEMU boot of the same kernel + initrd, /init powering off as soon as it runs.
 * same_devices: libuvm's whole command line with its sockets and files replaced by null
 * backends (what the hypervisor itself costs); otherwise without any of our devices. */
static double
bare_boot(char *const *uvm_argv, bool same_devices)
{
    const char *argv[128];
    char append[4096], chardevs[8][256], memory[256];
    int n = 0, nc = 0;
    for (int i = 0; uvm_argv[i] && n < 120; i++) {
        const char *a = uvm_argv[i];
        bool ours = !strcmp(a, "-device") || !strcmp(a, "-chardev") || !strcmp(a, "-mon") ||
                    !strcmp(a, "-serial");
        if (!strcmp(a, "-name") || (ours && !same_devices)) {
            i++; /* drop the option and its value */
            continue;
        }
        if (!strcmp(a, "-chardev") && uvm_argv[i + 1] && nc < 8) {
            const char *id = strstr(uvm_argv[i + 1], "id=");
            size_t len = id ? strcspn(id, ",") : 0;
            snprintf(chardevs[nc], sizeof(chardevs[nc]), "null,%.*s", (int)len, id ? id : "");
            argv[n++] = a;
            argv[n++] = chardevs[nc++];
            i++;
            continue;
        }
        /* libuvm hands QEMU the guest RAM as its fd 6 (a memfd): the same, made by QEMU. */
        if (!strcmp(a, "-object") && uvm_argv[i + 1] &&
            !strncmp(uvm_argv[i + 1], "memory-backend-file,id=mem,", 27)) {
            const char *size = strstr(uvm_argv[i + 1], "size=");
            snprintf(memory, sizeof(memory), "memory-backend-memfd,id=mem,%.*s,share=on",
                     size ? (int)strcspn(size, ",") : 0, size ? size : "");
            argv[n++] = a;
            argv[n++] = memory;
            i++;
            continue;
        }
        if (!strcmp(a, "-append") && uvm_argv[i + 1]) {
            snprintf(append, sizeof(append), "%s -poweroff-at-start", uvm_argv[i + 1]);
            argv[n++] = a;
            argv[n++] = append;
            i++;
            continue;
        }
        argv[n++] = a;
    }
    argv[n++] = "-debugcon"; /* /init writes 'I' to port 0xe9 when it runs */
    argv[n++] = "stdio";
    argv[n] = NULL;
    int pipefd[2];
    if (pipe(pipefd) < 0)
        exit(1);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(pipefd[1], 1);
        dup2(devnull, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    char c = 0;
    ssize_t r;
    while ((r = read(pipefd[0], &c, 1)) == 1 && c != 'I')
        ;
    double t = now_ms() - t0;
    close(pipefd[0]);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (c != 'I') {
        fprintf(stderr, "bare boot failed: /init never reported (status 0x%x)\n", status);
        exit(1);
    }
    return t;
}

static long
status_kib(int pid, const char *file, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
    FILE *f = fopen(path, "r");
    long kib = -1;
    size_t len = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, len))
            kib = strtol(line + len, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static int
qemu_pid(const char *id)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "pgrep -f 'guest=%s,' | head -1", id);
    FILE *p = popen(cmd, "r");
    int pid = -1;
    if (p && fscanf(p, "%d", &pid) != 1)
        pid = -1;
    if (p)
        pclose(p);
    return pid;
}

static char **
argv_dup(const char *const *argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **copy = calloc(n + 1, sizeof(*copy));
    for (size_t i = 0; copy && i < n; i++)
        copy[i] = strdup(argv[i]);
    return copy;
}

static long
file_bytes(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) < 0) {
        if (f)
            fclose(f);
        return -1;
    }
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Boot number i of kernel k: libuvm, then the two bare boots. */
static int
boot_once(struct kernel *k, int ki, int i)
{
    char id[48];
    snprintf(id, sizeof(id), "bench-boot-%d-%d", ki, i);
    struct uvm_options o = {.id = id, .memory_mb = 256, .boot_files_path = k->dir};
    struct uvm *vm = NULL;
    double t0 = now_ms();
    if (uvm_create(&o, &vm) < 0 || uvm_start(vm) < 0) {
        fprintf(stderr, "%s: boot failed: %s\n", k->name, uvm_last_error());
        return -1;
    }
    k->ours[i] = now_ms() - t0;
    struct uvm_timings t;
    uvm_get_timings(vm, &t);
    k->spawn[i] = t.spawn_us / 1e3;
    k->qmp[i] = t.qmp_ready_us / 1e3;
    k->init[i] = t.guest_init_us / 1e3;
    if (i == 0) {
        /* Idle RSS of a 256 MiB UVM, one second after it is ready. */
        sleep(1);
        int pid = qemu_pid(id);
        k->rss = status_kib(pid, "status", "VmRSS:");
        k->priv = status_kib(pid, "smaps_rollup", "Anonymous:");
        k->qargv = argv_dup(uvm_qemu_argv(vm));
        k->keep = vm;
    } else {
        uvm_close(vm);
    }
    k->bare[i] = bare_boot(k->qargv, true);
    k->bare_min[i] = bare_boot(k->qargv, false);
    return 0;
}

/* ---- clones vs cold boots ------------------------------------------------------------------ */

#define IDLE_VMS 8

static double
boot_ms(const char *id, const char *boot, const char *tpl, struct uvm **keep)
{
    struct uvm_options o = {.id = id, .memory_mb = tpl ? 0 : 256, .boot_files_path = tpl ? NULL
                                                                                          : boot,
                            .template_dir = tpl};
    struct uvm *vm = NULL;
    double t0 = now_ms();
    if (uvm_create(&o, &vm) < 0 || uvm_start(vm) < 0) {
        fprintf(stderr, "%s: %s failed: %s\n", id, tpl ? "clone" : "cold boot", uvm_last_error());
        exit(1);
    }
    double t = now_ms() - t0;
    if (keep)
        *keep = vm;
    else
        uvm_close(vm);
    return t;
}

/* The summed PSS (KiB) of IDLE_VMS VMs running at once, cold or clones. */
static long
idle_pss(const char *boot, const char *tpl)
{
    struct uvm *vms[IDLE_VMS];
    char id[IDLE_VMS][48];
    for (int i = 0; i < IDLE_VMS; i++) {
        snprintf(id[i], sizeof(id[i]), "bench-idle-%s-%d", tpl ? "clone" : "cold", i);
        boot_ms(id[i], boot, tpl, &vms[i]);
    }
    sleep(3);
    long sum = 0;
    for (int i = 0; i < IDLE_VMS && sum >= 0; i++) {
        long kib = status_kib(qemu_pid(id[i]), "smaps_rollup", "Pss:");
        if (kib < 0) /* no QEMU found by its name, or its smaps unreadable: say so, not 0 */
            fprintf(stderr, "PSS of %s: not found\n", id[i]);
        sum = kib < 0 ? -1 : sum + kib;
    }
    for (int i = 0; i < IDLE_VMS; i++)
        uvm_close(vms[i]);
    return sum;
}

static void
clone_vs_cold(const char *boot, int runs)
{
    char tpl[64];
    snprintf(tpl, sizeof(tpl), "/dev/shm/uvm-bench-tpl-%d", (int)getpid());
    struct uvm *src = NULL;
    boot_ms("bench-tpl-source", boot, NULL, &src);
    double t0 = now_ms();
    if (uvm_save_template(src, tpl) < 0) {
        fprintf(stderr, "save template: %s\n", uvm_last_error());
        exit(1);
    }
    double save = now_ms() - t0;
    uvm_close(src);
    double cold[MAX_RUNS], clone[MAX_RUNS], restore[MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        char id[48];
        snprintf(id, sizeof(id), "bench-cold-%d", i);
        cold[i] = boot_ms(id, boot, NULL, NULL);
        snprintf(id, sizeof(id), "bench-clone-%d", i);
        struct uvm *vm = NULL;
        clone[i] = boot_ms(id, boot, tpl, &vm);
        struct uvm_timings t;
        uvm_get_timings(vm, &t);
        restore[i] = t.restore_us / 1e3;
        uvm_close(vm);
    }
    long pss_cold = idle_pss(boot, NULL), pss_clone = idle_pss(boot, tpl);
    if (pss_cold <= 0 || pss_clone <= 0) {
        fprintf(stderr, "the PSS of the idle VMs could not be read\n");
        exit(1);
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/ram", tpl);
    struct stat st;
    long tpl_kib = stat(path, &st) == 0 ? (long)(st.st_blocks / 2) : -1;
    double mc = median(cold, runs), mk = median(clone, runs);
    printf("\ncold boot vs clone of a template (%s; %d each, interleaved, 256 MiB; medians in "
           "ms)\n", boot, runs);
    printf("  %-44s %10.1f\n", "template save (quiesce -> files written)", save);
    printf("  %-44s %10s %10s\n", "", "cold", "clone");
    printf("  %-44s %10.1f %10.1f\n", "create -> start -> agent ready", mc, mk);
    printf("  %-44s %10s %10.1f\n", "  of which state restored, vCPUs running", "-",
           median(restore, runs));
    printf("  %-44s %21.3f\n", "ratio clone / cold (target <= 0.15)", mk / mc);
    printf("  %-44s %10.1f %10.1f\n", "summed PSS of 8 idle VMs (MiB)", pss_cold / 1024.0,
           pss_clone / 1024.0);
    printf("  %-44s %21.3f\n", "ratio clones / cold (target <= 0.5)",
           (double)pss_clone / (double)pss_cold);
    printf("  %-44s %21.1f\n", "template RAM file on tmpfs, now (MiB)", tpl_kib / 1024.0);
    printf("  %-44s %21.3f\n", "ratio with that file counted once more",
           (double)(pss_clone + tpl_kib) / (double)pss_cold);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tpl);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tpl);
}

int
main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > MAX_RUNS)
        runs = 5;
    static struct kernel kernels[MAX_KERNELS];
    int nk = 0;
    for (int a = 2; a < argc && nk < MAX_KERNELS; a++) {
        char *eq = strchr(argv[a], '=');
        if (!eq) {
            fprintf(stderr, "usage: bench-boot [RUNS] [NAME=BOOT_FILES_DIR ...]\n");
            return 2;
        }
        *eq = '\0';
        kernels[nk].name = argv[a];
        kernels[nk++].dir = eq + 1;
    }
    if (nk == 0) {
        kernels[0].name = "default";
        kernels[0].dir = getenv("UVM_BOOT_FILES_PATH");
        if (!kernels[0].dir) {
            fprintf(stderr, "set UVM_BOOT_FILES_PATH or name the boot-file folders\n");
            return 77;
        }
        nk = 1;
    }
    uvm_set_log_handler(log_stderr, NULL,
                        getenv("UVM_BENCH_DEBUG") ? UVM_LOG_DEBUG : UVM_LOG_WARNING);
    for (int i = 0; i < runs; i++)
        for (int k = 0; k < nk; k++)
            if (boot_once(&kernels[k], k, i) < 0)
                return 1;

    printf("libuvm boot benchmark (%d boots each, accel from UVM_ACCEL or detection, 256 MiB, "
           "2 vCPUs, interleaved; medians in ms)\n",
           runs);
    printf("  %-40s", "kernel");
    for (int k = 0; k < nk; k++)
        printf(" %12s", kernels[k].name);
    printf("\n");
#define ROW(label, fmt, expr)                                                                      \
    do {                                                                                           \
        printf("  %-40s", label);                                                                  \
        for (int k = 0; k < nk; k++) {                                                             \
            struct kernel *K = &kernels[k];                                                        \
            printf(" %12" fmt, expr);                                                              \
        }                                                                                          \
        printf("\n");                                                                              \
    } while (0)
    double m_ours[MAX_KERNELS], m_bare[MAX_KERNELS], m_min[MAX_KERNELS];
    for (int k = 0; k < nk; k++) {
        struct kernel *K = &kernels[k];
        K->kernel_bytes = file_bytes(K->dir, "kernel");
        m_ours[k] = median(K->ours, runs);
        m_bare[k] = median(K->bare, runs);
        m_min[k] = median(K->bare_min, runs);
    }
    ROW("kernel file (MiB)", ".1f", K->kernel_bytes / 1048576.0);
    ROW("libuvm create->start->agent-ready", ".1f", m_ours[K - kernels]);
    ROW("  spawn", ".1f", median(K->spawn, runs));
    ROW("  qmp ready", ".1f", median(K->qmp, runs));
    ROW("  guest init (agent PID 1 running)", ".1f", median(K->init, runs));
    ROW("bare qemu, same command line, to /init", ".1f", m_bare[K - kernels]);
    ROW("bare qemu, no devices, to /init", ".1f", m_min[K - kernels]);
    ROW("ratio libuvm / bare same (target <=1.10)", ".3f", m_ours[K - kernels] / m_bare[K - kernels]);
    ROW("ratio libuvm / bare without devices", ".3f", m_ours[K - kernels] / m_min[K - kernels]);
    ROW("QEMU RSS, idle 256 MiB UVM (MiB)", ".1f", K->rss / 1024.0);
    ROW("  of which anonymous, this VM's own", ".1f", K->priv / 1024.0);
#undef ROW
    for (int k = 1; k < nk; k++) {
        printf("  ratio %s / %s: create->agent-ready %.3f, bare to /init %.3f, bare without "
               "devices %.3f\n",
               kernels[k].name, kernels[0].name, m_ours[k] / m_ours[0], m_bare[k] / m_bare[0],
               m_min[k] / m_min[0]);
    }
    fflush(stdout);
    clone_vs_cold(kernels[nk - 1].dir, runs);
    for (int k = 0; k < nk; k++) {
        uvm_close(kernels[k].keep);
        for (char **a = kernels[k].qargv; a && *a; a++)
            free(*a);
        free(kernels[k].qargv);
    }
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/boot: median create -> start -> agent-ready of libuvm over N boots, side by side with
 * the median of a bare qemu-system-x86_64 boot of the same kernel + initrd to /init (the agent
 * reports through QEMU's debugcon as soon as it runs: `-poweroff-at-start`), their ratio, and the RSS of QEMU for an
 * idle 256 MiB UVM. Prints figures; asserts nothing about time.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "uvm.h"

static void
log_stderr(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    fprintf(stderr, "[%d] %s: %s\n", (int)level, vm_id ? vm_id : "-", msg);
}

/* A bare QEMU boot of the same kernel + initrd, /init powering off as soon as it runs.
 * same_devices: libuvm's whole command line with its sockets and files replaced by null
 * backends (what the hypervisor itself costs); otherwise without any of our devices. */
static double
bare_boot(const char *const *uvm_argv, bool same_devices)
{
    const char *argv[128];
    char append[4096], chardevs[8][256];
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
rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

/* Anonymous memory: what this VM costs the host on its own (guest RAM it touched, TCG's code
 * cache, QEMU's heap), as opposed to RSS, which also counts the kernel image QEMU maps from the
 * page cache, shared by every VM booted from the same file. */
static long
private_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "Anonymous:", 10))
            kib += strtol(line + 10, NULL, 10);
    if (f)
        fclose(f);
    return f ? kib : -1;
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

int
main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1)
        runs = 5;
    if (!getenv("UVM_BOOT_FILES_PATH")) {
        fprintf(stderr, "set UVM_BOOT_FILES_PATH\n");
        return 77;
    }
    uvm_set_log_handler(log_stderr, NULL, getenv("UVM_BENCH_DEBUG") ? UVM_LOG_DEBUG : UVM_LOG_WARNING);
    double ours[64], bare[64], bare_min[64], spawn[64], qmp[64], init[64];
    long rss = -1, priv = -1;
    const char *const *qargv = NULL;
    struct uvm *keep = NULL;
    for (int i = 0; i < runs && i < 64; i++) {
        char id[32];
        snprintf(id, sizeof(id), "bench-boot-%d", i);
        struct uvm_options o = {.id = id, .memory_mb = 256};
        struct uvm *vm = NULL;
        double t0 = now_ms();
        if (uvm_create(&o, &vm) < 0 || uvm_start(vm) < 0) {
            fprintf(stderr, "boot failed: %s\n", uvm_last_error());
            return 1;
        }
        ours[i] = now_ms() - t0;
        struct uvm_timings t;
        uvm_get_timings(vm, &t);
        spawn[i] = t.spawn_us / 1e3;
        qmp[i] = t.qmp_ready_us / 1e3;
        init[i] = t.guest_init_us / 1e3;
        if (i == 0) {
            /* Idle RSS of a 256 MiB UVM, one second after it is ready. */
            sleep(1);
            int pid = qemu_pid(id);
            rss = rss_kib(pid);
            priv = private_kib(pid);
            keep = vm;
            qargv = uvm_qemu_argv(vm);
        } else {
            uvm_close(vm);
        }
        /* Interleave so that machine noise hits all alike. */
        bare[i] = bare_boot(qargv, true);
        bare_min[i] = bare_boot(qargv, false);
    }
    double m_ours = median(ours, runs), m_bare = median(bare, runs);
    printf("libuvm boot benchmark (%d boots each, accel from UVM_ACCEL or detection, 256 MiB, "
           "interleaved)\n",
           runs);
    printf("  libuvm create->start->agent-ready  median %8.1f ms\n", m_ours);
    printf("    spawn %.1f ms, qmp ready %.1f ms, guest init %.1f ms (medians)\n",
           median(spawn, runs), median(qmp, runs), median(init, runs));
    double m_min = median(bare_min, runs);
    printf("  bare qemu, same command line, to /init     median %8.1f ms\n", m_bare);
    printf("  bare qemu, no devices, to /init            median %8.1f ms\n", m_min);
    printf("  ratio libuvm / bare same command line      %8.3f (target <= 1.10)\n",
           m_ours / m_bare);
    printf("  ratio libuvm / bare without devices        %8.3f\n", m_ours / m_min);
    printf("  QEMU RSS of an idle 256 MiB UVM            %8.1f MiB\n", rss / 1024.0);
    printf("    of which anonymous (this VM's own)         %8.1f MiB (the rest is shared page "
           "cache)\n",
           priv / 1024.0);
    uvm_close(keep);
    return 0;
}

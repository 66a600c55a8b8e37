/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gcs: the guest agent, PID 1 of the utility VM's initrd. It mounts the API file systems,
 * loads the kernel modules the bridge needs, finds the "gcs" virtio-serial port and serves the
 * host over it (bridge.c) while a child loads the remaining modules. When the host goes away
 * or on a fatal error it syncs and powers the VM off.
 *
 * With "root=/dev/pmem0" on the kernel command line, the gcs of the initramfs mounts that device
 * and runs the /init (gcs) of it instead (rootfs.c); that one serves the host.
 *
 * Arguments (the kernel passes what follows " -- " on its command line):
 *   -loglevel debug|info|warning|error   (default info)
 *   -poweroff-at-start                   power off right after mounting /proc (boot benchmark);
 *                                        first writes 'I' to I/O port 0xe9 (QEMU's debugcon)
 *                                        so that the benchmark sees /init reached
 *   -init-start-us N                     when this gcs was started (CLOCK_BOOTTIME) by the
 *                                        initramfs' gcs switching root: GuestTimes.InitStartUs
 *                                        is the first start
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/io.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bridge.h"
#include "cleanup.h"
#include "log.h"
#include "modules.h"
#include "netns.h"
#include "port.h"
#include "proto.h"
#include "rootfs.h"
#include "vpmem.h"

#define PORT_TIMEOUT_MS 30000

struct options {
    enum log_level level;
    bool poweroff_at_start;
    int64_t init_start_us; /* 0: not given */
};

static void __attribute__((noreturn))
power_off(void)
{
    sync();
    reboot(RB_POWER_OFF);
    /* No ACPI power-off: a reboot ends QEMU too (-no-reboot); exiting panics (panic=-1). */
    reboot(RB_AUTOBOOT);
    _exit(1);
}

static void
parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-')
            a++; /* accept --option too */
        if (!strcmp(a, "-loglevel") && i + 1 < argc) {
            if (log_parse_level(argv[++i], &o->level) < 0)
                log_warn("unknown log level \"%s\" ignored", argv[i]);
        } else if (!strcmp(a, "-poweroff-at-start")) {
            o->poweroff_at_start = true;
        } else if (!strcmp(a, "-init-start-us") && i + 1 < argc) {
            char *end = NULL;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v <= 0)
                log_warn("invalid -init-start-us \"%s\" ignored", argv[i]);
            else
                o->init_start_us = v;
        } else {
            log_warn("unknown argument \"%s\" ignored", argv[i]);
        }
    }
}

static void
do_mount(const char *src, const char *target, const char *type, unsigned long flags,
         const char *data)
{
    if (mkdir(target, 0755) < 0 && errno != EEXIST)
        log_warn("mkdir %s: %s", target, strerror(errno));
    if (mount(src, target, type, flags, data) < 0)
        log_error("mount %s on %s: %s", type, target, strerror(errno));
}

static void
write_file(const char *path, const char *text)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        log_debug("%s: %s", path, strerror(errno));
}

static void
mount_api_filesystems(void)
{
    const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    do_mount("sysfs", "/sys", "sysfs", nse, NULL);
    do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    do_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
    do_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    do_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", nse, NULL);
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"},
        {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(links); i++)
        if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
            log_debug("symlink %s: %s", links[i][1], strerror(errno));
}

/* Children inherit fds 0-2 unless replaced: make sure they are open (the console if the
 * kernel could open it, /dev/null otherwise). */
static void
ensure_stdio(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int n = open("/dev/null", O_RDWR);
        if (n >= 0 && n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

int
main(int argc, char **argv)
{
    int64_t init_start_us = boottime_us();
    /* jansson seeds its hash function from /dev/urandom on first use, which this early in
     * boot stalls until the CRNG is ready (over a second under TCG). Hash flooding is not a
     * concern for the bounded requests of the host: seed from the clock. */
    json_object_seed((size_t)init_start_us | 1);
    struct options opt = {.level = LOG_LEVEL_INFO};
    parse_args(argc, argv, &opt);
    log_set_level(opt.level);
    if (opt.init_start_us > 0 && opt.init_start_us < init_start_us)
        init_start_us = opt.init_start_us;

    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        log_error("mount proc: %s", strerror(errno));
    if (opt.poweroff_at_start) {
        if (ioperm(0xe9, 1, 1) == 0)
            outb('I', 0xe9);
        power_off();
    }
    if (getpid() != 1)
        log_warn("not running as PID 1");
    if (getpid() == 1 && rootfs_wanted()) {
        int rc = rootfs_switch(argc, argv, init_start_us); /* returns only on failure */
        log_error("root file system on %s: %s; going on from the initramfs", ROOTFS_DEVICE,
                  strerror(-rc));
        if (access("/proc/self", F_OK) < 0 &&
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            log_error("mount proc: %s", strerror(errno));
    }
    /* Our own lines must not be rate-limited away (printk.devkmsg=ratelimit by default). */
    write_file("/proc/sys/kernel/printk_devkmsg", "on\n");
    mount_api_filesystems();
    log_open_kmsg();
    ensure_stdio();
    log_debug("init started at %lld us", (long long)init_start_us);
    vpmem_check_root();
    netns_init();

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGIO);
    sigprocmask(SIG_BLOCK, &mask, NULL); /* read through a signalfd by the bridge */
    signal(SIGPIPE, SIG_IGN);

    int ufd = port_watch_open();
    if (ufd < 0)
        log_warn("uevent socket: %s; the port must already be named", strerror(-ufd));
    int failed = modules_load_list(MODULES_BOOT_LIST);
    if (failed != 0)
        log_error("boot modules: %d failed", failed);
    int fd = ufd >= 0 ? port_open(ufd, PROTO_PORT_NAME, PORT_TIMEOUT_MS)
                      : port_open(-1, PROTO_PORT_NAME, 0);
    if (fd < 0) {
        log_error("virtio-serial port \"%s\" not found: %s", PROTO_PORT_NAME, strerror(-fd));
        power_off();
    }
    log_debug("bridge port open at %lld us", (long long)boottime_us());

    int rc = bridge_run(fd, init_start_us);
    if (rc < 0)
        log_error("bridge failed: %s; powering off", strerror(-rc));
    else
        log_info("host gone; powering off");
    close(fd);
    power_off();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "port.h"

#define PORTS_DIR "/sys/class/virtio-ports"
#define UEVENT_RCVBUF (1 << 20)

int
port_watch_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
    if (fd < 0)
        return -errno;
    int sz = UEVENT_RCVBUF;
    /* Module loading emits many uevents before we read any: make room for them. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = 1};
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* 1 if /sys/class/virtio-ports/<dev>/name is name, 0 if not (or not yet), -errno. */
static int
port_has_name(const char *dev, const char *name)
{
    cleanup_free char *path = xasprintf(PORTS_DIR "/%s/name", dev);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return strcmp(buf, name) == 0;
}

static int
open_dev(const char *dev)
{
    cleanup_free char *path = xasprintf("/dev/%s", dev);
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        log_error("open %s: %s", path, strerror(err));
        return -err;
    }
    log_debug("bridge port is %s", path);
    return fd;
}

/* Scan sysfs: the opened port, 0 if not there yet, -errno. */
static int
scan(const char *name)
{
    DIR *d = opendir(PORTS_DIR);
    if (!d)
        return errno == ENOENT ? 0 : -errno; /* no virtio_console yet */
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        int has = port_has_name(de->d_name, name);
        if (has > 0) {
            rc = open_dev(de->d_name);
            break;
        }
    }
    closedir(d);
    return rc;
}

/* Device name of a virtio-ports add/change uevent, or NULL. */
static const char *
uevent_port(const char *msg, size_t len)
{
    const char *action = NULL, *subsystem = NULL, *devname = NULL;
    for (size_t off = 0; off < len;) {
        const char *kv = msg + off;
        size_t n = strnlen(kv, len - off);
        if (!strncmp(kv, "ACTION=", 7))
            action = kv + 7;
        else if (!strncmp(kv, "SUBSYSTEM=", 10))
            subsystem = kv + 10;
        else if (!strncmp(kv, "DEVNAME=", 8))
            devname = kv + 8;
        off += n + 1;
    }
    if (!action || !subsystem || !devname || strcmp(subsystem, "virtio-ports") != 0)
        return NULL;
    if (strcmp(action, "add") != 0 && strcmp(action, "change") != 0)
        return NULL;
    if (strchr(devname, '/') || devname[0] == '.')
        return NULL;
    return devname;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drain pending uevents: the opened port, 0 if none matched, 1 to request a rescan (overrun),
 * -errno. */
static int
drain(int ufd, const char *name)
{
    char buf[8192 + 1];
    for (;;) {
        struct sockaddr_nl from;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
                            .msg_iovlen = 1};
        ssize_t n = recvmsg(ufd, &mh, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            if (errno == ENOBUFS)
                return 1; /* lost events: look at sysfs again */
            return -errno;
        }
        if (from.nl_pid != 0)
            continue; /* only the kernel's uevents */
        buf[n] = '\0';
        const char *dev = uevent_port(buf, (size_t)n);
        if (!dev)
            continue;
        log_debug("uevent for virtio port %s", dev);
        int has = port_has_name(dev, name);
        if (has < 0)
            log_warn("virtio port %s: %s", dev, strerror(-has));
        if (has > 0)
            return open_dev(dev);
    }
}

int
port_open(int uevent_fd, const char *name, int timeout_ms)
{
    cleanup_close int ufd = uevent_fd;
    int64_t deadline = now_ms() + timeout_ms;
    int rc = scan(name);
    while (rc == 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = ufd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n <= 0)
            continue;
        rc = drain(ufd, name);
        if (rc == 1)
            rc = scan(name);
    }
    return rc;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "devwait.h"
#include "log.h"
#include "mount.h"
#include "scsi.h"

#define SCSI_HOSTS_DIR "/sys/class/scsi_host"
#define SCSI_DEVICES_DIR "/sys/bus/scsi/devices"
#define SCSI_MAX_CONTROLLER 3
#define SCSI_MAX_LUN 63
#define SCSI_WAIT_MS 10000u
#define PCI_KEY_MAX 32

struct scsi_op {
    struct request *req;
    unsigned controller, lun, host;
    char *mount_path; /* NULL: none */
    bool read_only;
    char addr[48];    /* "H:0:0:L" */
    char dev[32];     /* "/dev/sdX" once found */
    int fd;           /* the disk, opened for reading, once found */
    int64_t start_ms;
};

static void
op_free(struct scsi_op *op)
{
    if (op->fd >= 0)
        close(op->fd);
    free(op->mount_path);
    free(op);
}

/* --- controller index -> SCSI host number ------------------------------------------------- */

struct scsi_host {
    unsigned number;
    char *path;                    /* realpath of the host's device */
    unsigned key[PCI_KEY_MAX];     /* the PCI address components along the path */
    unsigned nkey;
};

/* The numbers of the PCI components of a sysfs device path: "pci0000:00" gives domain and bus,
 * "0000:02:00.0" gives domain, bus, device, function. */
static void
pci_key(struct scsi_host *h)
{
    h->nkey = 0;
    for (const char *c = h->path; c && *c; c = strchr(c, '/')) {
        c += *c == '/';
        unsigned v[4], n = 0;
        int end = 0;
        if (sscanf(c, "pci%x:%x%n", &v[0], &v[1], &end) == 2 && (c[end] == '/' || !c[end]))
            n = 2;
        else if (sscanf(c, "%x:%x:%x.%x%n", &v[0], &v[1], &v[2], &v[3], &end) == 4 &&
                 (c[end] == '/' || !c[end]))
            n = 4;
        for (unsigned i = 0; i < n && h->nkey < PCI_KEY_MAX; i++)
            h->key[h->nkey++] = v[i];
    }
}

static int
host_cmp(const void *a, const void *b)
{
    const struct scsi_host *x = a, *y = b;
    for (unsigned i = 0; i < x->nkey && i < y->nkey; i++)
        if (x->key[i] != y->key[i])
            return x->key[i] < y->key[i] ? -1 : 1;
    if (x->nkey != y->nkey)
        return x->nkey < y->nkey ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* 1 if /sys/class/scsi_host/<name>/proc_name is "virtio_scsi". */
static bool
is_virtio_scsi(const char *name)
{
    cleanup_free char *path = xasprintf(SCSI_HOSTS_DIR "/%s/proc_name", name);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return !strcmp(buf, "virtio_scsi");
}

static int
controller_host(struct request *req, unsigned controller, unsigned *host)
{
    DIR *d = opendir(SCSI_HOSTS_DIR);
    if (!d)
        return request_fail(req, "SCSI controller %u: %s: %s", controller, SCSI_HOSTS_DIR,
                            strerror(errno));
    struct scsi_host *hosts = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned number;
        int end = 0;
        if (sscanf(de->d_name, "host%u%n", &number, &end) != 1 || de->d_name[end] ||
            !is_virtio_scsi(de->d_name))
            continue;
        cleanup_free char *link = xasprintf(SCSI_HOSTS_DIR "/%s/device", de->d_name);
        char *real = realpath(link, NULL);
        if (!real) {
            log_warn("%s: %s", link, strerror(errno));
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            hosts = xrealloc(hosts, cap * sizeof(*hosts));
        }
        hosts[n] = (struct scsi_host){.number = number, .path = real};
        pci_key(&hosts[n]);
        n++;
    }
    closedir(d);
    if (n)
        qsort(hosts, n, sizeof(*hosts), host_cmp);
    int rc = 0;
    if (controller < n)
        *host = hosts[controller].number;
    else
        rc = request_fail(req, "SCSI controller %u not found: the guest has %zu virtio-scsi "
                               "controller%s",
                          controller, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
        free(hosts[i].path);
    free(hosts);
    return rc;
}

/* --- Add ------------------------------------------------------------------------------------ */

/* Look for the disk's block device and open it: 1 when open, 0 when not there (or not ready)
 * yet, <0 on errors. */
static int
find_disk(struct scsi_op *op)
{
    cleanup_free char *dir = xasprintf(SCSI_DEVICES_DIR "/%s/block", op->addr);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : request_fail(op->req, "SCSI disk %s: %s: %s", op->addr,
                                                  dir, strerror(errno));
    char name[sizeof(op->dev) - 5] = "";
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(name))
            continue;
        strcpy(name, de->d_name);
        break;
    }
    closedir(d);
    if (!name[0])
        return 0;
    snprintf(op->dev, sizeof(op->dev), "/dev/%s", name);
    /* The sysfs folder appears before the disk can be opened (ENXIO until add_disk is done,
     * ENOENT until devtmpfs has the node): the "add" uevent of the block device follows. */
    int fd = open(op->dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENXIO
                   ? 0
                   : request_fail(op->req, "open %s (SCSI disk %s): %s", op->dev, op->addr,
                                  strerror(errno));
    op->fd = fd;
    return 1;
}

static bool
has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int
add_check(void *ctx, const struct uevent *ev)
{
    struct scsi_op *op = ctx;
    if (ev) {
        char needle[sizeof(op->addr) + 8];
        snprintf(needle, sizeof(needle), "/%s/block/", op->addr);
        if (strcmp(ev->action, "add") || strcmp(ev->subsystem, "block") ||
            !strstr(ev->devpath, needle))
            return 0;
    }
    return find_disk(op);
}

/* Give a failure its context: the disk (and a message when the code came without one). */
static void
fail_context(struct scsi_op *op, int rc)
{
    if (rc == -ETIMEDOUT || rc == -ECANCELED)
        return; /* their messages say it all */
    if (op->req->error)
        request_fail(op->req, "SCSI controller %u LUN %u: %s", op->controller, op->lun,
                     op->req->error);
    else
        request_fail(op->req, "SCSI controller %u LUN %u (%s): %s", op->controller, op->lun,
                     op->addr, strerror(-rc));
}

static void
add_done(struct bridge *b, void *ctx, int rc)
{
    struct scsi_op *op = ctx;
    struct request *req = op->req;
    if (rc == -ETIMEDOUT)
        request_fail(req, "SCSI disk at controller %u LUN %u (%s/%s) did not appear within %u s",
                     op->controller, op->lun, SCSI_DEVICES_DIR, op->addr, SCSI_WAIT_MS / 1000);
    else if (rc == -ECANCELED)
        request_fail(req, "adding SCSI disk at controller %u LUN %u: cancelled by a Remove of "
                          "the same disk",
                     op->controller, op->lun);
    if (rc == 0) {
        log_debug("SCSI %u:%u is %s (%s), found after %lld ms", op->controller, op->lun, op->dev,
                  op->addr, (long long)(monotonic_ms() - op->start_ms));
        if (op->mount_path)
            rc = mount_device(req, op->dev, op->fd, op->mount_path,
                              op->read_only ? MOUNT_READ_ONLY : 0);
        if (rc == 0 && op->mount_path)
            log_info("SCSI %u:%u: %s mounted on %s%s in %lld ms", op->controller, op->lun,
                     op->dev, op->mount_path, op->read_only ? " (read-only)" : "",
                     (long long)(monotonic_ms() - op->start_ms));
    }
    if (rc < 0)
        fail_context(op, rc);
    op->req = NULL;
    op_free(op);
    bridge_reply(b, req, rc);
}

/* --- Remove --------------------------------------------------------------------------------- */

static int
remove_check(void *ctx, const struct uevent *ev)
{
    struct scsi_op *op = ctx;
    if (ev) {
        char suffix[sizeof(op->addr) + 2];
        snprintf(suffix, sizeof(suffix), "/%s", op->addr);
        /* The uevent precedes the removal of the sysfs folder: it is the answer itself. */
        return !strcmp(ev->action, "remove") && !strcmp(ev->subsystem, "scsi") &&
               has_suffix(ev->devpath, suffix);
    }
    cleanup_free char *dir = xasprintf(SCSI_DEVICES_DIR "/%s", op->addr);
    if (access(dir, F_OK) == 0)
        return 0;
    return errno == ENOENT ? 1 : request_fail(op->req, "%s: %s", dir, strerror(errno));
}

static void
remove_done(struct bridge *b, void *ctx, int rc)
{
    struct scsi_op *op = ctx;
    struct request *req = op->req;
    if (rc == -ETIMEDOUT)
        request_fail(req, "SCSI disk at controller %u LUN %u (%s/%s) was not removed within %u s",
                     op->controller, op->lun, SCSI_DEVICES_DIR, op->addr, SCSI_WAIT_MS / 1000);
    else if (rc < 0)
        fail_context(op, rc);
    else
        log_debug("SCSI %u:%u (%s) ejected in %lld ms", op->controller, op->lun, op->addr,
                  (long long)(monotonic_ms() - op->start_ms));
    op->req = NULL;
    op_free(op);
    bridge_reply(b, req, rc);
}

static bool
same_disk(void *ctx, const void *arg)
{
    const struct scsi_op *a = ctx, *b = arg;
    return a->controller == b->controller && a->lun == b->lun;
}

/* Write "1" to the device's delete attribute: 1 when written, 0 when the device is gone. */
static int
eject(struct scsi_op *op)
{
    cleanup_free char *path = xasprintf(SCSI_DEVICES_DIR "/%s/delete", op->addr);
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0 || write(fd, "1", 1) < 0) {
        if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
            return 0; /* removed meanwhile */
        return request_fail(op->req, "eject SCSI disk at controller %u LUN %u: %s: %s",
                            op->controller, op->lun, path, strerror(errno));
    }
    return 1;
}

static int
start_remove(struct bridge *b, struct scsi_op *op)
{
    /* An Add of the same disk still waiting for it (the host gave up on it) ends now. */
    unsigned n = devwait_cancel(b, add_check, same_disk, op);
    if (n)
        log_info("SCSI %u:%u: a pending Add was cancelled by the Remove", op->controller, op->lun);
    int rc = op->mount_path ? mount_remove(op->req, op->mount_path) : 0;
    if (rc < 0) {
        fail_context(op, rc);
        return rc;
    }
    int64_t t_unmounted = monotonic_ms();
    rc = eject(op);
    log_debug("SCSI %u:%u: unmount %lld ms, delete %lld ms", op->controller, op->lun,
              (long long)(t_unmounted - op->start_ms), (long long)(monotonic_ms() - t_unmounted));
    if (rc < 0)
        return rc;
    devwait_start(b, SCSI_WAIT_MS, remove_check, remove_done, op);
    return BRIDGE_DEFERRED;
}

/* --- Request -------------------------------------------------------------------------------- */

static int
parse(struct request *req, json_t *settings, struct scsi_op *op)
{
    if (!settings)
        return request_fail(req, "invalid request: missing field \"Settings\"");
    const char *mount_path = "";
    uint64_t lun = 0, controller = 0;
    bool read_only = false;
    /* hcsshim marks Lun and Controller omitempty: absent means 0. */
    int rc = req_string(req, settings, "MountPath", false, &mount_path);
    if (rc == 0)
        rc = req_uint(req, settings, "Lun", false, 0, SCSI_MAX_LUN, &lun);
    if (rc == 0)
        rc = req_uint(req, settings, "Controller", false, 0, SCSI_MAX_CONTROLLER, &controller);
    if (rc == 0)
        rc = req_bool(req, settings, "ReadOnly", false, &read_only);
    if (rc == 0)
        rc = mount_check_path(req, "MountPath", mount_path);
    if (rc < 0)
        return rc;
    op->controller = (unsigned)controller;
    op->lun = (unsigned)lun;
    op->read_only = read_only;
    op->mount_path = *mount_path ? xstrdup(mount_path) : NULL;
    return 0;
}

int
scsi_modify(struct bridge *b, struct request *req, enum modify_request_type type,
            json_t *settings)
{
    if (type != MODIFY_ADD && type != MODIFY_REMOVE)
        return request_fail(req, "MappedVirtualDisk: the request type \"Update\" is not "
                                 "supported");
    struct scsi_op *op = xcalloc(1, sizeof(*op));
    op->req = req;
    op->fd = -1;
    op->start_ms = monotonic_ms();
    int rc = parse(req, settings, op);
    if (rc == 0)
        rc = controller_host(req, op->controller, &op->host);
    if (rc < 0) {
        op->req = NULL;
        op_free(op);
        return rc;
    }
    snprintf(op->addr, sizeof(op->addr), "%u:0:0:%u", op->host, op->lun);
    log_debug("SCSI %s controller %u LUN %u: %s%s%s", type == MODIFY_ADD ? "add" : "remove",
              op->controller, op->lun, op->addr, op->mount_path ? " at " : "",
              op->mount_path ? op->mount_path : "");
    if (type == MODIFY_REMOVE) {
        rc = start_remove(b, op);
        if (rc < 0) {
            op->req = NULL;
            op_free(op);
        }
        return rc;
    }
    devwait_start(b, SCSI_WAIT_MS, add_check, add_done, op);
    return BRIDGE_DEFERRED;
}

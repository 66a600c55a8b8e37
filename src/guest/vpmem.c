/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "devwait.h"
#include "log.h"
#include "mount.h"
#include "vpmem.h"

#define BLOCK_CLASS_DIR "/sys/class/block"
#define VPMEM_MAX 128
#define VPMEM_WAIT_MS 10000u
#define PMEM_NAME_MAX 24

/* Device number D -> the guest's pmem device. */
struct slot {
    char name[PMEM_NAME_MAX]; /* "pmem3"; "" while unmapped */
    /* An Add for D timed out before its device appeared: the next device to appear is still
     * D's (the host added it). Reservations are served in order, before new requests. */
    uint64_t reserved; /* order of the reservation; 0: none */
    uint64_t size;     /* BackingSize of the reservation (0: any) */
};

static struct slot slots[VPMEM_MAX];
static uint64_t next_reservation = 1;
static bool root_checked;

struct pmem_dev {
    char name[PMEM_NAME_MAX];
    unsigned region, ns; /* pmem<region>[.<ns>]: the kernel's order */
    uint64_t size;
};

struct vpmem_op {
    struct request *req;
    unsigned number;
    uint64_t size; /* BackingSize (0: not sent) */
    char *mount_path;
    int fd;
    int64_t start_ms;
};

static void
op_free(struct vpmem_op *op)
{
    if (op->fd >= 0)
        close(op->fd);
    free(op->mount_path);
    free(op);
}

/* --- the guest's pmem devices ---------------------------------------------------------------- */

static bool
parse_name(const char *name, unsigned *region, unsigned *ns)
{
    int end = 0;
    *ns = 0;
    if (strncmp(name, "pmem", 4) || !isdigit((unsigned char)name[4]) ||
        strlen(name) >= PMEM_NAME_MAX || sscanf(name + 4, "%u%n", region, &end) != 1)
        return false;
    const char *rest = name + 4 + end;
    if (rest[0] == '.') {
        if (!isdigit((unsigned char)rest[1]) || sscanf(rest + 1, "%u%n", ns, &end) != 1)
            return false;
        rest += 1 + end;
    }
    return rest[0] == '\0'; /* not pmem0p1 (a partition) nor pmem0s (BTT) */
}

/* A sysfs attribute of a block device, as an unsigned number (the first field for "dev"). */
static int
read_attr(const char *name, const char *attr, char *buf, size_t len)
{
    cleanup_free char *path = xasprintf(BLOCK_CLASS_DIR "/%s/%s", name, attr);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static bool
claimed(const char *name)
{
    for (unsigned d = 0; d < VPMEM_MAX; d++)
        if (!strcmp(slots[d].name, name))
            return true;
    return false;
}

static int
dev_cmp(const void *a, const void *b)
{
    const struct pmem_dev *x = a, *y = b;
    if (x->region != y->region)
        return x->region < y->region ? -1 : 1;
    return x->ns < y->ns ? -1 : x->ns > y->ns;
}

/* The pmem devices no device number has claimed, in the kernel's order. Caller frees. */
static size_t
list_unclaimed(struct pmem_dev **out)
{
    *out = NULL;
    DIR *d = opendir(BLOCK_CLASS_DIR);
    if (!d)
        return 0;
    struct pmem_dev *devs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct pmem_dev p = {0};
        char buf[32];
        if (!parse_name(de->d_name, &p.region, &p.ns) || claimed(de->d_name) ||
            read_attr(de->d_name, "size", buf, sizeof(buf)) < 0)
            continue;
        strcpy(p.name, de->d_name);
        p.size = strtoull(buf, NULL, 10) * 512;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            devs = xrealloc(devs, cap * sizeof(*devs));
        }
        devs[n++] = p;
    }
    closedir(d);
    if (n)
        qsort(devs, n, sizeof(*devs), dev_cmp);
    *out = devs;
    return n;
}

void
vpmem_check_root(void)
{
    if (root_checked)
        return;
    root_checked = true;
    struct stat root;
    if (stat("/", &root) < 0)
        return;
    cleanup_free struct pmem_dev *devs = NULL;
    size_t n = list_unclaimed(&devs);
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        unsigned maj, min;
        if (read_attr(devs[i].name, "dev", buf, sizeof(buf)) < 0 ||
            sscanf(buf, "%u:%u", &maj, &min) != 2 || makedev(maj, min) != root.st_dev)
            continue;
        if (!slots[0].name[0]) {
            strcpy(slots[0].name, devs[i].name);
            log_info("VPMem device 0 is /dev/%s (the root file system)", devs[i].name);
        }
    }
}

/* Give D the first unclaimed device (of the wanted size, when known). */
static bool
claim(unsigned d, uint64_t size)
{
    cleanup_free struct pmem_dev *devs = NULL;
    size_t n = list_unclaimed(&devs);
    for (size_t i = 0; i < n; i++) {
        if (size && devs[i].size != size)
            continue;
        strcpy(slots[d].name, devs[i].name);
        slots[d].reserved = 0;
        log_info("VPMem device %u is /dev/%s (%llu bytes)", d, devs[i].name,
                 (unsigned long long)devs[i].size);
        return true;
    }
    return false;
}

/* Serve the reservations, oldest first. */
static void
settle(void)
{
    for (;;) {
        unsigned best = VPMEM_MAX;
        for (unsigned d = 0; d < VPMEM_MAX; d++)
            if (slots[d].reserved &&
                (best == VPMEM_MAX || slots[d].reserved < slots[best].reserved))
                best = d;
        if (best == VPMEM_MAX || !claim(best, slots[best].size))
            return;
    }
}

/* --- Add ------------------------------------------------------------------------------------ */

static int
add_check(void *ctx, const struct uevent *ev)
{
    struct vpmem_op *op = ctx;
    if (ev && (strcmp(ev->action, "add") || strcmp(ev->subsystem, "block") || !ev->devname ||
               strncmp(ev->devname, "pmem", 4)))
        return 0;
    struct slot *s = &slots[op->number];
    if (!s->name[0]) {
        settle();
        if (!s->name[0] && !s->reserved)
            claim(op->number, op->size);
        if (!s->name[0])
            return 0;
    }
    cleanup_free char *dev = xasprintf("/dev/%s", s->name);
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0) /* ENXIO/ENOENT: sysfs has it, the block device is not ready yet */
        return errno == ENOENT || errno == ENXIO
                   ? 0
                   : request_fail(op->req, "open %s (VPMem device %u): %s", dev, op->number,
                                  strerror(errno));
    op->fd = fd;
    return 1;
}

static void
timed_out(struct vpmem_op *op)
{
    struct slot *s = &slots[op->number];
    if (!s->name[0] && !s->reserved) {
        s->reserved = next_reservation++;
        s->size = op->size;
    }
    cleanup_free struct pmem_dev *devs = NULL;
    size_t n = list_unclaimed(&devs);
    char seen[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof(seen); i++)
        len += (size_t)snprintf(seen + len, sizeof(seen) - len, "%s%s (%llu bytes)",
                                i ? ", " : "", devs[i].name, (unsigned long long)devs[i].size);
    if (s->name[0])
        request_fail(op->req, "VPMem device %u: /dev/%s did not become ready within %u s",
                     op->number, s->name, VPMEM_WAIT_MS / 1000);
    else
        request_fail(op->req, "VPMem device %u: no new pmem device%s appeared within %u s "
                              "(unclaimed: %s)",
                     op->number, op->size ? " of the backing size" : "", VPMEM_WAIT_MS / 1000,
                     n ? seen : "none");
}

static void
add_done(struct bridge *b, void *ctx, int rc)
{
    struct vpmem_op *op = ctx;
    struct request *req = op->req;
    if (rc == -ETIMEDOUT)
        timed_out(op);
    if (rc == 0) {
        cleanup_free char *dev = xasprintf("/dev/%s", slots[op->number].name);
        log_debug("VPMem device %u is %s, ready after %lld ms", op->number, dev,
                  (long long)(monotonic_ms() - op->start_ms));
        if (op->mount_path)
            rc = mount_device(req, dev, op->fd, op->mount_path, MOUNT_READ_ONLY | MOUNT_TRY_DAX);
        if (rc == 0 && op->mount_path)
            log_info("VPMem device %u: %s mounted on %s in %lld ms", op->number, dev,
                     op->mount_path, (long long)(monotonic_ms() - op->start_ms));
    }
    if (rc < 0 && rc != -ETIMEDOUT) {
        if (req->error)
            request_fail(req, "VPMem device %u: %s", op->number, req->error);
        else
            request_fail(req, "VPMem device %u: %s", op->number, strerror(-rc));
    }
    op->req = NULL;
    op_free(op);
    bridge_reply(b, req, rc);
}

/* --- Request -------------------------------------------------------------------------------- */

int
vpmem_modify(struct bridge *b, struct request *req, enum modify_request_type type,
             json_t *settings)
{
    if (type != MODIFY_ADD && type != MODIFY_REMOVE)
        return request_fail(req, "VPMemDevice: the request type \"Update\" is not supported");
    if (!settings)
        return request_fail(req, "invalid request: missing field \"Settings\"");
    uint64_t number = 0, size = 0;
    const char *mount_path = "";
    int rc = req_uint(req, settings, "DeviceNumber", true, 0, VPMEM_MAX - 1, &number);
    if (rc == 0)
        rc = req_string(req, settings, "MountPath", false, &mount_path);
    if (rc == 0)
        rc = req_uint(req, settings, "BackingSize", false, 1, INT64_MAX, &size);
    if (rc == 0)
        rc = mount_check_path(req, "MountPath", mount_path);
    if (rc < 0)
        return rc;
    if (type == MODIFY_REMOVE) {
        /* The device cannot be unplugged: it and its mapping stay. */
        rc = *mount_path ? mount_remove(req, mount_path) : 0;
        if (rc < 0 && req->error)
            request_fail(req, "VPMem device %u: %s", (unsigned)number, req->error);
        return rc;
    }
    vpmem_check_root();
    struct vpmem_op *op = xcalloc(1, sizeof(*op));
    op->req = req;
    op->number = (unsigned)number;
    op->size = size;
    op->mount_path = *mount_path ? xstrdup(mount_path) : NULL;
    op->fd = -1;
    op->start_ms = monotonic_ms();
    devwait_start(b, VPMEM_WAIT_MS, add_check, add_done, op);
    return BRIDGE_DEFERRED;
}

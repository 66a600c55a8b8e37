/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "devwait.h"
#include "log.h"
#include "plan9.h"
#include "share.h"

#define VIRTIO_DEVICES_DIR "/sys/bus/virtio/devices"
/* 9P2000.L; msize: the most the virtio transport takes (4 KiB x (128 - 3) ring entries: a
 * larger one is clamped with a kernel message); cache=mmap: reads, writes, names and
 * attributes go to the host every time (host changes show at once, as with cache=none), but a
 * shared writable mmap works (cache=none only allows read-only mappings). */
#define PLAN9_OPTIONS "trans=virtio,version=9p2000.L,msize=512000,cache=mmap,access=client"
#define PLAN9_WAIT_MS 10000u

struct plan9_op {
    struct request *req;
    struct share *share; /* reserved */
    int64_t start_ms;
};

/* --- the export ----------------------------------------------------------------------------- */

/* Whether PLAN9_ROOT is a 9p mount point (statfs cannot tell: 9P2000.L reports the type of
 * the host's file system). */
static bool
export_mounted(void)
{
    cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    while (f && fgets(line, sizeof(line), f)) {
        /* "36 35 0:40 / /run/plan9 rw,relatime shared:1 - 9p uvm9p rw,...": the fifth field
         * is the mount point, the one after " - " the file system type. */
        const char *point = line, *sep = strstr(line, " - ");
        for (int i = 0; i < 4 && point; i++)
            if ((point = strchr(point, ' ')))
                point++;
        if (point && !strncmp(point, PLAN9_ROOT " ", sizeof(PLAN9_ROOT)) && sep &&
            !strncmp(sep, " - 9p ", 6))
            return true;
    }
    return false;
}

int
plan9_export_unmount(void)
{
    if (!export_mounted())
        return 0;
    if (umount2(PLAN9_ROOT, 0) < 0)
        return -errno;
    log_info("Plan9: the export " PLAN9_TAG " is unmounted from " PLAN9_ROOT);
    return 0;
}

/* The mount tags of the virtio devices bound to 9pnet_virtio, ", " separated, into tags (may
 * be NULL); true when PLAN9_TAG is one of them. */
static bool
tag_present(char *tags, size_t len)
{
    DIR *d = opendir(VIRTIO_DEVICES_DIR);
    if (!d)
        return false;
    bool found = false;
    size_t used = 0;
    if (tags && len)
        tags[0] = '\0';
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        cleanup_free char *path = xasprintf(VIRTIO_DEVICES_DIR "/%s/mount_tag", de->d_name);
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        char buf[128];
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
            continue;
        buf[n] = '\0'; /* the attribute ends with the tag's NUL */
        found = found || !strcmp(buf, PLAN9_TAG);
        if (tags && used < len)
            used += (size_t)snprintf(tags + used, len - used, "%s%s", used ? ", " : "", buf);
    }
    closedir(d);
    return found;
}

/* Mount the export on PLAN9_ROOT once its device is there: 1 when mounted, 0 when the device
 * is not there yet, or a negative code with req->error set. */
static int
export_mount(struct request *req, const char *name)
{
    if (export_mounted())
        return 1;
    if (!tag_present(NULL, 0))
        return 0;
    if (mkdir(PLAN9_ROOT, 0755) < 0 && errno != EEXIST)
        return request_fail(req, "Plan9 share %s: mkdir " PLAN9_ROOT ": %s", name,
                            strerror(errno));
    int64_t t0 = monotonic_ms();
    if (mount(PLAN9_TAG, PLAN9_ROOT, "9p", 0, PLAN9_OPTIONS) < 0) {
        int err = errno;
        if (err == ENOENT) /* the sysfs tag precedes the channel's registration */
            return 0;
        return request_fail(req, "Plan9 share %s: mount -t 9p -o " PLAN9_OPTIONS " " PLAN9_TAG
                                 " " PLAN9_ROOT ": %s%s",
                            name, strerror(err),
                            err == EBUSY ? " (the device is mounted elsewhere)" : "");
    }
    log_info("Plan9: the export " PLAN9_TAG " is mounted on " PLAN9_ROOT " (%lld ms)",
             (long long)(monotonic_ms() - t0));
    return 1;
}

static int
export_check(void *ctx, const struct uevent *ev)
{
    struct plan9_op *op = ctx;
    /* 9pnet_virtio sends a "change" uevent once the tag is registered, then "bind". */
    if (ev && (strcmp(ev->subsystem, "virtio") ||
               (strcmp(ev->action, "change") && strcmp(ev->action, "bind"))))
        return 0;
    return export_mount(op->req, op->share->name);
}

/* --- Add ------------------------------------------------------------------------------------ */

/* Bind-mount the share's folder of the export on its mount path (then read-only if asked). */
static int
bind_share(struct request *req, const struct share *s)
{
    cleanup_free char *src = xasprintf(PLAN9_ROOT "/%s", s->name);
    if (mount(src, s->path, NULL, MS_BIND, NULL) < 0)
        return request_fail(req, "Plan9 share %s: mount --bind %s on %s: %s", s->name, src,
                            s->path, strerror(errno));
    if (s->read_only &&
        mount(NULL, s->path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
        int err = errno;
        if (umount2(s->path, MNT_DETACH) < 0)
            log_warn("Plan9 share %s: umount %s: %s", s->name, s->path, strerror(errno));
        return request_fail(req, "Plan9 share %s: mount -o remount,bind,ro %s: %s", s->name,
                            s->path, strerror(err));
    }
    return 0;
}

static int
finish_add(struct plan9_op *op)
{
    struct share *s = op->share;
    int rc = bind_share(op->req, s);
    if (rc < 0) {
        share_release(s);
        return rc;
    }
    share_commit(s);
    log_info("Plan9 share %s mounted on %s%s in %lld ms", s->name, s->path,
             s->read_only ? " (read-only)" : "", (long long)(monotonic_ms() - op->start_ms));
    return 0;
}

static void
add_done(struct bridge *b, void *ctx, int rc)
{
    struct plan9_op *op = ctx;
    struct request *req = op->req;
    const char *name = op->share->name;
    if (rc == -ETIMEDOUT) {
        char tags[256];
        tag_present(tags, sizeof(tags));
        request_fail(req, "Plan9 share %s: no virtio 9p device with mount tag \"" PLAN9_TAG
                          "\" appeared within %u s (mount tags found: %s)",
                     name, PLAN9_WAIT_MS / 1000, tags[0] ? tags : "none");
    } else if (rc == -ECANCELED) {
        request_fail(req, "Plan9 share %s: the Add on %s was cancelled by a Remove", name,
                     op->share->path);
    }
    if (rc == 0)
        rc = finish_add(op);
    else
        share_release(op->share);
    free(op);
    bridge_reply(b, req, rc);
}

static int
plan9_add(struct bridge *b, struct request *req, const char *name, const char *path,
          bool read_only)
{
    struct share *s = NULL;
    int rc = share_reserve(req, SHARE_PLAN9, name, path, read_only, &s);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    struct plan9_op *op = xcalloc(1, sizeof(*op));
    op->req = req;
    op->share = s;
    op->start_ms = monotonic_ms();
    if (export_mounted()) {
        rc = finish_add(op);
        free(op);
        return rc;
    }
    devwait_start(b, PLAN9_WAIT_MS, export_check, add_done, op);
    return BRIDGE_DEFERRED;
}

/* --- Request -------------------------------------------------------------------------------- */

struct share_key {
    const char *name, *path;
};

static bool
same_share(void *ctx, const void *arg)
{
    const struct plan9_op *op = ctx;
    const struct share_key *key = arg;
    return !strcmp(op->share->path, key->path) && !strcmp(op->share->name, key->name);
}

int
plan9_modify(struct bridge *b, struct request *req, enum modify_request_type type,
             json_t *settings)
{
    struct plan9_conf c;
    int rc = plan9_conf_parse(req, type, settings, &c);
    if (rc < 0)
        return rc;
    const char *name = c.name, *path = c.path;
    bool read_only = c.read_only;
    log_debug("Plan9 share %s: %s %s%s", name, type == MODIFY_ADD ? "add on" : "remove from",
              path, read_only ? " (read-only)" : "");
    if (type == MODIFY_ADD)
        return plan9_add(b, req, name, path, read_only);
    struct share_key key = {name, path};
    if (devwait_cancel(b, export_check, same_share, &key))
        log_info("Plan9 share %s: a pending Add on %s was cancelled by the Remove", name, path);
    return share_remove(req, SHARE_PLAN9, name, path, false);
}

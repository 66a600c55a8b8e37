/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "devwait.h"
#include "log.h"
#include "share.h"
#include "virtiofs.h"

#define VIRTIOFS_WAIT_MS 10000u
#define KERNEL_MSG_MAX 256

struct virtiofs_op {
    struct request *req;
    struct share *share; /* reserved */
    char *options;       /* "" or "key[=value],..." */
    int64_t start_ms;
    unsigned attempts;
};

static void
op_free(struct virtiofs_op *op)
{
    free(op->options);
    free(op);
}

/* The last error message the kernel logged on the fs context fd ("" if none). */
static void
kernel_message(int fs, char *msg, size_t len)
{
    msg[0] = '\0';
    char buf[KERNEL_MSG_MAX];
    ssize_t n;
    while ((n = read(fs, buf, sizeof(buf) - 1)) > 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
            n--;
        buf[n] = '\0';
        if (n > 2 && buf[0] == 'e' && buf[1] == ' ')
            snprintf(msg, len, "%s", buf + 2);
    }
}

/* errno's text with the kernel's explanation, as "Invalid argument (kernel: ...)". */
static const char *
explain(int fs, int err, char *out, size_t len)
{
    char msg[KERNEL_MSG_MAX];
    kernel_message(fs, msg, sizeof(msg));
    snprintf(out, len, "%s%s%s%s", strerror(err), msg[0] ? " (kernel: " : "", msg,
             msg[0] ? ")" : "");
    return out;
}

/* Pass the options to the fs context, one fsconfig each: an unknown or invalid one fails at
 * once, not after the wait for the tag. */
static int
set_options(struct virtiofs_op *op, int fs)
{
    const struct share *s = op->share;
    cleanup_free char *copy = xstrdup(op->options);
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *value = strchr(item, '=');
        if (value)
            *value++ = '\0';
        int rc = value ? fsconfig(fs, FSCONFIG_SET_STRING, item, value, 0)
                       : fsconfig(fs, FSCONFIG_SET_FLAG, item, NULL, 0);
        if (rc < 0) {
            char why[KERNEL_MSG_MAX + 64];
            return request_fail(op->req, "virtio-fs share %s: option \"%s%s%s\": %s", s->name,
                                item, value ? "=" : "", value ? value : "",
                                explain(fs, errno, why, sizeof(why)));
        }
    }
    return 0;
}

/* Whether the tag is registered, by creating (and dropping) a superblock of it without
 * options: for an EINVAL that came with options, which may be theirs (dax without a DAX window)
 * or the tag's. */
static bool
tag_registered(const char *tag)
{
    cleanup_close int fs = fsopen("virtiofs", FSOPEN_CLOEXEC);
    return fs >= 0 && fsconfig(fs, FSCONFIG_SET_STRING, "source", tag, 0) == 0 &&
           fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0;
}

/* Mount the tag on the share's path: 1 when mounted, 0 when the tag is not (yet) registered,
 * or a negative code with req->error set. */
static int
try_mount(struct virtiofs_op *op)
{
    const struct share *s = op->share;
    struct request *req = op->req;
    char why[KERNEL_MSG_MAX + 64];
    op->attempts++;
    cleanup_close int fs = fsopen("virtiofs", FSOPEN_CLOEXEC);
    if (fs < 0)
        return request_fail(req, "virtio-fs share %s: fsopen virtiofs: %s%s", s->name,
                            strerror(errno),
                            errno == ENODEV ? " (the virtiofs module is not loaded)" : "");
    if (fsconfig(fs, FSCONFIG_SET_STRING, "source", s->name, 0) < 0)
        return request_fail(req, "virtio-fs share %s: source \"%s\": %s", s->name, s->name,
                            explain(fs, errno, why, sizeof(why)));
    if (s->read_only && fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0)
        return request_fail(req, "virtio-fs share %s: option \"ro\": %s", s->name,
                            explain(fs, errno, why, sizeof(why)));
    int rc = set_options(op, fs);
    if (rc < 0)
        return rc;
    if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int err = errno;
        char msg[KERNEL_MSG_MAX];
        kernel_message(fs, msg, sizeof(msg));
        /* An unknown tag is EINVAL without a message on the context (virtio_fs_get_tree only
         * writes "tag <x> not found" to the kernel log). */
        if (err == EINVAL && !msg[0] && !(op->options[0] && tag_registered(s->name)))
            return 0;
        if (err == EINVAL && !msg[0])
            return request_fail(req, "virtio-fs share %s: mount -t virtiofs -o %s %s: %s (the "
                                     "tag is registered: the kernel refused the options, its "
                                     "log says why)",
                                s->name, op->options, s->name, strerror(err));
        return request_fail(req, "virtio-fs share %s: mount -t virtiofs %s: %s%s%s%s", s->name,
                            s->name, strerror(err), msg[0] ? " (kernel: " : "", msg,
                            msg[0] ? ")" : "");
    }
    cleanup_close int mnt = fsmount(fs, FSMOUNT_CLOEXEC, s->read_only ? MOUNT_ATTR_RDONLY : 0);
    if (mnt < 0)
        return request_fail(req, "virtio-fs share %s: fsmount: %s", s->name,
                            explain(fs, errno, why, sizeof(why)));
    if (move_mount(mnt, "", AT_FDCWD, s->path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return request_fail(req, "virtio-fs share %s: mount on %s: %s", s->name, s->path,
                            strerror(errno));
    return 1;
}

static int
add_check(void *ctx, const struct uevent *ev)
{
    /* The driver registers the tag in its probe; "bind" follows a successful probe. */
    if (ev && (strcmp(ev->subsystem, "virtio") || strcmp(ev->action, "bind")))
        return 0;
    return try_mount(ctx);
}

static void
add_done(struct bridge *b, void *ctx, int rc)
{
    struct virtiofs_op *op = ctx;
    struct request *req = op->req;
    struct share *s = op->share;
    if (rc == -ETIMEDOUT)
        request_fail(req, "virtio-fs share %s: no virtio-fs device with tag \"%s\" appeared "
                          "within %u s",
                     s->name, s->name, VIRTIOFS_WAIT_MS / 1000);
    else if (rc == -ECANCELED)
        request_fail(req, "virtio-fs share %s: the Add on %s was cancelled by a Remove", s->name,
                     s->path);
    if (rc == 0) {
        share_commit(s);
        log_info("virtio-fs share %s mounted on %s%s%s%s in %lld ms (%u attempt%s)", s->name,
                 s->path, s->read_only ? " (read-only)" : "", op->options[0] ? ", options " : "",
                 op->options, (long long)(monotonic_ms() - op->start_ms), op->attempts,
                 op->attempts == 1 ? "" : "s");
    } else {
        share_release(s);
    }
    op_free(op);
    bridge_reply(b, req, rc);
}

/* --- Request -------------------------------------------------------------------------------- */

struct share_key {
    const char *name, *path;
};

static bool
same_share(void *ctx, const void *arg)
{
    const struct virtiofs_op *op = ctx;
    const struct share_key *key = arg;
    return !strcmp(op->share->path, key->path) && !strcmp(op->share->name, key->name);
}

static int
virtiofs_add(struct bridge *b, struct request *req, const char *tag, const char *path,
             bool read_only, const char *options)
{
    struct share *s = NULL;
    int rc = share_reserve(req, SHARE_VIRTIOFS, tag, path, read_only, &s);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    struct virtiofs_op *op = xcalloc(1, sizeof(*op));
    op->req = req;
    op->share = s;
    op->options = xstrdup(options);
    op->start_ms = monotonic_ms();
    devwait_start(b, VIRTIOFS_WAIT_MS, add_check, add_done, op);
    return BRIDGE_DEFERRED;
}

#define FUSECTL_DIR "/sys/fs/fuse/connections"

/* The file server of the share mounted on path is gone (the host says so): abort its FUSE
 * connection so that unmounting (which sends FUSE_DESTROY) and the device's removal fail pending
 * and new requests at once instead of waiting forever. The connection is found through
 * mountinfo (no call into the dead file system) and fusectl, mounted on demand. */
static void
abort_connection(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return;
    char line[4096];
    unsigned maj = 0, min = 0;
    bool found = false, fusectl = false;
    while (fgets(line, sizeof(line), f)) {
        char point[4096];
        unsigned a, b;
        if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &a, &b, point) != 3)
            continue;
        if (!strcmp(point, path)) {
            maj = a;
            min = b;
            found = true;
        }
        if (!strcmp(point, FUSECTL_DIR))
            fusectl = true;
    }
    fclose(f);
    if (!found)
        return;
    if (!fusectl && mount("fusectl", FUSECTL_DIR, "fusectl", 0, NULL) < 0) {
        log_warn("virtio-fs: mount fusectl on " FUSECTL_DIR ": %s", strerror(errno));
        return;
    }
    char abort_path[96];
    snprintf(abort_path, sizeof(abort_path), FUSECTL_DIR "/%u/abort", maj << 20 | min);
    int fd = open(abort_path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "1", 1) != 1)
        log_info("virtio-fs: abort %s (connection of %s): %s", abort_path, path,
                    strerror(errno));
    else
        log_info("virtio-fs: aborted the FUSE connection of %s (its file server is gone)", path);
    if (fd >= 0)
        close(fd);
}

int
virtiofs_modify(struct bridge *b, struct request *req, enum modify_request_type type,
                json_t *settings)
{
    struct virtiofs_conf c;
    int rc = virtiofs_conf_parse(req, type, settings, &c);
    if (rc < 0)
        return rc;
    const char *tag = c.tag, *path = c.path, *options = c.options;
    bool read_only = c.read_only, lazy = c.lazy;
    log_debug("virtio-fs share %s: %s %s%s%s%s", tag, type == MODIFY_ADD ? "add on" : "remove from",
              path, read_only ? " (read-only)" : "", *options ? ", options " : "", options);
    if (type == MODIFY_ADD)
        return virtiofs_add(b, req, tag, path, read_only, options);
    struct share_key key = {tag, path};
    if (devwait_cancel(b, add_check, same_share, &key))
        log_info("virtio-fs share %s: a pending Add on %s was cancelled by the Remove", tag, path);
    if (lazy)
        abort_connection(path);
    return share_remove(req, SHARE_VIRTIOFS, tag, path, lazy);
}

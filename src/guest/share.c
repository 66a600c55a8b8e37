/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "share.h"

static struct share *shares;

size_t
share_count(void)
{
    size_t n = 0;
    for (const struct share *s = shares; s; s = s->next)
        n++;
    return n;
}

const char *
share_kind_name(enum share_kind kind)
{
    return kind == SHARE_PLAN9 ? "Plan9" : "virtio-fs";
}

static struct share **
find(const char *path)
{
    struct share **sp = &shares;
    while (*sp && strcmp((*sp)->path, path))
        sp = &(*sp)->next;
    return sp;
}

static void
share_free(struct share *s)
{
    free(s->name);
    free(s->path);
    free(s);
}

int
share_reserve(struct request *req, enum share_kind kind, const char *name, const char *path,
              bool read_only, struct share **out)
{
    const char *k = share_kind_name(kind);
    struct share *old = *find(path);
    if (old && old->pending)
        return request_fail(req, "%s share %s: an Add of %s share %s on %s is in progress", k,
                            name, share_kind_name(old->kind), old->name, path);
    if (old && (old->kind != kind || strcmp(old->name, name)))
        return request_fail(req, "%s share %s: %s is the mount point of %s share %s", k, name,
                            path, share_kind_name(old->kind), old->name);
    if (old && old->read_only != read_only)
        return request_fail(req, "%s share %s is already mounted on %s %s", k, name, path,
                            old->read_only ? "read-only" : "read-write");
    if (old) {
        log_info("%s share %s is already mounted on %s", k, name, path);
        return 1;
    }
    struct share *s = xcalloc(1, sizeof(*s));
    int rc = mount_mkdir(req, path, &s->created);
    if (rc < 0) {
        request_fail(req, "%s share %s: %s", k, name, req->error);
        free(s);
        return rc;
    }
    s->kind = kind;
    s->name = xstrdup(name);
    s->path = xstrdup(path);
    s->read_only = read_only;
    s->pending = true;
    s->next = shares;
    shares = s;
    *out = s;
    return 0;
}

void
share_commit(struct share *s)
{
    s->pending = false;
}

static void
unlink_share(struct share *s)
{
    for (struct share **sp = &shares; *sp; sp = &(*sp)->next) {
        if (*sp == s) {
            *sp = s->next;
            return;
        }
    }
}

void
share_release(struct share *s)
{
    unlink_share(s);
    mount_mkdir_undo(&s->created);
    share_free(s);
}

int
share_remove(struct request *req, enum share_kind kind, const char *name, const char *path,
             bool lazy)
{
    const char *k = share_kind_name(kind);
    struct share *s = *find(path);
    if (!s) {
        log_info("%s share %s: the agent has nothing mounted on %s: nothing to remove", k, name,
                 path);
        return 0;
    }
    if (s->kind != kind || strcmp(s->name, name))
        return request_fail(req, "%s share %s: %s is the mount point of %s share %s, not of "
                                 "this share",
                            k, name, path, share_kind_name(s->kind), s->name);
    if (s->pending) /* the handlers cancel their pending Adds first: not expected */
        return request_fail(req, "%s share %s: its Add on %s is in progress", k, name, path);
    if (lazy) {
        /* The host says the file server is gone. Linux 6.1 then waits forever for the
         * requests it queued to the device (FORGETs included) when the file system goes away,
         * so a child detaches it and may hang in that wait instead of the agent. */
        pid_t pid = fork();
        if (pid == 0) {
            umount2(path, UMOUNT_NOFOLLOW | MNT_DETACH);
            _exit(0);
        }
        if (pid < 0)
            return request_fail(req, "%s share %s: fork to detach %s: %s", k, name, path,
                                strerror(errno));
        log_warn("%s share %s: detaching %s in process %d (its file server is gone; the "
                 "process may never end)",
                 k, name, path, (int)pid);
        unlink_share(s);
        share_free(s); /* the directory stays: it is still a mount point for a while */
        return 0;
    }
    if (umount2(path, UMOUNT_NOFOLLOW) < 0) {
        int err = errno;
        if (err == EBUSY)
            return request_fail(req, "%s share %s: unmount %s: %s (a process has files open "
                                     "in it or uses it as its working directory)",
                                k, name, path, strerror(err));
        if (err != EINVAL && err != ENOENT)
            return request_fail(req, "%s share %s: unmount %s: %s", k, name, path,
                                strerror(err));
        log_info("%s share %s: %s was not mounted any more", k, name, path);
    }
    share_release(s);
    log_info("%s share %s: unmounted from %s", k, name, path);
    return 0;
}

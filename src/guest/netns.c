/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "netlink.h"
#include "netns.h"

#define LOOPBACK_IFINDEX 1 /* the kernel gives `lo` index 1 in every namespace */

static char *
run_path(const char *id)
{
    return xasprintf(NETNS_RUN_DIR "/%s", id);
}

char *
netns_resolv_path(const char *id)
{
    return xasprintf(NETNS_ETC_DIR "/%s/resolv.conf", id);
}

int
netns_open(const char *id)
{
    cleanup_free char *path = run_path(id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void
netns_init(void)
{
    if (access(NETNS_RESOLV_CONF, F_OK) == 0)
        return;
    int fd = open(NETNS_RESOLV_CONF, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) {
        log_debug("cannot create %s: %s (processes in network namespaces with DNS servers will "
                  "not start)",
                  NETNS_RESOLV_CONF, strerror(errno));
        return;
    }
    close(fd);
}

/* --- /etc/netns/<id> ------------------------------------------------------------------------ */

/* /etc/netns/<id> exists and is writable: on a read-only root, /etc/netns gets a tmpfs. */
static int
etc_dir_ready(struct request *req, const char *id)
{
    if (mkdir(NETNS_ETC_DIR, 0755) < 0 && errno != EEXIST) {
        int err = errno;
        return request_fail(req, "mkdir " NETNS_ETC_DIR ": %s%s", strerror(err),
                            err == EROFS ? " (the read-only root file system has no "
                                           NETNS_ETC_DIR ")"
                                         : "");
    }
    if (access(NETNS_ETC_DIR, W_OK) < 0) {
        if (errno != EROFS)
            return request_fail(req, NETNS_ETC_DIR ": %s", strerror(errno));
        if (mount("tmpfs", NETNS_ETC_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=0755") < 0)
            return request_fail(req, "mount a tmpfs on " NETNS_ETC_DIR " (read-only root): %s",
                                strerror(errno));
        log_debug("read-only root: a tmpfs on " NETNS_ETC_DIR);
    }
    cleanup_free char *dir = xasprintf(NETNS_ETC_DIR "/%s", id);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return request_fail(req, "mkdir %s: %s", dir, strerror(errno));
    return 0;
}

int
netns_write_resolv(struct request *req, const char *id, const char *text)
{
    int rc = etc_dir_ready(req, id);
    if (rc < 0)
        return rc;
    cleanup_free char *path = netns_resolv_path(id);
    cleanup_free char *tmp = xasprintf(NETNS_ETC_DIR "/%s/.resolv.conf.tmp", id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return request_fail(req, "create %s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int err = n < 0 ? errno : n != (ssize_t)len ? EIO : 0;
    if (close(fd) < 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) < 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return request_fail(req, "write %s: %s", path, strerror(err));
    }
    return 0;
}

/* Remove /etc/netns/<id> and the files in it; a missing folder is fine. */
static int
etc_remove(struct request *req, const char *id)
{
    cleanup_free char *dir = xasprintf(NETNS_ETC_DIR "/%s", id);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : request_fail(req, "%s: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0 &&
            (errno != EISDIR || unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0))
            rc = request_fail(req, "remove %s/%s: %s", dir, de->d_name, strerror(errno));
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) < 0 && errno != ENOENT)
        rc = request_fail(req, "remove %s: %s", dir, strerror(errno));
    return rc;
}

/* --- Add / Remove --------------------------------------------------------------------------- */

/* /run/netns is a shared mount point (as iproute2 makes it), so that unpinning a namespace
 * reaches the copies of it in the mount namespaces of processes (slaves of it). */
static int
run_dir_ready(struct request *req)
{
    static bool ready;
    if (ready)
        return 0;
    if (mkdir(NETNS_RUN_DIR, 0755) < 0 && errno != EEXIST)
        return request_fail(req, "mkdir " NETNS_RUN_DIR ": %s", strerror(errno));
    if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
        /* EINVAL: not a mount point yet; bind it on itself first. */
        if (errno != EINVAL ||
            mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0 ||
            mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0)
            return request_fail(req, "make " NETNS_RUN_DIR " a shared mount point: %s",
                                strerror(errno));
    }
    ready = true;
    return 0;
}

/* In a new network namespace: pin it on path and bring lo up. The caller returns to the root
 * namespace. */
static int
create_here(struct request *req, const char *id, const char *path)
{
    if (unshare(CLONE_NEWNET) < 0)
        return request_fail(req, "network namespace %s: unshare: %s", id, strerror(errno));
    if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0)
        return request_fail(req, "network namespace %s: bind mount on %s: %s", id, path,
                            strerror(errno));
    struct nl nl;
    int rc = nl_open(&nl);
    if (rc < 0)
        return request_fail(req, "network namespace %s: netlink socket: %s", id, strerror(-rc));
    rc = nl_link_set_up(&nl, LOOPBACK_IFINDEX, true);
    if (rc < 0)
        request_fail(req, "network namespace %s: set lo up: %s", id, nl_strerror(&nl, rc));
    nl_close(&nl);
    return rc;
}

static int
ns_add(struct request *req, const char *id)
{
    int rc = run_dir_ready(req);
    if (rc < 0)
        return rc;
    cleanup_free char *path = run_path(id);
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        return errno == EEXIST
                   ? request_fail(req, "network namespace %s already exists", id)
                   : request_fail(req, "network namespace %s: create %s: %s", id, path,
                                  strerror(errno));
    close(fd);
    rc = etc_remove(req, id); /* a stale one must not become this namespace's */
    if (rc == 0) {
        int root = nl_root_netns(); /* to return to */
        if (root < 0)
            rc = request_fail(req, "network namespace %s: open the root namespace: %s", id,
                              strerror(-root));
    }
    if (rc == 0) {
        rc = create_here(req, id, path);
        nl_return_root();
    }
    if (rc < 0) {
        if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL)
            log_warn("network namespace %s: umount %s: %s", id, path, strerror(errno));
        unlink(path);
        return rc;
    }
    log_info("network namespace %s added", id);
    return 0;
}

static int
ns_remove(struct request *req, const char *id)
{
    cleanup_free char *path = run_path(id);
    struct stat st;
    bool pinned = lstat(path, &st) == 0;
    if (!pinned && errno != ENOENT)
        return request_fail(req, "network namespace %s: %s: %s", id, path, strerror(errno));
    int rc = etc_remove(req, id);
    if (rc < 0)
        return rc;
    if (!pinned) { /* a retry of a remove whose answer the host did not wait for: done already */
        log_info("network namespace %s: already removed", id);
        return 0;
    }
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL)
        return request_fail(req, "network namespace %s: umount %s: %s", id, path,
                            strerror(errno));
    if (unlink(path) < 0 && errno != ENOENT)
        return request_fail(req, "network namespace %s: remove %s: %s", id, path,
                            strerror(errno));
    log_info("network namespace %s removed", id);
    return 0;
}

int
netns_modify(struct bridge *b, struct request *req, enum modify_request_type type,
             json_t *settings)
{
    if (type != MODIFY_ADD && type != MODIFY_REMOVE)
        return request_fail(req, "NetworkNamespace: the request type \"Update\" is not "
                                 "supported");
    if (!settings)
        return request_fail(req, "invalid request: missing field \"Settings\"");
    const char *id = NULL;
    int rc = req_string(req, settings, "ID", true, &id);
    if (rc < 0)
        return rc;
    if (!netns_id_valid(id))
        return request_fail(req, "invalid request: field \"ID\": \"%s\" is not a network "
                                 "namespace id (1 to %d of [A-Za-z0-9._-], not starting with "
                                 "'.')",
                            id, NETNS_ID_MAX);
    return type == MODIFY_ADD ? ns_add(req, id) : ns_remove(req, id);
}

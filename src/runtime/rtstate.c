/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "rtfile.h"
#include "rtstate.h"

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

char *
rtstate_encode(const struct rt_state *s)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", s->id, "bundle",
                          s->bundle, "rootfs", s->rootfs, "created", s->created, "vm_id", s->vm_id,
                          "uvm_runtime_dir", s->uvm_runtime_dir, "holder_pid",
                          (json_int_t)s->holder_pid, "holder_start", (json_int_t)s->holder_start,
                          "init_pid", (json_int_t)s->init_pid);
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return text;
}

static char *
str_field(json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    return v ? xstrdup(v) : NULL;
}

static bool
int_field(json_t *j, const char *key, long long max, long long *out)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return false;
    *out = json_integer_value(v);
    return true;
}

int
rtstate_decode(const char *text, struct rt_state *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return FAIL("state.json is not JSON: %s", jerr.text);
    s->id = str_field(j, "id");
    s->bundle = str_field(j, "bundle");
    s->rootfs = str_field(j, "rootfs");
    s->created = str_field(j, "created");
    s->vm_id = str_field(j, "vm_id");
    s->uvm_runtime_dir = str_field(j, "uvm_runtime_dir");
    long long hp = 0, hs = 0, ip = 0;
    bool ok = int_field(j, "holder_pid", 0x7fffffff, &hp) &&
              int_field(j, "holder_start", 0x7fffffffffffffffLL, &hs) &&
              int_field(j, "init_pid", 0x7fffffff, &ip);
    json_decref(j);
    if (!ok || !s->id || !s->bundle || !s->rootfs || !s->created || !s->vm_id ||
        !s->uvm_runtime_dir) {
        rtstate_free(s);
        return FAIL("state.json lacks a field or has one of the wrong type");
    }
    s->holder_pid = (pid_t)hp;
    s->holder_start = (unsigned long long)hs;
    s->init_pid = (pid_t)ip;
    return 0;
}

void
rtstate_free(struct rt_state *s)
{
    free(s->id);
    free(s->bundle);
    free(s->rootfs);
    free(s->created);
    free(s->vm_id);
    free(s->uvm_runtime_dir);
    memset(s, 0, sizeof(*s));
}

/* mkdir -p of path with mode for what is made. */
static int
mkdir_p(const char *path, mode_t mode)
{
    cleanup_free char *p = xstrdup(path);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *c = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int
rtstate_mkdir(const char *root, const char *id)
{
    int rc = mkdir_p(root, 0700);
    if (rc < 0)
        return rc;
    cleanup_close int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return -errno;
    if (mkdirat(rfd, id, 0700) < 0)
        return -errno;
    int fd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return fd < 0 ? -errno : fd;
}

int
rtstate_open(const char *root, const char *id)
{
    cleanup_close int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return -errno;
    int fd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return fd < 0 ? -errno : fd;
}

int
rtstate_write(int dirfd, const struct rt_state *s)
{
    cleanup_free char *text = rtstate_encode(s);
    if (!text)
        return -EINVAL;
    int fd = openat(dirfd, ".state.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                    0600);
    if (fd < 0)
        return -errno;
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : -EIO;
    close(fd);
    if (rc == 0 && renameat(dirfd, ".state.tmp", dirfd, RT_STATE_FILE) < 0)
        rc = -errno;
    return rc;
}

int
rtstate_read(int dirfd, struct rt_state *s, char *err, size_t errlen)
{
    cleanup_free char *text = NULL;
    int rc = rt_read_file(dirfd, RT_STATE_FILE, RT_STATE_MAX, 1, &text, NULL);
    if (rc < 0)
        return FAIL("read state.json: %s", strerror(-rc));
    return rtstate_decode(text, s, err, errlen);
}

int
rtstate_remove(const char *root, const char *id)
{
    cleanup_close int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return -errno;
    int fd = openat(rfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
            rc = -errno;
    closedir(d);
    if (unlinkat(rfd, id, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

void
rtstate_sock_path(int dirfd, char buf[64])
{
    snprintf(buf, 64, "/proc/self/fd/%d/" RT_SOCK_NAME, dirfd);
}

int
rtstate_connect(int dirfd)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    rtstate_sock_path(dirfd, sa.sun_path);
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = -errno;
        close(s);
        return e;
    }
    return s;
}

void
rtstate_now(char buf[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, 32, "%s.%09ldZ", base, ts.tv_nsec);
}

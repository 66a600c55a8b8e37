/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "rtfile.h"

int
rt_pidfile_write(const char *path, pid_t pid)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%d", (int)pid);
    const char *slash = strrchr(path, '/');
    cleanup_free char *tmp = slash ? xasprintf("%.*s/.%s.XXXXXX", (int)(slash - path), path,
                                               slash + 1)
                                   : xasprintf(".%s.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (fchmod(fd, 0644) < 0 || write(fd, digits, (size_t)n) != n)
        rc = errno ? -errno : -EIO;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int
rt_read_fd(int fd, size_t max, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                return -EFBIG;
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = -errno;
            free(buf);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            free(buf);
            return -EFBIG;
        }
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

int
rt_read_file(int dirfd, const char *path, size_t max, int nofollow, char **out, size_t *len)
{
    cleanup_close int fd = openat(dirfd, path,
                                  O_RDONLY | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    return rt_read_fd(fd, max, out, len);
}

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void
rt_close_others(const int *keep, size_t n)
{
    int sorted[16];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 16; i++)
        if (keep[i] >= 3)
            sorted[k++] = keep[i];
    qsort(sorted, k, sizeof(int), cmp_int);
    unsigned from = 3;
    for (size_t i = 0; i < k; i++) {
        if ((unsigned)sorted[i] > from)
            syscall(SYS_close_range, from, (unsigned)sorted[i] - 1, 0);
        from = (unsigned)sorted[i] + 1;
    }
    syscall(SYS_close_range, from, ~0U, 0);
}

int
rt_stdio_null(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (int i = 0; i < 3; i++)
        if (dup2(fd, i) < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
    if (fd > 2)
        close(fd);
    return 0;
}

unsigned long long
rt_proc_start(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char *text = NULL;
    if (pid <= 0 || rt_read_file(AT_FDCWD, path, 4096, 1, &text, NULL) < 0)
        return 0;
    /* comm may hold spaces and parentheses: fields start after the last ')'. */
    const char *p = strrchr(text, ')');
    unsigned long long start = 0;
    if (p && p[1] == ' ' && p[2] == 'Z') { /* a zombie: gone, only not reaped yet */
        free(text);
        return 0;
    }
    for (int field = 2; p && *p; p++) {
        if (*p != ' ')
            continue;
        if (++field == 22) {
            start = strtoull(p + 1, NULL, 10);
            break;
        }
    }
    free(text);
    return start;
}

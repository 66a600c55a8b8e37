/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small files the runtime writes and reads: the pid file, bounded reads, descriptors. */
#ifndef UVM_RUNTIME_RTFILE_H
#define UVM_RUNTIME_RTFILE_H

#include <stddef.h>
#include <sys/types.h>

/* "<pid>": digits only, no newline (go-runc's strconv.Atoi of the whole file). Written to a
 * temporary file beside path, then renamed over it. 0 or -errno. */
int rt_pidfile_write(const char *path, pid_t pid);

/* Read a whole regular file of at most max bytes (NUL-terminated, caller frees). 0, -EFBIG when
 * larger, or -errno. dirfd/path as openat(2); no symlink is followed at the last component
 * when nofollow. */
int rt_read_file(int dirfd, const char *path, size_t max, int nofollow, char **out, size_t *len);
/* The same from an open descriptor (read from its current offset; not closed). */
int rt_read_fd(int fd, size_t max, char **out, size_t *len);

/* Close every descriptor >= 3 except those in keep (n of them, any order). */
void rt_close_others(const int *keep, size_t n);
/* Point fds 0, 1 and 2 at /dev/null. 0 or -errno. */
int rt_stdio_null(void);

/* Start time of process pid (field 22 of /proc/<pid>/stat), or 0 when it does not exist or is a
 * zombie. */
unsigned long long rt_proc_start(pid_t pid);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "modules.h"

#define MODULES_LIST_MAX (256u * 1024)

static pid_t late_pid = -1;
static bool late_done;

static int
read_file(const char *path, char **out)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size < 0 || (size_t)st.st_size > MODULES_LIST_MAX)
        return -EFBIG;
    cleanup_free char *buf = xmalloc((size_t)st.st_size + 1);
    ssize_t len = pread_full(fd, buf, (size_t)st.st_size, 0);
    if (len < 0)
        return (int)len;
    buf[len] = '\0';
    *out = steal_ptr(&buf);
    return 0;
}

static int
load_one(int dirfd, const char *rel)
{
    cleanup_close int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("module %s: open: %s", rel, strerror(errno));
        return -errno;
    }
    if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST) {
        log_error("module %s: finit_module: %s", rel, strerror(errno));
        return -errno;
    }
    log_debug("module %s loaded", rel);
    return 0;
}

int
modules_load_list(const char *list)
{
    cleanup_free char *text = NULL;
    int rc = read_file(list, &text);
    if (rc == -ENOENT) {
        log_debug("%s: not present, no modules to load", list);
        return 0;
    }
    if (rc < 0) {
        log_error("%s: %s", list, strerror(-rc));
        return rc;
    }

    /* Opened at the first module: an empty list (a kernel with everything built in) needs no
     * /lib/modules/<release>. */
    cleanup_close int dirfd = -1;
    int failed = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line += strspn(line, " \t");
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (!n || line[0] == '#')
            continue;
        if (line[0] == '/' || strstr(line, "..")) {
            log_error("%s: refusing module path \"%s\"", list, line);
            failed++;
            continue;
        }
        if (dirfd < 0) {
            struct utsname uts;
            if (uname(&uts) < 0)
                return -errno;
            cleanup_free char *dir = xasprintf("/lib/modules/%s", uts.release);
            dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dirfd < 0) {
                rc = -errno;
                log_error("%s: %s", dir, strerror(errno));
                return rc;
            }
        }
        if (load_one(dirfd, line) < 0)
            failed++;
    }
    return failed;
}

pid_t
modules_late_start(void)
{
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        log_error("fork for late modules: %s", strerror(err));
        late_done = true;
        return -err;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        log_set_sink(NULL, NULL); /* the bridge belongs to the parent */
        int failed = modules_load_list(MODULES_LATE_LIST);
        _exit(failed == 0 ? 0 : 1);
    }
    late_pid = pid;
    return pid;
}

bool
modules_late_reaped(pid_t pid, int status)
{
    if (late_pid <= 0 || pid != late_pid)
        return false;
    late_pid = -1;
    late_done = true;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        log_debug("late modules loaded");
    else
        log_warn("late modules: some failed to load (status 0x%x, see kernel log)", status);
    return true;
}

bool
modules_late_done(void)
{
    return late_done;
}

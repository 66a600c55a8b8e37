/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static char runtime_dir[64];

const char *
itest_runtime_dir(void)
{
    return runtime_dir;
}

static void
log_to_stderr(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "[%s] %s: %s\n", names[level], vm_id ? vm_id : "-", msg);
}

/* The runtime roots of test processes that died (a killed CI run) are released as the library
 * releases a dead process's directories (mounts detached, taps deleted, files removed), then
 * removed: each test process has a root of its own, so no later run would look at them. */
static void
sweep_dead_roots(void)
{
    DIR *d = opendir("/tmp");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        int pid = 0, end = 0;
        if (sscanf(de->d_name, "uvm-itest-%d%n", &pid, &end) != 1 || de->d_name[end] || pid <= 0 ||
            itest_pid_alive(pid))
            continue;
        char root[64];
        snprintf(root, sizeof(root), "/tmp/%s", de->d_name);
        setenv("UVM_RUNTIME_DIR", root, 1);
        int n = uvm_sweep_runtime_dirs();
        if (n < 0 || rmdir(root) < 0)
            fprintf(stderr, "itest: a dead test's runtime root %s: %s\n", root,
                    n < 0 ? uvm_last_error() : strerror(errno));
        else if (n > 0)
            fprintf(stderr, "itest: released %d directories of a dead test in %s\n", n, root);
    }
    closedir(d);
    unsetenv("UVM_RUNTIME_DIR");
}

void
itest_init(void)
{
    const char *boot = getenv("UVM_BOOT_FILES_PATH");
    struct stat st;
    if (!boot || stat(boot, &st) < 0) {
        printf("SKIP: UVM_BOOT_FILES_PATH (%s) does not exist: build the boot files\n",
               boot ? boot : "unset");
        exit(77);
    }
    if (system("command -v qemu-system-x86_64 >/dev/null") != 0) {
        printf("SKIP: qemu-system-x86_64 is not installed\n");
        exit(77);
    }
    sweep_dead_roots();
    snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/uvm-itest-%d", (int)getpid());
    setenv("UVM_RUNTIME_DIR", runtime_dir, 1);
    setenv("UVM_START_TIMEOUT_MS", "60000", 0); /* boots take seconds; bound a hang */
    signal(SIGPIPE, SIG_IGN);
    uvm_set_log_handler(log_to_stderr, NULL,
                        getenv("UVM_TEST_DEBUG") ? UVM_LOG_DEBUG : UVM_LOG_WARNING);
}

int
itest_finish(int failed)
{
    /* The library must have detached every mount below the base (a failure); never delete
     * through one: a leftover share bind would cost the shared folder's files. */
    int left = itest_mounts_below(runtime_dir);
    if (left > 0) {
        fprintf(stderr, "itest: %d mount(s) left below %s\n", left, runtime_dir);
        failed++;
        itest_umount_below(runtime_dir);
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", runtime_dir);
    if (system(cmd) != 0)
        failed++;
    return failed ? 1 : 0;
}

char *
itest_host_out(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    pclose(f);
    return buf;
}

void
itest_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

char *
itest_guest(struct uvm *vm, const char *cmd)
{
    struct itest_run r;
    const char *argv[] = {"sh", "-c", cmd, NULL};
    assert_int_equal(itest_run(vm, argv, NULL, &r), 0);
    if (r.exit_code != 0)
        fail_msg("guest '%s' exited %d: %s", cmd, r.exit_code, r.err);
    free(r.err);
    return r.out;
}

int
itest_guest_count(struct uvm *vm, const char *cmd)
{
    char *out = itest_guest(vm, cmd);
    int n = atoi(out);
    free(out);
    return n;
}

int
itest_start(struct uvm *vm)
{
    int rc = uvm_start(vm);
    if (rc == UVM_E_TIMEOUT) {
        /* A rare TCG boot hang (docs/design.md, "Known problems"): say so loudly, retry once. */
        fprintf(stderr, "RETRY: boot of '%s' timed out: %s\n", uvm_id(vm), uvm_last_error());
        rc = uvm_start(vm);
    }
    return rc;
}

struct uvm *
itest_boot(const char *id)
{
    struct uvm_options o = {.id = id,
                            .memory_mb = 256,
                            .console_pipe = getenv("UVM_TEST_CONSOLE"),
                            .kernel_boot_options = getenv("UVM_TEST_KERNEL_ARGS")};
    struct uvm *vm = NULL;
    int rc = uvm_create(&o, &vm);
    if (rc < 0)
        fail_msg("uvm_create: %s (%s)", uvm_last_error(), uvm_strerror(rc));
    rc = itest_start(vm);
    if (rc < 0) {
        char msg[4096];
        snprintf(msg, sizeof(msg), "%s", uvm_last_error());
        uvm_close(vm);
        fail_msg("uvm_start: %s (%s)", msg, uvm_strerror(rc));
    }
    return vm;
}

static void
append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

int
itest_run(struct uvm *vm, const char *const *argv, const char *in, struct itest_run *r)
{
    return itest_run_in(vm, NULL, argv, in, r);
}

int
itest_run_in(struct uvm *vm, const char *netns, const char *const *argv, const char *in,
             struct itest_run *r)
{
    struct uvm_process_config cfg = {
        .argv = argv,
        .create_stdin = in != NULL,
        .create_stdout = true,
        .create_stderr = true,
        .network_namespace = netns};
    struct uvm_process *p = NULL;
    int rc = uvm_exec(vm, &cfg, &p);
    if (rc < 0) {
        memset(r, 0, sizeof(*r));
        r->out = calloc(1, 1);
        r->err = calloc(1, 1);
        r->exit_code = -1;
        return rc;
    }
    return itest_collect(p, in, r);
}

int
itest_collect(struct uvm_process *p, const char *in, struct itest_run *r)
{
    memset(r, 0, sizeof(*r));
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    r->exit_code = -1;
    int fds[3];
    uvm_process_stdio(p, &fds[0], &fds[1], &fds[2]);
    if (fds[0] >= 0) {
        size_t n = strlen(in);
        if (n && write(fds[0], in, n) != (ssize_t)n)
            fail_msg("write stdin: %s", strerror(errno));
        close(fds[0]);
    }
    while (fds[1] >= 0 || fds[2] >= 0) {
        struct pollfd pf[2] = {{.fd = fds[1], .events = POLLIN}, {.fd = fds[2], .events = POLLIN}};
        if (poll(pf, 2, 60000) <= 0)
            fail_msg("no output within 60 s");
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            char buf[65536];
            ssize_t n = read(pf[i].fd, buf, sizeof(buf));
            if (n <= 0) {
                close(fds[i + 1]);
                fds[i + 1] = -1;
            } else if (i == 0) {
                append(&r->out, &r->out_len, buf, (size_t)n);
            } else {
                append(&r->err, &r->err_len, buf, (size_t)n);
            }
        }
    }
    int rc = uvm_process_wait(p, &r->exit_code);
    uvm_process_close(p);
    return rc;
}

void
itest_run_free(struct itest_run *r)
{
    free(r->out);
    free(r->err);
}

bool
itest_pid_alive(int pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

int
itest_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    char self[32];
    snprintf(self, sizeof(self), "Pid:\t%d\n", (int)getpid());
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[512] = "";
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", e->d_name);
        FILE *f = fopen(path, "r");
        size_t len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = '\0';
        n += strstr(buf, self) ? 0 : 1;
    }
    if (d)
        closedir(d);
    return n;
}

int
itest_qemu_pid(const char *id)
{
    char want[128];
    snprintf(want, sizeof(want), "guest=%s,", id);
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = -1;
    while (d && (e = readdir(d)) && found < 0) {
        char path[300], buf[8192];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        if (n > 0) {
            buf[n] = '\0';
            if (strstr(buf, "qemu-system") && strstr(buf, want))
                found = atoi(e->d_name);
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* Mount points at or below path, in mountinfo order (parents first); *n set. Both the path as
 * given (without trailing slashes) and its canonical form are compared. */
static char **
mounts_below(const char *path, size_t *n)
{
    char given[PATH_MAX], real[PATH_MAX];
    snprintf(given, sizeof(given), "%s", path);
    for (size_t l = strlen(given); l > 1 && given[l - 1] == '/'; l--)
        given[l - 1] = '\0';
    if (!realpath(path, real))
        snprintf(real, sizeof(real), "%s", given);
    const char *const forms[] = {given, real};
    char **points = NULL, line[8192];
    *n = 0;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char raw[4096], mnt[4096], *o = mnt;
        if (sscanf(line, "%*s %*s %*s %*s %4095s", raw) != 1)
            continue;
        for (const char *r = raw; *r && o < mnt + sizeof(mnt) - 1; r++) {
            if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                r[3] >= '0' && r[3] <= '7') {
                *o++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                r += 3;
            } else {
                *o++ = *r;
            }
        }
        *o = '\0';
        for (size_t i = 0; i < 2; i++) {
            size_t l = strlen(forms[i]);
            if (!strncmp(mnt, forms[i], l) && (mnt[l] == '\0' || mnt[l] == '/')) {
                points = realloc(points, (*n + 1) * sizeof(*points));
                points[(*n)++] = strdup(mnt);
                break;
            }
        }
    }
    fclose(f);
    return points;
}

static void
free_points(char **points, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(points[i]);
    free(points);
}

int
itest_mounts_below(const char *path)
{
    size_t n = 0;
    char **points = mounts_below(path, &n);
    free_points(points, n);
    return (int)n;
}

int
itest_umount_below(const char *path)
{
    int done = 0;
    for (int round = 0; round < 8; round++) {
        size_t n;
        char **points = mounts_below(path, &n);
        for (size_t i = n; i-- > 0;)
            if (umount2(points[i], MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
                done++;
        free_points(points, n);
        if (!n)
            break;
    }
    return done;
}

void
itest_rm_rf(const char *path)
{
    if (!path || !*path)
        return;
    itest_umount_below(path);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove '%s'\n", path);
}

char *
itest_tree(const char *path)
{
    return itest_host_out("cd '%s' && { find . -printf '%%p %%y %%m %%U:%%G\\n'; "
                          "find . -type l -printf '%%p -> %%l\\n'; find . -type f -exec md5sum "
                          "{} + | sed -E 's/^([0-9a-f]+)  (.*)$/\\2 md5 \\1/'; } | LC_ALL=C sort",
                          path);
}

void
itest_tbuf_free(struct itest_tbuf *b)
{
    free(b->data);
    *b = (struct itest_tbuf){0};
}

bool
itest_tbuf_fill(int fd, struct itest_tbuf *b)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ITEST_WAIT_MS) != 1)
        fail_msg("no output within %d s; so far: [%.*s]", ITEST_WAIT_MS / 1000, (int)b->len,
                 b->data ? b->data : "");
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EIO) /* a host pty master once the slave is gone */
        n = 0;
    if (n < 0)
        fail_msg("read: %s", strerror(errno));
    if (n == 0) {
        b->eof = true;
        return false;
    }
    b->data = realloc(b->data, b->len + (size_t)n + 1);
    memcpy(b->data + b->len, buf, (size_t)n);
    b->len += (size_t)n;
    b->data[b->len] = '\0';
    return true;
}

char *
itest_expect(int fd, struct itest_tbuf *b, const char *needle)
{
    for (;;) {
        char *at = b->data ? strstr(b->data + b->mark, needle) : NULL;
        if (at) {
            size_t end = (size_t)(at - b->data) + strlen(needle);
            char *chunk = strndup(b->data + b->mark, end - b->mark);
            b->mark = end;
            return chunk;
        }
        if (!itest_tbuf_fill(fd, b))
            fail_msg("end of output before \"%s\"; output: [%.*s]", needle, (int)b->len,
                     b->data ? b->data : "");
    }
}

char *
itest_expect_eof(int fd, struct itest_tbuf *b)
{
    while (itest_tbuf_fill(fd, b))
        ;
    char *rest = strndup(b->data ? b->data + b->mark : "", b->len - b->mark);
    b->mark = b->len;
    return rest;
}

void
itest_type(int fd, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * create: the state directory and the holder's socket, the holder (double fork: setsid, stdio
 * /dev/null, the container's stdio kept), its report ("ok <pid>" once the VM runs and the
 * container exists), state.json, then the init's stub, whose pid goes into --pid-file. Nothing
 * is printed on success: create's stdout and stderr are the container's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "console.h"
#include "holder.h"
#include "rtconfig.h"
#include "rtfile.h"
#include "rtlog.h"
#include "rtstate.h"
#include "runtime.h"
#include "timeutil.h"

#define REPORT_MAX 8192

static int
listen_on(int dirfd)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    rtstate_sock_path(dirfd, sa.sun_path);
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 64) < 0) {
        int e = -errno;
        close(s);
        return e;
    }
    return s;
}

/* The bundle, its config.json parsed; 0 or 1 (logged). */
static int
load_bundle(const struct rt_cmd *c, char **bundle, char **spec, struct rt_config *cfg)
{
    char abs[PATH_MAX];
    if (!realpath(c->bundle ? c->bundle : ".", abs))
        return rtlog_error("bundle '%s': %s", c->bundle ? c->bundle : ".", strerror(errno));
    cleanup_close int bfd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0)
        return rtlog_error("bundle '%s': %s", abs, strerror(errno));
    int rc = rt_read_file(bfd, "config.json", RT_CONFIG_MAX, 0, spec, NULL);
    if (rc < 0)
        return rtlog_error("bundle '%s': config.json: %s", abs, strerror(-rc));
    struct rt_env env = {getenv("UVM_BOOT_FILES_PATH"), getenv("UVM_RUNTIME_MEMORY_MB"),
                         getenv("UVM_RUNTIME_CPUS")};
    char err[512];
    if (rtconfig_parse(*spec, abs, &env, cfg, err, sizeof(err)) < 0)
        return rtlog_error("bundle '%s': %s", abs, err);
    if (cfg->terminal != !!c->console_socket) {
        rtconfig_free(cfg);
        return rtlog_error(c->console_socket ? "--console-socket needs process.terminal: true"
                                             : "process.terminal needs --console-socket");
    }
    struct stat st;
    if (stat(cfg->rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
        rc = rtlog_error("root file system '%s': %s", cfg->rootfs,
                         errno && !S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
        rtconfig_free(cfg);
        return rc;
    }
    *bundle = xstrdup(abs);
    return 0;
}

/* Fork the holder (a grandchild, in its own session). Returns after the middle child exited.
 * a->stdio: preset (a terminal's slave), or -1s for create's own fds 0-2 (the shim's pipes). */
static int
fork_holder(struct holder_args *a, int result_w)
{
    pid_t mid = fork();
    if (mid < 0)
        return -errno;
    if (mid == 0) {
        setsid();
        pid_t h = fork();
        if (h != 0)
            _exit(h < 0 ? 1 : 0);
        /* the holder: the container's stdio moved up, its own stdio /dev/null */
        for (int i = 0; i < 3 && !a->cfg.terminal; i++)
            a->stdio[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
        if (a->cfg.terminal) /* two descriptors of the slave: each is closed once */
            a->stdio[1] = fcntl(a->stdio[0], F_DUPFD_CLOEXEC, 3);
        rt_stdio_null();
        int keep[] = {a->listen_fd, result_w, a->log_fd, a->stdio[0], a->stdio[1], a->stdio[2]};
        rt_close_others(keep, sizeof(keep) / sizeof(keep[0]));
        a->result_fd = result_w;
        holder_main(a);
    }
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

/* The holder's report: its pid, or 1 after logging its error. */
static int
read_report(int fd, pid_t *holder)
{
    char buf[REPORT_MAX + 1];
    size_t n = 0;
    int64_t deadline = deadline_after_ms(RT_CREATE_TIMEOUT_MS);
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int p = poll(&pf, 1, deadline_poll_ms(deadline));
        if (p < 0 && errno == EINTR)
            continue;
        if (p <= 0)
            return rtlog_error("create: the holder did not report within %u s",
                               RT_CREATE_TIMEOUT_MS / 1000);
        ssize_t r = read(fd, buf + n, REPORT_MAX - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == REPORT_MAX)
            break;
    }
    buf[n] = '\0';
    int pid = 0;
    char end;
    if (sscanf(buf, "ok %d%c", &pid, &end) == 1 && pid > 0) {
        *holder = pid;
        return 0;
    }
    return rtlog_error("%s", n ? buf : "create: the holder died before it reported");
}

struct create_ctx {
    const struct rt_cmd *c;
    char *bundle, *spec;
    struct rt_config cfg;
    int dirfd;
    int tty; /* the host pty's slave with a terminal, -1 */
    char vm_id[64];
    char created[32];
};

static int
start_holder(struct create_ctx *x, pid_t *holder)
{
    int lfd = listen_on(x->dirfd);
    if (lfd < 0)
        return rtlog_error("create %s: holder socket: %s", x->c->id, strerror(-lfd));
    int logfd = openat(x->dirfd, RT_HOLDER_LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int res[2];
    if (pipe2(res, O_CLOEXEC) < 0) {
        close(lfd);
        return rtlog_error("create %s: pipe: %s", x->c->id, strerror(errno));
    }
    cleanup_free char *state_dir = xasprintf("%s/%s", x->c->root, x->c->id);
    struct holder_args a = {.stdio = {x->tty, x->tty, -1},
                            .id = x->c->id,
                            .bundle = x->bundle,
                            .created = x->created,
                            .vm_id = x->vm_id,
                            .state_dir = state_dir,
                            .cfg = x->cfg,
                            .listen_fd = lfd,
                            .log_fd = logfd,
                            .debug = x->c->debug};
    int rc = fork_holder(&a, res[1]);
    close(res[1]);
    close(lfd);
    if (logfd >= 0)
        close(logfd);
    if (rc < 0) {
        close(res[0]);
        return rtlog_error("create %s: fork: %s", x->c->id, strerror(-rc));
    }
    rc = read_report(res[0], holder);
    close(res[0]);
    return rc;
}

/* After the holder reported: state.json, the init's stub, the pid file. 0 or 1. */
static int
finish(struct create_ctx *x, pid_t holder)
{
    struct rt_state s = {.id = (char *)x->c->id,
                         .bundle = x->bundle,
                         .rootfs = x->cfg.rootfs,
                         .created = x->created,
                         .vm_id = x->vm_id,
                         .uvm_runtime_dir = (char *)rt_uvm_runtime_dir(),
                         .holder_pid = holder,
                         .holder_start = rt_proc_start(holder)};
    int rc = rtstate_write(x->dirfd, &s);
    if (rc < 0)
        return rtlog_error("create %s: state.json: %s", x->c->id, strerror(-rc));
    pid_t stub = 0;
    if (rt_stub_spawn(x->dirfd, "init", true, x->tty, &stub))
        return 1;
    s.init_pid = stub;
    rc = rtstate_write(x->dirfd, &s);
    if (rc == 0 && x->c->pid_file)
        rc = rt_pidfile_write(x->c->pid_file, stub);
    if (rc < 0) {
        kill(stub, SIGKILL);
        return rtlog_error("create %s: pid file '%s': %s", x->c->id, x->c->pid_file, strerror(-rc));
    }
    return 0;
}

/* With a terminal: the host pty, its master sent to the shim's console socket now (the shim
 * reads it once create returned). 0 or 1. */
static int
open_console(struct create_ctx *x)
{
    int master = -1;
    char name[64];
    int rc = rt_console_new(&master, &x->tty, name);
    if (rc == 0) {
        rc = rt_console_send(x->c->console_socket, master, name);
        close(master);
    }
    if (rc < 0)
        return rtlog_error("create %s: console socket '%s': %s", x->c->id, x->c->console_socket,
                           strerror(-rc));
    return 0;
}

int
rt_create(const struct rt_cmd *c)
{
    struct create_ctx x = {.c = c, .dirfd = -1, .tty = -1};
    if (load_bundle(c, &x.bundle, &x.spec, &x.cfg))
        return 1;
    int rc = 1;
    x.dirfd = rtstate_mkdir(c->root, c->id);
    if (x.dirfd == -EEXIST) {
        rtlog_error("container with id exists: %s", c->id);
        goto out;
    }
    if (x.dirfd < 0) {
        rtlog_error("create %s: state directory in '%s': %s", c->id, c->root, strerror(-x.dirfd));
        goto out;
    }
    rtconfig_vm_id(c->root, c->id, x.vm_id);
    rtstate_now(x.created);
    pid_t holder = 0;
    rc = x.cfg.terminal ? open_console(&x) : 0;
    if (rc == 0)
        rc = start_holder(&x, &holder);
    if (rc == 0)
        rc = finish(&x, holder);
    if (rc != 0) {
        if (holder > 0)
            rt_abandon(c, x.dirfd);
        rtstate_remove(c->root, c->id);
    }
out:
    if (x.tty >= 0)
        close(x.tty);
    if (x.dirfd >= 0)
        close(x.dirfd);
    rtconfig_free(&x.cfg);
    free(x.bundle);
    free(x.spec);
    return rc;
}

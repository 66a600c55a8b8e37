/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The holder's life: boot, share, create, report; serve; close and exit (holder.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "holder.h"
#include "rtfile.h"
#include "timeutil.h"

/* Boot, share and crun create are bounded by libuvm's own deadlines; the holder adds none. */

static void
log_line(int fd, const char *level, const char *vm_id, const char *msg)
{
    if (fd < 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%H:%M:%S", &tm);
    int len = (int)strlen(msg);
    while (len > 0 && msg[len - 1] == '\n')
        len--;
    dprintf(fd, "%s.%03ld %s %s%s%.*s\n", when, ts.tv_nsec / 1000000, level, vm_id ? vm_id : "",
            vm_id ? ": " : "", len, msg);
}

static void
uvm_log_cb(void *opaque, enum uvm_log_level level, const char *vm_id, const char *message)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    const struct holder_args *a = opaque;
    log_line(a->log_fd, (unsigned)level < 4 ? names[level] : "?", vm_id, message);
}

void
holder_log(struct holder *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) >= 0) {
        log_line(h->a->log_fd, "holder", NULL, msg);
        free(msg);
    }
    va_end(ap);
}

/* Tell `create` how it went: "ok <pid>" (then the pipe closes) or the error (the pipe closes
 * when the holder exits: create returns once it is gone). */
static void
report(struct holder *h, const char *msg)
{
    cleanup_free char *text = msg ? xstrdup(msg) : xasprintf("ok %d", (int)getpid());
    size_t n = strlen(text);
    ssize_t w = write(h->a->result_fd, text, n);
    (void)w;
    if (!msg)
        close(h->a->result_fd);
}

static int
boot(struct holder *h)
{
    const struct holder_args *a = h->a;
    struct uvm_options o = {
        .id = a->vm_id,
        .owner = "uvm-runtime",
        .memory_mb = a->cfg.memory_mb,
        .processor_count = a->cfg.cpus,
        .boot_files_path = a->cfg.boot_files,
        .has_preferred_rootfs_type = true,
        .preferred_rootfs_type = UVM_ROOTFS_VHD,
        /* only the VHD root on VPMem: the VM keeps qboot (docs/design.md, VPMem) */
        .has_vpmem_device_count = true,
        .vpmem_device_count = 1,
        .has_scsi_controller_count = true,
        .scsi_controller_count = 0,
    };
    int rc = uvm_create(&o, &h->vm);
    if (rc == 0)
        rc = uvm_start(h->vm);
    h->boot_us = now_us() - h->t0;
    return rc;
}

/* The bundle's root file system into the VM; *guest: where it is there (caller frees). */
static int
share_root(struct holder *h, char **guest)
{
    int64_t t = now_us();
    /* a read-only root with cached I/O, as hcsshim's DefaultVSMBOptions(readOnly) (bundle.c) */
    struct uvm_vsmb_options so = {.read_only = h->a->cfg.rootfs_ro,
                                  .cache_io = h->a->cfg.rootfs_ro};
    int rc = uvm_add_vsmb(h->vm, h->a->cfg.rootfs, NULL, &so);
    if (rc == 0)
        rc = uvm_get_vsmb_uvm_path(h->vm, h->a->cfg.rootfs, guest);
    h->share_us = now_us() - t;
    return rc;
}

static int
create_container(struct holder *h, const char *root)
{
    int64_t t = now_us();
    struct uvm_container_config cc = {.id = "c",
                                      .spec_json = h->a->cfg.spec,
                                      .root_path = root,
                                      .create_stdin = !h->a->cfg.terminal,
                                      .create_stdout = !h->a->cfg.terminal,
                                      .create_stderr = !h->a->cfg.terminal};
    int rc = uvm_create_container(h->vm, &cc, &h->ctr);
    h->create_us = now_us() - t;
    return rc;
}

/* Boot, share, create. On failure: everything undone, the message reported; exits. */
static void
setup(struct holder *h)
{
    cleanup_free char *guest_root = NULL;
    const char *what = "boot the utility VM";
    int rc = boot(h);
    if (rc == 0) {
        what = "share the root file system";
        rc = share_root(h, &guest_root);
    }
    if (rc == 0) {
        what = "create the container";
        rc = create_container(h, guest_root);
    }
    if (rc == 0) {
        holder_log(h, "ready: boot %.0f ms, share %.0f ms, create %.0f ms", h->boot_us / 1000.0,
                   h->share_us / 1000.0, h->create_us / 1000.0);
        return;
    }
    cleanup_free char *msg = xasprintf("%s: %s", what, uvm_last_error());
    holder_log(h, "failed: %s", msg);
    uvm_close(h->vm); /* QEMU and virtiofsd gone, runtime directory released */
    report(h, msg);
    _exit(1);
}

/* The VM ended without a delete: every relay stops, the waits fail, the stubs get 255. */
static void *
vm_watch(void *opaque)
{
    struct holder *h = opaque;
    int rc = uvm_wait(h->vm);
    pthread_mutex_lock(&h->lock);
    bool deleted = h->deleted;
    h->vm_gone = true;
    pthread_mutex_unlock(&h->lock);
    if (!deleted)
        holder_log(h, "the utility VM ended: %s", rc < 0 ? uvm_last_error() : "powered off");
    uint64_t one = 1;
    ssize_t w = write(h->dead_fd, &one, sizeof(one));
    (void)w;
    return NULL;
}

struct conn {
    struct holder *h;
    int fd;
};

static void *
conn_thread(void *opaque)
{
    struct conn *c = opaque;
    struct holder *h = c->h;
    int fd = c->fd;
    free(c);
    struct rtmsg *m = xmalloc(sizeof(*m));
    char err[256];
    int rc = rtmsg_recv(fd, m, 10000, err, sizeof(err));
    bool taken = false;
    if (rc == 0)
        taken = hreq_handle(h, fd, m);
    else if (rc == -EPROTO)
        holder_log(h, "refused a message: %s", err);
    if (rc == 0)
        rtmsg_close_fds(m);
    free(m);
    if (!taken)
        close(fd);
    pthread_mutex_lock(&h->lock);
    h->conns--;
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* Only our own user (root) may talk to the holder; the directory is 0700 as well. */
static bool
peer_ok(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == geteuid();
}

static void
accept_one(struct holder *h)
{
    int fd = accept4(h->a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    pthread_mutex_lock(&h->lock);
    bool full = h->conns >= HOLDER_MAX_CONNS;
    if (!full)
        h->conns++;
    pthread_mutex_unlock(&h->lock);
    if (full || !peer_ok(fd)) {
        holder_log(h, "refused a connection (%s)", full ? "too many" : "another user");
        if (!full) {
            pthread_mutex_lock(&h->lock);
            h->conns--;
            pthread_mutex_unlock(&h->lock);
        }
        close(fd);
        return;
    }
    struct conn *c = xmalloc(sizeof(*c));
    *c = (struct conn){h, fd};
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, conn_thread, c) != 0) {
        free(c);
        close(fd);
        pthread_mutex_lock(&h->lock);
        h->conns--;
        pthread_mutex_unlock(&h->lock);
    }
    pthread_attr_destroy(&attr);
}

static void
serve(struct holder *h)
{
    for (;;) {
        struct pollfd pf[2] = {{.fd = h->a->listen_fd, .events = POLLIN},
                               {.fd = h->done_fd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        if (pf[0].revents & POLLIN)
            accept_one(h);
    }
}

/* Phase times: in holder.log, and as one JSON line appended to $UVM_RUNTIME_TIMINGS. */
static void
write_timings(struct holder *h)
{
    holder_log(h,
               "timings: boot %.1f ms, share %.1f ms, create %.1f ms, start->exit %.1f ms, "
               "teardown %.1f ms",
               h->boot_us / 1e3, h->share_us / 1e3, h->create_us / 1e3, h->start_us / 1e3,
               h->teardown_us / 1e3);
    const char *path = getenv("UVM_RUNTIME_TIMINGS");
    if (!path || path[0] != '/')
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    dprintf(fd,
            "{\"id\":\"%s\",\"boot_ms\":%.1f,\"share_ms\":%.1f,\"create_ms\":%.1f,"
            "\"start_exit_ms\":%.1f,\"teardown_ms\":%.1f}\n",
            h->a->vm_id, h->boot_us / 1e3, h->share_us / 1e3, h->create_us / 1e3, h->start_us / 1e3,
            h->teardown_us / 1e3);
    close(fd);
}

void
holder_main(struct holder_args *a)
{
    static struct holder hs;
    struct holder *h = &hs;
    h->a = a;
    h->t0 = now_us();
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    pthread_mutex_init(&h->req_lock, NULL);
    h->dead_fd = eventfd(0, EFD_CLOEXEC);
    h->done_fd = eventfd(0, EFD_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "uvm-rt-holder");
    uvm_set_log_handler(uvm_log_cb, a, a->debug ? UVM_LOG_DEBUG : UVM_LOG_INFO);
    holder_log(h, "holder %d for container %s, VM %s", (int)getpid(), a->id, a->vm_id);
    setup(h);
    /* The init's stdio: relayed once it starts; its stub attaches as "init". */
    if (!hproc_add(h, "init", a->stdio, a->cfg.terminal)) {
        report(h, "internal error: no process record for the init");
        _exit(1);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, vm_watch, h) == 0)
        pthread_detach(t);
    report(h, NULL);
    serve(h);
    write_timings(h);
    holder_log(h, "exit");
    _exit(0);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * delete: the holder deletes the container, closes the VM (QEMU and virtiofsd gone) and exits;
 * this call returns after that, so the shim may unmount the root file system. When the holder
 * is gone (killed) or does not finish, its leftovers are removed here: the holder itself (by
 * pid and start time), the VM's processes, the VM's runtime directory (libuvm's sweep: mounts
 * detached, files removed). Then the state directory goes. --force of an unknown id is 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "rtconfig.h"
#include "rtfile.h"
#include "rtlog.h"
#include "rtstate.h"
#include "runtime.h"
#include "timeutil.h"
#include "uvm.h"

#define GONE_WAIT_MS 10000

/* Whether the cmdline of /proc/<pid> (NULs between arguments) has an argument containing a or
 * starting with b. */
static bool
cmdline_matches(const char *pid, const char *a, const char *b)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
    char *text = NULL;
    size_t n = 0;
    if (rt_read_file(AT_FDCWD, path, 1 << 20, 1, &text, &n) < 0)
        return false;
    bool hit = false;
    for (size_t off = 0; off < n && !hit; off += strlen(text + off) + 1)
        hit = strstr(text + off, a) || !strncmp(text + off, b, strlen(b));
    free(text);
    return hit;
}

/* Kill the VM's processes (QEMU: "-name guest=<vm_id>,...", virtiofsd: "--socket-path=<its
 * runtime directory>/..."); returns how many are still there. */
static int
kill_vm_processes(const char *vm_id, const char *dir, bool do_kill)
{
    cleanup_free char *name = xasprintf("guest=%s,", vm_id);
    cleanup_free char *sock = xasprintf("--socket-path=%s/%s/", dir, vm_id);
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (!cmdline_matches(e->d_name, name, sock))
            continue;
        found++;
        if (do_kill)
            kill(atoi(e->d_name), SIGKILL);
    }
    closedir(d);
    return found;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

void
rt_cleanup_vm(const char *vm_id, const char *dir)
{
    int64_t deadline = deadline_after_ms(GONE_WAIT_MS);
    int left = kill_vm_processes(vm_id, dir, true);
    while (left > 0 && now_us() < deadline) {
        sleep_ms(20);
        left = kill_vm_processes(vm_id, dir, true);
    }
    if (left > 0)
        rtlog_write("warning", "delete: %d processes of VM %s are still there", left, vm_id);
    if (setenv("UVM_RUNTIME_DIR", dir, 1) == 0 && uvm_sweep_runtime_dirs() < 0)
        rtlog_write("warning", "delete: sweep '%s': %s", dir, uvm_last_error());
}

/* Ask the holder to delete; 0 when it did and exited, 1 when it refused (logged), -1 when
 * there is no holder or it did not finish. */
static int
ask_holder(const struct rt_cmd *c, int dirfd)
{
    cleanup_close int s = rtstate_connect(dirfd);
    if (s < 0)
        return -1;
    struct rtmsg *m = xmalloc(sizeof(*m));
    char err[256] = "";
    int rc = rtmsg_send(s, RTMSG_DELETE, c->force ? RTMSG_F_FORCE : 0, 0, NULL, NULL, 0);
    if (rc == 0)
        rc = rtmsg_recv(s, m, RT_DELETE_TIMEOUT_MS, err, sizeof(err));
    int ret = -1;
    if (rc == 0 && m->type == RTMSG_ERR && m->arg != RTMSG_ERR_NOT_EXIST && !c->force) {
        ret = rtlog_error("%s", m->payload);
    } else if (rc == 0) {
        rtmsg_close_fds(m);
        /* the holder exits right after its answer: wait for the end of the connection */
        rc = rtmsg_recv(s, m, RT_DELETE_TIMEOUT_MS, err, sizeof(err));
        ret = rc == -ECONNRESET ? 0 : -1;
    } else {
        rtlog_write("warning", "delete %s: the holder did not answer: %s", c->id,
                    err[0] ? err : strerror(-rc));
    }
    if (rc == 0)
        rtmsg_close_fds(m);
    free(m);
    return ret;
}

static bool
holder_alive(const struct rt_state *s)
{
    return s->holder_pid > 0 && rt_proc_start(s->holder_pid) == s->holder_start;
}

/* The holder of state s if it still runs after grace_ms: killed and waited for (it is not our
 * child; a zombie counts as gone). */
static void
kill_holder(const struct rt_state *s, unsigned grace_ms)
{
    int64_t deadline = deadline_after_ms(grace_ms);
    while (holder_alive(s) && now_us() < deadline)
        sleep_ms(10);
    if (!holder_alive(s))
        return;
    rtlog_write("warning", "delete %s: killing its holder %d", s->id, (int)s->holder_pid);
    kill(s->holder_pid, SIGKILL);
    deadline = deadline_after_ms(GONE_WAIT_MS);
    while (holder_alive(s) && now_us() < deadline)
        sleep_ms(10);
}

int
rt_delete(const struct rt_cmd *c)
{
    cleanup_close int dirfd = rtstate_open(c->root, c->id);
    if (dirfd == -ENOENT)
        return c->force ? 0 : rtlog_error("container %s does not exist", c->id);
    if (dirfd < 0)
        return rtlog_error("delete %s: state directory: %s", c->id, strerror(-dirfd));
    struct rt_state s = {0};
    char err[256];
    bool have_state = rtstate_read(dirfd, &s, err, sizeof(err)) == 0;
    int rc = ask_holder(c, dirfd);
    if (rc == 1) {
        rtstate_free(&s);
        return 1;
    }
    char vm_id[64];
    rtconfig_vm_id(c->root, c->id, vm_id);
    if (have_state) /* after its answer the holder exits at once: a short grace */
        kill_holder(&s, rc == 0 ? 2000 : 0);
    /* after a clean delete there is nothing left; after a killed holder, this finds it */
    rt_cleanup_vm(vm_id, have_state ? s.uvm_runtime_dir : rt_uvm_runtime_dir());
    rtstate_free(&s);
    int r = rtstate_remove(c->root, c->id);
    if (r < 0)
        return rtlog_error("delete %s: remove the state directory: %s", c->id, strerror(-r));
    return 0;
}

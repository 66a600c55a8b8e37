/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The holder's answers to the runtime calls (rtmsg.h): one control request at a time. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "holder.h"
#include "rtconfig.h"
#include "rtfile.h"
#include "rtlog.h"
#include "timeutil.h"

#define DELETE_WAIT_MS 10000 /* processes' output and exit after the container's delete */

static bool reply_err(int fd, enum rtmsg_err kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
reply_err(int fd, enum rtmsg_err kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    rtmsg_send(fd, RTMSG_ERR, 0, kind, msg ? msg : "out of memory", NULL, 0);
    free(msg);
    return false;
}

static bool
reply_ok(int fd, const char *payload)
{
    rtmsg_send(fd, RTMSG_OK, 0, 0, payload, NULL, 0);
    return false;
}

/* The init's state as runc names it. */
static const char *
init_status(struct holder *h, struct hproc *init)
{
    if (h->vm_gone || init->exited)
        return "stopped";
    return init->running ? "running" : "created";
}

static bool
do_start(struct holder *h, int fd)
{
    struct hproc *init = hproc_init(h);
    pthread_mutex_lock(&h->lock);
    const char *st = init_status(h, init);
    pthread_mutex_unlock(&h->lock);
    if (strcmp(st, "created"))
        return reply_err(fd, RTMSG_ERR_FAILED, "cannot start a container that is %s", st);
    struct uvm_process *p = NULL;
    int64_t t = now_us();
    int rc = uvm_container_start(h->ctr, &p);
    if (rc < 0)
        return reply_err(fd, RTMSG_ERR_FAILED, "start: %s", uvm_last_error());
    pthread_mutex_lock(&h->lock);
    init->p = p;
    h->start_us = -t; /* completed at the init's exit (teardown) */
    pthread_mutex_unlock(&h->lock);
    rc = hproc_run(h, init);
    if (rc < 0)
        return reply_err(fd, RTMSG_ERR_FAILED, "start: the init's stdio: %s", uvm_last_error());
    return reply_ok(fd, NULL);
}

static bool
do_exec(struct holder *h, int fd, struct rtmsg *m)
{
    struct hproc *init = hproc_init(h);
    pthread_mutex_lock(&h->lock);
    bool running = init->running && !h->vm_gone;
    unsigned n = ++h->next_exec;
    pthread_mutex_unlock(&h->lock);
    if (!running)
        return reply_err(fd, RTMSG_ERR_NOT_RUNNING,
                         "cannot exec in a container that is not "
                         "running");
    cleanup_free char *text = NULL;
    if (lseek(m->fds[3], 0, SEEK_SET) < 0 || rt_read_fd(m->fds[3], RT_CONFIG_MAX, &text, NULL) < 0)
        return reply_err(fd, RTMSG_ERR_FAILED, "exec: the process file cannot be read");
    char name[RTMSG_NAME_MAX + 1];
    snprintf(name, sizeof(name), "e%u", n);
    json_t *pj = json_loads(text, 0, NULL);
    bool terminal = json_is_true(json_object_get(pj, "terminal"));
    json_decref(pj);
    struct uvm_container_process_config pc = {.process_json = text,
                                              .create_stdin = !terminal,
                                              .create_stdout = !terminal,
                                              .create_stderr = !terminal};
    struct uvm_process *p = NULL;
    if (uvm_container_exec(h->ctr, &pc, &p) < 0)
        return reply_err(fd, RTMSG_ERR_FAILED, "%s", uvm_last_error());
    /* with a terminal: fds 0 and 1 are the host pty's slave, 2 is not used */
    int host[3] = {m->fds[0], m->fds[1], terminal ? -1 : m->fds[2]};
    struct hproc *hp = hproc_add(h, name, host, terminal);
    if (hp)
        m->fds[0] = m->fds[1] = -1; /* taken */
    if (hp && !terminal)
        m->fds[2] = -1;
    if (!hp) {
        uvm_process_signal(p, 9);
        uvm_process_close(p);
        return reply_err(fd, RTMSG_ERR_FAILED, "exec: too many processes (%d)", HOLDER_MAX_PROCS);
    }
    hp->p = p;
    if (hproc_run(h, hp) < 0) {
        uvm_process_signal(p, 9);
        return reply_err(fd, RTMSG_ERR_FAILED, "exec: the process's stdio: %s", uvm_last_error());
    }
    hproc_watch_attach(h, hp);
    holder_log(h, "exec %s: guest pid %d", name, uvm_process_pid(p));
    return reply_ok(fd, name);
}

static bool
do_kill(struct holder *h, int fd, const struct rtmsg *m)
{
    struct hproc *init = hproc_init(h);
    pthread_mutex_lock(&h->lock);
    bool stopped = !strcmp(init_status(h, init), "stopped");
    pthread_mutex_unlock(&h->lock);
    bool all = m->flags & RTMSG_F_ALL;
    if (stopped)
        return all ? reply_ok(fd, NULL) /* nothing left to kill */
                   : reply_err(fd, RTMSG_ERR_NOT_RUNNING, RT_TEXT_NOT_RUNNING);
    if (uvm_container_signal(h->ctr, m->arg) < 0) {
        pthread_mutex_lock(&h->lock);
        stopped = !strcmp(init_status(h, init), "stopped");
        pthread_mutex_unlock(&h->lock);
        if (stopped)
            return reply_err(fd, RTMSG_ERR_NOT_RUNNING, RT_TEXT_NOT_RUNNING);
        return reply_err(fd, RTMSG_ERR_FAILED, "kill: %s", uvm_last_error());
    }
    holder_log(h, "signal %d%s", m->arg, all ? " (all)" : "");
    return reply_ok(fd, NULL);
}

static bool
do_delete(struct holder *h, int fd, const struct rtmsg *m)
{
    struct hproc *init = hproc_init(h);
    pthread_mutex_lock(&h->lock);
    const char *st = init_status(h, init);
    bool refuse = !(m->flags & RTMSG_F_FORCE) && !strcmp(st, "running");
    if (!refuse)
        h->deleted = true;
    if (init->exited && h->start_us < 0)
        h->start_us += init->exited_us;
    pthread_mutex_unlock(&h->lock);
    if (refuse)
        return reply_err(fd, RTMSG_ERR_FAILED, "cannot delete container %s that is not stopped: %s",
                         h->a->id, st);
    int64_t t = now_us();
    pthread_mutex_lock(&h->lock);
    bool running = h->live_threads > 0;
    pthread_mutex_unlock(&h->lock);
    /* Processes still running get their status from crun delete (SIGKILL: 137). Otherwise the
     * VM goes at once: crun delete in a VM about to be killed would only cost time. */
    if (running && uvm_container_delete(h->ctr) < 0)
        holder_log(h, "delete the container: %s", uvm_last_error());
    if (running && !hproc_wait_all(h, DELETE_WAIT_MS)) {
        holder_log(h, "processes still running after the delete: stopping their relays");
        uint64_t one = 1;
        ssize_t w = write(h->dead_fd, &one, sizeof(one));
        (void)w;
        hproc_wait_all(h, DELETE_WAIT_MS);
    }
    uvm_close(h->vm); /* kills QEMU; returns when QEMU and virtiofsd are gone */
    h->vm = NULL;
    uvm_container_close(h->ctr); /* its VM closed: frees only */
    h->ctr = NULL;
    h->teardown_us = now_us() - t;
    if (h->start_us < 0)
        h->start_us = 0;
    holder_log(h, "deleted (%s): teardown %.1f ms", st, h->teardown_us / 1e3);
    reply_ok(fd, NULL);
    uint64_t one = 1;
    ssize_t w = write(h->done_fd, &one, sizeof(one));
    (void)w;
    return true; /* fd stays open: the caller sees its end when the holder has exited */
}

static bool
do_state(struct holder *h, int fd)
{
    struct hproc *init = hproc_init(h);
    pthread_mutex_lock(&h->lock);
    const char *st = init_status(h, init);
    pthread_mutex_unlock(&h->lock);
    return reply_ok(fd, st);
}

/* The stubs' host pids of the processes still running: "[1,2]". */
static bool
do_ps(struct holder *h, int fd)
{
    size_t cap = 2 + HOLDER_MAX_PROCS * 12 + 1, n = 0;
    cleanup_free char *out = xmalloc(cap);
    out[n++] = '[';
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nprocs; i++) {
        const struct hproc *p = h->procs[i];
        if (!p->exited && p->stub_pid > 0 && !h->vm_gone && n + 13 < cap &&
            n + 13 < RTMSG_MAX_PAYLOAD)
            n += (size_t)snprintf(out + n, cap - n, "%s%d", n > 1 ? "," : "", (int)p->stub_pid);
    }
    pthread_mutex_unlock(&h->lock);
    out[n++] = ']';
    out[n] = '\0';
    return reply_ok(fd, out);
}

static bool
do_attach(struct holder *h, int fd, const struct rtmsg *m)
{
    struct hproc *p = hproc_get(h, m->payload);
    if (!p)
        return reply_err(fd, RTMSG_ERR_NOT_EXIST, "process %s does not exist", m->payload);
    hproc_stub(h, p, fd, (pid_t)m->arg);
    hproc_put(h, p);
    return true;
}

bool
hreq_handle(struct holder *h, int fd, struct rtmsg *m)
{
    if (m->type == RTMSG_ATTACH)
        return do_attach(h, fd, m);
    pthread_mutex_lock(&h->req_lock);
    pthread_mutex_lock(&h->lock);
    bool deleted = h->deleted;
    pthread_mutex_unlock(&h->lock);
    bool taken = false;
    if (deleted)
        reply_err(fd, RTMSG_ERR_NOT_EXIST, "container %s does not exist", h->a->id);
    else if (m->type == RTMSG_START)
        taken = do_start(h, fd);
    else if (m->type == RTMSG_EXEC)
        taken = do_exec(h, fd, m);
    else if (m->type == RTMSG_KILL)
        taken = do_kill(h, fd, m);
    else if (m->type == RTMSG_DELETE)
        taken = do_delete(h, fd, m);
    else if (m->type == RTMSG_STATE)
        taken = do_state(h, fd);
    else if (m->type == RTMSG_PS)
        taken = do_ps(h, fd);
    else
        reply_err(fd, RTMSG_ERR_FAILED, "unexpected %s request", rtmsg_type_name(m->type));
    pthread_mutex_unlock(&h->req_lock);
    return taken;
}

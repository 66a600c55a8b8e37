/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "container.h"
#include "crun.h"
#include "ctrconf.h"
#include "log.h"
#include "process.h"

#define MAX_SIGNAL 64

enum ctr_state { CTR_CREATING, CTR_CREATED, CTR_RUNNING, CTR_STOPPED, CTR_DELETING };
static const char *const state_names[] = {"being created", "created", "running", "stopped",
                                          "being deleted"};

struct container {
    struct container *next;
    char *id;
    char *bundle;
    enum ctr_state state;
    enum ctr_state before_delete; /* restored when a delete fails */
    pid_t init_pid;               /* 0 until crun create has succeeded */
    bool own_pid_ns;
    unsigned busy;                /* crun calls in flight that a request waits for */
    struct request *delete_waits; /* a delete that came while busy: run when the calls end */
    unsigned seq;                 /* names the files of each call */
};

enum op_kind { OP_CREATE, OP_EXEC, OP_KILL_ALL, OP_DELETE };
static const char *const op_names[] = {"create", "exec", "kill", "delete"};

/* One crun call in flight. */
struct op {
    enum op_kind kind;
    char *id;            /* the container's (it is looked up again when crun is done) */
    struct request *req; /* answered when crun is done; NULL: nobody waits */
    int fds[3];          /* our ends of the new process's stdio pipes, -1 */
    uint32_t handle;
    char *cmdline;       /* create, exec: the new process's */
    char *pid_file;      /* create, exec */
    char *process_file;  /* exec */
    bool terminal;       /* create, exec: the process gets a terminal through... */
    bool input;          /* (with stdin relayed) */
    int console_fd;      /* ...this --console-socket listener, -1 */
    char *console_path;
};

static struct container *containers;

static struct container *
find(const char *id)
{
    for (struct container *c = containers; c; c = c->next)
        if (!strcmp(c->id, id))
            return c;
    return NULL;
}

static void
container_free(struct container *c)
{
    for (struct container **cp = &containers; *cp; cp = &(*cp)->next) {
        if (*cp == c) {
            *cp = c->next;
            break;
        }
    }
    free(c->id);
    free(c->bundle);
    free(c);
}

static char *
bundle_file(const struct container *c, const char *name)
{
    return xasprintf("%s/%s", c->bundle, name);
}

static void
op_free(struct op *op)
{
    for (int i = 0; i < 3; i++)
        if (op->fds[i] >= 0)
            close(op->fds[i]);
    if (op->pid_file)
        unlink(op->pid_file);
    if (op->process_file)
        unlink(op->process_file);
    if (op->console_fd >= 0)
        close(op->console_fd);
    if (op->console_path)
        unlink(op->console_path);
    free(op->console_path);
    free(op->pid_file);
    free(op->process_file);
    free(op->cmdline);
    free(op->id);
    free(op);
}

/* Answer op's request with crun's failure: its logged error, else how it ended. */
static void
op_fail(struct bridge *b, struct op *op, int status, const char *error)
{
    if (!op->req)
        return;
    request_fail(op->req, "container %s: crun %s: %s", op->id, op_names[op->kind],
                 error ? error : crun_status_text(status));
    bridge_reply(b, op->req, -EINVAL);
    op->req = NULL;
}

/* A pid file crun wrote: 1..INT32_MAX in decimal, nothing else but a newline. */
static pid_t
read_pid_file(const char *path)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char buf[24];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || end == buf || (*end && strcmp(end, "\n")) || v <= 0 || v > INT32_MAX)
        return -1;
    return (pid_t)v;
}

static void on_done(struct bridge *b, void *ctx, int status, const char *error);

/* Start crun for op. On failure op is freed (its request, if any, gets the error text and
 * stays the caller's to answer) and -EINVAL returned. */
static int
op_run(struct container *c, struct op *op, const char *const *args, const int stdio[3])
{
    cleanup_free char *name = xasprintf("crun-%u.log", ++c->seq);
    cleanup_free char *log_path = bundle_file(c, name);
    int rc = crun_spawn(args, log_path, stdio, on_done, op);
    if (rc < 0) {
        const char *why = rc == -ENOENT ? "crun (" CRUN_PATH ") is not in this guest's root "
                                          "file system: boot the VM from rootfs.vhd"
                                        : strerror(-rc);
        if (op->req)
            rc = request_fail(op->req, "container %s: crun %s: %s", c->id, op_names[op->kind],
                              why);
        else
            log_warn("container %s: crun %s: %s", c->id, op_names[op->kind], why);
        op->req = NULL;
        op_free(op);
        return rc;
    }
    if (op->req)
        c->busy++;
    return 0;
}

static struct op *
op_new(enum op_kind kind, const char *id, struct request *req)
{
    struct op *op = xcalloc(1, sizeof(*op));
    op->kind = kind;
    op->id = xstrdup(id);
    op->req = req;
    for (int i = 0; i < 3; i++)
        op->fds[i] = -1;
    op->console_fd = -1;
    return op;
}

/* The new process's stdio. Pipes: child_fds get crun's (and so the process's) ends, op->fds
 * ours. A terminal: a --console-socket listener (named after the call, in the bundle) and
 * crun's stdio /dev/null. */
static int
make_stdio(struct request *req, const struct ctr_stdio *s, struct container *c, struct op *op,
           int child_fds[3])
{
    for (int i = 0; i < 3; i++)
        child_fds[i] = -1;
    op->handle = s->handle;
    if (s->terminal) {
        op->terminal = true;
        op->input = s->pipes[0];
        cleanup_free char *name = xasprintf("console-%u.sock", ++c->seq);
        op->console_path = bundle_file(c, name);
        op->console_fd = crun_console_listen(op->console_path);
        if (op->console_fd < 0)
            return request_fail(req, "container %s: console socket %s: %s", c->id,
                                op->console_path, strerror(-op->console_fd));
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        if (!s->pipes[i])
            continue;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return request_fail(req, "container %s: pipe: %s", op->id, strerror(errno));
        child_fds[i] = p[i == 0 ? 0 : 1];
        op->fds[i] = p[i == 0 ? 1 : 0];
    }
    return 0;
}

/* The process crun started for op (its pipes, or the terminal crun handed over) becomes ours. */
static void
adopt(struct bridge *b, struct op *op, pid_t pid, process_exit_fn *on_exit)
{
    if (!op->terminal) {
        process_adopt(b, pid, op->handle, op->fds, op->cmdline, on_exit);
        for (int i = 0; i < 3; i++)
            op->fds[i] = -1; /* taken */
        return;
    }
    int master = crun_console_take(op->console_fd);
    if (master < 0) { /* not crun's way: the process runs, its terminal is not relayed */
        log_error("container %s: no terminal from crun's console socket: %s", op->id,
                  strerror(-master));
        const int none[3] = {-1, -1, -1};
        process_adopt(b, pid, 0, none, op->cmdline, on_exit);
        return;
    }
    process_adopt_tty(b, pid, op->handle, master, op->input, op->cmdline, on_exit);
}

static void
close_fds(int fds[3])
{
    for (int i = 0; i < 3; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

/* ---- the init's exit ---------------------------------------------------------------------- */

static void
on_init_exit(struct bridge *b, pid_t pid, int exit_code)
{
    struct container *c = containers;
    while (c && c->init_pid != pid)
        c = c->next;
    if (!c || c->state == CTR_DELETING)
        return;
    log_debug("container %s: init %d exited (%d)", c->id, (int)pid, exit_code);
    c->state = CTR_STOPPED;
    if (c->own_pid_ns)
        return; /* the kernel killed the rest of its PID namespace */
    /* No PID namespace of its own: what the init left behind is killed (containerd's shim
     * and hcsshim's GCS do the same). Nobody waits for it. */
    const char *args[] = {"kill", "--all", c->id, "KILL", NULL};
    const int none[3] = {-1, -1, -1};
    op_run(c, op_new(OP_KILL_ALL, c->id, NULL), args, none);
}

/* ---- completions ---------------------------------------------------------------------------- */

/* Undo a create that failed: config.json, the bundle (unless the host's root file system is
 * in it: the host removes that), the record. */
static void
forget_failed(struct container *c)
{
    cleanup_free char *config = bundle_file(c, "config.json");
    unlink(config);
    rmdir(c->bundle);
    container_free(c);
}

static void
create_done(struct bridge *b, struct container *c, struct op *op, int status, const char *error)
{
    pid_t pid = status == 0 ? read_pid_file(op->pid_file) : -1;
    if (status == 0 && pid < 0)
        error = "no valid pid in its pid file";
    if (pid < 0) {
        op_fail(b, op, status, error);
        forget_failed(c);
        return;
    }
    free(op->pid_file); /* kept: crun's state refers to it */
    op->pid_file = NULL;
    c->init_pid = pid;
    c->state = CTR_CREATED;
    adopt(b, op, pid, on_init_exit);
    op->req->result = json_pack("{s:i}", "ProcessId", (int)pid);
    bridge_reply(b, op->req, 0);
    op->req = NULL;
}

static void
exec_done(struct bridge *b, struct op *op, int status, const char *error)
{
    pid_t pid = status == 0 ? read_pid_file(op->pid_file) : -1;
    if (status == 0 && pid < 0)
        error = "no valid pid in its pid file";
    if (pid < 0) {
        op_fail(b, op, status, error);
        return;
    }
    adopt(b, op, pid, NULL);
    op->req->result = json_pack("{s:i}", "ProcessId", (int)pid);
    bridge_reply(b, op->req, 0);
    op->req = NULL;
}

/* Remove what the agent put in the bundle, and the bundle when nothing else is left. */
static void
bundle_clean(const struct container *c)
{
    static const char *const names[] = {"config.json", "init.pid"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        cleanup_free char *path = bundle_file(c, names[i]);
        unlink(path);
    }
    if (rmdir(c->bundle) < 0 && errno != ENOENT)
        log_debug("container %s: bundle %s kept: %s", c->id, c->bundle, strerror(errno));
}

/* What a finished crun call means for its container (which still exists). */
static void
on_done_kind(struct bridge *b, struct container *c, struct op *op, int status, const char *error)
{
    switch (op->kind) {
    case OP_CREATE:
        create_done(b, c, op, status, error);
        break;
    case OP_EXEC:
        exec_done(b, op, status, error);
        break;
    case OP_KILL_ALL:
        if (!op->req && status != 0)
            log_debug("container %s: crun kill --all: %s", c->id,
                      error ? error : crun_status_text(status));
        if (op->req && status == 0) {
            bridge_reply(b, op->req, 0);
            op->req = NULL;
        }
        break;
    case OP_DELETE:
        if (status != 0) {
            c->state = c->before_delete;
            break;
        }
        bundle_clean(c);
        container_free(c);
        bridge_reply(b, op->req, 0);
        op->req = NULL;
        break;
    }
    op_fail(b, op, status, error); /* when still unanswered: a failure */
}

static int start_delete(struct container *c, struct request *req);

/* A delete that waited for the container's crun calls: run it now, or, when the container went
 * with its failed create (or an earlier delete), it is done. */
static void
run_waiting_delete(struct bridge *b, const char *id, struct request *req)
{
    struct container *c = find(id);
    if (!c) {
        log_info("container %s: gone before its waiting delete ran", id);
        bridge_reply(b, req, 0);
        return;
    }
    int rc = start_delete(c, req);
    if (rc != BRIDGE_DEFERRED)
        bridge_reply(b, req, rc);
}

static void
on_done(struct bridge *b, void *ctx, int status, const char *error)
{
    struct op *op = ctx;
    struct container *c = find(op->id);
    if (c && op->req)
        c->busy--;
    if (!c) { /* deleted meanwhile (a kill --all after the init's exit) */
        op_free(op);
        return;
    }
    struct request *waiting = NULL;
    if (!c->busy)
        waiting = steal_ptr(&c->delete_waits);
    on_done_kind(b, c, op, status, error);
    if (waiting)
        run_waiting_delete(b, op->id, waiting);
    op_free(op);
}

/* ---- requests ------------------------------------------------------------------------------- */

/* The bundle directory (it may exist: the host may have put the root file system in it) and
 * config.json, written whole before crun can read it. */
static int
write_bundle(struct request *req, const struct ctr_create *cc)
{
    if (mkdir("/run/gcs", 0755) < 0 && errno != EEXIST)
        return request_fail(req, "container %s: mkdir /run/gcs: %s", cc->id, strerror(errno));
    if (mkdir(CTR_BUNDLE_ROOT, 0755) < 0 && errno != EEXIST)
        return request_fail(req, "container %s: mkdir " CTR_BUNDLE_ROOT ": %s", cc->id,
                            strerror(errno));
    struct stat st;
    if (mkdir(cc->bundle, 0700) < 0 &&
        (errno != EEXIST || lstat(cc->bundle, &st) < 0 || !S_ISDIR(st.st_mode)))
        return request_fail(req, "container %s: bundle %s: %s", cc->id, cc->bundle,
                            errno == EEXIST ? "not a directory" : strerror(errno));
    cleanup_free char *tmp = xasprintf("%s/config.json.tmp", cc->bundle);
    cleanup_free char *path = xasprintf("%s/config.json", cc->bundle);
    if (json_dump_file(cc->spec, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0) {
        int err = errno;
        unlink(tmp);
        return request_fail(req, "container %s: write %s: %s", cc->id, path, strerror(err));
    }
    return 0;
}

static int
create_container(struct bridge *b, struct request *req, struct ctr_create *cc)
{
    if (find(cc->id))
        return request_fail(req, "container %s already exists", cc->id);
    int rc = process_check_handle(req, cc->stdio.handle);
    if (rc == 0)
        rc = write_bundle(req, cc);
    if (rc < 0)
        return rc;
    struct container *c = xcalloc(1, sizeof(*c));
    c->id = xstrdup(cc->id);
    c->bundle = xstrdup(cc->bundle);
    c->state = CTR_CREATING;
    c->own_pid_ns = cc->own_pid_ns;
    c->next = containers;
    containers = c;

    struct op *op = op_new(OP_CREATE, c->id, req);
    op->cmdline = steal_ptr(&cc->cmdline);
    op->pid_file = bundle_file(c, "init.pid");
    int child[3];
    rc = make_stdio(req, &cc->stdio, c, op, child);
    if (rc < 0) {
        op->req = NULL;
        op_free(op);
    } else {
        const char *args[10] = {"create", "--bundle", c->bundle, "--pid-file", op->pid_file};
        size_t n = 5;
        if (crun_no_pivot())
            args[n++] = "--no-pivot"; /* an initramfs root cannot be pivoted away from */
        if (op->console_path) {
            args[n++] = "--console-socket";
            args[n++] = op->console_path;
        }
        args[n++] = c->id;
        rc = op_run(c, op, args, child);
    }
    close_fds(child);
    if (rc < 0) {
        forget_failed(c);
        return rc;
    }
    return BRIDGE_DEFERRED;
}

int
container_handle_create(struct bridge *b, struct request *req)
{
    struct ctr_create cc = {0};
    int rc = ctr_create_parse(req, &cc);
    if (rc == 0)
        rc = create_container(b, req, &cc);
    ctr_create_release(&cc);
    return rc;
}

/* The container a request names, in a state that allows `what`. */
static int
find_for(struct request *req, const char *what, struct container **out)
{
    struct container *c = find(req->container_id);
    if (!c)
        return request_fail(req, "%s: container %s not found", what, req->container_id);
    if (c->state == CTR_CREATING || c->state == CTR_DELETING)
        return request_fail(req, "%s: container %s is %s", what, c->id, state_names[c->state]);
    *out = c;
    return 0;
}

static int
start_init(struct container *c, struct request *req)
{
    if (c->state != CTR_CREATED)
        return request_fail(req, "start: container %s is %s, not created", c->id,
                            state_names[c->state]);
    int rc = crun_start_init(c->id);
    if (rc < 0)
        return request_fail(req, "container %s: start: %s", c->id,
                            rc == -ENOENT  ? "the init is not waiting to start"
                            : rc == -ENXIO ? "the init is gone"
                                           : strerror(-rc));
    if (c->state == CTR_CREATED) /* (the init may have exited already: stopped) */
        c->state = CTR_RUNNING;
    req->result = json_pack("{s:i}", "ProcessId", (int)c->init_pid);
    return 0;
}

/* `crun exec -d --process <file>`: the process JSON goes to a file of the bundle. */
static int
exec_process(struct container *c, struct request *req, struct ctr_exec *e)
{
    int rc = process_check_handle(req, e->stdio.handle);
    if (rc < 0)
        return rc;
    struct op *op = op_new(OP_EXEC, c->id, req);
    op->cmdline = steal_ptr(&e->cmdline);
    unsigned n = ++c->seq;
    cleanup_free char *pname = xasprintf("exec-%u.json", n), *pidname = xasprintf("exec-%u.pid", n);
    op->process_file = bundle_file(c, pname);
    op->pid_file = bundle_file(c, pidname);
    int child[3] = {-1, -1, -1};
    if (json_dump_file(e->process, op->process_file, JSON_COMPACT) < 0)
        rc = request_fail(req, "exec in container %s: write %s: %s", c->id, op->process_file,
                          strerror(errno));
    if (rc == 0)
        rc = make_stdio(req, &e->stdio, c, op, child);
    if (rc < 0) {
        op->req = NULL;
        op_free(op);
        close_fds(child);
        return rc;
    }
    const char *args[10] = {"exec", "--detach", "--process", op->process_file, "--pid-file",
                            op->pid_file};
    size_t k = 6;
    if (op->console_path) {
        args[k++] = "--console-socket";
        args[k++] = op->console_path;
    }
    args[k++] = c->id;
    rc = op_run(c, op, args, child);
    close_fds(child);
    return rc < 0 ? rc : BRIDGE_DEFERRED;
}

int
container_handle_execute(struct bridge *b, struct request *req)
{
    if (!req->container_id)
        return process_handle_execute(b, req);
    struct ctr_exec e = {0};
    struct container *c = NULL;
    int rc = ctr_exec_parse(req, &e);
    if (rc == 0)
        rc = find_for(req, e.process ? "exec" : "start", &c);
    if (rc == 0)
        rc = e.process ? exec_process(c, req, &e) : start_init(c, req);
    ctr_exec_release(&e);
    return rc;
}

int
container_handle_signal(struct bridge *b, struct request *req)
{
    if (!req->container_id)
        return process_handle_signal(b, req);
    uint64_t pid = 0, sig = 0;
    json_t *opts = NULL;
    struct container *c = NULL;
    int rc = req_uint(req, req->body, "ProcessId", true, 1, INT32_MAX, &pid);
    if (rc == 0)
        rc = req_object(req, req->body, "Options", true, &opts);
    if (rc == 0)
        rc = req_uint(req, opts, "Signal", true, 0, MAX_SIGNAL, &sig);
    if (rc == 0)
        rc = find_for(req, "signal", &c);
    if (rc < 0)
        return rc;
    if ((pid_t)pid != c->init_pid || c->own_pid_ns || !process_running(c->init_pid))
        return process_signal(req, (pid_t)pid, (int)sig);
    /* The init of a container without a PID namespace of its own: the signal goes to every
     * process of the container (its cgroup), as containerd's `kill --all` does. */
    char signum[8];
    snprintf(signum, sizeof(signum), "%d", (int)sig);
    const char *args[] = {"kill", "--all", c->id, signum, NULL};
    const int none[3] = {-1, -1, -1};
    rc = op_run(c, op_new(OP_KILL_ALL, c->id, req), args, none);
    return rc < 0 ? rc : BRIDGE_DEFERRED;
}

int
container_handle_delete(struct bridge *b, struct request *req)
{
    if (!req->container_id || !ctr_id_valid(req->container_id))
        return request_fail(req, "invalid request: \"ContainerId\" must name a container");
    struct container *c = find(req->container_id);
    if (!c)
        return request_fail(req, "delete: container %s not found", req->container_id);
    /* Being created or deleted, or running a crun call (e.g. a create the host stopped waiting
     * for): the delete runs once the calls end. */
    if (c->busy) {
        if (c->delete_waits)
            return request_fail(req, "delete: container %s already has a delete waiting for its "
                                     "%u crun calls in flight",
                                c->id, c->busy);
        log_info("container %s: the delete waits for %u crun calls in flight", c->id, c->busy);
        c->delete_waits = req;
        return BRIDGE_DEFERRED;
    }
    return start_delete(c, req);
}

static int
start_delete(struct container *c, struct request *req)
{
    const char *args[] = {"delete", "--force", c->id, NULL};
    const int none[3] = {-1, -1, -1};
    int rc = op_run(c, op_new(OP_DELETE, c->id, req), args, none);
    if (rc < 0)
        return rc;
    c->before_delete = c->state;
    c->state = CTR_DELETING;
    return BRIDGE_DEFERRED;
}

json_t *
container_list(void)
{
    json_t *list = json_array();
    for (struct container *c = containers; c; c = c->next)
        json_array_append_new(list, json_pack("{s:s, s:s, s:i}", "Id", c->id, "State",
                                              state_names[c->state], "InitProcessId",
                                              (int)c->init_pid));
    return list;
}

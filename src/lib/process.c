/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Processes inside the guest: exec, stdio or a terminal, signal, resize, wait. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "answer.h"
#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "options.h"
#include "process.h"
#include "proto.h"
#include "timeutil.h"
#include "vm.h"

#define MAX_ARGS 4096

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "TERM=xterm",
    NULL,
};

struct uvm_process {
    struct uvm *vm;
    struct bridge *bridge;
    uint32_t handle;
    int pid;
    char *container_id; /* the container it runs in (sent with its requests), NULL: none */
    _Atomic unsigned refs; /* the caller's, and the container's for an init */
    int user_fds[3];
    bool terminal;
    int terminal_fd; /* the user's end of the terminal until handed out, -1 */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool waiting; /* one thread has a WaitForProcess on the wire */
    bool exited;
    int exit_code;
    int wait_rc;
    char *wait_msg;
};

static json_t *
exec_request(const struct uvm_process_config *cfg, uint32_t handle)
{
    json_t *args = json_array();
    for (size_t i = 0; cfg->argv[i]; i++)
        json_array_append_new(args, json_string(cfg->argv[i]));
    json_t *env = json_object();
    for (const char *const *e = cfg->env ? cfg->env : default_env; *e; e++) {
        const char *eq = strchr(*e, '=');
        cleanup_free char *key = strndup(*e, (size_t)(eq - *e));
        json_object_set_new(env, key, json_string(eq + 1));
    }
    /* A terminal: input and output streams, stderr merged into the output. */
    const bool t = cfg->terminal;
    json_t *params = json_pack("{s:o, s:o, s:s, s:b, s:b, s:b}", "CommandArgs", args,
                               "Environment", env, "WorkingDirectory",
                               cfg->working_dir ? cfg->working_dir : "/", "CreateStdInPipe",
                               t || cfg->create_stdin, "CreateStdOutPipe", t || cfg->create_stdout,
                               "CreateStdErrPipe", !t && cfg->create_stderr);
    if (t) {
        json_object_set_new(params, "EmulateConsole", json_true());
        json_object_set_new(params, "ConsoleSize",
                            json_pack("[i, i]", (int)cfg->terminal_rows, (int)cfg->terminal_cols));
    }
    if (cfg->network_namespace)
        json_object_set_new(params, "NetworkNamespace", json_string(cfg->network_namespace));
    return json_pack("{s:{s:o, s:i}}", "Settings", "ProcessParameters", params, "StdioHandle",
                     (int)handle);
}

static int
validate(const struct uvm_process_config *cfg)
{
    if (!cfg || !cfg->argv || !cfg->argv[0] || !cfg->argv[0][0])
        return uvm_error(UVM_E_INVALID_ARGUMENT, "exec: argv must name a command");
    for (size_t n = 0; cfg->argv[n]; n++) {
        json_t *s = n < MAX_ARGS ? json_string(cfg->argv[n]) : NULL; /* NULL: not UTF-8 */
        if (!s)
            return uvm_error(UVM_E_INVALID_ARGUMENT, "exec: too many or non-UTF-8 arguments");
        json_decref(s);
    }
    for (const char *const *e = cfg->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        json_t *s = json_string(*e);
        json_decref(s);
        if (!eq || eq == *e || !s)
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "exec: environment entry '%s' is not KEY=VALUE", *e);
    }
    json_t *wd = cfg->working_dir ? json_string(cfg->working_dir) : NULL;
    json_decref(wd);
    if (cfg->working_dir && (cfg->working_dir[0] != '/' || !wd))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "exec: working directory '%s' is not an absolute UTF-8 path",
                         cfg->working_dir);
    if (cfg->network_namespace && !options_id_valid(cfg->network_namespace))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "exec: network namespace '%s' is not a valid id",
                         cfg->network_namespace);
    if (cfg->terminal && (cfg->create_stdin || cfg->create_stdout || cfg->create_stderr))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "exec '%s': a terminal is the process's stdin, stdout and stderr: "
                         "create_stdin, create_stdout and create_stderr must be false",
                         cfg->argv[0]);
    if (!cfg->terminal && (cfg->terminal_rows || cfg->terminal_cols))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "exec '%s': a terminal size without terminal",
                         cfg->argv[0]);
    return 0;
}

static void
close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

static int do_exec(struct uvm *vm, const struct uvm_process_config *cfg,
                   struct uvm_process **out);

int
uvm_exec(struct uvm *vm, const struct uvm_process_config *cfg, struct uvm_process **out)
{
    if (!vm || !out)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "exec: NULL argument");
    *out = NULL;
    int rc = uvm_call_enter(vm, "exec");
    if (rc == 0) {
        rc = do_exec(vm, cfg, out);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_exec(struct uvm *vm, const struct uvm_process_config *cfg, struct uvm_process **out)
{
    int rc = validate(cfg);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&vm->lock);
    rc = uvm_check_running(vm, "exec");
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);
    if (rc < 0)
        return rc;

    int ours[3], users[3];
    const bool want[3] = {cfg->create_stdin, cfg->create_stdout, cfg->create_stderr};
    rc = process_stdio_new(want, cfg->terminal, ours, users, cfg->argv[0]);
    if (rc < 0)
        return rc;
    uint32_t handle = bridge_new_handle(b);
    bridge_stream_add(b, handle, ours); /* before the request: no output can be lost */

    json_t *resp = NULL;
    rc = bridge_call(b, PROTO_REQ_EXECUTE_PROCESS, exec_request(cfg, handle), &resp,
                     BRIDGE_DEADLINE_CALL);
    int pid = rc == 0 ? process_pid_of(resp, "exec", cfg->argv[0]) : rc;
    json_decref(resp);
    if (pid < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        bridge_stream_remove(b, handle);
        close_fds(users, 3);
        return uvm_error(pid, "exec '%s' in '%s': %s", cfg->argv[0], vm->cfg.id, msg);
    }
    *out = process_new(vm, b, handle, pid, users, cfg->terminal, NULL);
    return 0;
}

int
process_stdio_new(const bool want[3], bool terminal, int ours[3], int users[3], const char *what)
{
    /* Socket pairs: the user gets ordinary blocking fds; writes to a user who went away give
     * EPIPE without SIGPIPE on our side. With a terminal, one socket both ways: ours[0] (read:
     * the user's input) and ours[1] (written: the output) are two descriptors of it, users[0]
     * is the user's end. */
    for (unsigned i = 0; i < 3; i++)
        ours[i] = users[i] = -1;
    for (unsigned i = 0; i < 3; i++) {
        int sp[2];
        if (!want[i] && !(terminal && i == PROTO_STDIN))
            continue;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
            goto fail;
        ours[i] = sp[0];
        users[i] = sp[1];
        if (terminal) {
            ours[PROTO_STDOUT] = fcntl(sp[0], F_DUPFD_CLOEXEC, 3);
            if (ours[PROTO_STDOUT] < 0)
                goto fail;
            break;
        }
        shutdown(sp[0], i == PROTO_STDIN ? SHUT_WR : SHUT_RD);
        shutdown(sp[1], i == PROTO_STDIN ? SHUT_RD : SHUT_WR);
    }
    return 0;
fail:;
    int rc = uvm_error_errno(-errno, "'%s': stdio sockets", what);
    close_fds(ours, 3);
    close_fds(users, 3);
    return rc;
}

int
process_pid_of(const json_t *resp, const char *verb, const char *name)
{
    int pid = 0;
    int rc = answer_exec(resp, &pid);
    return rc < 0 ? uvm_error_wrap(rc, "%s '%s'", verb, name) : pid;
}

struct uvm_process *
process_new(struct uvm *vm, struct bridge *b, uint32_t handle, int pid, const int users[3],
            bool terminal, const char *container_id)
{
    struct uvm_process *p = xcalloc(1, sizeof(*p));
    p->vm = uvm_ref(vm); /* the VM's memory (and its bridge) outlive uvm_close until ours */
    p->bridge = b;
    p->handle = handle;
    p->pid = pid;
    p->container_id = container_id ? xstrdup(container_id) : NULL;
    p->refs = 1;
    memcpy(p->user_fds, users, sizeof(p->user_fds));
    p->terminal_fd = -1;
    if (terminal) { /* one socket both ways: the caller gets it from uvm_process_terminal */
        p->terminal = true;
        p->terminal_fd = p->user_fds[PROTO_STDIN];
        p->user_fds[PROTO_STDIN] = -1;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    return p;
}

struct uvm_process *
process_ref(struct uvm_process *p)
{
    p->refs++;
    return p;
}

/* A request about p: its container's id when it has one (the bridge adds the UVM's). */
static json_t *
with_container(const struct uvm_process *p, json_t *req)
{
    if (req && p->container_id)
        json_object_set_new(req, "ContainerId", json_string(p->container_id));
    return req;
}

int
uvm_process_stdio(struct uvm_process *p, int *in_fd, int *out_fd, int *err_fd)
{
    if (!p)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "process stdio: NULL process");
    pthread_mutex_lock(&p->lock);
    int *dst[3] = {in_fd, out_fd, err_fd};
    for (unsigned i = 0; i < 3; i++) {
        if (dst[i]) {
            *dst[i] = p->user_fds[i];
            p->user_fds[i] = -1;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int
uvm_process_terminal(struct uvm_process *p, int *fd)
{
    if (!p || !fd)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "process terminal: NULL argument");
    *fd = -1;
    if (!p->terminal)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "process %d has no terminal", p->pid);
    pthread_mutex_lock(&p->lock);
    *fd = p->terminal_fd;
    p->terminal_fd = -1;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int
uvm_process_pid(const struct uvm_process *p)
{
    return p ? p->pid : -1;
}

/* UVM_E_CLOSED once uvm_close was called on the process's VM. */
static int
check_open(struct uvm_process *p, const char *what)
{
    if (!uvm_is_closed(p->vm))
        return 0;
    return uvm_error(UVM_E_CLOSED, "%s process %d: its utility VM '%s' was closed", what, p->pid,
                     p->vm->cfg.id);
}

/* A request about a running process (signal, resize) is refused once its VM is closed or it
 * has exited; `what` names the call in the error. */
static int
check_running(struct uvm_process *p, const char *what)
{
    int rc = check_open(p, what);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&p->lock);
    bool exited = p->exited;
    pthread_mutex_unlock(&p->lock);
    if (exited)
        return uvm_error(UVM_E_INVALID_STATE, "%s: process %d has exited", what, p->pid);
    return 0;
}

int
uvm_process_signal(struct uvm_process *p, int sig)
{
    if (!p)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "signal: NULL process");
    if (sig <= 0 || sig >= 65)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "signal: %d is not a signal number", sig);
    int rc = check_running(p, "signal");
    if (rc < 0)
        return rc;
    rc = bridge_call(p->bridge, PROTO_REQ_SIGNAL_PROCESS,
                     with_container(p, json_pack("{s:i, s:{s:i}}", "ProcessId", p->pid,
                                                 "Options", "Signal", sig)),
                     NULL, BRIDGE_DEADLINE_CALL);
    if (rc < 0)
        return uvm_error_wrap(rc, "signal %d to process %d", sig, p->pid);
    return 0;
}

int
uvm_process_resize(struct uvm_process *p, unsigned rows, unsigned cols)
{
    if (!p)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "resize: NULL process");
    if (!p->terminal)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "resize process %d: it has no terminal", p->pid);
    if (rows > UINT16_MAX || cols > UINT16_MAX)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "resize process %d to %ux%u: rows and columns are at most 65535", p->pid,
                         rows, cols);
    int rc = check_running(p, "resize");
    if (rc < 0)
        return rc;
    rc = bridge_call(p->bridge, PROTO_REQ_RESIZE_CONSOLE,
                     with_container(p, json_pack("{s:i, s:i, s:i}", "ProcessId", p->pid,
                                                 "Height", (int)rows, "Width", (int)cols)),
                     NULL, BRIDGE_DEADLINE_CALL);
    if (rc < 0)
        return uvm_error_wrap(rc, "resize the terminal of process %d to %ux%u", p->pid, rows,
                              cols);
    return 0;
}

int
uvm_process_wait(struct uvm_process *p, int *exit_code)
{
    if (!p)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "wait: NULL process");
    int closed = check_open(p, "wait for");
    pthread_mutex_lock(&p->lock);
    if (closed < 0 && !p->exited) {
        pthread_mutex_unlock(&p->lock);
        return closed;
    }
    while (p->waiting)
        pthread_cond_wait(&p->cond, &p->lock);
    if (!p->exited && p->wait_rc == 0) {
        p->waiting = true;
        pthread_mutex_unlock(&p->lock);
        /* Answered when the process has exited; ends with the VM at the latest. */
        json_t *resp = NULL;
        int rc = bridge_call(p->bridge, PROTO_REQ_WAIT_PROCESS,
                             with_container(p, json_pack("{s:i, s:I}", "ProcessId", p->pid,
                                                         "TimeoutInMs",
                                                         (json_int_t)0xffffffffu)),
                             &resp, DEADLINE_NEVER);
        int code = 0;
        if (rc == 0)
            rc = answer_wait(resp, &code);
        pthread_mutex_lock(&p->lock);
        p->waiting = false;
        if (rc == 0) {
            p->exited = true;
            p->exit_code = code;
        } else {
            p->wait_rc = rc;
            p->wait_msg = xasprintf("wait for process %d: %s", p->pid, uvm_last_error());
        }
        json_decref(resp);
        pthread_cond_broadcast(&p->cond);
    }
    int rc = p->exited ? 0 : p->wait_rc;
    if (rc == 0 && exit_code)
        *exit_code = p->exit_code;
    if (rc < 0)
        uvm_error(rc, "%s", p->wait_msg);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void
uvm_process_close(struct uvm_process *p)
{
    if (!p || --p->refs > 0)
        return;
    bridge_stream_remove(p->bridge, p->handle);
    close_fds(p->user_fds, 3);
    close_fds(&p->terminal_fd, 1);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->wait_msg);
    free(p->container_id);
    struct uvm *vm = p->vm;
    free(p);
    uvm_unref(vm); /* the last reference after uvm_close frees the VM */
}

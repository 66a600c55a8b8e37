/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Lifecycle of a utility VM: create, start, wait, terminate, close. Above the VM core (vm.h)
 * and the resource kinds (kinds.h), which it calls at create and when the VM is gone. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "answer.h"
#include "argv.h"
#include "bridge.h"
#include "cleanup.h"
#include "document.h"
#include "error.h"
#include "proto.h"
#include "qmp.h"
#include "ram.h"
#include "template.h"
#include "timeutil.h"
#include "kinds.h"
#include "vm.h"
#include "jail.h"
#include "vmm.h"

#define QBOOT_ROM "/usr/share/qemu/qboot.rom"
#define QEMU_BINARY "qemu-system-x86_64"

/* Lock held: take the runtime directory out of the VM, to be released (rundir_release runs
 * `ip` and unmounts) after unlocking. Concurrent callers find the VM stopped first. */
static struct rundir
take_rundir(struct uvm *vm)
{
    struct rundir rd = vm->rd;
    vm->rd = (struct rundir){.base_fd = -1, .dir_fd = -1, .lock_fd = -1};
    return rd;
}

/* The jail QEMU starts in (jail.h): the boot files it reads at start, the runtime directory. */
static int
build_jail(struct uvm *vm, json_t *doc, const char *accel)
{
    if (!jail_supported()) {
        uvm_log(UVM_LOG_WARNING, vm->cfg.id, "QEMU runs unconfined (%s)",
                geteuid() ? "not root: no namespaces to build its jail" : "UVM_JAIL=0");
        return 0;
    }
    const char *files[4] = {NULL};
    int rc = argv_host_files(doc, files);
    if (rc < 0)
        return rc;
    cleanup_free char *mnt = rundir_file(&vm->rd, "jail");
    if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
        return uvm_error_errno(-errno, "create '%s'", mnt);
    cleanup_free char *vnc = NULL;
    if (vm->cfg.graphics_console) {
        vnc = rundir_file(&vm->rd, ARGV_VNC_DIR);
        if (mkdir(vnc, 0700) < 0 && errno != EEXIST)
            return uvm_error_errno(-errno, "create '%s'", vnc);
    }
    vm->jail = jail_prepare(mnt, vm->rd.path, files, !strcmp(accel, "kvm"), vnc);
    return vm->jail ? 0 : UVM_E_NOT_FOUND;
}

static int
build_argv(struct uvm *vm, json_t *doc)
{
    if (vm->cfg.windows)
        return 0;
    struct argv_ctx ctx = {
        .qemu = QEMU_BINARY,
        .accel = argv_detect_accel(),
        .bios = access(QBOOT_ROM, R_OK) == 0 ? QBOOT_ROM : NULL,
        .name = vm->cfg.id,
        .rundir = vm->rd.path,
        .clone = vm->tpl != NULL,
    };
    int rc = argv_build(doc, &ctx, &vm->argv);
    return rc < 0 ? rc : build_jail(vm, doc, ctx.accel);
}

/* At create: what each resource kind needs for the VM's life (kinds.h). */
static int
prepare_kinds(struct uvm *vm)
{
    for (size_t i = 0; uvm_kinds[i].kind; i++)
        if (uvm_kinds[i].kind->prepare) {
            int rc = uvm_kinds[i].kind->prepare(vm, uvm_kinds[i].kind);
            if (rc < 0)
                return rc;
        }
    return 0;
}

/* The VM is gone: each kind stops what runs for it (daemons). Without the lock. */
static void
kinds_vm_gone(struct uvm *vm)
{
    for (size_t i = 0; uvm_kinds[i].kind; i++)
        if (uvm_kinds[i].kind->vm_gone)
            uvm_kinds[i].kind->vm_gone(vm);
}

int
uvm_create(const struct uvm_options *opts, struct uvm **out)
{
    if (!out)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "create: out is NULL");
    *out = NULL;
    struct uvm *vm = uvm_alloc();
    struct uvm_options merged; /* a clone's: the template's options (template.h) */
    int rc = opts ? template_open(opts, &vm->tpl, &merged) : 0;
    if (rc == 0)
        rc = options_resolve(opts ? &merged : NULL, &vm->cfg);
    if (rc < 0)
        goto fail;
    json_t *doc = document_build(&vm->cfg);
    rc = document_merge(doc, vm->cfg.additional_json);
    if (rc == 0) {
        rundir_sweep(); /* dead processes' directories; no VM lock held (a refused base: below) */
        rc = rundir_claim(vm->cfg.id, &vm->rd);
    }
    if (rc == 0 && !vm->cfg.windows)
        rc = prepare_kinds(vm);
    if (rc == 0)
        rc = build_argv(vm, doc);
    if (rc == 0 && vm->tpl)
        rc = template_check(vm->tpl, doc, vm->argv, vm->rd.path);
    if (rc == 0)
        vm->document = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (rc < 0)
        goto fail;
    vm->state = UVM_STATE_CREATED;
    uvm_log(UVM_LOG_DEBUG, vm->cfg.id, "created (%s)", vm->cfg.windows ? "windows" : "linux");
    *out = vm;
    return 0;
fail:
    uvm_unref(vm);
    return rc;
}

/* Watcher thread: QEMU is gone. */
static void
on_exit_cb(void *opaque, struct vmm *vmm, int status)
{
    struct uvm *vm = opaque;
    /* QEMU's last words: with -no-reboot a guest reset (kernel panic with panic=-1, or PID 1
     * dying) also ends QEMU with status 0; the SHUTDOWN event tells it from a power-off. */
    pthread_mutex_lock(&vm->lock);
    struct qmp *q = vm->qmp;
    pthread_mutex_unlock(&vm->lock);
    char reason[64] = "";
    json_t *data = NULL;
    if (q && qmp_wait_event(q, "SHUTDOWN", NULL, &data, deadline_after_ms(200)) == 0) {
        const char *r = json_string_value(json_object_get(data, "reason"));
        snprintf(reason, sizeof(reason), "%s", r ? r : "");
    }
    json_decref(data);
    cleanup_free char *qlog = vmm_log_tail(vmm, 3);
    pthread_mutex_lock(&vm->lock);
    vm->exited = true;
    free(vm->exit_msg);
    vm->exit_msg = NULL;
    if (vm->undoing) {
        vm->exit_code = UVM_E_UNEXPECTED_EXIT;
        vm->exit_msg = xasprintf("utility VM '%s' did not start", vm->cfg.id);
    } else if (vm->terminating) {
        vm->exit_code = 0;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strcmp(reason, "guest-reset")) {
        vm->exit_code = UVM_E_UNEXPECTED_EXIT;
        vm->exit_msg = xasprintf("utility VM '%s': the guest reset itself (a kernel panic, or its "
                                 "agent died)",
                                 vm->cfg.id);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        vm->exit_code = 0;
    } else {
        vm->exit_code = UVM_E_UNEXPECTED_EXIT;
        if (WIFSIGNALED(status))
            vm->exit_msg = xasprintf("utility VM '%s': QEMU was killed by signal %d (%s)%s%s",
                                     vm->cfg.id, WTERMSIG(status), strsignal(WTERMSIG(status)),
                                     *qlog ? ": " : "", qlog);
        else
            vm->exit_msg = xasprintf("utility VM '%s': QEMU exited with status %d%s%s", vm->cfg.id,
                                     WEXITSTATUS(status), *qlog ? ": " : "", qlog);
    }
    struct bridge *b = vm->bridge;
    struct rundir rd = {.base_fd = -1, .dir_fd = -1, .lock_fd = -1};
    bool release = vm->state == UVM_STATE_RUNNING && !vm->terminating; /* else terminate does */
    if (vm->state == UVM_STATE_RUNNING)
        vm->state = UVM_STATE_STOPPED;
    if (release) {
        rd = take_rundir(vm); /* no socket or directory outlives the VM */
        vm->releasing = true;
    }
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    /* Outside the VM lock: both can log, the release runs `ip`. A terminate's earlier
     * shutdown keeps its reason (the first one wins). */
    if (b)
        bridge_shutdown(b, UVM_E_UNEXPECTED_EXIT, "utility VM '%s' exited", vm->cfg.id);
    if (release) {
        kinds_vm_gone(vm);
        rundir_release(&rd);
        pthread_mutex_lock(&vm->lock);
        vm->releasing = false; /* uvm_wait and uvm_terminate return after the release */
        pthread_cond_broadcast(&vm->cond);
        pthread_mutex_unlock(&vm->lock);
    }
    uvm_log(UVM_LOG_DEBUG, vm->cfg.id, "QEMU exited (status 0x%x%s%s)", status,
            *reason ? ", " : "", reason);
}

static uint64_t
since(int64_t t0)
{
    int64_t d = now_us() - t0;
    return d > 0 ? (uint64_t)d : 1;
}

static int
parse_negotiate(struct uvm *vm, json_t *resp, int64_t t0)
{
    struct answer_negotiate a;
    if (answer_negotiate(resp, &a) < 0) /* start_failure names the VM */
        return uvm_error_wrap(UVM_E_PROTOCOL, "NegotiateProtocol");
    pthread_mutex_lock(&vm->lock);
    vm->conn.protocol_version = a.version;
    vm->conn.namespace_add_request_supported = a.namespace_add_request_supported;
    vm->conn.signal_process_supported = a.signal_process_supported;
    vm->timings.agent_ready_us = since(t0);
    if (a.has_guest_startup && a.guest_startup_us < vm->timings.agent_ready_us)
        vm->timings.guest_init_us = vm->timings.agent_ready_us - a.guest_startup_us;
    if (a.has_guest_startup && a.guest_ready_us < vm->timings.agent_ready_us)
        vm->timings.kernel_start_us = vm->timings.agent_ready_us - a.guest_ready_us;
    pthread_mutex_unlock(&vm->lock);
    return 0;
}

/* The agent's first answer: the protocol version and its capabilities. */
static int
negotiate(struct uvm *vm, struct bridge *b, int64_t deadline, int64_t t0)
{
    json_t *resp = NULL;
    int rc = bridge_call(b, PROTO_REQ_NEGOTIATE_PROTOCOL,
                         json_pack("{s:i, s:i}", "MinimumVersion", PROTO_VERSION, "MaximumVersion",
                                   PROTO_VERSION),
                         &resp, deadline);
    if (rc == UVM_E_TIMEOUT)
        rc = uvm_error(UVM_E_TIMEOUT,
                       "NegotiateProtocol: the guest agent did not answer within %u ms "
                       "(uvm_options.start_timeout_ms)",
                       vm->cfg.start_timeout_ms);
    else if (rc < 0)
        rc = uvm_error_wrap(rc, "NegotiateProtocol");
    if (rc == 0)
        rc = parse_negotiate(vm, resp, t0);
    json_decref(resp);
    return rc;
}

/* A boot that did not finish: log where the vCPUs are, for a bug report. */
static void
log_cpu_state(struct uvm *vm)
{
    if (!vm->qmp || !uvm_log_enabled(UVM_LOG_WARNING))
        return;
    json_t *args = json_pack("{s:s}", "command-line", "info registers -a");
    json_t *reply = NULL;
    if (qmp_execute(vm->qmp, "human-monitor-command", args, &reply, deadline_after_ms(2000)) == 0 &&
        json_is_string(reply)) {
        const char *text = json_string_value(reply);
        for (const char *p = strstr(text, "RIP="); p; p = strstr(p + 4, "RIP="))
            uvm_log(UVM_LOG_WARNING, vm->cfg.id, "boot timed out with a vCPU at %.*s",
                    (int)strcspn(p, " \r\n"), p);
    }
    json_decref(args);
    json_decref(reply);
}

/* Explain a failed start with the ends of the QEMU log and the guest console. */
static int
start_failure(struct uvm *vm, int rc)
{
    if (rc == UVM_E_TIMEOUT)
        log_cpu_state(vm);
    cleanup_free char *why = xstrdup(uvm_last_error());
    pthread_mutex_lock(&vm->lock);
    char *console = vm->cfg.console_pipe
                        ? rundir_tail(&vm->rd, vm->cfg.console_pipe, UVM_CONSOLE_TAIL_LINES)
                        : vm->vmm ? vmm_console_tail(vm->vmm, UVM_CONSOLE_TAIL_LINES)
                                  : xstrdup("");
    cleanup_free char *qlog = vm->vmm ? vmm_log_tail(vm->vmm, 3) : xstrdup("");
    pthread_mutex_unlock(&vm->lock);
    pthread_mutex_lock(&vm->lock);
    /* A closed channel usually means QEMU is exiting: give the watcher a moment to say why. */
    struct timespec ts = deadline_timespec(deadline_after_ms(2000));
    while (rc != UVM_E_TIMEOUT && vm->vmm && !vm->exited && !vm->terminating)
        if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
            break;
    if (vm->exited && vm->exit_code < 0 && rc != UVM_E_TIMEOUT) {
        rc = UVM_E_UNEXPECTED_EXIT;
        free(why);
        why = xstrdup(vm->exit_msg);
        if (*qlog && strstr(why, qlog)) /* the exit's message quotes QEMU's last words */
            qlog[0] = '\0';
    }
    pthread_mutex_unlock(&vm->lock);
    rc = uvm_error(rc, "start '%s': %s%s%s%s%s", vm->cfg.id, why, *qlog ? "; QEMU: " : "",
                   qlog, *console ? "; guest console: " : "", console);
    free(console);
    return rc;
}

/* QEMU's end of the console (*qemu) and ours (*ours, -1 with a console pipe): the caller's
 * file, opened here and handed over (QEMU cannot open host paths, jail.h), or a socket pair
 * whose other end the watcher drains into a ring. */
static int
console_fds(struct uvm *vm, int *qemu, int *ours)
{
    *ours = -1;
    if (vm->cfg.console_pipe) {
        *qemu = open(vm->cfg.console_pipe, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY | O_CLOEXEC,
                     0600);
        if (*qemu < 0)
            return uvm_error_errno(-errno, "open console pipe '%s'", vm->cfg.console_pipe);
        return 0;
    }
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return uvm_error_errno(-errno, "console socket pair");
    *ours = sp[0];
    *qemu = sp[1];
    shutdown(*ours, SHUT_WR);
    return 0;
}

/* Connect QMP and the agent's channel, with the VM's deadlines; published in vm (also when
 * the bridge fails: undo_start frees them). */
static int
connect_channels(struct uvm *vm, struct qmp **qp, struct bridge **bp)
{
    cleanup_close int qmp_fd = -1, agent_fd = -1;
    int rc;
    /* QEMU holds the listening sockets: connecting succeeds at once, no polling. */
    if ((rc = rundir_connect(&vm->rd, "qmp.sock", &qmp_fd)) < 0 ||
        (rc = rundir_connect(&vm->rd, "gcs.sock", &agent_fd)) < 0)
        return rc;
    struct qmp *q = qmp_new(steal_fd(&qmp_fd), vm->cfg.id);
    if (!q)
        return UVM_E_HYPERVISOR; /* qmp_new said why */
    const struct uvm_timeouts *t = &vm->cfg.timeouts;
    qmp_set_timeouts(q, (struct qmp_timeouts){t->qmp_command_ms, t->unplug_ms});
    struct bridge *b = NULL;
    rc = bridge_new(steal_fd(&agent_fd), vm->cfg.id, vm->cfg.trust_guest_log_levels, &b);
    if (b)
        bridge_set_timeouts(b, t->agent_call_ms, t->container_ms);
    pthread_mutex_lock(&vm->lock);
    vm->qmp = q;
    vm->bridge = b;
    if (b && vm->exited)
        bridge_shutdown(b, UVM_E_UNEXPECTED_EXIT, "utility VM '%s' exited", vm->cfg.id);
    pthread_mutex_unlock(&vm->lock);
    *qp = q;
    *bp = b;
    return rc;
}

static int
do_start(struct uvm *vm, int64_t t0)
{
    int64_t deadline = deadline_after_ms(vm->cfg.start_timeout_ms);
    cleanup_close int qmp_listen = -1, agent_listen = -1;
    cleanup_close int con_qemu = -1, con_ours = -1, ram = -1;
    /* The guest RAM's file (ram.h): a clone maps its template's. */
    int rc = vm->tpl ? template_files_open(vm->tpl, &ram)
                     : ram_memfd_new(vm->cfg.memory_mb << 20, &ram);
    if (rc == 0)
        rc = console_fds(vm, &con_qemu, &con_ours);
    if (rc < 0)
        return rc;
    if ((rc = rundir_listen(&vm->rd, "qmp.sock", &qmp_listen)) < 0 ||
        (rc = rundir_listen(&vm->rd, "gcs.sock", &agent_listen)) < 0)
        return rc;
    struct vmm *vmm = NULL;
    struct vmm_config vc = {
        .argv = vm->argv,
        .qmp_fd = qmp_listen,
        .agent_fd = agent_listen,
        .console_fd = con_qemu,
        .ram_fd = ram,
        .console_reader = steal_fd(&con_ours),
        .jail = vm->jail,
        .fn = on_exit_cb,
        .opaque = vm,
    };
    rc = vmm_spawn(&vc, &vmm);
    close(steal_fd(&con_qemu));
    close(steal_fd(&ram));
    /* Only QEMU holds the listening sockets from here: if it dies, connects fail at once. */
    close(steal_fd(&qmp_listen));
    close(steal_fd(&agent_listen));
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&vm->lock);
    vm->vmm = vmm;
    vm->timings.spawn_us = since(t0);
    bool terminating = vm->terminating;
    pthread_mutex_unlock(&vm->lock);
    if (terminating)
        return uvm_error(UVM_E_INVALID_STATE, "terminated while starting");
    uvm_log(UVM_LOG_DEBUG, vm->cfg.id, "QEMU pid %d", (int)vmm_pid(vmm));

    struct qmp *q = NULL;
    struct bridge *b = NULL;
    if ((rc = connect_channels(vm, &q, &b)) < 0)
        return rc;

    /* The agent needs seconds to boot; the QMP greeting comes first. */
    rc = qmp_handshake(q, deadline);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&vm->lock);
    vm->timings.qmp_ready_us = since(t0);
    pthread_mutex_unlock(&vm->lock);
    if (vm->tpl && (rc = template_restore(vm, q, t0, deadline)) < 0)
        return rc;

    rc = negotiate(vm, b, deadline, t0);
    if (rc == 0 && vm->tpl)
        rc = template_resume(vm, b, deadline);
    return rc;
}

/* Undo a failed start: QEMU killed and reaped, channels closed, sockets removed. */
static void
undo_start(struct uvm *vm)
{
    pthread_mutex_lock(&vm->lock);
    struct vmm *vmm = vm->vmm;
    struct bridge *b = vm->bridge;
    struct qmp *q = vm->qmp;
    vm->vmm = NULL;
    vm->bridge = NULL;
    vm->qmp = NULL;
    vm->undoing = true;
    pthread_mutex_unlock(&vm->lock);
    vmm_free(vmm); /* kills and joins: the exit callback has run */
    bridge_free(b);
    qmp_free(q);
    cleanup_free char *s1 = rundir_file(&vm->rd, "qmp.sock");
    cleanup_free char *s2 = rundir_file(&vm->rd, "gcs.sock");
    unlink(s1);
    unlink(s2);
}

static int do_start_call(struct uvm *vm);

int
uvm_start(struct uvm *vm)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "start: vm is NULL");
    int rc = uvm_call_enter(vm, "start");
    if (rc == 0) {
        rc = do_start_call(vm);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_start_call(struct uvm *vm)
{
    pthread_mutex_lock(&vm->lock);
    int rc = 0;
    if (vm->state != UVM_STATE_CREATED)
        rc = uvm_error(UVM_E_INVALID_STATE, "start '%s': the utility VM is %s", vm->cfg.id,
                       vm_state_name(vm->state));
    else if (vm->cfg.windows)
        rc = uvm_error(UVM_E_NOT_SUPPORTED,
                       "start '%s': windows utility VMs cannot boot here (QEMU has no Hyper-V "
                       "guest support for them); create, validation and scratch work",
                       vm->cfg.id);
    if (rc < 0) {
        pthread_mutex_unlock(&vm->lock);
        return rc;
    }
    vm->state = UVM_STATE_STARTING;
    vm->exited = false;
    vm->exit_code = 0;
    memset(&vm->timings, 0, sizeof(vm->timings));
    pthread_mutex_unlock(&vm->lock);

    int64_t t0 = now_us();
    rc = do_start(vm, t0);
    if (rc < 0) {
        rc = start_failure(vm, rc);
        cleanup_free char *msg = xstrdup(uvm_last_error());
        undo_start(vm);
        pthread_mutex_lock(&vm->lock);
        vm->undoing = false;
        vm->exited = false; /* no QEMU any more: the VM is as created */
        vm->start_failures++;
        struct rundir rd = {.base_fd = -1, .dir_fd = -1, .lock_fd = -1};
        if (vm->terminating) {
            rd = take_rundir(vm);
            vm->state = UVM_STATE_TERMINATED;
        } else {
            vm->state = UVM_STATE_CREATED;
        }
        pthread_cond_broadcast(&vm->cond);
        pthread_mutex_unlock(&vm->lock);
        rundir_release(&rd);
        uvm_log(UVM_LOG_DEBUG, vm->cfg.id, "start failed: %s", msg);
        return uvm_error(rc, "%s", msg);
    }
    pthread_mutex_lock(&vm->lock);
    struct rundir rd = {.base_fd = -1, .dir_fd = -1, .lock_fd = -1};
    if (vm->exited) {
        /* QEMU died right after answering: report it like any exit. */
        vm->state = UVM_STATE_STOPPED;
        rd = take_rundir(vm);
    } else {
        vm->state = UVM_STATE_RUNNING;
    }
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    rundir_release(&rd);
    uvm_log(UVM_LOG_INFO, vm->cfg.id, "started in %.1f ms",
            (double)vm->timings.agent_ready_us / 1000.0);
    return 0;
}

static int do_wait(struct uvm *vm);

int
uvm_wait(struct uvm *vm)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "wait: vm is NULL");
    int rc = uvm_call_enter(vm, "wait");
    if (rc == 0) {
        rc = do_wait(vm);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_wait(struct uvm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state == UVM_STATE_CREATED && !vm->exited) {
        pthread_mutex_unlock(&vm->lock);
        return uvm_error(UVM_E_INVALID_STATE, "wait '%s': the utility VM was not started",
                         vm->cfg.id);
    }
    unsigned failures = vm->start_failures;
    while ((!vm->exited && vm->state != UVM_STATE_TERMINATED && vm->start_failures == failures) ||
           vm->releasing)
        pthread_cond_wait(&vm->cond, &vm->lock);
    int rc = vm->exited ? vm->exit_code : 0;
    if (!vm->exited && vm->state != UVM_STATE_TERMINATED && vm->start_failures != failures)
        rc = uvm_error(UVM_E_UNEXPECTED_EXIT, "wait '%s': the utility VM did not start",
                       vm->cfg.id);
    else if (rc < 0)
        uvm_error(rc, "%s", vm->exit_msg ? vm->exit_msg : "utility VM exited unexpectedly");
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

int
uvm_terminate(struct uvm *vm)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "terminate: vm is NULL");
    pthread_mutex_lock(&vm->lock);
    if (vm->state == UVM_STATE_TERMINATED) {
        pthread_mutex_unlock(&vm->lock);
        return 0;
    }
    vm->terminating = true;
    struct bridge *b = vm->bridge;
    struct vmm *vmm = vm->vmm;
    pthread_mutex_unlock(&vm->lock);
    /* Objects live until close. Calls in flight learn why before QEMU's death says "exited". */
    if (b)
        bridge_shutdown(b, UVM_E_INVALID_STATE, "utility VM '%s' was terminated", vm->cfg.id);
    if (vmm)
        vmm_kill(vmm, SIGKILL);

    pthread_mutex_lock(&vm->lock);
    /* A concurrent start ends quickly once QEMU is dead; it then undoes itself. */
    while (vm->state == UVM_STATE_STARTING)
        pthread_cond_wait(&vm->cond, &vm->lock);
    int rc = 0;
    if (vm->vmm) {
        vmm_kill(vm->vmm, SIGKILL); /* the one a concurrent start made, if any */
        struct timespec ts = deadline_timespec(deadline_after_ms(UVM_EXIT_TIMEOUT_MS));
        while (!vm->exited && rc == 0)
            if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT && !vm->exited)
                rc = uvm_error(UVM_E_TIMEOUT, "terminate '%s': QEMU pid %d did not exit",
                               vm->cfg.id, (int)vmm_pid(vm->vmm));
    }
    while (vm->releasing) /* an exit's release in progress: done when we return */
        pthread_cond_wait(&vm->cond, &vm->lock);
    struct rundir rd = {.base_fd = -1, .dir_fd = -1, .lock_fd = -1};
    b = NULL;
    if (rc == 0 && vm->state != UVM_STATE_TERMINATED) {
        b = vm->bridge;
        rd = take_rundir(vm);
        vm->state = UVM_STATE_TERMINATED;
        pthread_cond_broadcast(&vm->cond);
    }
    pthread_mutex_unlock(&vm->lock);
    if (b)
        bridge_shutdown(b, UVM_E_INVALID_STATE, "utility VM '%s' was terminated", vm->cfg.id);
    if (rd.path)
        kinds_vm_gone(vm);
    rundir_release(&rd);
    return rc;
}

void
uvm_close(struct uvm *vm)
{
    if (!vm)
        return;
    pthread_mutex_lock(&vm->lock);
    vm->closed = true;
    pthread_mutex_unlock(&vm->lock);
    uvm_terminate(vm);
    /* Calls in flight fail fast now (QEMU dead, agent channel shut down); wait for them. */
    pthread_mutex_lock(&vm->lock);
    while (vm->calls)
        pthread_cond_wait(&vm->cond, &vm->lock);
    pthread_mutex_unlock(&vm->lock);
    uvm_unref(vm);
}

const char *
uvm_id(const struct uvm *vm)
{
    return vm ? vm->cfg.id : NULL;
}

const char *
uvm_os(const struct uvm *vm)
{
    return vm ? (vm->cfg.windows ? "windows" : "linux") : NULL;
}

uint64_t
uvm_container_counter(struct uvm *vm)
{
    return atomic_fetch_add(&vm->container_counter, 1) + 1;
}

struct uvm_system *
uvm_compute_system(struct uvm *vm)
{
    return vm ? &vm->sys : NULL;
}

const char *
uvm_document(const struct uvm *vm)
{
    return vm ? __atomic_load_n(&vm->document, __ATOMIC_ACQUIRE) : NULL;
}

const char *const *
uvm_qemu_argv(const struct uvm *vm)
{
    return vm ? (const char *const *)vm->argv : NULL;
}

int
uvm_get_timings(struct uvm *vm, struct uvm_timings *t)
{
    if (!vm || !t)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "timings: NULL argument");
    pthread_mutex_lock(&vm->lock);
    *t = vm->timings;
    pthread_mutex_unlock(&vm->lock);
    return 0;
}

int
uvm_system_guest_connection(struct uvm_system *sys, struct uvm_guest_connection_info *info)
{
    if (!sys || !info)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "guest connection: NULL argument");
    struct uvm *vm = sys->vm;
    pthread_mutex_lock(&vm->lock);
    int rc = uvm_check_running(vm, "guest connection");
    if (rc == 0)
        *info = vm->conn;
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

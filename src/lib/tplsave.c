/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uvm_save_template: a running, idle VM becomes a template directory (template.h).
 *
 *   checks (lock): running, linux, not a clone, no resource record, not saving already;
 *                  the VM is marked `saving` (res.c refuses hot-plugs meanwhile)
 *   directory:     created (or an existing empty one: ours, not group/world writable, locked
 *                  against a second save; tpldir.h), files written under temporary names
 *   agent:         Quiesce (nothing in use, 9p export unmounted, synced, silent)
 *   QMP:           stop; query-version; migrate to <dir>/state (qmpmig.h, x-ignore-shared)
 *   RAM:           QEMU's RAM memfd (its fd 6) copied sparse to <dir>/ram
 *   manifest:      <dir>/template.json; renamed into place last, directory synced
 *   the VM:        terminated (a clone maps the RAM file: the VM must not run on)
 * Any failure after the quiesce: the files removed, `cont`, Resume {} (the agent serves again),
 * the VM runs on as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "bridge.h"
#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "proto.h"
#include "qmp.h"
#include "qmpmig.h"
#include "ram.h"
#include "record.h"
#include "template.h"
#include "timeutil.h"
#include "tpldir.h"
#include "vm.h"
#include "vmm.h"

static const char *const parts[] = {TPL_STATE, TPL_RAM, TPL_MANIFEST};
#define TMP_SUFFIX ".tmp"

struct save {
    struct uvm *vm;
    const char *dir;
    int dirfd;
    bool created;        /* we made the directory: removed again on failure */
    bool migrate_failed; /* QEMU may still be writing the state: migrate_cancel first */
    struct qmp *q;
    struct bridge *b;
    struct vmm *vmm;
    char *rundir; /* copied under the lock: a terminate meanwhile takes vm->rd away */
    int64_t deadline;
    struct tpl_manifest m;
};

/* Lock held: why the VM cannot be saved now, or 0. */
static int
check_saveable(struct uvm *vm)
{
    int rc = uvm_check_running(vm, "save template");
    if (rc < 0)
        return rc;
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED,
                         "save template '%s': windows utility VMs cannot "
                         "run here",
                         vm->cfg.id);
    if (vm->tpl)
        return uvm_error(UVM_E_NOT_SUPPORTED,
                         "save template '%s': a clone cannot be saved as a template (its RAM is "
                         "a private copy of template '%s')",
                         vm->cfg.id, template_dir(vm->tpl));
    if (vm->saving)
        return uvm_error(UVM_E_INVALID_STATE, "save template '%s': a save is in progress",
                         vm->cfg.id);
    if (!LIST_EMPTY(&vm->res)) {
        struct res *r = LIST_FIRST(&vm->res);
        return uvm_error(UVM_E_INVALID_STATE,
                         "save template '%s': a template holds no devices or shares, and %s "
                         "'%s' is %s (remove it first; VPMem devices stay plugged once added)",
                         vm->cfg.id, r->kind->name, r->key,
                         r->refs || r->state != RES_READY ? "attached" : "still plugged");
    }
    return 0;
}

static int
create_part(struct save *s, const char *name, int *fd)
{
    cleanup_free char *tmp = xasprintf("%s" TMP_SUFFIX, name);
    *fd = openat(s->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    return *fd < 0 ? uvm_error_errno(-errno, "save template: create '%s/%s'", s->dir, tmp) : 0;
}

/* The device state: QEMU writes it into <dir>/state.tmp. */
static int
save_state(struct save *s)
{
    cleanup_close int fd = -1;
    int rc = create_part(s, TPL_STATE, &fd);
    if (rc == 0 && (rc = qmpm_save(s->q, fd, s->deadline)) < 0)
        s->migrate_failed = true;
    struct stat st;
    if (rc == 0 && (fdatasync(fd) < 0 || fstat(fd, &st) < 0))
        rc = uvm_error_errno(-errno, "save template: the state file");
    if (rc == 0) {
        s->m.state_size = (uint64_t)st.st_size;
        if (s->m.state_size > TPLDIR_STATE_MAX)
            rc = uvm_error(UVM_E_HYPERVISOR, "save template: QEMU wrote a state of %llu bytes",
                           (unsigned long long)s->m.state_size);
    }
    int err = rc == 0 ? tpldir_hash_fd(fd, s->m.state_size, &s->m.state_hash) : 0;
    if (err < 0)
        rc = uvm_error_errno(err, "save template: hash the state file");
    return rc;
}

/* The guest RAM: QEMU's memfd (its ARGV_RAM_FD) copied sparse into <dir>/ram.tmp. */
static int
save_ram(struct save *s)
{
    cleanup_close int src = vmm_open_fd(s->vmm, ARGV_RAM_FD);
    if (src < 0)
        return uvm_error_wrap(src, "save template: the guest RAM");
    cleanup_close int dst = -1;
    int rc = create_part(s, TPL_RAM, &dst);
    if (rc == 0)
        rc = ram_copy(src, dst, s->m.ram_size, &s->m.ram_used);
    if (rc == 0 && fdatasync(dst) < 0)
        rc = uvm_error_errno(-errno, "save template: the RAM file");
    return rc;
}

/* What a clone inherits, from the VM's configuration and document. */
static int
describe(struct save *s)
{
    const struct uvm_config *c = &s->vm->cfg;
    struct tpl_manifest *m = &s->m;
    m->source_id = xstrdup(c->id);
    m->saved_at = (int64_t)time(NULL);
    m->boot_files_path = xstrdup(c->boot_files_path);
    size_t nb = strlen(c->boot_files_path);
    const char *k = c->kernel_path;
    m->kernel_file = xstrdup(!strncmp(k, c->boot_files_path, nb) && k[nb] == '/' ? k + nb + 1 : k);
    m->rootfs_file = xstrdup(c->rootfs_file);
    m->memory_mb = c->memory_mb;
    m->processor_count = c->processor_count;
    m->vpmem_count = c->vpmem_count;
    m->scsi_count = c->scsi_count;
    m->kernel_boot_options = c->kernel_boot_options ? xstrdup(c->kernel_boot_options) : NULL;
    m->has_memory_backing = c->has_memory_backing;
    m->memory_backing = c->memory_backing;
    m->graphics_console = c->graphics_console;
    m->additional_json = c->additional_json ? xstrdup(c->additional_json) : NULL;
    m->ram_size = c->memory_mb << 20;
    for (char **a = s->vm->argv; *a && a[1]; a++)
        if (!strcmp(*a, "-accel"))
            m->accel = xstrdup(a[1]);
    m->argv = tpl_argv_key((const char *const *)s->vm->argv, s->rundir);
    cleanup_json json_t *doc = json_loads(s->vm->document, 0, NULL);
    int rc = doc ? template_boot_files(doc, true, m->files, &m->n_files)
                 : uvm_error(UVM_E_PROTOCOL, "save template: the VM document does not parse");
    if (rc == 0)
        rc = template_qemu_binary(s->vm->argv[0], &m->qemu);
    return rc;
}

static int
write_manifest(struct save *s)
{
    struct stat st;
    if (fstatat(s->dirfd, TPL_RAM, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return uvm_error_errno(-errno, "save template: '%s/%s'", s->dir, TPL_RAM);
    s->m.ram_ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    cleanup_free char *text = tpl_manifest_encode(&s->m);
    cleanup_close int fd = -1;
    int rc = text ? create_part(s, TPL_MANIFEST, &fd)
                  : uvm_error(UVM_E_PROTOCOL, "save template: the manifest does not encode");
    size_t len = text ? strlen(text) : 0;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = uvm_error_errno(n < 0 ? -errno : -EIO, "save template: write the manifest");
        else
            off += (size_t)n;
    }
    if (rc == 0 && fdatasync(fd) < 0)
        rc = uvm_error_errno(-errno, "save template: write the manifest");
    if (rc == 0 && renameat(s->dirfd, TPL_MANIFEST TMP_SUFFIX, s->dirfd, TPL_MANIFEST) < 0)
        rc = uvm_error_errno(-errno, "save template: rename the manifest");
    if (rc == 0 && fsync(s->dirfd) < 0)
        rc = uvm_error_errno(-errno, "save template: sync '%s'", s->dir);
    return rc;
}

/* The state and the RAM get their final names (the manifest, last, makes it a template). */
static int
publish(struct save *s)
{
    for (size_t i = 0; i < 2; i++) {
        cleanup_free char *tmp = xasprintf("%s" TMP_SUFFIX, parts[i]);
        if (renameat(s->dirfd, tmp, s->dirfd, parts[i]) < 0)
            return uvm_error_errno(-errno, "save template: rename '%s/%s'", s->dir, tmp);
    }
    return write_manifest(s);
}

/* A failed save: its files gone (and the directory, if ours), the VM running again. */
static void
undo(struct save *s, bool stopped)
{
    for (size_t i = 0; s->dirfd >= 0 && i < 3; i++) {
        cleanup_free char *tmp = xasprintf("%s" TMP_SUFFIX, parts[i]);
        (void)unlinkat(s->dirfd, tmp, 0);
        (void)unlinkat(s->dirfd, parts[i], 0);
    }
    if (s->created)
        (void)rmdir(s->dir);
    struct uvm_error_state err;
    uvm_error_capture(&err);
    if (s->migrate_failed &&
        qmp_execute(s->q, "migrate_cancel", NULL, NULL, deadline_after_ms(10000)) < 0)
        uvm_log(UVM_LOG_WARNING, s->vm->cfg.id, "save template failed; migrate_cancel: %s",
                uvm_last_error());
    if (stopped && qmp_execute(s->q, "cont", NULL, NULL, deadline_after_ms(10000)) < 0)
        uvm_log(UVM_LOG_WARNING, s->vm->cfg.id, "save template failed; cont: %s", uvm_last_error());
    if (bridge_call(s->b, PROTO_REQ_RESUME, json_object(), NULL, deadline_after_ms(10000)) < 0)
        uvm_log(UVM_LOG_WARNING, s->vm->cfg.id, "save template failed; resume the agent: %s",
                uvm_last_error());
    uvm_error_restore(&err, 0);
}

static int
save_quiesced(struct save *s)
{
    int rc = qmp_execute(s->q, "stop", NULL, NULL, s->deadline);
    if (rc < 0) {
        undo(s, false);
        return rc;
    }
    rc = qmpm_version(s->q, &s->m.qemu_version, s->deadline);
    if (rc == 0)
        rc = describe(s);
    if (rc == 0)
        rc = save_state(s);
    if (rc == 0)
        rc = save_ram(s);
    if (rc == 0)
        rc = publish(s);
    if (rc < 0)
        undo(s, true);
    return rc;
}

static int
save(struct uvm *vm, const char *dir)
{
    struct save s = {
        .vm = vm, .dir = dir, .dirfd = -1, .deadline = deadline_after_ms(TEMPLATE_SAVE_TIMEOUT_MS)};
    pthread_mutex_lock(&vm->lock);
    int rc = check_saveable(vm);
    if (rc == 0) {
        vm->saving = true;
        s.q = vm->qmp;
        s.b = vm->bridge;
        s.vmm = vm->vmm;
        s.rundir = xstrdup(vm->rd.path);
    }
    pthread_mutex_unlock(&vm->lock);
    if (rc < 0)
        return rc;
    int64_t t0 = now_us();
    rc = tpldir_open_save(dir, &s.dirfd, &s.created);
    if (rc == 0) {
        rc = bridge_call(s.b, PROTO_REQ_QUIESCE, json_object(), NULL, s.deadline);
        if (rc < 0)
            rc = uvm_error_wrap(rc, "save template '%s'", vm->cfg.id);
        if (rc < 0 && s.created)
            (void)rmdir(dir);
    }
    if (rc == 0)
        rc = save_quiesced(&s);
    if (s.dirfd >= 0)
        close(s.dirfd);
    pthread_mutex_lock(&vm->lock);
    vm->saving = false;
    pthread_mutex_unlock(&vm->lock);
    if (rc == 0) {
        uvm_log(UVM_LOG_INFO, vm->cfg.id,
                "saved as template '%s' in %.1f ms (state %llu bytes, RAM %llu of %llu MiB)", dir,
                (double)(now_us() - t0) / 1000.0, (unsigned long long)s.m.state_size,
                (unsigned long long)(s.m.ram_used >> 20), (unsigned long long)vm->cfg.memory_mb);
        rc = uvm_terminate(vm); /* clones map its RAM file: it must not run on */
    }
    tpl_manifest_release(&s.m);
    free(s.rundir);
    return rc;
}

int
uvm_save_template(struct uvm *vm, const char *dir)
{
    if (!vm || !dir || !*dir)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "save template: %s is NULL or empty",
                         vm ? "dir" : "vm");
    return UVM_CALL(vm, "save template", save(vm, dir));
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resource tests' fixture: see fixture.h. The only test file that knows struct uvm. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "argv.h"
#include "bridge.h"
#include "cleanup.h"
#include "fixture.h"
#include "qmp.h"
#include "rdclean.h"
#include "share.h"
#include "timeutil.h"
#include "vm.h"

struct fixture *
fixture_new(const struct fake_qmp_step *steps, size_t n, const struct fixture_config *cfg)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct fake_qmp_step *all = xcalloc(n + 1, sizeof(*all));
    all[0] = (struct fake_qmp_step)FAKE_QMP_HANDSHAKE();
    if (n)
        memcpy(all + 1, steps, n * sizeof(*steps));
    int qfd = -1;
    f->fq = fake_qmp_start(all, n + 1, &qfd);
    free(all);
    struct uvm *vm = uvm_alloc();
    vm->cfg.id = xstrdup("unit");
    vm->cfg.scsi_count = cfg->scsi_count;
    vm->cfg.vpmem_count = cfg->vpmem_count;
    vm->cfg.rootfs_type = cfg->rootfs_type;
    vm->cfg.windows = cfg->windows;
    if (cfg->rundir)
        vm->rd.path = xstrdup(cfg->rundir);
    if (cfg->rundir && cfg->shares) {
        vm->rd.dir_fd = open(cfg->rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(vm->rd.dir_fd >= 0);
        assert_int_equal(share_prepare(vm, &plan9_kind), 0);
        assert_int_equal(share_prepare(vm, &vsmb_kind), 0);
    }
    if (cfg->saveable) {
        vm->cfg.boot_files_path = xstrdup("/boot-files");
        vm->cfg.kernel_path = xstrdup("/boot-files/kernel");
        vm->cfg.rootfs_file = xstrdup("initrd.img");
        vm->cfg.memory_mb = 1;
        vm->argv = xcalloc(4, sizeof(char *));
        vm->argv[0] = xstrdup("true");
        vm->argv[1] = xstrdup("-accel");
        vm->argv[2] = xstrdup("tcg");
        vm->document = xstrdup("{}");
        if (!vm->rd.path)
            vm->rd.path = xstrdup("/run/uvm/unit");
    }
    vm->state = UVM_STATE_RUNNING;
    vm->qmp = qmp_new(qfd, "unit");
    assert_int_equal(qmp_handshake(vm->qmp, deadline_after_ms(5000)), 0);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(bridge_new(sp[0], "unit", false, &vm->bridge), 0);
    /* as uvm_start does with the VM's options (0: the defaults) */
    vm->cfg.timeouts = cfg->timeouts;
    qmp_set_timeouts(vm->qmp,
                     (struct qmp_timeouts){cfg->timeouts.qmp_command_ms, cfg->timeouts.unplug_ms});
    bridge_set_timeouts(vm->bridge, cfg->timeouts.agent_call_ms, cfg->timeouts.container_ms);
    fake_guest_start(&f->guest, sp[1]);
    f->vm = vm;
    return f;
}

/* Stop the peers; fail the test if the QMP script did not run to its end. */
static void
stop_peers(struct fixture *f)
{
    struct uvm *vm = f->vm;
    bridge_free(vm->bridge);
    fake_guest_stop(&f->guest);
    qmp_free(vm->qmp);
    cleanup_free char *failure = NULL;
    if (fake_qmp_finish(f->fq, &failure) < 0)
        fail_msg("fake QMP: %s", failure);
}

static void
free_all(struct fixture *f)
{
    struct uvm *vm = f->vm;
    fake_qmp_free(f->fq);
    vm_release_resources(vm);
    if (vm->rd.dir_fd >= 0) { /* the staging directories, as rundir_release removes them */
        static const char *const staging[] = {ARGV_PLAN9_DIR, VSMB_STAGING_DIR};
        for (size_t i = 0; i < 2; i++) {
            char path[256];
            snprintf(path, sizeof(path), "%s/%s", vm->rd.path, staging[i]);
            umount2(path, MNT_DETACH); /* 9p's bind of itself; vsmb's is a plain directory */
            /* what a resource kept until close left there (a share whose remove failed) */
            int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            assert_true(fd >= 0);
            rdclean_mounts(fd, path, "unit");
            assert_int_equal(rdclean_files(fd, path, "unit"), 0);
            close(fd);
            assert_int_equal(rmdir(path), 0);
        }
        close(vm->rd.dir_fd);
    }
    for (size_t i = 0; i < vm->n_old_documents; i++)
        free(vm->old_documents[i]);
    free(vm->old_documents);
    free(vm->document);
    for (char **a = vm->argv; a && *a; a++)
        free(*a);
    free(vm->argv);
    free(vm->rd.path);
    config_release(&vm->cfg);
    pthread_mutex_destroy(&vm->lock);
    pthread_cond_destroy(&vm->cond);
    free(vm);
    free(f);
}

void
fixture_finish(struct fixture *f, const char *const *want, size_t n_want)
{
    stop_peers(f);
    cleanup_free char *failure = NULL;
    const char **all = xcalloc(n_want + 1, sizeof(char *));
    all[0] = "{'execute':'qmp_capabilities'}";
    for (size_t i = 0; i < n_want; i++)
        all[i + 1] = want[i];
    int rc = fake_qmp_check_commands(f->fq, all, n_want + 1, &failure);
    free(all);
    if (rc < 0)
        fail_msg("QMP stream: %s", failure);
    free_all(f);
}

void
fixture_finish_qemu(struct fixture *f)
{
    stop_peers(f);
    free_all(f);
}

json_t *
fixture_request(struct fixture *f, size_t i)
{
    pthread_mutex_lock(&f->guest.lock);
    json_t *r = json_array_get(f->guest.requests, i);
    pthread_mutex_unlock(&f->guest.lock);
    return r;
}

json_t *
fixture_call(struct fixture *f, size_t i, uint32_t *type)
{
    pthread_mutex_lock(&f->guest.lock);
    json_t *c = json_array_get(f->guest.calls, i);
    pthread_mutex_unlock(&f->guest.lock);
    if (type)
        *type = c ? (uint32_t)json_integer_value(json_array_get(c, 0)) : 0;
    return json_array_get(c, 1);
}

size_t
fixture_call_count(struct fixture *f)
{
    pthread_mutex_lock(&f->guest.lock);
    size_t n = json_array_size(f->guest.calls);
    pthread_mutex_unlock(&f->guest.lock);
    return n;
}

size_t
fixture_request_count(struct fixture *f)
{
    pthread_mutex_lock(&f->guest.lock);
    size_t n = json_array_size(f->guest.requests);
    pthread_mutex_unlock(&f->guest.lock);
    return n;
}

void
fixture_set_state(struct fixture *f, enum fixture_state s)
{
    struct uvm *vm = f->vm;
    pthread_mutex_lock(&vm->lock);
    vm->state = s == FIXTURE_STOPPED      ? UVM_STATE_STOPPED
                : s == FIXTURE_TERMINATED ? UVM_STATE_TERMINATED
                                          : UVM_STATE_RUNNING;
    vm->terminating = s == FIXTURE_TERMINATING;
    pthread_mutex_unlock(&vm->lock);
}

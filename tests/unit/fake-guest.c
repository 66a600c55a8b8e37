/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A fake guest agent and the resource tests' fixture: see fake-guest.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge.h"
#include "cleanup.h"
#include "fake-guest.h"
#include "proto.h"
#include "qmp.h"
#include "timeutil.h"
#include "uvm-internal.h"

static bool
read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

static void *
guest_main(void *arg)
{
    struct fake_guest *g = arg;
    for (;;) {
        uint8_t hdr[PROTO_HEADER_SIZE];
        struct proto_header h;
        if (!read_full(g->fd, hdr, sizeof(hdr)) || proto_header_decode(hdr, &h) < 0)
            break;
        size_t len = h.size - PROTO_HEADER_SIZE;
        cleanup_free char *payload = xcalloc(1, len + 1);
        if (!read_full(g->fd, payload, len))
            break;
        cleanup_json json_t *j = json_loads(payload, 0, NULL);
        json_t *request = json_object_get(j, "Request");
        pthread_mutex_lock(&g->lock);
        json_array_append(g->requests, request);
        bool counts = true;
        if (g->fail_match) {
            const char *res = json_string_value(json_object_get(request, "ResourceType"));
            const char *type = json_string_value(json_object_get(request, "RequestType"));
            char kind[128];
            snprintf(kind, sizeof(kind), "%s/%s", res ? res : "", type ? type : "");
            counts = !strcmp(kind, g->fail_match);
        }
        bool fail = false;
        if (counts && g->fail_skip > 0) {
            g->fail_skip--;
        } else if (counts && g->fail_next > 0) {
            fail = true;
            g->fail_next--;
        }
        unsigned delay = g->delay_ms;
        void (*hook)(void *, const json_t *) = g->on_request;
        const char *(*respond)(void *, uint32_t) = g->respond;
        void *opaque = g->opaque;
        pthread_mutex_unlock(&g->lock);
        if (hook)
            hook(opaque, request);
        if (delay) {
            struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = delay % 1000 * 1000000L};
            nanosleep(&ts, NULL);
        }
        const char *resp = fail ? "{\"Result\":-2147467259,\"ErrorMessage\":\"mount failed\"}"
                                : "{\"Result\":0}";
        const char *custom = !fail && respond ? respond(opaque, h.type) : NULL;
        if (custom)
            resp = custom;
        uint8_t out[PROTO_HEADER_SIZE];
        struct proto_header rh = {.type = PROTO_RESPONSE_OF(h.type),
                                  .size = (uint32_t)(PROTO_HEADER_SIZE + strlen(resp)),
                                  .id = h.id};
        proto_header_encode(out, &rh);
        if (write(g->fd, out, sizeof(out)) != (ssize_t)sizeof(out) ||
            write(g->fd, resp, strlen(resp)) != (ssize_t)strlen(resp))
            break;
    }
    return NULL;
}

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
    vpmem_init(vm);
    vm->state = UVM_STATE_RUNNING;
    vm->qmp = qmp_new(qfd, "unit");
    assert_int_equal(qmp_handshake(vm->qmp, deadline_after_ms(5000)), 0);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(bridge_new(sp[0], "unit", false, &vm->bridge), 0);
    f->guest.fd = sp[1];
    f->guest.requests = json_array();
    pthread_mutex_init(&f->guest.lock, NULL);
    pthread_create(&f->guest.thread, NULL, guest_main, &f->guest);
    f->vm = vm;
    return f;
}

void
fixture_finish(struct fixture *f, const char *const *want, size_t n_want)
{
    struct uvm *vm = f->vm;
    bridge_free(vm->bridge);
    pthread_join(f->guest.thread, NULL);
    close(f->guest.fd);
    qmp_free(vm->qmp);
    cleanup_free char *failure = NULL;
    if (fake_qmp_finish(f->fq, &failure) < 0)
        fail_msg("fake QMP: %s", failure);
    const char **all = xcalloc(n_want + 1, sizeof(char *));
    all[0] = "{'execute':'qmp_capabilities'}";
    for (size_t i = 0; i < n_want; i++)
        all[i + 1] = want[i];
    int rc = fake_qmp_check_commands(f->fq, all, n_want + 1, &failure);
    free(all);
    if (rc < 0)
        fail_msg("QMP stream: %s", failure);
    fake_qmp_free(f->fq);
    scsi_release_all(vm);
    vpmem_release_all(vm);
    netns_release_all(vm);
    free(vm->rd.path);
    config_release(&vm->cfg);
    pthread_mutex_destroy(&vm->lock);
    pthread_cond_destroy(&vm->cond);
    free(vm);
    json_decref(f->guest.requests);
    pthread_mutex_destroy(&f->guest.lock);
    free(f);
}

json_t *
fixture_request(struct fixture *f, size_t i)
{
    pthread_mutex_lock(&f->guest.lock);
    json_t *r = json_array_get(f->guest.requests, i);
    pthread_mutex_unlock(&f->guest.lock);
    return r;
}

size_t
fixture_request_count(struct fixture *f)
{
    pthread_mutex_lock(&f->guest.lock);
    size_t n = json_array_size(f->guest.requests);
    pthread_mutex_unlock(&f->guest.lock);
    return n;
}

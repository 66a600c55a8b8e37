/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fake guest agent and a test fixture for the resource modules (scsi.c, vpmem.c, ...).
 *
 * The fake guest answers every request on its end of a socketpair (the bridge has the other
 * end) with {"Result":0}, or with an error for the next `fail_next` ones, after `delay_ms`; it
 * records the "Request" object of each (ModifySettings) request in `requests`, in order.
 * `fail_match` ("ResourceType/RequestType", e.g. "Network/Remove") limits fail_next and
 * fail_skip to the requests it names; `fail_skip` lets that many pass before failing.
 *
 * fixture_new() gives a running VM (struct uvm, not started: no QEMU) whose QMP peer is a
 * fake_qmp following `steps` after the handshake and whose bridge talks to a fake guest:
 *
 *     struct fixture *f = fixture_new(steps, n, &(struct fixture_config){.scsi_count = 1});
 *     ... uvm_add_scsi(f->vm, ...) ... fixture_request(f, 0) ...
 *     const char *want[] = {...};            the QMP stream expected, handshake excluded
 *     fixture_finish(f, want, n_want);       checks the script and the stream, frees all
 */
#ifndef UVM_TESTS_FAKE_GUEST_H
#define UVM_TESTS_FAKE_GUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fake-qmp.h"
#include "uvm.h"

struct fake_guest {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock; /* guards what follows: tests set them before calls, not during */
    int fail_next;        /* answer the next n requests with an error ("mount failed") */
    int fail_skip;        /* ... after letting this many through */
    const char *fail_match; /* NULL: every request counts, else only "ResourceType/RequestType" */
    unsigned delay_ms;    /* wait before each answer */
    json_t *requests;     /* the "Request" objects received */
    /* Called from the fake guest's thread for each request, before it is answered. */
    void (*on_request)(void *opaque, const json_t *request);
    /* Called from the fake guest's thread: the response text for a request of this type when it
     * is not failed (it must stay valid), or NULL for {"Result":0}. */
    const char *(*respond)(void *opaque, uint32_t type);
    void *opaque;
};

struct fixture_config {
    unsigned scsi_count;
    unsigned vpmem_count;
    enum uvm_rootfs_type rootfs_type;
    bool windows;
    const char *rundir; /* vm->rd.path (a test's temporary directory; not removed), or NULL */
};

struct fixture {
    struct uvm *vm;
    struct fake_qmp *fq;
    struct fake_guest guest;
};

/* A running VM (cfg applied, vpmem_init done) whose QMP peer follows `steps` (n of them, after
 * the handshake, which the fixture adds). */
struct fixture *fixture_new(const struct fake_qmp_step *steps, size_t n,
                            const struct fixture_config *cfg);

/* Close the VM's QMP and bridge, check that the script ran to its end and that the QMP stream
 * was exactly `want` (n_want JSON texts, single quotes allowed, handshake excluded), free all
 * (as at close: scsi/vpmem/netns_release_all; the taps netns.c created stay recorded in
 * cfg->rundir, for rundir.c's cleanup). A mismatch fails the test. */
void fixture_finish(struct fixture *f, const char *const *want, size_t n_want);

/* The i-th request the guest received (borrowed), NULL past the end. */
json_t *fixture_request(struct fixture *f, size_t i);
/* Number of requests the guest received. */
size_t fixture_request_count(struct fixture *f);

#endif

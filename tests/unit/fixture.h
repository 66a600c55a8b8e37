/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The resource tests' fixture: a running VM without QEMU, whose QMP peer is a scripted fake
 * (fake-qmp.h) and whose agent is a fake guest (fake-guest.h).
 *
 *     struct fixture *f = fixture_new(steps, n, &(struct fixture_config){.scsi_count = 1});
 *     ... uvm_add_scsi(f->vm, ...) ... fixture_request(f, 0) ...
 *     const char *want[] = {...};            the QMP stream expected, handshake excluded
 *     fixture_finish(f, want, n_want);       checks the script and the stream, frees all
 *
 * fixture.c is the only test file that knows struct uvm (vm.h): tests observe the
 * library through the public API (uvm.h), the QMP stream the fake peer records, the requests
 * the fake guest records and what later calls do. It must build a VM by hand because a running
 * VM cannot be had through the API without QEMU and a guest; for the same reason
 * fixture_set_state() is the one way to put that VM in a state only QEMU's exit or a concurrent
 * terminate would give it.
 */
#ifndef UVM_TESTS_FIXTURE_H
#define UVM_TESTS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fake-guest.h"
#include "fake-qmp.h"
#include "uvm.h"

struct fixture_config {
    unsigned scsi_count;
    unsigned vpmem_count;
    enum uvm_rootfs_type rootfs_type;
    bool windows;
    const char *rundir; /* the VM's runtime directory path (a test's directory; not removed),
                           or NULL */
    bool shares;        /* (root, with rundir) the staging directories of Plan9 and VSMB shares,
                           as uvm_create makes them; detached and removed at finish */
    struct uvm_timeouts timeouts; /* the VM's deadlines (0: the defaults) */
    bool saveable;      /* with what uvm_save_template reads: boot files, memory, a command
                           line ("true -accel tcg"), a document without files; no QEMU */
};

struct fixture {
    struct uvm *vm;
    struct fake_qmp *fq;
    struct fake_guest guest;
};

/* A running VM (cfg applied) whose QMP peer follows `steps` (n of them, after the handshake,
 * which the fixture adds). */
struct fixture *fixture_new(const struct fake_qmp_step *steps, size_t n,
                            const struct fixture_config *cfg);

/* Close the VM's QMP and bridge, check that the script ran to its end and that the QMP stream
 * was exactly `want` (n_want JSON texts, single quotes allowed, handshake excluded), free all
 * (as at close: the resource records and kind states; the taps netns.c created stay recorded in
 * cfg->rundir, for rundir.c's cleanup). A mismatch fails the test. */
void fixture_finish(struct fixture *f, const char *const *want, size_t n_want);

/* fixture_finish for a script that ends with FAKE_QMP_QEMU(): the stream is not compared (the
 * test checked what QEMU holds instead), the script must have run without failure. */
void fixture_finish_qemu(struct fixture *f);

/* The i-th request the guest received (borrowed), NULL past the end. */
json_t *fixture_request(struct fixture *f, size_t i);
/* Number of requests the guest received. */
size_t fixture_request_count(struct fixture *f);
/* The i-th request of any type the guest received: its whole body (borrowed) and *type (when
 * not NULL); NULL past the end. fixture_call_count: how many. */
json_t *fixture_call(struct fixture *f, size_t i, uint32_t *type);
size_t fixture_call_count(struct fixture *f);

/* States a running fixture VM can be put in (and back to running) without QEMU. */
enum fixture_state {
    FIXTURE_RUNNING,
    FIXTURE_STOPPED,     /* QEMU exited on its own */
    FIXTURE_TERMINATED,  /* uvm_terminate done */
    FIXTURE_TERMINATING, /* running, with a uvm_terminate in progress */
};

/* Put the VM in state s, under its lock. */
void fixture_set_state(struct fixture *f, enum fixture_state s);

#endif

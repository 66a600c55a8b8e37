/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection (issue 14) through the fake QMP peer: for each resource kind, QEMU answers an
 * error to each command of its add and of its remove in turn (fake-qemu.h models what QEMU
 * holds), and the guest agent fails its part of each. After every injected fault:
 *   - the call failed with the injected error (or, for a failure the kind tolerates, succeeded),
 *   - QEMU holds what it held before the call (a failed add left nothing behind; a failed
 *     remove left the resource whole, so that a retry works),
 *   - the bookkeeping is true: a retry of the add succeeds at the slot a clean add takes, and
 *     QEMU then holds what a clean add makes; the remove works,
 *   - no fd is left open (and no memory: the suite runs under ASan's leak checker).
 * Each injected fault and what was checked after it is printed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fake-qemu.h"
#include "faultstate.h"
#include "fixture.h"
#include "uvm.h"

static char dir[64], rundir[96], disk[128], layer[128], pmem[128], p9dir[128], vsmbdir[128];

#define MAC0 "52:54:00:12:34:56"

int __wrap_tap_open(const char *name);

/* The NIC kind opens an existing host tap: a memfd stands in for it (as in test-netns). */
int
__wrap_tap_open(const char *name)
{
    int fd = memfd_create("fake-tap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* ---- the kinds ---------------------------------------------------------------------------- */

struct kind {
    const char *name;
    struct fixture_config cfg;
    /* 0 or the error; *slot: where it landed (-1: the kind has no slot to show) */
    int (*add)(struct uvm *vm, long *slot);
    int (*remove)(struct uvm *vm);
    bool keeps_plug; /* QEMU 7.2 cannot unplug it: a remove leaves QEMU's objects in place */
    /* the add after one whose rollback failed too (NULL: `add`) */
    int (*add_after_broken)(struct uvm *vm, long *slot);
};

static int
scsi_add(struct uvm *vm, long *slot)
{
    int c = -1;
    int32_t l = -1;
    int rc = uvm_add_scsi(vm, disk, "/run/disk", &c, &l);
    *slot = c < 0 ? -1 : (long)c * 1000 + l;
    return rc;
}

static int
scsi_remove(struct uvm *vm)
{
    return uvm_remove_scsi(vm, disk);
}

static int
layer_add(struct uvm *vm, long *slot)
{
    int c = -1;
    int32_t l = -1;
    int rc = uvm_add_scsi_layer(vm, layer, &c, &l);
    *slot = c < 0 ? -1 : (long)c * 1000 + l;
    return rc;
}

static int
layer_remove(struct uvm *vm)
{
    return uvm_remove_scsi(vm, layer);
}

static int
vpmem_add(struct uvm *vm, long *slot)
{
    uint32_t n = 0;
    int rc = uvm_add_vpmem(vm, pmem, true, &n, NULL);
    *slot = rc < 0 ? -1 : (long)n;
    return rc;
}

static int
vpmem_remove(struct uvm *vm)
{
    return uvm_remove_vpmem(vm, pmem);
}

static int
netns_add(struct uvm *vm, long *slot)
{
    const struct uvm_endpoint e = {.mac_address = MAC0, .host_ifname = "lo",
                                   .ip_address = "10.0.0.2", .prefix_length = 24};
    *slot = -1; /* where the NIC went shows in QEMU's objects */
    return uvm_add_netns(vm, "ns1", &e, 1);
}

static int
netns_remove(struct uvm *vm)
{
    return uvm_remove_netns(vm, "ns1");
}

/* After an add whose rollback failed, the NIC's record stays (BROKEN) with its MAC, so the retry
 * needs another one, even when device_add itself failed and no NIC has that MAC (reported: the
 * MAC of a NIC that was never plugged could be given back). */
static int
netns_add_other_mac(struct uvm *vm, long *slot)
{
    const struct uvm_endpoint e = {.mac_address = "52:54:00:12:34:57", .host_ifname = "lo",
                                   .ip_address = "10.0.0.2", .prefix_length = 24};
    *slot = -1;
    return uvm_add_netns(vm, "ns1", &e, 1);
}

static int
plan9_add(struct uvm *vm, long *slot)
{
    *slot = -1; /* no QEMU object: the export is fixed at start */
    return uvm_add_plan9(vm, p9dir, "/mnt/p9", false);
}

static int
plan9_remove(struct uvm *vm)
{
    return uvm_remove_plan9(vm, p9dir);
}

/* The hot-plug slot of the last vhost-user-fs-pci device_add QEMU was sent: its root port. */
static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;
static long last_fs_port = -1;

static void
on_command(void *opaque, const char *command)
{
    (void)opaque;
    json_t *c = json_loads(command, 0, NULL);
    json_t *a = json_object_get(c, "arguments");
    const char *drv = json_string_value(json_object_get(a, "driver"));
    const char *bus = json_string_value(json_object_get(a, "bus"));
    if (drv && !strcmp(drv, "vhost-user-fs-pci") && bus && !strncmp(bus, "rp", 2)) {
        pthread_mutex_lock(&bus_lock);
        last_fs_port = strtol(bus + 2, NULL, 10);
        pthread_mutex_unlock(&bus_lock);
    }
    json_decref(c);
}

static int
vsmb_add(struct uvm *vm, long *slot)
{
    const struct uvm_vsmb_options o = {.read_only = true};
    pthread_mutex_lock(&bus_lock);
    last_fs_port = -1;
    pthread_mutex_unlock(&bus_lock);
    int rc = uvm_add_vsmb(vm, vsmbdir, NULL, &o);
    pthread_mutex_lock(&bus_lock);
    *slot = rc < 0 ? -1 : last_fs_port;
    pthread_mutex_unlock(&bus_lock);
    return rc;
}

static int
vsmb_remove(struct uvm *vm)
{
    return uvm_remove_vsmb(vm, vsmbdir);
}

static const struct kind kinds[] = {
    {"scsi disk", {.scsi_count = 1}, scsi_add, scsi_remove, false, NULL},
    {"scsi layer", {.scsi_count = 1}, layer_add, layer_remove, false, NULL},
    {"vpmem", {.vpmem_count = 4}, vpmem_add, vpmem_remove, true, NULL},
    {"netns + nic", {0}, netns_add, netns_remove, false, netns_add_other_mac},
    {"plan9", {.shares = true}, plan9_add, plan9_remove, false, NULL},
    {"vsmb (virtio-fs)", {.shares = true}, vsmb_add, vsmb_remove, false, NULL},
};

/* ---- helpers ------------------------------------------------------------------------------ */

static struct fixture *
start(const struct kind *k)
{
    static const struct fake_qmp_step qemu[] = {FAKE_QMP_QEMU()};
    struct fixture_config cfg = k->cfg;
    cfg.rundir = rundir;
    struct fixture *f = fixture_new(qemu, 1, &cfg);
    fake_qmp_set_hook(f->fq, on_command, NULL);
    return f;
}

static struct fake_qemu *
qemu_of(struct fixture *f)
{
    return fake_qmp_qemu(f->fq);
}

static char *
objects(struct fixture *f)
{
    return fault_state(f, rundir);
}

static void
expect_objects(struct fixture *f, const char *want, const char *when)
{
    char *got = objects(f);
    if (strcmp(got, want)) {
        print_error("%s: QEMU holds [%s], expected [%s]\n", when, got, want);
        free(got);
        fail();
    }
    free(got);
}

/* What a clean run of the kind does: the commands of its add and remove, what QEMU holds. */
struct clean {
    unsigned add_cmds, remove_cmds;
    size_t add_calls, remove_calls; /* the guest requests of the add, of the remove */
    char *at_request[8];            /* what the VM held when guest request i came (add first) */
    long slot;
    char *before, *added, *removed;
};

/* The fake guest's hook in a clean run: what the VM holds when each guest request comes (the
 * host waits for its answer). */
static struct clean *recording;

static void
record_state(void *opaque, const json_t *request)
{
    (void)request;
    struct clean *c = recording;
    size_t i = 0;
    while (i < ARRAY_SIZE(c->at_request) && c->at_request[i])
        i++;
    assert_true(i < ARRAY_SIZE(c->at_request));
    c->at_request[i] = objects(opaque);
}

static void
clean_run(const struct kind *k, struct clean *c)
{
    struct fixture *f = start(k);
    struct fake_qemu *q = qemu_of(f);
    recording = c;
    pthread_mutex_lock(&f->guest.lock);
    f->guest.on_request = record_state;
    f->guest.opaque = f;
    pthread_mutex_unlock(&f->guest.lock);
    c->before = objects(f);
    unsigned s0 = fake_qemu_served(q);
    assert_int_equal(k->add(f->vm, &c->slot), 0);
    c->added = objects(f);
    unsigned s1 = fake_qemu_served(q);
    c->add_calls = fixture_call_count(f);
    assert_int_equal(k->remove(f->vm), 0);
    c->remove_calls = fixture_call_count(f) - c->add_calls;
    c->removed = objects(f);
    c->add_cmds = s1 - s0;
    c->remove_cmds = fake_qemu_served(q) - s1;
    assert_string_equal(c->removed, k->keeps_plug ? c->added : c->before);
    fixture_finish_qemu(f);
    print_message("%s: add %u commands, remove %u; once added the VM holds [%s] (QEMU objects, "
                  "host entries, daemons)\n",
                  k->name, c->add_cmds, c->remove_cmds, c->added);
}

static void
clean_free(struct clean *c)
{
    free(c->before);
    free(c->added);
    free(c->removed);
    for (size_t i = 0; i < ARRAY_SIZE(c->at_request); i++)
        free(c->at_request[i]);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted union of two object lists (owned). */
static char *
merged(const char *a, const char *b)
{
    cleanup_free char *all = xasprintf("%s %s", a, b);
    char *words[64];
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(all, " ", &save); w && n < 64;
         w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    qsort(words, n, sizeof(char *), cmp_str);
    char *out = xcalloc(1, strlen(a) + strlen(b) + 2);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, words[i]);
    }
    return out;
}

/* Every object of list a is in list b (as many times). */
static bool
within(const char *a, const char *b)
{
    cleanup_free char *as = xstrdup(a), *bs = xstrdup(b);
    for (char *save = NULL, *w = strtok_r(as, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        size_t n = strlen(w);
        char *at = bs;
        while ((at = strstr(at, w)) && ((at > bs && at[-1] != ' ') || (at[n] && at[n] != ' ')))
            at += n;
        if (!at)
            return false;
        memset(at, '-', n); /* taken */
    }
    return true;
}

/* Where a clean add lands, for the report. */
static const char *
slot_text(const struct clean *c)
{
    static char buf[64];
    if (c->slot < 0)
        snprintf(buf, sizeof(buf), "the same QEMU ids");
    else
        snprintf(buf, sizeof(buf), "slot %ld and the same QEMU ids", c->slot);
    return buf;
}

/* The add retried without a fault lands where a clean add does and makes what a clean add makes
 * (with `left`, what an earlier tolerated failure left in QEMU); then a clean remove. */
static void
retry_and_remove(struct fixture *f, const struct kind *k, const struct clean *c, const char *what,
                 const char *left)
{
    long slot = -2;
    int rc = k->add(f->vm, &slot);
    if (rc < 0)
        fail_msg("%s: the retried add failed: %s", what, uvm_last_error());
    assert_int_equal(slot, c->slot);
    cleanup_free char *want = merged(c->added, left);
    expect_objects(f, want, what);
    rc = k->remove(f->vm);
    if (rc < 0)
        fail_msg("%s: the remove after the retry failed: %s", what, uvm_last_error());
}

static char last_err[512]; /* the error of the fault, for the report */

static void
keep_error(void)
{
    snprintf(last_err, sizeof(last_err), "%s", uvm_last_error());
}

/* ---- the faults --------------------------------------------------------------------------- */

/* QEMU fails the n-th command of the add. */
static void
add_qmp_fault(const struct kind *k, const struct clean *c, unsigned n)
{
    size_t fds = fault_open_fds();
    struct fixture *f = start(k);
    struct fake_qemu *q = qemu_of(f);
    fake_qemu_fail_nth(q, n);
    long slot = 0;
    int rc = k->add(f->vm, &slot);
    fake_qemu_fail_nth(q, 0);
    char what[128];
    snprintf(what, sizeof(what), "%s add, command %u (%s) failed", k->name, n,
             fake_qemu_failed(q));
    if (rc != UVM_E_HYPERVISOR || !strstr(uvm_last_error(), "injected failure"))
        fail_msg("%s: the add returned %d: %s", what, rc, uvm_last_error());
    keep_error();
    expect_objects(f, c->before, what);
    retry_and_remove(f, k, c, what, "");
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    if (*last_err)
        print_message("    \"%s\"\n", last_err);
    last_err[0] = '\0';
    print_message("  %s: UVM_E_HYPERVISOR, QEMU holds what it did before, the retry landed as a "
                  "clean add (%s), remove ok, no fd left\n",
                  what, slot_text(c));
}

/* QEMU fails the n-th command of the add and every command after it, the rollback's too: what
 * could not be undone stays in QEMU (until the VM ends), and the ids it holds are not handed
 * out again (fd sets are numbered by QEMU, and a name given to getfd again replaces the fd). */
static void
add_cascade_fault(const struct kind *k, const struct clean *c, unsigned n)
{
    size_t fds = fault_open_fds();
    struct fixture *f = start(k);
    struct fake_qemu *q = qemu_of(f);
    fake_qemu_fail_from(q, n);
    long slot = 0;
    int rc = k->add(f->vm, &slot);
    fake_qemu_fail_nth(q, 0);
    char what[160];
    snprintf(what, sizeof(what), "%s add, command %u (%s) and all after it failed", k->name, n,
             fake_qemu_failed(q));
    if (rc != UVM_E_HYPERVISOR || !strstr(uvm_last_error(), "injected failure"))
        fail_msg("%s: the add returned %d: %s", what, rc, uvm_last_error());
    keep_error();
    cleanup_free char *left = objects(f);
    rc = (*left && k->add_after_broken ? k->add_after_broken : k->add)(f->vm, &slot);
    if (rc < 0)
        fail_msg("%s: the retried add failed: %s", what, uvm_last_error());
    /* The retry succeeding proves it reused no id QEMU kept (the model refuses a duplicate);
     * with nothing kept it is a clean add. */
    cleanup_free char *added = objects(f);
    bool moved = slot != c->slot;
    if (!*left && (moved || strcmp(added, c->added)))
        fail_msg("%s: nothing left, yet the retry got slot %ld and [%s]", what, slot, added);
    rc = k->remove(f->vm);
    if (rc < 0)
        fail_msg("%s: the remove after the retry failed: %s", what, uvm_last_error());
    /* what is left then is what the failure left, or less (a retried getfd replaced a named
     * fd the failed rollback could not close) */
    cleanup_free char *after = objects(f);
    if (!k->keeps_plug && !within(after, left))
        fail_msg("%s: after the remove QEMU holds [%s], more than the failure left [%s]", what,
                 after, left);
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    if (*last_err)
        print_message("    \"%s\"\n", last_err);
    last_err[0] = '\0';
    print_message("  %s: UVM_E_HYPERVISOR, QEMU keeps [%s]; the retry (slot %ld%s) made it "
                  "hold [%s], remove ok, no fd left\n",
                  what, left, slot, moved ? ", another one" : "", added);
}

/* QEMU fails the n-th command of the remove. */
static void
remove_qmp_fault(const struct kind *k, const struct clean *c, unsigned n)
{
    size_t fds = fault_open_fds();
    struct fixture *f = start(k);
    struct fake_qemu *q = qemu_of(f);
    long slot = 0;
    assert_int_equal(k->add(f->vm, &slot), 0);
    fake_qemu_fail_nth(q, n);
    int rc = k->remove(f->vm);
    fake_qemu_fail_nth(q, 0);
    char what[128];
    snprintf(what, sizeof(what), "%s remove, command %u (%s) failed", k->name, n,
             fake_qemu_failed(q));
    const char *outcome;
    if (rc < 0) {
        if (!strstr(uvm_last_error(), "injected failure"))
            fail_msg("%s: the remove returned %d: %s", what, rc, uvm_last_error());
        keep_error();
        /* still attached: the retry finishes the job */
        rc = k->remove(f->vm);
        if (rc < 0)
            fail_msg("%s: the retried remove failed: %s", what, uvm_last_error());
        outcome = "the remove failed, its retry worked";
    } else {
        outcome = "tolerated (the remove succeeded)";
    }
    /* only a refused remove-fd may leave something behind: that fd set */
    cleanup_free char *held = objects(f);
    const char *want = k->keeps_plug ? c->added : c->before;
    const char *left = "";
    if (strcmp(held, want)) {
        cleanup_free char *with_set = merged(want, "fdset:*");
        if (rc < 0 || strcmp(fake_qemu_failed(q), "remove-fd") || strcmp(held, with_set))
            fail_msg("%s: QEMU holds [%s] after the remove, expected [%s]", what, held, want);
        outcome = "tolerated: QEMU keeps that fd set until the VM ends";
        left = "fdset:*";
    }
    retry_and_remove(f, k, c, what, left);
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    if (*last_err)
        print_message("    \"%s\"\n", last_err);
    last_err[0] = '\0';
    print_message("  %s: %s, QEMU holds [%s], the next add landed as a clean one (%s), no fd "
                  "left\n",
                  what, outcome, held, slot_text(c));
}

/* The remove's retry, with its first command failing too: 0 when the retry failed with the
 * injected error and changed nothing QEMU holds (`held`), 1 when it had nothing left to send. */
static int
retry_fails(struct fixture *f, const struct kind *k, const char *what, const char *held)
{
    struct fake_qemu *q = qemu_of(f);
    unsigned s0 = fake_qemu_served(q);
    fake_qemu_fail_nth(q, 1);
    int rc = k->remove(f->vm);
    fake_qemu_fail_nth(q, 0);
    if (fake_qemu_served(q) == s0) { /* no QMP command left: the retry is the guest's alone */
        if (rc < 0)
            fail_msg("%s: the retry failed: %s", what, uvm_last_error());
        return 1;
    }
    if (rc != UVM_E_HYPERVISOR || !strstr(uvm_last_error(), "injected failure"))
        fail_msg("%s: the retry with its first command failing returned %d: %s", what, rc,
                 uvm_last_error());
    expect_objects(f, held, what);
    return 0;
}

/* QEMU fails the n-th command of the remove and every one after it; then the retry fails at
 * its first command; then a retry without a fault finishes the remove. A remove has no
 * rollback: it keeps the record with what is left, and each retry resumes there. */
static void
remove_cascade_fault(const struct kind *k, const struct clean *c, unsigned n)
{
    size_t fds = fault_open_fds();
    struct fixture *f = start(k);
    struct fake_qemu *q = qemu_of(f);
    long slot = 0;
    assert_int_equal(k->add(f->vm, &slot), 0);
    fake_qemu_fail_from(q, n);
    int rc = k->remove(f->vm);
    fake_qemu_fail_nth(q, 0);
    char what[160];
    snprintf(what, sizeof(what), "%s remove, command %u (%s) and all after it failed", k->name, n,
             fake_qemu_failed(q));
    cleanup_free char *held = objects(f);
    const char *outcome = "tolerated (the remove succeeded)";
    if (rc < 0) {
        if (rc != UVM_E_HYPERVISOR || !strstr(uvm_last_error(), "injected failure"))
            fail_msg("%s: the remove returned %d: %s", what, rc, uvm_last_error());
        keep_error();
        bool done = retry_fails(f, k, what, held);
        outcome = done ? "failed; the retry had no QMP command left and worked"
                       : "failed; its retry failing at its first command changed nothing; a "
                         "clean retry worked";
        if (!done && k->remove(f->vm) < 0)
            fail_msg("%s: the clean retry failed: %s", what, uvm_last_error());
    }
    cleanup_free char *after = objects(f);
    const char *want = k->keeps_plug ? c->added : c->before;
    cleanup_free char *with_set = merged(want, "fdset:*");
    bool set_left = strcmp(after, want) != 0;
    if (set_left && strcmp(after, with_set))
        fail_msg("%s: QEMU holds [%s] after the remove, expected [%s]", what, after, want);
    retry_and_remove(f, k, c, what, set_left ? "fdset:*" : "");
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    if (*last_err)
        print_message("    \"%s\"\n", last_err);
    last_err[0] = '\0';
    print_message("  %s: %s; the VM then held [%s]%s, the next add landed as a clean one (%s), "
                  "no fd left\n",
                  what, outcome, after, set_left ? " (a refused remove-fd's set)" : "",
                  slot_text(c));
}

/* The guest agent fails its part of the add (when = 0) or of the remove (when = 1). */
static void
guest_fault(const struct kind *k, const struct clean *c, int when)
{
    size_t fds = fault_open_fds();
    struct fixture *f = start(k);
    long slot = 0;
    if (when == 1)
        assert_int_equal(k->add(f->vm, &slot), 0);
    pthread_mutex_lock(&f->guest.lock);
    f->guest.fail_next = 1;
    pthread_mutex_unlock(&f->guest.lock);
    int rc = when == 0 ? k->add(f->vm, &slot) : k->remove(f->vm);
    pthread_mutex_lock(&f->guest.lock);
    f->guest.fail_next = 0;
    pthread_mutex_unlock(&f->guest.lock);
    const char *what = when == 0 ? "add" : "remove";
    if (rc != UVM_E_GUEST)
        fail_msg("%s %s with the guest failing: %d: %s", k->name, what, rc, uvm_last_error());
    keep_error();
    /* a failed add undoes QEMU's part, but a device QEMU 7.2 cannot unplug stays, kept for
     * the image */
    expect_objects(f, when == 0 && !k->keeps_plug ? c->before : c->added, what);
    if (when == 1 && k->remove(f->vm) < 0)
        fail_msg("%s: the retried remove failed: %s", k->name, uvm_last_error());
    retry_and_remove(f, k, c, what, "");
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    if (*last_err)
        print_message("    \"%s\"\n", last_err);
    last_err[0] = '\0';
    print_message("  %s %s, the guest failing: UVM_E_GUEST, QEMU holds what it did before%s, "
                  "the retry landed as a clean one (%s), no fd left\n",
                  k->name, what, when == 0 && k->keeps_plug ? " and the device kept" : "",
                  slot_text(c));
}

/* "ResourceType RequestType" of the i-th guest request (a ModifySettings one). */
static char *
request_name(struct fixture *f, size_t i)
{
    json_t *r = json_object_get(fixture_call(f, i, NULL), "Request");
    const char *res = json_string_value(json_object_get(r, "ResourceType"));
    const char *type = json_string_value(json_object_get(r, "RequestType"));
    return xasprintf("%s %s", res ? res : "?", type ? type : "?");
}

#define FROZEN_MS 300 /* agent_call_ms of the frozen-guest series */

/* Late answers the bridge dropped (its log line), counted by the log handler. */
static pthread_mutex_t drop_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned dropped;

static void
count_drops(void *opaque, enum uvm_log_level level, const char *vm_id, const char *message)
{
    (void)opaque, (void)level, (void)vm_id;
    if (strstr(message, "dropped a response with unknown id")) {
        pthread_mutex_lock(&drop_lock);
        dropped++;
        pthread_mutex_unlock(&drop_lock);
    }
}

static unsigned
drops(void)
{
    pthread_mutex_lock(&drop_lock);
    unsigned n = dropped;
    pthread_mutex_unlock(&drop_lock);
    return n;
}

/* The guest agent receives the n-th request of the add (when = 0) or of the remove (when = 1)
 * and never answers it (frozen): the call fails at agent_call_ms naming the option; an add is
 * rolled back (its guest part was never confirmed) and a remove stops there: the VM holds what
 * it held when that request went out (nothing more is unplugged under a guest that may still
 * use it; a clean run recorded it), and the record keeps what is left. Then the guest thaws, answers late
 * (the bridge drops that answer by its id), and the retry lands as a clean one. */
static void
frozen_fault(const struct kind *k, const struct clean *c, int when, size_t n)
{
    size_t fds = fault_open_fds();
    struct fixture_config cfg = k->cfg;
    cfg.rundir = rundir;
    cfg.timeouts.agent_call_ms = FROZEN_MS;
    static const struct fake_qmp_step qemu[] = {FAKE_QMP_QEMU()};
    struct fixture *f = fixture_new(qemu, 1, &cfg);
    fake_qmp_set_hook(f->fq, on_command, NULL);
    long slot = 0;
    if (when == 1)
        assert_int_equal(k->add(f->vm, &slot), 0);
    size_t calls = fixture_call_count(f);
    unsigned drops0 = drops();
    pthread_mutex_lock(&f->guest.lock);
    f->guest.freeze_skip = (int)n - 1;
    f->guest.freeze_next = 1;
    pthread_mutex_unlock(&f->guest.lock);
    int rc = when == 0 ? k->add(f->vm, &slot) : k->remove(f->vm);
    cleanup_free char *step = request_name(f, calls + n - 1);
    char what[160];
    snprintf(what, sizeof(what), "%s %s, the guest frozen at request %zu (%s)", k->name,
             when == 0 ? "add" : "remove", n, step);
    /* the call, the step and the deadline's option */
    cleanup_free char *want = xasprintf("the guest agent did not answer ModifySettings (%s) in "
                                        "time (uvm_options.timeouts.agent_call_ms: %d ms)",
                                        step, FROZEN_MS);
    const char *verb = when == 0 ? "add " : "remove ";
    if (rc != UVM_E_TIMEOUT || !strstr(uvm_last_error(), want) ||
        (strncmp(uvm_last_error(), verb, strlen(verb)) &&
         strncmp(uvm_last_error(), "failed to remove ", 17)))
        fail_msg("%s: the call returned %d: %s", what, rc, uvm_last_error());
    keep_error();
    cleanup_free char *held = objects(f);
    expect_objects(f,
                   when == 1       ? c->at_request[c->add_calls + n - 1]
                   : k->keeps_plug ? c->added
                                   : c->before,
                   what);
    fake_guest_thaw(&f->guest); /* the late answer comes: dropped by its id */
    if (when == 1 && k->remove(f->vm) < 0)
        fail_msg("%s: the retried remove failed: %s", what, uvm_last_error());
    retry_and_remove(f, k, c, what, "");
    /* the late answer came before the retry's (the agent answers in order): dropped */
    if (drops() == drops0)
        fail_msg("%s: the late answer was not seen (dropped) before the retry's", what);
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    print_message("    \"%s\"\n", last_err);
    last_err[0] = '\0';
    print_message("  %s: UVM_E_TIMEOUT naming agent_call_ms, the VM holds [%s]%s; thawed, the "
                  "late answer dropped, %sthe retry landed as a clean one (%s), no fd left\n",
                  what, held,
                  when == 1       ? " (as when the request went out)"
                  : k->keeps_plug ? " (the device kept)"
                                  : "",
                  when == 1 ? "the retried remove worked, " : "", slot_text(c));
}

static void
run_kind(const struct kind *k)
{
    struct clean c = {0};
    clean_run(k, &c);
    for (unsigned n = 1; n <= c.add_cmds; n++)
        add_qmp_fault(k, &c, n);
    for (unsigned n = 1; n <= c.add_cmds; n++)
        add_cascade_fault(k, &c, n);
    for (unsigned n = 1; n <= c.remove_cmds; n++)
        remove_qmp_fault(k, &c, n);
    for (unsigned n = 1; n <= c.remove_cmds; n++)
        remove_cascade_fault(k, &c, n);
    guest_fault(k, &c, 0);
    guest_fault(k, &c, 1);
    for (size_t n = 1; n <= c.add_calls; n++)
        frozen_fault(k, &c, 0, n);
    for (size_t n = 1; n <= c.remove_calls; n++)
        frozen_fault(k, &c, 1, n);
    clean_free(&c);
}

/* Every fault of one kind (the test's state: its entry of kinds[]). */
static void
test_kind(void **state)
{
    run_kind(*state);
}

/* A share added while the runtime directory has no inode left (a tiny tmpfs): the staging
 * entry cannot be made; the add fails saying so and leaves nothing; once there is room again
 * the retry lands as a clean add. */
static void
share_enospc(const struct kind *k, const char *tiny)
{
    struct clean c = {0};
    clean_run(k, &c);
    char saved[96];
    snprintf(saved, sizeof(saved), "%s", rundir);
    snprintf(rundir, sizeof(rundir), "%s", tiny); /* the fixture's and objects()' */
    size_t fds = fault_open_fds();
    struct fixture *f = start(k);
    fault_fill(tiny, true);
    long slot = 0;
    int rc = k->add(f->vm, &slot);
    if (rc != -ENOSPC || !strstr(uvm_last_error(), strerror(ENOSPC)))
        fail_msg("%s add without an inode: %d %s", k->name, rc, uvm_last_error());
    keep_error();
    expect_objects(f, c.before, "the add without an inode");
    fault_unfill(tiny);
    retry_and_remove(f, k, &c, "the add without an inode", "");
    fixture_finish_qemu(f);
    assert_int_equal(fault_open_fds(), fds);
    snprintf(rundir, sizeof(rundir), "%s", saved);
    print_message("    \"%s\"\n  %s add, no inode left in the runtime directory: -ENOSPC, the VM "
                  "holds what it did before, the retry with room landed as a clean add (%s), "
                  "no fd left\n",
                  last_err, k->name, slot_text(&c));
    last_err[0] = '\0';
    clean_free(&c);
}

static void
test_shares_enospc(void **state)
{
    char tiny[96];
    snprintf(tiny, sizeof(tiny), "%s/tiny", dir);
    assert_int_equal(mkdir(tiny, 0700), 0);
    assert_int_equal(
        mount("tmpfs", tiny, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=64,mode=0700"), 0);
    share_enospc(&kinds[4], tiny);
    share_enospc(&kinds[5], tiny);
    assert_int_equal(umount(tiny), 0);
}

static void
make_file(const char *path, const char *head, off_t size)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (head)
        fputs(head, fp);
    fclose(fp);
    if (size)
        assert_int_equal(truncate(path, size), 0);
}

static int
setup(void **state)
{
    uvm_set_log_handler(count_drops, NULL, UVM_LOG_WARNING);
    strcpy(dir, "/tmp/uvm-faults-unit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(rundir, sizeof(rundir), "%s/run", dir);
    assert_int_equal(mkdir(rundir, 0700), 0);
    snprintf(disk, sizeof(disk), "%s/disk.img", dir);
    snprintf(layer, sizeof(layer), "%s/layer.vhdx", dir);
    snprintf(pmem, sizeof(pmem), "%s/pmem.img", dir);
    make_file(disk, "raw data", 0);
    make_file(layer, "vhdxfile and more", 0);
    make_file(pmem, NULL, 2 << 20);
    snprintf(p9dir, sizeof(p9dir), "%s/p9share", dir);
    snprintf(vsmbdir, sizeof(vsmbdir), "%s/vsmbshare", dir);
    assert_int_equal(mkdir(p9dir, 0755), 0);
    assert_int_equal(mkdir(vsmbdir, 0755), 0);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        {"scsi_disk", test_kind, NULL, NULL, (void *)&kinds[0]},
        {"scsi_layer", test_kind, NULL, NULL, (void *)&kinds[1]},
        {"vpmem", test_kind, NULL, NULL, (void *)&kinds[2]},
        {"netns_nic", test_kind, NULL, NULL, (void *)&kinds[3]},
        {"plan9", test_kind, NULL, NULL, (void *)&kinds[4]},
        {"vsmb", test_kind, NULL, NULL, (void *)&kinds[5]},
        cmocka_unit_test(test_shares_enospc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

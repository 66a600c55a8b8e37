/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VPMem orchestration against a scripted fake QMP peer and a fake guest agent: the exact QMP
 * stream and guest requests of each operation, parking, rollback, device numbers and buses,
 * padded copies, errors, concurrent adds. */
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "fake-qmp.h"
#include "fixture.h"
#include "vpmem.h" /* UVM_MAX_VPMEM */

#define MiB (1024u * 1024u)
#define NIMG 6

static char dir[64], rundir[96];
static char img[NIMG][128];             /* 2 MiB raw images (distinct files) */
static char big[128];                   /* 4 MiB raw */
static char odd[128];                   /* 3 MiB + 5 bytes raw: padded copy */
static char fixed[128], fixed_odd[128]; /* fixed VHDs: 2 MiB / 1 MiB of data + footer */
static char qcow[128], dynvhd[128], vhdx[128], empty[128];
static char fill[UVM_MAX_VPMEM][128]; /* 2 MiB raw images that take devices (take_devices) */

/* ---- expected QMP commands and guest requests ---- */

/* add-fd carries the image's (or the padded copy's) open file; the reply names set `set` and
 * QEMU's fd `fd`, which object-add then maps as /proc/self/fd/<fd>. */
#define ADD_FD "{'execute':'add-fd'}"
#define FDSET(set, fd) "{'return':{'fdset-id':" #set ",'fd':" #fd "}}"

static char *
remove_fd(int set)
{
    return xasprintf("{'execute':'remove-fd','arguments':{'fdset-id':%d}}", set);
}

static char *
object_add(unsigned n, int qemu_fd, uint64_t size)
{
    return xasprintf("{'execute':'object-add','arguments':{'qom-type':'memory-backend-file',"
                     "'id':'vpmem%u-mem','mem-path':'/proc/self/fd/%d','size':%llu,'share':true,"
                     "'readonly':true}}",
                     n, qemu_fd, (unsigned long long)size);
}

static char *
device_add(unsigned n, unsigned bridge, unsigned slot)
{
    return xasprintf("{'execute':'device_add','arguments':{'driver':'virtio-pmem-pci',"
                     "'id':'vpmem%u','memdev':'vpmem%u-mem','bus':'vpmembr%u','addr':'%x.0'}}",
                     n, n, bridge, slot);
}

static char *
object_del(unsigned n)
{
    return xasprintf("{'execute':'object-del','arguments':{'id':'vpmem%u-mem'}}", n);
}

/* Owned strings for one test's expected stream, freed together. */
struct want {
    char *s[3 * UVM_MAX_VPMEM + 32];
    size_t n;
};

static const char *
want_add(struct want *w, char *s)
{
    assert_true(w->n < sizeof(w->s) / sizeof(w->s[0]));
    w->s[w->n++] = s;
    return s;
}

static void
want_free(struct want *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->s[i]);
    w->n = 0;
}

/* The guest's i-th request is exactly this VPMemDevice request (size 0: no BackingSize). */
static void
check_request(struct fixture *f, size_t i, const char *type, unsigned n, const char *mount,
              uint64_t size)
{
    json_t *settings = json_pack("{s:i, s:s}", "DeviceNumber", (int)n, "MountPath", mount);
    if (size)
        json_object_set_new(settings, "BackingSize", json_integer((json_int_t)size));
    json_t *want = json_pack("{s:s, s:s, s:o}", "ResourceType", "VPMemDevice", "RequestType", type,
                             "Settings", settings);
    json_t *got = fixture_request(f, i);
    if (!got || !json_equal(got, want)) {
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("(none)");
        fail_msg("guest request %zu: expected %s, got %s", i, w, g);
    }
    json_decref(want);
}

/* The files handed to QEMU (fake QMP fd hook), in order. */
struct passed {
    pthread_mutex_t lock;
    unsigned count;
    struct stat st[8];
    int accmode[8];
};

static void
record_fd(void *opaque, const char *command, int fd)
{
    struct passed *p = opaque;
    pthread_mutex_lock(&p->lock);
    if (p->count < 8) {
        assert_int_equal(fstat(fd, &p->st[p->count]), 0);
        p->accmode[p->count] = fcntl(fd, F_GETFL) & O_ACCMODE;
    }
    p->count++;
    pthread_mutex_unlock(&p->lock);
}

static struct passed *
watch_fds(struct fixture *f)
{
    struct passed *p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    fake_qmp_set_fd_hook(f->fq, record_fd, p);
    return p;
}

/* The i-th file passed is `path` (same inode), opened read-only. */
static void
check_passed(struct passed *p, unsigned i, const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    pthread_mutex_lock(&p->lock);
    assert_true(i < p->count);
    if (p->st[i].st_ino != st.st_ino || p->st[i].st_dev != st.st_dev)
        fail_msg("file %u passed to QEMU is not %s", i, path);
    assert_int_equal(p->accmode[i], O_RDONLY);
    pthread_mutex_unlock(&p->lock);
}

static void
passed_free(struct passed *p)
{
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- images ---- */

static void
make_file(char *path, size_t cap, const char *name, uint64_t size, const char *head,
          bool vhd_footer)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (head)
        fwrite(head, 1, strlen(head), fp);
    /* a recognisable pattern at the start, so that a copy can be compared */
    for (unsigned i = 0; i < 4096 && (head ? strlen(head) : 0) + i < size; i++)
        fputc((int)(i * 7 % 251), fp);
    fclose(fp);
    assert_int_equal(truncate(path, (off_t)size), 0);
    if (vhd_footer) {
        fp = fopen(path, "a");
        char foot[512] = "conectix";
        fwrite(foot, 1, sizeof(foot), fp);
        fclose(fp);
    }
}

#define MAKE(var, name, size, head, foot) make_file(var, sizeof(var), name, size, head, foot)

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-vpmem-unit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(rundir, sizeof(rundir), "%s/run", dir);
    assert_int_equal(mkdir(rundir, 0700), 0);
    for (unsigned i = 0; i < NIMG; i++) {
        char name[32];
        snprintf(name, sizeof(name), "layer%u.img", i);
        MAKE(img[i], name, 2 * MiB, NULL, false);
    }
    MAKE(big, "big.img", 4 * MiB, NULL, false);
    MAKE(odd, "odd.img", 3 * MiB + 5, NULL, false);
    MAKE(fixed, "fixed.vhd", 2 * MiB, NULL, true);
    MAKE(fixed_odd, "fixed-odd.vhd", 1 * MiB, NULL, true);
    MAKE(qcow, "layer.qcow2", 2 * MiB, "QFI\xfb", false);
    /* a qcow2 v3 header without a backing file (one with a backing file is refused earlier) */
    static const unsigned char v3[16] = {0, 0, 0, 3};
    FILE *fp = fopen(qcow, "r+");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 4, SEEK_SET), 0);
    assert_int_equal(fwrite(v3, 1, sizeof(v3), fp), sizeof(v3));
    fclose(fp);
    MAKE(dynvhd, "dynamic.vhd", 2 * MiB, "conectix", false);
    MAKE(vhdx, "layer.vhdx", 2 * MiB, "vhdxfile", false);
    MAKE(empty, "empty.img", 0, NULL, false);
    for (unsigned n = 0; n < UVM_MAX_VPMEM; n++) {
        snprintf(fill[n], sizeof(fill[n]), "%s/fill%u.img", dir, n);
        FILE *ff = fopen(fill[n], "w");
        assert_non_null(ff);
        fclose(ff);
        assert_int_equal(truncate(fill[n], 2 * MiB), 0);
    }
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

#define LINUX(count) (&(struct fixture_config){.vpmem_count = (count), .rundir = rundir})

/* ---- the bookkeeping, seen through calls ---- */

/* uvm_add_vpmem, killing the test (SIGALRM) when it does not return within 10 s: a new image's
 * add waits while another hot-add is in progress, so one never marked finished would hang. */
static int
add_vpmem(struct fixture *f, const char *path, bool expose, uint32_t *loc, char **uvm_path)
{
    alarm(10);
    int rc = uvm_add_vpmem(f->vm, path, expose, loc, uvm_path);
    alarm(0);
    return rc;
}

/* `path` is parked at device n with `size` bytes: it is not attached (a remove is refused),
 * and re-adding it maps it at n again with no QMP (the caller's stream shows none) and one
 * guest Add of that size; it is attached again afterwards. */
static void
check_parked(struct fixture *f, const char *path, unsigned n, uint64_t size)
{
    assert_int_equal(uvm_remove_vpmem(f->vm, path), UVM_E_NOT_ATTACHED);
    size_t requests = fixture_request_count(f);
    uint32_t loc = 99;
    assert_int_equal(add_vpmem(f, path, false, &loc, NULL), 0);
    assert_int_equal(loc, n);
    assert_int_equal(fixture_request_count(f), requests + 1);
    check_request(f, requests, "Add", n, "", size);
}

/* `path` is attached at n with uvm path `mount` and exactly `refs` references: re-adding it
 * returns n and `mount` with nothing sent (a reference more), and refs + 1 removes later the
 * last one (only) sends the guest's Remove, which parks it. */
static void
check_attached(struct fixture *f, const char *path, unsigned n, const char *mount, unsigned refs)
{
    size_t requests = fixture_request_count(f);
    uint32_t loc = 99;
    char *got = NULL;
    assert_int_equal(add_vpmem(f, path, true, &loc, &got), 0);
    assert_int_equal(loc, n);
    assert_string_equal(got, mount);
    free(got);
    for (unsigned i = 0; i < refs; i++) {
        assert_int_equal(uvm_remove_vpmem(f->vm, path), 0);
        assert_int_equal(fixture_request_count(f), requests);
    }
    assert_int_equal(uvm_remove_vpmem(f->vm, path), 0);
    assert_int_equal(fixture_request_count(f), requests + 1);
    check_request(f, requests, "Remove", n, mount, 0);
}

/* Devices are taken through the API: fill[n] at device n, fd set 1000 + n, QEMU fd 2000 + n. */
struct script {
    struct fake_qmp_step steps[3 * UVM_MAX_VPMEM + 32];
    size_t n;
    struct want replies; /* owned texts of the steps that are not expected commands */
};

static void
script_step(struct script *s, struct fake_qmp_step step)
{
    assert_true(s->n < ARRAY_SIZE(s->steps));
    s->steps[s->n++] = step;
}

/* The QMP steps of take_devices(f, from, to), expected in w; hot index n - 1 after a VHD boot. */
static void
take_steps(struct script *s, struct want *w, unsigned from, unsigned to, bool vhd)
{
    for (unsigned n = from; n < to; n++) {
        unsigned h = n - (vhd ? 1 : 0);
        script_step(s, (struct fake_qmp_step)FAKE_QMP_CMD_FD(
                           want_add(w, xstrdup(ADD_FD)),
                           want_add(&s->replies, xasprintf("{'return':{'fdset-id':%u,'fd':%u}}",
                                                           1000 + n, 2000 + n))));
        script_step(s, (struct fake_qmp_step)FAKE_QMP_CMD(
                           want_add(w, object_add(n, (int)(2000 + n), 2 * MiB)), FAKE_QMP_OK));
        script_step(s, (struct fake_qmp_step)FAKE_QMP_CMD(
                           want_add(w, device_add(n, h / 31, h % 31)), FAKE_QMP_OK));
    }
}

/* Devices from..to-1 taken by fill images, through uvm_add_vpmem (each the first free number). */
static void
take_devices(struct fixture *f, unsigned from, unsigned to)
{
    for (unsigned n = from; n < to; n++) {
        uint32_t loc = 999;
        assert_int_equal(add_vpmem(f, fill[n], false, &loc, NULL), 0);
        assert_int_equal(loc, n);
    }
}

/* ---- first add, refcount, remove, parked ---- */

static void
test_first_add(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(1, 102, 4 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(1, 0, 1)), FAKE_QMP_OK),
        /* device 2 was never handed out */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(3, 103)),
        FAKE_QMP_CMD(want_add(&w, object_add(2, 103, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(2, 0, 2)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    struct passed *passed = watch_fds(f);
    uint32_t loc = 99;
    char *path = NULL;
    /* exposed: mounted at /tmp/p<n> */
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, &loc, &path), 0);
    assert_int_equal(loc, 0);
    assert_string_equal(path, "/tmp/p0");
    free(path);
    assert_int_equal(fixture_request_count(f), 1);
    check_request(f, 0, "Add", 0, "/tmp/p0", 2 * MiB);
    /* not exposed: the guest only waits for the device; the path is "" */
    assert_int_equal(uvm_add_vpmem(f->vm, big, false, &loc, &path), 0);
    assert_int_equal(loc, 1);
    assert_string_equal(path, "");
    free(path);
    assert_int_equal(fixture_request_count(f), 2);
    check_request(f, 1, "Add", 1, "", 4 * MiB);
    /* each image attached with one reference at its number, its size kept when parked */
    check_attached(f, img[0], 0, "/tmp/p0", 1);
    check_parked(f, img[0], 0, 2 * MiB);
    check_attached(f, big, 1, "", 1);
    check_parked(f, big, 1, 4 * MiB);
    /* no hot-add is left in progress, and the next image gets the next number */
    assert_int_equal(add_vpmem(f, img[1], true, &loc, NULL), 0);
    assert_int_equal(loc, 2);
    /* QEMU got the images themselves, read-only */
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    assert_int_equal(passed->count, 3);
    check_passed(passed, 0, img[0]);
    check_passed(passed, 1, big);
    check_passed(passed, 2, img[1]);
    passed_free(passed);
}

static void
test_refcount_and_remove(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, NULL, NULL), 0);
    /* Re-adding takes a reference: no QMP, no guest request, the stored number and path (expose
     * is ignored). A symlink to the same file is the same image. */
    char link[160];
    snprintf(link, sizeof(link), "%s/link.img", dir);
    assert_int_equal(symlink(img[0], link), 0);
    uint32_t loc = 99;
    char *path = NULL;
    assert_int_equal(uvm_add_vpmem(f->vm, link, false, &loc, &path), 0);
    assert_int_equal(loc, 0);
    assert_string_equal(path, "/tmp/p0");
    free(path);
    assert_int_equal(fixture_request_count(f), 1);
    /* The first remove drops a reference only (two were held). */
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    assert_int_equal(fixture_request_count(f), 1);
    /* The last one unmounts in the guest and parks the device: no QMP. */
    assert_int_equal(uvm_remove_vpmem(f->vm, link), 0);
    assert_int_equal(fixture_request_count(f), 2);
    check_request(f, 1, "Remove", 0, "/tmp/p0", 0);
    /* A parked image is not attached; its device is kept for it. */
    check_parked(f, img[0], 0, 2 * MiB);
    unlink(link);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_remove_not_exposed(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], false, NULL, NULL), 0);
    /* Remove is always sent (as hcsshim), with the empty mount path. */
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    assert_int_equal(fixture_request_count(f), 2);
    check_request(f, 0, "Add", 0, "", 2 * MiB);
    check_request(f, 1, "Remove", 0, "", 0);
    check_parked(f, img[0], 0, 2 * MiB);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_readd_parked(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
        /* another image never gets the parked number */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(1, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(1, 0, 1)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, NULL, NULL), 0);
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    /* The parked device is mapped again: no hot-plug, a guest Add with the new mount path. */
    uint32_t loc = 99;
    char *path = NULL;
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], false, &loc, &path), 0);
    assert_int_equal(loc, 0);
    assert_string_equal(path, "");
    free(path);
    assert_int_equal(fixture_request_count(f), 3);
    check_request(f, 2, "Add", 0, "", 2 * MiB);
    /* attached with one reference: the next remove sends the guest's Remove */
    /* and again, exposed this time */
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    check_request(f, 3, "Remove", 0, "", 0);
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, &loc, &path), 0);
    assert_int_equal(loc, 0);
    assert_string_equal(path, "/tmp/p0");
    free(path);
    check_request(f, 4, "Add", 0, "/tmp/p0", 2 * MiB);
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    check_request(f, 5, "Remove", 0, "/tmp/p0", 0);
    assert_int_equal(uvm_add_vpmem(f->vm, img[1], true, &loc, NULL), 0);
    assert_int_equal(loc, 1);
    check_request(f, 6, "Add", 1, "/tmp/p1", 2 * MiB);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

/* ---- failures and rollback ---- */

static void
test_device_add_failure_rolls_back(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)),
                     FAKE_QMP_ERROR("GenericError",
                                    "Bus \\'vpmembr0\\' does not support hotplugging")),
        FAKE_QMP_CMD(want_add(&w, object_del(0)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, remove_fd(1)), FAKE_QMP_OK),
        /* the number is free again: the next add takes it */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    uint32_t loc = 99;
    char *path = (char *)"untouched";
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, &loc, &path), UVM_E_HYPERVISOR);
    assert_null(path);
    assert_int_equal(loc, 99);
    assert_non_null(strstr(uvm_last_error(), "does not support hotplugging"));
    assert_non_null(strstr(uvm_last_error(), img[0]));
    assert_int_equal(fixture_request_count(f), 0);
    /* nothing kept for the image, no hot-add left in progress, number 0 free again */
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), UVM_E_NOT_ATTACHED);
    assert_int_equal(add_vpmem(f, img[1], true, &loc, NULL), 0);
    assert_int_equal(loc, 0);
    check_request(f, 0, "Add", 0, "/tmp/p0", 2 * MiB);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_rollback_failure_breaks_number(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_ERROR("GenericError", "no slot")),
        FAKE_QMP_CMD(want_add(&w, object_del(0)), FAKE_QMP_ERROR("GenericError", "object busy")),
        FAKE_QMP_CMD(want_add(&w, remove_fd(1)), FAKE_QMP_OK),
        /* number 0 is never reused, not even for the same image */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(1, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(1, 0, 1)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(2));
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, NULL, NULL), UVM_E_HYPERVISOR);
    /* the user hears about device_add, not about the failed rollback */
    assert_non_null(strstr(uvm_last_error(), "no slot"));
    assert_null(strstr(uvm_last_error(), "object busy"));
    /* number 0 is kept for nobody, not even img[0]: it gets 1 (and no hot-add is left
     * in progress) */
    uint32_t loc = 99;
    assert_int_equal(add_vpmem(f, img[0], true, &loc, NULL), 0);
    assert_int_equal(loc, 1);
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    /* table full: the message says why (one parked, one broken) */
    assert_int_equal(uvm_add_vpmem(f->vm, img[1], true, &loc, NULL), UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(strstr(uvm_last_error(), "2 of them kept plugged"));
    assert_non_null(strstr(uvm_last_error(), "failed rollback"));
    check_parked(f, img[0], 1, 2 * MiB);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_object_add_failure(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)),
                     FAKE_QMP_ERROR("GenericError", "can\\'t open backing store")),
        /* sent back to back with the object-add: fails too */
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)),
                     FAKE_QMP_ERROR("GenericError", "can\\'t find memdev")),
        FAKE_QMP_CMD(want_add(&w, remove_fd(1)), FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "backing store"));
    assert_int_equal(fixture_request_count(f), 0);
    /* nothing to undo; a retry takes the same number (no hot-add left in progress) */
    uint32_t loc = 99;
    assert_int_equal(add_vpmem(f, img[0], true, &loc, NULL), 0);
    assert_int_equal(loc, 0);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_add_fd_failure(void **state)
{
    char copy0[160];
    snprintf(copy0, sizeof(copy0), "%s/vpmem0.img", rundir);
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)),
                        FAKE_QMP_ERROR("GenericError", "No file descriptor supplied")),
        /* a reply that does not say which fd QEMU has: nothing can be mapped */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), "{'return':{'fdset-id':1}}"),
        FAKE_QMP_CMD(want_add(&w, remove_fd(1)), FAKE_QMP_OK),
        /* number 0 is free after both */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "add-fd: No file descriptor supplied"));
    /* the padded copy made for the add goes again */
    assert_int_equal(uvm_add_vpmem(f->vm, odd, true, NULL, NULL), UVM_E_PROTOCOL);
    assert_non_null(strstr(uvm_last_error(), "no non-negative integer \"fd\""));
    assert_int_not_equal(access(copy0, F_OK), 0);
    assert_int_equal(fixture_request_count(f), 0);
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), UVM_E_NOT_ATTACHED);
    assert_int_equal(uvm_remove_vpmem(f->vm, odd), UVM_E_NOT_ATTACHED);
    uint32_t loc = 99;
    assert_int_equal(add_vpmem(f, img[1], true, &loc, NULL), 0);
    assert_int_equal(loc, 0);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_guest_add_failure_parks(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(1, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(1, 0, 1)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    f->guest.fail_next = 1;
    uint32_t loc = 99;
    char *path = (char *)"untouched";
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, &loc, &path), UVM_E_GUEST);
    assert_null(path);
    assert_int_equal(loc, 99);
    assert_non_null(strstr(uvm_last_error(), "mount failed"));
    assert_non_null(strstr(uvm_last_error(), img[0]));
    /* The device cannot be unplugged: it stays plugged, kept for this image (the adds below
     * send no QMP, and the guest gets its size). */
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), UVM_E_NOT_ATTACHED);
    /* a later add of the same image sends no QMP; a failure again leaves it parked */
    f->guest.fail_next = 1;
    assert_int_equal(add_vpmem(f, img[0], false, &loc, NULL), UVM_E_GUEST);
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), UVM_E_NOT_ATTACHED);
    assert_int_equal(add_vpmem(f, img[0], true, &loc, &path), 0);
    assert_int_equal(loc, 0);
    assert_string_equal(path, "/tmp/p0");
    free(path);
    assert_int_equal(fixture_request_count(f), 3);
    check_request(f, 0, "Add", 0, "/tmp/p0", 2 * MiB);
    check_request(f, 1, "Add", 0, "", 2 * MiB);
    check_request(f, 2, "Add", 0, "/tmp/p0", 2 * MiB);
    /* another image gets the next number: no hot-add was left in progress */
    assert_int_equal(add_vpmem(f, img[1], true, &loc, NULL), 0);
    assert_int_equal(loc, 1);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_guest_remove_failure(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, NULL, NULL), 0);
    f->guest.fail_next = 1;
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "failed to remove VPMEM"));
    assert_non_null(strstr(uvm_last_error(), "mount failed"));
    /* bookkeeping unchanged: a re-add still takes a reference without QMP or guest, with the
     * stored number and path; one remove drops it, the retry then works */
    uint32_t loc = 99;
    char *path = NULL;
    assert_int_equal(add_vpmem(f, img[0], false, &loc, &path), 0);
    assert_int_equal(loc, 0);
    assert_string_equal(path, "/tmp/p0");
    free(path);
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    assert_int_equal(fixture_request_count(f), 2);
    /* the retry works */
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    assert_int_equal(fixture_request_count(f), 3);
    check_request(f, 1, "Remove", 0, "/tmp/p0", 0);
    check_request(f, 2, "Remove", 0, "/tmp/p0", 0);
    check_parked(f, img[0], 0, 2 * MiB);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

/* ---- device numbers and buses ---- */

static void
test_table_full(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(1, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(1, 0, 1)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(2));
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, NULL, NULL), 0);
    assert_int_equal(uvm_add_vpmem(f->vm, img[1], true, NULL, NULL), 0);
    uint32_t loc = 99;
    char *path = (char *)"untouched";
    assert_int_equal(uvm_add_vpmem(f->vm, img[2], true, &loc, &path), UVM_E_NO_AVAILABLE_LOCATION);
    assert_null(path);
    assert_int_equal(loc, 99);
    char msg[512];
    snprintf(msg, sizeof(msg), "add vpmem '%s': no free VPMEM locations (2 devices configured)",
             img[2]);
    assert_string_equal(uvm_last_error(), msg);
    /* once one is parked, the message says so */
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), 0);
    assert_int_equal(uvm_add_vpmem(f->vm, img[2], true, &loc, NULL), UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(strstr(uvm_last_error(), "no free VPMEM locations (2 devices configured; 1 of "
                                             "them kept plugged for removed images"));
    assert_non_null(strstr(uvm_last_error(), "QEMU cannot unplug virtio-pmem"));
    assert_null(strstr(uvm_last_error(), "rollback"));
    /* the parked image itself can come back */
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, &loc, NULL), 0);
    assert_int_equal(loc, 0);
    assert_int_equal(fixture_request_count(f), 4);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_vhd_boot(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(1, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(1, 0, 0)), FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(2, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(2, 0, 1)), FAKE_QMP_OK),
    };
    const struct fixture_config vhd = {.vpmem_count = 3,
                                       .rootfs_type = UVM_ROOTFS_VHD,
                                       .rundir = rundir};
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), &vhd);
    /* device 0 is the root file system: never handed out, and not counted as parked */
    uint32_t loc = 99;
    char *path = NULL;
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, &loc, &path), 0);
    assert_int_equal(loc, 1);
    assert_string_equal(path, "/tmp/p1");
    free(path);
    check_request(f, 0, "Add", 1, "/tmp/p1", 2 * MiB);
    assert_int_equal(uvm_add_vpmem(f->vm, img[1], false, &loc, NULL), 0);
    assert_int_equal(loc, 2);
    assert_int_equal(uvm_add_vpmem(f->vm, img[2], false, &loc, NULL), UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(strstr(uvm_last_error(), "(3 devices configured)"));
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    /* An initrd boot hands out device 0; a VHD boot without VPMem devices has none. */
    const struct fake_qmp_step initrd[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    f = fixture_new(initrd, ARRAY_SIZE(initrd), LINUX(3));
    assert_int_equal(add_vpmem(f, img[0], true, &loc, NULL), 0);
    assert_int_equal(loc, 0);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    f = fixture_new(NULL, 0, &(struct fixture_config){.rootfs_type = UVM_ROOTFS_VHD});
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, NULL, NULL), UVM_E_NO_AVAILABLE_LOCATION);
    fixture_finish(f, NULL, 0);
}

static void
test_second_bridge(void **state)
{
    struct want w = {0};
    struct script s = {0};
    take_steps(&s, &w, 0, 31, false);
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)),
                                                          FDSET(1, 101)));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(want_add(&w, object_add(31, 101, 2 * MiB)),
                                                       FAKE_QMP_OK));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(want_add(&w, device_add(31, 1, 0)),
                                                       FAKE_QMP_OK));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)),
                                                          FDSET(2, 102)));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(want_add(&w, object_add(32, 102, 2 * MiB)),
                                                       FAKE_QMP_OK));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(want_add(&w, device_add(32, 1, 1)),
                                                       FAKE_QMP_OK));
    struct fixture *f = fixture_new(s.steps, s.n, LINUX(33));
    take_devices(f, 0, 31);
    uint32_t loc = 99;
    assert_int_equal(add_vpmem(f, img[0], true, &loc, NULL), 0);
    assert_int_equal(loc, 31);
    assert_int_equal(add_vpmem(f, img[1], true, &loc, NULL), 0);
    assert_int_equal(loc, 32);
    check_request(f, 32, "Add", 32, "/tmp/p32", 2 * MiB);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    want_free(&s.replies);
    /* a VHD boot shifts the slots by one: device 32 is the first on vpmembr1; the last of 128
     * is slot 2 of vpmembr4 (31 slots per bridge: the last holds the window placeholder) */
    s.n = 0;
    take_steps(&s, &w, 1, 32, true);
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)),
                                                          FDSET(3, 103)));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(want_add(&w, object_add(32, 103, 2 * MiB)),
                                                       FAKE_QMP_OK));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(want_add(&w, device_add(32, 1, 0)),
                                                       FAKE_QMP_OK));
    take_steps(&s, &w, 33, UVM_MAX_VPMEM - 1, true);
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)),
                                                          FDSET(4, 104)));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(want_add(&w, object_add(127, 104, 2 * MiB)),
                                                       FAKE_QMP_OK));
    script_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(want_add(&w, device_add(127, 4, 2)),
                                                       FAKE_QMP_OK));
    f = fixture_new(s.steps, s.n,
                    &(struct fixture_config){.vpmem_count = UVM_MAX_VPMEM,
                                             .rootfs_type = UVM_ROOTFS_VHD,
                                             .rundir = rundir});
    take_devices(f, 1, 32);
    assert_int_equal(add_vpmem(f, img[0], true, &loc, NULL), 0);
    assert_int_equal(loc, 32);
    take_devices(f, 33, UVM_MAX_VPMEM - 1);
    assert_int_equal(add_vpmem(f, img[1], true, &loc, NULL), 0);
    assert_int_equal(loc, UVM_MAX_VPMEM - 1);
    assert_int_equal(add_vpmem(f, img[2], true, &loc, NULL), UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(strstr(uvm_last_error(), "(128 devices configured)"));
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    want_free(&s.replies);
}

/* ---- errors that touch nothing ---- */

static void
test_errors(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        /* after all the refusals, number 0 is free */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    uint32_t loc = 99;
    char *path = (char *)"untouched";
    assert_int_equal(uvm_add_vpmem(f->vm, "", true, &loc, &path), UVM_E_INVALID_ARGUMENT);
    assert_null(path);
    assert_int_equal(uvm_add_vpmem(f->vm, NULL, true, &loc, NULL), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_vpmem(NULL, img[0], true, &loc, NULL), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_remove_vpmem(f->vm, ""), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_remove_vpmem(f->vm, NULL), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_remove_vpmem(NULL, img[0]), UVM_E_INVALID_ARGUMENT);
    /* hcsshim's text for an unknown path */
    char msg[512];
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), UVM_E_NOT_ATTACHED);
    snprintf(msg, sizeof(msg),
             "cannot remove VPMEM %s as it is not attached to utility VM unit: %s is not attached "
             "to VPMEM",
             img[0], img[0]);
    assert_string_equal(uvm_last_error(), msg);
    assert_int_equal(uvm_remove_vpmem(f->vm, "/no/such/file"), UVM_E_NOT_ATTACHED);
    assert_non_null(strstr(uvm_last_error(), "cannot remove VPMEM /no/such/file as it is not"));
    /* images that are not plain data are refused before QEMU is asked */
    assert_int_equal(uvm_add_vpmem(f->vm, qcow, true, &loc, NULL), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), qcow));
    assert_non_null(strstr(uvm_last_error(), "qcow2"));
    assert_int_equal(uvm_add_vpmem(f->vm, dynvhd, true, &loc, NULL), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "dynamic VHD"));
    assert_int_equal(uvm_add_vpmem(f->vm, vhdx, true, &loc, NULL), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "vhdx"));
    assert_int_equal(uvm_add_vpmem(f->vm, empty, true, &loc, NULL), UVM_E_INVALID_ARGUMENT);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.img", dir);
    assert_int_equal(uvm_add_vpmem(f->vm, missing, true, &loc, NULL), UVM_E_NOT_FOUND);
    assert_int_equal(uvm_add_vpmem(f->vm, dir, true, &loc, NULL), UVM_E_INVALID_ARGUMENT);
    if (geteuid() != 0) {
        chmod(img[5], 0);
        assert_int_equal(uvm_add_vpmem(f->vm, img[5], true, &loc, NULL), -EACCES);
        chmod(img[5], 0644);
    }
    /* a VM that is not running refuses */
    fixture_set_state(f, FIXTURE_TERMINATED);
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, &loc, NULL), UVM_E_INVALID_STATE);
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), UVM_E_INVALID_STATE);
    fixture_set_state(f, FIXTURE_RUNNING);
    assert_int_equal(loc, 99);
    assert_int_equal(fixture_request_count(f), 0);
    /* nothing was taken: the first add gets number 0 */
    assert_int_equal(add_vpmem(f, img[0], true, &loc, NULL), 0);
    assert_int_equal(loc, 0);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    /* Windows utility VMs have no VPMem devices */
    f = fixture_new(NULL, 0, &(struct fixture_config){.vpmem_count = 0, .windows = true});
    assert_int_equal(uvm_add_vpmem(f->vm, img[0], true, &loc, NULL), UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "Windows"));
    assert_int_equal(uvm_remove_vpmem(f->vm, img[0]), UVM_E_NOT_SUPPORTED);
    fixture_finish(f, NULL, 0);
}

/* ---- backing files ---- */

static uint64_t
file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* The first len bytes of a and b are equal, and the rest of a (up to its end) is zeros. */
static void
check_copy(const char *copy, const char *orig, uint64_t len)
{
    FILE *a = fopen(copy, "r"), *b = fopen(orig, "r");
    assert_non_null(a);
    assert_non_null(b);
    uint64_t i = 0;
    int ca;
    while ((ca = fgetc(a)) != EOF) {
        if (i < len) {
            int cb = fgetc(b);
            if (ca != cb)
                fail_msg("%s differs from %s at byte %llu", copy, orig, (unsigned long long)i);
        } else if (ca != 0) {
            fail_msg("%s: padding byte %llu is not zero", copy, (unsigned long long)i);
        }
        i++;
    }
    fclose(a);
    fclose(b);
}

static void
test_padded_copy(void **state)
{
    char copy0[160], copy1[160];
    snprintf(copy0, sizeof(copy0), "%s/vpmem0.img", rundir);
    snprintf(copy1, sizeof(copy1), "%s/vpmem1.img", rundir);
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 4 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
        /* a fixed VHD with unaligned data: its data (no footer) padded */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(1, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(1, 0, 1)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    struct passed *passed = watch_fds(f);
    char before[128];
    FILE *fp = fopen(odd, "r");
    assert_int_equal(fread(before, 1, sizeof(before), fp), sizeof(before));
    fclose(fp);
    assert_int_equal(uvm_add_vpmem(f->vm, odd, true, NULL, NULL), 0);
    check_request(f, 0, "Add", 0, "/tmp/p0", 4 * MiB);
    assert_int_equal(file_size(copy0), 4 * MiB);
    check_copy(copy0, odd, 3 * MiB + 5);
    /* the user's file is unchanged */
    assert_int_equal(file_size(odd), 3 * MiB + 5);
    char after[128];
    fp = fopen(odd, "r");
    assert_int_equal(fread(after, 1, sizeof(after), fp), sizeof(after));
    fclose(fp);
    assert_memory_equal(before, after, sizeof(before));
    /* bookkept by the user's path with the padded size: see the remove and re-add below */

    assert_int_equal(uvm_add_vpmem(f->vm, fixed_odd, false, NULL, NULL), 0);
    check_request(f, 1, "Add", 1, "", 2 * MiB);
    assert_int_equal(file_size(copy1), 2 * MiB);
    check_copy(copy1, fixed_odd, 1 * MiB);
    assert_int_equal(file_size(fixed_odd), 1 * MiB + 512);
    /* a parked padded image comes back with its padded size */
    assert_int_equal(uvm_remove_vpmem(f->vm, odd), 0);
    assert_int_equal(uvm_add_vpmem(f->vm, odd, true, NULL, NULL), 0);
    check_request(f, 3, "Add", 0, "/tmp/p0", 4 * MiB);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    /* QEMU got the copies, not the user's files */
    assert_int_equal(passed->count, 2);
    check_passed(passed, 0, copy0);
    check_passed(passed, 1, copy1);
    passed_free(passed);
    unlink(copy0);
    unlink(copy1);
}

static void
test_fixed_vhd(void **state)
{
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        /* the file itself, without its 512-byte footer */
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    struct passed *passed = watch_fds(f);
    assert_int_equal(file_size(fixed), 2 * MiB + 512);
    assert_int_equal(uvm_add_vpmem(f->vm, fixed, true, NULL, NULL), 0);
    check_request(f, 0, "Add", 0, "/tmp/p0", 2 * MiB);
    char copy[160];
    snprintf(copy, sizeof(copy), "%s/vpmem0.img", rundir);
    assert_int_not_equal(access(copy, F_OK), 0); /* no copy */
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    assert_int_equal(passed->count, 1);
    check_passed(passed, 0, fixed);
    passed_free(passed);
}

/* ---- concurrency ---- */

/* QMP commands sent (from the library's debug log) and guest requests received, in order. */
struct trace {
    pthread_mutex_t lock;
    json_t *events; /* {"qmp": command} or {"guest": request} */
};

static void
trace_log(void *opaque, enum uvm_log_level level, const char *vm_id, const char *message)
{
    struct trace *t = opaque;
    const char *text = NULL;
    if (level == UVM_LOG_DEBUG && !strncmp(message, "QMP send: ", 10))
        text = message + 10;
    else if (level == UVM_LOG_DEBUG && !strncmp(message, "QMP send with an fd: ", 21))
        text = message + 21;
    if (!text)
        return;
    json_t *cmd = json_loads(text, 0, NULL);
    assert_non_null(cmd);
    json_object_del(cmd, "id");
    pthread_mutex_lock(&t->lock);
    json_array_append_new(t->events, json_pack("{s:o}", "qmp", cmd));
    pthread_mutex_unlock(&t->lock);
}

static void
trace_guest(void *opaque, const json_t *request)
{
    struct trace *t = opaque;
    pthread_mutex_lock(&t->lock);
    json_array_append_new(t->events, json_pack("{s:O}", "guest", request));
    pthread_mutex_unlock(&t->lock);
}

/* A JSON text written with single quotes, parsed. */
static json_t *
jq(const char *text)
{
    cleanup_free char *s = xstrdup(text);
    for (char *c = s; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    return j;
}

struct adder {
    struct uvm *vm;
    const char *path;
    pthread_barrier_t *start;
    int rc;
    uint32_t loc;
    char *uvm_path;
};

static void *
adder_main(void *arg)
{
    struct adder *a = arg;
    pthread_barrier_wait(a->start);
    a->rc = uvm_add_vpmem(a->vm, a->path, true, &a->loc, &a->uvm_path);
    return NULL;
}

static void
run_adders(struct fixture *f, struct adder *a, const char *const *paths, unsigned n)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, n);
    pthread_t th[8];
    for (unsigned i = 0; i < n; i++) {
        a[i] = (struct adder){.vm = f->vm, .path = paths[i], .start = &start};
        pthread_create(&th[i], NULL, adder_main, &a[i]);
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
}

static void
test_concurrent_distinct(void **state)
{
    enum { N = 4 };
    /* The order in which the threads get their numbers is not known, but the stream is the
     * same whatever it is: which image took which number is then checked through the files
     * QEMU got. */
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(2, 102)),
        FAKE_QMP_CMD(want_add(&w, object_add(1, 102, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(1, 0, 1)), FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(3, 103)),
        FAKE_QMP_CMD(want_add(&w, object_add(2, 103, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(2, 0, 2)), FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(4, 104)),
        FAKE_QMP_CMD(want_add(&w, object_add(3, 104, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(3, 0, 3)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    struct passed *passed = watch_fds(f);
    struct trace t = {.events = json_array()};
    pthread_mutex_init(&t.lock, NULL);
    f->guest.delay_ms = 20; /* let the others pile up behind the first */
    f->guest.on_request = trace_guest;
    f->guest.opaque = &t;
    uvm_set_log_handler(trace_log, &t, UVM_LOG_DEBUG);
    struct adder a[N];
    const char *paths[N] = {img[0], img[1], img[2], img[3]};
    run_adders(f, a, paths, N);
    uvm_set_log_handler(NULL, NULL, UVM_LOG_ERROR);

    const char *by_loc[N] = {NULL};
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(a[i].rc, 0);
        assert_true(a[i].loc < N);
        assert_null(by_loc[a[i].loc]); /* each number handed out once */
        by_loc[a[i].loc] = a[i].path;
        char want[16];
        snprintf(want, sizeof(want), "/tmp/p%u", a[i].loc);
        assert_string_equal(a[i].uvm_path, want);
        free(a[i].uvm_path);
    }
    /* Strictly serialized: add-fd, object-add, device_add, guest Add of device 0, then of 1,
     * ... (the QMP part is the script's commands, in order) */
    assert_int_equal(json_array_size(t.events), 4 * N);
    for (unsigned n = 0; n < N; n++) {
        char mount[16];
        snprintf(mount, sizeof(mount), "/tmp/p%u", n);
        json_t *want[4] = {
            json_pack("{s:o}", "qmp", jq(w.s[3 * n])),
            json_pack("{s:o}", "qmp", jq(w.s[3 * n + 1])),
            json_pack("{s:o}", "qmp", jq(w.s[3 * n + 2])),
            json_pack("{s:{s:s, s:s, s:{s:i, s:s, s:i}}}", "guest", "ResourceType", "VPMemDevice",
                      "RequestType", "Add", "Settings", "DeviceNumber", (int)n, "MountPath", mount,
                      "BackingSize", (int)(2 * MiB)),
        };
        for (unsigned k = 0; k < 4; k++) {
            json_t *got = json_array_get(t.events, 4 * n + k);
            if (!json_equal(got, want[k])) {
                char *g = json_dumps(got, JSON_COMPACT), *e = json_dumps(want[k], JSON_COMPACT);
                fail_msg("event %u: expected %s, got %s", 4 * n + k, e, g);
            }
            json_decref(want[k]);
        }
    }
    /* each image is attached at the number it got, with one reference */
    for (unsigned i = 0; i < N; i++) {
        char mount[16];
        snprintf(mount, sizeof(mount), "/tmp/p%u", a[i].loc);
        check_attached(f, a[i].path, a[i].loc, mount, 1);
    }
    /* and the fake QMP saw the same stream, device n mapping the image that took number n */
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    assert_int_equal(passed->count, N);
    for (unsigned n = 0; n < N; n++)
        check_passed(passed, n, by_loc[n]);
    passed_free(passed);
    json_decref(t.events);
    pthread_mutex_destroy(&t.lock);
}

static void
test_concurrent_same_image(void **state)
{
    enum { N = 4 };
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 2 * MiB)), FAKE_QMP_OK),
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    f->guest.delay_ms = 20;
    struct adder a[N];
    const char *paths[N] = {img[0], img[0], img[0], img[0]};
    run_adders(f, a, paths, N);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(a[i].rc, 0);
        assert_int_equal(a[i].loc, 0);
        assert_string_equal(a[i].uvm_path, "/tmp/p0");
        free(a[i].uvm_path);
    }
    /* one hot-plug, one guest Add, four references */
    assert_int_equal(fixture_request_count(f), 1);
    check_attached(f, img[0], 0, "/tmp/p0", N);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
}

static void
test_format_checked_before_allocation(void **state)
{
    struct want w = {0};
    struct script s = {0};
    take_steps(&s, &w, 0, 1, false);
    struct fixture *f = fixture_new(s.steps, s.n, LINUX(1));
    take_devices(f, 0, 1);
    assert_int_equal(uvm_add_vpmem(f->vm, qcow, true, NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_null(strstr(uvm_last_error(), "(device "));
    assert_int_equal(uvm_add_vpmem(f->vm, empty, true, NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "is empty"));
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    want_free(&s.replies);
}

static void
test_padded_copy_removed_after_failure(void **state)
{
    char copy0[160];
    snprintf(copy0, sizeof(copy0), "%s/vpmem0.img", rundir);
    struct want w = {0};
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(want_add(&w, xstrdup(ADD_FD)), FDSET(1, 101)),
        FAKE_QMP_CMD(want_add(&w, object_add(0, 101, 4 * MiB)),
                     FAKE_QMP_ERROR("GenericError", "no memory")),
        /* sent back to back with the object-add: fails too */
        FAKE_QMP_CMD(want_add(&w, device_add(0, 0, 0)),
                     FAKE_QMP_ERROR("GenericError", "can\\'t find memdev")),
        FAKE_QMP_CMD(want_add(&w, remove_fd(1)), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), LINUX(64));
    assert_int_equal(uvm_add_vpmem(f->vm, odd, true, NULL, NULL), UVM_E_HYPERVISOR);
    assert_int_not_equal(access(copy0, F_OK), 0);
    fixture_finish(f, (const char *const *)w.s, w.n);
    want_free(&w);
    unlink(copy0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_checked_before_allocation),
        cmocka_unit_test(test_padded_copy_removed_after_failure),
        cmocka_unit_test(test_first_add),
        cmocka_unit_test(test_refcount_and_remove),
        cmocka_unit_test(test_remove_not_exposed),
        cmocka_unit_test(test_readd_parked),
        cmocka_unit_test(test_device_add_failure_rolls_back),
        cmocka_unit_test(test_rollback_failure_breaks_number),
        cmocka_unit_test(test_object_add_failure),
        cmocka_unit_test(test_add_fd_failure),
        cmocka_unit_test(test_guest_add_failure_parks),
        cmocka_unit_test(test_guest_remove_failure),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_vhd_boot),
        cmocka_unit_test(test_second_bridge),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_padded_copy),
        cmocka_unit_test(test_fixed_vhd),
        cmocka_unit_test(test_concurrent_distinct),
        cmocka_unit_test(test_concurrent_same_image),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

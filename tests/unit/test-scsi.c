/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SCSI hot-plug orchestration against a scripted fake QMP peer and a fake guest agent: the
 * exact QMP stream of each operation, rollback, bookkeeping, errors, image formats. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <setjmp.h>
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
#include "image.h"
#include "scsi.h" /* UVM_SCSI_LUNS */

static char dir[64];
static char disk[128], disk2[128], layer[128];

/* ---- expected QMP commands ---- */

/* The file node opens fd set `set` (QEMU dups the member with the matching access mode). */
static char *
blockdev_add(const char *driver, const char *node, int set, bool ro)
{
    return xasprintf("{'execute':'blockdev-add','arguments':{'driver':'%s','node-name':'%s',"
                     "'read-only':%s,'file':{'driver':'file','filename':'/dev/fdset/%d',"
                     "'read-only':%s}}}",
                     driver, node, ro ? "true" : "false", set, ro ? "true" : "false");
}

static char *
device_add(const char *node, unsigned c, unsigned l)
{
    return xasprintf("{'execute':'device_add','arguments':{'driver':'scsi-hd','id':'%s',"
                     "'bus':'scsi%u.0','channel':0,'scsi-id':0,'lun':%u,'drive':'%s'}}",
                     node, c, l, node);
}

/* add-fd carries the image's open file; the reply names set `set`, QEMU's fd `fd`. */
#define ADD_FD "{'execute':'add-fd'}"
#define FDSET(set, fd) "{'return':{'fdset-id':" #set ",'fd':" #fd "}}"
#define REMOVE_FD(set) "{'execute':'remove-fd','arguments':{'fdset-id':" #set "}}"
#define DEVICE_DEL(n) "{'execute':'device_del','arguments':{'id':'" n "'}}"
#define BLOCKDEV_DEL(n) "{'execute':'blockdev-del','arguments':{'node-name':'" n "'}}"
#define DELETED(n) "{'event':'DEVICE_DELETED','data':{'device':'" n "','path':'/x'}}"

#define ONE_CONTROLLER (&(struct fixture_config){.scsi_count = 1})

/* ---- what the bookkeeping says, observed through later calls ---- */

/* The add of disk2 at 0:0 with fd set `set` (check_slot_free). */
#define READD_BLOCKDEV(set)                                                                        \
    "{'execute':'blockdev-add','arguments':{'driver':'raw','node-name':'scsi0-0',"                 \
    "'read-only':false,'file':{'driver':'file','filename':'/dev/fdset/" #set "',"                  \
    "'read-only':false}}}"
#define READD_DEVICE                                                                               \
    "{'execute':'device_add','arguments':{'driver':'scsi-hd','id':'scsi0-0','bus':'scsi0.0',"      \
    "'channel':0,'scsi-id':0,'lun':0,'drive':'scsi0-0'}}"
#define READD_STEPS(set)                                                                           \
    FAKE_QMP_CMD_FD(ADD_FD, FDSET(set, 50)), FAKE_QMP_CMD(READD_BLOCKDEV(set), FAKE_QMP_OK),      \
        FAKE_QMP_CMD(READD_DEVICE, FAKE_QMP_OK)
#define READD_WANT(set) ADD_FD, READD_BLOCKDEV(set), READD_DEVICE

/* Slot 0:0 is free and `path` is not attached (no slot names it, none is left reserved or
 * broken): removing `path` is refused, and an add of disk2 (the script answers it with
 * READD_STEPS) takes 0:0 again and sends the guest one more request. */
static void
check_slot_free(struct fixture *f, const char *path)
{
    assert_int_equal(uvm_remove_scsi(f->vm, path), UVM_E_NOT_ATTACHED);
    size_t requests = fixture_request_count(f);
    int c = -1;
    int32_t l = -1;
    assert_int_equal(uvm_add_scsi(f->vm, disk2, NULL, &c, &l), 0);
    assert_int_equal(c, 0);
    assert_int_equal(l, 0);
    assert_int_equal(fixture_request_count(f), requests + 1);
}

/* Filling controller 0 through the API: 64 attach-only adds of lun<l>.img, fd set l + 1. */
struct fill {
    struct fake_qmp_step steps[3 * UVM_SCSI_LUNS + 8];
    const char *want[3 * UVM_SCSI_LUNS + 8];
    char *owned[3 * UVM_SCSI_LUNS + 8];
    size_t n, nowned;
};

static const char *
fill_own(struct fill *s, char *text)
{
    assert_true(s->nowned < sizeof(s->owned) / sizeof(s->owned[0]));
    s->owned[s->nowned++] = text;
    return text;
}

/* Append one expected command (and its step) to s. */
static void
fill_step(struct fill *s, struct fake_qmp_step step)
{
    assert_true(s->n < sizeof(s->steps) / sizeof(s->steps[0]));
    s->steps[s->n] = step;
    s->want[s->n++] = step.text;
}

static void
fill_script(struct fill *s)
{
    for (unsigned l = 0; l < UVM_SCSI_LUNS; l++) {
        char node[16];
        snprintf(node, sizeof(node), "scsi0-%u", l);
        fill_step(s, (struct fake_qmp_step)FAKE_QMP_CMD_FD(
                         ADD_FD, fill_own(s, xasprintf("{'return':{'fdset-id':%u,'fd':%u}}",
                                                       l + 1, 100 + l))));
        fill_step(s, (struct fake_qmp_step)FAKE_QMP_CMD(
                         fill_own(s, blockdev_add("raw", node, (int)l + 1, false)), FAKE_QMP_OK));
        fill_step(s, (struct fake_qmp_step)FAKE_QMP_CMD(fill_own(s, device_add(node, 0, l)),
                                                        FAKE_QMP_OK));
    }
}

static void
fill_luns(struct fixture *f)
{
    for (unsigned l = 0; l < UVM_SCSI_LUNS; l++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/lun%u.img", dir, l);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fclose(fp);
        int c = -1;
        int32_t got = -1;
        assert_int_equal(uvm_add_scsi(f->vm, path, NULL, &c, &got), 0);
        assert_int_equal(c, 0);
        assert_int_equal(got, (int32_t)l);
    }
}

static void
fill_free(struct fill *s)
{
    for (size_t i = 0; i < s->nowned; i++)
        free(s->owned[i]);
}

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-scsi-unit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(disk, sizeof(disk), "%s/disk.img", dir);
    snprintf(disk2, sizeof(disk2), "%s/disk2.img", dir);
    snprintf(layer, sizeof(layer), "%s/layer.vhdx", dir);
    FILE *fp = fopen(disk, "w");
    fputs("raw data", fp);
    fclose(fp);
    fp = fopen(disk2, "w");
    fclose(fp);
    fp = fopen(layer, "w");
    fputs("vhdxfile and more", fp);
    fclose(fp);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static void
test_attach_only(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", 1, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    int c = 7;
    int32_t l = 7;
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, &c, &l), 0);
    assert_int_equal(c, 0);
    assert_int_equal(l, 0);
    /* Attach-only: the guest only waits for the disk to show up (no mount path). */
    assert_int_equal(fixture_request_count(f), 1);
    json_t *want_add = json_loads("{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":\"Add\","
                                  "\"Settings\":{\"MountPath\":\"\",\"Lun\":0,"
                                  "\"Controller\":0,\"ReadOnly\":false}}",
                                  0, NULL);
    assert_true(json_equal(fixture_request(f, 0), want_add));
    json_decref(want_add);
    /* Re-adding is refused without touching QEMU or the guest. */
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, &c, &l), UVM_E_ALREADY_ATTACHED);
    assert_int_equal(c, -1);
    assert_int_equal(l, -1);
    /* ... and the disk is still attached: the remove runs in full, the guest first */
    assert_int_equal(fixture_request_count(f), 1);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), 0);
    json_t *want_rm = json_loads("{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":"
                                 "\"Remove\",\"Settings\":{\"MountPath\":\"\",\"Lun\":0,"
                                 "\"Controller\":0,\"ReadOnly\":false}}",
                                 0, NULL);
    assert_true(json_equal(fixture_request(f, 1), want_rm));
    json_decref(want_rm);
    const char *want[] = {ADD_FD, b, d, DEVICE_DEL("scsi0-0"), BLOCKDEV_DEL("scsi0-0"),
                          REMOVE_FD(1)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
}

static void
test_add_mount_and_remove(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", 1, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'path':'/x/virtio-backend'}}"),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_OK),
        READD_STEPS(2),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    assert_int_equal(uvm_add_scsi(f->vm, disk, "/data", NULL, NULL), 0);
    json_t *want_add = json_loads("{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":\"Add\","
                                  "\"Settings\":{\"MountPath\":\"/data\",\"Lun\":0,"
                                  "\"Controller\":0,\"ReadOnly\":false}}",
                                  0, NULL);
    assert_true(json_equal(fixture_request(f, 0), want_add));
    json_decref(want_add);
    /* The guest lets go before the host unplugs. */
    assert_int_equal(uvm_remove_scsi(f->vm, disk), 0);
    json_t *rm = fixture_request(f, 1);
    assert_string_equal(json_string_value(json_object_get(rm, "RequestType")), "Remove");
    check_slot_free(f, disk);
    const char *want[] = {ADD_FD, b, d, DEVICE_DEL("scsi0-0"), BLOCKDEV_DEL("scsi0-0"),
                          REMOVE_FD(1), READD_WANT(2)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
}

static void
test_guest_failure_rolls_back(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", 1, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_OK),
        READD_STEPS(2),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    f->guest.fail_next = 1;
    int c = 0;
    int32_t l = 0;
    assert_int_equal(uvm_add_scsi(f->vm, disk, "/data", &c, &l), UVM_E_GUEST);
    assert_int_equal(c, -1);
    assert_non_null(strstr(uvm_last_error(), "mount failed"));
    assert_non_null(strstr(uvm_last_error(), disk));
    check_slot_free(f, disk);
    const char *want[] = {ADD_FD, b, d, DEVICE_DEL("scsi0-0"), BLOCKDEV_DEL("scsi0-0"),
                          REMOVE_FD(1), READD_WANT(2)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
}

static void
test_device_add_failure_rolls_back(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", 1, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_ERROR("GenericError", "Duplicate ID")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_OK),
        READD_STEPS(2),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    assert_int_equal(uvm_add_scsi(f->vm, disk, "/data", NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "Duplicate ID"));
    assert_int_equal(fixture_request_count(f), 0);
    check_slot_free(f, disk);
    const char *want[] = {ADD_FD, b, d, BLOCKDEV_DEL("scsi0-0"), REMOVE_FD(1), READD_WANT(2)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
}

static void
test_blockdev_failure(void **state)
{
    /* blockdev-add and device_add go out back to back: the device_add fails too, and the
     * message is the first failure's */
    char *b = blockdev_add("raw", "scsi0-0", 1, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_ERROR("GenericError", "Failed to get \\'write\\' lock")),
        FAKE_QMP_CMD(d, FAKE_QMP_ERROR("GenericError", "drive scsi0-0 not found")),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_OK),
        READD_STEPS(2),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "lock"));
    assert_null(strstr(uvm_last_error(), "not found"));
    assert_int_equal(fixture_request_count(f), 0);
    check_slot_free(f, disk);
    const char *want[] = {ADD_FD, b, d, REMOVE_FD(1), READD_WANT(2)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
}

static void
test_remove_failure_keeps_slot(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", 1, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_ERROR("GenericError", "busy")),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_OK),
        READD_STEPS(2),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), 0);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "still attached"));
    /* still attached, with its fd set: a re-add is refused, the retry runs in full */
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), UVM_E_ALREADY_ATTACHED);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), 0); /* the retry works */
    check_slot_free(f, disk);
    const char *want[] = {ADD_FD, b, d, DEVICE_DEL("scsi0-0"), DEVICE_DEL("scsi0-0"),
                          BLOCKDEV_DEL("scsi0-0"), REMOVE_FD(1), READD_WANT(2)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
}

static void
test_layer_refcount(void **state)
{
    char *b = blockdev_add("vhdx", "scsi0-0", 1, true), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    int c;
    int32_t l;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(uvm_add_scsi_layer(f->vm, layer, &c, &l), 0);
        assert_int_equal(c, 0);
        assert_int_equal(l, 0);
    }
    /* three references: the first two removes below only drop one each */
    json_t *want_add = json_loads("{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":\"Add\","
                                  "\"Settings\":{\"MountPath\":\"/tmp/S0/0\",\"Lun\":0,"
                                  "\"Controller\":0,\"ReadOnly\":true}}",
                                  0, NULL);
    assert_true(json_equal(fixture_request(f, 0), want_add));
    json_decref(want_add);
    /* A layer is not a disk: adding it as a disk is refused. */
    assert_int_equal(uvm_add_scsi(f->vm, layer, NULL, NULL, NULL), UVM_E_ALREADY_ATTACHED);
    assert_int_equal(uvm_remove_scsi(f->vm, layer), 0);
    assert_int_equal(uvm_remove_scsi(f->vm, layer), 0);
    assert_int_equal(fixture_request_count(f), 1); /* still mounted */
    assert_int_equal(uvm_remove_scsi(f->vm, layer), 0);
    assert_int_equal(fixture_request_count(f), 2);
    assert_int_equal(uvm_remove_scsi(f->vm, layer), UVM_E_NOT_ATTACHED);
    const char *want[] = {ADD_FD, b, d, DEVICE_DEL("scsi0-0"), BLOCKDEV_DEL("scsi0-0"),
                          REMOVE_FD(1)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
}

static void
test_errors_touch_nothing(void **state)
{
    struct fill s = {0};
    fill_script(&s);
    struct fixture *f = fixture_new(s.steps, s.n, &(struct fixture_config){.scsi_count = 1});
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.img", dir);
    assert_int_equal(uvm_add_scsi(f->vm, missing, NULL, NULL, NULL), UVM_E_NOT_FOUND);
    assert_non_null(strstr(uvm_last_error(), missing));
    assert_int_equal(uvm_add_scsi(f->vm, dir, NULL, NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "is a directory"));
    assert_int_equal(uvm_add_scsi(f->vm, "", NULL, NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_scsi(f->vm, disk, "relative", NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), UVM_E_NOT_ATTACHED);
    if (geteuid() != 0) {
        chmod(disk2, 0);
        assert_int_equal(uvm_add_scsi(f->vm, disk2, NULL, NULL, NULL), -EACCES);
        chmod(disk2, 0644);
    }
    /* None of that reached QEMU or the guest. Every LUN taken: the 65th is refused before QEMU
     * is asked anything. */
    assert_int_equal(fixture_request_count(f), 0);
    fill_luns(f);
    int c = 0;
    int32_t l = 0;
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, &c, &l), UVM_E_TOO_MANY_ATTACHMENTS);
    assert_int_equal(c, -1);
    assert_int_equal(l, -1);
    /* A VM that is not running refuses. */
    fixture_set_state(f, FIXTURE_TERMINATED);
    assert_int_equal(uvm_add_scsi(f->vm, disk2, NULL, NULL, NULL), UVM_E_INVALID_STATE);
    assert_int_equal(fixture_request_count(f), UVM_SCSI_LUNS);
    fixture_finish(f, s.want, s.n);
    fill_free(&s);
}

static void
test_no_controllers_and_wcow(void **state)
{
    struct fixture *f = fixture_new(NULL, 0, &(struct fixture_config){.scsi_count = 0});
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), UVM_E_NO_SCSI_CONTROLLERS);
    assert_int_equal(uvm_add_scsi_layer(f->vm, disk, NULL, NULL), UVM_E_NO_SCSI_CONTROLLERS);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), UVM_E_NO_SCSI_CONTROLLERS);
    fixture_finish(f, NULL, 0);
    f = fixture_new(NULL, 0, &(struct fixture_config){.scsi_count = 1, .windows = true});
    assert_int_equal(uvm_add_scsi_layer(f->vm, disk, NULL, NULL), UVM_E_SCSI_LAYER_WCOW_UNSUPPORTED);
    fixture_finish(f, NULL, 0);
}

static void
test_second_controller(void **state)
{
    char *b0 = blockdev_add("raw", "scsi0-0", 1, false), *d0 = device_add("scsi0-0", 0, 0);
    char *b1 = blockdev_add("raw", "scsi1-0", 65, false), *d1 = device_add("scsi1-0", 1, 0);
    struct fill s = {0};
    fill_script(&s);
    fill_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD_FD(ADD_FD, FDSET(65, 41)));
    fill_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(b1, FAKE_QMP_OK));
    fill_step(&s, (struct fake_qmp_step)FAKE_QMP_CMD(d1, FAKE_QMP_OK));
    struct fixture *f = fixture_new(s.steps, s.n, &(struct fixture_config){.scsi_count = 2});
    fill_luns(f);
    int c;
    int32_t l;
    assert_int_equal(uvm_add_scsi(f->vm, disk2, NULL, &c, &l), 0);
    assert_int_equal(c, 1);
    assert_int_equal(l, 0);
    fixture_finish(f, s.want, s.n);
    fill_free(&s);
    free(b0);
    free(d0);
    free(b1);
    free(d1);
}

static void
test_image_formats(void **state)
{
    struct {
        const char *name;
        const char *head;
        size_t head_len;
        bool footer;
        const char *driver;
    } cases[] = {
        {"a.qcow2", "QFI\xfb\0\0\0\3", 8, false, "qcow2"},
        {"a.img", "vhdxfile", 8, false, "vhdx"}, /* names do not matter */
        {"a.vhdx", "conectix", 8, false, "vpc"},
        {"fixed.bin", "", 0, true, "vpc"},
        {"a.vhd", "plain ext4 data", 15, false, "raw"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[200];
        snprintf(path, sizeof(path), "%s/%s", dir, cases[i].name);
        FILE *fp = fopen(path, "w");
        fwrite(cases[i].head, 1, cases[i].head_len, fp);
        if (cases[i].footer) {
            char block[1024] = {0};
            fwrite(block, 1, sizeof(block), fp);
            char foot[512] = "conectix";
            fwrite(foot, 1, sizeof(foot), fp);
        }
        fclose(fp);
        struct image_info info;
        int fd = -1;
        assert_int_equal(image_open(path, false, &fd, &info), 0);
        assert_true(fd >= 0);
        assert_string_equal(info.driver, cases[i].driver);
        assert_string_equal(info.path, path);
        image_info_release(&info);
        close(fd);
    }
    /* A qcow2 image with an external data file (incompatible feature bit 2) is refused. */
    char ext[200];
    snprintf(ext, sizeof(ext), "%s/external.qcow2", dir);
    FILE *xf = fopen(ext, "w");
    unsigned char hdr[104] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
    hdr[79] = 0x4;
    fwrite(hdr, 1, sizeof(hdr), xf);
    fclose(xf);
    struct image_info bad;
    int fd = 99;
    assert_int_equal(image_open(ext, false, &fd, &bad), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "external data file"));
    assert_int_equal(fd, -1);
    image_info_release(&bad);
    /* Paths are canonical: a symlink and ".." resolve to the same image. */
    char link[200], dotted[200];
    snprintf(link, sizeof(link), "%s/link.img", dir);
    snprintf(dotted, sizeof(dotted), "%s/../%s/disk.img", dir, strrchr(dir, '/') + 1);
    assert_int_equal(symlink(disk, link), 0);
    struct image_info a, b;
    int fa = -1, fb = -1;
    assert_int_equal(image_open(link, false, &fa, &a), 0);
    assert_int_equal(image_open(dotted, false, &fb, &b), 0);
    assert_string_equal(a.path, disk);
    assert_string_equal(b.path, disk);
    image_info_release(&a);
    image_info_release(&b);
    close(fa);
    close(fb);
}

/* ---- fds handed to QEMU ---- */

struct passed {
    unsigned count;
    struct stat st[4];
    int accmode[4];
};

static void
record_fd(void *opaque, const char *command, int fd)
{
    struct passed *p = opaque;
    if (p->count < 4) {
        assert_int_equal(fstat(fd, &p->st[p->count]), 0);
        p->accmode[p->count] = fcntl(fd, F_GETFL) & O_ACCMODE;
    }
    p->count++;
}

/* A qcow2 header: version 3, and a backing file name when `backing` is not NULL. */
static void
write_qcow2(const char *path, const char *backing)
{
    unsigned char hdr[256] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
    if (backing) {
        hdr[15] = 128; /* backing_file_offset */
        hdr[19] = (unsigned char)strlen(backing);
        memcpy(hdr + 128, backing, strlen(backing));
    }
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fwrite(hdr, 1, sizeof(hdr), fp);
    fclose(fp);
}

/* QEMU is given the very file that was probed: a disk read-write, a layer read-only. */
static void
test_fd_is_the_image(void **state)
{
    char qcow[160];
    snprintf(qcow, sizeof(qcow), "%s/layer.qcow2", dir);
    write_qcow2(qcow, NULL);
    char *b = blockdev_add("raw", "scsi0-0", 1, false), *d = device_add("scsi0-0", 0, 0);
    /* a qcow2 node never opens a backing file, whatever the header says later */
    char *bq = xasprintf("{'execute':'blockdev-add','arguments':{'driver':'qcow2',"
                         "'node-name':'scsi0-1','read-only':true,'backing':null,"
                         "'file':{'driver':'file','filename':'/dev/fdset/2','read-only':true}}}");
    char *dq = device_add("scsi0-1", 0, 1);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(2, 41)),
        FAKE_QMP_CMD(bq, FAKE_QMP_OK),
        FAKE_QMP_CMD(dq, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-1"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-1")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-1"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(2), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    struct passed p = {0};
    fake_qmp_set_fd_hook(f->fq, record_fd, &p);
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), 0);
    assert_int_equal(uvm_add_scsi_layer(f->vm, qcow, NULL, NULL), 0);
    assert_int_equal(p.count, 2);
    struct stat st;
    assert_int_equal(stat(disk, &st), 0);
    assert_true(p.st[0].st_ino == st.st_ino && p.st[0].st_dev == st.st_dev);
    assert_int_equal(p.accmode[0], O_RDWR);
    assert_int_equal(stat(qcow, &st), 0);
    assert_true(p.st[1].st_ino == st.st_ino && p.st[1].st_dev == st.st_dev);
    assert_int_equal(p.accmode[1], O_RDONLY);
    /* each slot kept the fd set add-fd named: the removes drop sets 1 and 2 */
    assert_int_equal(uvm_remove_scsi(f->vm, disk), 0);
    assert_int_equal(uvm_remove_scsi(f->vm, qcow), 0);
    const char *want[] = {ADD_FD,
                          b,
                          d,
                          ADD_FD,
                          bq,
                          dq,
                          DEVICE_DEL("scsi0-0"),
                          BLOCKDEV_DEL("scsi0-0"),
                          REMOVE_FD(1),
                          DEVICE_DEL("scsi0-1"),
                          BLOCKDEV_DEL("scsi0-1"),
                          REMOVE_FD(2)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
    free(bq);
    free(dq);
}

static void
test_add_fd_failures(void **state)
{
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FAKE_QMP_ERROR("GenericError", "no fd supplied")),
        /* a reply that does not say where the fd went */
        FAKE_QMP_CMD_FD(ADD_FD, "{'return':{'fd':40}}"),
        READD_STEPS(1),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "add-fd: no fd supplied"));
    assert_non_null(strstr(uvm_last_error(), disk));
    /* the slot was given back: the second try gets the same one (node scsi0-0 below) */
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), UVM_E_PROTOCOL);
    assert_non_null(strstr(uvm_last_error(), "fdset-id"));
    assert_int_equal(fixture_request_count(f), 0);
    check_slot_free(f, disk);
    const char *want[] = {ADD_FD, ADD_FD, READD_WANT(1)};
    fixture_finish(f, want, ARRAY_SIZE(want));
}

/* Once the block node is gone, a failed remove-fd only leaves an fd in QEMU: the remove
 * succeeds (a retry could not redo device_del). */
static void
test_remove_fd_failure_is_not_fatal(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", 1, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD_FD(ADD_FD, FDSET(1, 40)),
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_CMD(REMOVE_FD(1), FAKE_QMP_ERROR("GenericError", "fd set 1 not found")),
        READD_STEPS(2),
    };
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), 0);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), 0);
    check_slot_free(f, disk);
    const char *want[] = {ADD_FD, b, d, DEVICE_DEL("scsi0-0"), BLOCKDEV_DEL("scsi0-0"),
                          REMOVE_FD(1), READD_WANT(2)};
    fixture_finish(f, want, ARRAY_SIZE(want));
    free(b);
    free(d);
}

/* A qcow2 image that needs its backing file is refused before QEMU is asked anything: QEMU is
 * given this one file only. */
static void
test_qcow2_backing_refused(void **state)
{
    char top[160];
    snprintf(top, sizeof(top), "%s/top.qcow2", dir);
    write_qcow2(top, "/etc/shadow");
    const struct fake_qmp_step steps[] = {READD_STEPS(1)};
    struct fixture *f = fixture_new(steps, ARRAY_SIZE(steps), ONE_CONTROLLER);
    assert_int_equal(uvm_add_scsi(f->vm, top, NULL, NULL, NULL), UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "backing file '/etc/shadow'"));
    assert_non_null(strstr(uvm_last_error(), top));
    assert_int_equal(uvm_add_scsi_layer(f->vm, top, NULL, NULL), UVM_E_NOT_SUPPORTED);
    assert_int_equal(fixture_request_count(f), 0);
    check_slot_free(f, top);
    const char *want[] = {READD_WANT(1)};
    fixture_finish(f, want, ARRAY_SIZE(want));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_only),
        cmocka_unit_test(test_add_mount_and_remove),
        cmocka_unit_test(test_guest_failure_rolls_back),
        cmocka_unit_test(test_device_add_failure_rolls_back),
        cmocka_unit_test(test_blockdev_failure),
        cmocka_unit_test(test_remove_failure_keeps_slot),
        cmocka_unit_test(test_layer_refcount),
        cmocka_unit_test(test_errors_touch_nothing),
        cmocka_unit_test(test_no_controllers_and_wcow),
        cmocka_unit_test(test_second_controller),
        cmocka_unit_test(test_image_formats),
        cmocka_unit_test(test_fd_is_the_image),
        cmocka_unit_test(test_add_fd_failures),
        cmocka_unit_test(test_remove_fd_failure_is_not_fatal),
        cmocka_unit_test(test_qcow2_backing_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

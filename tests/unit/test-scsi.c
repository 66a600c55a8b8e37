/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SCSI hot-plug orchestration against a scripted fake QMP peer and a fake guest agent: the
 * exact QMP stream of each operation, rollback, bookkeeping, errors, image formats. */
#include <errno.h>
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
#include "fake-guest.h"
#include "fake-qmp.h"
#include "image.h"
#include "uvm-internal.h"

static char dir[64];
static char disk[128], disk2[128], layer[128];

/* ---- expected QMP commands ---- */

static char *
blockdev_add(const char *driver, const char *node, const char *path, bool ro)
{
    return xasprintf("{'execute':'blockdev-add','arguments':{'driver':'%s','node-name':'%s',"
                     "'read-only':%s,'file':{'driver':'file','filename':'%s','read-only':%s}}}",
                     driver, node, ro ? "true" : "false", path, ro ? "true" : "false");
}

static char *
device_add(const char *node, unsigned c, unsigned l)
{
    return xasprintf("{'execute':'device_add','arguments':{'driver':'scsi-hd','id':'%s',"
                     "'bus':'scsi%u.0','channel':0,'scsi-id':0,'lun':%u,'drive':'%s'}}",
                     node, c, l, node);
}

#define DEVICE_DEL(n) "{'execute':'device_del','arguments':{'id':'" n "'}}"
#define BLOCKDEV_DEL(n) "{'execute':'blockdev-del','arguments':{'node-name':'" n "'}}"
#define DELETED(n) "{'event':'DEVICE_DELETED','data':{'device':'" n "','path':'/x'}}"

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
    char *b = blockdev_add("raw", "scsi0-0", disk, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {FAKE_QMP_CMD(b, FAKE_QMP_OK), FAKE_QMP_CMD(d, FAKE_QMP_OK)};
    struct fixture *f = fixture_new(steps, 2, &(struct fixture_config){.scsi_count = 1});
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
    assert_int_equal(f->vm->scsi[0][0].state, SLOT_ATTACHED);
    const char *want[] = {b, d};
    fixture_finish(f, want, 2);
    free(b);
    free(d);
}

static void
test_add_mount_and_remove(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", disk, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'path':'/x/virtio-backend'}}"),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, 6, &(struct fixture_config){.scsi_count = 1});
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
    assert_int_equal(f->vm->scsi[0][0].state, SLOT_FREE);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), UVM_E_NOT_ATTACHED);
    const char *want[] = {b, d, DEVICE_DEL("scsi0-0"), BLOCKDEV_DEL("scsi0-0")};
    fixture_finish(f, want, 4);
    free(b);
    free(d);
}

static void
test_guest_failure_rolls_back(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", disk, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, 5, &(struct fixture_config){.scsi_count = 1});
    f->guest.fail_next = 1;
    int c = 0;
    int32_t l = 0;
    assert_int_equal(uvm_add_scsi(f->vm, disk, "/data", &c, &l), UVM_E_GUEST);
    assert_int_equal(c, -1);
    assert_non_null(strstr(uvm_last_error(), "mount failed"));
    assert_non_null(strstr(uvm_last_error(), disk));
    assert_int_equal(f->vm->scsi[0][0].state, SLOT_FREE);
    const char *want[] = {b, d, DEVICE_DEL("scsi0-0"), BLOCKDEV_DEL("scsi0-0")};
    fixture_finish(f, want, 4);
    free(b);
    free(d);
}

static void
test_device_add_failure_rolls_back(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", disk, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_ERROR("GenericError", "Duplicate ID")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, 3, &(struct fixture_config){.scsi_count = 1});
    assert_int_equal(uvm_add_scsi(f->vm, disk, "/data", NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "Duplicate ID"));
    assert_int_equal(fixture_request_count(f), 0);
    assert_int_equal(f->vm->scsi[0][0].state, SLOT_FREE);
    const char *want[] = {b, d, BLOCKDEV_DEL("scsi0-0")};
    fixture_finish(f, want, 3);
    free(b);
    free(d);
}

static void
test_blockdev_failure(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", disk, false);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD(b, FAKE_QMP_ERROR("GenericError", "Failed to get \\'write\\' lock")),
    };
    struct fixture *f = fixture_new(steps, 1, &(struct fixture_config){.scsi_count = 1});
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "lock"));
    assert_int_equal(f->vm->scsi[0][0].state, SLOT_FREE);
    const char *want[] = {b};
    fixture_finish(f, want, 1);
    free(b);
}

static void
test_remove_failure_keeps_slot(void **state)
{
    char *b = blockdev_add("raw", "scsi0-0", disk, false), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_ERROR("GenericError", "busy")),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, 6, &(struct fixture_config){.scsi_count = 1});
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, NULL, NULL), 0);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "still attached"));
    assert_int_equal(f->vm->scsi[0][0].state, SLOT_ATTACHED);
    assert_int_equal(uvm_remove_scsi(f->vm, disk), 0); /* the retry works */
    assert_int_equal(f->vm->scsi[0][0].state, SLOT_FREE);
    const char *want[] = {b, d, DEVICE_DEL("scsi0-0"), DEVICE_DEL("scsi0-0"),
                          BLOCKDEV_DEL("scsi0-0")};
    fixture_finish(f, want, 5);
    free(b);
    free(d);
}

static void
test_layer_refcount(void **state)
{
    char *b = blockdev_add("vhdx", "scsi0-0", layer, true), *d = device_add("scsi0-0", 0, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD(b, FAKE_QMP_OK),
        FAKE_QMP_CMD(d, FAKE_QMP_OK),
        FAKE_QMP_CMD(DEVICE_DEL("scsi0-0"), FAKE_QMP_OK),
        FAKE_QMP_EVENT(DELETED("scsi0-0")),
        FAKE_QMP_CMD(BLOCKDEV_DEL("scsi0-0"), FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, 5, &(struct fixture_config){.scsi_count = 1});
    int c;
    int32_t l;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(uvm_add_scsi_layer(f->vm, layer, &c, &l), 0);
        assert_int_equal(c, 0);
        assert_int_equal(l, 0);
    }
    assert_int_equal(f->vm->scsi[0][0].refs, 3);
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
    const char *want[] = {b, d, DEVICE_DEL("scsi0-0"), BLOCKDEV_DEL("scsi0-0")};
    fixture_finish(f, want, 4);
    free(b);
    free(d);
}

static void
test_errors_touch_nothing(void **state)
{
    struct fixture *f = fixture_new(NULL, 0, &(struct fixture_config){.scsi_count = 1});
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
    /* Every LUN taken: the 65th is refused before QEMU is asked anything. */
    for (unsigned l = 0; l < UVM_SCSI_LUNS; l++) {
        f->vm->scsi[0][l].state = SLOT_ATTACHED;
        f->vm->scsi[0][l].host_path = xasprintf("/fake/%u", l);
        f->vm->scsi[0][l].refs = 1;
    }
    int c = 0;
    int32_t l = 0;
    assert_int_equal(uvm_add_scsi(f->vm, disk, NULL, &c, &l), UVM_E_TOO_MANY_ATTACHMENTS);
    assert_int_equal(c, -1);
    assert_int_equal(l, -1);
    /* A VM that is not running refuses. */
    f->vm->state = UVM_STATE_TERMINATED;
    assert_int_equal(uvm_add_scsi(f->vm, disk2, NULL, NULL, NULL), UVM_E_INVALID_STATE);
    fixture_finish(f, NULL, 0);
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
    char *b0 = blockdev_add("raw", "scsi0-0", disk, false), *d0 = device_add("scsi0-0", 0, 0);
    char *b1 = blockdev_add("raw", "scsi1-0", disk2, false), *d1 = device_add("scsi1-0", 1, 0);
    const struct fake_qmp_step steps[] = {
        FAKE_QMP_CMD(b1, FAKE_QMP_OK),
        FAKE_QMP_CMD(d1, FAKE_QMP_OK),
    };
    struct fixture *f = fixture_new(steps, 2, &(struct fixture_config){.scsi_count = 2});
    for (unsigned l = 0; l < UVM_SCSI_LUNS; l++) {
        f->vm->scsi[0][l].state = SLOT_ATTACHED;
        f->vm->scsi[0][l].host_path = xasprintf("/fake/%u", l);
        f->vm->scsi[0][l].refs = 1;
    }
    int c;
    int32_t l;
    assert_int_equal(uvm_add_scsi(f->vm, disk2, NULL, &c, &l), 0);
    assert_int_equal(c, 1);
    assert_int_equal(l, 0);
    const char *want[] = {b1, d1};
    fixture_finish(f, want, 2);
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
        assert_int_equal(image_probe(path, false, &info), 0);
        assert_string_equal(info.driver, cases[i].driver);
        assert_string_equal(info.path, path);
        image_info_release(&info);
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
    assert_int_equal(image_probe(ext, false, &bad), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "external data file"));
    /* Paths are canonical: a symlink and ".." resolve to the same image. */
    char link[200], dotted[200];
    snprintf(link, sizeof(link), "%s/link.img", dir);
    snprintf(dotted, sizeof(dotted), "%s/../%s/disk.img", dir, strrchr(dir, '/') + 1);
    assert_int_equal(symlink(disk, link), 0);
    struct image_info a, b;
    assert_int_equal(image_probe(link, false, &a), 0);
    assert_int_equal(image_probe(dotted, false, &b), 0);
    assert_string_equal(a.path, disk);
    assert_string_equal(b.path, disk);
    image_info_release(&a);
    image_info_release(&b);
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

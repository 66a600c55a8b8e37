/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm_modify with hcsshim's ModifySettingRequest JSON against one real VM: SCSI (disk and
 * layer), VPMem, Plan9, VSMB and a NIC give what the typed calls give; both paths share the
 * bookkeeping; a refused GuestRequest rolls the host part back; CombinedLayers over two VPMem
 * layers and a SCSI scratch; malformed requests name the field. */
#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static char dir[64];
static struct uvm *vm;

#define SCSI(c, l) "\"ResourcePath\":\"VirtualMachine/Devices/Scsi/" #c "/Attachments/" #l "\""
#define VPMEM(n) "\"ResourcePath\":\"VirtualMachine/Devices/VirtualPMem/Devices/" #n "\""

static char *
path(const char *name)
{
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
    return buf[k];
}

static int __attribute__((format(printf, 1, 2)))
modify(const char *fmt, ...)
{
    char json[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(json, sizeof(json), fmt, ap);
    va_end(ap);
    return uvm_modify(vm, json);
}

#define MODIFY_OK(...)                                                                             \
    do {                                                                                           \
        if (modify(__VA_ARGS__) < 0)                                                               \
            fail_msg("modify: %s", uvm_last_error());                                             \
    } while (0)

static int
setup(void **state)
{
    strcpy(dir, "/tmp/uvm-modify-it-XXXXXX");
    assert_non_null(mkdtemp(dir));
    itest_sh("cd %s && for d in disk disk2 scratch rbdisk; do truncate -s 16M $d.img && "
             "mkfs.ext4 -q -F -b 4096 $d.img; done",
             dir);
    itest_sh("cd %s && mkdir -p la lb lc share vs && echo from-a > la/a && echo from-b > lb/b && "
             "echo layer-c > lc/c && echo p9-file > share/f && echo vs-file > vs/f && "
             "for l in la lb lc; do truncate -s 4M $l.img && mkfs.ext4 -q -F -b 4096 -d $l $l.img; "
             "done",
             dir);
    vm = itest_boot("itest-modify");
    return 0;
}

static int
teardown(void **state)
{
    uvm_close(vm);
    itest_rm_rf(dir);
    return 0;
}

static int __attribute__((format(printf, 1, 2)))
guest_count(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return itest_guest_count(vm, cmd);
}

/* SCSI disk at 0:0 through uvm_modify: mounted like uvm_add_scsi; the slot is not handed out
 * again and uvm_remove_scsi of its path works; a typed disk is removed through uvm_modify. */
static void
test_scsi_disk_mixed(void **state)
{
    MODIFY_OK("{" SCSI(0, 0) ",\"RequestType\":\"Add\",\"Settings\":{\"Path\":\"%s\","
              "\"Type\":\"VirtualDisk\"},\"GuestRequest\":{\"ResourceType\":\"MappedVirtualDisk\","
              "\"RequestType\":\"Add\",\"Settings\":{\"MountPath\":\"/run/m/disk\"}}}",
              path("disk.img"));
    free(itest_guest(vm, "echo hi > /run/m/disk/hi && sync"));
    assert_int_equal(guest_count("grep -c ' %s ext4 rw' /proc/mounts", "/run/m/disk"), 1);
    int c = -1;
    int32_t l = -1;
    assert_int_equal(uvm_add_scsi(vm, path("disk.img"), NULL, &c, &l), UVM_E_ALREADY_ATTACHED);
    assert_int_equal(uvm_add_scsi(vm, path("disk2.img"), "/run/m/disk2", &c, &l), 0);
    assert_int_equal(c, 0);
    assert_int_equal(l, 1); /* 0:0 is taken through uvm_modify */
    assert_int_equal(modify("{" SCSI(0, 1) ",\"RequestType\":\"Add\",\"Settings\":{\"Path\":"
                            "\"%s\"}}",
                            path("scratch.img")),
                     UVM_E_ALREADY_ATTACHED);
    /* typed remove of the uvm_modify disk: unmounted, ejected, unplugged */
    assert_int_equal(uvm_remove_scsi(vm, path("disk.img")), 0);
    assert_int_equal(guest_count("grep -c ' %s ' /proc/mounts || true", "/run/m/disk"), 0);
    assert_int_equal(itest_guest_count(vm, "ls /sys/bus/scsi/devices | grep -c ':0:0:0$' || true"),
                     0);
    /* uvm_modify remove of the typed disk, hcsshim's order: guest first, then host */
    MODIFY_OK("{" SCSI(0, 1) ",\"RequestType\":\"Remove\",\"GuestRequest\":{\"ResourceType\":"
              "\"MappedVirtualDisk\",\"RequestType\":\"Remove\",\"Settings\":{\"MountPath\":"
              "\"/run/m/disk2\",\"Lun\":1}}}");
    assert_int_equal(guest_count("grep -c ' %s ' /proc/mounts || true", "/run/m/disk2"), 0);
    assert_int_equal(uvm_remove_scsi(vm, path("disk2.img")), UVM_E_NOT_ATTACHED);
    itest_sh("debugfs -R 'cat /hi' %s 2>/dev/null | grep -q hi", path("disk.img"));
}

/* A read-only attachment is a layer: mounted read-only, shared with uvm_add_scsi_layer. */
static void
test_scsi_layer(void **state)
{
    MODIFY_OK("{" SCSI(0, 5) ",\"RequestType\":\"Add\",\"Settings\":{\"Path\":\"%s\","
              "\"Type\":\"VirtualDisk\",\"ReadOnly\":true},\"GuestRequest\":{\"ResourceType\":"
              "\"MappedVirtualDisk\",\"RequestType\":\"Add\",\"Settings\":{\"MountPath\":"
              "\"/tmp/S0/5\",\"Lun\":5,\"ReadOnly\":true}}}",
              path("lc.img"));
    assert_int_equal(itest_guest_count(vm, "grep -c layer-c /tmp/S0/5/c"), 1);
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/S0/5 ext4 ro' /proc/mounts"), 1);
    int c = -1;
    int32_t l = -1;
    assert_int_equal(uvm_add_scsi_layer(vm, path("lc.img"), &c, &l), 0);
    assert_int_equal(l, 5); /* the same slot, a second reference */
    assert_int_equal(uvm_remove_scsi(vm, path("lc.img")), 0);
    assert_int_equal(itest_guest_count(vm, "grep -c layer-c /tmp/S0/5/c"), 1);
    MODIFY_OK("{" SCSI(0, 5) ",\"RequestType\":\"Remove\",\"GuestRequest\":{\"ResourceType\":"
              "\"MappedVirtualDisk\",\"RequestType\":\"Remove\",\"Settings\":{\"MountPath\":"
              "\"/tmp/S0/5\",\"Lun\":5}}}");
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/S0/5 ' /proc/mounts || true"), 0);
}

/* The agent refuses the GuestRequest: the disk is unplugged again and the slot is free. */
static void
test_guest_failure_rolls_back(void **state)
{
    assert_int_equal(modify("{" SCSI(0, 7) ",\"RequestType\":\"Add\",\"Settings\":{\"Path\":"
                            "\"%s\"},\"GuestRequest\":{\"ResourceType\":\"MappedVirtualDisk\","
                            "\"RequestType\":\"Add\",\"Settings\":{\"MountPath\":\"/run/rb\","
                            "\"Lun\":\"seven\"}}}",
                            path("rbdisk.img")),
                     UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "Lun"));
    assert_int_equal(itest_guest_count(vm, "ls /sys/bus/scsi/devices | grep -c ':0:0:7$' || true"),
                     0);
    assert_int_equal(uvm_remove_scsi(vm, path("rbdisk.img")), UVM_E_NOT_ATTACHED);
    /* the slot is free: taken again, without a guest part this time */
    MODIFY_OK("{" SCSI(0, 7) ",\"RequestType\":\"Add\",\"Settings\":{\"Path\":\"%s\"}}",
              path("rbdisk.img"));
    assert_int_equal(uvm_remove_scsi(vm, path("rbdisk.img")), 0);
}

/* VPMem at a chosen number; uvm_add_vpmem of the same image takes a reference to it. */
static void
test_vpmem(void **state)
{
    MODIFY_OK("{" VPMEM(3) ",\"RequestType\":\"Add\",\"Settings\":{\"HostPath\":\"%s\","
              "\"ReadOnly\":true,\"ImageFormat\":\"Vhd1\"},\"GuestRequest\":{\"ResourceType\":"
              "\"VPMemDevice\",\"RequestType\":\"Add\",\"Settings\":{\"DeviceNumber\":3,"
              "\"MountPath\":\"/tmp/p3\"}}}",
              path("lc.img"));
    assert_int_equal(itest_guest_count(vm, "grep -c layer-c /tmp/p3/c"), 1);
    uint32_t n = 99;
    char *p = NULL;
    assert_int_equal(uvm_add_vpmem(vm, path("lc.img"), true, &n, &p), 0);
    assert_int_equal(n, 3);
    assert_string_equal(p, "/tmp/p3");
    free(p);
    assert_int_equal(uvm_remove_vpmem(vm, path("lc.img")), 0);
    MODIFY_OK("{" VPMEM(3) ",\"RequestType\":\"Remove\",\"GuestRequest\":{\"ResourceType\":"
              "\"VPMemDevice\",\"RequestType\":\"Remove\",\"Settings\":{\"DeviceNumber\":3,"
              "\"MountPath\":\"/tmp/p3\"}}}");
    assert_int_equal(itest_guest_count(vm, "grep -c ' /tmp/p3 ' /proc/mounts || true"), 0);
    assert_int_equal(uvm_remove_vpmem(vm, path("lc.img")), UVM_E_NOT_ATTACHED);
}

static void
test_plan9(void **state)
{
    MODIFY_OK("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"RequestType\":\"Add\","
              "\"Settings\":{\"Name\":\"7\",\"Path\":\"%s\",\"Port\":7,\"Flags\":1},"
              "\"GuestRequest\":{\"ResourceType\":\"MappedDirectory\",\"RequestType\":\"Add\","
              "\"Settings\":{\"MountPath\":\"/run/p9\",\"Port\":7,\"ReadOnly\":true}}}",
              path("share"));
    assert_int_equal(itest_guest_count(vm, "grep -c p9-file /run/p9/f"), 1);
    assert_int_equal(itest_guest_count(vm, "touch /run/p9/x 2>/dev/null; ls /run/p9 | wc -l"), 1);
    /* the typed call shares the record: a reference, then the last remove through uvm_modify */
    assert_int_equal(uvm_add_plan9(vm, path("share"), "/run/p9", true), 0);
    assert_int_equal(uvm_remove_plan9(vm, path("share")), 0);
    MODIFY_OK("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"RequestType\":"
              "\"Remove\",\"Settings\":{\"Name\":\"7\",\"Port\":7},\"GuestRequest\":{"
              "\"ResourceType\":\"MappedDirectory\",\"RequestType\":\"Remove\",\"Settings\":{"
              "\"MountPath\":\"/run/p9\",\"Port\":7}}}");
    assert_int_equal(itest_guest_count(vm, "grep -c ' /run/p9 ' /proc/mounts || true"), 0);
    assert_int_equal(uvm_remove_plan9(vm, path("share")), UVM_E_NOT_ATTACHED);
}

static void
test_vsmb(void **state)
{
    MODIFY_OK("{\"ResourcePath\":\"VirtualMachine/Devices/VirtualSmb/Shares\",\"RequestType\":"
              "\"Add\",\"Settings\":{\"Name\":\"s40\",\"Path\":\"%s\",\"Options\":{\"ReadOnly\":"
              "true,\"CacheIo\":true,\"ShareRead\":true}}}",
              path("vs"));
    char *p = NULL;
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, path("vs"), &p), 0);
    assert_string_equal(p, "/run/vsmb/s40");
    free(p);
    assert_int_equal(itest_guest_count(vm, "grep -c vs-file /run/vsmb/s40/f"), 1);
    MODIFY_OK("{\"ResourcePath\":\"VirtualMachine/Devices/VirtualSmb/Shares\",\"RequestType\":"
              "\"Remove\",\"Settings\":{\"Name\":\"s40\"}}");
    assert_int_equal(itest_guest_count(vm, "grep -c ' /run/vsmb/s40 ' /proc/mounts || true"), 0);
    assert_int_equal(uvm_remove_vsmb(vm, path("vs")), UVM_E_NOT_ATTACHED);
}

/* EndpointId names an existing host tap; without a GuestRequest the NIC shows in the guest's
 * root namespace with its MAC. */
static void
test_nic(void **state)
{
    const char *tap = "uvmmodt0";
    itest_sh("(ip link del %s 2>/dev/null || true) && ip tuntap add dev %s mode tap", tap, tap);
    const char *res = "\"ResourcePath\":\"VirtualMachine/Devices/NetworkAdapters/"
                      "6f1e2b3c-0000-4000-8000-00155d010203\"";
    MODIFY_OK("{%s,\"RequestType\":\"Add\",\"Settings\":{\"EndpointId\":\"%s\",\"MacAddress\":"
              "\"00-15-5D-01-02-03\"}}",
              res, tap);
    const char *count = "cat /sys/class/net/*/address | grep -c 00:15:5d:01:02:03 || true";
    for (int i = 0; i < 100 && !itest_guest_count(vm, count); i++)
        usleep(100000); /* no guest part: nothing waited for the driver */
    assert_int_equal(itest_guest_count(vm, count), 1);
    assert_int_equal(modify("{%s,\"RequestType\":\"Add\",\"Settings\":{\"EndpointId\":\"%s\","
                            "\"MacAddress\":\"00-15-5D-01-02-03\"}}",
                            res, tap),
                     UVM_E_ALREADY_ATTACHED);
    MODIFY_OK("{%s,\"RequestType\":\"Remove\"}", res);
    for (int i = 0; i < 50 && itest_guest_count(vm, count); i++)
        usleep(100000);
    assert_int_equal(itest_guest_count(vm, count), 0);
    itest_sh("ip link del %s", tap);
}

/* CombinedLayers over two VPMem layers and a SCSI scratch: writes land in the scratch. */
static void
test_combined_layers(void **state)
{
    MODIFY_OK("{" VPMEM(4) ",\"Settings\":{\"HostPath\":\"%s\"},\"GuestRequest\":{"
              "\"ResourceType\":\"VPMemDevice\",\"Settings\":{\"DeviceNumber\":4,\"MountPath\":"
              "\"/tmp/p4\"}}}",
              path("la.img"));
    MODIFY_OK("{" VPMEM(5) ",\"Settings\":{\"HostPath\":\"%s\"},\"GuestRequest\":{"
              "\"ResourceType\":\"VPMemDevice\",\"Settings\":{\"DeviceNumber\":5,\"MountPath\":"
              "\"/tmp/p5\"}}}",
              path("lb.img"));
    MODIFY_OK("{" SCSI(0, 9) ",\"Settings\":{\"Path\":\"%s\"},\"GuestRequest\":{"
              "\"ResourceType\":\"MappedVirtualDisk\",\"Settings\":{\"MountPath\":"
              "\"/run/gcs/c/1/scratch\",\"Lun\":9}}}",
              path("scratch.img"));
#define LAYERS "{\"GuestRequest\":{\"ResourceType\":\"CombinedLayers\",\"RequestType\":" \
                         "\"%s\",\"Settings\":{\"ContainerRootPath\":\"/run/gcs/c/1/rootfs\"," \
                         "\"Layers\":[{\"Path\":\"/tmp/p4\"},{\"Path\":\"/tmp/p5\"}]," \
                         "\"ScratchPath\":\"/run/gcs/c/1/scratch\"}}}"
    MODIFY_OK(LAYERS, "Add");
    char *out = itest_guest(vm, "cd /run/gcs/c/1/rootfs && cat a b && echo new > n && "
                                "echo changed > a && cat /run/gcs/c/1/scratch/upper/n "
                                "/run/gcs/c/1/scratch/upper/a /tmp/p4/a && ls /tmp/p4 /tmp/p5");
    assert_string_equal(out, "from-a\nfrom-b\nnew\nchanged\nfrom-a\n/tmp/p4:\na\nlost+found\n\n"
                             "/tmp/p5:\nb\nlost+found\n");
    free(out);
    MODIFY_OK(LAYERS, "Remove");
    assert_int_equal(itest_guest_count(vm, "grep -c ' /run/gcs/c/1/rootfs ' /proc/mounts || true"),
                     0);
    MODIFY_OK("{" SCSI(0, 9) ",\"RequestType\":\"Remove\",\"GuestRequest\":{\"ResourceType\":"
              "\"MappedVirtualDisk\",\"RequestType\":\"Remove\",\"Settings\":{\"MountPath\":"
              "\"/run/gcs/c/1/scratch\",\"Lun\":9}}}");
    assert_int_equal(uvm_remove_vpmem(vm, path("la.img")), 0);
    assert_int_equal(uvm_remove_vpmem(vm, path("lb.img")), 0);
    itest_sh("debugfs -R 'cat /upper/n' %s 2>/dev/null | grep -q new", path("scratch.img"));
    itest_sh("! debugfs -R 'cat /n' %s 2>/dev/null | grep -q new", path("la.img"));
}

static void
expect(int code, const char *field, const char *json)
{
    int rc = uvm_modify(vm, json);
    if (rc != code || !strstr(uvm_last_error(), field))
        fail_msg("%s: got %d '%s', want %d naming '%s'", json, rc, uvm_last_error(), code, field);
}

static void
test_malformed(void **state)
{
    expect(UVM_E_NOT_SUPPORTED, "VirtualMachine/Devices/Frob/0",
           "{\"ResourcePath\":\"VirtualMachine/Devices/Frob/0\",\"Settings\":{}}");
    expect(UVM_E_INVALID_ARGUMENT, "RequestType",
           "{" SCSI(0, 2) ",\"RequestType\":\"Frob\",\"Settings\":{\"Path\":\"/x\"}}");
    expect(UVM_E_INVALID_ARGUMENT, "Settings.Path", "{" SCSI(0, 2) ",\"Settings\":{}}");
    expect(UVM_E_INVALID_ARGUMENT, "Settings", "{" SCSI(0, 2) "}");
    expect(UVM_E_INVALID_ARGUMENT, "Settings.ReadOnly",
           "{" SCSI(0, 2) ",\"Settings\":{\"Path\":\"/x\",\"ReadOnly\":\"yes\"}}");
    expect(UVM_E_INVALID_ARGUMENT, "Settings.Port",
           "{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"Settings\":{\"Name\":"
           "\"1\",\"Path\":\"/x\",\"Port\":\"1\"}}");
    expect(UVM_E_INVALID_ARGUMENT, "LUN", "{" SCSI(0, 64) ",\"Settings\":{\"Path\":\"/x\"}}");
    expect(UVM_E_INVALID_ARGUMENT, "controller 1",
           "{" SCSI(1, 0) ",\"Settings\":{\"Path\":\"%s\"}}");
    expect(UVM_E_INVALID_ARGUMENT, "device number", "{" VPMEM(x) ",\"Settings\":{}}");
    expect(UVM_E_INVALID_ARGUMENT, "Settings.MacAddress",
           "{\"ResourcePath\":\"VirtualMachine/Devices/NetworkAdapters/ab-12\",\"Settings\":{"
           "\"EndpointId\":\"t\",\"MacAddress\":\"nope\"}}");
    expect(UVM_E_INVALID_ARGUMENT, "Settings.Options.Frob",
           "{\"ResourcePath\":\"VirtualMachine/Devices/VirtualSmb/Shares\",\"Settings\":{\"Name\":"
           "\"s1\",\"Path\":\"/x\",\"Options\":{\"Frob\":true}}}");
    expect(UVM_E_INVALID_ARGUMENT, "GuestRequest", "{\"GuestRequest\":3}");
    expect(UVM_E_INVALID_ARGUMENT, "Frob", "{\"Frob\":1,\"GuestRequest\":{}}");
    expect(UVM_E_GUEST, "Layers", "{\"GuestRequest\":{\"ResourceType\":\"CombinedLayers\","
                                  "\"Settings\":{\"ContainerRootPath\":\"/run/x\",\"Layers\":"
                                  "[{\"Path\":\"/tmp/../etc\"}]}}}");
}

int
main(void)
{
    itest_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_scsi_disk_mixed),
        cmocka_unit_test(test_scsi_layer),
        cmocka_unit_test(test_guest_failure_rolls_back),
        cmocka_unit_test(test_vpmem),
        cmocka_unit_test(test_plan9),
        cmocka_unit_test(test_vsmb),
        cmocka_unit_test(test_nic),
        cmocka_unit_test(test_combined_layers),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return itest_finish(failed);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OCI containers in one real VM booted from rootfs.vhd (crun): a busybox root file system made
 * from busybox-static, shared read-only into the VM, and specs made by the host's `crun spec`
 * (pid, mount, ipc, uts, network and cgroup namespaces, its capabilities and mounts), changed
 * per case. One VM serves every case (boots are the expensive part under TCG). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "itest.h"

static struct uvm *vm;
static char dir[64];          /* the test's host folder */
static char rootfs_guest[128]; /* where the busybox root file system is in the guest */
static json_t *default_spec;   /* `crun spec`'s */

/* The default spec with process.args = argv (NULL-terminated), no terminal, root = the
 * busybox share. */
static json_t *
spec_for(const char *const *argv)
{
    json_t *spec = json_deep_copy(default_spec);
    json_t *process = json_object_get(spec, "process");
    json_t *args = json_array();
    for (size_t i = 0; argv[i]; i++)
        json_array_append_new(args, json_string(argv[i]));
    json_object_set_new(process, "args", args);
    json_object_set_new(process, "terminal", json_false());
    json_object_set_new(json_object_get(spec, "root"), "path", json_string(rootfs_guest));
    return spec;
}

/* Create a container from spec (consumed); the init gets stdout, stderr and, with
 * want_stdin, stdin. */
static int
create(const char *id, json_t *spec, bool want_stdin, struct uvm_container **c)
{
    char *text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    struct uvm_container_config cfg = {.id = id,
                                       .spec_json = text,
                                       .create_stdin = want_stdin,
                                       .create_stdout = true,
                                       .create_stderr = true};
    int rc = uvm_create_container(vm, &cfg, c);
    free(text);
    return rc;
}

/* Create, start, feed `in`, collect, wait, delete. Returns the init's exit code. */
static int
run_spec(const char *id, json_t *spec, const char *in, struct itest_run *r)
{
    struct uvm_container *c = NULL;
    if (create(id, spec, in != NULL, &c) < 0)
        fail_msg("create %s: %s", id, uvm_last_error());
    struct uvm_process *init = NULL;
    if (uvm_container_start(c, &init) < 0)
        fail_msg("start %s: %s", id, uvm_last_error());
    if (itest_collect(init, in, r) < 0)
        fail_msg("wait %s: %s", id, uvm_last_error());
    if (uvm_container_delete(c) < 0)
        fail_msg("delete %s: %s", id, uvm_last_error());
    uvm_container_close(c);
    return r->exit_code;
}

static int
run_args(const char *id, const char *const *argv, const char *in, struct itest_run *r)
{
    return run_spec(id, spec_for(argv), in, r);
}

static void
test_output_and_exit_codes(void **state)
{
    struct itest_run r;
    const char *echo[] = {"echo", "hi", NULL};
    assert_int_equal(run_args("echo", echo, NULL, &r), 0);
    assert_string_equal(r.out, "hi\n");
    assert_string_equal(r.err, "");
    itest_run_free(&r);

    const char *three[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    assert_int_equal(run_args("three", three, NULL, &r), 3);
    assert_string_equal(r.out, "out\n");
    assert_string_equal(r.err, "err\n");
    itest_run_free(&r);

    const char *cat[] = {"cat", NULL};
    assert_int_equal(run_args("cat", cat, "abc\ndef", &r), 0);
    assert_string_equal(r.out, "abc\ndef");
    itest_run_free(&r);
}

static void
test_sigkill(void **state)
{
    struct uvm_container *c = NULL;
    const char *argv[] = {"sh", "-c", "echo started; exec sleep 100", NULL};
    if (create("killme", spec_for(argv), false, &c) < 0)
        fail_msg("create: %s", uvm_last_error());
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    int out = -1;
    uvm_process_stdio(init, NULL, &out, NULL);
    char buf[16] = "";
    assert_int_equal(read(out, buf, 8), 8); /* "started\n": sleep runs */
    close(out);
    assert_int_equal(uvm_container_signal(c, 9), 0);
    int code = -1;
    assert_int_equal(uvm_container_wait(c, &code), 0);
    assert_int_equal(code, 137);
    assert_int_equal(uvm_process_wait(init, &code), 0);
    assert_int_equal(code, 137);
    uvm_process_close(init);
    assert_int_equal(uvm_container_delete(c), 0);
    uvm_container_close(c);
}

/* ps sees only the container's processes; an exec joins the init's namespaces. */
static void
test_pid_namespace_and_exec(void **state)
{
    struct itest_run r;
    const char *ps[] = {"ps", "-o", "pid,comm", NULL};
    assert_int_equal(run_args("ps", ps, NULL, &r), 0);
    assert_string_equal(r.out, "PID   COMMAND\n    1 ps\n");
    itest_run_free(&r);

    struct uvm_container *c = NULL;
    const char *sleep[] = {"sleep", "100", NULL};
    json_t *spec = spec_for(sleep);
    json_object_set_new(spec, "hostname", json_string("joined"));
    assert_int_equal(create("joined", spec, false, &c), 0);
    assert_int_equal(uvm_container_start(c, NULL), 0);
    struct uvm_container_process_config pc = {
        .process_json = "{\"args\":[\"sh\",\"-c\",\"hostname; cat /proc/1/comm; for n in pid "
                        "mnt ipc uts net cgroup; do [ $(readlink /proc/self/ns/$n) = "
                        "$(readlink /proc/1/ns/$n) ] && echo same $n; done; ps -o pid,comm\"],"
                        "\"cwd\":\"/\",\"env\":[\"PATH=/bin\"]}",
        .create_stdout = true,
        .create_stderr = true};
    struct uvm_process *p = NULL;
    if (uvm_container_exec(c, &pc, &p) < 0)
        fail_msg("exec: %s", uvm_last_error());
    assert_int_equal(itest_collect(p, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.err, "");
    /* the exec's pid in the container: the third process (init 1, sh, ps) */
    if (strncmp(r.out,
                "joined\nsleep\nsame pid\nsame mnt\nsame ipc\nsame uts\nsame net\nsame cgroup\n"
                "PID   COMMAND\n    1 sleep\n",
                strlen("joined\nsleep\nsame pid\nsame mnt\nsame ipc\nsame uts\nsame net\nsame "
                       "cgroup\nPID   COMMAND\n    1 sleep\n")) != 0)
        fail_msg("exec output: %s", r.out);
    itest_run_free(&r);
    assert_int_equal(uvm_container_signal(c, 9), 0);
    int code = -1;
    assert_int_equal(uvm_container_wait(c, &code), 0);
    assert_int_equal(code, 137);
    assert_int_equal(uvm_container_delete(c), 0);
    uvm_container_close(c);
}

/* crun runs without address space randomization (it is faster under TCG); the container's
 * init and execs have it back: personality 0, not ADDR_NO_RANDOMIZE (0x0040000). */
static void
test_address_randomization(void **state)
{
    struct itest_run r;
    const char *pers[] = {"cat", "/proc/self/personality", NULL};
    assert_int_equal(run_args("pers", pers, NULL, &r), 0);
    assert_string_equal(r.out, "00000000\n");
    itest_run_free(&r);

    struct uvm_container *c = NULL;
    const char *sleep[] = {"sleep", "100", NULL};
    assert_int_equal(create("pers2", spec_for(sleep), false, &c), 0);
    assert_int_equal(uvm_container_start(c, NULL), 0);
    struct uvm_container_process_config pc = {
        .process_json = "{\"args\":[\"cat\",\"/proc/self/personality\",\"/proc/1/personality\"],"
                        "\"cwd\":\"/\",\"env\":[\"PATH=/bin\"]}",
        .create_stdout = true,
        .create_stderr = true};
    struct uvm_process *p = NULL;
    if (uvm_container_exec(c, &pc, &p) < 0)
        fail_msg("exec: %s", uvm_last_error());
    assert_int_equal(itest_collect(p, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "00000000\n00000000\n");
    itest_run_free(&r);
    assert_int_equal(uvm_container_signal(c, 9), 0);
    int code = -1;
    assert_int_equal(uvm_container_wait(c, &code), 0);
    assert_int_equal(uvm_container_delete(c), 0);
    uvm_container_close(c);
}

/* hostname, user, env and cwd from the spec; the root is read-only. */
static void
test_spec_fields(void **state)
{
    const char *argv[] = {"sh", "-c", "hostname; id -u; id -g; echo $FOO; pwd; touch /x", NULL};
    json_t *spec = spec_for(argv);
    json_object_set_new(spec, "hostname", json_string("ctr-host"));
    json_t *process = json_object_get(spec, "process");
    json_object_set_new(process, "user", json_pack("{s:i, s:i}", "uid", 1000, "gid", 1000));
    json_array_append_new(json_object_get(process, "env"), json_string("FOO=bar baz"));
    json_object_set_new(process, "cwd", json_string("/tmp"));
    struct itest_run r;
    assert_int_equal(run_spec("fields", spec, NULL, &r), 1); /* the touch */
    assert_string_equal(r.out, "ctr-host\n1000\n1000\nbar baz\n/tmp\n");
    assert_non_null(strstr(r.err, "Read-only file system"));
    itest_run_free(&r);
}

/* A CPU quota and a memory limit from the spec are in the container's cgroup, seen from the
 * container and from the guest. */
static void
test_resources(void **state)
{
    struct uvm_container *c = NULL;
    /* crun spec's default has no cgroup namespace: the container's own cgroup is the one
     * /proc/self/cgroup names */
    const char *argv[] = {"sh", "-c", "g=/sys/fs/cgroup$(sed s/^0::// /proc/self/cgroup); "
                                      "cat $g/cpu.max $g/memory.max; exec sleep 100",
                          NULL};
    json_t *spec = spec_for(argv);
    json_t *res = json_object_get(json_object_get(spec, "linux"), "resources");
    json_object_set_new(res, "cpu", json_pack("{s:I, s:I}", "quota", (json_int_t)25000, "period",
                                              (json_int_t)100000));
    json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)48 << 20));
    assert_int_equal(create("limits", spec, false, &c), 0);
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    int out = -1;
    uvm_process_stdio(init, NULL, &out, NULL);
    char buf[64] = "";
    size_t got = 0;
    while (got < 22) { /* "25000 100000\n50331648\n" */
        ssize_t n = read(out, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0) {
            struct itest_run r;
            itest_collect(init, NULL, &r);
            fail_msg("output '%s%s', then end of file; stderr '%s', exit %d", buf, r.out,
                     r.err, r.exit_code);
        }
        got += (size_t)n;
    }
    close(out);
    assert_string_equal(buf, "25000 100000\n50331648\n");
    char *host = itest_guest(vm, "cat /sys/fs/cgroup/c/limits/cpu.max "
                                 "/sys/fs/cgroup/c/limits/memory.max");
    assert_string_equal(host, "25000 100000\n50331648\n");
    free(host);
    assert_int_equal(uvm_container_delete(c), 0); /* a running container: killed */
    int code = -1;
    assert_int_equal(uvm_process_wait(init, &code), 0);
    assert_int_equal(code, 137);
    uvm_process_close(init);
    uvm_container_close(c);
}

/* crun's error text reaches the caller and nothing is left of the container. */
static void
test_missing_executable(void **state)
{
    struct uvm_container *c = NULL;
    const char *argv[] = {"/bin/nosuch-program", NULL};
    assert_int_equal(create("missing", spec_for(argv), false, &c), UVM_E_GUEST);
    assert_null(c);
    const char *msg = uvm_last_error();
    if (!strstr(msg, "crun create") || !strstr(msg, "/bin/nosuch-program"))
        fail_msg("message: %s", msg);
    struct uvm_container_info *list = NULL;
    size_t n = 99;
    assert_int_equal(uvm_list_containers(vm, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
    assert_int_equal(itest_guest_count(vm, "ls /run/gcs/c /sys/fs/cgroup/c 2>/dev/null | "
                                           "grep -c missing || true"),
                     0);
}

/* Two containers at once: each sees its own processes, host name and network. */
static void
test_two_isolated(void **state)
{
    struct uvm_container *a = NULL, *b = NULL;
    const char *sleep[] = {"sleep", "100", NULL};
    json_t *spec = spec_for(sleep);
    json_object_set_new(spec, "hostname", json_string("aaa"));
    assert_int_equal(create("iso-a", spec, false, &a), 0);
    assert_int_equal(uvm_container_start(a, NULL), 0);
    const char *look[] = {"sh", "-c", "hostname; ps -o comm; cat /proc/net/dev | wc -l", NULL};
    spec = spec_for(look);
    json_object_set_new(spec, "hostname", json_string("bbb"));
    assert_int_equal(create("iso-b", spec, false, &b), 0);
    struct uvm_container_info *list = NULL;
    size_t n = 0;
    assert_int_equal(uvm_list_containers(vm, &list, &n), 0);
    assert_int_equal(n, 2);
    bool seen_a = false, seen_b = false;
    for (size_t i = 0; i < n; i++) {
        seen_a |= !strcmp(list[i].id, "iso-a") && !strcmp(list[i].state, "running");
        seen_b |= !strcmp(list[i].id, "iso-b") && !strcmp(list[i].state, "created") &&
                  list[i].init_pid > 0;
    }
    free(list);
    assert_true(seen_a && seen_b);
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(b, &init), 0);
    struct itest_run r;
    assert_int_equal(itest_collect(init, NULL, &r), 0);
    /* b: its own name, only its own processes (no sleep), only lo (2 header lines + lo) */
    assert_string_equal(r.out, "bbb\nCOMMAND\nsh\nps\n3\n");
    itest_run_free(&r);
    assert_int_equal(uvm_container_delete(b), 0);
    uvm_container_close(b);
    assert_int_equal(uvm_container_delete(a), 0);
    uvm_container_close(a);
}

/* A host directory bind-mounted into the container: shared into the VM by create, read-only
 * as the mount says, unshared by delete. */
static void
test_bind_mount(void **state)
{
    itest_sh("mkdir -p %s/data && echo from-host > %s/data/hello", dir, dir);
    const char *argv[] = {"sh", "-c", "cat /mnt/hello; touch /mnt/x 2>&1; ls /mnt", NULL};
    json_t *spec = spec_for(argv);
    char src[128];
    snprintf(src, sizeof(src), "%s/data", dir);
    json_array_append_new(json_object_get(spec, "mounts"),
                          json_pack("{s:s, s:s, s:s, s:[s, s]}", "destination", "/mnt", "type",
                                    "bind", "source", src, "options", "rbind", "ro"));
    struct itest_run r;
    assert_int_equal(run_spec("bind", spec, NULL, &r), 0);
    assert_non_null(strstr(r.out, "from-host\n"));
    assert_non_null(strstr(r.out, "Read-only file system"));
    assert_true(strstr(r.out, "hello\n") && !strstr(r.out, "\nx\n"));
    itest_run_free(&r);
    char *guest = NULL;
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, src, &guest), UVM_E_NOT_FOUND);
    /* a relative source or a file is refused before anything is made */
    spec = spec_for(argv);
    json_array_append_new(json_object_get(spec, "mounts"),
                          json_pack("{s:s, s:s, s:s}", "destination", "/f", "type", "bind",
                                    "source", "/etc/hostname"));
    struct uvm_container *c = NULL;
    assert_int_equal(create("file", spec, false, &c), UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "'/etc/hostname' is not a directory"));
}

/* Without a PID namespace of its own, signalling the init signals every process of the
 * container (crun kill --all), and none survives its exit. */
static void
test_no_pid_namespace(void **state)
{
    const char *argv[] = {"sh", "-c", "sleep 1001 & sleep 1002 & echo up; wait", NULL};
    json_t *spec = spec_for(argv);
    json_t *nss = json_object_get(json_object_get(spec, "linux"), "namespaces");
    for (size_t i = 0; i < json_array_size(nss); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(nss, i), "type")), "pid"))
            json_array_remove(nss, i--);
    struct uvm_container *c = NULL;
    assert_int_equal(create("nopidns", spec, false, &c), 0);
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    int out = -1;
    uvm_process_stdio(init, NULL, &out, NULL);
    char buf[8] = "";
    assert_int_equal(read(out, buf, 3), 3);
    close(out);
    /* both sleeps exec'd (the shell printed "up" after forking them) */
    assert_int_equal(itest_guest_count(vm, "for i in $(seq 100); do n=$(ps -o args | grep -c "
                                           "'^sleep 100[12]'); [ $n = 2 ] && break; sleep 0.1; "
                                           "done; echo $n"),
                     2);
    assert_int_equal(uvm_container_signal(c, 15), 0); /* sh dies of it, the sleeps too */
    int code = -1;
    assert_int_equal(uvm_container_wait(c, &code), 0);
    assert_int_equal(code, 143);
    assert_int_equal(itest_guest_count(vm, "ps -o args | grep -c '^sleep 100[12]' || true"), 0);
    uvm_process_close(init);
    assert_int_equal(uvm_container_delete(c), 0);
    uvm_container_close(c);
}

/* The root file system from CombinedLayers: two erofs layer images on VPMem and an ext4
 * scratch disk on SCSI; the container's writes land in the scratch. */
static void
test_combined_layers(void **state)
{
    itest_sh("cd %s && mkdir -p top/etc && echo from-top > top/etc/layer && "
             "echo top-wins > top/etc/motd && mkdir -p base && cp -a rootfs/. base/ && "
             "echo from-base > base/etc/motd && echo base-only > base/etc/base && "
             "mkfs.erofs base.img base >/dev/null && mkfs.erofs top.img top >/dev/null && "
             "truncate -s %%2M base.img top.img && truncate -s 64M scratch.img && "
             "mkfs.ext4 -q -F scratch.img",
             dir);
    char base[128], top[128], scratch[128];
    snprintf(base, sizeof(base), "%s/base.img", dir);
    snprintf(top, sizeof(top), "%s/top.img", dir);
    snprintf(scratch, sizeof(scratch), "%s/scratch.img", dir);
    uint32_t nb, nt;
    char *pb = NULL, *pt = NULL;
    if (uvm_add_vpmem(vm, base, true, &nb, &pb) < 0 || uvm_add_vpmem(vm, top, true, &nt, &pt) < 0 ||
        uvm_add_scsi(vm, scratch, "/run/gcs/c/layered/scratch", NULL, NULL) < 0)
        fail_msg("layers: %s", uvm_last_error());
    char req[512];
#define LAYERS_REQ                                                                                 \
    "{\"GuestRequest\":{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"%s\",\"Settings\":{"  \
    "\"ContainerRootPath\":\"/run/gcs/c/layered/rootfs\",\"Layers\":[{\"Path\":\"%s\"},{\"Path\":"  \
    "\"%s\"}],\"ScratchPath\":\"/run/gcs/c/layered/scratch\"}}}"
    snprintf(req, sizeof(req), LAYERS_REQ, "Add", pt, pb);
    if (uvm_modify(vm, req) < 0)
        fail_msg("CombinedLayers: %s", uvm_last_error());

    const char *argv[] = {"sh", "-c", "cat /etc/layer /etc/motd /etc/base && echo new > /etc/w",
                          NULL};
    json_t *spec = spec_for(argv);
    json_object_set_new(json_object_get(spec, "root"), "readonly", json_false());
    char *text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    struct uvm_container_config cfg = {.id = "layered",
                                       .spec_json = text,
                                       .root_path = "/run/gcs/c/layered/rootfs",
                                       .create_stdout = true,
                                       .create_stderr = true};
    struct uvm_container *c = NULL;
    if (uvm_create_container(vm, &cfg, &c) < 0)
        fail_msg("create: %s", uvm_last_error());
    free(text);
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    struct itest_run r;
    assert_int_equal(itest_collect(init, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "from-top\ntop-wins\nbase-only\n");
    itest_run_free(&r);
    assert_int_equal(uvm_container_delete(c), 0);
    uvm_container_close(c);
    char *out = itest_guest(vm, "cat /run/gcs/c/layered/scratch/upper/etc/w");
    assert_string_equal(out, "new\n");
    free(out);

    snprintf(req, sizeof(req), LAYERS_REQ, "Remove", pt, pb);
    if (uvm_modify(vm, req) < 0 || uvm_remove_scsi(vm, scratch) < 0 ||
        uvm_remove_vpmem(vm, top) < 0 || uvm_remove_vpmem(vm, base) < 0)
        fail_msg("remove the layers: %s", uvm_last_error());
    free(pb);
    free(pt);
    itest_guest(vm, "rmdir /run/gcs/c/layered 2>/dev/null; true");
}

static char hns[32], tap[16]; /* test_netns's host namespace and tap */

/* test_netns's host namespace and tap go even when the test failed half-way. */
static int
netns_teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip link del %s 2>/dev/null; true",
             hns, tap);
    return system(cmd) == 0 ? 0 : -1;
}

/* A container in a network namespace added with uvm_add_netns reaches a host tap. */
static void
test_netns(void **state)
{
    snprintf(hns, sizeof(hns), "uvmit-c-%d", (int)getpid());
    snprintf(tap, sizeof(tap), "uvmitc%d", (int)getpid() % 100000);
    itest_sh("ip netns add %s && ip tuntap add dev %s mode tap", hns, tap);
    struct uvm_endpoint e = {.id = "6f3d1c52-0000-4000-8000-0000000000c1",
                             .mac_address = "52:54:00:00:0c:02",
                             .ip_address = "10.200.12.2",
                             .prefix_length = 24,
                             .gateway_address = "10.200.12.1",
                             .host_ifname = tap};
    if (uvm_add_netns(vm, "cns", &e, 1) < 0)
        fail_msg("add netns: %s", uvm_last_error());
    itest_sh("ip link set %s netns %s && ip -n %s addr add 10.200.12.1/24 dev %s && "
             "ip -n %s link set %s up && ip -n %s link set lo up && "
             "(ip netns exec %s timeout 120 socat TCP-LISTEN:7778,reuseaddr EXEC:cat "
             ">/dev/null 2>&1 &) ; sleep 0.5",
             tap, hns, hns, tap, hns, tap, hns, hns);
    const char *argv[] = {"sh", "-c", "cat /sys/class/net/eth0/address; "
                                      "echo tcp-from-container | nc -w 5 10.200.12.1 7778",
                          NULL};
    char *text = json_dumps(spec_for(argv), JSON_COMPACT);
    struct uvm_container_config cfg = {.id = "netc",
                                       .spec_json = text,
                                       .network_namespace = "cns",
                                       .create_stdout = true,
                                       .create_stderr = true};
    struct uvm_container *c = NULL;
    int rc = uvm_create_container(vm, &cfg, &c);
    free(text);
    if (rc < 0)
        fail_msg("create: %s", uvm_last_error());
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    struct itest_run r;
    assert_int_equal(itest_collect(init, NULL, &r), 0);
    assert_string_equal(r.out, "52:54:00:00:0c:02\ntcp-from-container\n");
    assert_int_equal(r.exit_code, 0);
    itest_run_free(&r);
    assert_int_equal(uvm_container_delete(c), 0);
    uvm_container_close(c);
    assert_int_equal(uvm_remove_netns(vm, "cns"), 0);
}

/* A container's init on a terminal (process.terminal, consoleSize): its tty, its size at start
 * and after uvm_process_resize, Ctrl-C interrupting a foreground sleep, then an exec on a
 * terminal of its own. */
static void
test_terminal(void **state)
{
    const char *argv[] = {"sh", NULL};
    json_t *spec = spec_for(argv);
    json_t *process = json_object_get(spec, "process");
    json_object_set_new(process, "terminal", json_true());
    json_object_set_new(process, "consoleSize", json_pack("{s:i, s:i}", "height", 33, "width",
                                                          99));
    struct uvm_container *c = NULL;
    assert_int_equal(create("tty", spec, true, &c), 0);
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    int fd = -1;
    assert_int_equal(uvm_process_terminal(init, &fd), 0);
    int unused = 7;
    uvm_process_stdio(init, &unused, NULL, NULL);
    assert_int_equal(unused, -1); /* no pipes beside the terminal */
    struct itest_tbuf b = {0};
    itest_type(fd, "tty; stty size; echo A-$((1+1))\n");
    char *out = itest_expect(fd, &b, "A-2\r\n");
    if (!strstr(out, "/dev/pts/0\r\n33 99\r\n"))
        fail_msg("terminal output: [%s]", out);
    free(out);
    assert_int_equal(uvm_process_resize(init, 40, 120), 0);
    itest_type(fd, "stty size; echo B-$((2+2))\n");
    out = itest_expect(fd, &b, "B-4\r\n");
    if (!strstr(out, "40 120\r\n"))
        fail_msg("after the resize: [%s]", out);
    free(out);
    itest_type(fd, "sleep 100\n");
    free(itest_expect(fd, &b, "sleep 100\r\n"));
    itest_type(fd, "\x03"); /* Ctrl-C: SIGINT for the foreground sleep, 128 + 2 */
    free(itest_expect(fd, &b, "^C"));
    itest_type(fd, "echo C-$?-$((3+3))\n");
    free(itest_expect(fd, &b, "C-130-6\r\n"));

    /* an exec on a terminal of its own, in the same container */
    struct uvm_container_process_config pc = {
        .process_json = "{\"args\":[\"sh\",\"-c\",\"tty; stty size\"],\"cwd\":\"/\","
                        "\"terminal\":true,\"consoleSize\":{\"height\":12,\"width\":34},"
                        "\"env\":[\"PATH=/bin\"]}"};
    struct uvm_process *p = NULL;
    if (uvm_container_exec(c, &pc, &p) < 0)
        fail_msg("exec: %s", uvm_last_error());
    int pfd = -1;
    assert_int_equal(uvm_process_terminal(p, &pfd), 0);
    struct itest_tbuf pb = {0};
    out = itest_expect_eof(pfd, &pb);
    assert_string_equal(out, "/dev/pts/1\r\n12 34\r\n");
    free(out);
    itest_tbuf_free(&pb);
    close(pfd);
    int code = -1;
    assert_int_equal(uvm_process_wait(p, &code), 0);
    assert_int_equal(code, 0);
    uvm_process_close(p);

    itest_type(fd, "exit 7\n");
    free(itest_expect_eof(fd, &b));
    itest_tbuf_free(&b);
    close(fd);
    assert_int_equal(uvm_container_wait(c, &code), 0);
    assert_int_equal(code, 7);
    uvm_process_close(init);
    assert_int_equal(uvm_container_delete(c), 0);
    uvm_container_close(c);
}

/* After deletes: no bundle, cgroup, crun state, mount or process of any container. */
static void
test_delete_leaves_nothing(void **state)
{
    const char *sleep[] = {"sleep", "1000", NULL};
    struct uvm_container *c = NULL;
    assert_int_equal(create("left", spec_for(sleep), false, &c), 0);
    struct uvm_process *init = NULL;
    assert_int_equal(uvm_container_start(c, &init), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "[ -d /proc/%d ] && echo 1 || echo 0", uvm_process_pid(init));
    assert_int_equal(itest_guest_count(vm, cmd), 1);
    assert_int_equal(uvm_container_delete(c), 0);
    uvm_container_close(c);
    int code = -1;
    assert_int_equal(uvm_process_wait(init, &code), 0);
    assert_int_equal(code, 137);
    uvm_process_close(init);
    assert_int_equal(itest_guest_count(vm, cmd), 0);
    /* bundles, crun's state, cgroups, mounts, processes */
    char *out = itest_guest(vm, "echo $(ls -A /run/gcs/c | wc -l) $(ls -A /run/crun | wc -l) "
                                "$(find /sys/fs/cgroup/c -mindepth 1 -type d | wc -l) "
                                "$(grep -c -e /run/gcs/c -e /run/crun /proc/mounts) "
                                "$(ps -o comm | grep -c sleep)");
    assert_string_equal(out, "0 0 0 0 0\n");
    free(out);
}

/* A create the host stops waiting for (a VM whose container_ms is 1 ms, far below what crun
 * create takes): the library sends the delete at once; the agent holds it while crun create
 * runs and deletes the container when create ends, so nothing is left in the guest. */
static void
test_create_given_up(void **state)
{
    struct uvm_options o = {.id = "itest-ctr-given-up",
                            .memory_mb = 512,
                            .has_preferred_rootfs_type = true,
                            .preferred_rootfs_type = UVM_ROOTFS_VHD,
                            .timeouts = {.container_ms = 1}};
    struct uvm *v = NULL;
    if (uvm_create(&o, &v) < 0 || itest_start(v) < 0)
        fail_msg("boot: %s", uvm_last_error());
    char rootfs[128];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
    struct uvm_vsmb_options so = {.read_only = true};
    char *guest = NULL;
    if (uvm_add_vsmb(v, rootfs, NULL, &so) < 0 || uvm_get_vsmb_uvm_path(v, rootfs, &guest) < 0)
        fail_msg("share the rootfs: %s", uvm_last_error());
    const char *sleep[] = {"sleep", "1000", NULL};
    json_t *spec = spec_for(sleep);
    json_object_set_new(json_object_get(spec, "root"), "path", json_string(guest));
    free(guest);
    char *text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    struct uvm_container_config cfg = {.id = "given-up", .spec_json = text};
    struct uvm_container *c = NULL;
    int rc = uvm_create_container(v, &cfg, &c);
    free(text);
    assert_int_equal(rc, UVM_E_TIMEOUT);
    assert_non_null(strstr(uvm_last_error(), "container_ms"));
    assert_null(c);
    /* the guest ends with no container: no bundle, no crun state, no container list entry */
    char *out = NULL;
    for (int i = 0; i < 300; i++) {
        free(out);
        out = itest_guest(v, "echo $(ls -A /run/gcs/c | wc -l) $(ls -A /run/crun | wc -l) "
                             "$(ps -o comm | grep -c sleep)");
        if (!strcmp(out, "0 0 0\n"))
            break;
        usleep(200 * 1000);
    }
    assert_string_equal(out, "0 0 0\n");
    free(out);
    struct uvm_container_info *list = NULL;
    size_t n = 99;
    assert_int_equal(uvm_list_containers(v, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
    uvm_close(v);
}

/* The host's busybox rootfs (busybox-static's /bin/busybox and its applet links) and
 * `crun spec`'s default spec. */
static void
make_rootfs(void)
{
    snprintf(dir, sizeof(dir), "/tmp/uvm-itest-ctr.XXXXXX");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp: %s", strerror(errno));
    itest_sh("cd %s && mkdir -p rootfs/bin rootfs/proc rootfs/dev rootfs/sys rootfs/tmp "
             "rootfs/etc rootfs/root rootfs/mnt && cp /bin/busybox rootfs/bin/ && "
             "for a in $(rootfs/bin/busybox --list); do [ $a = busybox ] || "
             "ln -s busybox rootfs/bin/$a; done && chmod 1777 rootfs/tmp && "
             "echo 'root:x:0:0:root:/root:/bin/sh' > rootfs/etc/passwd && crun spec",
             dir);
    char path[128];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    default_spec = json_load_file(path, 0, NULL);
    if (!default_spec)
        fail_msg("crun spec: no %s", path);
}

static int
setup(void **state)
{
    make_rootfs();
    struct uvm_options o = {.id = "itest-containers",
                            .memory_mb = 512,
                            .has_preferred_rootfs_type = true,
                            .preferred_rootfs_type = UVM_ROOTFS_VHD};
    if (uvm_create(&o, &vm) < 0 || itest_start(vm) < 0)
        fail_msg("boot: %s", uvm_last_error());
    char rootfs[128];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
    struct uvm_vsmb_options so = {.read_only = true};
    char *guest = NULL;
    if (uvm_add_vsmb(vm, rootfs, NULL, &so) < 0 || uvm_get_vsmb_uvm_path(vm, rootfs, &guest) < 0)
        fail_msg("share the rootfs: %s", uvm_last_error());
    snprintf(rootfs_guest, sizeof(rootfs_guest), "%s", guest);
    free(guest);
    return 0;
}

static int
teardown(void **state)
{
    uvm_close(vm);
    json_decref(default_spec);
    itest_rm_rf(dir);
    return 0;
}

int
main(void)
{
    itest_init();
    if (system("command -v crun && command -v mkfs.erofs && command -v ip && "
               "command -v socat") != 0) {
        printf("SKIP: crun (for `crun spec`), erofs-utils, iproute2 and socat are needed\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_exit_codes),
        cmocka_unit_test(test_sigkill),
        cmocka_unit_test(test_pid_namespace_and_exec),
        cmocka_unit_test(test_address_randomization),
        cmocka_unit_test(test_spec_fields),
        cmocka_unit_test(test_resources),
        cmocka_unit_test(test_missing_executable),
        cmocka_unit_test(test_two_isolated),
        cmocka_unit_test(test_bind_mount),
        cmocka_unit_test(test_no_pid_namespace),
        cmocka_unit_test(test_combined_layers),
        cmocka_unit_test_teardown(test_netns, netns_teardown),
        cmocka_unit_test(test_terminal),
        cmocka_unit_test(test_delete_leaves_nothing),
        cmocka_unit_test(test_create_given_up),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return itest_finish(failed);
}

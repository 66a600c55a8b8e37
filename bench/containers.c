/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/containers: what a container costs over a bare process, in one running VM (booted from
 * rootfs.vhd, which has crun). Interleaved, RUNS times each:
 *   exec       uvm_exec of `true` + uvm_process_wait (its output delivered)
 *   crun       uvm_exec of `/usr/bin/crun --version` (a dynamically linked start, with address
 *              randomization as every uvm_exec; the agent's own crun calls run without it)
 *   container  uvm_create_container + uvm_container_start + uvm_container_wait of `true`, in
 *              a busybox root file system shared read-only with cached I/O (virtio-fs
 *              cache=always; CACHEIO=0 in the environment: cache=auto) with `crun spec`'s
 *              default spec (pid, mount, ipc, uts and network namespaces, its mounts)
 * then, per container, uvm_container_delete (timed apart: not on the path to the exit).
 * Prints median and p95 of each, their ratio and difference, and the container's steps. The
 * target (issue 12): the container adds <= 60 ms under TCG. Asserts nothing about time.
 *
 * Usage: bench-containers [RUNS]    (needs crun on the host for `crun spec`)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "stats.h"
#include "uvm.h"

#define MAXRUNS 200

static char dir[64];

static int
sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "bench-containers: failed: %s\n", cmd);
    return rc;
}

/* busybox-static in DIR/rootfs, `crun spec` in DIR; the spec's text with args = true. */
static char *
make_bundle(void)
{
    snprintf(dir, sizeof(dir), "/tmp/uvm-bench-ctr.XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "cd %s && mkdir -p rootfs/bin rootfs/proc rootfs/dev rootfs/sys rootfs/tmp && "
             "cp /bin/busybox rootfs/bin/ && for a in $(rootfs/bin/busybox --list); do "
             "[ $a = busybox ] || ln -s busybox rootfs/bin/$a; done && crun spec",
             dir);
    if (sh(cmd) != 0)
        return NULL;
    char path[128];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    json_t *spec = json_load_file(path, 0, NULL);
    if (!spec)
        return NULL;
    json_t *process = json_object_get(spec, "process");
    json_object_set_new(process, "args", json_pack("[s]", "true"));
    json_object_set_new(process, "terminal", json_false());
    char *text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    return text;
}

/* uvm_exec of argv (`true`, or crun --version: the floor of a dynamically linked start). */
static int
exec_argv(struct uvm *vm, const char *const *argv, double *ms)
{
    struct uvm_process_config cfg = {.argv = argv, .create_stdout = true, .create_stderr = true};
    struct uvm_process *p = NULL;
    double t0 = now_ms();
    int code = -1;
    int rc = uvm_exec(vm, &cfg, &p);
    if (rc == 0)
        rc = uvm_process_wait(p, &code);
    *ms = now_ms() - t0;
    uvm_process_close(p);
    return rc < 0 || code != 0 ? -1 : 0;
}

struct ctr_times {
    double create, start, wait, total, del;
};

static int
container_true(struct uvm *vm, const char *spec, const char *root, struct ctr_times *t)
{
    struct uvm_container_config cfg = {
        .spec_json = spec, .root_path = root, .create_stdout = true, .create_stderr = true};
    struct uvm_container *c = NULL;
    int code = -1;
    double t0 = now_ms();
    int rc = uvm_create_container(vm, &cfg, &c);
    double t1 = now_ms();
    if (rc == 0)
        rc = uvm_container_start(c, NULL);
    double t2 = now_ms();
    if (rc == 0)
        rc = uvm_container_wait(c, &code);
    double t3 = now_ms();
    if (rc == 0)
        rc = uvm_container_delete(c);
    double t4 = now_ms();
    if (rc < 0)
        fprintf(stderr, "bench-containers: %s\n", uvm_last_error());
    uvm_container_close(c);
    *t = (struct ctr_times){t1 - t0, t2 - t1, t3 - t2, t3 - t0, t4 - t3};
    return rc < 0 || code != 0 ? -1 : 0;
}

static void
report(const char *what, double *v, int n)
{
    double med = median(v, n);
    printf("  %-34s median %8.1f ms   p95 %8.1f ms\n", what, med, percentile(v, n, 0.95));
}

static const char *const true_argv[] = {"true", NULL};
static const char *const crun_argv[] = {"/usr/bin/crun", "--version", NULL};

static int
measure(struct uvm *vm, const char *spec, const char *root, int runs)
{
    static double ex[MAXRUNS], cv[MAXRUNS], tot[MAXRUNS], cr[MAXRUNS], st[MAXRUNS], wt[MAXRUNS],
        de[MAXRUNS];
    struct ctr_times t;
    /* one of each first, not counted: page cache, crun's first start */
    if (exec_argv(vm, true_argv, &ex[0]) < 0 || exec_argv(vm, crun_argv, &cv[0]) < 0 ||
        container_true(vm, spec, root, &t) < 0)
        return -1;
    for (int i = 0; i < runs; i++) {
        if (exec_argv(vm, true_argv, &ex[i]) < 0 || exec_argv(vm, crun_argv, &cv[i]) < 0 ||
            container_true(vm, spec, root, &t) < 0)
            return -1;
        tot[i] = t.total;
        cr[i] = t.create;
        st[i] = t.start;
        wt[i] = t.wait;
        de[i] = t.del;
    }
    printf("bench-containers: `true`, %d interleaved runs each, one VM\n", runs);
    report("exec (uvm_exec + wait)", ex, runs);
    report("exec of crun --version (randomized)", cv, runs);
    report("container (create + start + exit)", tot, runs);
    report("  create (crun create)", cr, runs);
    report("  start (the agent opens exec.fifo)", st, runs);
    report("  wait (to the exit)", wt, runs);
    report("delete (crun delete, apart)", de, runs);
    double me = median(ex, runs), mc = median(tot, runs);
    printf("  ratio container/exec %.2f, the container adds %.1f ms (target <= 60 ms)\n", mc / me,
           mc - me);
    return 0;
}

int
main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 20;
    if (runs < 1 || runs > MAXRUNS) {
        fprintf(stderr, "usage: bench-containers [RUNS (1..%d)]\n", MAXRUNS);
        return 2;
    }
    if (system("command -v crun >/dev/null") != 0) {
        printf("SKIP: crun (for `crun spec`) is needed on the host\n");
        return 77;
    }
    char *spec = make_bundle();
    if (!spec)
        return 1;
    struct uvm_options o = {.id = "bench-containers",
                            .has_preferred_rootfs_type = true,
                            .preferred_rootfs_type = UVM_ROOTFS_VHD};
    struct uvm *vm = NULL;
    char rootfs[128], *root = NULL;
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
    /* read-only with cached I/O, as hcsshim's DefaultVSMBOptions(readOnly) shares an image root:
     * otherwise virtio-fs drops the page cache at each open and every exec reads the binary
     * again (docs/performance.md); CACHEIO=0 measures that */
    const char *cio = getenv("CACHEIO");
    struct uvm_vsmb_options so = {.read_only = true, .cache_io = !cio || strcmp(cio, "0") != 0};
    int rc = uvm_create(&o, &vm);
    if (rc == 0)
        rc = uvm_start(vm);
    if (rc == 0)
        rc = uvm_add_vsmb(vm, rootfs, NULL, &so);
    if (rc == 0)
        rc = uvm_get_vsmb_uvm_path(vm, rootfs, &root);
    if (rc < 0)
        fprintf(stderr, "bench-containers: %s\n", uvm_last_error());
    else
        rc = measure(vm, spec, root, runs);
    uvm_close(vm);
    free(root);
    free(spec);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    sh(cmd);
    return rc < 0 ? 1 : 0;
}

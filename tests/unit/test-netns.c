/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Network namespaces (netns.c) against the scripted fake QMP peer, the fake guest agent and a
 * fake `ip` put first in PATH (no real host networking is touched): the exact QMP stream, guest
 * requests and host commands of each operation, rollback, refcounts, validation.
 *
 * The three channels are merged into one trace file, in the order things happened (each step
 * waits for the one before): the fake ip appends "ip <args>", the fake QMP peer's hook
 * "qmp <command> <id or fdname>[ <tap>]" (the tap whose fd came with the command: tap_open is
 * replaced by a fake whose fds name their tap), the fake guest's hook
 * "guest <ResourceType> <RequestType> <ID|IfName>".
 * The exact arguments are then pinned per channel (fixture_finish for QMP, check_*_request for
 * the guest). Tap names are random: expected texts write the k-th tap created in the test as
 * "{k}" (in a QMP script step it matches any string; afterwards it is the name the fake ip saw),
 * the host namespace of the host_netns tests as "{n}" and a generated MAC as "{m}".
 *
 * The tap records (<rundir>/tap-<name>, holding the tap's host namespace) are a fourth channel:
 * before each step is traced (and when the trace is read) the set of records is compared with
 * the last one seen, and a change is traced as "rec {0}= {1}={n}" (tap=content, in tap order)
 * or "rec (none)". A "rec" line thus sits between the step that wrote or removed a record and
 * the next one. The VM's runtime directory is <dir>/run/unit (UVM_RUNTIME_DIR=<dir>/run, id
 * "unit"), so rundir.c's real cleanup (a sweep, a claim, a release) can be run on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <net/if.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "argv.h"
#include "cleanup.h"
#include "error.h"
#include "fixture.h"
#include "fake-qmp.h"
#include "hostcmd.h"
#include "topology.h" /* HOTSLOT_MAX */
#include "rundir.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TRACE_MAX 160 /* lines between two checks */
#define STEPS_MAX 128 /* QMP steps of a test */

/* The root port of NIC slot 0 with scsi_count 1 and an initrd, the configuration most tests
 * use (rp3: rp0 agent, rp1 SCSI, rp2 the 9p export). Only test_spare_port_numbers pins the
 * layout in numbers. */
#define SPARE0 argv_first_spare_port(1, false)

/* rc of a call, or a failure naming the call and the library's message. */
#define ASSERT_RC(call, want)                                                                      \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            fail_msg("%s: %d (%s), expected %d", #call, rc_, uvm_last_error(), (int)(want));       \
    } while (0)

#define MAC0 "52:54:00:aa:00:01"
#define MAC1 "52:54:00:aa:00:02"
#define MAC2 "52:54:00:aa:00:03"
#define MAC3 "52:54:00:aa:00:04"
#define MAC4 "52:54:00:aa:00:05"

static const struct uvm_endpoint EP0 = {
    .id = "ep0-guid",
    .name = "ep0",
    .mac_address = MAC0,
    .ip_address = "10.1.0.2",
    .prefix_length = 24,
    .gateway_address = "10.1.0.1",
    .dns_servers = "10.1.0.53,8.8.8.8",
};
static const struct uvm_endpoint EP1 = {
    .id = "ep1-guid",
    .mac_address = MAC1,
    .ip_address = "fd00::2",
    .prefix_length = 64,
    .gateway_address = "fd00::1",
};
static const struct uvm_endpoint EP2 = {.id = "ep2", .mac_address = MAC2};
static const struct uvm_endpoint EP3 = {.id = "ep3", .mac_address = MAC3};
static const struct uvm_endpoint EP4 = {.id = "ep4", .mac_address = MAC4};

static char dir[64];         /* the fake ip, its trace, its failure pattern */
static char ip_path[128];    /* the fake ip */
static char trace_path[128]; /* one line per step, all channels */
static char fail_path[128];  /* a sh `case` pattern: ip invocations ("$*") matching it fail */
static char act_path[128];   /* a sh `case` pattern, then a command the fake ip evals on a match */
static char last_path[128];  /* the tap records as last traced */
static char rd_base[128];    /* UVM_RUNTIME_DIR of the tests */
static char rd_path[160];    /* the VM's runtime directory: <rd_base>/unit */
static char *saved_path;     /* PATH before the tests */
static char host_ns[32];     /* the host namespace of the host_netns tests */
static char ns_file[64];     /* /run/netns/<host_ns>, made by those tests only, or "" */
static char taps[16][IFNAMSIZ]; /* the taps created so far in this test, in order */
static size_t ntaps;
static char gen_mac[18];        /* "{m}": a generated MAC, "" until known */

/* ---- the trace ---------------------------------------------------------------------------- */

static void
trace_add(const char *line)
{
    FILE *fp = fopen(trace_path, "a");
    assert_non_null(fp);
    fprintf(fp, "%s\n", line);
    fclose(fp);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The tap records now, as the fake ip writes them: " <tap>=<content>" for each tap-<tap> of the
 * runtime directory in byte order ("<dir>" for a directory), or " (none)". Owned. */
static char *
records_state(void)
{
    char *names[64];
    size_t n = 0;
    DIR *d = opendir(rd_path);
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, RUNDIR_TAP_PREFIX, strlen(RUNDIR_TAP_PREFIX))) {
            assert_true(n < ARRAY_SIZE(names));
            names[n++] = xstrdup(e->d_name);
        }
    if (d)
        closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    size_t cap = 16 + n * 128, len = 0;
    char *out = xmalloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *path = xasprintf("%s/%s", rd_path, names[i]);
        char content[80] = "";
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            strcpy(content, "<dir>");
        } else {
            FILE *fp = fopen(path, "r");
            if (fp) {
                size_t got = fread(content, 1, sizeof(content) - 1, fp);
                content[got] = '\0';
                content[strcspn(content, "\n")] = '\0';
                fclose(fp);
            }
        }
        len += (size_t)snprintf(out + len, cap - len, " %s=%s",
                                names[i] + strlen(RUNDIR_TAP_PREFIX), content);
        assert_true(len < cap);
        free(names[i]);
    }
    if (!n)
        strcpy(out, " (none)");
    return out;
}

/* Trace "rec<state>" when the tap records changed since they were last traced. */
static void
trace_records(void)
{
    cleanup_free char *now = records_state();
    char last[4096] = "";
    FILE *fp = fopen(last_path, "r");
    if (fp) {
        size_t got = fread(last, 1, sizeof(last) - 1, fp);
        last[got] = '\0';
        fclose(fp);
    }
    if (!strcmp(now, last))
        return;
    cleanup_free char *line = xasprintf("rec%s", now);
    trace_add(line);
    fp = fopen(last_path, "w");
    assert_non_null(fp);
    fputs(now, fp);
    fclose(fp);
}

/* The tap behind the fd that came with the command being traced ("" when none): the fake
 * tap_open's fds hold the tap's name. Written and read on the fake QMP peer's thread. */
static char passed_tap[IFNAMSIZ + 8];

static void
trace_fd(void *opaque, const char *command, int fd)
{
    (void)opaque;
    (void)command;
    ssize_t n = pread(fd, passed_tap, sizeof(passed_tap) - 1, 0);
    passed_tap[n > 0 ? n : 0] = '\0';
}

/* "qmp <command> <id or fdname>[ <tap passed>]" */
static void
trace_qmp(void *opaque, const char *command)
{
    (void)opaque;
    cleanup_json json_t *j = json_loads(command, 0, NULL);
    json_t *args = json_object_get(j, "arguments");
    const char *id = json_string_value(json_object_get(args, "id"));
    if (!id)
        id = json_string_value(json_object_get(args, "fdname"));
    cleanup_free char *line =
        xasprintf("qmp %s %s%s%s", json_string_value(json_object_get(j, "execute")),
                  id ? id : "-", *passed_tap ? " " : "", passed_tap);
    passed_tap[0] = '\0';
    trace_records();
    trace_add(line);
}

static void
trace_guest(void *opaque, const json_t *request)
{
    (void)opaque;
    const char *res = json_string_value(json_object_get(request, "ResourceType"));
    json_t *settings = json_object_get(request, "Settings");
    const char *name = json_string_value(json_object_get(settings, "IfName"));
    if (!name)
        name = json_string_value(json_object_get(settings, "ID"));
    cleanup_free char *line =
        xasprintf("guest %s %s %s", res ? res : "-",
                  json_string_value(json_object_get(request, "RequestType")), name ? name : "-");
    trace_records();
    trace_add(line);
}

/* text with "{k}" (a digit) replaced by the k-th tap, "{n}" by host_ns and "{m}" by gen_mac;
 * with `wild`, or while one is not known yet, by FAKE_QMP_ANY. Owned. */
static char *
subst(const char *text, bool wild)
{
    size_t cap = strlen(text) * 6 + 64, n = 0;
    char *out = xmalloc(cap);
    for (const char *p = text; *p;) {
        const char *val = NULL;
        if (p[0] == '{' && p[1] && p[2] == '}') {
            if (p[1] >= '0' && p[1] <= '9')
                val = (size_t)(p[1] - '0') < ntaps ? taps[p[1] - '0'] : "";
            else if (p[1] == 'n')
                val = host_ns;
            else if (p[1] == 'm')
                val = gen_mac;
        }
        if (!val) {
            out[n++] = *p++;
            continue;
        }
        if (wild || !*val)
            val = FAKE_QMP_ANY;
        assert_true(n + strlen(val) < cap);
        memcpy(out + n, val, strlen(val));
        n += strlen(val);
        p += 3;
    }
    out[n] = '\0';
    return out;
}

/* tap_open (tap.c) replaced at link time (-Wl,--wrap=tap_open, tests/unit/meson.build): no
 * real tap is touched. The fd is a memfd "fake-tap" holding the tap's name, which trace_fd
 * reads back when the fake QMP peer gets it. With tap_busy set, every tap is busy. */
static bool tap_busy;
int __wrap_tap_open(const char *name);

int
__wrap_tap_open(const char *name)
{
    if (tap_busy)
        return uvm_error_errno(-EBUSY, "tap %s: cannot attach to it (TUNSETIFF)", name);
    int fd = memfd_create("fake-tap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, name, strlen(name)), (ssize_t)strlen(name));
    return fd;
}

/* No fake tap fd is left open in this process: the library closes its own once QEMU has a
 * copy (or the hand-over failed), and the fake QMP peer closes the copies it gets. */
static void
check_no_tap_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        char path[64], target[128];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        if (strstr(target, "memfd:fake-tap"))
            fail_msg("fd %s is a tap still open (%s)", e->d_name, target);
    }
    closedir(d);
}

/* Index of a tap in taps[], or ARRAY_SIZE(taps) for one not created in this test. */
static size_t
tap_index(const char *tap)
{
    for (size_t i = 0; i < ntaps; i++)
        if (!strcmp(taps[i], tap))
            return i;
    return ARRAY_SIZE(taps);
}

static int
cmp_record(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    char tx[64], ty[64];
    snprintf(tx, sizeof(tx), "%.*s", (int)strcspn(x, "="), x);
    snprintf(ty, sizeof(ty), "%.*s", (int)strcspn(y, "="), y);
    size_t ix = tap_index(tx), iy = tap_index(ty);
    return ix != iy ? (ix < iy ? -1 : 1) : strcmp(x, y);
}

/* A "rec" line with its records in tap order ({0} first), as expected texts write them. */
static void
records_in_tap_order(char *line)
{
    char *rec[64];
    size_t n = 0;
    cleanup_free char *copy = xstrdup(line + strlen("rec "));
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        assert_true(n < ARRAY_SIZE(rec));
        rec[n++] = t;
    }
    qsort(rec, n, sizeof(*rec), cmp_record);
    size_t len = strlen("rec");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(line + len, " %s", rec[i]); /* same length as before */
}

/* The trace since the last call (lines owned; the file is emptied), a change of the records
 * since the last step included; the taps it shows created are numbered. */
static size_t
trace_take(char *lines[TRACE_MAX])
{
    size_t got = 0;
    trace_records();
    FILE *fp = fopen(trace_path, "r");
    assert_non_null(fp);
    char buf[2048];
    while (fgets(buf, sizeof(buf), fp)) {
        buf[strcspn(buf, "\n")] = '\0';
        assert_true(got < TRACE_MAX);
        if (!strncmp(buf, "rec ", 4) && strcmp(buf, "rec (none)"))
            records_in_tap_order(buf);
        lines[got++] = xstrdup(buf);
        char tap[64];
        if (sscanf(buf, "ip tuntap add dev %63s mode tap", tap) == 1) {
            assert_true(ntaps < ARRAY_SIZE(taps));
            assert_true(strlen(tap) < IFNAMSIZ);
            strcpy(taps[ntaps++], tap);
        }
    }
    fclose(fp);
    fp = fopen(trace_path, "w");
    fclose(fp);
    return got;
}

/* Forget the trace so far (its taps are numbered). */
static void
trace_drop(void)
{
    char *lines[TRACE_MAX];
    for (size_t i = 0, n = trace_take(lines); i < n; i++)
        free(lines[i]);
}

/* The trace since the last call must be exactly `want` (with "{k}" / "{n}" / "{m}"
 * substituted, the taps the trace shows created numbered first), in this order or, with
 * any_order, in some order. The trace is emptied. */
static void
check_trace_as(const char *const *want, size_t n, bool any_order)
{
    char *lines[TRACE_MAX];
    size_t got = trace_take(lines);
    bool same = got == n;
    char *w[TRACE_MAX];
    assert_true(n <= TRACE_MAX);
    for (size_t i = 0; i < n; i++)
        w[i] = subst(want[i], false);
    if (any_order) {
        qsort(w, n, sizeof(*w), cmp_str);
        qsort(lines, got, sizeof(*lines), cmp_str);
    }
    for (size_t i = 0; i < n && i < got; i++)
        if (strcmp(w[i], lines[i]))
            same = false;
    if (!same) {
        char msg[8192];
        size_t len = (size_t)snprintf(msg, sizeof(msg), "trace mismatch\n  expected:\n");
        for (size_t i = 0; i < n && len < sizeof(msg); i++)
            len += (size_t)snprintf(msg + len, sizeof(msg) - len, "    %s\n", w[i]);
        if (len < sizeof(msg))
            len += (size_t)snprintf(msg + len, sizeof(msg) - len, "  got:\n");
        for (size_t i = 0; i < got && len < sizeof(msg); i++)
            len += (size_t)snprintf(msg + len, sizeof(msg) - len, "    %s\n", lines[i]);
        fail_msg("%s", msg);
    }
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    for (size_t i = 0; i < got; i++)
        free(lines[i]);
}

#define TRACE(...)                                                                                 \
    check_trace_as((const char *const[]){__VA_ARGS__},                                             \
                   sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *), false)
/* The same lines in any order (rundir.c deletes the recorded taps in readdir order). */
#define TRACE_SET(...)                                                                             \
    check_trace_as((const char *const[]){__VA_ARGS__},                                             \
                   sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *), true)
#define TRACE_NONE() check_trace_as(NULL, 0, false)

/* ip invocations matching the sh pattern (e.g. "link set dev * netns *") first eval the sh
 * command (after logging; "$4" is the 4th argument); NULL: none do. */
static void
ip_act(const char *pattern, const char *command)
{
    if (!pattern) {
        unlink(act_path);
        return;
    }
    FILE *fp = fopen(act_path, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n%s\n", pattern, command);
    fclose(fp);
}

/* ip invocations matching the sh pattern (e.g. "tuntap add *") exit 1; NULL: none do. */
static void
ip_fail(const char *pattern)
{
    if (!pattern) {
        unlink(fail_path);
        return;
    }
    FILE *fp = fopen(fail_path, "w");
    assert_non_null(fp);
    cleanup_free char *p = subst(pattern, false);
    fprintf(fp, "%s\n", p);
    fclose(fp);
}

/* ---- the QMP script ----------------------------------------------------------------------- */

struct script {
    struct fake_qmp_step steps[STEPS_MAX];
    size_t n;
    char *cmds[STEPS_MAX]; /* the expected commands, with placeholders */
    size_t ncmds;
    char *owned[2 * STEPS_MAX];
    size_t nowned;
};

static const char *
own(struct script *s, char *text)
{
    assert_true(s->nowned < ARRAY_SIZE(s->owned));
    s->owned[s->nowned++] = text;
    return text;
}

static void
cmd(struct script *s, char *text, const char *reply)
{
    assert_true(s->n < ARRAY_SIZE(s->steps));
    s->cmds[s->ncmds++] = text;
    s->steps[s->n++] = (struct fake_qmp_step)FAKE_QMP_CMD(own(s, subst(text, true)), reply);
}

/* A command that carries an fd. */
static void
cmd_fd(struct script *s, char *text, const char *reply)
{
    cmd(s, text, reply);
    s->steps[s->n - 1].fd = true;
}

static void
event(struct script *s, char *text)
{
    assert_true(s->n < ARRAY_SIZE(s->steps));
    s->steps[s->n++] = (struct fake_qmp_step)FAKE_QMP_EVENT(own(s, text));
}

/* The tap, opened by the library, handed to QEMU as fd-net<p>. */
static char *
getfd(unsigned p)
{
    return xasprintf("{'execute':'getfd','arguments':{'fdname':'fd-net%u'}}", p);
}

static char *
closefd(unsigned p)
{
    return xasprintf("{'execute':'closefd','arguments':{'fdname':'fd-net%u'}}", p);
}

static char *
netdev_add(unsigned p)
{
    return xasprintf("{'execute':'netdev_add','arguments':{'type':'tap','id':'net%u',"
                     "'fd':'fd-net%u','vhost':false}}",
                     p, p);
}

static char *
device_add(unsigned p, const char *mac, unsigned rp)
{
    return xasprintf("{'execute':'device_add','arguments':{'driver':'virtio-net-pci',"
                     "'id':'nic%u','netdev':'net%u','mac':'%s','bus':'rp%u'}}",
                     p, p, mac, rp);
}

/* device_add of NIC p on the hot-plug pci-bridge, at addr (e.g. "0.0"). */
static char *
device_add_bridge(unsigned p, const char *mac, const char *addr)
{
    return xasprintf("{'execute':'device_add','arguments':{'driver':'virtio-net-pci',"
                     "'id':'nic%u','netdev':'net%u','mac':'%s','bus':'hpbr0','addr':'%s',"
                     "'disable-legacy':'on'}}",
                     p, p, mac, addr);
}

static char *
device_del(unsigned p)
{
    return xasprintf("{'execute':'device_del','arguments':{'id':'nic%u'}}", p);
}

static char *
netdev_del(unsigned p)
{
    return xasprintf("{'execute':'netdev_del','arguments':{'id':'net%u'}}", p);
}

/* getfd + netdev_add + device_add of NIC p (spare port p, root port rp), all accepted (the
 * trace shows which tap the fd was). */
static void
plug(struct script *s, unsigned p, const char *mac, unsigned rp)
{
    cmd_fd(s, getfd(p), FAKE_QMP_OK);
    cmd(s, netdev_add(p), FAKE_QMP_OK);
    cmd(s, device_add(p, mac, rp), FAKE_QMP_OK);
}

/* device_del + DEVICE_DELETED + netdev_del of NIC p. */
static void
unplug(struct script *s, unsigned p)
{
    cmd(s, device_del(p), FAKE_QMP_OK);
    event(s, xasprintf("{'event':'DEVICE_DELETED','data':{'device':'nic%u',"
                       "'path':'/machine/peripheral/nic%u'}}",
                       p, p));
    cmd(s, netdev_del(p), FAKE_QMP_OK);
}

/* getfd + netdev_add + device_add of NIC p on the hot-plug bridge at addr, all accepted. */
static void
plug_bridge(struct script *s, unsigned p, const char *mac, const char *addr)
{
    cmd_fd(s, getfd(p), FAKE_QMP_OK);
    cmd(s, netdev_add(p), FAKE_QMP_OK);
    cmd(s, device_add_bridge(p, mac, addr), FAKE_QMP_OK);
}

static void
script_free(struct script *s)
{
    for (size_t i = 0; i < s->ncmds; i++)
        free(s->cmds[i]);
    for (size_t i = 0; i < s->nowned; i++)
        free(s->owned[i]);
    s->n = s->ncmds = s->nowned = 0;
}

/* A VM whose runtime directory is rd_path unless cfg names another. */
static struct fixture *
start(struct script *s, const struct fixture_config *cfg)
{
    struct fixture_config c = *cfg;
    if (!c.rundir)
        c.rundir = rd_path;
    struct fixture *f = fixture_new(s->steps, s->n, &c);
    fake_qmp_set_hook(f->fq, trace_qmp, NULL);
    fake_qmp_set_fd_hook(f->fq, trace_fd, NULL);
    f->guest.on_request = trace_guest;
    return f;
}

/* The QMP stream was exactly the script's commands, with the real taps / MAC; frees all as at
 * close (netns_release_all: no tap is deleted there, their records stay for the runtime
 * directory's cleanup). */
static void
finish(struct fixture *f, struct script *s)
{
    char *want[STEPS_MAX];
    for (size_t i = 0; i < s->ncmds; i++)
        want[i] = subst(s->cmds[i], false);
    fixture_finish(f, (const char *const *)want, s->ncmds);
    for (size_t i = 0; i < s->ncmds; i++)
        free(want[i]);
    script_free(s);
}

#define CFG(...) (&(struct fixture_config){__VA_ARGS__})

/* ---- guest requests ----------------------------------------------------------------------- */

static void
check_request_json(struct fixture *f, size_t i, json_t *want)
{
    json_t *got = fixture_request(f, i);
    if (!got || !json_equal(got, want)) {
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("(none)");
        fail_msg("guest request %zu: expected %s, got %s", i, w, g);
    }
    json_decref(want);
}

static void
check_ns_request(struct fixture *f, size_t i, const char *type, const char *id)
{
    check_request_json(f, i,
                       json_pack("{s:s, s:s, s:{s:s}}", "ResourceType", "NetworkNamespace",
                                 "RequestType", type, "Settings", "ID", id));
}

/* The i-th request is a Network request for endpoint e as eth<k> of namespace ns. */
static void
check_nic_request(struct fixture *f, size_t i, const char *type, const char *ns,
                  const struct uvm_endpoint *e, const char *mac, unsigned k)
{
    char ifname[16];
    snprintf(ifname, sizeof(ifname), "eth%u", k);
    json_t *settings = json_pack("{s:s, s:s, s:s, s:s}", "NamespaceId", ns, "ID",
                                 e->id ? e->id : "", "MacAddress", mac, "IfName", ifname);
    if (e->ip_address) {
        json_object_set_new(settings, "IPAddress", json_string(e->ip_address));
        json_object_set_new(settings, "PrefixLength", json_integer(e->prefix_length));
    }
    if (e->gateway_address)
        json_object_set_new(settings, "GatewayAddress", json_string(e->gateway_address));
    if (e->dns_servers)
        json_object_set_new(settings, "DNSServerList", json_string(e->dns_servers));
    check_request_json(f, i,
                       json_pack("{s:s, s:s, s:o}", "ResourceType", "Network", "RequestType", type,
                                 "Settings", settings));
}

/* ---- the bookkeeping, seen through calls -------------------------------------------------- */

/* No namespace `id` is recorded: removing it is refused, and nothing is sent. */
static void
check_gone(struct fixture *f, const char *id)
{
    size_t requests = fixture_request_count(f);
    ASSERT_RC(uvm_remove_netns(f->vm, id), UVM_E_NOT_FOUND);
    assert_int_equal(fixture_request_count(f), requests);
}

/* Exactly `n` of the 4 hot-plug slots of a VM without the hot-plug bridge are free: five new
 * NICs (MACs no test uses) are refused with that count, before anything is sent. */
static void
check_free_slots(struct fixture *f, unsigned n)
{
    static const struct uvm_endpoint five[] = {
        {.mac_address = "52:54:00:cc:00:01"}, {.mac_address = "52:54:00:cc:00:02"},
        {.mac_address = "52:54:00:cc:00:03"}, {.mac_address = "52:54:00:cc:00:04"},
        {.mac_address = "52:54:00:cc:00:05"},
    };
    size_t requests = fixture_request_count(f);
    ASSERT_RC(uvm_add_netns(f->vm, "slots", five, 5), UVM_E_NO_AVAILABLE_LOCATION);
    char want[80];
    snprintf(want, sizeof(want), "only %u of the 4 hot-plug slots are free", n);
    if (!strstr(uvm_last_error(), want))
        fail_msg("'%s' does not say '%s'", uvm_last_error(), want);
    assert_int_equal(fixture_request_count(f), requests);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int reset(void **state);

static int
group_setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/uvm-netns-unit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(ip_path, sizeof(ip_path), "%s/ip", dir);
    snprintf(trace_path, sizeof(trace_path), "%s/trace", dir);
    snprintf(fail_path, sizeof(fail_path), "%s/fail", dir);
    snprintf(act_path, sizeof(act_path), "%s/act", dir);
    snprintf(last_path, sizeof(last_path), "%s/records", dir);
    snprintf(rd_base, sizeof(rd_base), "%s/run", dir);
    snprintf(rd_path, sizeof(rd_path), "%s/unit", rd_base);
    assert_int_equal(setenv("UVM_RUNTIME_DIR", rd_base, 1), 0);
    FILE *fp = fopen(ip_path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "#!/bin/sh\n"
            "# test-netns: a fake ip(8) that only logs (the tap records first, when they\n"
            "# changed: see records_state), runs the action of what matches %s and fails\n"
            "# what matches %s\n"
            "LC_ALL=C\n"
            "export LC_ALL\n"
            "s=\n"
            "for f in '%s'/" RUNDIR_TAP_PREFIX "*; do\n"
            "    [ -e \"$f\" ] || continue\n"
            "    if [ -d \"$f\" ]; then c='<dir>'; else c=$(cat \"$f\"); fi\n"
            "    s=\"$s ${f##*/" RUNDIR_TAP_PREFIX "}=$c\"\n"
            "done\n"
            "[ -n \"$s\" ] || s=' (none)'\n",
            act_path, fail_path, rd_path);
    fprintf(fp,
            "if [ \"$s\" != \"$(cat '%s' 2>/dev/null)\" ]; then\n"
            "    printf 'rec%%s\\n' \"$s\" >>'%s'\n"
            "    printf '%%s' \"$s\" >'%s'\n"
            "fi\n"
            "printf 'ip %%s\\n' \"$*\" >>'%s'\n"
            "if [ -s '%s' ]; then\n"
            "    { read -r apat; read -r acmd; } <'%s'\n"
            "    case \"$*\" in\n"
            "    $apat) eval \"$acmd\" ;;\n"
            "    esac\n"
            "fi\n",
            last_path, trace_path, last_path, trace_path, act_path, act_path);
    fprintf(fp,
            "if [ -s '%s' ]; then\n"
            "    read -r pat <'%s'\n"
            "    case \"$*\" in\n"
            "    $pat) echo \"fake ip: refusing '$*'\" >&2; exit 1 ;;\n"
            "    esac\n"
            "fi\n"
            "exit 0\n",
            fail_path, fail_path);
    fclose(fp);
    assert_int_equal(chmod(ip_path, 0755), 0);
    const char *path = getenv("PATH");
    saved_path = xstrdup(path ? path : "/usr/bin:/bin");
    cleanup_free char *mine = xasprintf("%s:%s", dir, saved_path);
    assert_int_equal(setenv("PATH", mine, 1), 0);
    snprintf(host_ns, sizeof(host_ns), "uvm-unit-%ld", (long)getpid());
    reset(NULL);
    /* The library must find the fake: otherwise stop before any test runs the real ip. */
    assert_int_equal(hostcmd_run((const char *const[]){"ip", "probe", NULL}, 5000), 0);
    char line[64] = "";
    fp = fopen(trace_path, "r");
    assert_non_null(fp);
    if (!fgets(line, sizeof(line), fp))
        line[0] = '\0';
    fclose(fp);
    if (strcmp(line, "ip probe\n")) {
        fprintf(stderr, "the fake ip in %s is not the one found in PATH\n", dir);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (ns_file[0])
        unlink(ns_file);
    setenv("PATH", saved_path, 1);
    free(saved_path);
    char cmdline[128];
    snprintf(cmdline, sizeof(cmdline), "rm -rf '%s'", dir);
    return system(cmdline);
}

/* Before each test: an empty runtime directory <rd_base>/unit, no records traced, no trace. */
static int
reset(void **state)
{
    (void)state;
    char cmdline[400];
    snprintf(cmdline, sizeof(cmdline), "rm -rf '%s' && mkdir -p '%s'", rd_base, rd_path);
    assert_int_equal(system(cmdline), 0);
    FILE *fp = fopen(last_path, "w");
    assert_non_null(fp);
    fputs(" (none)", fp);
    fclose(fp);
    fp = fopen(trace_path, "w");
    assert_non_null(fp);
    fclose(fp);
    ip_fail(NULL);
    ip_act(NULL, NULL);
    ntaps = 0;
    gen_mac[0] = '\0';
    return 0;
}

/* rd_path as the fixture left it, marked as the runtime directory of a process that died (its
 * lock free): what the next create's sweep does with it (rundir_sweep -> rdclean_taps). */
static void
release_rundir(void)
{
    cleanup_free char *lock = xasprintf("%s/" RUNDIR_LOCK_NAME, rd_path);
    FILE *fp = fopen(lock, "w");
    assert_non_null(fp);
    fprintf(fp, RUNDIR_LOCK_MARK "%d\n", (int)getpid());
    fclose(fp);
    assert_int_equal(rundir_sweep(), 1);
    struct stat st;
    assert_int_equal(stat(rd_path, &st), -1);
}

/* /run/netns/<host_ns> for the host_netns tests (validation only stats it; the fake ip never
 * enters it). Skips the test when it cannot be made. */
static void
need_host_ns(void)
{
    if (ns_file[0])
        return;
    char path[64];
    snprintf(path, sizeof(path), "/run/netns/%s", host_ns);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) {
        print_message("skipped: cannot create %s: %s\n", path, strerror(errno));
        skip();
    }
    close(fd);
    strcpy(ns_file, path);
}

static void
check_tap_name(const char *tap)
{
    assert_int_equal(strlen(tap), 12);
    assert_memory_equal(tap, "uvmt", 4);
    assert_int_equal(strspn(tap + 4, "0123456789abcdef"), 8);
}

/* ---- adds ----------------------------------------------------------------------------------- */

static void
test_add_one_created_tap(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), 0);
    /* the tap is recorded (no host namespace: empty) as soon as it exists */
    TRACE("guest NetworkNamespace Add ns1",
          "ip tuntap add dev {0} mode tap",
          "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0",
          "qmp device_add nic0",
          "ip link set dev {0} up",
          "guest Network Add eth0");
    check_tap_name(taps[0]);
    check_no_tap_fd();
    assert_int_equal(fixture_request_count(f), 2);
    check_ns_request(f, 0, "Add", "ns1");
    check_nic_request(f, 1, "Add", "ns1", &EP0, MAC0, 0);
    /* ns1 is recorded and ready: another add takes a reference, a remove drops it, and neither
     * sends anything (that the first add gives one reference: test_refcount) */
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", NULL, 0), 0);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), 2);
    /* its one NIC holds one slot (port 0: nic0 above) */
    check_free_slots(f, 3);
    /* close deletes nothing (no ip at all) and leaves the record ... */
    finish(f, &s);
    TRACE_NONE();
    /* ... for the runtime directory's release, which deletes the tap (created by the library,
     * in no host namespace, recorded in rd_path) */
    release_rundir();
    TRACE("ip link del dev {0}", "rec (none)");
}

static void
test_generated_mac(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, "{m}", SPARE0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    const struct uvm_endpoint e = {.id = "gen"};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &e, 1), 0);
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} up",
          "guest Network Add eth0");
    const char *mac = json_string_value(
        json_object_get(json_object_get(fixture_request(f, 1), "Settings"), "MacAddress"));
    assert_non_null(mac);
    /* locally administered QEMU range, unicast */
    assert_int_equal(strlen(mac), 17);
    assert_memory_equal(mac, "52:54:00:", 9);
    for (int i = 9; i < 17; i++)
        assert_non_null(strchr(i % 3 == 2 ? ":" : "0123456789abcdef", mac[i]));
    strcpy(gen_mac, mac);
    check_nic_request(f, 1, "Add", "ns1", &e, gen_mac, 0);
    finish(f, &s); /* device_add carried the same MAC */
    TRACE_NONE();
}

static void
test_spare_port_numbers(void **state)
{
    (void)state;
    static const struct {
        unsigned scsi;
        enum uvm_rootfs_type rootfs;
        unsigned rp;
    } cases[] = {
        /* scsi_count, rootfs, root port of NIC slot 0 */
        {1, UVM_ROOTFS_INITRD, 3}, /* rp0 agent, rp1 SCSI, rp2 the 9p export */
        {1, UVM_ROOTFS_VHD, 4},    /* ... the VHD root's pmem before the 9p port */
        {0, UVM_ROOTFS_INITRD, 2},
        {0, UVM_ROOTFS_VHD, 3},
        {4, UVM_ROOTFS_INITRD, 6},
    };
    const struct uvm_endpoint e = {.mac_address = MAC0, .host_ifname = "lo"};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct script s = {0};
        plug(&s, 0, MAC0, cases[i].rp);
        plug(&s, 1, MAC1, cases[i].rp + 1);
        struct fixture *f =
            start(&s, CFG(.scsi_count = cases[i].scsi, .rootfs_type = cases[i].rootfs));
        const struct uvm_endpoint e1 = {.mac_address = MAC1, .host_ifname = "lo"};
        int rc1 = uvm_add_netns(f->vm, "ns1", &e, 1);
        int rc2 = uvm_add_netns(f->vm, "ns2", &e1, 1);
        finish(f, &s); /* a wrong bus fails here, with the command expected and the one sent */
        assert_int_equal(rc1, 0);
        assert_int_equal(rc2, 0);
        TRACE("guest NetworkNamespace Add ns1", "qmp getfd fd-net0 lo", "qmp netdev_add net0",
              "qmp device_add nic0",
              "guest Network Add eth0", "guest NetworkNamespace Add ns2", "qmp getfd fd-net1 lo",
              "qmp netdev_add net1",
              "qmp device_add nic1", "guest Network Add eth0");
    }
}

static void
test_host_ifname(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    plug(&s, 0, MAC0, SPARE0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    /* no id, no address: the guest gets the four mandatory settings only */
    const struct uvm_endpoint e = {.mac_address = MAC0, .host_ifname = "lo"};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &e, 1), 0);
    TRACE("guest NetworkNamespace Add ns1", "qmp getfd fd-net0 lo", "qmp netdev_add net0",
          "qmp device_add nic0",
          "guest Network Add eth0");
    check_nic_request(f, 1, "Add", "ns1", &e, MAC0, 0);
    /* the caller's tap is left alone on remove (no ip below) ... */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 4);
    check_nic_request(f, 2, "Remove", "ns1", &e, MAC0, 0);
    check_ns_request(f, 3, "Remove", "ns1");
    check_gone(f, "ns1");
    /* ... and at close; it is never recorded */
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &e, 1), 0);
    TRACE("guest NetworkNamespace Add ns1", "qmp getfd fd-net0 lo", "qmp netdev_add net0",
          "qmp device_add nic0",
          "guest Network Add eth0");
    finish(f, &s);
    TRACE_NONE();
    release_rundir();
    TRACE_NONE();
}

static void
test_host_netns(void **state)
{
    (void)state;
    need_host_ns();
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    plug(&s, 0, MAC0, SPARE0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    const struct uvm_endpoint e = {.id = "e", .mac_address = MAC0, .host_netns = host_ns};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &e, 1), 0);
    /* the tap is made (and recorded) here, opened by QEMU, then moved (the record says where
     * right after the move) and brought up in its namespace */
    TRACE("guest NetworkNamespace Add ns1",
          "ip tuntap add dev {0} mode tap",
          "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0",
          "qmp device_add nic0",
          "ip link set dev {0} netns {n}",
          "rec {0}={n}",
          "ip -n {n} link set dev {0} up",
          "guest Network Add eth0");
    /* the remove deletes the tap it created, in the namespace it moved it to */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip -n {n} link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns1");
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &e, 1), 0);
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {1} mode tap", "rec {1}=",
          "qmp getfd fd-net0 {1}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {1} netns {n}",
          "rec {1}={n}", "ip -n {n} link set dev {1} up", "guest Network Add eth0");
    assert_string_not_equal(taps[0], taps[1]);
    finish(f, &s);
    TRACE_NONE();
    /* the release deletes it in its namespace */
    release_rundir();
    TRACE("ip -n {n} link del dev {1}", "rec (none)");
}

static void
test_two_endpoints_and_remove(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    plug(&s, 1, MAC1, SPARE0 + 1);
    unplug(&s, 1);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    const struct uvm_endpoint eps[] = {EP0, EP1};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", eps, 2), 0);
    TRACE("guest NetworkNamespace Add ns1",
          "ip tuntap add dev {0} mode tap", "rec {0}=", "qmp getfd fd-net0 {0}",
          "qmp netdev_add net0",
          "qmp device_add nic0", "ip link set dev {0} up", "guest Network Add eth0",
          "ip tuntap add dev {1} mode tap", "rec {0}= {1}=", "qmp getfd fd-net1 {1}",
          "qmp netdev_add net1",
          "qmp device_add nic1", "ip link set dev {1} up", "guest Network Add eth1");
    assert_string_not_equal(taps[0], taps[1]);
    assert_int_equal(fixture_request_count(f), 3);
    check_ns_request(f, 0, "Add", "ns1");
    check_nic_request(f, 1, "Add", "ns1", &EP0, MAC0, 0);
    check_nic_request(f, 2, "Add", "ns1", &EP1, MAC1, 1);
    check_free_slots(f, 2);
    /* both NICs (nic0, nic1) go, last NIC first, each one guest -> QEMU -> tap (then its
     * record); then the namespace */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth1", "qmp device_del nic1", "qmp netdev_del net1",
          "ip link del dev {1}", "rec {0}=",
          "guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 6);
    check_nic_request(f, 3, "Remove", "ns1", &EP1, MAC1, 1);
    check_nic_request(f, 4, "Remove", "ns1", &EP0, MAC0, 0);
    check_ns_request(f, 5, "Remove", "ns1");
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_NOT_FOUND);
    assert_non_null(strstr(uvm_last_error(), "'ns1'"));
    check_free_slots(f, 4);
    finish(f, &s);
    TRACE_NONE();
}

static void
test_refcount(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), 0);
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} up",
          "guest Network Add eth0");
    /* a known id takes a reference; its endpoints are ignored (but still validated) */
    const struct uvm_endpoint other[] = {EP1, EP2};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", other, 2), 0);
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", NULL, 0), 0);
    const struct uvm_endpoint bad = {.mac_address = "01:00:5e:00:00:01"};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &bad, 1), UVM_E_INVALID_ARGUMENT);
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), 2);
    /* three references, one NIC (the other endpoints were not added): removes before the last
     * one only drop a reference, the third removes the one NIC */
    check_free_slots(f, 3);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), 2);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns1");
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_NOT_FOUND);
    finish(f, &s);
    TRACE_NONE();
}

static void
test_no_endpoints(void **state)
{
    (void)state;
    struct script s = {0};
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", NULL, 0), 0);
    TRACE("guest NetworkNamespace Add ns1");
    check_free_slots(f, 4);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 2);
    check_ns_request(f, 0, "Add", "ns1");
    check_ns_request(f, 1, "Remove", "ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

/* ---- add failures ------------------------------------------------------------------------- */

static void
test_rollback_device_add_second(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    cmd_fd(&s, getfd(1), FAKE_QMP_OK);
    cmd(&s, netdev_add(1), FAKE_QMP_OK);
    cmd(&s, device_add(1, MAC1, SPARE0 + 1),
        FAKE_QMP_ERROR("GenericError", "Bus \\'rp3\\' does not support hotplugging"));
    cmd(&s, netdev_del(1), FAKE_QMP_OK);
    unplug(&s, 0);
    /* the id is free again: a new add works, from port 0 */
    plug(&s, 0, MAC1, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    const struct uvm_endpoint eps[] = {EP0, EP1};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", eps, 2), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "add netns 'ns1'"));
    assert_non_null(strstr(uvm_last_error(), "does not support hotplugging"));
    TRACE("guest NetworkNamespace Add ns1",
          "ip tuntap add dev {0} mode tap", "rec {0}=", "qmp getfd fd-net0 {0}",
          "qmp netdev_add net0",
          "qmp device_add nic0", "ip link set dev {0} up", "guest Network Add eth0",
          "ip tuntap add dev {1} mode tap", "rec {0}= {1}=", "qmp getfd fd-net1 {1}",
          "qmp netdev_add net1",
          "qmp device_add nic1",
          /* undo the second NIC's steps ... */
          "qmp netdev_del net1", "ip link del dev {1}", "rec {0}=",
          /* ... then the first NIC, in reverse, then the namespace */
          "guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 4);
    check_ns_request(f, 0, "Add", "ns1");
    check_nic_request(f, 1, "Add", "ns1", &EP0, MAC0, 0);
    check_nic_request(f, 2, "Remove", "ns1", &EP0, MAC0, 0);
    check_ns_request(f, 3, "Remove", "ns1");
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_NOT_FOUND);
    check_free_slots(f, 4);
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP1, 1), 0);
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {2} mode tap", "rec {2}=",
          "qmp getfd fd-net0 {2}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {2} up",
          "guest Network Add eth0");
    check_nic_request(f, 5, "Add", "ns1", &EP1, MAC1, 0);
    /* one reference: one remove takes it all away */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {2}", "rec (none)", "guest NetworkNamespace Remove ns1");
    finish(f, &s);
    TRACE_NONE();
}

/* device_add fails and so does the rollback's netdev_del: the namespace's record is kept
 * (broken) with its port, but QEMU has no NIC with the MAC, so an add with that MAC (hcsshim
 * endpoints come with theirs) works at the next port; a plugged NIC's MAC stays taken. */
static void
test_mac_free_after_failed_rollback(void **state)
{
    (void)state;
    struct script s = {0};
    cmd_fd(&s, getfd(0), FAKE_QMP_OK);
    cmd(&s, netdev_add(0), FAKE_QMP_OK);
    cmd(&s, device_add(0, MAC0, SPARE0),
        FAKE_QMP_ERROR("GenericError", "Bus \\'rp3\\' does not support hotplugging"));
    cmd(&s, netdev_del(0), FAKE_QMP_ERROR("GenericError", "netdev_del refused"));
    plug(&s, 1, MAC0, SPARE0 + 1);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "does not support hotplugging"));
    check_free_slots(f, 3);
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", &EP0, 1), 0);
    check_free_slots(f, 2);
    ASSERT_RC(uvm_add_netns(f->vm, "ns3", &EP0, 1), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "is used by another NIC of this VM"));
    trace_drop();
    finish(f, &s);
    trace_drop();
}

/* What QEMU answers a device_add whose netdev is missing. */
#define NO_NETDEV_ERROR \
    FAKE_QMP_ERROR("GenericError", "Property \\'virtio-net-pci.netdev\\' can\\'t find value \\'net0\\'")

static void
test_netdev_add_fails(void **state)
{
    (void)state;
    struct script s = {0};
    cmd_fd(&s, getfd(0), FAKE_QMP_OK);
    cmd(&s, netdev_add(0), FAKE_QMP_ERROR("GenericError", "Duplicate ID \\'net0\\' for netdev"));
    /* netdev_add and device_add go out together (qmpc_plug): the device fails after it */
    cmd(&s, device_add(0, MAC0, SPARE0), NO_NETDEV_ERROR);
    /* a name netdev_add did not take is closed; one it took is not found, which is fine */
    cmd(&s, closefd(0), FAKE_QMP_OK);
    cmd_fd(&s, getfd(0), FAKE_QMP_OK);
    cmd(&s, netdev_add(0), FAKE_QMP_ERROR("GenericError", "vhost-net requested but could not be "
                                                          "initialized"));
    cmd(&s, device_add(0, MAC0, SPARE0), NO_NETDEV_ERROR);
    cmd(&s, closefd(0),
        FAKE_QMP_ERROR("GenericError", "File descriptor named \\'fd-net0\\' not found"));
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "Duplicate ID 'net0'"));
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "qmp closefd fd-net0", "ip link del dev {0}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    check_gone(f, "ns1");
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "vhost-net requested"));
    assert_null(strstr(uvm_last_error(), "not found"));
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {1} mode tap", "rec {1}=",
          "qmp getfd fd-net0 {1}", "qmp netdev_add net0", "qmp device_add nic0",
          "qmp closefd fd-net0", "ip link del dev {1}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    check_no_tap_fd();
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

/* The tap cannot be opened here (busy, not a tap): nothing reaches QEMU; the created tap is
 * deleted, the namespace removed. */
static void
test_tap_open_fails(void **state)
{
    (void)state;
    struct script s = {0};
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    tap_busy = true;
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), -EBUSY);
    tap_busy = false;
    assert_non_null(strstr(uvm_last_error(), "add netns 'ns1'"));
    assert_non_null(strstr(uvm_last_error(), "cannot attach to it (TUNSETIFF)"));
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "ip link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns1");
    check_gone(f, "ns1");
    check_free_slots(f, 4);
    finish(f, &s);
    TRACE_NONE();
}

/* QEMU refuses the fd: no netdev_add; our copy is closed, the created tap deleted. */
static void
test_getfd_fails(void **state)
{
    (void)state;
    struct script s = {0};
    cmd_fd(&s, getfd(0), FAKE_QMP_ERROR("GenericError", "No file descriptor supplied via "
                                                         "SCM_RIGHTS"));
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "getfd: No file descriptor supplied"));
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "ip link del dev {0}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    check_no_tap_fd();
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

static void
test_guest_network_add_fails(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    f->guest.fail_match = "Network/Add";
    f->guest.fail_next = 1;
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "add netns 'ns1'"));
    assert_non_null(strstr(uvm_last_error(), "mount failed"));
    /* the guest undoes its own half of a failed Add: no Network Remove; the host half goes */
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} up",
          "guest Network Add eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 3);
    check_nic_request(f, 1, "Add", "ns1", &EP0, MAC0, 0);
    check_ns_request(f, 2, "Remove", "ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

static void
test_guest_ns_add_fails(void **state)
{
    (void)state;
    struct script s = {0};
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    f->guest.fail_next = 1;
    const struct uvm_endpoint eps[] = {EP0, EP1};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", eps, 2), UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "add netns 'ns1'"));
    TRACE("guest NetworkNamespace Add ns1");
    assert_int_equal(fixture_request_count(f), 1);
    check_ns_request(f, 0, "Add", "ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

static void
test_tuntap_fails(void **state)
{
    (void)state;
    struct script s = {0};
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ip_fail("tuntap add *");
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "add netns 'ns1'"));
    assert_non_null(strstr(uvm_last_error(), "'ip' failed with exit status 1"));
    assert_non_null(strstr(uvm_last_error(), "fake ip: refusing 'tuntap add dev uvmt"));
    /* no QMP at all; the tap was not made, so it is neither recorded nor deleted */
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap",
          "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 2);
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

static void
test_link_up_fails(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ip_fail("link set dev * up");
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "refusing 'link set dev uvmt"));
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} up",
          "qmp device_del nic0", "qmp netdev_del net0", "ip link del dev {0}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 2);
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

static void
test_host_netns_failures(void **state)
{
    (void)state;
    need_host_ns();
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    const struct uvm_endpoint e = {.mac_address = MAC0, .host_netns = host_ns};
    /* the move fails: the tap is still ours, deleted here */
    ip_fail("link set dev * netns *");
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &e, 1), UVM_E_HYPERVISOR);
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} netns {n}",
          "qmp device_del nic0", "qmp netdev_del net0", "ip link del dev {0}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    /* up fails after the move: it is deleted in its namespace */
    ip_fail("-n * link set dev * up");
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &e, 1), UVM_E_HYPERVISOR);
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {1} mode tap", "rec {1}=",
          "qmp getfd fd-net0 {1}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {1} netns {n}",
          "rec {1}={n}", "ip -n {n} link set dev {1} up", "qmp device_del nic0",
          "qmp netdev_del net0", "ip -n {n} link del dev {1}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

/* The record cannot be written (here: the runtime directory is gone): the add fails right
 * after the tap is made, and the tap is deleted before any QMP. */
static void
test_tap_record_fails(void **state)
{
    (void)state;
    struct script s = {0};
    cleanup_free char *missing = xasprintf("%s/missing", dir);
    struct fixture *f = start(&s, CFG(.scsi_count = 1, .rundir = missing));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), -ENOENT);
    assert_non_null(strstr(uvm_last_error(), "add netns 'ns1'"));
    assert_non_null(strstr(uvm_last_error(), "record tap uvmt"));
    assert_non_null(strstr(uvm_last_error(), missing));
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap",
          "ip link del dev {0}", "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 2);
    check_gone(f, "ns1");
    check_free_slots(f, 4);
    finish(f, &s);
    TRACE_NONE();
}

/* The record cannot be rewritten after the move into the host namespace (here the fake ip
 * replaces it with a directory): the add fails and the tap is deleted where it now is. */
static void
test_tap_rerecord_fails(void **state)
{
    (void)state;
    need_host_ns();
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    cleanup_free char *sabotage =
        xasprintf("rm -f '%s/" RUNDIR_TAP_PREFIX "'\"$4\" && mkdir '%s/" RUNDIR_TAP_PREFIX "'\"$4\"",
                  rd_path, rd_path);
    ip_act("link set dev * netns *", sabotage);
    const struct uvm_endpoint e = {.mac_address = MAC0, .host_netns = host_ns};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &e, 1), -EISDIR);
    assert_non_null(strstr(uvm_last_error(), "record tap uvmt"));
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} netns {n}",
          "rec {0}=<dir>", "qmp device_del nic0", "qmp netdev_del net0",
          "ip -n {n} link del dev {0}", "guest NetworkNamespace Remove ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

/* ---- remove failures ---------------------------------------------------------------------- */

static void
test_remove_guest_fails_then_retry(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    plug(&s, 1, MAC1, SPARE0 + 1);
    unplug(&s, 1);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    const struct uvm_endpoint eps[] = {EP0, EP1};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", eps, 2), 0);
    TRACE("guest NetworkNamespace Add ns1",
          "ip tuntap add dev {0} mode tap", "rec {0}=", "qmp getfd fd-net0 {0}",
          "qmp netdev_add net0",
          "qmp device_add nic0", "ip link set dev {0} up", "guest Network Add eth0",
          "ip tuntap add dev {1} mode tap", "rec {0}= {1}=", "qmp getfd fd-net1 {1}",
          "qmp netdev_add net1",
          "qmp device_add nic1", "ip link set dev {1} up", "guest Network Add eth1");
    /* eth1 goes; the guest refuses to give eth0 back */
    f->guest.fail_match = "Network/Remove";
    f->guest.fail_skip = 1;
    f->guest.fail_next = 1;
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "remove netns 'ns1' (1 NIC(s) left)"));
    assert_non_null(strstr(uvm_last_error(), "mount failed"));
    TRACE("guest Network Remove eth1", "qmp device_del nic1", "qmp netdev_del net1",
          "ip link del dev {1}", "rec {0}=", "guest Network Remove eth0");
    /* still recorded with what is left (the retry below removes exactly eth0 on nic0 with tap
     * {0}, with one remove); port 1 is free again, port 0 is not */
    const struct uvm_endpoint four[] = {EP1, EP2, EP3, EP4};
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", four, 4), UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(strstr(uvm_last_error(), "only 3 of the 4"));
    TRACE_NONE();
    /* the retry sends exactly the remaining steps */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 7);
    check_nic_request(f, 3, "Remove", "ns1", &EP1, MAC1, 1);
    check_nic_request(f, 4, "Remove", "ns1", &EP0, MAC0, 0);
    check_nic_request(f, 5, "Remove", "ns1", &EP0, MAC0, 0);
    check_ns_request(f, 6, "Remove", "ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

static void
test_remove_ns_remove_fails_then_retry(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), 0);
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} up",
          "guest Network Add eth0");
    f->guest.fail_match = "NetworkNamespace/Remove";
    f->guest.fail_next = 1;
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_GUEST);
    assert_non_null(strstr(uvm_last_error(), "(0 NIC(s) left)"));
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns1");
    /* still recorded, with no NIC left: the retry sends only the namespace's Remove */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest NetworkNamespace Remove ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

/* A failure after the guest let the NIC go (here netdev_del) must not make the next try start
 * over: QEMU answers a second device_del of a device that is gone with DeviceNotFound, so the
 * id could never be removed. The retry sends only what is left (nic->device_gone). */
static void
test_remove_retry_after_netdev_del_failure(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    cmd(&s, device_del(0), FAKE_QMP_OK);
    event(&s, xstrdup("{'event':'DEVICE_DELETED','data':{'device':'nic0',"
                      "'path':'/machine/peripheral/nic0'}}"));
    cmd(&s, netdev_del(0), FAKE_QMP_ERROR("GenericError", "netdev busy"));
    cmd(&s, netdev_del(0), FAKE_QMP_OK);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), 0);
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} up",
          "guest Network Add eth0");
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "netdev busy"));
    /* the tap (and its record) stay while QEMU may hold it */
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0");
    check_free_slots(f, 3); /* the NIC keeps its slot until it is gone */
    int rc = uvm_remove_netns(f->vm, "ns1");
    if (rc != 0)
        fail_msg("the retry failed (%s): it should send only netdev_del net0, delete the tap and "
                 "remove the namespace; a real QEMU answers a second device_del nic0 with "
                 "DeviceNotFound, so this namespace could never be removed",
                 uvm_last_error());
    TRACE("qmp netdev_del net0", "ip link del dev {0}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    check_gone(f, "ns1");
    assert_int_equal(fixture_request_count(f), 4); /* one Network Remove */
    finish(f, &s);
    TRACE_NONE();
}

/* The guest gave the NIC back but device_del failed: the retry does not ask the guest again
 * (nic->guest_gone). */
static void
test_remove_retry_after_device_del_failure(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    cmd(&s, device_del(0), FAKE_QMP_ERROR("GenericError", "device busy"));
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), 0);
    trace_drop();
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "device busy"));
    assert_non_null(strstr(uvm_last_error(), "(1 NIC(s) left)"));
    TRACE("guest Network Remove eth0", "qmp device_del nic0");
    check_free_slots(f, 3); /* the NIC keeps its slot until it is gone */
    /* the guest is not asked again, device_del is sent again */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("qmp device_del nic0", "qmp netdev_del net0", "ip link del dev {0}", "rec (none)",
          "guest NetworkNamespace Remove ns1");
    assert_int_equal(fixture_request_count(f), 4); /* one Network Remove */
    check_nic_request(f, 2, "Remove", "ns1", &EP0, MAC0, 0);
    check_ns_request(f, 3, "Remove", "ns1");
    check_gone(f, "ns1");
    check_free_slots(f, 4);
    finish(f, &s);
    TRACE_NONE();
}

/* A tap that cannot be deleted keeps its record (the remove itself succeeds): the runtime
 * directory's release deletes it. */
static void
test_remove_tap_delete_fails(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), 0);
    trace_drop();
    ip_fail("link del *");
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "guest NetworkNamespace Remove ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
    ip_fail(NULL);
    release_rundir();
    TRACE("ip link del dev {0}", "rec (none)");
}

/* ---- refusals: nothing sent --------------------------------------------------------------- */

static void
test_no_free_ports(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    plug(&s, 1, MAC1, SPARE0 + 1);
    plug(&s, 2, MAC2, SPARE0 + 2);
    plug(&s, 3, MAC4, SPARE0 + 3);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    const struct uvm_endpoint three[] = {EP0, EP1, EP2};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", three, 3), 0);
    trace_drop();
    size_t requests = fixture_request_count(f);
    const struct uvm_endpoint two[] = {EP3, EP4};
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", two, 2), UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(strstr(uvm_last_error(), "'ns2'"));
    assert_non_null(strstr(uvm_last_error(), "only 1 of the 4"));
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), requests);
    check_gone(f, "ns2");
    /* one still fits, on the last port */
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", &EP4, 1), 0);
    TRACE("guest NetworkNamespace Add ns2", "ip tuntap add dev {3} mode tap",
          "rec {0}= {1}= {2}= {3}=", "qmp getfd fd-net3 {3}", "qmp netdev_add net3",
          "qmp device_add nic3",
          "ip link set dev {3} up", "guest Network Add eth0");
    check_free_slots(f, 0);
    finish(f, &s);
    /* close leaves all four to the runtime directory's release */
    TRACE_NONE();
    release_rundir();
    TRACE_SET("ip link del dev {0}", "ip link del dev {1}", "ip link del dev {2}",
              "ip link del dev {3}", "rec (none)");
}

/* Without a hot-plug bridge (vpmem_count 0) there are the 4 spare root ports only. */
static void
test_five_endpoints_without_bridge(void **state)
{
    (void)state;
    struct script s = {0};
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    const struct uvm_endpoint five[] = {EP0, EP1, EP2, EP3, EP4};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", five, 5), UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(
        strstr(uvm_last_error(), "5 NICs asked, but only 4 of the 4 hot-plug slots are free"));
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), 0);
    check_gone(f, "ns1");
    check_free_slots(f, 4);
    finish(f, &s);
    TRACE_NONE();
}

static void
test_mac_collision(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), 0);
    trace_drop();
    const struct uvm_endpoint upper = {.id = "x", .mac_address = "52:54:00:AA:00:01"};
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", &upper, 1), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "is used by another NIC"));
    /* the second endpoint collides: the first one's port and MAC are given back */
    const struct uvm_endpoint eps[] = {EP1, upper};
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", eps, 2), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "endpoint 1"));
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), 2);
    check_gone(f, "ns2");
    check_free_slots(f, 3); /* ns1's NIC only */
    finish(f, &s);
    TRACE_NONE();
}

struct bad_case {
    const char *what;
    const char *id;
    struct uvm_endpoint e;
    int code;
    const char *msg; /* in uvm_last_error() */
};

static void
test_validation(void **state)
{
    (void)state;
    static char long_id[66];
    memset(long_id, 'a', 65);
    const struct bad_case cases[] = {
        {"short MAC", "ns1", {.mac_address = "52:54:00:aa:00"}, UVM_E_INVALID_ARGUMENT,
         "endpoint 0: MAC address '52:54:00:aa:00' is invalid"},
        {"long MAC", "ns1", {.mac_address = "52:54:00:aa:00:011"}, UVM_E_INVALID_ARGUMENT, "MAC"},
        {"MAC with dashes", "ns1", {.mac_address = "52-54-00-aa-00-01"}, UVM_E_INVALID_ARGUMENT,
         "MAC"},
        {"MAC with a non-hex digit", "ns1", {.mac_address = "52:54:00:aa:00:0g"},
         UVM_E_INVALID_ARGUMENT, "MAC"},
        {"empty MAC", "ns1", {.mac_address = ""}, UVM_E_INVALID_ARGUMENT, "MAC"},
        {"multicast MAC", "ns1", {.mac_address = "01:00:5e:00:00:01"}, UVM_E_INVALID_ARGUMENT,
         "MAC address '01:00:5e:00:00:01'"},
        {"multicast bit", "ns1", {.mac_address = "53:54:00:aa:00:01"}, UVM_E_INVALID_ARGUMENT,
         "MAC"},
        {"broadcast MAC", "ns1", {.mac_address = "ff:ff:ff:ff:ff:ff"}, UVM_E_INVALID_ARGUMENT,
         "MAC"},
        {"IPv4 out of range", "ns1", {.ip_address = "10.0.0.256"}, UVM_E_INVALID_ARGUMENT,
         "IP address '10.0.0.256' is invalid"},
        {"IP with a prefix", "ns1", {.ip_address = "10.0.0.2/24"}, UVM_E_INVALID_ARGUMENT,
         "IP address"},
        {"host name as IP", "ns1", {.ip_address = "localhost"}, UVM_E_INVALID_ARGUMENT,
         "IP address"},
        {"bad IPv6", "ns1", {.ip_address = "fd00::zz"}, UVM_E_INVALID_ARGUMENT, "IP address"},
        {"IPv4 prefix 33", "ns1", {.ip_address = "10.0.0.2", .prefix_length = 33},
         UVM_E_INVALID_ARGUMENT, "prefix length '33' is invalid"},
        {"IPv6 prefix 129", "ns1", {.ip_address = "fd00::2", .prefix_length = 129},
         UVM_E_INVALID_ARGUMENT, "prefix length '129'"},
        {"IPv6 gateway for IPv4", "ns1", {.ip_address = "10.0.0.2", .gateway_address = "fd00::1"},
         UVM_E_INVALID_ARGUMENT, "gateway (needs an IP address of the same family) 'fd00::1'"},
        {"IPv4 gateway for IPv6", "ns1", {.ip_address = "fd00::2", .gateway_address = "10.0.0.1"},
         UVM_E_INVALID_ARGUMENT, "gateway"},
        {"gateway without an address", "ns1", {.gateway_address = "10.0.0.1"},
         UVM_E_INVALID_ARGUMENT, "gateway"},
        {"gateway not an IP", "ns1", {.ip_address = "10.0.0.2", .gateway_address = "router"},
         UVM_E_INVALID_ARGUMENT, "gateway"},
        {"bad DNS server", "ns1", {.dns_servers = "10.0.0.53,dns.example"},
         UVM_E_INVALID_ARGUMENT, "DNS server 'dns.example' is invalid"},
        {"DNS server list with spaces", "ns1", {.dns_servers = "10.0.0.53, 8.8.8.8"},
         UVM_E_INVALID_ARGUMENT, "DNS server ' 8.8.8.8'"},
        {"id ../x", "../x", {.mac_address = MAC0}, UVM_E_INVALID_ARGUMENT,
         "id '../x' is not a safe name"},
        {"empty id", "", {.mac_address = MAC0}, UVM_E_INVALID_ARGUMENT, "id '' is not a safe name"},
        {"NULL id", NULL, {.mac_address = MAC0}, UVM_E_INVALID_ARGUMENT, "id '(null)'"},
        {"id starting with a dot", ".ns", {.mac_address = MAC0}, UVM_E_INVALID_ARGUMENT,
         "not a safe name"},
        {"id with a slash", "a/b", {.mac_address = MAC0}, UVM_E_INVALID_ARGUMENT,
         "not a safe name"},
        {"id of 65 characters", long_id, {.mac_address = MAC0}, UVM_E_INVALID_ARGUMENT,
         "not a safe name"},
        {"endpoint id not UTF-8", "ns1", {.id = "\xff\xfe"}, UVM_E_INVALID_ARGUMENT,
         "id or name '(not UTF-8)'"},
        {"endpoint name not UTF-8", "ns1", {.name = "a\xc0"}, UVM_E_INVALID_ARGUMENT,
         "not UTF-8"},
        {"missing host tap", "ns1", {.host_ifname = "uvmnotthere0"}, UVM_E_NOT_FOUND,
         "host tap 'uvmnotthere0' does not exist"},
        {"host tap name with a slash", "ns1", {.host_ifname = "a/b"}, UVM_E_INVALID_ARGUMENT,
         "host interface name 'a/b'"},
        {"empty host tap name", "ns1", {.host_ifname = ""}, UVM_E_INVALID_ARGUMENT,
         "host interface name"},
        {"host tap name of 16 characters", "ns1", {.host_ifname = "abcdefghijklmnop"},
         UVM_E_INVALID_ARGUMENT, "host interface name"},
        {"host tap with a host namespace", "ns1", {.host_ifname = "lo", .host_netns = "x"},
         UVM_E_INVALID_ARGUMENT, "host_netns (only for a tap the library creates)"},
        {"missing host namespace", "ns1", {.host_netns = "uvm-no-such-netns"}, UVM_E_NOT_FOUND,
         "host network namespace 'uvm-no-such-netns' does not exist"},
        {"host namespace ../..", "ns1", {.host_netns = "../../etc"}, UVM_E_NOT_FOUND,
         "host network namespace '../../etc'"},
        {"empty host namespace", "ns1", {.host_netns = ""}, UVM_E_NOT_FOUND,
         "host network namespace ''"},
    };
    struct script s = {0};
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct bad_case *c = &cases[i];
        int rc = uvm_add_netns(f->vm, c->id, &c->e, 1);
        if (rc != c->code)
            fail_msg("%s: %d (%s), expected %d", c->what, rc, uvm_last_error(), c->code);
        if (!strstr(uvm_last_error(), c->msg))
            fail_msg("%s: message '%s' does not say '%s'", c->what, uvm_last_error(), c->msg);
    }
    /* in a later endpoint */
    const struct uvm_endpoint second_bad[] = {EP0, {.ip_address = "10.0.0.2", .prefix_length = 40}};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", second_bad, 2), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "endpoint 1: prefix length '40'"));
    /* the same MAC twice in one call, whatever the case */
    const struct uvm_endpoint dup[] = {{.mac_address = MAC0}, {.mac_address = "52:54:00:AA:00:01"}};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", dup, 2), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "duplicate in this call"));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", NULL, 1), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "endpoints is NULL"));
    ASSERT_RC(uvm_add_netns(NULL, "ns1", &EP0, 1), UVM_E_INVALID_ARGUMENT);
    ASSERT_RC(uvm_remove_netns(NULL, "ns1"), UVM_E_INVALID_ARGUMENT);
    ASSERT_RC(uvm_remove_netns(f->vm, NULL), UVM_E_INVALID_ARGUMENT);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_NOT_FOUND);
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), 0);
    check_free_slots(f, 4);
    finish(f, &s);
    TRACE_NONE();
}

static void
test_windows(void **state)
{
    (void)state;
    struct script s = {0};
    struct fixture *f = start(&s, CFG(.windows = true));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "Windows"));
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_NOT_FOUND);
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), 0);
    finish(f, &s);
}

static void
test_not_running(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", &EP0, 1), 0);
    trace_drop();
    fixture_set_state(f, FIXTURE_STOPPED);
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", &EP1, 1), UVM_E_INVALID_STATE);
    assert_non_null(strstr(uvm_last_error(), "is stopped"));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", NULL, 0), UVM_E_INVALID_STATE);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_INVALID_STATE);
    fixture_set_state(f, FIXTURE_TERMINATING);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), UVM_E_INVALID_STATE);
    assert_non_null(strstr(uvm_last_error(), "being terminated"));
    fixture_set_state(f, FIXTURE_RUNNING);
    TRACE_NONE();
    assert_int_equal(fixture_request_count(f), 2);
    /* nothing changed: no ns2, ns1 with its one reference (one remove takes it away) */
    check_gone(f, "ns2");
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns1");
    finish(f, &s);
    TRACE_NONE();
}

/* ---- hot-plug slots beyond the root ports ------------------------------------------------- */

/* The k-th MAC of the slot tests. */
static void
slot_mac(char out[18], unsigned k)
{
    snprintf(out, 18, "52:54:00:bb:%02x:%02x", k >> 8, k & 0xff);
}

/* With a VPMem-capable initrd boot (vpmem_count > 0) the 5th NIC goes to the pci-bridge hpbr0,
 * slot 0, modern only; its slot is reused after a remove. */
static void
test_bridge_slot(void **state)
{
    (void)state;
    struct script s = {0};
    char macs[4][18];
    for (unsigned k = 0; k < 4; k++) {
        slot_mac(macs[k], k);
        plug(&s, k, macs[k], SPARE0 + k);
    }
    plug_bridge(&s, 4, MAC4, "0.0");
    unplug(&s, 4);
    plug_bridge(&s, 4, MAC4, "0.0");
    struct fixture *f = start(&s, CFG(.scsi_count = 1, .vpmem_count = 1));
    struct uvm_endpoint four[4];
    for (unsigned k = 0; k < 4; k++)
        four[k] = (struct uvm_endpoint){.mac_address = macs[k], .host_ifname = "lo"};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", four, 4), 0);
    trace_drop();
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", &EP4, 1), 0);
    TRACE("guest NetworkNamespace Add ns2", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net4 {0}", "qmp netdev_add net4", "qmp device_add nic4",
          "ip link set dev {0} up",
          "guest Network Add eth0");
    /* the remove unplugs nic4, i.e. the NIC kept slot 4 */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns2"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic4", "qmp netdev_del net4",
          "ip link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns2");
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", &EP4, 1), 0);
    TRACE("guest NetworkNamespace Add ns2", "ip tuntap add dev {1} mode tap", "rec {1}=",
          "qmp getfd fd-net4 {1}", "qmp netdev_add net4", "qmp device_add nic4",
          "ip link set dev {1} up",
          "guest Network Add eth0");
    finish(f, &s); /* bus hpbr0, addr 0.0, disable-legacy on, for nic4 only */
    TRACE_NONE();
}

/* Which configurations have the bridge: 5 NICs fit, or nothing is sent. */
static void
test_bridge_configurations(void **state)
{
    (void)state;
    static const struct {
        unsigned scsi, vpmem;
        enum uvm_rootfs_type rootfs;
        bool bridge;
        unsigned rp; /* root port of slot 0 */
    } cases[] = {
        {1, 0, UVM_ROOTFS_INITRD, false, 3},
        {1, 1, UVM_ROOTFS_INITRD, true, 3},
        {0, 3, UVM_ROOTFS_INITRD, true, 2},
        {1, 1, UVM_ROOTFS_VHD, false, 4}, /* the VHD root is VPMem device 0 */
        {1, 2, UVM_ROOTFS_VHD, true, 4},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct script s = {0};
        char macs[5][18];
        struct uvm_endpoint five[5];
        for (unsigned k = 0; k < 5; k++) {
            slot_mac(macs[k], k);
            five[k] = (struct uvm_endpoint){.mac_address = macs[k], .host_ifname = "lo"};
            if (!cases[i].bridge)
                continue;
            if (k < 4)
                plug(&s, k, macs[k], cases[i].rp + k);
            else
                plug_bridge(&s, k, macs[k], "0.0");
        }
        struct fixture *f = start(&s, CFG(.scsi_count = cases[i].scsi,
                                          .vpmem_count = cases[i].vpmem,
                                          .rootfs_type = cases[i].rootfs));
        int rc = uvm_add_netns(f->vm, "ns1", five, 5);
        cleanup_free char *msg = xstrdup(uvm_last_error());
        size_t requests = fixture_request_count(f);
        finish(f, &s);
        if (cases[i].bridge) {
            if (rc != 0)
                fail_msg("case %zu: %d (%s)", i, rc, msg);
            trace_drop();
        } else {
            if (rc != UVM_E_NO_AVAILABLE_LOCATION || !strstr(msg, "only 4 of the 4"))
                fail_msg("case %zu: %d (%s), expected no available location", i, rc, msg);
            assert_int_equal(requests, 0);
            TRACE_NONE();
        }
    }
}

/* 35 NICs at most (4 root ports + 31 bridge slots, "<hex>.0"; the bridge's last slot holds its
 * window placeholder): one call may take them all; 36 endpoints are refused by validation, one
 * more NIC by the slot count. */
static void
test_all_slots(void **state)
{
    (void)state;
    struct script s = {0};
    char macs[HOTSLOT_MAX + 1][18];
    struct uvm_endpoint eps[HOTSLOT_MAX + 1];
    for (unsigned k = 0; k <= HOTSLOT_MAX; k++) {
        slot_mac(macs[k], k);
        eps[k] = (struct uvm_endpoint){.mac_address = macs[k], .host_ifname = "lo"};
    }
    for (unsigned k = 0; k < HOTSLOT_MAX; k++) {
        char addr[8];
        snprintf(addr, sizeof(addr), "%x.0", k - 4);
        if (k < 4)
            plug(&s, k, macs[k], SPARE0 + k);
        else
            plug_bridge(&s, k, macs[k], addr);
    }
    assert_int_equal(HOTSLOT_MAX, 35);
    assert_non_null(strstr(s.cmds[3 * 14 + 2], "'bus':'hpbr0','addr':'a.0'"));
    assert_non_null(strstr(s.cmds[3 * 34 + 2], "'bus':'hpbr0','addr':'1e.0'"));
    struct fixture *f = start(&s, CFG(.scsi_count = 1, .vpmem_count = 1));
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", eps, HOTSLOT_MAX + 1), UVM_E_INVALID_ARGUMENT);
    assert_non_null(strstr(uvm_last_error(), "36 endpoints, at most 35"));
    TRACE_NONE();
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", eps, HOTSLOT_MAX), 0);
    const char *want[1 + 4 * HOTSLOT_MAX];
    char owned[4 * HOTSLOT_MAX][40];
    want[0] = "guest NetworkNamespace Add ns1";
    for (unsigned k = 0; k < HOTSLOT_MAX; k++) {
        snprintf(owned[4 * k], 40, "qmp getfd fd-net%u lo", k);
        snprintf(owned[4 * k + 1], 40, "qmp netdev_add net%u", k);
        snprintf(owned[4 * k + 2], 40, "qmp device_add nic%u", k);
        snprintf(owned[4 * k + 3], 40, "guest Network Add eth%u", k);
        for (unsigned j = 0; j < 4; j++)
            want[1 + 4 * k + j] = owned[4 * k + j];
    }
    check_trace_as(want, ARRAY_SIZE(want), false);
    ASSERT_RC(uvm_add_netns(f->vm, "ns2", &eps[HOTSLOT_MAX], 1), UVM_E_NO_AVAILABLE_LOCATION);
    assert_non_null(strstr(uvm_last_error(), "only 0 of the 35"));
    TRACE_NONE();
    finish(f, &s);
    TRACE_NONE();
}

/* ---- the runtime directory's cleanup (rundir.c) ------------------------------------------- */

/* A VM in a claimed runtime directory: close deletes no tap, the release deletes them all, each
 * in its host namespace. */
static void
test_close_then_rundir_release(void **state)
{
    (void)state;
    need_host_ns();
    struct rundir rd;
    ASSERT_RC(rundir_claim("unit", &rd), 0);
    assert_string_equal(rd.path, rd_path);
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    plug(&s, 1, MAC1, SPARE0 + 1);
    struct fixture *f = start(&s, CFG(.scsi_count = 1, .rundir = rd.path));
    const struct uvm_endpoint eps[] = {
        EP0, {.id = "e1", .mac_address = MAC1, .host_netns = host_ns}};
    ASSERT_RC(uvm_add_netns(f->vm, "ns1", eps, 2), 0);
    TRACE("guest NetworkNamespace Add ns1",
          "ip tuntap add dev {0} mode tap", "rec {0}=", "qmp getfd fd-net0 {0}",
          "qmp netdev_add net0",
          "qmp device_add nic0", "ip link set dev {0} up", "guest Network Add eth0",
          "ip tuntap add dev {1} mode tap", "rec {0}= {1}=", "qmp getfd fd-net1 {1}",
          "qmp netdev_add net1",
          "qmp device_add nic1", "ip link set dev {1} netns {n}", "rec {0}= {1}={n}",
          "ip -n {n} link set dev {1} up", "guest Network Add eth1");
    finish(f, &s);
    TRACE_NONE();
    rundir_release(&rd);
    TRACE_SET("ip link del dev {0}", "ip -n {n} link del dev {1}", "rec (none)");
    struct stat st;
    assert_int_equal(stat(rd_path, &st), -1);
}

static void
write_file(const char *name, const char *content)
{
    cleanup_free char *path = xasprintf("%s/%s", rd_path, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
}

/* The directory of a process that died, with its tap records: the next claim deletes those taps
 * (names of 16 or more characters are no tap and are left alone) and every file but the lock.
 * A claim of a directory held by a live VM deletes nothing. */
static void
test_rundir_claim_deletes_stale_taps(void **state)
{
    (void)state;
    cleanup_free char *mark = xasprintf(RUNDIR_LOCK_MARK "%d\n", (int)getpid());
    write_file(RUNDIR_LOCK_NAME, mark);
    write_file(RUNDIR_TAP_PREFIX "uvmtdead0001", "");
    write_file(RUNDIR_TAP_PREFIX "uvmtdead0002", host_ns);
    write_file(RUNDIR_TAP_PREFIX "abcdefghijklmnop", "");
    write_file("qemu.log", "old\n");
    TRACE("rec abcdefghijklmnop= uvmtdead0001= uvmtdead0002={n}");
    struct rundir rd;
    ASSERT_RC(rundir_claim("unit", &rd), 0);
    assert_string_equal(rd.path, rd_path);
    assert_true(rd.lock_fd >= 0);
    TRACE_SET("ip link del dev uvmtdead0001", "ip -n {n} link del dev uvmtdead0002",
              "rec (none)");
    cleanup_free char *lock = xasprintf("%s/lock", rd_path);
    cleanup_free char *log = xasprintf("%s/qemu.log", rd_path);
    assert_int_equal(access(lock, F_OK), 0);
    assert_int_equal(access(log, F_OK), -1);
    /* held: refused, and the live VM's records and taps are left alone */
    write_file(RUNDIR_TAP_PREFIX "uvmtlive0001", "");
    trace_drop();
    struct rundir other;
    ASSERT_RC(rundir_claim("unit", &other), UVM_E_ALREADY_EXISTS);
    TRACE_NONE();
    rundir_release(&rd);
    TRACE("ip link del dev uvmtlive0001", "rec (none)");
    struct stat st;
    assert_int_equal(stat(rd_path, &st), -1);
}

/* ---- concurrency -------------------------------------------------------------------------- */

struct adder {
    struct uvm *vm;
    int rc;
};

static void *
adder_main(void *arg)
{
    struct adder *a = arg;
    a->rc = uvm_add_netns(a->vm, "ns1", &EP0, 1);
    return NULL;
}

static void
test_concurrent_same_id(void **state)
{
    (void)state;
    struct script s = {0};
    plug(&s, 0, MAC0, SPARE0);
    unplug(&s, 0);
    struct fixture *f = start(&s, CFG(.scsi_count = 1));
    f->guest.delay_ms = 30; /* the others arrive while the first is in progress */
    struct adder a[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (struct adder){.vm = f->vm, .rc = 1};
        pthread_create(&th[i], NULL, adder_main, &a[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].rc, 0);
    }
    /* one add; the others waited for it and took references */
    TRACE("guest NetworkNamespace Add ns1", "ip tuntap add dev {0} mode tap", "rec {0}=",
          "qmp getfd fd-net0 {0}", "qmp netdev_add net0", "qmp device_add nic0",
          "ip link set dev {0} up",
          "guest Network Add eth0");
    /* one namespace with three references: two removes only drop one each, the third removes
     * it, and then it is gone */
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE_NONE();
    ASSERT_RC(uvm_remove_netns(f->vm, "ns1"), 0);
    TRACE("guest Network Remove eth0", "qmp device_del nic0", "qmp netdev_del net0",
          "ip link del dev {0}", "rec (none)", "guest NetworkNamespace Remove ns1");
    check_gone(f, "ns1");
    finish(f, &s);
    TRACE_NONE();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_add_one_created_tap, reset),
        cmocka_unit_test_setup(test_generated_mac, reset),
        cmocka_unit_test_setup(test_spare_port_numbers, reset),
        cmocka_unit_test_setup(test_host_ifname, reset),
        cmocka_unit_test_setup(test_host_netns, reset),
        cmocka_unit_test_setup(test_two_endpoints_and_remove, reset),
        cmocka_unit_test_setup(test_refcount, reset),
        cmocka_unit_test_setup(test_no_endpoints, reset),
        cmocka_unit_test_setup(test_rollback_device_add_second, reset),
        cmocka_unit_test_setup(test_netdev_add_fails, reset),
        cmocka_unit_test_setup(test_mac_free_after_failed_rollback, reset),
        cmocka_unit_test_setup(test_tap_open_fails, reset),
        cmocka_unit_test_setup(test_getfd_fails, reset),
        cmocka_unit_test_setup(test_guest_network_add_fails, reset),
        cmocka_unit_test_setup(test_guest_ns_add_fails, reset),
        cmocka_unit_test_setup(test_tuntap_fails, reset),
        cmocka_unit_test_setup(test_link_up_fails, reset),
        cmocka_unit_test_setup(test_host_netns_failures, reset),
        cmocka_unit_test_setup(test_tap_record_fails, reset),
        cmocka_unit_test_setup(test_tap_rerecord_fails, reset),
        cmocka_unit_test_setup(test_remove_guest_fails_then_retry, reset),
        cmocka_unit_test_setup(test_remove_ns_remove_fails_then_retry, reset),
        cmocka_unit_test_setup(test_remove_retry_after_netdev_del_failure, reset),
        cmocka_unit_test_setup(test_remove_retry_after_device_del_failure, reset),
        cmocka_unit_test_setup(test_remove_tap_delete_fails, reset),
        cmocka_unit_test_setup(test_no_free_ports, reset),
        cmocka_unit_test_setup(test_five_endpoints_without_bridge, reset),
        cmocka_unit_test_setup(test_mac_collision, reset),
        cmocka_unit_test_setup(test_validation, reset),
        cmocka_unit_test_setup(test_windows, reset),
        cmocka_unit_test_setup(test_not_running, reset),
        cmocka_unit_test_setup(test_bridge_slot, reset),
        cmocka_unit_test_setup(test_bridge_configurations, reset),
        cmocka_unit_test_setup(test_all_slots, reset),
        cmocka_unit_test_setup(test_close_then_rundir_release, reset),
        cmocka_unit_test_setup(test_rundir_claim_deletes_stale_taps, reset),
        cmocka_unit_test_setup(test_concurrent_same_id, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

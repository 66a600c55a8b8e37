/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm-runtime's pure parts: runc's command lines as go-runc builds them (containerd-oci.md §0),
 * the pid file, log lines, kill texts, config.json and annotations, state.json, and the holder
 * protocol with its bad inputs. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "console.h"
#include "rtcli.h"
#include "rtconfig.h"
#include "rtfile.h"
#include "rtlog.h"
#include "rtmsg.h"
#include "rtstate.h"

#define G "--root", "/run/containerd/runc/default", "--log", "/b/log.json", "--log-format", "json"

static int
parse(struct rt_cmd *c, char *err, ...)
{
    char *argv[64] = {"uvm-runtime"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    err[0] = '\0';
    return rt_parse(argc, argv, c, err, 256);
}

/* ---- the command line, in the shim's argument orders ---- */

static void
test_cli_shim_calls(void **state)
{
    struct rt_cmd c;
    char err[256];
    assert_int_equal(
        parse(&c, err, G, "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1", NULL), 0);
    assert_int_equal(c.verb, RT_CREATE);
    assert_string_equal(c.root, "/run/containerd/runc/default");
    assert_string_equal(c.log, "/b/log.json");
    assert_true(c.log_json);
    assert_string_equal(c.bundle, "/b");
    assert_string_equal(c.pid_file, "/b/init.pid");
    assert_string_equal(c.id, "c1");
    assert_null(c.console_socket);

    assert_int_equal(parse(&c, err, G, "--systemd-cgroup", "create", "--bundle", "/b", "--pid-file",
                           "/b/init.pid", "--console-socket", "/tmp/pty1/pty.sock", "--no-pivot",
                           "c1", NULL),
                     0);
    assert_true(c.systemd_cgroup);
    assert_string_equal(c.console_socket, "/tmp/pty1/pty.sock");

    assert_int_equal(parse(&c, err, G, "start", "c1", NULL), 0);
    assert_int_equal(c.verb, RT_START);

    assert_int_equal(parse(&c, err, G, "kill", "c4", "15", NULL), 0);
    assert_int_equal(c.verb, RT_KILL);
    assert_false(c.all);
    assert_int_equal(c.signal, 15);
    assert_int_equal(parse(&c, err, G, "kill", "--all", "c4", "9", NULL), 0);
    assert_true(c.all);
    assert_int_equal(c.signal, 9);

    assert_int_equal(parse(&c, err, G, "delete", "c1", NULL), 0);
    assert_false(c.force);
    assert_int_equal(parse(&c, err, G, "delete", "--force", "c1", NULL), 0);
    assert_true(c.force);

    assert_int_equal(parse(&c, err, G, "exec", "--process", "/tmp/runc-process1", "--detach",
                           "--pid-file", "/b/e1.pid", "c4", NULL),
                     0);
    assert_int_equal(c.verb, RT_EXEC);
    assert_string_equal(c.process, "/tmp/runc-process1");
    assert_true(c.detach);
    assert_string_equal(c.pid_file, "/b/e1.pid");
    assert_null(c.args);
    /* tty exec: --console-socket before --detach */
    assert_int_equal(parse(&c, err, G, "exec", "--process", "/tmp/p", "--console-socket",
                           "/tmp/pty2/pty.sock", "--detach", "--pid-file", "/b/e2.pid", "c4", NULL),
                     0);
    assert_string_equal(c.console_socket, "/tmp/pty2/pty.sock");

    assert_int_equal(parse(&c, err, G, "ps", "--format", "json", "c4", NULL), 0);
    assert_true(c.ps_json);
    assert_int_equal(parse(&c, err, G, "update", "--resources", "-", "c4", NULL), 0);
    assert_int_equal(c.verb, RT_UPDATE);
    assert_string_equal(c.resources, "-");
    assert_int_equal(parse(&c, err, G, "pause", "c4", NULL), 0);
    assert_int_equal(c.verb, RT_PAUSE);
}

static void
test_cli_shapes(void **state)
{
    struct rt_cmd c;
    char err[256];
    /* defaults, -name and --name=value, short flags */
    assert_int_equal(parse(&c, err, "state", "x", NULL), 0);
    assert_string_equal(c.root, RT_DEFAULT_ROOT);
    assert_null(c.log);
    assert_int_equal(parse(&c, err, "-root=/r", "--log=/l", "create", "-b", "/b", "x", NULL), 0);
    assert_string_equal(c.root, "/r");
    assert_string_equal(c.log, "/l");
    assert_false(c.log_json);
    assert_string_equal(c.bundle, "/b");
    assert_int_equal(parse(&c, err, "kill", "-a", "x", "SIGKILL", NULL), 0);
    assert_true(c.all);
    assert_int_equal(c.signal, 9);
    assert_int_equal(parse(&c, err, "kill", "x", NULL), 0);
    assert_int_equal(c.signal, 15);
    assert_int_equal(parse(&c, err, "delete", "-f", "x", NULL), 0);
    assert_true(c.force);
    /* exec with a command: flags before the ID, everything after it is the command */
    assert_int_equal(
        parse(&c, err, "exec", "-e", "A=1", "--cwd", "/tmp", "x", "sh", "-c", "exit 5", NULL), 0);
    assert_int_equal(c.nargs, 3);
    assert_string_equal(c.args[0], "sh");
    assert_string_equal(c.args[1], "-c");
    assert_int_equal(c.nenv, 1);
    assert_string_equal(c.env[0], "A=1");
    assert_string_equal(c.cwd, "/tmp");
    assert_int_equal(parse(&c, err, "--version", NULL), 0);
    assert_int_equal(c.verb, RT_VERSION);
    assert_int_equal(parse(&c, err, "--debug", "help", NULL), 0);
    assert_int_equal(c.verb, RT_HELP);
}

static void
test_cli_errors(void **state)
{
    struct rt_cmd c;
    char err[256];
    assert_int_equal(parse(&c, err, NULL), -1);
    assert_string_equal(err, "no command given (try --help)");
    assert_int_equal(parse(&c, err, "run", "x", NULL), -1);
    assert_string_equal(err, "command \"run\" not supported");
    assert_int_equal(parse(&c, err, "--bogus", "start", "x", NULL), -1);
    assert_string_equal(err, "flag provided but not defined: -bogus");
    assert_int_equal(parse(&c, err, "--root", NULL), -1);
    assert_string_equal(err, "flag needs an argument: -root");
    assert_int_equal(parse(&c, err, "--log-format", "xml", "start", "x", NULL), -1);
    assert_string_equal(err, "invalid log-format: xml");
    assert_int_equal(parse(&c, err, "start", NULL), -1);
    assert_string_equal(err, "start: container id cannot be empty");
    assert_int_equal(parse(&c, err, "start", "x", "y", NULL), -1);
    assert_string_equal(err, "start: incorrect number of arguments");
    assert_int_equal(parse(&c, err, "start", "../x", NULL), -1);
    assert_string_equal(err, "invalid container id format: ../x");
    assert_int_equal(parse(&c, err, "kill", "x", "SIGNOPE", NULL), -1);
    assert_string_equal(err, "unknown signal \"SIGNOPE\"");
    assert_int_equal(parse(&c, err, "exec", "x", NULL), -1);
    assert_string_equal(err, "exec: either --process or a command is needed");
    assert_int_equal(parse(&c, err, "exec", "-p", "/p", "x", "sh", NULL), -1);
    assert_int_equal(parse(&c, err, "exec", "-e", "noequals", "x", "sh", NULL), -1);
    assert_string_equal(err, "--env noequals: not KEY=VALUE");
    assert_int_equal(parse(&c, err, "create", "--preserve-fds", "2", "x", NULL), -1);
    assert_int_equal(parse(&c, err, "delete", "--force=maybe", "x", NULL), -1);
    assert_int_equal(parse(&c, err, "ps", "--format", "yaml", "x", NULL), -1);
}

static void
test_signals_and_ids(void **state)
{
    assert_int_equal(rt_parse_signal("9"), 9);
    assert_int_equal(rt_parse_signal("64"), 64);
    assert_int_equal(rt_parse_signal("TERM"), 15);
    assert_int_equal(rt_parse_signal("sigterm"), 15);
    assert_int_equal(rt_parse_signal("SIGUSR1"), 10);
    assert_int_equal(rt_parse_signal("WINCH"), 28);
    assert_int_equal(rt_parse_signal("0"), -1);
    assert_int_equal(rt_parse_signal("65"), -1);
    assert_int_equal(rt_parse_signal("9x"), -1);
    assert_int_equal(rt_parse_signal("009"), -1);
    assert_int_equal(rt_parse_signal(""), -1);
    assert_int_equal(rt_parse_signal("SIG"), -1);
    assert_true(rt_id_valid("c1"));
    assert_true(rt_id_valid("a+b_c-d.e"));
    char longid[1026];
    memset(longid, 'a', 1025);
    longid[1025] = '\0';
    assert_false(rt_id_valid(longid));
    longid[1024] = '\0';
    assert_true(rt_id_valid(longid));
    assert_false(rt_id_valid(""));
    assert_false(rt_id_valid("."));
    assert_false(rt_id_valid(".."));
    assert_false(rt_id_valid("a/b"));
    assert_false(rt_id_valid("a b"));
}

/* ---- pid file, log lines ---- */

static void
test_pidfile(void **state)
{
    char dir[] = "/tmp/uvm-rt-unit.XXXXXX";
    assert_non_null(mkdtemp(dir));
    cleanup_free char *path = xasprintf("%s/init.pid", dir);
    assert_int_equal(rt_pidfile_write(path, 3320), 0);
    char *text = NULL;
    size_t n = 0;
    assert_int_equal(rt_read_file(AT_FDCWD, path, 64, 1, &text, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(text, "3320", 4); /* digits only: go-runc's strconv.Atoi */
    free(text);
    assert_int_equal(rt_pidfile_write(path, 7), 0); /* replaced, not appended */
    assert_int_equal(rt_read_file(AT_FDCWD, path, 64, 1, &text, &n), 0);
    assert_string_equal(text, "7");
    free(text);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    cleanup_free char *bad = xasprintf("%s/nodir/init.pid", dir);
    assert_int_equal(rt_pidfile_write(bad, 1), -ENOENT);
    unlink(path);
    assert_int_equal(rmdir(dir), 0); /* no temporary file left */
}

static void
test_log_lines(void **state)
{
    char *l = rtlog_line("error", "container not running", 0, true);
    assert_string_equal(l, "{\"level\":\"error\",\"msg\":\"container not running\","
                           "\"time\":\"1970-01-01T00:00:00Z\"}\n");
    free(l);
    l = rtlog_line("error", "a \"b\"\\c\nd\te\x01", 1700000000, true);
    assert_string_equal(l, "{\"level\":\"error\",\"msg\":\"a \\\"b\\\"\\\\c\\nd\\te\\u0001\","
                           "\"time\":\"2023-11-14T22:13:20Z\"}\n");
    json_t *j = json_loads(l, 0, NULL); /* what the shim's decoder reads */
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "a \"b\"\\c\nd\te\x01");
    json_decref(j);
    free(l);
    l = rtlog_line("warning", "x", 0, false);
    assert_string_equal(l, "time=\"1970-01-01T00:00:00Z\" level=warning msg=\"x\"\n");
    free(l);
    /* invalid UTF-8 becomes U+FFFD, valid multibyte passes; the line stays valid JSON */
    char out[64];
    rtlog_json_escape("\xff\xc3\xa9\xed\xa0\x80z", out);
    assert_string_equal(out, "\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
    l = rtlog_line("error", "\xc0\xaf\xf5\x80", 0, true);
    j = json_loads(l, 0, NULL);
    assert_non_null(j);
    json_decref(j);
    free(l);
}

static void
test_log_file_and_kill_texts(void **state)
{
    char dir[] = "/tmp/uvm-rt-unit.XXXXXX";
    assert_non_null(mkdtemp(dir));
    cleanup_free char *path = xasprintf("%s/log.json", dir);
    rtlog_setup(path, true);
    int saved = dup(2), null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 2);
    assert_int_equal(rtlog_error("first"), 1);
    assert_int_equal(rtlog_error(RT_TEXT_NOT_RUNNING), 1);
    dup2(saved, 2);
    close(saved);
    close(null_fd);
    rtlog_setup(NULL, false);
    /* the shim: a stream of JSON objects; the last level=error msg is shown */
    char *text = NULL;
    assert_int_equal(rt_read_file(AT_FDCWD, path, 4096, 1, &text, NULL), 0);
    char *second = strchr(text, '\n') + 1;
    json_t *j = json_loads(second, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "container not running");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
    json_decref(j);
    free(text);
    /* the texts containerd's checkKillError and delete match */
    assert_non_null(strstr(RT_TEXT_NOT_RUNNING, "container not running"));
    assert_string_equal(RT_TEXT_NOT_EXIST, "does not exist");
    unlink(path);
    rmdir(dir);
}

/* ---- config.json ---- */

static const struct rt_env no_env;

static void
test_config(void **state)
{
    struct rt_config c;
    char err[256];
    const char *spec = "{\"process\":{\"args\":[\"sh\"],\"env\":[\"A=1\"]},"
                       "\"root\":{\"path\":\"rootfs\",\"readonly\":true}}";
    assert_int_equal(rtconfig_parse(spec, "/b", &no_env, &c, err, sizeof(err)), 0);
    assert_string_equal(c.rootfs, "/b/rootfs");
    assert_true(c.rootfs_ro);
    assert_false(c.terminal);
    assert_null(c.boot_files);
    assert_int_equal(c.memory_mb, RT_DEFAULT_MEMORY_MB);
    assert_int_equal(c.cpus, RT_DEFAULT_CPUS);
    json_t *j = json_loads(c.spec, 0, NULL); /* PATH added, the rest kept */
    json_t *env = json_object_get(json_object_get(j, "process"), "env");
    assert_int_equal(json_array_size(env), 2);
    assert_string_equal(json_string_value(json_array_get(env, 0)), RT_DEFAULT_PATH);
    assert_string_equal(json_string_value(json_array_get(env, 1)), "A=1");
    json_decref(j);
    rtconfig_free(&c);

    /* ctr run --rootfs: absolute, no env at all; the environment, then annotations, win */
    struct rt_env env_vals = {"/boot", "256", "2"};
    spec = "{\"process\":{\"args\":[\"sh\"],\"env\":[\"PATH=/x\"],\"terminal\":true},"
           "\"root\":{\"path\":\"/r/fs\"}}";
    assert_int_equal(rtconfig_parse(spec, "/b", &env_vals, &c, err, sizeof(err)), 0);
    assert_string_equal(c.rootfs, "/r/fs");
    assert_false(c.rootfs_ro);
    assert_true(c.terminal);
    assert_string_equal(c.boot_files, "/boot");
    assert_int_equal(c.memory_mb, 256);
    assert_int_equal(c.cpus, 2);
    assert_non_null(strstr(c.spec, "[\"PATH=/x\"]")); /* a PATH of its own is kept */
    rtconfig_free(&c);
    spec = "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"/r\"},\"annotations\":{"
           "\"io.libuvm.memory-mb\":\"1024\",\"io.libuvm.cpus\":\"4\","
           "\"io.libuvm.boot-files\":\"/other\",\"org.example\":\"x\"}}";
    assert_int_equal(rtconfig_parse(spec, "/b", &env_vals, &c, err, sizeof(err)), 0);
    assert_int_equal(c.memory_mb, 1024);
    assert_int_equal(c.cpus, 4);
    assert_string_equal(c.boot_files, "/other");
    assert_non_null(strstr(c.spec, "\"env\":[\"" RT_DEFAULT_PATH "\"]"));
    rtconfig_free(&c);
}

static void
expect_config_error(const char *spec, const struct rt_env *env, const char *msg)
{
    struct rt_config c;
    char err[256];
    assert_int_equal(rtconfig_parse(spec, "/b", env, &c, err, sizeof(err)), -1);
    assert_string_equal(err, msg);
    assert_null(c.spec);
    assert_null(c.rootfs);
}

static void
test_config_errors(void **state)
{
    expect_config_error("[", &no_env,
                        "config.json is not JSON: ']' expected near end of file (line 1)");
    expect_config_error("[]", &no_env, "config.json must be an object");
    expect_config_error("{\"root\":{\"path\":\"r\"}}", &no_env, "config.json has no process");
    expect_config_error("{\"process\":{\"terminal\":1},\"root\":{\"path\":\"r\"}}", &no_env,
                        "process.terminal must be a boolean");
    expect_config_error("{\"process\":{\"env\":\"x\"},\"root\":{\"path\":\"r\"}}", &no_env,
                        "process.env must be an array");
    expect_config_error("{\"process\":{}}", &no_env,
                        "root.path is missing: a container needs a root file system");
    expect_config_error("{\"process\":{},\"root\":{\"path\":\"../etc\"}}", &no_env,
                        "root.path '../etc' must not have '.' or '..' components");
    expect_config_error("{\"process\":{},\"root\":{\"path\":\"r\",\"readonly\":\"yes\"}}", &no_env,
                        "root.readonly must be a boolean");
    expect_config_error("{\"process\":{},\"root\":{\"path\":\"r\"},\"annotations\":{"
                        "\"io.libuvm.memory-mb\":\"12\"}}",
                        &no_env,
                        "annotation io.libuvm.memory-mb: '12' is not a memory size in MiB "
                        "(64..1048576)");
    expect_config_error("{\"process\":{},\"root\":{\"path\":\"r\"},\"annotations\":{"
                        "\"io.libuvm.cpus\":\"-1\"}}",
                        &no_env, "annotation io.libuvm.cpus: '-1' is not a CPU count (1..128)");
    expect_config_error("{\"process\":{},\"root\":{\"path\":\"r\"},\"annotations\":{"
                        "\"io.libuvm.boot-files\":\"rel/dir\"}}",
                        &no_env,
                        "annotation io.libuvm.boot-files: 'rel/dir' is not an absolute path "
                        "without '.' or '..'");
    expect_config_error("{\"process\":{},\"root\":{\"path\":\"r\"},\"annotations\":{"
                        "\"io.libuvm.memroy-mb\":\"512\"}}",
                        &no_env,
                        "annotation io.libuvm.memroy-mb is not known (io.libuvm.boot-files, "
                        "io.libuvm.memory-mb, io.libuvm.cpus)");
    expect_config_error("{\"process\":{},\"root\":{\"path\":\"r\"},\"annotations\":{\"a\":1}}",
                        &no_env, "annotations.a must be a string");
    struct rt_env bad = {NULL, "lots", NULL};
    expect_config_error("{\"process\":{},\"root\":{\"path\":\"r\"}}", &bad,
                        "UVM_RUNTIME_MEMORY_MB: 'lots' is not a memory size in MiB "
                        "(64..1048576)");
}

static void
test_process_and_vm_id(void **state)
{
    bool t = true;
    char *out = NULL, err[256];
    assert_int_equal(rtconfig_process("{\"args\":[\"true\"]}", &t, &out, err, sizeof(err)), 0);
    assert_false(t);
    assert_string_equal(out, "{\"args\":[\"true\"],\"env\":[\"" RT_DEFAULT_PATH "\"]}");
    free(out);
    assert_int_equal(
        rtconfig_process("{\"args\":[\"sh\"],\"terminal\":true}", &t, &out, err, sizeof(err)), 0);
    assert_true(t);
    free(out);
    assert_int_equal(rtconfig_process("[1]", &t, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "the process file must hold an object");
    assert_null(out);

    char a[64], b[64], c[64];
    rtconfig_vm_id("/run/containerd/runc/default", "c1", a);
    rtconfig_vm_id("/run/containerd/runc/k8s.io", "c1", b);
    rtconfig_vm_id("/run/containerd/runc/default", "c1", c);
    assert_string_equal(a, c); /* delete finds the VM of a dead holder */
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(a), 2 + 1 + 16);
    assert_memory_equal(a, "c1-", 3);
    char id[80];
    memset(id, 'x', 70);
    id[70] = '\0';
    id[0] = '.';
    id[5] = '+';
    rtconfig_vm_id("/r", id, a);
    assert_int_equal(strlen(a), 40 + 1 + 16); /* within libuvm's 64 */
    assert_int_equal(a[0], '_');
    assert_int_equal(a[5], '_');
}

/* ---- state.json ---- */

static void
test_state(void **state)
{
    struct rt_state s = {.id = "c1",
                         .bundle = "/b",
                         .rootfs = "/b/rootfs",
                         .created = "2026-01-01T00:00:00.000000001Z",
                         .vm_id = "c1-0123456789abcdef",
                         .uvm_runtime_dir = "/run/uvm",
                         .holder_pid = 42,
                         .holder_start = 123456789012ull,
                         .init_pid = 43};
    char *text = rtstate_encode(&s);
    struct rt_state d;
    char err[256];
    assert_int_equal(rtstate_decode(text, &d, err, sizeof(err)), 0);
    free(text);
    assert_string_equal(d.id, "c1");
    assert_string_equal(d.uvm_runtime_dir, "/run/uvm");
    assert_int_equal(d.holder_pid, 42);
    assert_int_equal(d.holder_start, 123456789012ull);
    assert_int_equal(d.init_pid, 43);
    rtstate_free(&d);
    assert_int_equal(rtstate_decode("{\"id\":\"c1\"}", &d, err, sizeof(err)), -1);
    assert_string_equal(err, "state.json lacks a field or has one of the wrong type");
    assert_null(d.id);
    assert_int_equal(rtstate_decode("nope", &d, err, sizeof(err)), -1);

    /* the directory: made once, refused twice, removed with its files */
    char dir[] = "/tmp/uvm-rt-unit.XXXXXX";
    assert_non_null(mkdtemp(dir));
    cleanup_free char *root = xasprintf("%s/a/root", dir);
    int fd = rtstate_mkdir(root, "c1");
    assert_true(fd >= 0);
    assert_int_equal(rtstate_mkdir(root, "c1"), -EEXIST);
    assert_int_equal(rtstate_write(fd, &s), 0);
    assert_int_equal(rtstate_read(fd, &d, err, sizeof(err)), 0);
    assert_string_equal(d.vm_id, "c1-0123456789abcdef");
    rtstate_free(&d);
    close(fd);
    assert_int_equal(rtstate_open(root, "nosuch"), -ENOENT);
    assert_int_equal(rtstate_remove(root, "c1"), 0);
    assert_int_equal(rtstate_open(root, "c1"), -ENOENT);
    assert_int_equal(rtstate_remove(root, "c1"), 0); /* idempotent */
    cleanup_free char *cmd = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the holder protocol ---- */

static size_t
packet(unsigned char *buf, uint32_t magic, uint16_t type, uint16_t flags, int32_t arg, uint32_t len,
       const char *payload, size_t n)
{
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &type, 2);
    memcpy(buf + 6, &flags, 2);
    memcpy(buf + 8, &arg, 4);
    memcpy(buf + 12, &len, 4);
    memcpy(buf + 16, payload, n);
    return 16 + n;
}

static void
expect_refused(const unsigned char *buf, size_t n, size_t nfds, const char *why)
{
    struct rtmsg *m = malloc(sizeof(*m));
    char err[256];
    assert_int_equal(rtmsg_decode(buf, n, nfds, m, err, sizeof(err)), -1);
    assert_string_equal(err, why);
    free(m);
}

static void
test_msg_decode(void **state)
{
    unsigned char buf[RTMSG_HDR_SIZE + RTMSG_MAX_PAYLOAD + 8];
    struct rtmsg *m = malloc(sizeof(*m));
    char err[256];
    size_t n = rtmsg_encode(buf, RTMSG_ATTACH, 0, 4242, "e12", 3);
    assert_int_equal(n, 19);
    assert_int_equal(rtmsg_decode(buf, n, 0, m, err, sizeof(err)), 0);
    assert_int_equal(m->type, RTMSG_ATTACH);
    assert_int_equal(m->arg, 4242);
    assert_string_equal(m->payload, "e12");
    n = rtmsg_encode(buf, RTMSG_KILL, RTMSG_F_ALL, 9, NULL, 0);
    assert_int_equal(rtmsg_decode(buf, n, 0, m, err, sizeof(err)), 0);
    assert_int_equal(m->flags, RTMSG_F_ALL);
    n = rtmsg_encode(buf, RTMSG_EXEC, 0, 0, NULL, 0);
    assert_int_equal(rtmsg_decode(buf, n, RTMSG_EXEC_FDS, m, err, sizeof(err)), 0);
    n = rtmsg_encode(buf, RTMSG_RESIZE, 0, 0, NULL, 0);
    assert_int_equal(rtmsg_decode(buf, n, 0, m, err, sizeof(err)), 0);
    assert_string_equal(rtmsg_type_name(m->type), "RESIZE");
    free(m);

    expect_refused(buf, 15, 0, "short message (15 bytes)");
    n = packet(buf, 0x12345678, RTMSG_START, 0, 0, 0, "", 0);
    expect_refused(buf, n, 0, "bad magic 0x12345678");
    n = packet(buf, RTMSG_MAGIC, 99, 0, 0, 0, "", 0);
    expect_refused(buf, n, 0, "unknown message type 99");
    n = packet(buf, RTMSG_MAGIC, RTMSG_LAST + 1, 0, 0, 0, "", 0);
    expect_refused(buf, n, 0, "unknown message type 13");
    n = packet(buf, RTMSG_MAGIC, RTMSG_RESIZE, 0, 5, 0, "", 0);
    expect_refused(buf, n, 0, "RESIZE: argument 5 out of range 0..0");
    n = packet(buf, RTMSG_MAGIC, 0, 0, 0, 0, "", 0);
    expect_refused(buf, n, 0, "unknown message type 0");
    n = packet(buf, RTMSG_MAGIC, RTMSG_OK, 0, 0, 5, "abc", 3);
    expect_refused(buf, n, 0, "OK: length 5 does not match the 19-byte packet");
    n = packet(buf, RTMSG_MAGIC, RTMSG_OK, 0, 0, 0xffffffffu, "", 0);
    expect_refused(buf, n, 0, "OK: length 4294967295 does not match the 16-byte packet");
    n = packet(buf, RTMSG_MAGIC, RTMSG_DELETE, 4, 0, 0, "", 0);
    expect_refused(buf, n, 0, "DELETE: unknown flags 0x4");
    n = packet(buf, RTMSG_MAGIC, RTMSG_KILL, RTMSG_F_FORCE, 9, 0, "", 0);
    expect_refused(buf, n, 0, "KILL: unknown flags 0x2");
    n = packet(buf, RTMSG_MAGIC, RTMSG_KILL, 0, 65, 0, "", 0);
    expect_refused(buf, n, 0, "KILL: argument 65 out of range 1..64");
    n = packet(buf, RTMSG_MAGIC, RTMSG_SIGNAL, 0, 0, 0, "", 0);
    expect_refused(buf, n, 0, "SIGNAL: argument 0 out of range 1..64");
    n = packet(buf, RTMSG_MAGIC, RTMSG_EXIT, 0, 256, 0, "", 0);
    expect_refused(buf, n, 0, "EXIT: argument 256 out of range 0..255");
    n = packet(buf, RTMSG_MAGIC, RTMSG_ATTACH, 0, -1, 4, "init", 4);
    expect_refused(buf, n, 0, "ATTACH: argument -1 out of range 1..2147483647");
    n = packet(buf, RTMSG_MAGIC, RTMSG_ERR, 0, 7, 0, "", 0);
    expect_refused(buf, n, 0, "ERR: argument 7 out of range 0..2");
    n = packet(buf, RTMSG_MAGIC, RTMSG_START, 0, 0, 0, "", 0);
    expect_refused(buf, n, 1, "START: 1 descriptors, expected 0");
    n = packet(buf, RTMSG_MAGIC, RTMSG_EXEC, 0, 0, 0, "", 0);
    expect_refused(buf, n, 3, "EXEC: 3 descriptors, expected 4");
    n = packet(buf, RTMSG_MAGIC, RTMSG_STATE, 0, 0, 1, "x", 1);
    expect_refused(buf, n, 0, "STATE: unexpected payload");
    n = packet(buf, RTMSG_MAGIC, RTMSG_OK, 0, 0, 3, "a\0b", 3);
    expect_refused(buf, n, 0, "OK: NUL byte in the payload");
    n = packet(buf, RTMSG_MAGIC, RTMSG_ATTACH, 0, 1, 4, "In1t", 4);
    expect_refused(buf, n, 0, "ATTACH: bad process name");
    n = packet(buf, RTMSG_MAGIC, RTMSG_ATTACH, 0, 1, 0, "", 0);
    expect_refused(buf, n, 0, "ATTACH: bad process name");
    n = packet(buf, RTMSG_MAGIC, RTMSG_ATTACH, 0, 1, 16, "e123456789012345", 16);
    expect_refused(buf, n, 0, "ATTACH: bad process name");
    char big[RTMSG_MAX_PAYLOAD + 1];
    memset(big, 'a', sizeof(big));
    n = packet(buf, RTMSG_MAGIC, RTMSG_OK, 0, 0, sizeof(big), big, sizeof(big));
    expect_refused(buf, n, 0, "OK: length 16385 does not match the 16401-byte packet");
}

static int
open_count(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

/* Over a real socket pair: fds travel and are owned by the message; bad packets and extra
 * descriptors are refused and their descriptors closed; end of stream and timeouts. */
static void
test_msg_socket(void **state)
{
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
    struct rtmsg *m = malloc(sizeof(*m));
    char err[256];
    int base = open_count();
    int fds[4];
    for (int i = 0; i < 4; i++)
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(rtmsg_send(sp[0], RTMSG_EXEC, 0, 0, NULL, fds, 4), 0);
    assert_int_equal(rtmsg_recv(sp[1], m, 1000, err, sizeof(err)), 0);
    assert_int_equal(m->type, RTMSG_EXEC);
    assert_int_equal(m->nfds, 4);
    for (int i = 0; i < 4; i++) {
        assert_true(m->fds[i] >= 0);
        assert_true(fcntl(m->fds[i], F_GETFD) & FD_CLOEXEC);
    }
    rtmsg_close_fds(m);
    /* descriptors on a type that takes none: refused, closed */
    assert_int_equal(rtmsg_send(sp[0], RTMSG_START, 0, 0, NULL, fds, 2), 0);
    assert_int_equal(rtmsg_recv(sp[1], m, 1000, err, sizeof(err)), -EPROTO);
    assert_string_equal(err, "START: 2 descriptors, expected 0");
    /* a raw bad packet */
    unsigned char raw[32];
    size_t n = packet(raw, RTMSG_MAGIC, RTMSG_SIGNAL, 0, 100, 0, "", 0);
    assert_int_equal(send(sp[0], raw, n, 0), (ssize_t)n);
    assert_int_equal(rtmsg_recv(sp[1], m, 1000, err, sizeof(err)), -EPROTO);
    /* a packet larger than any message: truncated, refused */
    static unsigned char huge[RTMSG_HDR_SIZE + RTMSG_MAX_PAYLOAD + 100];
    memset(huge, 'x', sizeof(huge));
    assert_int_equal(send(sp[0], huge, sizeof(huge), 0), (ssize_t)sizeof(huge));
    assert_int_equal(rtmsg_recv(sp[1], m, 1000, err, sizeof(err)), -EPROTO);
    assert_string_equal(err, "message or descriptors truncated");
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    assert_int_equal(open_count(), base); /* nothing leaked */
    assert_int_equal(rtmsg_recv(sp[1], m, 50, err, sizeof(err)), -ETIMEDOUT);
    close(sp[0]);
    assert_int_equal(rtmsg_recv(sp[1], m, 1000, err, sizeof(err)), -ECONNRESET);
    close(sp[1]);
    free(m);
}

/* The console handshake as go-runc's recvFd reads it: the pty's name, exactly one descriptor,
 * a terminal (TCGETS); the pty is raw; the size set on the master is read on the slave. */
static void
test_console(void **state)
{
    char dir[] = "/tmp/uvm-rt-unit.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/pty.sock", dir);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    int master = -1, slave = -1;
    char name[64];
    assert_int_equal(rt_console_new(&master, &slave, name), 0);
    assert_memory_equal(name, "/dev/pts/", 9);
    assert_int_equal(rt_console_send(sa.sun_path, master, name), 0); /* before any accept */
    close(master);
    int conn = accept(l, NULL, NULL);
    char buf[4096];
    union {
        char b[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
    ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
    assert_int_equal(n, (ssize_t)strlen(name));
    assert_memory_equal(buf, name, (size_t)n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    assert_non_null(c);
    assert_int_equal(c->cmsg_type, SCM_RIGHTS);
    assert_int_equal(c->cmsg_len, CMSG_LEN(sizeof(int))); /* exactly one */
    int got;
    memcpy(&got, CMSG_DATA(c), sizeof(int));
    assert_true(isatty(got));
    assert_int_equal(write(slave, "a\nb", 3), 3); /* raw: no \r added */
    char out[8] = "";
    assert_int_equal(read(got, out, sizeof(out)), 3);
    assert_memory_equal(out, "a\nb", 3);
    unsigned rows = 1, cols = 1;
    assert_int_equal(rt_console_size(slave, &rows, &cols), 0);
    assert_int_equal(rows, 0);
    struct winsize ws = {.ws_row = 40, .ws_col = 120};
    assert_int_equal(ioctl(got, TIOCSWINSZ, &ws), 0);
    assert_int_equal(rt_console_size(slave, &rows, &cols), 0);
    assert_int_equal(rows, 40);
    assert_int_equal(cols, 120);
    assert_int_equal(rt_console_send("/nonexistent/pty.sock", got, name), -ENOENT);
    close(got);
    close(slave);
    close(conn);
    close(l);
    unlink(sa.sun_path);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_shim_calls),
        cmocka_unit_test(test_cli_shapes),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_signals_and_ids),
        cmocka_unit_test(test_pidfile),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_log_file_and_kill_texts),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_process_and_vm_id),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_msg_decode),
        cmocka_unit_test(test_msg_socket),
        cmocka_unit_test(test_console),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP client against the scripted fake peer. Deadlines are short; nothing asserts wall time. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "fake-qmp.h"
#include "qmp.h"
#include "qmpfd.h"

#define LONG_MS 10000u /* "never" for a test: only reached if the code under test hangs */
#define SHORT_MS 200u  /* for the timeout tests */

/* ---- log capture ------------------------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_text;
static size_t log_len;

static void
capture_log(void *opaque, enum uvm_log_level level, const char *vm_id, const char *message)
{
    pthread_mutex_lock(&log_lock);
    char *line = xasprintf("%d %s %s\n", (int)level, vm_id ? vm_id : "-", message);
    size_t n = strlen(line);
    log_text = xrealloc(log_text, log_len + n + 1);
    memcpy(log_text + log_len, line, n + 1);
    log_len += n;
    free(line);
    if (getenv("TEST_QMP_VERBOSE"))
        fprintf(stderr, "log: %d %s %s\n", (int)level, vm_id ? vm_id : "-", message);
    pthread_mutex_unlock(&log_lock);
}

static bool
log_contains(const char *needle)
{
    pthread_mutex_lock(&log_lock);
    bool found = log_text && strstr(log_text, needle);
    pthread_mutex_unlock(&log_lock);
    return found;
}

static int
setup(void **state)
{
    pthread_mutex_lock(&log_lock);
    free(log_text);
    log_text = NULL;
    log_len = 0;
    pthread_mutex_unlock(&log_lock);
    uvm_error_clear();
    return 0;
}

static int
group_setup(void **state)
{
    uvm_set_log_handler(capture_log, NULL, UVM_LOG_DEBUG);
    return 0;
}

static int
group_teardown(void **state)
{
    uvm_set_log_handler(NULL, NULL, UVM_LOG_INFO);
    free(log_text);
    log_text = NULL;
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static struct qmp *
connect_fake(const struct fake_qmp_step *steps, size_t n, struct fake_qmp **f)
{
    int fd = -1;
    *f = fake_qmp_start(steps, n, &fd);
    struct qmp *q = qmp_new(fd, "vm1");
    assert_non_null(q);
    return q;
}

#define CONNECT(script, f) connect_fake(script, ARRAY_SIZE(script), f)

static struct qmp *
connect_handshake(const struct fake_qmp_step *steps, size_t n, struct fake_qmp **f)
{
    struct qmp *q = connect_fake(steps, n, f);
    assert_int_equal(qmp_handshake(q, qmp_deadline(LONG_MS)), 0);
    return q;
}

#define CONNECT_HS(script, f) connect_handshake(script, ARRAY_SIZE(script), f)

/* Join the peer and require a clean run of the whole script. */
static void
finish_ok(struct fake_qmp *f)
{
    char *failure = NULL;
    int r = fake_qmp_finish(f, &failure);
    if (r != 0)
        print_error("fake QMP peer:\n%s", failure);
    free(failure);
    fake_qmp_free(f);
    assert_int_equal(r, 0);
}

static json_t *
J(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("bad JSON in test: %s: %s", err.text, text);
    return j;
}

static void
assert_json(json_t *got, const char *want_text)
{
    json_t *want = J(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("got %s, want %s\n", g ? g : "NULL", want_text);
        free(g);
    }
    assert_true(json_equal(got, want));
    json_decref(want);
}

static void
assert_error_contains(const char *needle)
{
    if (!strstr(uvm_last_error(), needle))
        print_error("message '%s' lacks '%s'\n", uvm_last_error(), needle);
    assert_non_null(strstr(uvm_last_error(), needle));
}

/* ---- handshake --------------------------------------------------------------------------- */

static void
test_handshake_ok(void **state)
{
    static const struct fake_qmp_step script[] = {FAKE_QMP_HANDSHAKE()};
    struct fake_qmp *f;
    struct qmp *q = CONNECT(script, &f);
    assert_int_equal(qmp_handshake(q, qmp_deadline(LONG_MS)), 0);
    assert_false(qmp_broken(q));
    qmp_free(q);

    char *failure = NULL;
    assert_int_equal(fake_qmp_finish(f, &failure), 0);
    static const char *const want[] = {"{'execute':'qmp_capabilities'}"};
    assert_int_equal(fake_qmp_check_commands(f, want, ARRAY_SIZE(want), &failure), 0);
    fake_qmp_free(f);
    assert_true(log_contains("QMP greeting from QEMU 7.2.0"));
}

static void
check_bad_greeting(const struct fake_qmp_step *script, size_t n)
{
    struct fake_qmp *f;
    struct qmp *q = connect_fake(script, n, &f);
    assert_int_equal(qmp_handshake(q, qmp_deadline(LONG_MS)), UVM_E_HYPERVISOR);
    assert_error_contains("QMP 'vm1'");
    assert_error_contains("greeting");
    assert_true(qmp_broken(q));
    /* and it stays failed */
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_error_contains("greeting");
    qmp_free(q);
    finish_ok(f);
}

static void
test_bad_greeting(void **state)
{
    static const struct fake_qmp_step not_qmp[] = {FAKE_QMP_GREETING("{'hello':'world'}")};
    static const struct fake_qmp_step not_json[] = {FAKE_QMP_GREETING("SSH-2.0-OpenSSH")};
    static const struct fake_qmp_step array[] = {FAKE_QMP_GREETING("[{'QMP':{}}]")};
    check_bad_greeting(not_qmp, ARRAY_SIZE(not_qmp));
    check_bad_greeting(not_json, ARRAY_SIZE(not_json));
    check_bad_greeting(array, ARRAY_SIZE(array));
}

static void
test_greeting_timeout(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct qmp *q = qmp_new(sv[0], "vm1");
    assert_int_equal(qmp_handshake(q, qmp_deadline(SHORT_MS)), UVM_E_TIMEOUT);
    assert_error_contains("greeting");
    assert_false(qmp_broken(q));
    qmp_free(q);
    close(sv[1]);
}

static void
test_capabilities_error(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_CMD("{'execute':'qmp_capabilities'}",
                     FAKE_QMP_ERROR("CommandNotFound", "no capabilities today")),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT(script, &f);
    assert_int_equal(qmp_handshake(q, qmp_deadline(LONG_MS)), UVM_E_HYPERVISOR);
    assert_string_equal(uvm_last_error(), "QMP 'vm1': qmp_capabilities: no capabilities today");
    qmp_free(q);
    finish_ok(f);
}

/* ---- commands ---------------------------------------------------------------------------- */

static void
test_command_return(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD("{'execute':'query-status'}",
                     "{'return':{'status':'running','singlestep':false,'running':true}}"),
        FAKE_QMP_CMD("{'execute':'stop'}", FAKE_QMP_OK),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *reply = NULL;
    assert_int_equal(qmp_execute(q, "query-status", NULL, &reply, qmp_deadline(LONG_MS)), 0);
    assert_json(reply, "{\"status\":\"running\",\"singlestep\":false,\"running\":true}");
    json_decref(reply);
    assert_int_equal(qmp_execute(q, "stop", NULL, NULL, qmp_deadline(LONG_MS)), 0);
    qmp_free(q);
    finish_ok(f);
}

static void
test_command_error(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD("{'execute':'device_add','arguments':{'driver':'scsi-hd','id':'disk0',"
                     "'drive':'drive0'}}",
                     FAKE_QMP_ERROR("GenericError", "Duplicate device ID \\'disk0\\' for device")),
        FAKE_QMP_CMD("{'execute':'query-status'}", "{'return':{'status':'running'}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *args = J("{\"driver\":\"scsi-hd\",\"id\":\"disk0\",\"drive\":\"drive0\"}");
    json_t *reply = (json_t *)&reply; /* must be reset */
    assert_int_equal(qmp_execute(q, "device_add", args, &reply, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_null(reply);
    assert_string_equal(uvm_last_error(),
                        "QMP 'vm1': device_add: Duplicate device ID 'disk0' for device");
    assert_true(log_contains("device_add failed with class GenericError"));
    assert_false(qmp_broken(q));
    json_decref(args);

    /* an error reply leaves the client usable */
    assert_int_equal(qmp_execute(q, "query-status", NULL, &reply, qmp_deadline(LONG_MS)), 0);
    assert_json(reply, "{\"status\":\"running\"}");
    json_decref(reply);
    qmp_free(q);
    finish_ok(f);
}

static void
test_command_stream(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD("{'execute':'blockdev-add','arguments':{'node-name':'drive0','driver':'raw',"
                     "'read-only':true,'file':{'driver':'file','filename':'/l/a.vhd'}}}",
                     FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'device_add','arguments':{'driver':'scsi-hd','id':'disk0',"
                     "'drive':'drive0','bus':'scsi0.0','scsi-id':0,'lun':3}}",
                     FAKE_QMP_OK),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *bd = J("{\"driver\":\"raw\",\"node-name\":\"drive0\",\"read-only\":true,"
                   "\"file\":{\"filename\":\"/l/a.vhd\",\"driver\":\"file\"}}");
    json_t *dev = J("{\"driver\":\"scsi-hd\",\"id\":\"disk0\",\"drive\":\"drive0\","
                    "\"bus\":\"scsi0.0\",\"scsi-id\":0,\"lun\":3}");
    assert_int_equal(qmp_execute(q, "blockdev-add", bd, NULL, qmp_deadline(LONG_MS)), 0);
    assert_int_equal(qmp_execute(q, "device_add", dev, NULL, qmp_deadline(LONG_MS)), 0);
    /* args are borrowed: unchanged (no "id" leaked into them) */
    assert_string_equal(json_string_value(json_object_get(dev, "id")), "disk0");
    assert_int_equal(json_object_size(dev), 6);
    json_decref(bd);
    json_decref(dev);
    qmp_free(q);

    char *failure = NULL;
    assert_int_equal(fake_qmp_finish(f, &failure), 0);
    static const char *const want[] = {
        "{'execute':'qmp_capabilities'}",
        "{'execute':'blockdev-add','arguments':{'node-name':'drive0','driver':'raw',"
        "'read-only':true,'file':{'driver':'file','filename':'/l/a.vhd'}}}",
        "{'execute':'device_add','arguments':{'driver':'scsi-hd','id':'disk0','drive':'drive0',"
        "'bus':'scsi0.0','scsi-id':0,'lun':3}}",
    };
    int r = fake_qmp_check_commands(f, want, ARRAY_SIZE(want), &failure);
    if (r)
        print_error("%s", failure);
    assert_int_equal(r, 0);
    /* the recorded stream is canonical JSON: sorted keys, no id */
    size_t n = 0;
    const char *const *cmds = fake_qmp_commands(f, &n);
    assert_int_equal(n, 3);
    assert_string_equal(cmds[0], "{\"execute\":\"qmp_capabilities\"}");
    /* a different expectation is reported */
    static const char *const wrong[] = {"{'execute':'qmp_capabilities'}"};
    assert_int_equal(fake_qmp_check_commands(f, wrong, ARRAY_SIZE(wrong), &failure), -1);
    assert_non_null(strstr(failure, "command 1: expected (nothing)"));
    free(failure);
    fake_qmp_free(f);
    assert_true(log_contains("QMP send: {\"execute\":\"device_add\""));
}

static void
test_fake_reports_mismatch(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD("{'execute':'device_del','arguments':{'id':'disk1'}}", FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'blockdev-del','arguments':{'node-name':'drive1'}}", FAKE_QMP_OK),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *args = J("{\"id\":\"disk2\"}");
    assert_int_equal(qmp_execute(q, "device_del", args, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_error_contains("fake-qmp: unexpected command");
    json_decref(args);
    qmp_free(q);

    char *failure = NULL;
    assert_int_equal(fake_qmp_finish(f, &failure), -1);
    assert_non_null(failure);
    assert_non_null(strstr(failure, "step 1: expected"));
    assert_non_null(strstr(failure, "\"disk2\""));
    /* the client closed before step 2's command */
    assert_non_null(strstr(failure, "step 2: expected"));
    free(failure);
    fake_qmp_free(f);
}

static void
test_reply_without_id(void **state)
{
    /* QEMU answers a command it could not parse without an id: it belongs to the pending one */
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        FAKE_QMP_RAW_STR("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse "
                         "error, missing value\"}}\r\n"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_string_equal(uvm_last_error(),
                        "QMP 'vm1': query-status: JSON parse error, missing value");
    qmp_free(q);
    finish_ok(f);
}

static void
test_bad_args(void **state)
{
    static const struct fake_qmp_step script[] = {FAKE_QMP_HANDSHAKE()};
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *arr = json_array();
    assert_int_equal(qmp_execute(q, "device_add", arr, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_INVALID_ARGUMENT);
    assert_int_equal(qmp_wait_event(q, "X", arr, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_INVALID_ARGUMENT);
    json_decref(arr);
    qmp_free(q);
    finish_ok(f);
}

/* ---- fds --------------------------------------------------------------------------------- */

struct fd_seen {
    char command[256];
    char data[64]; /* what the peer read from the fd */
    unsigned count;
};

static void
read_passed_fd(void *opaque, const char *command, int fd)
{
    struct fd_seen *seen = opaque;
    seen->count++;
    snprintf(seen->command, sizeof(seen->command), "%s", command);
    ssize_t n = read(fd, seen->data, sizeof(seen->data) - 1);
    seen->data[n > 0 ? n : 0] = '\0';
}

/* A batch goes out back to back and gets every reply, in order: each command's outcome, the
 * first failure's message. */
static void
test_batch(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD("{'execute':'object-add','arguments':{'id':'m0'}}",
                     FAKE_QMP_ERROR("GenericError", "first failure")),
        FAKE_QMP_CMD("{'execute':'device_add','arguments':{'id':'d0'}}",
                     FAKE_QMP_ERROR("GenericError", "follows from it")),
        FAKE_QMP_CMD("{'execute':'query-status'}", "{'return':{'status':'running'}}"),
        FAKE_QMP_CMD("{'execute':'query-status'}", "{'return':{'status':'paused'}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *a0 = J("{\"id\":\"m0\"}"), *a1 = J("{\"id\":\"d0\"}");
    struct qmp_cmd cmds[2] = {{"object-add", a0, -1, NULL, 0}, {"device_add", a1, -1, NULL, 0}};
    assert_int_equal(qmp_execute_batch(q, cmds, 2, qmp_deadline(LONG_MS)), UVM_E_HYPERVISOR);
    assert_int_equal(cmds[0].rc, UVM_E_HYPERVISOR);
    assert_int_equal(cmds[1].rc, UVM_E_HYPERVISOR);
    assert_non_null(strstr(uvm_last_error(), "object-add: first failure"));
    json_t *r0 = NULL, *r1 = NULL;
    struct qmp_cmd ok[2] = {{"query-status", NULL, -1, &r0, 0}, {"query-status", NULL, -1, &r1, 0}};
    assert_int_equal(qmp_execute_batch(q, ok, 2, qmp_deadline(LONG_MS)), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "status")), "running");
    assert_string_equal(json_string_value(json_object_get(r1, "status")), "paused");
    assert_int_equal(qmp_execute_batch(q, ok, 0, qmp_deadline(LONG_MS)), UVM_E_INVALID_ARGUMENT);
    json_decref(r0);
    json_decref(r1);
    json_decref(a0);
    json_decref(a1);
    qmp_free(q);
    finish_ok(f);
}

static void
test_execute_fd_delivers(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_FD("{'execute':'getfd','arguments':{'fdname':'fd-x'}}", FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'query-status'}", "{'return':{'status':'running'}}"),
    };
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(write(p[1], "through the socket", 18), 18);
    close(p[1]);
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    struct fd_seen seen = {0};
    fake_qmp_set_fd_hook(f, read_passed_fd, &seen);
    json_t *args = J("{\"fdname\":\"fd-x\"}");
    assert_int_equal(qmp_execute_fd(q, "getfd", args, p[0], NULL, qmp_deadline(LONG_MS)), 0);
    json_decref(args);
    /* the peer read from its copy; the caller's fd is still the caller's */
    assert_int_equal(seen.count, 1);
    assert_string_equal(seen.data, "through the socket");
    assert_string_equal(seen.command,
                        "{\"arguments\":{\"fdname\":\"fd-x\"},\"execute\":\"getfd\"}");
    assert_true(fcntl(p[0], F_GETFD) >= 0);
    close(p[0]);
    /* fd -1 is qmp_execute: the fake fails a command that brings an fd it did not expect */
    assert_int_equal(qmp_execute_fd(q, "query-status", NULL, -1, NULL, qmp_deadline(LONG_MS)), 0);
    qmp_free(q);
    finish_ok(f);
    assert_true(log_contains("QMP send with an fd: {\"execute\":\"getfd\""));
}

/* The fake peer holds a script to its fd expectations, both ways. */
static void
test_fake_checks_fds(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_FD("{'execute':'getfd','arguments':{'fdname':'a'}}", FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'getfd','arguments':{'fdname':'b'}}", FAKE_QMP_OK),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *a = J("{\"fdname\":\"a\"}"), *b = J("{\"fdname\":\"b\"}");
    assert_int_equal(qmp_execute(q, "getfd", a, NULL, qmp_deadline(LONG_MS)), UVM_E_HYPERVISOR);
    assert_int_equal(qmp_execute_fd(q, "getfd", b, 0, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    json_decref(a);
    json_decref(b);
    qmp_free(q);
    char *failure = NULL;
    assert_int_equal(fake_qmp_finish(f, &failure), -1);
    assert_non_null(strstr(failure, "with one fd, got 0 fds"));
    assert_non_null(strstr(failure, "with no fd, got 1 fds"));
    free(failure);
    fake_qmp_free(f);
}

static void
test_fd_helpers(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_FD("{'execute':'add-fd'}", "{'return':{'fdset-id':3,'fd':27}}"),
        FAKE_QMP_CMD("{'execute':'remove-fd','arguments':{'fdset-id':3}}", FAKE_QMP_OK),
        FAKE_QMP_CMD_FD("{'execute':'getfd','arguments':{'fdname':'fd-net0'}}", FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'closefd','arguments':{'fdname':'fd-net0'}}",
                     FAKE_QMP_ERROR("GenericError",
                                    "File descriptor named \\'fd-net0\\' not found")),
        FAKE_QMP_CMD_FD("{'execute':'add-fd'}",
                        FAKE_QMP_ERROR("GenericError",
                                       "No file descriptor supplied via SCM_RIGHTS")),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    int set = -1, qfd = -1;
    assert_int_equal(qmp_add_fd(q, fd, &set, &qfd, qmp_deadline(LONG_MS)), 0);
    assert_int_equal(set, 3);
    assert_int_equal(qfd, 27);
    assert_int_equal(qmp_remove_fd(q, set, qmp_deadline(LONG_MS)), 0);
    assert_int_equal(qmp_getfd(q, fd, "fd-net0", qmp_deadline(LONG_MS)), 0);
    assert_int_equal(qmp_closefd(q, "fd-net0", qmp_deadline(LONG_MS)), UVM_E_HYPERVISOR);
    assert_error_contains("closefd: File descriptor named 'fd-net0' not found");
    assert_int_equal(qmp_add_fd(q, fd, &set, NULL, qmp_deadline(LONG_MS)), UVM_E_HYPERVISOR);
    assert_int_equal(set, -1);
    /* nothing to pass: refused before anything is sent */
    assert_int_equal(qmp_add_fd(q, -1, &set, &qfd, qmp_deadline(LONG_MS)), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(qfd, -1);
    assert_int_equal(qmp_getfd(q, -1, "x", qmp_deadline(LONG_MS)), UVM_E_INVALID_ARGUMENT);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* borrowed throughout */
    close(fd);
    qmp_free(q);
    finish_ok(f);
}

/* add-fd replies that do not say where the fd went: UVM_E_PROTOCOL; a set whose id is known is
 * removed again, so QEMU is not left holding the fd. */
static void
test_add_fd_bad_replies(void **state)
{
    static const struct {
        const char *reply;
        const char *missing; /* the member named in the message */
        bool removes;        /* remove-fd of set 5 follows */
    } cases[] = {
        {"{'return':{}}", "fdset-id", false},
        {"{'return':{'fd':9}}", "fdset-id", false},
        {"{'return':{'fdset-id':5}}", "fd", true},
        {"{'return':{'fdset-id':-1,'fd':9}}", "fdset-id", false},
        {"{'return':{'fdset-id':'5','fd':9}}", "fdset-id", false},
        {"{'return':{'fdset-id':5.0,'fd':9}}", "fdset-id", false},
        {"{'return':{'fdset-id':2147483648,'fd':9}}", "fdset-id", false},
        {"{'return':{'fdset-id':5,'fd':-2}}", "fd", true},
        {"{'return':{'fdset-id':5,'fd':null}}", "fd", true},
        {"{'return':{'fdset-id':5,'fd':'9'}}", "fd", true},
        {"{'return':[5,9]}", "fdset-id", false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct fake_qmp_step script[] = {
            FAKE_QMP_HANDSHAKE(),
            FAKE_QMP_CMD_FD("{'execute':'add-fd'}", cases[i].reply),
            FAKE_QMP_CMD("{'execute':'remove-fd','arguments':{'fdset-id':5}}", FAKE_QMP_OK),
        };
        struct fake_qmp *f;
        struct qmp *q = connect_handshake(script, cases[i].removes ? 3 : 2, &f);
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int set = 99, qfd = 99;
        int rc = qmp_add_fd(q, fd, &set, &qfd, qmp_deadline(LONG_MS));
        if (rc != UVM_E_PROTOCOL)
            fail_msg("reply %s: %d (%s)", cases[i].reply, rc, uvm_last_error());
        char want[64];
        snprintf(want, sizeof(want), "add-fd: the reply has no non-negative integer \"%s\"",
                 cases[i].missing);
        assert_error_contains(want);
        assert_int_equal(set, -1);
        assert_int_equal(qfd, -1);
        assert_false(qmp_broken(q));
        close(fd);
        qmp_free(q);
        finish_ok(f);
    }
}

/* ---- events ------------------------------------------------------------------------------ */

static void
test_events_before_reply(void **state)
{
    /* QEMU 7.2 sends DEVICE_DELETED for the virtio backend (no "device") before the device's */
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'device_del','arguments':{'id':'disk1'}}"),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'path':"
                       "'/machine/peripheral/disk1/virtio-backend'}}"),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'device':'disk1','path':"
                       "'/machine/peripheral/disk1'}}"),
        FAKE_QMP_EVENT("{'event':'RESUME'}"),
        FAKE_QMP_REPLY(FAKE_QMP_OK),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *args = J("{\"id\":\"disk1\"}");
    assert_int_equal(qmp_execute(q, "device_del", args, NULL, qmp_deadline(LONG_MS)), 0);
    json_decref(args);

    json_t *data = NULL;
    json_t *match = J("{\"device\":\"disk1\"}");
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", match, &data, qmp_deadline(LONG_MS)), 0);
    assert_json(data, "{\"device\":\"disk1\",\"path\":\"/machine/peripheral/disk1\"}");
    json_decref(data);
    /* consumed: a second wait for the same device times out */
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", match, NULL, qmp_deadline(SHORT_MS)),
                     UVM_E_TIMEOUT);
    assert_error_contains("DEVICE_DELETED");
    json_decref(match);

    /* the backend's event is still queued; an event without data gives {} */
    assert_int_equal(qmp_wait_event(q, "RESUME", NULL, &data, qmp_deadline(LONG_MS)), 0);
    assert_json(data, "{}");
    json_decref(data);
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", NULL, &data, qmp_deadline(LONG_MS)), 0);
    assert_json(data, "{\"path\":\"/machine/peripheral/disk1/virtio-backend\"}");
    json_decref(data);
    assert_false(qmp_broken(q));
    qmp_free(q);
    finish_ok(f);
}

static void
test_event_later(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD("{'execute':'device_del','arguments':{'id':'net0'}}", FAKE_QMP_OK),
        FAKE_QMP_SLEEP(50),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'path':'/machine/peripheral/net0/"
                       "virtio-backend'}}"),
        FAKE_QMP_SLEEP(50),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'device':'net0','path':"
                       "'/machine/peripheral/net0'}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *args = J("{\"id\":\"net0\"}");
    assert_int_equal(qmp_execute(q, "device_del", args, NULL, qmp_deadline(LONG_MS)), 0);
    json_decref(args);
    json_t *match = J("{\"device\":\"net0\"}");
    json_t *data = NULL;
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", match, &data, qmp_deadline(LONG_MS)), 0);
    assert_string_equal(json_string_value(json_object_get(data, "path")),
                        "/machine/peripheral/net0");
    json_decref(data);
    json_decref(match);
    qmp_free(q);
    finish_ok(f);
}

struct waiter {
    struct qmp *q;
    const char *event;
    int rc;
    json_t *data;
};

static void *
waiter_main(void *opaque)
{
    struct waiter *w = opaque;
    w->rc = qmp_wait_event(w->q, w->event, NULL, &w->data, qmp_deadline(LONG_MS));
    return NULL;
}

static void
test_event_waiter_does_not_block_commands(void **state)
{
    /* One thread waits for an event (and reads the socket) while another runs commands: the
     * replies it reads are handed over, and the event it waits for comes last. */
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        FAKE_QMP_SLEEP(50),
        FAKE_QMP_REPLY("{'return':{'status':'running'}}"),
        FAKE_QMP_CMD("{'execute':'stop'}", FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'STOP'}"),
        FAKE_QMP_CMD("{'execute':'cont'}", FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'SHUTDOWN','data':{'guest':true}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    struct waiter w = {.q = q, .event = "SHUTDOWN"};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    json_t *reply = NULL;
    assert_int_equal(qmp_execute(q, "query-status", NULL, &reply, qmp_deadline(LONG_MS)), 0);
    assert_json(reply, "{\"status\":\"running\"}");
    json_decref(reply);
    assert_int_equal(qmp_execute(q, "stop", NULL, NULL, qmp_deadline(LONG_MS)), 0);
    assert_int_equal(qmp_wait_event(q, "STOP", NULL, NULL, qmp_deadline(LONG_MS)), 0);
    assert_int_equal(qmp_execute(q, "cont", NULL, NULL, qmp_deadline(LONG_MS)), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    assert_json(w.data, "{\"guest\":true}");
    json_decref(w.data);
    qmp_free(q);
    finish_ok(f);
}

static void
test_event_queue_overflow(void **state)
{
    struct fake_qmp_step script[QMP_MAX_EVENTS + 4];
    char *texts[QMP_MAX_EVENTS + 1];
    size_t n = 0;
    script[n++] = (struct fake_qmp_step)FAKE_QMP_HANDSHAKE();
    script[n++] = (struct fake_qmp_step)FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}");
    for (unsigned i = 0; i <= QMP_MAX_EVENTS; i++) {
        texts[i] = xasprintf("{'event':'BLOCK_JOB_READY','data':{'seq':%u}}", i);
        script[n++] = (struct fake_qmp_step)FAKE_QMP_EVENT(texts[i]);
    }
    script[n++] = (struct fake_qmp_step)FAKE_QMP_REPLY(FAKE_QMP_OK);
    struct fake_qmp *f;
    struct qmp *q = connect_handshake(script, n, &f);
    for (unsigned i = 0; i <= QMP_MAX_EVENTS; i++)
        free(texts[i]);
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)), 0);

    /* the oldest was dropped (with a warning), the newest kept */
    assert_true(log_contains("event queue full, dropping BLOCK_JOB_READY"));
    json_t *first = J("{\"seq\":0}"), *second = J("{\"seq\":1}");
    char last_text[32];
    snprintf(last_text, sizeof(last_text), "{\"seq\":%u}", QMP_MAX_EVENTS);
    json_t *last = J(last_text);
    assert_int_equal(qmp_wait_event(q, "BLOCK_JOB_READY", first, NULL, qmp_deadline(SHORT_MS)),
                     UVM_E_TIMEOUT);
    assert_int_equal(qmp_wait_event(q, "BLOCK_JOB_READY", last, NULL, qmp_deadline(LONG_MS)), 0);
    json_t *data = NULL;
    assert_int_equal(qmp_wait_event(q, "BLOCK_JOB_READY", NULL, &data, qmp_deadline(LONG_MS)), 0);
    assert_true(json_equal(data, second)); /* queue order is arrival order */
    json_decref(data);
    json_decref(first);
    json_decref(second);
    json_decref(last);
    qmp_free(q);
    finish_ok(f);
}

static void
test_stale_device_deleted(void **state)
{
    /* disk1 was unplugged before and its id reused; the old device's DEVICE_DELETED events are
     * still queued when disk1 is unplugged again: they must not end the new wait. */
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'device_add','arguments':{'id':'disk1'}}"),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'path':"
                       "'/machine/peripheral/disk1/virtio-backend'}}"),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'device':'disk1','path':"
                       "'/machine/peripheral/disk1'}}"),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'device':'disk10','path':"
                       "'/machine/peripheral/disk10'}}"),
        FAKE_QMP_REPLY(FAKE_QMP_OK),
        FAKE_QMP_CMD("{'execute':'device_del','arguments':{'id':'disk1'}}", FAKE_QMP_OK),
        /* the new disk1's event only comes after the next command */
        FAKE_QMP_CMD("{'execute':'query-status'}", FAKE_QMP_OK),
        FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'device':'disk1','path':"
                       "'/machine/peripheral/disk1','fresh':true}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *args = J("{\"id\":\"disk1\"}");
    assert_int_equal(qmp_execute(q, "device_add", args, NULL, qmp_deadline(LONG_MS)), 0);
    assert_int_equal(qmp_execute(q, "device_del", args, NULL, qmp_deadline(LONG_MS)), 0);
    json_decref(args);

    json_t *match = J("{\"device\":\"disk1\"}");
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", match, NULL, qmp_deadline(SHORT_MS)),
                     UVM_E_TIMEOUT);
    assert_true(log_contains("dropping a stale DEVICE_DELETED of 'disk1'"));
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)), 0);
    json_t *data = NULL;
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", match, &data, qmp_deadline(LONG_MS)), 0);
    assert_true(json_is_true(json_object_get(data, "fresh")));
    json_decref(data);
    json_decref(match);
    /* another device's event (an id that only starts like it) is kept; nothing else is left */
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", NULL, &data, qmp_deadline(LONG_MS)), 0);
    assert_json(data, "{\"device\":\"disk10\",\"path\":\"/machine/peripheral/disk10\"}");
    json_decref(data);
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", NULL, NULL, qmp_deadline(SHORT_MS)),
                     UVM_E_TIMEOUT);
    qmp_free(q);
    finish_ok(f);
}

#define FLOOD_LINES 100000u

static void
test_line_flood_linear(void **state)
{
    /* 10^5 tiny events in one burst, then the one a waiter wants. */
    static const char line[] = "{\"event\":\"X\"}\r\n", end[] = "{\"event\":\"END\"}\r\n";
    size_t n = sizeof(line) - 1, len = FLOOD_LINES * n + sizeof(end) - 1;
    char *raw = xmalloc(len);
    for (size_t i = 0; i < FLOOD_LINES; i++)
        memcpy(raw + i * n, line, n);
    memcpy(raw + FLOOD_LINES * n, end, sizeof(end) - 1);
    struct fake_qmp_step script[] = {FAKE_QMP_HANDSHAKE(), FAKE_QMP_RAW(raw, len)};
    uvm_set_log_handler(capture_log, NULL, UVM_LOG_WARNING); /* not 10^5 debug lines */
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    free(raw);
    assert_int_equal(qmp_wait_event(q, "END", NULL, NULL, qmp_deadline(60000)), 0);
    /* a memmove per line would move ~ lines per read * read size / 2 bytes per read */
    assert_true(qmp_reader_moved(q) <= len);
    assert_true(log_contains("event queue full, dropping X"));
    uvm_set_log_handler(capture_log, NULL, UVM_LOG_DEBUG);
    qmp_free(q);
    finish_ok(f);
}

/* ---- failures ---------------------------------------------------------------------------- */

static void
assert_fails_fast(struct qmp *q, const char *message)
{
    assert_true(qmp_broken(q));
    uvm_error_clear();
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_string_equal(uvm_last_error(), message);
    uvm_error_clear();
    assert_int_equal(qmp_wait_event(q, "SHUTDOWN", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_string_equal(uvm_last_error(), message);
    assert_int_equal(qmp_handshake(q, qmp_deadline(LONG_MS)), UVM_E_HYPERVISOR);
}

static void
test_hangup_mid_command(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'device_add','arguments':{'id':'d'}}"),
        FAKE_QMP_HANGUP(),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *args = J("{\"id\":\"d\"}");
    assert_int_equal(qmp_execute(q, "device_add", args, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    json_decref(args);
    assert_string_equal(uvm_last_error(), "QMP 'vm1': connection closed");
    assert_fails_fast(q, "QMP 'vm1': connection closed");
    qmp_free(q);
    finish_ok(f);
}

static void
test_hangup_no_sigpipe(void **state)
{
    /* The peer is gone before we write: send() gets EPIPE, which must not raise SIGPIPE. */
    static const struct fake_qmp_step script[] = {FAKE_QMP_HANDSHAKE(), FAKE_QMP_HANGUP()};
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    finish_ok(f); /* joined: the peer's end is closed */
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_string_equal(uvm_last_error(), "QMP 'vm1': connection closed");
    assert_fails_fast(q, "QMP 'vm1': connection closed");
    qmp_free(q);
}

static void
test_timeout_silent_peer(void **state)
{
    static const struct fake_qmp_step script[] = {FAKE_QMP_HANDSHAKE(), FAKE_QMP_SILENT()};
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(SHORT_MS)),
                     UVM_E_TIMEOUT);
    assert_string_equal(uvm_last_error(),
                        "QMP 'vm1': query-status: timed out waiting for the reply");
    assert_false(qmp_broken(q)); /* a late reply would be dropped by its id */
    assert_int_equal(qmp_wait_event(q, "DEVICE_DELETED", NULL, NULL, qmp_deadline(SHORT_MS)),
                     UVM_E_TIMEOUT);
    assert_string_equal(uvm_last_error(), "QMP 'vm1': timed out waiting for event DEVICE_DELETED");
    /* a deadline already past fails without waiting */
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(0)), UVM_E_TIMEOUT);
    qmp_free(q);
    finish_ok(f);
}

static void
test_late_reply_dropped(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        /* the client timed out and sent the next command: now answer both */
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-name'}"),
        FAKE_QMP_REPLY("{'return':{'for':'query-status'}}"),
        FAKE_QMP_REPLY("{'return':{'for':'query-name'}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(SHORT_MS)),
                     UVM_E_TIMEOUT);
    json_t *reply = NULL;
    assert_int_equal(qmp_execute(q, "query-name", NULL, &reply, qmp_deadline(LONG_MS)), 0);
    assert_json(reply, "{\"for\":\"query-name\"}");
    json_decref(reply);
    assert_true(log_contains("dropping reply with unknown id \"uvm-2\""));
    qmp_free(q);
    finish_ok(f);
}

static void
test_garbage_line(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        FAKE_QMP_RAW_STR("\x01\x02 this is not JSON }\r\n"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_error_contains("QMP 'vm1': protocol error: invalid JSON");
    char *msg = xstrdup(uvm_last_error());
    assert_fails_fast(q, msg);
    free(msg);
    qmp_free(q);
    finish_ok(f);
}

static void
test_not_an_object(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        FAKE_QMP_RAW_STR("[1,2,3]\r\n"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_error_contains("not a JSON object");
    assert_true(qmp_broken(q));
    qmp_free(q);
    finish_ok(f);
}

/* An event whose data is not an object (a string here) is a protocol error: it is never handed
 * out to a waiter (found by the qmp fuzz target). */
static void
test_event_data_not_an_object(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_RAW_STR("{\"event\":\"SHUTDOWN\",\"data\":\"device\",\"timestamp\":"
                         "{\"seconds\":1,\"microseconds\":2}}\r\n"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *data = NULL;
    assert_int_equal(qmp_wait_event(q, "SHUTDOWN", NULL, &data, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_null(data);
    assert_error_contains("data is not a JSON object");
    assert_true(qmp_broken(q));
    qmp_free(q);
    finish_ok(f);
}

/* A reply line for command `id` that is exactly `len` bytes long, CRLF not counted. */
static char *
reply_of_length(const char *id, size_t len)
{
    char *head = xasprintf("{\"id\":\"%s\",\"return\":\"", id);
    size_t hl = strlen(head), tail = 2; /* "} */
    char *line = xmalloc(len + 3);
    memcpy(line, head, hl);
    memset(line + hl, 'a', len - hl - tail);
    memcpy(line + len - tail, "\"}\r\n", 4);
    line[len + 2] = '\0';
    free(head);
    return line;
}

static void
test_oversized_line(void **state)
{
    char *line = reply_of_length("uvm-2", QMP_MAX_LINE + 1);
    struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        FAKE_QMP_RAW(line, QMP_MAX_LINE + 3),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    free(line);
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    char *want = xasprintf("QMP 'vm1': protocol error: line longer than %u bytes", QMP_MAX_LINE);
    assert_string_equal(uvm_last_error(), want);
    assert_fails_fast(q, want);
    free(want);
    qmp_free(q);
    finish_ok(f);
}

static void
test_oversized_line_without_newline(void **state)
{
    /* the peer never ends the line: the client must give up after QMP_MAX_LINE, not buffer on */
    size_t len = 3u * QMP_MAX_LINE;
    char *blob = xmalloc(len);
    memset(blob, ' ', len);
    struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        FAKE_QMP_RAW(blob, len),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    free(blob);
    assert_int_equal(qmp_execute(q, "query-status", NULL, NULL, qmp_deadline(LONG_MS)),
                     UVM_E_HYPERVISOR);
    assert_error_contains("line longer than");
    qmp_free(q);
    finish_ok(f);
}

static void
test_max_line_accepted(void **state)
{
    char *line = reply_of_length("uvm-2", QMP_MAX_LINE);
    struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        FAKE_QMP_RAW(line, QMP_MAX_LINE + 2),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    free(line);
    json_t *reply = NULL;
    assert_int_equal(qmp_execute(q, "query-status", NULL, &reply, qmp_deadline(LONG_MS)), 0);
    assert_true(json_is_string(reply));
    assert_int_equal(json_string_length(reply),
                     QMP_MAX_LINE - strlen("{\"id\":\"uvm-2\",\"return\":\"\"}"));
    json_decref(reply);
    qmp_free(q);
    finish_ok(f);
}

static void
test_unknown_id_ignored(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_CMD_NOREPLY("{'execute':'query-status'}"),
        FAKE_QMP_RAW_STR("{\"return\": {\"status\": \"bogus\"}, \"id\": \"libvirt-7\"}\r\n"),
        FAKE_QMP_RAW_STR("{\"return\": {\"status\": \"bogus\"}, \"id\": 42}\r\n"),
        FAKE_QMP_REPLY("{'return':{'status':'running'}}"),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    json_t *reply = NULL;
    assert_int_equal(qmp_execute(q, "query-status", NULL, &reply, qmp_deadline(LONG_MS)), 0);
    assert_json(reply, "{\"status\":\"running\"}");
    json_decref(reply);
    assert_true(log_contains("dropping reply with unknown id \"libvirt-7\""));
    assert_true(log_contains("dropping reply with unknown id 42"));
    assert_false(qmp_broken(q));
    qmp_free(q);
    finish_ok(f);
}

/* ---- threads ----------------------------------------------------------------------------- */

#define N_THREADS 8
#define N_PER_THREAD 50

struct worker {
    struct qmp *q;
    unsigned index;
    unsigned failures;
};

static void *
worker_main(void *opaque)
{
    struct worker *w = opaque;
    for (unsigned i = 0; i < N_PER_THREAD; i++) {
        /* a long-ish argument so that interleaved writes would show */
        char pad[512];
        memset(pad, 'a' + (char)w->index, sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = '\0';
        json_t *args = json_pack("{s:I, s:I, s:s}", "thread", (json_int_t)w->index, "seq",
                                 (json_int_t)i, "pad", pad);
        json_t *reply = NULL;
        int r = qmp_execute(w->q, "echo", args, &reply, qmp_deadline(LONG_MS));
        if (r != 0 || !json_equal(reply, args))
            w->failures++;
        json_decref(reply);
        json_decref(args);
    }
    return NULL;
}

static void
test_concurrent_commands(void **state)
{
    static const struct fake_qmp_step script[] = {
        FAKE_QMP_HANDSHAKE(),
        FAKE_QMP_ECHO(N_THREADS * N_PER_THREAD),
    };
    struct fake_qmp *f;
    struct qmp *q = CONNECT_HS(script, &f);
    struct worker w[N_THREADS];
    pthread_t t[N_THREADS];
    for (unsigned i = 0; i < N_THREADS; i++) {
        w[i] = (struct worker){.q = q, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (unsigned i = 0; i < N_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    qmp_free(q);

    char *failure = NULL;
    int r = fake_qmp_finish(f, &failure);
    if (r)
        print_error("%s", failure);
    assert_int_equal(r, 0);
    size_t n = 0;
    fake_qmp_commands(f, &n);
    assert_int_equal(n, 1 + N_THREADS * N_PER_THREAD);
    fake_qmp_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_handshake_ok, setup),
        cmocka_unit_test_setup(test_bad_greeting, setup),
        cmocka_unit_test_setup(test_greeting_timeout, setup),
        cmocka_unit_test_setup(test_capabilities_error, setup),
        cmocka_unit_test_setup(test_command_return, setup),
        cmocka_unit_test_setup(test_command_error, setup),
        cmocka_unit_test_setup(test_command_stream, setup),
        cmocka_unit_test_setup(test_fake_reports_mismatch, setup),
        cmocka_unit_test_setup(test_reply_without_id, setup),
        cmocka_unit_test_setup(test_bad_args, setup),
        cmocka_unit_test_setup(test_events_before_reply, setup),
        cmocka_unit_test_setup(test_event_later, setup),
        cmocka_unit_test_setup(test_event_waiter_does_not_block_commands, setup),
        cmocka_unit_test_setup(test_event_queue_overflow, setup),
        cmocka_unit_test_setup(test_stale_device_deleted, setup),
        cmocka_unit_test_setup(test_line_flood_linear, setup),
        cmocka_unit_test_setup(test_hangup_mid_command, setup),
        cmocka_unit_test_setup(test_hangup_no_sigpipe, setup),
        cmocka_unit_test_setup(test_timeout_silent_peer, setup),
        cmocka_unit_test_setup(test_late_reply_dropped, setup),
        cmocka_unit_test_setup(test_garbage_line, setup),
        cmocka_unit_test_setup(test_not_an_object, setup),
        cmocka_unit_test_setup(test_event_data_not_an_object, setup),
        cmocka_unit_test_setup(test_oversized_line, setup),
        cmocka_unit_test_setup(test_oversized_line_without_newline, setup),
        cmocka_unit_test_setup(test_max_line_accepted, setup),
        cmocka_unit_test_setup(test_unknown_id_ignored, setup),
        cmocka_unit_test_setup(test_concurrent_commands, setup),
        cmocka_unit_test_setup(test_batch, setup),
        cmocka_unit_test_setup(test_execute_fd_delivers, setup),
        cmocka_unit_test_setup(test_fake_checks_fds, setup),
        cmocka_unit_test_setup(test_fd_helpers, setup),
        cmocka_unit_test_setup(test_add_fd_bad_replies, setup),
    };
    return cmocka_run_group_tests_name("qmp", tests, group_setup, group_teardown);
}

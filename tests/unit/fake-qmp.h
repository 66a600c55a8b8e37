/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A scripted fake QMP peer (in the spirit of libvirt's tests/qemumonitortestutils.c).
 *
 * fake_qmp_start() creates a socketpair, hands one end to the test (give it to qmp_new) and
 * serves the other from a thread, one step after another:
 *
 *     static const struct fake_qmp_step script[] = {
 *         FAKE_QMP_HANDSHAKE(),
 *         FAKE_QMP_CMD("{'execute':'device_del','arguments':{'id':'disk1'}}", FAKE_QMP_OK),
 *         FAKE_QMP_EVENT("{'event':'DEVICE_DELETED','data':{'device':'disk1'}}"),
 *     };
 *     int fd;
 *     struct fake_qmp *f = fake_qmp_start(script, ARRAY_SIZE(script), &fd);
 *     ... qmp_new(fd, "vm1"), qmp_handshake(), qmp_execute(), ..., qmp_free() ...
 *     char *failure = NULL;
 *     assert_int_equal(fake_qmp_finish(f, &failure), 0);   (failure says what went wrong)
 *     fake_qmp_free(f);
 *
 * JSON texts in steps may use single quotes for strings (they are turned into double quotes;
 * write \\' for a literal quote) and are parsed when the fake starts: a malformed step aborts
 * the test. A greeting is sent first unless the script starts with FAKE_QMP_GREETING().
 *
 * Commands are compared structurally (json_equal) with their "id" removed; in an expected
 * command the string FAKE_QMP_ANY ("<any>") matches any string (a random name or MAC, which the
 * test then pins with fake_qmp_check_commands, which is exact). A mismatch, an
 * invalid command line, a command after the end of the script or a script not run to its end
 * is recorded as a failure (reported by fake_qmp_finish); a mismatched command is answered
 * with a GenericError so the test goes on. Every command received is recorded (without "id")
 * for fake_qmp_commands() / fake_qmp_check_commands().
 *
 * fds. The peer reads with recvmsg and takes the fds that come with a command (SCM_RIGHTS, as
 * QEMU does for getfd / add-fd): they are handed to the fd hook, if any, then closed. A
 * FAKE_QMP_CMD_FD step expects its command to carry exactly one fd; a FAKE_QMP_CMD step expects
 * none: either mismatch is a failure. ECHO steps take commands with or without fds.
 */
#ifndef UVM_TESTS_FAKE_QMP_H
#define UVM_TESTS_FAKE_QMP_H

#include <stdbool.h>
#include <stddef.h>

enum fake_qmp_step_kind {
    FAKE_QMP_STEP_GREETING, /* send text verbatim + CRLF (NULL text: the default greeting) */
    FAKE_QMP_STEP_EXPECT,   /* read one command, compare with text; reply unless reply==NULL */
    FAKE_QMP_STEP_REPLY,    /* answer the oldest unanswered command with reply */
    FAKE_QMP_STEP_EVENT,    /* send the event text (compacted) + CRLF */
    FAKE_QMP_STEP_RAW,      /* send raw bytes, best effort (the client may have gone) */
    FAKE_QMP_STEP_HANGUP,   /* close the peer's end */
    FAKE_QMP_STEP_SILENT,   /* stop reading and writing until fake_qmp_finish */
    FAKE_QMP_STEP_ECHO,     /* answer the next `count` commands, whatever they are, with
                               {"return": <their arguments, or {}>} */
    FAKE_QMP_STEP_SLEEP,    /* pause for `count` milliseconds */
    FAKE_QMP_STEP_QEMU,     /* answer every command from now on as QEMU would (fake-qemu.h),
                               until the test finishes: must be the last step */
};

struct fake_qmp_step {
    enum fake_qmp_step_kind kind;
    const char *text;  /* GREETING, EXPECT (the command), EVENT */
    const char *reply; /* EXPECT, REPLY: {"return": ...} or {"error": {...}}; id is added */
    const char *raw;   /* RAW */
    size_t raw_len;    /* RAW */
    unsigned count;    /* ECHO, SLEEP */
    bool fd;           /* EXPECT: the command carries one fd */
};

#define FAKE_QMP_ANY "<any>" /* in an expected command: matches any string */
#define FAKE_QMP_OK "{'return':{}}"
#define FAKE_QMP_ERROR(cls, desc) "{'error':{'class':'" cls "','desc':'" desc "'}}"

#define FAKE_QMP_GREETING(t) {.kind = FAKE_QMP_STEP_GREETING, .text = (t)}
#define FAKE_QMP_CMD(cmd, rep) {.kind = FAKE_QMP_STEP_EXPECT, .text = (cmd), .reply = (rep)}
#define FAKE_QMP_CMD_FD(cmd, rep)                                                                  \
    {.kind = FAKE_QMP_STEP_EXPECT, .text = (cmd), .reply = (rep), .fd = true}
#define FAKE_QMP_CMD_NOREPLY(cmd) {.kind = FAKE_QMP_STEP_EXPECT, .text = (cmd)}
#define FAKE_QMP_REPLY(rep) {.kind = FAKE_QMP_STEP_REPLY, .reply = (rep)}
#define FAKE_QMP_EVENT(ev) {.kind = FAKE_QMP_STEP_EVENT, .text = (ev)}
#define FAKE_QMP_RAW(bytes, len) {.kind = FAKE_QMP_STEP_RAW, .raw = (bytes), .raw_len = (len)}
#define FAKE_QMP_RAW_STR(s) FAKE_QMP_RAW(s, sizeof(s) - 1)
#define FAKE_QMP_HANGUP() {.kind = FAKE_QMP_STEP_HANGUP}
#define FAKE_QMP_SILENT() {.kind = FAKE_QMP_STEP_SILENT}
#define FAKE_QMP_ECHO(n) {.kind = FAKE_QMP_STEP_ECHO, .count = (n)}
#define FAKE_QMP_SLEEP(ms) {.kind = FAKE_QMP_STEP_SLEEP, .count = (ms)}
#define FAKE_QMP_QEMU() {.kind = FAKE_QMP_STEP_QEMU}
/* The answer to qmp_handshake()'s qmp_capabilities (after the default greeting). */
#define FAKE_QMP_HANDSHAKE() FAKE_QMP_CMD("{'execute':'qmp_capabilities'}", FAKE_QMP_OK)

struct fake_qmp;

/* Start serving `steps` (copied; n of them). *client_fd gets the test's end (owned by the
 * caller, normally handed to qmp_new). Aborts on a malformed script or a system failure. */
struct fake_qmp *fake_qmp_start(const struct fake_qmp_step *steps, size_t n, int *client_fd);

/* Stop the peer (it first runs the steps that need no input, and reads what the client has
 * already sent), join its thread. 0 when the script ran to its end without failure, else -1
 * and *failure (owned by the caller) says what went wrong. failure may be NULL. */
int fake_qmp_finish(struct fake_qmp *f, char **failure);

/* After fake_qmp_finish: the commands received, compact JSON with sorted keys, "id" removed. */
const char *const *fake_qmp_commands(const struct fake_qmp *f, size_t *n);

/* After fake_qmp_finish: 0 when the commands received equal `expected` (JSON texts, single
 * quotes allowed, compared structurally), else -1 and *failure (owned) shows the difference. */
int fake_qmp_check_commands(const struct fake_qmp *f, const char *const *expected, size_t n,
                            char **failure);

/* Have fn(opaque, command) called from the peer's thread for each command read from now on
 * (compact JSON, sorted keys, without "id"), before it is answered; fn NULL: no more calls. */
void fake_qmp_set_hook(struct fake_qmp *f, void (*fn)(void *opaque, const char *command),
                       void *opaque);

/* Have fn(opaque, command, fd) called from the peer's thread for each fd that comes with a
 * command read from now on (command as for the hook; fd borrowed: the peer closes it after the
 * call), before the command hook; fn NULL: no more calls. */
void fake_qmp_set_fd_hook(struct fake_qmp *f, void (*fn)(void *opaque, const char *command, int fd),
                          void *opaque);

/* The model of QEMU the FAKE_QMP_QEMU() step answers from (borrowed; NULL without one), for
 * fault injection and to see what QEMU holds (fake-qemu.h). */
struct fake_qemu *fake_qmp_qemu(struct fake_qmp *f);

void fake_qmp_free(struct fake_qmp *f);

struct qmp;
/* (fake-qmp-client.c) A QMP client (src/lib/qmp.h, VM id "vm1") connected to a peer serving
 * the handshake then `steps`, handshake done (a cmocka failure otherwise). */
struct qmp *fake_qmp_client(const struct fake_qmp_step *steps, size_t n, struct fake_qmp **f);

/* Free the client, stop the peer: a cmocka failure unless its script ran to its end. */
void fake_qmp_client_finish(struct qmp *q, struct fake_qmp *f);

#endif

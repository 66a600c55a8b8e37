/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "agent-answers": what the library makes of the guest agent's answers to its own
 * requests (src/lib/answer.c after src/lib/bridge.c's response handling): protocol negotiation,
 * an exec's pid, a wait's exit code, the list of containers. The guest is a thread of this target on the other end of
 * a socketpair; it answers each request with the input's payload (one bridge for the whole run:
 * a well-framed answer cannot break it).
 *
 * Input: 1 byte (bits 0-2: 0 NegotiateProtocol, 1 ExecuteProcess, 2 WaitForProcess, 3
 * GetProperties ContainerList, 4-7 the four in turn; bit 4: answer with the response type of
 * another request; bit 5: answer twice), then the payload of the response.
 * Properties: every call ends with a result or a clean UVM_E_GUEST/UVM_E_PROTOCOL message; a
 * believed answer is in range (version 4, pid 1..INT32_MAX, exit code 0..255, containers with
 * valid ids, printable states and pids in 0..INT32_MAX); every log line is clean text.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "answer.h"
#include "bridge.h"
#include "fuzz-util.h"
#include "options.h"
#include "proto.h"
#include "timeutil.h"
#include "uvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct bridge *bridge;
static int guest_fd = -1;

/* What the guest thread answers next (set before each call). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *answer;
static size_t answer_len;
static uint8_t answer_flags;

static const uint32_t types[4] = {PROTO_REQ_NEGOTIATE_PROTOCOL, PROTO_REQ_EXECUTE_PROCESS,
                                  PROTO_REQ_WAIT_PROCESS, PROTO_REQ_GET_PROPERTIES};

static void *
guest_thread(void *arg)
{
    (void)arg;
    uint8_t *frame = malloc(PROTO_MAX_MESSAGE);
    for (;;) {
        uint8_t hdr[PROTO_HEADER_SIZE];
        if (fuzz_read_exact(guest_fd, hdr, sizeof(hdr), -1) < 0)
            break;
        struct proto_header h;
        FUZZ_CHECK(proto_header_decode(hdr, &h) == 0, "bad frame from the host");
        FUZZ_CHECK(fuzz_read_exact(guest_fd, frame, h.size - PROTO_HEADER_SIZE, -1) == 0,
                   "truncated request");
        pthread_mutex_lock(&lock);
        uint32_t type = h.type;
        if (answer_flags & 0x10)
            type = type == PROTO_REQ_WAIT_PROCESS ? PROTO_REQ_EXECUTE_PROCESS
                                                  : PROTO_REQ_WAIT_PROCESS;
        fuzz_frame(frame, PROTO_RESPONSE_OF(type), h.id, answer, answer_len);
        size_t n = PROTO_HEADER_SIZE + answer_len;
        unsigned times = answer_flags & 0x20 ? 2 : 1;
        pthread_mutex_unlock(&lock);
        for (unsigned i = 0; i < times; i++)
            FUZZ_CHECK(fuzz_write_all(guest_fd, frame, n) == 0, "guest write");
    }
    free(frame);
    return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_log_check_install();
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        abort();
    guest_fd = sp[1];
    if (bridge_new(sp[0], "fuzz", false, &bridge) < 0)
        abort();
    pthread_t t;
    pthread_create(&t, NULL, guest_thread, NULL);
    pthread_detach(t);
    return 0;
}

static void
check_message(void)
{
    const char *m = uvm_last_error();
    const char *why = fuzz_text_problem(m, strlen(m), false);
    FUZZ_CHECK(!why, "error message with %s: %s", why, m);
}

/* One request, answered with the payload, and what its consumer believes. */
static void
ask(unsigned which)
{
    json_t *resp = NULL;
    int rc = bridge_call(bridge, types[which], json_object(), &resp, deadline_after_ms(10000));
    FUZZ_CHECK(rc == 0 || rc == UVM_E_GUEST || rc == UVM_E_PROTOCOL, "call: %d %s", rc,
               uvm_last_error());
    if (rc < 0) {
        check_message();
        return;
    }
    FUZZ_CHECK(json_is_object(resp) &&
                   json_integer_value(json_object_get(resp, "Result")) == 0,
               "believed a response without Result 0");
    if (which == 0) {
        struct answer_negotiate a;
        rc = answer_negotiate(resp, &a);
        FUZZ_CHECK(rc < 0 || a.version == PROTO_VERSION, "version %u", a.version);
    } else if (which == 1) {
        int pid = 0;
        rc = answer_exec(resp, &pid);
        FUZZ_CHECK(rc < 0 || pid > 0, "pid %d", pid);
    } else if (which == 2) {
        int code = -1;
        rc = answer_wait(resp, &code);
        FUZZ_CHECK(rc < 0 || (code >= 0 && code <= 255), "exit code %d", code);
    } else {
        struct uvm_container_info *list = NULL;
        size_t n = 0;
        rc = answer_container_list(resp, &list, &n);
        FUZZ_CHECK(rc == 0 || (!list && !n), "a failed list with entries");
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(options_id_valid(list[i].id), "container id '%s'", list[i].id);
            const char *why = fuzz_text_problem(list[i].state, strlen(list[i].state), false);
            FUZZ_CHECK(!why && list[i].state[0], "container state with %s", why);
            FUZZ_CHECK(list[i].init_pid >= 0, "init pid %d", list[i].init_pid);
        }
        free(list);
    }
    FUZZ_CHECK(rc == 0 || rc == UVM_E_PROTOCOL, "answer: %d", rc);
    if (rc < 0)
        check_message();
    json_decref(resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    pthread_mutex_lock(&lock);
    answer = in.data;
    answer_len = in.len < PROTO_MAX_MESSAGE - PROTO_HEADER_SIZE ? in.len
                                                                : PROTO_MAX_MESSAGE - PROTO_HEADER_SIZE;
    answer_flags = flags;
    pthread_mutex_unlock(&lock);
    unsigned which = flags & 7;
    for (unsigned i = 0; i < 4; i++)
        if (which >= 4 || which == i)
            ask(i);
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The holder protocol (docs/runtime.md): the short-lived runtime calls and the stubs talk to the
 * holder of a container over a SOCK_SEQPACKET socket in the container's state directory. One
 * packet is one message: a fixed 16-byte header (host byte order: both ends are this binary)
 * then at most RTMSG_MAX_PAYLOAD bytes of text without NUL, and only the message types that carry
 * descriptors (EXEC) carry any, exactly RTMSG_EXEC_FDS of them (SCM_RIGHTS).
 *
 *   client -> holder     START, EXEC (fds: stdin, stdout, stderr, the process JSON file),
 *                        KILL (arg: signal, flag ALL), DELETE (flag FORCE), STATE, PS
 *   stub   -> holder     ATTACH (arg: the stub's pid, payload: the process name), then SIGNAL
 *                        (arg: signal) whenever the stub gets one, and RESIZE when the window
 *                        of its terminal changed (the holder reads the size from its own copy
 *                        of the host pty)
 *   holder -> client     OK (payload: the answer: the exec's name, state JSON, ps JSON) or ERR
 *                        (arg: an rtmsg_err kind, payload: the message)
 *   holder -> stub       OK once attached, then EXIT (arg: the exit status 0..255)
 *
 * Decoding is pure, linear and strict: a wrong magic, an unknown type, a length that disagrees
 * with the packet, a flag or argument out of range for the type, a payload with NUL or of the
 * wrong shape, or a descriptor count other than the type's is refused with a message.
 */
#ifndef UVM_RUNTIME_RTMSG_H
#define UVM_RUNTIME_RTMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTMSG_MAGIC 0x31524d55u /* "UMR1" */
#define RTMSG_HDR_SIZE 16u
#define RTMSG_MAX_PAYLOAD 16384u
#define RTMSG_MAX_FDS 4u
#define RTMSG_EXEC_FDS 4u
#define RTMSG_NAME_MAX 15u /* process names: "init", "e1", ... */

enum rtmsg_type {
    RTMSG_START = 1,
    RTMSG_EXEC,
    RTMSG_KILL,
    RTMSG_DELETE,
    RTMSG_STATE,
    RTMSG_PS,
    RTMSG_ATTACH,
    RTMSG_SIGNAL,
    RTMSG_OK,
    RTMSG_ERR,
    RTMSG_EXIT,
    RTMSG_RESIZE,
    RTMSG_LAST = RTMSG_RESIZE,
};

enum { RTMSG_F_ALL = 1u, RTMSG_F_FORCE = 2u };

/* ERR kinds: what the client turns into the texts the shim matches (containerd-oci.md §0.4). */
enum rtmsg_err {
    RTMSG_ERR_FAILED = 0,  /* anything else: the message says what */
    RTMSG_ERR_NOT_RUNNING, /* "container not running" */
    RTMSG_ERR_NOT_EXIST,   /* "... does not exist" */
    RTMSG_ERR_MAX = RTMSG_ERR_NOT_EXIST,
};

struct rtmsg {
    enum rtmsg_type type;
    uint16_t flags;
    int32_t arg;
    size_t len;
    char payload[RTMSG_MAX_PAYLOAD + 1]; /* NUL-terminated */
    int fds[RTMSG_MAX_FDS];              /* -1 when absent; owned by the message */
    size_t nfds;
};

/* Name of a type ("START", ...) or "?" */
const char *rtmsg_type_name(int type);

/* Encode into buf (at least RTMSG_HDR_SIZE + len bytes). Returns the packet size. */
size_t rtmsg_encode(void *buf, enum rtmsg_type type, uint16_t flags, int32_t arg,
                    const char *payload, size_t len);

/* Decode one packet of n bytes that came with nfds descriptors (not stored: the caller keeps
 * them). 0, or -1 with a one-line reason in err. */
int rtmsg_decode(const void *buf, size_t n, size_t nfds, struct rtmsg *m, char *err, size_t errlen);

/* A process name: [a-z0-9]{1,RTMSG_NAME_MAX}. */
bool rtmsg_name_valid(const char *s, size_t len);

/* Send one message with fds (may be NULL/0). 0 or -errno. */
int rtmsg_send(int sock, enum rtmsg_type type, uint16_t flags, int32_t arg, const char *payload,
               const int *fds, size_t nfds);
/* Receive one message, waiting at most timeout_ms (-1: no limit). 0; -ECONNRESET at end of
 * stream; -ETIMEDOUT; -EPROTO for a malformed message (reason in err; its fds closed); other
 * -errno. Received fds are O_CLOEXEC and owned by m (rtmsg_close_fds). */
int rtmsg_recv(int sock, struct rtmsg *m, int timeout_ms, char *err, size_t errlen);
void rtmsg_close_fds(struct rtmsg *m);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rtmsg.h"

static const char *const type_names[] = {
    [RTMSG_START] = "START",   [RTMSG_EXEC] = "EXEC",     [RTMSG_KILL] = "KILL",
    [RTMSG_DELETE] = "DELETE", [RTMSG_STATE] = "STATE",   [RTMSG_PS] = "PS",
    [RTMSG_ATTACH] = "ATTACH", [RTMSG_SIGNAL] = "SIGNAL", [RTMSG_OK] = "OK",
    [RTMSG_ERR] = "ERR",       [RTMSG_EXIT] = "EXIT",     [RTMSG_RESIZE] = "RESIZE",
};

/* What each type may carry. */
struct rule {
    uint16_t flags;   /* allowed flag bits */
    int32_t min, max; /* arg range */
    size_t fds;       /* exact descriptor count */
    bool payload;     /* may have a payload */
    bool name;        /* the payload must be a process name */
};

static const struct rule rules[] = {
    [RTMSG_START] = {0, 0, 0, 0, false, false},
    [RTMSG_EXEC] = {0, 0, 0, RTMSG_EXEC_FDS, false, false},
    [RTMSG_KILL] = {RTMSG_F_ALL, 1, 64, 0, false, false},
    [RTMSG_DELETE] = {RTMSG_F_FORCE, 0, 0, 0, false, false},
    [RTMSG_STATE] = {0, 0, 0, 0, false, false},
    [RTMSG_PS] = {0, 0, 0, 0, false, false},
    [RTMSG_ATTACH] = {0, 1, INT32_MAX, 0, true, true},
    [RTMSG_SIGNAL] = {0, 1, 64, 0, false, false},
    [RTMSG_OK] = {0, 0, 0, 0, true, false},
    [RTMSG_ERR] = {0, 0, RTMSG_ERR_MAX, 0, true, false},
    [RTMSG_EXIT] = {0, 0, 255, 0, false, false},
    [RTMSG_RESIZE] = {0, 0, 0, 0, false, false},
};

const char *
rtmsg_type_name(int type)
{
    if (type < RTMSG_START || type > RTMSG_LAST)
        return "?";
    return type_names[type];
}

bool
rtmsg_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > RTMSG_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

size_t
rtmsg_encode(void *buf, enum rtmsg_type type, uint16_t flags, int32_t arg, const char *payload,
             size_t len)
{
    uint32_t magic = RTMSG_MAGIC, l32 = (uint32_t)len;
    uint16_t t16 = (uint16_t)type;
    unsigned char *b = buf;
    memcpy(b, &magic, 4);
    memcpy(b + 4, &t16, 2);
    memcpy(b + 6, &flags, 2);
    memcpy(b + 8, &arg, 4);
    memcpy(b + 12, &l32, 4);
    if (len)
        memcpy(b + RTMSG_HDR_SIZE, payload, len);
    return RTMSG_HDR_SIZE + len;
}

#define REFUSE(...) (snprintf(err, errlen, __VA_ARGS__), -1)

int
rtmsg_decode(const void *buf, size_t n, size_t nfds, struct rtmsg *m, char *err, size_t errlen)
{
    const unsigned char *b = buf;
    uint32_t magic, len;
    uint16_t type, flags;
    int32_t arg;
    if (n < RTMSG_HDR_SIZE)
        return REFUSE("short message (%zu bytes)", n);
    memcpy(&magic, b, 4);
    memcpy(&type, b + 4, 2);
    memcpy(&flags, b + 6, 2);
    memcpy(&arg, b + 8, 4);
    memcpy(&len, b + 12, 4);
    if (magic != RTMSG_MAGIC)
        return REFUSE("bad magic 0x%08x", magic);
    if (type < RTMSG_START || type > RTMSG_LAST)
        return REFUSE("unknown message type %u", type);
    const struct rule *r = &rules[type];
    const char *name = type_names[type];
    if (len > RTMSG_MAX_PAYLOAD || len != n - RTMSG_HDR_SIZE)
        return REFUSE("%s: length %u does not match the %zu-byte packet", name, len, n);
    if (flags & ~r->flags)
        return REFUSE("%s: unknown flags 0x%x", name, flags);
    if (arg < r->min || arg > r->max)
        return REFUSE("%s: argument %d out of range %d..%d", name, arg, r->min, r->max);
    if (nfds != r->fds)
        return REFUSE("%s: %zu descriptors, expected %zu", name, nfds, r->fds);
    if (len && !r->payload)
        return REFUSE("%s: unexpected payload", name);
    if (memchr(b + RTMSG_HDR_SIZE, '\0', len))
        return REFUSE("%s: NUL byte in the payload", name);
    if (r->name && !rtmsg_name_valid((const char *)b + RTMSG_HDR_SIZE, len))
        return REFUSE("%s: bad process name", name);
    m->type = (enum rtmsg_type)type;
    m->flags = flags;
    m->arg = arg;
    m->len = len;
    memcpy(m->payload, b + RTMSG_HDR_SIZE, len);
    m->payload[len] = '\0';
    return 0;
}

int
rtmsg_send(int sock, enum rtmsg_type type, uint16_t flags, int32_t arg, const char *payload,
           const int *fds, size_t nfds)
{
    static __thread unsigned char buf[RTMSG_HDR_SIZE + RTMSG_MAX_PAYLOAD];
    size_t len = payload ? strlen(payload) : 0;
    if (len > RTMSG_MAX_PAYLOAD)
        len = RTMSG_MAX_PAYLOAD; /* a message is cut, never refused */
    if (nfds > RTMSG_MAX_FDS)
        return -EINVAL;
    size_t n = rtmsg_encode(buf, type, flags, arg, payload, len);
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    union {
        char b[CMSG_SPACE(sizeof(int) * RTMSG_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t w;
    do
        w = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return -errno;
    return (size_t)w == n ? 0 : -EIO;
}

void
rtmsg_close_fds(struct rtmsg *m)
{
    for (size_t i = 0; i < m->nfds; i++)
        if (m->fds[i] >= 0)
            close(m->fds[i]);
    m->nfds = 0;
}

/* The descriptors of every SCM_RIGHTS block, into m (at most RTMSG_MAX_FDS kept; *extra counts
 * the others, which are closed). */
static void
take_fds(struct msghdr *mh, struct rtmsg *m, size_t *extra)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (m->nfds < RTMSG_MAX_FDS) {
                m->fds[m->nfds++] = fd;
            } else {
                close(fd);
                (*extra)++;
            }
        }
    }
}

int
rtmsg_recv(int sock, struct rtmsg *m, int timeout_ms, char *err, size_t errlen)
{
    static __thread unsigned char buf[RTMSG_HDR_SIZE + RTMSG_MAX_PAYLOAD + 1];
    union {
        char b[CMSG_SPACE(sizeof(int) * (RTMSG_MAX_FDS + 4))];
        struct cmsghdr align;
    } ctl;
    m->nfds = 0;
    for (size_t i = 0; i < RTMSG_MAX_FDS; i++)
        m->fds[i] = -1;
    struct pollfd pf = {.fd = sock, .events = POLLIN};
    int p;
    do
        p = poll(&pf, 1, timeout_ms);
    while (p < 0 && errno == EINTR);
    if (p < 0)
        return -errno;
    if (p == 0)
        return -ETIMEDOUT;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == ECONNRESET ? -ECONNRESET : -errno;
    size_t extra = 0;
    take_fds(&mh, m, &extra);
    if (n == 0 && m->nfds == 0)
        return -ECONNRESET;
    int rc = 0;
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        rc = REFUSE("message or descriptors truncated");
    else if (extra)
        rc = REFUSE("more than %u descriptors", RTMSG_MAX_FDS);
    else
        rc = rtmsg_decode(buf, (size_t)n, m->nfds, m, err, errlen);
    if (rc < 0) {
        rtmsg_close_fds(m);
        return -EPROTO;
    }
    return 0;
}

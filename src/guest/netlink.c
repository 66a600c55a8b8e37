/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "netlink.h"

#define NL_MSG_MAX 256
/* Dump replies: the kernel sizes them by the reader's buffer, up to 32 KiB minus overhead. */
#define NL_RECV_MAX 32768
#define NL_DUMP_TRIES 3

/* One request under construction: header, family header, attributes. */
struct nl_msg {
    union {
        struct nlmsghdr h;
        uint8_t buf[NL_MSG_MAX];
    };
};

static uint8_t recv_buf[NL_RECV_MAX] __attribute__((aligned(NLMSG_ALIGNTO)));

int
nl_open(struct nl *nl)
{
    *nl = (struct nl)NL_INIT;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    int one = 1;
    struct timeval tv = {.tv_sec = NL_TIMEOUT_MS / 1000, .tv_usec = NL_TIMEOUT_MS % 1000 * 1000};
    struct sockaddr_nl addr = {.nl_family = AF_NETLINK};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    /* Optional: the kernel's error text, and acks without a copy of the request. */
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    nl->fd = fd;
    return 0;
}

void
nl_close(struct nl *nl)
{
    if (nl->fd >= 0)
        close(nl->fd);
    nl->fd = -1;
}

static int root_fd = -1;

int
nl_root_netns(void)
{
    if (root_fd < 0) {
        root_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (root_fd < 0)
            return -errno;
    }
    return root_fd;
}

void
nl_return_root(void)
{
    if (root_fd >= 0 && setns(root_fd, CLONE_NEWNET) == 0)
        return;
    log_error("cannot return to the root network namespace: %s", strerror(errno));
    abort();
}

int
nl_open_in(struct nl *nl, int netns_fd)
{
    *nl = (struct nl)NL_INIT;
    int rc = nl_root_netns(); /* before leaving it */
    if (rc < 0)
        return rc;
    if (setns(netns_fd, CLONE_NEWNET) < 0)
        return -errno;
    rc = nl_open(nl);
    nl_return_root();
    return rc;
}

const char *
nl_strerror(const struct nl *nl, int rc)
{
    static char buf[NL_EXTACK_MAX + 96];
    if (nl->extack[0])
        snprintf(buf, sizeof(buf), "%s (kernel: %s)", strerror(-rc), nl->extack);
    else
        snprintf(buf, sizeof(buf), "%s", strerror(-rc));
    return buf;
}

/* --- messages ------------------------------------------------------------------------------- */

/* Start a request of type with the family header hdr (copied). */
static void
msg_init(struct nl_msg *m, uint16_t type, uint16_t flags, const void *hdr, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->h.nlmsg_type = type;
    m->h.nlmsg_flags = NLM_F_REQUEST | flags;
    m->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
    memcpy(NLMSG_DATA(&m->h), hdr, len);
}

/* Append one attribute; -EMSGSIZE if the message would exceed its buffer. */
static int
msg_put(struct nl_msg *m, uint16_t type, const void *data, size_t len)
{
    size_t off = NLMSG_ALIGN(m->h.nlmsg_len);
    if (len > UINT16_MAX - RTA_LENGTH(0) || off + RTA_SPACE(len) > sizeof(m->buf))
        return -EMSGSIZE;
    struct rtattr *a = (struct rtattr *)(m->buf + off);
    a->rta_type = type;
    a->rta_len = (uint16_t)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    m->h.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
    return 0;
}

static int
msg_put_str(struct nl_msg *m, uint16_t type, const char *s)
{
    return msg_put(m, type, s, strlen(s) + 1);
}

static int
msg_put_u32(struct nl_msg *m, uint16_t type, uint32_t v)
{
    return msg_put(m, type, &v, sizeof(v));
}

/* --- replies -------------------------------------------------------------------------------- */

static int
send_msg(struct nl *nl, struct nl_msg *m)
{
    nl->extack[0] = '\0';
    m->h.nlmsg_seq = ++nl->seq;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t n;
    do
        n = sendto(nl->fd, m->buf, m->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == (ssize_t)m->h.nlmsg_len ? 0 : -EIO;
}

/* One datagram from the kernel: its length, or -errno (-ETIMEDOUT past the deadline). */
static ssize_t
recv_datagram(struct nl *nl)
{
    for (;;) {
        struct sockaddr_nl from = {0};
        struct iovec iov = {.iov_base = recv_buf, .iov_len = sizeof(recv_buf)};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
                            .msg_iovlen = 1};
        ssize_t n = recvmsg(nl->fd, &mh, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        if (mh.msg_flags & MSG_TRUNC)
            return -EMSGSIZE;
        if (from.nl_pid != 0)
            continue; /* not from the kernel */
        return n;
    }
}

/* Keep the NLMSGERR_ATTR_MSG of an ack, if any. */
static void
parse_extack(struct nl *nl, const struct nlmsghdr *h)
{
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
        return;
    const struct nlmsgerr *e = NLMSG_DATA(h);
    size_t off = sizeof(*e);
    if (!(h->nlmsg_flags & NLM_F_CAPPED)) {
        if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
            return;
        off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
    }
    off = NLMSG_ALIGN(off);
    size_t len = NLMSG_PAYLOAD(h, 0);
    const uint8_t *p = (const uint8_t *)NLMSG_DATA(h);
    while (off + sizeof(struct nlattr) <= len) {
        const struct nlattr *a = (const struct nlattr *)(p + off);
        if (a->nla_len < sizeof(*a) || a->nla_len > len - off)
            return;
        size_t dlen = a->nla_len - sizeof(*a);
        const char *s = (const char *)(a + 1);
        if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && dlen > 0) {
            size_t n = strnlen(s, dlen);
            if (n >= sizeof(nl->extack))
                n = sizeof(nl->extack) - 1;
            memcpy(nl->extack, s, n);
            nl->extack[n] = '\0';
            while (n > 0 && nl->extack[n - 1] == '\n')
                nl->extack[--n] = '\0';
            return;
        }
        off += NLA_ALIGN(a->nla_len);
    }
}

/* The error code of an NLMSG_ERROR message (0: an ack), or -EBADMSG when malformed. */
static int
ack_error(struct nl *nl, const struct nlmsghdr *h)
{
    if (NLMSG_PAYLOAD(h, 0) < sizeof(struct nlmsgerr))
        return -EBADMSG;
    const struct nlmsgerr *e = NLMSG_DATA(h);
    if (e->error > 0 || e->error < -4095)
        return -EBADMSG;
    if (e->error)
        parse_extack(nl, h);
    return e->error;
}

typedef int nl_msg_fn(const struct nlmsghdr *h, void *ctx);

/* Receive the answer to the request with sequence number seq. A plain request ends with its
 * ack; a dump (dump true) with NLMSG_DONE, each message before going to fn (which may return
 * non-zero to stop early: the rest of the dump is still read). Returns 0, fn's positive value,
 * -EINTR when the kernel flagged the dump as inconsistent (retry), or -errno. */
static int
receive(struct nl *nl, bool dump, nl_msg_fn *fn, void *ctx)
{
    int result = 0;
    bool interrupted = false;
    for (;;) {
        ssize_t n = recv_datagram(nl);
        if (n < 0)
            return (int)n;
        size_t len = (size_t)n, off = 0;
        while (len - off >= sizeof(struct nlmsghdr)) {
            const struct nlmsghdr *h = (const struct nlmsghdr *)(recv_buf + off);
            if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - off)
                return -EBADMSG;
            off += NLMSG_ALIGN(h->nlmsg_len);
            if (off > len)
                off = len; /* the last message may lack its padding */
            if (h->nlmsg_seq != nl->seq)
                continue; /* a stale answer */
            if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                interrupted = true;
            if (h->nlmsg_type == NLMSG_ERROR) {
                int rc = ack_error(nl, h);
                return rc < 0 ? rc : result;
            }
            if (h->nlmsg_type == NLMSG_DONE) {
                if (NLMSG_PAYLOAD(h, 0) >= sizeof(int)) {
                    int err;
                    memcpy(&err, NLMSG_DATA(h), sizeof(err));
                    if (err < 0)
                        return err;
                }
                return interrupted ? -EINTR : result;
            }
            if (dump && fn && result == 0)
                result = fn(h, ctx);
        }
        if (off != len) /* bytes that do not make a message header */
            return -EBADMSG;
    }
}

/* Send m and wait for its ack: 0 or -errno (nl->extack set when the kernel explained). */
static int
call(struct nl *nl, struct nl_msg *m)
{
    m->h.nlmsg_flags |= NLM_F_ACK;
    int rc = send_msg(nl, m);
    return rc < 0 ? rc : receive(nl, false, NULL, NULL);
}

/* --- links ---------------------------------------------------------------------------------- */

struct mac_search {
    const uint8_t *mac;
    struct nl_link *out;
};

static int
link_match(const struct nlmsghdr *h, void *ctx)
{
    struct mac_search *s = ctx;
    if (h->nlmsg_type != RTM_NEWLINK || NLMSG_PAYLOAD(h, 0) < sizeof(struct ifinfomsg))
        return 0;
    const struct ifinfomsg *ifi = NLMSG_DATA(h);
    const char *name = NULL;
    size_t name_len = 0;
    bool match = false;
    /* int: RTA_NEXT may take the length below zero (an unpadded last attribute), which ends
     * the loop; with an unsigned length it would wrap. */
    int len = (int)NLMSG_PAYLOAD(h, sizeof(*ifi));
    for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        size_t dlen = RTA_PAYLOAD(a);
        if (a->rta_type == IFLA_ADDRESS && dlen == NL_MAC_LEN)
            match = !memcmp(RTA_DATA(a), s->mac, NL_MAC_LEN);
        else if (a->rta_type == IFLA_IFNAME && dlen > 0) {
            name = RTA_DATA(a);
            name_len = strnlen(name, dlen);
        }
    }
    if (!match || !name || name_len == 0 || name_len >= IFNAMSIZ || ifi->ifi_index <= 0)
        return 0;
    s->out->index = ifi->ifi_index;
    s->out->flags = ifi->ifi_flags;
    memcpy(s->out->name, name, name_len);
    s->out->name[name_len] = '\0';
    return 1;
}

int
nl_link_by_mac(struct nl *nl, const uint8_t mac[NL_MAC_LEN], struct nl_link *out)
{
    struct mac_search s = {.mac = mac, .out = out};
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    int rc = -EINTR;
    for (int i = 0; i < NL_DUMP_TRIES && rc == -EINTR; i++) {
        struct nl_msg m;
        msg_init(&m, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi));
        /* The statistics make up most of a link message: leave them out. */
        rc = msg_put_u32(&m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        if (rc == 0)
            rc = send_msg(nl, &m);
        if (rc == 0)
            rc = receive(nl, true, link_match, &s);
    }
    return rc;
}

/* RTM_NEWLINK on link index, changing the flags in change to their value in flags. */
static void
link_msg(struct nl_msg *m, int index, unsigned flags, unsigned change)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = flags,
                            .ifi_change = change};
    msg_init(m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
}

int
nl_link_set_netns(struct nl *nl, int index, int netns_fd, const char *name)
{
    struct nl_msg m;
    link_msg(&m, index, 0, 0);
    int rc = msg_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)netns_fd);
    if (rc == 0 && name)
        rc = msg_put_str(&m, IFLA_IFNAME, name);
    return rc < 0 ? rc : call(nl, &m);
}

int
nl_link_set_name(struct nl *nl, int index, const char *name)
{
    struct nl_msg m;
    link_msg(&m, index, 0, 0);
    int rc = msg_put_str(&m, IFLA_IFNAME, name);
    return rc < 0 ? rc : call(nl, &m);
}

int
nl_link_set_up(struct nl *nl, int index, bool up)
{
    struct nl_msg m;
    link_msg(&m, index, up ? IFF_UP : 0, IFF_UP);
    return call(nl, &m);
}

/* --- addresses and routes ------------------------------------------------------------------- */

static size_t
addr_len(int family)
{
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

int
nl_addr_add(struct nl *nl, int index, int family, const void *addr, unsigned prefix)
{
    size_t alen = addr_len(family);
    if (!alen || prefix > alen * 8 || index <= 0)
        return -EINVAL;
    struct ifaddrmsg ifa = {.ifa_family = (uint8_t)family, .ifa_prefixlen = (uint8_t)prefix,
                            .ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0,
                            .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (uint32_t)index};
    struct nl_msg m;
    msg_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
    int rc = msg_put(&m, IFA_LOCAL, addr, alen);
    if (rc == 0)
        rc = msg_put(&m, IFA_ADDRESS, addr, alen);
    return rc < 0 ? rc : call(nl, &m);
}

int
nl_route_add_default(struct nl *nl, int index, int family, const void *gw)
{
    size_t alen = addr_len(family);
    if (!alen || index <= 0)
        return -EINVAL;
    struct rtmsg rtm = {.rtm_family = (uint8_t)family, .rtm_table = RT_TABLE_MAIN,
                        .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_UNIVERSE,
                        .rtm_type = RTN_UNICAST};
    struct nl_msg m;
    msg_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof(rtm));
    int rc = msg_put(&m, RTA_GATEWAY, gw, alen);
    if (rc == 0)
        rc = msg_put_u32(&m, RTA_OIF, (uint32_t)index);
    return rc < 0 ? rc : call(nl, &m);
}

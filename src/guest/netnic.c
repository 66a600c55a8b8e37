/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "devwait.h"
#include "log.h"
#include "netlink.h"
#include "nicconf.h"
#include "netnic.h"
#include "netns.h"

#define NIC_WAIT_MS 10000u

struct nic_op {
    struct nic_op *next; /* Adds waiting for their device */
    struct request *req;
    struct nic_conf nic;
    struct nl_link link; /* in the root namespace, once found */
    int64_t start_ms;
};

static struct nic_op *waiting;
static struct nl root_nl = NL_INIT;

static void
op_free(struct nic_op *op)
{
    nic_conf_release(&op->nic);
    free(op);
}

static struct nl *
root_socket(struct request *req, const char *mac)
{
    if (root_nl.fd >= 0)
        return &root_nl;
    int rc = nl_open(&root_nl);
    if (rc < 0) {
        request_fail(req, "NIC %s: netlink socket: %s", mac, strerror(-rc));
        return NULL;
    }
    return &root_nl;
}

/* --- moving links --------------------------------------------------------------------------- */

/* Set link l (seen through in, a socket of namespace n->ns) down and move it to the root
 * namespace. Its name is kept unless the root namespace has it: then it becomes the first free
 * ethN. */
static int
move_to_root(struct request *req, const struct nic_conf *n, struct nl *in,
             const struct nl_link *l)
{
    int root = nl_root_netns();
    if (root < 0)
        return request_fail(req, "NIC %s: open the root namespace: %s", n->mac_text,
                            strerror(-root));
    int rc = nl_link_set_up(in, l->index, false);
    if (rc < 0)
        return request_fail(req, "NIC %s: set %s down in namespace %s: %s", n->mac_text,
                            l->name, n->ns, nl_strerror(in, rc));
    rc = nl_link_set_netns(in, l->index, root, NULL);
    if (rc == -EEXIST)
        rc = nl_link_set_netns(in, l->index, root, "eth%d");
    if (rc < 0)
        return request_fail(req, "NIC %s: move %s from namespace %s to the root namespace: %s",
                            n->mac_text, l->name, n->ns, nl_strerror(in, rc));
    return 0;
}

/* After a failed Add: the NIC goes back to the root namespace (for the host to unplug it). */
static void
rollback(struct request *req, const struct nic_conf *n, struct nl *in)
{
    cleanup_free char *error = xstrdup(req->error ? req->error : "failed");
    struct nl_link l;
    int rc = nl_link_by_mac(in, n->mac, &l);
    if (rc < 0)
        request_fail(req, "NIC %s: RTM_GETLINK in namespace %s: %s", n->mac_text, n->ns,
                     nl_strerror(in, rc));
    else if (rc > 0)
        rc = move_to_root(req, n, in, &l);
    if (rc < 0) {
        log_error("%s; undoing it failed: %s", error, req->error);
        request_fail(req, "%s; moving it back to the root namespace failed: %s", error,
                     req->error);
    } else {
        request_fail(req, "%s", error);
    }
}

/* --- Add ------------------------------------------------------------------------------------ */

/* An Add's namespace (it must exist) and a netlink socket in it. */
static int
open_ns(struct request *req, const char *mac, const char *ns, int *nsfd, struct nl *in)
{
    *nsfd = netns_open(ns);
    if (*nsfd < 0)
        return request_fail(req, "NIC %s: network namespace %s: %s", mac, ns,
                            *nsfd == -ENOENT ? "not found" : strerror(-*nsfd));
    int rc = nl_open_in(in, *nsfd);
    if (rc < 0)
        return request_fail(req, "NIC %s: netlink socket in namespace %s: %s", mac, ns,
                            strerror(-rc));
    return 0;
}

/* The device is in the root namespace as op->link: move it and configure it. */
static int
configure(struct nic_op *op)
{
    struct request *req = op->req;
    const struct nic_conf *n = &op->nic;
    const char *mac = n->mac_text, *ns = n->ns;
    cleanup_close int nsfd = -1;
    struct nl in = NL_INIT;
    int rc = open_ns(req, mac, ns, &nsfd, &in);
    if (rc < 0)
        return rc;
    rc = nl_link_set_netns(&root_nl, op->link.index, nsfd, NULL);
    if (rc == -EEXIST) /* its kernel name is taken there: it gets IfName on the way */
        rc = nl_link_set_netns(&root_nl, op->link.index, nsfd, n->ifname);
    if (rc < 0) {
        request_fail(req, "NIC %s: move %s into namespace %s: %s", mac, op->link.name, ns,
                     nl_strerror(&root_nl, rc));
        rollback(req, n, &in); /* in case it moved before the error */
        nl_close(&in);
        return rc;
    }
    struct nl_link l;
    rc = nl_link_by_mac(&in, n->mac, &l);
    if (rc <= 0) {
        request_fail(req, "NIC %s: not found in namespace %s after the move: %s", mac, ns,
                     rc < 0 ? nl_strerror(&in, rc) : "gone");
        rc = rc < 0 ? rc : -ENODEV;
    }
    if (rc > 0 && strcmp(l.name, n->ifname)) {
        rc = nl_link_set_name(&in, l.index, n->ifname);
        if (rc < 0)
            request_fail(req, "NIC %s: rename %s to %s in namespace %s: %s", mac, l.name,
                         n->ifname, ns, nl_strerror(&in, rc));
    }
    if (rc >= 0 && n->family) {
        rc = nl_addr_add(&in, l.index, n->family, n->addr, n->prefix);
        if (rc < 0)
            request_fail(req, "NIC %s: RTM_NEWADDR %s/%u in namespace %s: %s", mac, n->addr_text,
                         n->prefix, ns, nl_strerror(&in, rc));
    }
    if (rc >= 0) {
        rc = nl_link_set_up(&in, l.index, true);
        if (rc < 0)
            request_fail(req, "NIC %s: set %s up in namespace %s: %s", mac, n->ifname, ns,
                         nl_strerror(&in, rc));
    }
    if (rc >= 0 && n->gw_family) {
        rc = nl_route_add_default(&in, l.index, n->gw_family, n->gw);
        if (rc < 0)
            request_fail(req, "NIC %s: RTM_NEWROUTE default via %s dev %s in namespace %s: %s",
                         mac, n->gw_text, n->ifname, ns, nl_strerror(&in, rc));
    }
    if (rc >= 0 && n->resolv) {
        rc = netns_write_resolv(req, ns, n->resolv);
        if (rc < 0)
            request_fail(req, "NIC %s: %s", mac, req->error);
    }
    if (rc < 0)
        rollback(req, n, &in);
    nl_close(&in);
    return rc < 0 ? rc : 0;
}

static int
add_check(void *ctx, const struct uevent *ev)
{
    struct nic_op *op = ctx;
    if (ev && (strcmp(ev->action, "add") || strcmp(ev->subsystem, "net")))
        return 0;
    struct nl *nl = root_socket(op->req, op->nic.mac_text);
    if (!nl)
        return -EIO;
    int rc = nl_link_by_mac(nl, op->nic.mac, &op->link);
    if (rc < 0)
        request_fail(op->req, "NIC %s: RTM_GETLINK: %s", op->nic.mac_text, nl_strerror(nl, rc));
    return rc;
}

static void
add_done(struct bridge *b, void *ctx, int rc)
{
    struct nic_op *op = ctx;
    struct request *req = op->req;
    for (struct nic_op **p = &waiting; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            break;
        }
    if (rc == -ETIMEDOUT)
        request_fail(req, "NIC %s: no network device with this MAC address appeared within %u s",
                     op->nic.mac_text, NIC_WAIT_MS / 1000);
    else if (rc == -ECANCELED)
        request_fail(req, "adding NIC %s: cancelled by a Remove of the same NIC",
                     op->nic.mac_text);
    if (rc == 0) {
        int64_t found_ms = monotonic_ms();
        rc = configure(op);
        if (rc == 0)
            log_info("NIC %s%s%s (%s, found after %lld ms) is %s in namespace %s%s%s%s%s, "
                     "configured in %lld ms",
                     op->nic.mac_text, op->nic.id[0] ? " of endpoint " : "", op->nic.id,
                     op->link.name, (long long)(found_ms - op->start_ms),
                     op->nic.ifname, op->nic.ns, op->nic.family ? ", " : "",
                     op->nic.family ? op->nic.addr_text : "", op->nic.gw_family ? " via " : "",
                     op->nic.gw_family ? op->nic.gw_text : "",
                     (long long)(monotonic_ms() - found_ms));
    }
    op_free(op);
    bridge_reply(b, req, rc);
}

static int
start_add(struct bridge *b, struct nic_op *op)
{
    struct request *req = op->req;
    const char *mac = op->nic.mac_text, *ns = op->nic.ns;
    for (struct nic_op *w = waiting; w; w = w->next)
        if (!memcmp(w->nic.mac, op->nic.mac, NL_MAC_LEN))
            return request_fail(req, "NIC %s: an Add of this NIC is already in progress", mac);
    cleanup_close int nsfd = -1;
    struct nl in = NL_INIT;
    int rc = open_ns(req, mac, ns, &nsfd, &in);
    if (rc < 0)
        return rc;
    struct nl_link l;
    rc = nl_link_by_mac(&in, op->nic.mac, &l);
    if (rc < 0)
        request_fail(req, "NIC %s: RTM_GETLINK in namespace %s: %s", mac, ns,
                     nl_strerror(&in, rc));
    else if (rc > 0)
        rc = request_fail(req, "NIC %s is already in namespace %s (as %s)", mac, ns, l.name);
    nl_close(&in);
    if (rc < 0)
        return rc;
    op->next = waiting;
    waiting = op;
    devwait_start(b, NIC_WAIT_MS, add_check, add_done, op);
    return BRIDGE_DEFERRED;
}

/* --- Remove --------------------------------------------------------------------------------- */

static bool
same_mac(void *ctx, const void *arg)
{
    const struct nic_op *op = ctx;
    return !memcmp(op->nic.mac, arg, NL_MAC_LEN);
}

/* Look for the NIC in the namespaces other than ns: 1 (its id in other), 0, or -errno. */
static int
find_elsewhere(const struct nic_conf *n, char other[NETNS_ID_MAX + 1])
{
    DIR *d = opendir(NETNS_RUN_DIR);
    if (!d)
        return 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!netns_id_valid(de->d_name) || !strcmp(de->d_name, n->ns))
            continue;
        cleanup_close int fd = netns_open(de->d_name);
        struct nl in = NL_INIT;
        if (fd < 0 || nl_open_in(&in, fd) < 0)
            continue;
        struct nl_link l;
        rc = nl_link_by_mac(&in, n->mac, &l) > 0;
        if (rc)
            snprintf(other, NETNS_ID_MAX + 1, "%s", de->d_name);
        nl_close(&in);
    }
    closedir(d);
    return rc;
}

static int
nic_remove(struct bridge *b, struct request *req, const struct nic_conf *n)
{
    const char *mac = n->mac_text, *ns = n->ns;
    if (devwait_cancel(b, add_check, same_mac, n->mac))
        log_info("NIC %s: a pending Add was cancelled by the Remove", mac);
    cleanup_close int nsfd = netns_open(ns);
    if (nsfd < 0 && nsfd != -ENOENT)
        return request_fail(req, "NIC %s: network namespace %s: %s", mac, ns, strerror(-nsfd));
    int rc = 0;
    if (nsfd >= 0) {
        struct nl in = NL_INIT;
        rc = nl_open_in(&in, nsfd);
        if (rc < 0)
            return request_fail(req, "NIC %s: netlink socket in namespace %s: %s", mac, ns,
                                strerror(-rc));
        struct nl_link l;
        int found = nl_link_by_mac(&in, n->mac, &l);
        if (found < 0)
            rc = request_fail(req, "NIC %s: RTM_GETLINK in namespace %s: %s", mac, ns,
                              nl_strerror(&in, found));
        else if (found)
            rc = move_to_root(req, n, &in, &l);
        nl_close(&in);
        if (rc < 0)
            return rc;
        if (found) {
            log_info("NIC %s: %s left namespace %s for the root namespace", mac, l.name, ns);
            return 0;
        }
    }
    struct nl *root = root_socket(req, mac);
    if (!root)
        return -EIO;
    struct nl_link l;
    rc = nl_link_by_mac(root, n->mac, &l);
    if (rc < 0)
        return request_fail(req, "NIC %s: RTM_GETLINK: %s", mac, nl_strerror(root, rc));
    if (rc > 0) {
        log_info("NIC %s is in the root namespace already (as %s)", mac, l.name);
        return 0;
    }
    char other[NETNS_ID_MAX + 1];
    if (find_elsewhere(n, other) > 0)
        return request_fail(req, "NIC %s is in namespace %s, not %s", mac, other, ns);
    log_info("NIC %s: not found in namespace %s nor in the root namespace: nothing to remove",
             mac, ns);
    return 0;
}

/* --- Request -------------------------------------------------------------------------------- */

int
netnic_modify(struct bridge *b, struct request *req, enum modify_request_type type,
              json_t *settings)
{
    if (type != MODIFY_ADD && type != MODIFY_REMOVE)
        return request_fail(req, "Network: the request type \"Update\" is not supported");
    struct nic_op *op = xcalloc(1, sizeof(*op));
    op->req = req;
    op->start_ms = monotonic_ms();
    int rc = nic_conf_parse(req, settings, &op->nic);
    if (rc == 0)
        rc = type == MODIFY_ADD ? start_add(b, op) : nic_remove(b, req, &op->nic);
    if (rc != BRIDGE_DEFERRED)
        op_free(op);
    return rc;
}

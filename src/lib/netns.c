/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Network namespaces with NICs (hcsshim AddNetNS / RemoveNetNS) and single NICs (uvm_modify's
 * NetworkAdapters/<id>), two resource kinds (res.h) on one record type.
 *
 * Add (new id): validate everything -> record the id (its NICs' slots and MACs taken) -> guest
 *     NetworkNamespace Add -> per endpoint: [create a tap] -> open the tap here and getfd it
 *     (QEMU opens no host device) -> netdev_add tap on that fd -> device_add virtio-net-pci on
 *     a spare root port -> [move a created tap into its host namespace, up] ->
 *     guest Network Add (find the NIC by MAC, move it into the namespace, ethN, address, up,
 *     default route, resolv.conf) -> ready. A failure at any step undoes the steps done,
 *     NICs in reverse order, then the namespace.
 * Remove (last reference): per NIC, last first: guest Network Remove (the NIC goes back to the
 *     root namespace, down) -> device_del + DEVICE_DELETED -> netdev_del -> delete a created
 *     tap; then guest NetworkNamespace Remove. A failure keeps the id (and what is left of it)
 *     recorded, so a retry works.
 * Host taps are created, moved and deleted with iproute2 (`ip`), which every Debian host has.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"
#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "hostcmd.h"
#include "modreq.h"
#include "netaddr.h"
#include "netns.h"
#include "options.h"
#include "proto.h"
#include "qmp.h"
#include "qmpcmd.h"
#include "res.h"
#include "tap.h"
#include "timeutil.h"

#define IP_TIMEOUT_MS 10000u
#define MAX_ENDPOINTS HOTSLOT_MAX

/* --- validation ----------------------------------------------------------------------------- */

static bool
ifname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p == '/' || *p == ':' || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

static int
bad(size_t k, const char *what, const char *value)
{
    return uvm_error(UVM_E_INVALID_ARGUMENT, "add netns: endpoint %zu: %s '%s' is invalid", k,
                     what, value ? value : "(null)");
}

static int
validate(const char *id, const struct uvm_endpoint *eps, size_t count)
{
    if (!id || !options_id_valid(id))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "add netns: id '%s' is not a safe name (1 to 64 of [A-Za-z0-9._-], not "
                         "starting with '.')",
                         id ? id : "(null)");
    if (count && !eps)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add netns '%s': endpoints is NULL", id);
    if (count > MAX_ENDPOINTS)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add netns '%s': %zu endpoints, at most %d", id,
                         count, MAX_ENDPOINTS);
    for (size_t k = 0; k < count; k++) {
        const struct uvm_endpoint *e = &eps[k];
        json_t *strs[] = {e->id ? json_string(e->id) : NULL, e->name ? json_string(e->name) : NULL};
        bool utf8 = (!e->id || strs[0]) && (!e->name || strs[1]);
        json_decref(strs[0]);
        json_decref(strs[1]);
        if (!utf8)
            return bad(k, "id or name", "(not UTF-8)");
        if (e->mac_address && !netaddr_mac_valid(e->mac_address))
            return bad(k, "MAC address", e->mac_address);
        for (size_t j = 0; j < k; j++)
            if (e->mac_address && eps[j].mac_address &&
                !strcasecmp(e->mac_address, eps[j].mac_address))
                return bad(k, "MAC address (duplicate in this call)", e->mac_address);
        int fam = 0;
        if (e->ip_address) {
            fam = netaddr_family(e->ip_address);
            if (!fam)
                return bad(k, "IP address", e->ip_address);
            if (e->prefix_length > (fam == AF_INET ? 32 : 128)) {
                char p[8];
                snprintf(p, sizeof(p), "%u", e->prefix_length);
                return bad(k, "prefix length", p);
            }
        }
        if (e->gateway_address &&
            (!fam || netaddr_family(e->gateway_address) != fam))
            return bad(k, "gateway (needs an IP address of the same family)", e->gateway_address);
        if (e->dns_servers) {
            cleanup_free char *copy = xstrdup(e->dns_servers);
            for (char *save = NULL, *t = strtok_r(copy, ",", &save); t;
                 t = strtok_r(NULL, ",", &save))
                if (!netaddr_family(t))
                    return bad(k, "DNS server", t);
        }
        if (e->host_ifname) {
            if (!ifname_valid(e->host_ifname))
                return bad(k, "host interface name", e->host_ifname);
            if (!if_nametoindex(e->host_ifname))
                return uvm_error(UVM_E_NOT_FOUND,
                                 "add netns '%s': endpoint %zu: host tap '%s' does not exist", id,
                                 k, e->host_ifname);
            if (e->host_netns)
                return bad(k, "host_netns (only for a tap the library creates)", e->host_netns);
        }
        if (e->host_netns) {
            char path[128];
            snprintf(path, sizeof(path), "/run/netns/%s", e->host_netns);
            struct stat st;
            if (!options_id_valid(e->host_netns) || stat(path, &st) < 0)
                return uvm_error(UVM_E_NOT_FOUND,
                                 "add netns '%s': endpoint %zu: host network namespace '%s' does "
                                 "not exist (/run/netns/%s)",
                                 id, k, e->host_netns, e->host_netns);
        }
    }
    return 0;
}

/* --- host side ------------------------------------------------------------------------------ */

static int
ip_cmd(const char *netns, const char *const *args)
{
    const char *argv[16] = {"ip"};
    size_t n = 1;
    if (netns) {
        argv[n++] = "-n";
        argv[n++] = netns;
    }
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return hostcmd_run(argv, IP_TIMEOUT_MS);
}

/* A tap we create is recorded as <rundir>/tap-<name> holding its host namespace, so that the
 * next create with this runtime directory deletes it if we die first (rundir.c). */
static int
tap_record(const char *rundir, const char *tap, const char *netns)
{
    if (!rundir)
        return uvm_error(UVM_E_INVALID_STATE, "record tap %s: no runtime directory", tap);
    cleanup_free char *path = xasprintf("%s/" RUNDIR_TAP_PREFIX "%s", rundir, tap);
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ssize_t w = fd < 0 || !netns ? 0 : write(fd, netns, strlen(netns));
    if (fd < 0 || w < 0 || (netns && (size_t)w != strlen(netns)))
        return uvm_error_errno(fd < 0 || w < 0 ? -errno : -EIO, "record tap %s in '%s'", tap,
                               path);
    return 0;
}

static void
tap_delete(const char *vm_id, const char *tap, const char *netns, const char *rundir)
{
    if (ip_cmd(netns, (const char *[]){"link", "del", "dev", tap, NULL}) < 0) {
        uvm_log(UVM_LOG_WARNING, vm_id, "tap %s: delete failed: %s", tap, uvm_last_error());
        return;
    }
    if (rundir) {
        cleanup_free char *path = xasprintf("%s/" RUNDIR_TAP_PREFIX "%s", rundir, tap);
        unlink(path);
    }
}

static void
random_mac(char out[18])
{
    unsigned char b[3] = {0};
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        b[0] = (unsigned char)ts.tv_nsec;
        b[1] = (unsigned char)(ts.tv_nsec >> 8);
        b[2] = (unsigned char)getpid();
    }
    snprintf(out, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
}

static void
random_tap_name(char out[IFNAMSIZ])
{
    unsigned char b[4] = {0};
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        b[0] = (unsigned char)getpid();
    snprintf(out, IFNAMSIZ, "uvmt%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
}

/* Open the tap here, hand it to QEMU as fd-<netdev> (getfd), then netdev_add on that fd and the
 * device (qmpc_plug). QEMU takes a named fd out of its list when netdev_add uses it; a name left
 * over after a failure is closed (QEMU saying there is no such name means netdev_add took it). */
static int
host_plug(struct res_txn *t, const struct net_nic *nic, const char *mac, bool *dirty)
{
    char netdev[16], dev[16], bus[16], addr[8], fdname[24];
    snprintf(netdev, sizeof(netdev), "net%u", nic->port);
    snprintf(dev, sizeof(dev), "nic%u", nic->port);
    snprintf(fdname, sizeof(fdname), "fd-%s", netdev);
    hotslot_place(t->vm, nic->port, bus, addr);
    cleanup_close int fd = tap_open(nic->tap);
    if (fd < 0)
        return fd;
    int rc = qmpc_getfd(t->qmp, fd, fdname);
    close(steal_fd(&fd)); /* QEMU's copy is the tap's only attached file from here on */
    if (rc < 0)
        return rc;
    cleanup_json json_t *nargs = json_pack("{s:s, s:s, s:s, s:b}", "type", "tap", "id", netdev,
                                           "fd", fdname, "vhost", 0);
    cleanup_json json_t *dargs = json_pack("{s:s, s:s, s:s, s:s, s:s}", "driver",
                                           "virtio-net-pci", "id", dev, "netdev", netdev, "mac",
                                           mac, "bus", bus);
    if (*addr) { /* behind the conventional bridge: modern only, no I/O BAR */
        json_object_set_new(dargs, "addr", json_string(addr));
        json_object_set_new(dargs, "disable-legacy", json_string("on"));
    }
    const struct qmpc_backend be = QMPC_NETDEV(nargs, netdev);
    bool unused = false; /* netdev_add failed: the fd's name may be left */
    if ((rc = qmpc_plug(t->qmp, &be, dargs, dirty, &unused)) < 0 && unused) {
        struct uvm_error_state st;
        uvm_error_capture(&st);
        if (qmpc_closefd(t->qmp, fdname) < 0)
            uvm_log(UVM_LOG_DEBUG, t->vm->cfg.id, "netdev %s: closefd %s: %s", netdev, fdname,
                    uvm_last_error());
        uvm_error_restore(&st, rc);
    }
    return rc;
}

/* device_del + DEVICE_DELETED (skipped when an earlier try got that far) -> netdev_del. */
static int
host_unplug(struct res_txn *t, struct net_nic *nic)
{
    char netdev[16], dev[16];
    snprintf(netdev, sizeof(netdev), "net%u", nic->port);
    snprintf(dev, sizeof(dev), "nic%u", nic->port);
    int rc = nic->device_gone ? 0 : qmpc_device_del(t->qmp, dev);
    if (rc < 0)
        return rc;
    nic->device_gone = true;
    const struct qmpc_backend be = QMPC_NETDEV(NULL, netdev);
    return qmpc_backend_del(t->qmp, &be);
}

/* --- guest side ----------------------------------------------------------------------------- */

static int
guest_ns(struct res_txn *t, const char *type, const char *id)
{
    return bridge_guest_part(t->bridge, NULL,
                             bridge_guest_request("NetworkNamespace", type,
                                                  json_pack("{s:s}", "ID", id)));
}

/* A NIC's guest part: Network for the typed calls, else the caller's GuestRequest (or none). */
static int
guest_part(struct res_txn *t, const struct guest_part *g, const char *type, json_t *settings)
{
    return bridge_guest_part(t->bridge, g,
                             bridge_guest_request("Network", type, json_incref(settings)));
}

static json_t *
nic_settings(const char *ns, const struct uvm_endpoint *e, const char *mac, size_t k)
{
    char ifname[16];
    snprintf(ifname, sizeof(ifname), "eth%zu", k);
    json_t *s = json_pack("{s:s, s:s, s:s, s:s}", "NamespaceId", ns, "ID", e->id ? e->id : "",
                          "MacAddress", mac, "IfName", ifname);
    if (e->ip_address) {
        json_object_set_new(s, "IPAddress", json_string(e->ip_address));
        json_object_set_new(s, "PrefixLength", json_integer(e->prefix_length));
    }
    if (e->gateway_address)
        json_object_set_new(s, "GatewayAddress", json_string(e->gateway_address));
    if (e->dns_servers)
        json_object_set_new(s, "DNSServerList", json_string(e->dns_servers));
    return s;
}

/* --- bookkeeping ---------------------------------------------------------------------------- */

static void
nic_release(struct net_nic *nic)
{
    free(nic->tap);
    free(nic->tap_netns);
    free(nic->rundir);
    json_decref(nic->settings);
    memset(nic, 0, sizeof(*nic));
}

static void
ns_free(struct res *r)
{
    struct net_ns *ns = (struct net_ns *)r;
    for (size_t i = 0; i < ns->nnics; i++)
        nic_release(&ns->nics[i]);
    free(ns->nics);
}

/* The record leaves the VM: its NICs' hot-plug slots are free again. */
static void
ns_drop(struct uvm *vm, struct res *r)
{
    struct net_ns *ns = (struct net_ns *)r;
    for (size_t i = 0; i < ns->nnics; i++)
        hotslot_put(vm, ns->nics[i].port);
}

/* Lock held: a MAC already used by a NIC of this VM (both kinds, broken records too). A NIC
 * whose device QEMU no longer has (never plugged, or deleted before a later step failed) frees
 * its MAC, but only in a record no thread is adding or removing: device_gone is written
 * without the lock by that thread, so a busy record keeps all its MACs. */
static bool
mac_in_use(struct uvm *vm, const char *mac)
{
    struct res *r;
    LIST_FOREACH(r, &vm->res, link) {
        if (r->kind != &netns_kind && r->kind != &nic_kind)
            continue;
        struct net_ns *ns = (struct net_ns *)r;
        bool settled = r->state == RES_READY || r->state == RES_BROKEN;
        for (size_t i = 0; i < ns->nnics; i++) {
            if (settled && ns->nics[i].device_gone)
                continue;
            const char *m = json_string_value(json_object_get(ns->nics[i].settings, "MacAddress"));
            if (m && !strcasecmp(m, mac))
                return true;
        }
    }
    return false;
}

/* Undo one NIC: guest (if it got there), host device, tap; a retry after a failure resumes
 * at the step that failed. 0 when all of it went. */
static int
nic_teardown(struct res_txn *t, struct net_nic *nic, const struct guest_part *g)
{
    int rc = 0;
    if (!nic->guest_gone) {
        rc = guest_part(t, g, "Remove", nic->settings);
        if (rc == 0)
            nic->guest_gone = true;
    }
    if (rc == 0)
        rc = host_unplug(t, nic);
    if (rc == 0 && nic->tap_created)
        tap_delete(t->vm->cfg.id, nic->tap, nic->tap_netns, nic->rundir);
    return rc;
}

/* A created tap: made, recorded, and (after the plug) moved to its namespace and up. */
static int
tap_create(struct res_txn *t, struct net_nic *nic)
{
    int rc = ip_cmd(NULL, (const char *[]){"tuntap", "add", "dev", nic->tap, "mode", "tap", NULL});
    if (rc == 0 && (rc = tap_record(nic->rundir, nic->tap, NULL)) < 0)
        tap_delete(t->vm->cfg.id, nic->tap, NULL, NULL);
    return rc;
}

static int
tap_up(struct net_nic *nic, const char **tap_ns)
{
    int rc = 0;
    if (nic->tap_netns) {
        rc = ip_cmd(NULL, (const char *[]){"link", "set", "dev", nic->tap, "netns",
                                           nic->tap_netns, NULL});
        if (rc == 0) {
            *tap_ns = nic->tap_netns;
            rc = tap_record(nic->rundir, nic->tap, *tap_ns);
        }
    }
    if (rc == 0)
        rc = ip_cmd(*tap_ns, (const char *[]){"link", "set", "dev", nic->tap, "up", NULL});
    return rc;
}

/* One NIC, host then guest; on failure what it made is undone (the guest undoes its own part
 * of a failed Add). */
static int
nic_add(struct res_txn *t, struct net_nic *nic, const struct guest_part *g)
{
    const char *mac = json_string_value(json_object_get(nic->settings, "MacAddress"));
    const char *tap_ns = NULL; /* where a created tap is now */
    int rc = nic->tap_created ? tap_create(t, nic) : 0;
    if (rc < 0)
        return rc;
    rc = host_plug(t, nic, mac, &t->dirty);
    bool plugged = rc == 0;
    nic->device_gone = !plugged; /* QEMU has no device with its MAC (a backend may be left) */
    if (rc == 0 && nic->tap_created)
        rc = tap_up(nic, &tap_ns);
    if (rc == 0)
        rc = guest_part(t, g, "Add", nic->settings);
    if (rc == 0)
        return 0;
    struct uvm_error_state st;
    uvm_error_capture(&st);
    if (plugged && host_unplug(t, nic) < 0) {
        uvm_log(UVM_LOG_WARNING, t->vm->cfg.id, "nic%u: rollback failed: %s", nic->port,
                uvm_last_error());
        t->dirty = true;
    }
    if (nic->tap_created)
        tap_delete(t->vm->cfg.id, nic->tap, tap_ns, nic->rundir);
    return uvm_error_restore(&st, rc);
}

/* --- network namespaces (uvm_add_netns / uvm_remove_netns) ---------------------------------- */

/* Lock held: NIC k of a new namespace: its slot (counted free), MAC, settings and tap. */
static int
nic_take(struct uvm *vm, struct net_ns *ns, const struct uvm_endpoint *e, size_t k)
{
    struct net_nic *nic = &ns->nics[k];
    char mac[18];
    if (e->mac_address)
        snprintf(mac, sizeof(mac), "%s", e->mac_address);
    else
        do
            random_mac(mac);
        while (mac_in_use(vm, mac));
    if (mac_in_use(vm, mac))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "add netns '%s': endpoint %zu: MAC address %s is used by another NIC of "
                         "this VM",
                         ns->res.key, k, mac);
    nic->port = (unsigned)hotslot_take(vm);
    ns->nnics = k + 1; /* its port and MAC are taken from here on */
    nic->settings = nic_settings(ns->res.key, e, mac, k);
    if (e->host_ifname) {
        nic->tap = xstrdup(e->host_ifname);
        return 0;
    }
    char name[IFNAMSIZ];
    random_tap_name(name);
    nic->tap = xstrdup(name);
    nic->tap_created = true;
    nic->tap_netns = e->host_netns ? xstrdup(e->host_netns) : NULL;
    nic->rundir = vm->rd.path ? xstrdup(vm->rd.path) : NULL;
    return 0;
}

/* Lock held: a new namespace record with its NICs' slots and MACs, or an error. */
static struct net_ns *
ns_new(struct uvm *vm, const char *id, const struct uvm_endpoint *eps, size_t count, int *rc)
{
    if (hotslot_free_count(vm) < count) {
        *rc = uvm_error(UVM_E_NO_AVAILABLE_LOCATION,
                        "add netns '%s': %zu NICs asked, but only %u of the %u hot-plug slots are "
                        "free",
                        id, count, hotslot_free_count(vm), hotslot_count(vm));
        return NULL;
    }
    struct net_ns *ns = res_new(&netns_kind, sizeof(*ns), id);
    ns->nics = xcalloc(count ? count : 1, sizeof(*ns->nics));
    for (size_t k = 0; k < count; k++) {
        if ((*rc = nic_take(vm, ns, &eps[k], k)) < 0) {
            ns_drop(vm, &ns->res);
            res_free(&ns->res);
            return NULL;
        }
    }
    return ns;
}

/* The namespace, then each NIC; on failure what was made is undone, NICs in reverse. */
static int
ns_attach(struct res_txn *t, struct net_ns *ns)
{
    int rc = guest_ns(t, "Add", ns->res.key);
    if (rc < 0)
        return rc;
    size_t done = 0; /* NICs fully added */
    while (rc == 0 && done < ns->nnics)
        if ((rc = nic_add(t, &ns->nics[done], NULL)) == 0)
            done++;
    if (rc == 0)
        return 0;
    struct uvm_error_state st;
    uvm_error_capture(&st);
    for (size_t j = done; j-- > 0;)
        if (nic_teardown(t, &ns->nics[j], NULL) < 0)
            t->dirty = true;
    /* The namespace is the guest's alone: its remove failing (a frozen agent reads it later, in
     * order, before any later request) holds no QEMU id, so the NICs' slots are free again. */
    bool guest_left = guest_ns(t, "Remove", ns->res.key) < 0;
    if (t->dirty || guest_left)
        uvm_log(UVM_LOG_WARNING, t->vm->cfg.id,
                "add netns '%s': the rollback did not complete; the %s may hold parts of it "
                "until the VM ends",
                ns->res.key, t->dirty ? "guest or QEMU" : "guest");
    return uvm_error_restore(&st, rc);
}

static int
add_netns(struct uvm *vm, const char *id, const struct uvm_endpoint *endpoints, size_t count)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add netns: vm is NULL");
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "add netns: not supported for Windows utility VMs "
                         "here");
    int rc = validate(id, endpoints, count);
    if (rc < 0)
        return rc;
    struct res_txn t = RES_TXN(vm, &netns_kind, "add netns");
    if ((rc = res_enter(&t, NULL, id)) < 0)
        return rc;
    struct net_ns *ns = t.r ? NULL : ns_new(vm, id, endpoints, count, &rc);
    if (t.r)
        t.r->refs++;
    if (!ns)
        return res_leave(&t, rc);
    res_txn_fail(&t, "add netns '%s'", id);
    res_begin(&t, &ns->res, RES_ADDING);
    return res_end(&t, ns_attach(&t, ns));
}

int
uvm_add_netns(struct uvm *vm, const char *id, const struct uvm_endpoint *endpoints, size_t count)
{
    return vm ? UVM_CALL(vm, "add netns", add_netns(vm, id, endpoints, count))
              : add_netns(vm, id, endpoints, count); /* it says what is wrong */
}

/* Every NIC, last first (each one fully gone leaves the record at once, its slot free), then
 * the namespace. A failure keeps what is left recorded: a retry resumes there. */
static int
ns_detach(struct res_txn *t, struct net_ns *ns)
{
    int rc = 0;
    while (rc == 0 && ns->nnics > 0) {
        struct net_nic *nic = &ns->nics[ns->nnics - 1];
        if ((rc = nic_teardown(t, nic, NULL)) < 0)
            break;
        pthread_mutex_lock(&t->vm->lock);
        hotslot_put(t->vm, nic->port);
        nic_release(nic);
        ns->nnics--;
        pthread_mutex_unlock(&t->vm->lock);
    }
    if (rc == 0)
        rc = guest_ns(t, "Remove", ns->res.key);
    if (rc < 0)
        res_txn_fail(t, "remove netns '%s' (%zu NIC(s) left)", ns->res.key, ns->nnics);
    return rc;
}

static int
remove_netns(struct uvm *vm, const char *id)
{
    if (!vm || !id)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove netns: vm or id is NULL");
    struct res_txn t = RES_TXN(vm, &netns_kind, "remove netns");
    res_txn_fail(&t, "remove netns '%s': no such network namespace in utility VM %s", id,
                 vm->cfg.id);
    int rc = res_remove_enter(&t, NULL, id, UVM_E_NOT_FOUND);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    res_begin(&t, t.r, RES_REMOVING);
    return res_end(&t, ns_detach(&t, (struct net_ns *)t.r));
}

int
uvm_remove_netns(struct uvm *vm, const char *id)
{
    return vm ? UVM_CALL(vm, "remove netns", remove_netns(vm, id))
              : remove_netns(vm, id); /* it says what is wrong */
}

/* --- one NIC of uvm_modify (NetworkAdapters/<id>) -------------------------------------------- */

/* Lock held: a record for the adapter with its hot-plug slot, or an error. */
static struct net_ns *
adapter_new(struct uvm *vm, const char *adapter_id, const char *tap, const char *mac, int *rc)
{
    if (mac_in_use(vm, mac)) {
        *rc = uvm_error(UVM_E_INVALID_ARGUMENT, "add network adapter '%s': MAC address %s is used "
                        "by another NIC of this VM",
                        adapter_id, mac);
        return NULL;
    }
    int slot = hotslot_take(vm);
    if (slot < 0) {
        *rc = uvm_error(UVM_E_NO_AVAILABLE_LOCATION, "add network adapter '%s': all %u hot-plug "
                        "slots are in use",
                        adapter_id, hotslot_count(vm));
        return NULL;
    }
    struct net_ns *ns = res_new(&nic_kind, sizeof(*ns), adapter_id);
    ns->nics = xcalloc(1, sizeof(*ns->nics));
    ns->nnics = 1;
    ns->nics[0].port = (unsigned)slot;
    ns->nics[0].tap = xstrdup(tap);
    ns->nics[0].settings = json_pack("{s:s}", "MacAddress", mac);
    return ns;
}

static int
nic_modify_add(struct uvm *vm, const char *adapter_id, const char *tap, const char *mac,
               const struct guest_part *guest)
{
    if (!ifname_valid(tap))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add network adapter '%s': EndpointId '%s' is "
                         "not a host interface name",
                         adapter_id, tap);
    struct res_txn t = RES_TXN(vm, &nic_kind, "add network adapter");
    int rc = res_enter(&t, NULL, adapter_id);
    if (rc < 0)
        return rc;
    struct net_ns *ns = t.r ? NULL : adapter_new(vm, adapter_id, tap, mac, &rc);
    if (!ns)
        return res_leave(&t, t.r ? uvm_error(UVM_E_ALREADY_ATTACHED, "add network adapter '%s': "
                                           "already added", adapter_id)
                               : rc);
    res_txn_fail(&t, "add network adapter '%s'", adapter_id);
    res_begin(&t, &ns->res, RES_ADDING);
    return res_end(&t, nic_add(&t, &ns->nics[0], guest));
}

static int
nic_modify_remove(struct uvm *vm, const char *adapter_id, const struct guest_part *guest)
{
    struct res_txn t = RES_TXN(vm, &nic_kind, "remove network adapter");
    res_txn_fail(&t, "remove network adapter '%s': not attached", adapter_id);
    int rc = res_remove_enter(&t, NULL, adapter_id, UVM_E_NOT_ATTACHED);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    res_txn_fail(&t, "remove network adapter '%s' (still attached)", adapter_id);
    res_begin(&t, t.r, RES_REMOVING);
    return res_end(&t, nic_teardown(&t, &((struct net_ns *)t.r)->nics[0], guest));
}

/* A GUID, with or without braces, or a share-like name. */
static bool
adapter_id_ok(const char *id)
{
    return strlen(id) <= 38 &&
           (modreq_name_ok(id) || strspn(id, "0123456789abcdefABCDEF-{}") == strlen(id));
}

int
nic_modify(struct uvm *vm, struct modify_req *r)
{
    if (!adapter_id_ok(r->name))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': ResourcePath '%s': adapter id '%s' is not a GUID", r->id,
                         r->path, r->name);
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s' %s: network adapters are not "
                         "supported for Windows utility VMs here",
                         r->id, r->path);
    if (!r->add)
        return modreq_wrap(r, nic_modify_remove(vm, r->name, &r->guest));
    const char *endpoint = NULL, *mac = NULL;
    int rc = modreq_need_settings(r);
    if (rc == 0)
        rc = modreq_string(r, "EndpointId", true, &endpoint);
    if (rc == 0)
        rc = modreq_string(r, "MacAddress", true, &mac);
    if (rc < 0)
        return rc;
    char norm[18];
    if (modreq_mac_normalize(mac, norm) < 0)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.MacAddress '%s' is "
                         "not a MAC address",
                         r->id, r->path, mac);
    return modreq_wrap(r, nic_modify_add(vm, r->name, endpoint, norm, &r->guest));
}

const struct res_kind netns_kind = {
    .name = "netns",
    .drop = ns_drop,
    .free = ns_free,
};

const struct res_kind nic_kind = {
    .name = "nic",
    .drop = ns_drop,
    .free = ns_free,
};

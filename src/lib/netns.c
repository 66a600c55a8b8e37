/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Network namespaces with NICs (hcsshim AddNetNS / RemoveNetNS).
 *
 * Add (new id): validate everything -> record the id as adding -> unlock -> guest
 *     NetworkNamespace Add -> per endpoint: [create a tap] -> open the tap here and getfd it
 *     (QEMU opens no host device) -> netdev_add tap on that fd -> device_add virtio-net-pci on
 *     a spare root port -> [move a created tap into its host namespace, up] ->
 *     guest Network Add (find the NIC by MAC, move it into the namespace, ethN, address, up,
 *     default route, resolv.conf) -> lock -> ready. A failure at any step undoes the steps done,
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
#include "netaddr.h"
#include "options.h"
#include "proto.h"
#include "qmp.h"
#include "qmpfd.h"
#include "tap.h"
#include "timeutil.h"
#include "uvm-internal.h"

#define DEVICE_DELETED_TIMEOUT_MS 10000u
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

/* Open the tap here, hand it to QEMU as fd-net<p> (getfd), netdev_add on that fd. QEMU takes a
 * named fd out of its list when netdev_add uses it; a name left over after a failure is closed
 * (and QEMU saying there is no such name means netdev_add had taken it). */
static int
netdev_add(struct uvm *vm, struct qmp *q, const struct net_nic *nic, const char *netdev)
{
    char fdname[24];
    snprintf(fdname, sizeof(fdname), "fd-%s", netdev);
    cleanup_close int fd = tap_open(nic->tap);
    if (fd < 0)
        return fd;
    int rc = qmp_getfd(q, fd, fdname, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    close(steal_fd(&fd)); /* QEMU's copy is the tap's only attached file from here on */
    if (rc < 0)
        return rc;
    json_t *nargs = json_pack("{s:s, s:s, s:s, s:b}", "type", "tap", "id", netdev, "fd", fdname,
                              "vhost", 0);
    rc = qmp_execute(q, "netdev_add", nargs, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(nargs);
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        if (qmp_closefd(q, fdname, deadline_after_ms(UVM_QMP_TIMEOUT_MS)) < 0)
            uvm_log(UVM_LOG_DEBUG, vm->cfg.id, "netdev %s: closefd %s: %s", netdev, fdname,
                    uvm_last_error());
        return uvm_error(rc, "%s", msg);
    }
    return 0;
}

static int
host_plug(struct uvm *vm, struct qmp *q, const struct net_nic *nic, const char *mac)
{
    char netdev[16], dev[16], bus[16], addr[8];
    snprintf(netdev, sizeof(netdev), "net%u", nic->port);
    snprintf(dev, sizeof(dev), "nic%u", nic->port);
    hotslot_place(vm, nic->port, bus, addr);
    int rc = netdev_add(vm, q, nic, netdev);
    if (rc < 0)
        return rc;
    json_t *dargs = json_pack("{s:s, s:s, s:s, s:s, s:s}", "driver", "virtio-net-pci", "id", dev,
                              "netdev", netdev, "mac", mac, "bus", bus);
    if (*addr) { /* behind the conventional bridge: modern only, no I/O BAR */
        json_object_set_new(dargs, "addr", json_string(addr));
        json_object_set_new(dargs, "disable-legacy", json_string("on"));
    }
    rc = qmp_execute(q, "device_add", dargs, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(dargs);
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        json_t *del = json_pack("{s:s}", "id", netdev);
        if (qmp_execute(q, "netdev_del", del, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS)) < 0)
            uvm_log(UVM_LOG_WARNING, vm->cfg.id, "netdev %s: rollback failed: %s", netdev,
                    uvm_last_error());
        json_decref(del);
        return uvm_error(rc, "%s", msg);
    }
    return 0;
}

/* device_del + DEVICE_DELETED (skipped when an earlier try got that far) -> netdev_del. */
static int
host_unplug(struct qmp *q, struct net_nic *nic)
{
    char netdev[16], dev[16];
    snprintf(netdev, sizeof(netdev), "net%u", nic->port);
    snprintf(dev, sizeof(dev), "nic%u", nic->port);
    int rc;
    json_t *args;
    if (!nic->device_gone) {
        args = json_pack("{s:s}", "id", dev);
        rc = qmp_execute(q, "device_del", args, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
        json_decref(args);
        if (rc < 0)
            return rc;
        json_t *match = json_pack("{s:s}", "device", dev);
        rc = qmp_wait_event(q, "DEVICE_DELETED", match, NULL,
                            deadline_after_ms(DEVICE_DELETED_TIMEOUT_MS));
        json_decref(match);
        if (rc < 0)
            return rc;
        nic->device_gone = true;
    }
    args = json_pack("{s:s}", "id", netdev);
    rc = qmp_execute(q, "netdev_del", args, NULL, deadline_after_ms(UVM_QMP_TIMEOUT_MS));
    json_decref(args);
    return rc;
}

/* --- guest side ----------------------------------------------------------------------------- */

static int
guest_request(struct bridge *b, const char *resource, const char *type, json_t *settings)
{
    json_t *req = json_pack("{s:{s:s, s:s, s:O}}", "Request", "ResourceType", resource,
                            "RequestType", type, "Settings", settings);
    return bridge_call(b, PROTO_REQ_MODIFY_SETTINGS, req, NULL,
                       deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
}

static int
guest_ns(struct bridge *b, const char *type, const char *id)
{
    json_t *settings = json_pack("{s:s}", "ID", id);
    int rc = guest_request(b, "NetworkNamespace", type, settings);
    json_decref(settings);
    return rc;
}

/* A NIC's guest part: Network for the typed calls, else the caller's GuestRequest (or none). */
static int
guest_part(struct bridge *b, const struct guest_part *g, const char *type, json_t *settings)
{
    if (!g || !g->custom)
        return guest_request(b, "Network", type, settings);
    if (!g->request)
        return 0;
    return bridge_modify(b, g->request, deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
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
ns_free(struct net_ns *ns)
{
    for (size_t i = 0; i < ns->nnics; i++)
        nic_release(&ns->nics[i]);
    free(ns->nics);
    free(ns->id);
    free(ns);
}

void
netns_release_all(struct uvm *vm)
{
    while (!LIST_EMPTY(&vm->netns)) {
        struct net_ns *ns = LIST_FIRST(&vm->netns);
        LIST_REMOVE(ns, link);
        ns_free(ns);
    }
}

/* Lock held: the namespace id, or (adapter) the NIC uvm_modify added as adapter id. */
static struct net_ns *
find_kind(struct uvm *vm, const char *id, bool adapter)
{
    struct net_ns *ns;
    LIST_FOREACH(ns, &vm->netns, link)
        if (ns->adapter == adapter && !strcmp(ns->id, id))
            return ns;
    return NULL;
}

/* Lock held: wait while the entry `id` (a namespace, or with adapter a uvm_modify NIC) is being
 * added or removed, checking that the VM runs. 0 with *out the ready entry or NULL. */
static int
wait_ready(struct uvm *vm, const char *id, bool adapter, const char *what, struct net_ns **out)
{
    for (;;) {
        int rc = uvm_check_running(vm, what);
        if (rc < 0)
            return rc;
        *out = find_kind(vm, id, adapter);
        if (!*out || (*out)->state == NET_NS_READY)
            return 0;
        pthread_cond_wait(&vm->cond, &vm->lock); /* being added or removed */
    }
}

/* Lock held: a MAC already used by a NIC of this VM. */
static bool
mac_in_use(struct uvm *vm, const char *mac)
{
    struct net_ns *ns;
    LIST_FOREACH(ns, &vm->netns, link)
        for (size_t i = 0; i < ns->nnics; i++) {
            const char *m = json_string_value(json_object_get(ns->nics[i].settings, "MacAddress"));
            if (m && !strcasecmp(m, mac))
                return true;
        }
    return false;
}

/* Undo one NIC: guest (if it got there), host device, tap; a retry after a failure resumes
 * at the step that failed. 0 when all of it went. */
static int
nic_teardown(struct uvm *vm, struct qmp *q, struct bridge *b, struct net_nic *nic, bool in_guest,
             const struct guest_part *g)
{
    int rc = 0;
    if (in_guest && !nic->guest_gone) {
        rc = guest_part(b, g, "Remove", nic->settings);
        if (rc == 0)
            nic->guest_gone = true;
    }
    if (rc == 0)
        rc = host_unplug(q, nic);
    if (rc == 0 && nic->tap_created)
        tap_delete(vm->cfg.id, nic->tap, nic->tap_netns, nic->rundir);
    return rc;
}

/* One NIC, host then guest; on failure what it made is undone (the guest undoes its own part
 * of a failed Add). */
static int
nic_add(struct uvm *vm, struct qmp *q, struct bridge *b, struct net_nic *nic, bool *dirty,
        const struct guest_part *g)
{
    const char *mac = json_string_value(json_object_get(nic->settings, "MacAddress"));
    const char *tap_ns = NULL; /* where a created tap is now */
    int rc = 0;
    if (nic->tap_created &&
        (rc = ip_cmd(NULL, (const char *[]){"tuntap", "add", "dev", nic->tap, "mode", "tap",
                                            NULL})) < 0)
        return rc;
    if (nic->tap_created && (rc = tap_record(nic->rundir, nic->tap, NULL)) < 0) {
        tap_delete(vm->cfg.id, nic->tap, NULL, NULL);
        return rc;
    }
    rc = host_plug(vm, q, nic, mac);
    bool plugged = rc == 0;
    if (rc == 0 && nic->tap_created && nic->tap_netns) {
        rc = ip_cmd(NULL, (const char *[]){"link", "set", "dev", nic->tap, "netns",
                                           nic->tap_netns, NULL});
        if (rc == 0) {
            tap_ns = nic->tap_netns;
            rc = tap_record(nic->rundir, nic->tap, tap_ns);
        }
    }
    if (rc == 0 && nic->tap_created)
        rc = ip_cmd(tap_ns, (const char *[]){"link", "set", "dev", nic->tap, "up", NULL});
    if (rc == 0)
        rc = guest_part(b, g, "Add", nic->settings);
    if (rc == 0)
        return 0;
    cleanup_free char *msg = xstrdup(uvm_last_error());
    if (plugged && host_unplug(q, nic) < 0) {
        uvm_log(UVM_LOG_WARNING, vm->cfg.id, "nic%u: rollback failed: %s", nic->port,
                uvm_last_error());
        *dirty = true;
    }
    if (nic->tap_created)
        tap_delete(vm->cfg.id, nic->tap, tap_ns, nic->rundir);
    return uvm_error(rc, "%s", msg);
}

static int do_add_netns(struct uvm *vm, const char *id, const struct uvm_endpoint *endpoints,
                        size_t count);

int
uvm_add_netns(struct uvm *vm, const char *id, const struct uvm_endpoint *endpoints, size_t count)
{
    if (!vm)
        return do_add_netns(vm, id, endpoints, count); /* it says what is wrong */
    int rc = uvm_call_enter(vm, "add netns");
    if (rc == 0) {
        rc = do_add_netns(vm, id, endpoints, count);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_add_netns(struct uvm *vm, const char *id, const struct uvm_endpoint *endpoints, size_t count)
{
    if (!vm)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add netns: vm is NULL");
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "add netns: not supported for Windows utility VMs "
                         "here");
    int rc = validate(id, endpoints, count);
    if (rc < 0)
        return rc;

    pthread_mutex_lock(&vm->lock);
    struct net_ns *ns;
    rc = wait_ready(vm, id, false, "add netns", &ns);
    if (rc < 0)
        goto out_unlock;
    if (ns) {
        ns->refs++;
        rc = 0;
        goto out_unlock;
    }
    if (hotslot_free_count(vm) < count) {
        rc = uvm_error(UVM_E_NO_AVAILABLE_LOCATION,
                       "add netns '%s': %zu NICs asked, but only %u of the %u hot-plug slots are "
                       "free",
                       id, count, hotslot_free_count(vm), hotslot_count(vm));
        goto out_unlock;
    }
    ns = xcalloc(1, sizeof(*ns));
    ns->id = xstrdup(id);
    ns->state = NET_NS_ADDING;
    ns->nics = xcalloc(count ? count : 1, sizeof(*ns->nics));
    for (size_t k = 0; k < count; k++) {
        struct net_nic *nic = &ns->nics[k];
        nic->port = (unsigned)hotslot_take(vm); /* counted free above */
        char mac[18];
        if (endpoints[k].mac_address) {
            snprintf(mac, sizeof(mac), "%s", endpoints[k].mac_address);
        } else {
            do
                random_mac(mac);
            while (mac_in_use(vm, mac));
        }
        if (mac_in_use(vm, mac)) {
            rc = uvm_error(UVM_E_INVALID_ARGUMENT,
                           "add netns '%s': endpoint %zu: MAC address %s is used by another NIC "
                           "of this VM",
                           id, k, mac);
            for (size_t j = 0; j <= k; j++)
                hotslot_put(vm, ns->nics[j].port);
            ns_free(ns);
            goto out_unlock;
        }
        nic->settings = nic_settings(id, &endpoints[k], mac, k);
        if (endpoints[k].host_ifname) {
            nic->tap = xstrdup(endpoints[k].host_ifname);
        } else {
            char name[IFNAMSIZ];
            random_tap_name(name);
            nic->tap = xstrdup(name);
            nic->tap_created = true;
            nic->tap_netns = endpoints[k].host_netns ? xstrdup(endpoints[k].host_netns) : NULL;
            nic->rundir = vm->rd.path ? xstrdup(vm->rd.path) : NULL;
        }
        ns->nnics = k + 1; /* ports and MACs are taken from here on */
    }
    LIST_INSERT_HEAD(&vm->netns, ns, link);
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);

    size_t done = 0; /* NICs fully added */
    bool dirty = false;
    rc = guest_ns(b, "Add", id);
    bool ns_made = rc == 0;
    while (rc == 0 && done < count) {
        rc = nic_add(vm, q, b, &ns->nics[done], &dirty, NULL);
        if (rc == 0)
            done++;
    }
    if (rc < 0) {
        cleanup_free char *msg = xstrdup(uvm_last_error());
        for (size_t j = done; j-- > 0;)
            if (nic_teardown(vm, q, b, &ns->nics[j], true, NULL) < 0)
                dirty = true;
        if (ns_made && guest_ns(b, "Remove", id) < 0)
            dirty = true;
        uvm_error(rc, "%s", msg);
        if (dirty) /* before locking: a log handler never runs under the VM lock */
            uvm_log(UVM_LOG_WARNING, vm->cfg.id,
                    "add netns '%s': the rollback did not complete; the guest or QEMU may hold "
                    "parts of it until the VM ends",
                    id);
    }

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "add netns '%s'", id);
        LIST_REMOVE(ns, link);
        for (size_t j = 0; j < ns->nnics; j++)
            if (!dirty)
                hotslot_put(vm, ns->nics[j].port); /* else QEMU may still hold the slot */
        ns_free(ns);
    } else {
        ns->state = NET_NS_READY;
        ns->refs = 1;
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

static int do_remove_netns(struct uvm *vm, const char *id);

int
uvm_remove_netns(struct uvm *vm, const char *id)
{
    if (!vm)
        return do_remove_netns(vm, id); /* it says what is wrong */
    int rc = uvm_call_enter(vm, "remove netns");
    if (rc == 0) {
        rc = do_remove_netns(vm, id);
        uvm_call_leave(vm);
    }
    return rc;
}

static int
do_remove_netns(struct uvm *vm, const char *id)
{
    if (!vm || !id)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "remove netns: vm or id is NULL");
    pthread_mutex_lock(&vm->lock);
    struct net_ns *ns;
    int rc;
    rc = wait_ready(vm, id, false, "remove netns", &ns);
    if (rc < 0)
        goto out_unlock;
    if (!ns) {
        rc = uvm_error(UVM_E_NOT_FOUND, "remove netns '%s': no such network namespace in utility "
                       "VM %s",
                       id, vm->cfg.id);
        goto out_unlock;
    }
    if (ns->refs > 1) {
        ns->refs--;
        rc = 0;
        goto out_unlock;
    }
    ns->state = NET_NS_REMOVING;
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);

    /* Last NIC first; each one that is fully gone is dropped from the record. */
    rc = 0;
    size_t left = ns->nnics;
    while (rc == 0 && left > 0) {
        rc = nic_teardown(vm, q, b, &ns->nics[left - 1], true, NULL);
        if (rc == 0) {
            pthread_mutex_lock(&vm->lock);
            hotslot_put(vm, ns->nics[left - 1].port);
            nic_release(&ns->nics[--left]);
            ns->nnics = left;
            pthread_mutex_unlock(&vm->lock);
        }
    }
    if (rc == 0)
        rc = guest_ns(b, "Remove", id);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "remove netns '%s' (%zu NIC(s) left)", id,
                            ns->nnics);
        ns->state = NET_NS_READY; /* still recorded: a retry works */
    } else {
        LIST_REMOVE(ns, link);
        ns_free(ns);
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    return rc;
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
    struct net_ns *ns = xcalloc(1, sizeof(*ns));
    ns->id = xstrdup(adapter_id);
    ns->adapter = true;
    ns->state = NET_NS_ADDING;
    ns->nics = xcalloc(1, sizeof(*ns->nics));
    ns->nnics = 1;
    ns->nics[0].port = (unsigned)slot;
    ns->nics[0].tap = xstrdup(tap);
    ns->nics[0].settings = json_pack("{s:s}", "MacAddress", mac);
    LIST_INSERT_HEAD(&vm->netns, ns, link);
    return ns;
}

int
netns_nic_add(struct uvm *vm, const char *adapter_id, const char *tap, const char *mac,
              const struct guest_part *guest)
{
    if (vm->cfg.windows)
        return uvm_error(UVM_E_NOT_SUPPORTED, "add network adapter '%s': not supported for "
                         "Windows utility VMs here",
                         adapter_id);
    if (!ifname_valid(tap))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "add network adapter '%s': EndpointId '%s' is "
                         "not a host interface name",
                         adapter_id, tap);
    pthread_mutex_lock(&vm->lock);
    struct net_ns *ns;
    int rc;
    rc = wait_ready(vm, adapter_id, true, "add network adapter", &ns);
    if (rc < 0)
        goto out_unlock;
    if (ns) {
        rc = uvm_error(UVM_E_ALREADY_ATTACHED, "add network adapter '%s': already added",
                       adapter_id);
        goto out_unlock;
    }
    ns = adapter_new(vm, adapter_id, tap, mac, &rc);
    if (!ns)
        goto out_unlock;
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);

    bool dirty = false;
    rc = nic_add(vm, q, b, &ns->nics[0], &dirty, guest);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "add network adapter '%s'", adapter_id);
        LIST_REMOVE(ns, link);
        if (!dirty)
            hotslot_put(vm, ns->nics[0].port); /* else QEMU may still hold the slot */
        ns_free(ns);
    } else {
        ns->state = NET_NS_READY;
        ns->refs = 1;
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

int
netns_nic_remove(struct uvm *vm, const char *adapter_id, const struct guest_part *guest)
{
    pthread_mutex_lock(&vm->lock);
    struct net_ns *ns;
    int rc;
    rc = wait_ready(vm, adapter_id, true, "remove network adapter", &ns);
    if (rc < 0)
        goto out_unlock;
    if (!ns) {
        rc = uvm_error(UVM_E_NOT_ATTACHED, "remove network adapter '%s': not attached",
                       adapter_id);
        goto out_unlock;
    }
    ns->state = NET_NS_REMOVING;
    struct qmp *q = vm->qmp;
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);

    rc = nic_teardown(vm, q, b, &ns->nics[0], true, guest);

    pthread_mutex_lock(&vm->lock);
    if (rc < 0) {
        rc = uvm_error_wrap(uvm_failure_code(vm, rc), "remove network adapter '%s' (still "
                            "attached)",
                            adapter_id);
        ns->state = NET_NS_READY; /* a retry resumes where this one stopped */
    } else {
        hotslot_put(vm, ns->nics[0].port);
        LIST_REMOVE(ns, link);
        ns_free(ns);
    }
    pthread_cond_broadcast(&vm->cond);
out_unlock:
    pthread_mutex_unlock(&vm->lock);
    return rc;
}

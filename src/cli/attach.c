/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl run: the hot-add options. Parsing, one libuvm call per option (all --nic in one
 * uvm_add_netns), where each landed, how long each took. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attach.h"
#include "netaddr.h"

int
attach_list_init(struct attach_list *l, size_t max)
{
    *l = (struct attach_list){0};
    l->items = calloc(max + 1, sizeof(*l->items));
    l->eps = calloc(max + 1, sizeof(*l->eps));
    l->nics = calloc(max + 1, sizeof(*l->nics));
    if (!l->items || !l->eps || !l->nics) {
        attach_list_free(l);
        return -1;
    }
    return 0;
}

void
attach_list_free(struct attach_list *l)
{
    for (size_t i = 0; l->items && i < l->count; i++) {
        free(l->items[i].buf);
        free(l->items[i].uvm_path);
    }
    for (size_t k = 0; l->nics && k < l->nic_count; k++)
        free(l->nics[k].buf);
    free(l->items);
    free(l->eps);
    free(l->nics);
    *l = (struct attach_list){0};
}

/* ---- parsing ------------------------------------------------------------------------------- */

struct parse {
    const char *prog, *name, *arg;
};

static int __attribute__((format(printf, 2, 3)))
invalid(const struct parse *p, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: invalid --%s '%s': ", p->prog, p->name, p->arg);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

/* ip=ADDR/PREFIX */
static int
nic_ip(const struct parse *p, struct uvm_endpoint *ep, char *val)
{
    char *slash = strchr(val, '/');
    if (!slash)
        return invalid(p, "ip '%s' has no /PREFIX (want e.g. ip=10.0.0.2/24)", val);
    *slash = '\0';
    const char *prefix = slash + 1;
    int fam = netaddr_family(val);
    if (!fam)
        return invalid(p, "ip '%s' is not an IPv4 or IPv6 address", val);
    unsigned max = fam == AF_INET ? 32 : 128;
    char *end = NULL;
    unsigned long n = strtoul(prefix, &end, 10);
    if (*prefix < '0' || *prefix > '9' || *end || n > max)
        return invalid(p, "prefix length '%s' is not in 0..%u", prefix, max);
    ep->ip_address = val;
    ep->prefix_length = (uint8_t)n;
    return 0;
}

/* dns=ADDR[+ADDR]...: the library wants them comma separated. */
static int
nic_dns(const struct parse *p, struct uvm_endpoint *ep, char *val)
{
    for (char *s = val;;) {
        char *plus = strchr(s, '+');
        if (plus)
            *plus = '\0';
        if (!netaddr_family(s))
            return invalid(p, "DNS server '%s' is not an IPv4 or IPv6 address", s);
        if (!plus)
            break;
        *plus = ',';
        s = plus + 1;
    }
    ep->dns_servers = val;
    return 0;
}

static int
nic_key(const struct parse *p, struct uvm_endpoint *ep, const char *key, char *val)
{
    if (!strcmp(key, "ip"))
        return nic_ip(p, ep, val);
    if (!strcmp(key, "dns"))
        return nic_dns(p, ep, val);
    if (!strcmp(key, "gw")) {
        if (!netaddr_family(val))
            return invalid(p, "gateway '%s' is not an IPv4 or IPv6 address", val);
        ep->gateway_address = val;
    } else if (!strcmp(key, "mac")) {
        if (!netaddr_mac_valid(val))
            return invalid(p, "MAC '%s' is not a unicast xx:xx:xx:xx:xx:xx", val);
        ep->mac_address = val;
    } else if (!strcmp(key, "tap")) {
        if (strlen(val) >= IFNAMSIZ || strpbrk(val, "/: \t"))
            return invalid(p, "tap '%s' is not an interface name", val);
        ep->host_ifname = val;
    } else if (!strcmp(key, "hostns")) {
        ep->host_netns = val;
    } else {
        return invalid(p, "unknown key '%s' (want ip, gw, dns, mac, tap or hostns)", key);
    }
    return 0;
}

/* SPEC: KEY=VALUE[,KEY=VALUE]..., each key at most once; "" is a NIC with all defaults. */
static int
parse_nic(struct attach_list *l, const struct parse *p)
{
    struct attach_nic *nic = &l->nics[l->nic_count];
    struct uvm_endpoint *ep = &l->eps[l->nic_count];
    char seen[6][8] = {{0}};
    size_t nseen = 0;

    *ep = (struct uvm_endpoint){0};
    if (!(nic->buf = strdup(p->arg)))
        return invalid(p, "out of memory");
    l->nic_count++; /* owns nic->buf from here, for attach_list_free */

    char *save = NULL;
    for (char *kv = strtok_r(nic->buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv)
            return invalid(p, "'%s' is not KEY=VALUE", kv);
        *eq = '\0';
        if (!eq[1])
            return invalid(p, "%s= has no value", kv);
        for (size_t i = 0; i < nseen; i++)
            if (!strcmp(seen[i], kv))
                return invalid(p, "%s= given twice", kv);
        if (nic_key(p, ep, kv, eq + 1) < 0)
            return -1;
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", kv); /* known keys only: <= 6 */
    }
    if (ep->gateway_address &&
        (!ep->ip_address || netaddr_family(ep->gateway_address) != netaddr_family(ep->ip_address)))
        return invalid(p, "gw= needs an ip= of the same address family");
    if (ep->host_ifname && ep->host_netns)
        return invalid(p, "tap= and hostns= exclude each other (hostns= is for the new tap made "
                          "when tap= is not given)");

    snprintf(nic->id, sizeof(nic->id), "uvmctl-nic%zu", l->nic_count - 1);
    ep->id = nic->id;
    if (l->nic_count == 1) /* the one uvm_add_netns call goes where the first --nic is */
        l->items[l->count++] = (struct attach){.kind = ATTACH_NETNS};
    return 0;
}

/* HOST:GUEST[:ro]: a ":ro" at the end, then the last ':' splits. */
static int
parse_share(struct attach *a, const struct parse *p)
{
    size_t n = strlen(a->buf);
    if (n > 3 && !strcmp(a->buf + n - 3, ":ro")) {
        a->buf[n - 3] = '\0';
        a->read_only = true;
    }
    char *colon = strrchr(a->buf, ':');
    if (!colon)
        return invalid(p, "want HOST:GUEST[:ro]");
    *colon = '\0';
    a->host = a->buf;
    a->guest = colon + 1;
    if (!a->host[0])
        return invalid(p, "no host path");
    if (a->guest[0] != '/' || !a->guest[1])
        return invalid(p, "guest path '%s' is not an absolute path other than /", a->guest);
    return 0;
}

int
attach_parse(struct attach_list *l, const char *prog, const char *name, const char *arg)
{
    const struct parse p = {prog, name, arg};

    if (!strcmp(name, "nic"))
        return parse_nic(l, &p);

    struct attach *a = &l->items[l->count];
    *a = (struct attach){.controller = -1, .lun = -1};
    if (!strcmp(name, "disk"))
        a->kind = ATTACH_DISK;
    else if (!strcmp(name, "scsi-layer"))
        a->kind = ATTACH_SCSI_LAYER;
    else if (!strcmp(name, "share"))
        a->kind = ATTACH_SHARE;
    else
        a->kind = ATTACH_VPMEM;
    if (!(a->buf = strdup(arg)))
        return invalid(&p, "out of memory");
    l->count++;
    if (a->kind == ATTACH_SHARE)
        return parse_share(a, &p);

    a->host = a->buf;
    if (a->kind == ATTACH_DISK) { /* HOST[:GUESTPATH]; the last ':' splits */
        char *colon = strrchr(a->buf, ':');
        if (colon) {
            *colon = '\0';
            a->guest = colon + 1;
            if (a->guest[0] != '/')
                return invalid(&p, "guest path '%s' is not absolute (want HOST[:/GUESTPATH])",
                               a->guest);
        }
    }
    if (!a->host[0])
        return invalid(&p, "no host path");
    return 0;
}

/* ---- doing it ------------------------------------------------------------------------------ */

static double
ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

int
attach_add(struct attach_list *l, size_t i, struct uvm *vm)
{
    struct attach *a = &l->items[i];
    struct timespec t0;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    a->tried = true;
    switch (a->kind) {
    case ATTACH_DISK:
        rc = uvm_add_scsi(vm, a->host, a->guest, &a->controller, &a->lun);
        break;
    case ATTACH_SCSI_LAYER:
        rc = uvm_add_scsi_layer(vm, a->host, &a->controller, &a->lun);
        break;
    case ATTACH_VPMEM:
        rc = uvm_add_vpmem(vm, a->host, true, &a->location, &a->uvm_path);
        break;
    case ATTACH_NETNS:
        rc = uvm_add_netns(vm, ATTACH_NETNS_ID, l->eps, l->nic_count);
        break;
    case ATTACH_SHARE:
        rc = uvm_add_plan9(vm, a->host, a->guest, a->read_only);
        break;
    }
    a->add_ms = ms_since(&t0);
    a->added = rc == 0;
    return rc;
}

bool
attach_needs_remove(const struct attach_list *l, size_t i)
{
    const struct attach *a = &l->items[i];
    return a->kind == ATTACH_DISK && a->added && !a->removed;
}

int
attach_remove(struct attach_list *l, size_t i, struct uvm *vm)
{
    struct attach *a = &l->items[i];
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    a->remove_tried = true;
    int rc = uvm_remove_scsi(vm, a->host);
    a->remove_ms = ms_since(&t0);
    a->removed = rc == 0;
    return rc;
}

/* ---- reporting ----------------------------------------------------------------------------- */

static const char *const kind_names[] = {
    [ATTACH_DISK] = "disk",
    [ATTACH_SCSI_LAYER] = "scsi layer",
    [ATTACH_VPMEM] = "vpmem",
    [ATTACH_NETNS] = "netns",
    [ATTACH_SHARE] = "share",
};

static void
print_nic(const struct uvm_endpoint *ep, size_t k, FILE *f)
{
    fprintf(f, "uvmctl: nic eth%zu in guest netns %s:", k, ATTACH_NETNS_ID);
    if (ep->ip_address)
        fprintf(f, " ip %s/%u,", ep->ip_address, ep->prefix_length);
    if (ep->gateway_address)
        fprintf(f, " gw %s,", ep->gateway_address);
    if (ep->dns_servers)
        fprintf(f, " dns %s,", ep->dns_servers);
    fprintf(f, " mac %s, ", ep->mac_address ? ep->mac_address : "generated");
    if (ep->host_ifname)
        fprintf(f, "host tap %s\n", ep->host_ifname);
    else if (ep->host_netns)
        fprintf(f, "new host tap in netns %s\n", ep->host_netns);
    else
        fprintf(f, "new host tap\n");
}

void
attach_print_placement(const struct attach_list *l, FILE *f)
{
    for (size_t i = 0; i < l->count; i++) {
        const struct attach *a = &l->items[i];
        if (!a->added)
            continue;
        switch (a->kind) {
        case ATTACH_DISK:
            if (a->guest)
                fprintf(f, "uvmctl: disk %s: SCSI %d:%" PRId32 ", mounted at %s\n", a->host,
                        a->controller, a->lun, a->guest);
            else
                fprintf(f, "uvmctl: disk %s: SCSI %d:%" PRId32 ", not mounted\n", a->host,
                        a->controller, a->lun);
            break;
        case ATTACH_SCSI_LAYER:
            fprintf(f,
                    "uvmctl: scsi layer %s: SCSI %d:%" PRId32
                    ", mounted read-only at /tmp/S%d/%" PRId32 "\n",
                    a->host, a->controller, a->lun, a->controller, a->lun);
            break;
        case ATTACH_VPMEM:
            fprintf(f, "uvmctl: vpmem %s: device %" PRIu32 ", mounted read-only at %s\n", a->host,
                    a->location, a->uvm_path ? a->uvm_path : "?");
            break;
        case ATTACH_NETNS:
            for (size_t k = 0; k < l->nic_count; k++)
                print_nic(&l->eps[k], k, f);
            break;
        case ATTACH_SHARE:
            fprintf(f, "uvmctl: share %s: Plan9, mounted %sat %s\n", a->host,
                    a->read_only ? "read-only " : "", a->guest);
            break;
        }
    }
}

/* "HOST -> GUESTPATH", "HOST", "uvmctl (2 NICs)" */
static void
describe(const struct attach_list *l, const struct attach *a, bool remove, char *buf, size_t size)
{
    if (a->kind == ATTACH_NETNS)
        snprintf(buf, size, "%s (%zu NIC%s)", ATTACH_NETNS_ID, l->nic_count,
                 l->nic_count == 1 ? "" : "s");
    else if (remove || !a->added)
        snprintf(buf, size, "%s", a->host);
    else if (a->kind == ATTACH_DISK || a->kind == ATTACH_SHARE)
        snprintf(buf, size, "%s -> %s", a->host, a->guest ? a->guest : "(not mounted)");
    else if (a->kind == ATTACH_SCSI_LAYER)
        snprintf(buf, size, "%s -> /tmp/S%d/%" PRId32, a->host, a->controller, a->lun);
    else
        snprintf(buf, size, "%s -> %s", a->host, a->uvm_path ? a->uvm_path : "?");
}

void
attach_print_timings(const struct attach_list *l, bool remove, FILE *f)
{
    char name[32], what[4200];

    for (size_t i = 0; i < l->count; i++) {
        const struct attach *a = &l->items[i];
        bool tried = remove ? a->remove_tried : a->tried;
        if (remove && !tried)
            continue; /* only read-write disks are removed */
        snprintf(name, sizeof(name), "%s%s", remove ? "detach " : "", kind_names[a->kind]);
        describe(l, a, remove, what, sizeof(what));
        const char *failed = (remove ? a->removed : a->added) ? "" : " (failed)";
        if (tried)
            fprintf(f, "  %-12s %10.1f  %s%s\n", name, remove ? a->remove_ms : a->add_ms, what,
                    failed);
        else
            fprintf(f, "  %-12s %10s  %s\n", name, "-", what);
    }
}

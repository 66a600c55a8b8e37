/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "cleanup.h"
#include "layers.h"
#include "log.h"
#include "modify.h"
#include "modules.h"
#include "netnic.h"
#include "netns.h"
#include "plan9.h"
#include "scsi.h"
#include "virtiofs.h"
#include "vpmem.h"

/* One entry per resource kind, added by the device issues (SCSI, VPMem, network, Plan9,
 * virtio-fs). */
static const struct modify_handler handlers[] = {
    {"MappedVirtualDisk", scsi_modify},
    {"VPMemDevice", vpmem_modify},
    {"NetworkNamespace", netns_modify},
    {"Network", netnic_modify},
    {"MappedDirectory", plan9_modify},
    {"VirtioFs", virtiofs_modify},
    {"CombinedLayers", layers_modify},
    {NULL, NULL},
};

struct deferred {
    struct deferred *next;
    struct request *req;
};

static struct deferred *waiting_head, **waiting_tail = &waiting_head;

struct parsed {
    const struct modify_handler *handler;
    enum modify_request_type type;
    json_t *settings;
};

static int
parse(struct request *req, struct parsed *out)
{
    struct modify_request m;
    int rc = modify_request_decode(req, &m);
    if (rc < 0)
        return rc;
    out->type = m.type;
    out->settings = m.settings;
    for (const struct modify_handler *h = handlers; h->resource_type; h++) {
        if (!strcmp(h->resource_type, m.resource_type)) {
            out->handler = h;
            return 0;
        }
    }
    return request_fail(req, "the resource type \"%s\" is not supported", m.resource_type);
}

static int
run(struct bridge *b, struct request *req, const struct parsed *p)
{
    log_debug("modify %s %s", p->handler->resource_type, modify_request_type_name(p->type));
    return p->handler->fn(b, req, p->type, p->settings);
}

int
modify_handle(struct bridge *b, struct request *req)
{
    struct parsed p = {0};
    int rc = parse(req, &p);
    if (rc < 0)
        return rc;
    if (modules_late_done())
        return run(b, req, &p);
    log_debug("modify %s: waiting for the late modules", p.handler->resource_type);
    struct deferred *d = xcalloc(1, sizeof(*d));
    d->req = req;
    *waiting_tail = d;
    waiting_tail = &d->next;
    return BRIDGE_DEFERRED;
}

bool
modify_pending(void)
{
    return waiting_head != NULL;
}

void
modify_late_ready(struct bridge *b)
{
    struct deferred *d = waiting_head;
    waiting_head = NULL;
    waiting_tail = &waiting_head;
    while (d) {
        struct deferred *next = d->next;
        struct parsed p = {0};
        int rc = parse(d->req, &p); /* same body: cannot fail now */
        if (rc == 0)
            rc = run(b, d->req, &p);
        if (rc != BRIDGE_DEFERRED)
            bridge_reply(b, d->req, rc);
        free(d);
        d = next;
    }
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "clone.h"
#include "clonereq.h"
#include "container.h"
#include "devwait.h"
#include "log.h"
#include "modify.h"
#include "modules.h"
#include "plan9.h"
#include "process.h"
#include "share.h"
#include "stream.h"

static struct request *waiting; /* a Quiesce waiting for the late modules */

/* What would make a clone inherit work in progress: a refusal naming it, or 0. */
static int
check_idle(struct request *req)
{
    cleanup_json json_t *procs = process_list();
    cleanup_json json_t *ctrs = container_list();
    size_t np = json_array_size(procs), nc = json_array_size(ctrs);
    if (np)
        return request_fail(req, "quiesce: %zu process%s running", np, np == 1 ? " is" : "es are");
    if (nc)
        return request_fail(req, "quiesce: %zu container%s", nc, nc == 1 ? " exists" : "s exist");
    if (stream_count())
        return request_fail(req, "quiesce: %zu process stream%s still open", stream_count(),
                            stream_count() == 1 ? " is" : "s are");
    if (share_count())
        return request_fail(req, "quiesce: %zu share%s mounted", share_count(),
                            share_count() == 1 ? " is" : "s are");
    if (devwait_pending() || modify_pending())
        return request_fail(req, "quiesce: a device request is in progress");
    return 0;
}

static int
quiesce(struct bridge *b, struct request *req)
{
    int rc = check_idle(req);
    if (rc < 0)
        return rc;
    rc = plan9_export_unmount();
    if (rc < 0)
        return request_fail(req, "quiesce: unmount the 9p export %s: %s", PLAN9_ROOT,
                            strerror(-rc));
    sync();
    log_info("quiesced for a template save");
    bridge_quiesce(b);
    return 0;
}

int
clone_handle_quiesce(struct bridge *b, struct request *req)
{
    int rc = quiesce_params_parse(req);
    if (rc < 0)
        return rc;
    if (waiting)
        return request_fail(req, "quiesce: another Quiesce is waiting");
    if (modules_late_done())
        return quiesce(b, req);
    log_debug("quiesce: waiting for the late modules");
    waiting = req;
    return BRIDGE_DEFERRED;
}

void
clone_late_ready(struct bridge *b)
{
    struct request *req = waiting;
    waiting = NULL;
    if (req)
        bridge_reply(b, req, quiesce(b, req));
}

/* Credit the host's bytes to the input pool and reseed the CRNG from it: clones share the
 * template's random state, and only a reseed makes the next read differ. */
static int
reseed(struct request *req, const struct resume_params *p)
{
    cleanup_close int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return request_fail(req, "resume: open /dev/urandom: %s", strerror(errno));
    /* struct rand_pool_info ends in a flexible array: the bytes follow it in one buffer */
    _Alignas(struct rand_pool_info) uint8_t in[sizeof(struct rand_pool_info) + CLONE_ENTROPY_MAX];
    struct rand_pool_info *info = (struct rand_pool_info *)in;
    info->entropy_count = (int)(p->entropy_len * 8);
    info->buf_size = (int)p->entropy_len;
    memcpy(in + sizeof(*info), p->entropy, p->entropy_len);
    int rc = ioctl(fd, RNDADDENTROPY, in);
    explicit_bzero(in, sizeof(in));
    if (rc < 0)
        return request_fail(req, "resume: RNDADDENTROPY: %s", strerror(errno));
    if (ioctl(fd, RNDRESEEDCRNG) < 0)
        return request_fail(req, "resume: RNDRESEEDCRNG: %s", strerror(errno));
    return 0;
}

int
clone_handle_resume(struct bridge *b, struct request *req)
{
    struct resume_params p;
    int rc = resume_params_parse(req, &p);
    if (rc < 0)
        return rc;
    if (p.realtime_us) {
        struct timespec ts = {.tv_sec = (time_t)(p.realtime_us / 1000000),
                              .tv_nsec = (long)(p.realtime_us % 1000000) * 1000};
        if (clock_settime(CLOCK_REALTIME, &ts) < 0)
            return request_fail(req, "resume: set the clock: %s", strerror(errno));
    }
    if (p.entropy_len && (rc = reseed(req, &p)) < 0)
        return rc;
    explicit_bzero(p.entropy, sizeof(p.entropy));
    if (p.hostname[0] && sethostname(p.hostname, strlen(p.hostname)) < 0)
        return request_fail(req, "resume: set the hostname to %s: %s", p.hostname, strerror(errno));
    bridge_resume(b);
    log_info("resumed%s%s", p.hostname[0] ? " as " : "", p.hostname);
    return 0;
}

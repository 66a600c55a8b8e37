/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The verbs that are one request to the holder: start, kill, ps, state; and the refusals. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "rtlog.h"
#include "rtstate.h"
#include "runtime.h"

int
rt_call(const struct rt_cmd *c, enum rtmsg_type type, uint16_t flags, int32_t arg, const int *fds,
        size_t nfds, struct rtmsg *m, int timeout_ms)
{
    const char *verb = rtmsg_type_name(type);
    cleanup_close int dirfd = rtstate_open(c->root, c->id);
    if (dirfd == -ENOENT)
        return rtlog_error("container %s does not exist", c->id);
    if (dirfd < 0)
        return rtlog_error("%s %s: state directory: %s", verb, c->id, strerror(-dirfd));
    cleanup_close int s = rtstate_connect(dirfd);
    if (s == -ECONNREFUSED || s == -ENOENT)
        return -ENOTCONN; /* no holder: the container has stopped */
    if (s < 0)
        return rtlog_error("%s %s: holder: %s", verb, c->id, strerror(-s));
    int rc = rtmsg_send(s, type, flags, arg, NULL, fds, nfds);
    char err[256] = "";
    if (rc == 0)
        rc = rtmsg_recv(s, m, timeout_ms, err, sizeof(err));
    if (rc == -ECONNRESET || rc == -EPIPE)
        return -ENOTCONN;
    if (rc < 0)
        return rtlog_error("%s %s: the holder did not answer: %s", verb, c->id,
                           err[0] ? err : strerror(-rc));
    rtmsg_close_fds(m);
    if (m->type == RTMSG_ERR)
        return rtlog_error("%s", m->payload);
    if (m->type != RTMSG_OK)
        return rtlog_error("%s %s: unexpected %s answer", verb, c->id, rtmsg_type_name(m->type));
    return 0;
}

static int
simple(const struct rt_cmd *c, enum rtmsg_type type, uint16_t flags, int32_t arg)
{
    struct rtmsg *m = xmalloc(sizeof(*m));
    int rc = rt_call(c, type, flags, arg, NULL, 0, m, RT_CALL_TIMEOUT_MS);
    free(m);
    if (rc == -ENOTCONN)
        return rtlog_error(RT_TEXT_NOT_RUNNING);
    return rc;
}

int
rt_start(const struct rt_cmd *c)
{
    return simple(c, RTMSG_START, 0, 0);
}

int
rt_kill(const struct rt_cmd *c)
{
    struct rtmsg *m = xmalloc(sizeof(*m));
    int rc = rt_call(c, RTMSG_KILL, c->all ? RTMSG_F_ALL : 0, c->signal, NULL, 0, m,
                     RT_CALL_TIMEOUT_MS);
    free(m);
    if (rc == -ENOTCONN) /* the holder is gone: so is everything it ran */
        return c->all ? 0 : rtlog_error(RT_TEXT_NOT_RUNNING);
    return rc;
}

int
rt_ps(const struct rt_cmd *c)
{
    struct rtmsg *m = xmalloc(sizeof(*m));
    int rc = rt_call(c, RTMSG_PS, 0, 0, NULL, 0, m, RT_CALL_TIMEOUT_MS);
    const char *list = rc == 0 ? m->payload : "[]";
    if (rc == 0 || rc == -ENOTCONN) {
        json_t *j = json_loads(list, 0, NULL);
        if (!json_is_array(j)) {
            rc = rtlog_error("ps %s: the holder sent no list", c->id);
        } else if (c->ps_json) {
            printf("%s\n", list);
            rc = 0;
        } else {
            printf("PID\n");
            size_t i;
            json_t *v;
            json_array_foreach(j, i, v) printf("%lld\n", (long long)json_integer_value(v));
            rc = 0;
        }
        json_decref(j);
    }
    free(m);
    return rc;
}

int
rt_state(const struct rt_cmd *c)
{
    cleanup_close int dirfd = rtstate_open(c->root, c->id);
    if (dirfd == -ENOENT)
        return rtlog_error("container %s does not exist", c->id);
    struct rt_state s;
    char err[256];
    if (dirfd < 0 || rtstate_read(dirfd, &s, err, sizeof(err)) < 0)
        return rtlog_error("state %s: %s", c->id, dirfd < 0 ? strerror(-dirfd) : err);
    struct rtmsg *m = xmalloc(sizeof(*m));
    int rc = rt_call(c, RTMSG_STATE, 0, 0, NULL, 0, m, RT_CALL_TIMEOUT_MS);
    const char *status = rc == 0 ? m->payload : "stopped";
    if (rc == 0 || rc == -ENOTCONN) {
        bool stopped = !strcmp(status, "stopped");
        json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "ociVersion", "1.0.2-dev",
                              "id", s.id, "pid", stopped ? 0 : (int)s.init_pid, "status", status,
                              "bundle", s.bundle, "rootfs", s.rootfs, "created", s.created, "owner",
                              "");
        char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(j);
        rc = text ? 0 : rtlog_error("state %s: cannot encode", c->id);
    }
    free(m);
    rtstate_free(&s);
    return rc;
}

int
rt_unsupported(const struct rt_cmd *c)
{
    const char *verb = c->verb == RT_PAUSE ? "pause" : c->verb == RT_RESUME ? "resume" : "update";
    return rtlog_error("%s is not supported by uvm-runtime (container %s runs in a utility VM "
                       "whose resources are fixed at create)",
                       verb, c->id);
}

void
rt_abandon(const struct rt_cmd *c, int dirfd)
{
    cleanup_close int s = rtstate_connect(dirfd);
    if (s < 0)
        return;
    struct rtmsg *m = xmalloc(sizeof(*m));
    char err[128];
    if (rtmsg_send(s, RTMSG_DELETE, RTMSG_F_FORCE, 0, NULL, NULL, 0) == 0 &&
        rtmsg_recv(s, m, RT_DELETE_TIMEOUT_MS, err, sizeof(err)) == 0) {
        rtmsg_close_fds(m);
        rtmsg_recv(s, m, RT_DELETE_TIMEOUT_MS, err, sizeof(err)); /* end: the holder exited */
    }
    free(m);
    (void)c;
}

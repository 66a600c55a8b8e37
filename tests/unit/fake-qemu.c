/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A model of QEMU's objects behind the fake QMP peer: see fake-qemu.h. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "fake-qemu.h"

#define MAX_OBJECTS 512

struct object {
    const char *kind; /* static */
    char *id;
    const char *ref_kind; /* a device's backend, or NULL */
    char *ref;
    int fd; /* a socket chardev's connection to its server, or -1 */
};

struct fake_qemu {
    pthread_mutex_t lock;
    struct object obj[MAX_OBJECTS];
    size_t n;
    unsigned next_fd;
    unsigned served, fail_at; /* fail when served reaches fail_at (0: never) */
    bool fail_on;             /* ... and every command after it */
    char failed[64];
};

struct fake_qemu *
fake_qemu_new(void)
{
    struct fake_qemu *q = xcalloc(1, sizeof(*q));
    pthread_mutex_init(&q->lock, NULL);
    q->next_fd = 100;
    return q;
}

void
fake_qemu_free(struct fake_qemu *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++) {
        free(q->obj[i].id);
        free(q->obj[i].ref);
        if (q->obj[i].fd >= 0)
            close(q->obj[i].fd);
    }
    pthread_mutex_destroy(&q->lock);
    free(q);
}

static struct object *
find(struct fake_qemu *q, const char *kind, const char *id)
{
    for (size_t i = 0; id && i < q->n; i++)
        if (!strcmp(q->obj[i].kind, kind) && !strcmp(q->obj[i].id, id))
            return &q->obj[i];
    return NULL;
}

static void
add(struct fake_qemu *q, const char *kind, const char *id, const char *ref_kind, const char *ref)
{
    if (q->n == MAX_OBJECTS)
        abort();
    q->obj[q->n++] = (struct object){kind, xstrdup(id), ref_kind, ref ? xstrdup(ref) : NULL, -1};
}

static void
del(struct fake_qemu *q, struct object *o)
{
    free(o->id);
    free(o->ref);
    if (o->fd >= 0)
        close(o->fd); /* the server sees its client go */
    *o = q->obj[--q->n];
}

/* The device using backend (kind, id), if any. */
static struct object *
user_of(struct fake_qemu *q, const char *kind, const char *id)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->obj[i].ref_kind && !strcmp(q->obj[i].ref_kind, kind) && !strcmp(q->obj[i].ref, id))
            return &q->obj[i];
    return NULL;
}

static json_t *__attribute__((format(printf, 2, 3)))
error(const char *cls, const char *fmt, ...)
{
    char desc[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    return json_pack("{s:{s:s, s:s}}", "error", "class", cls, "desc", desc);
}

static json_t *
ok(void)
{
    return json_pack("{s:{}}", "return");
}

static const char *
str(const json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

static json_t *
add_fd(struct fake_qemu *q, const json_t *args, size_t nfds)
{
    if (nfds != 1)
        return error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
    /* QEMU (monitor/fds.c): the set named, or the lowest id not in use */
    json_t *want = json_object_get(args, "fdset-id");
    unsigned set = want ? (unsigned)json_integer_value(want) : 0;
    char id[16];
    snprintf(id, sizeof(id), "%u", set);
    while (!want && find(q, "fdset", id))
        snprintf(id, sizeof(id), "%u", ++set);
    if (!find(q, "fdset", id))
        add(q, "fdset", id, NULL, NULL);
    return json_pack("{s:{s:i, s:i}}", "return", "fdset-id", (int)set, "fd", (int)q->next_fd++);
}

/* A backend's add: kind, the key naming it; the netdev's "fd" and the block node's fd set
 * must exist. */
/* A client socket chardev connects to its server at once, as QEMU's does at chardev-add (a
 * vhost-user-fs daemon then serves it until it goes). *fd: the connection or -1. */
static json_t *
chardev_connect(const json_t *args, int *fd)
{
    *fd = -1;
    const json_t *data = json_object_get(json_object_get(args, "backend"), "data");
    const char *path = str(json_object_get(json_object_get(data, "addr"), "data"), "path");
    if (!path || json_is_true(json_object_get(data, "server")))
        return NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (s >= 0)
            close(s);
        return error("GenericError", "Failed to connect to '%s': %s", path, strerror(e));
    }
    *fd = s;
    return NULL;
}

static json_t *
backend_add(struct fake_qemu *q, const char *kind, const char *key, const json_t *args)
{
    const char *id = str(args, key);
    if (!id)
        return error("GenericError", "Parameter '%s' is missing", key);
    if (find(q, kind, id))
        return error("GenericError", "Duplicate ID '%s'", id);
    const char *file = str(json_object_get(args, "file"), "filename");
    unsigned set = 0;
    char setid[16];
    if (file && sscanf(file, "/dev/fdset/%u", &set) == 1) {
        snprintf(setid, sizeof(setid), "%u", set);
        if (!find(q, "fdset", setid))
            return error("GenericError", "Could not open '%s': No such file or directory", file);
    }
    const char *fdname = !strcmp(kind, "netdev") ? str(args, "fd") : NULL;
    struct object *named = fdname ? find(q, "fdname", fdname) : NULL;
    if (fdname && !named)
        return error("GenericError", "File descriptor named '%s' has not been found", fdname);
    int conn = -1;
    json_t *refused = !strcmp(kind, "chardev") ? chardev_connect(args, &conn) : NULL;
    if (refused)
        return refused;
    if (named)
        del(q, named); /* the netdev takes it */
    add(q, kind, id, NULL, NULL);
    q->obj[q->n - 1].fd = conn;
    return ok();
}

static json_t *
backend_del(struct fake_qemu *q, const char *kind, const char *key, const json_t *args)
{
    const char *id = str(args, key);
    struct object *o = find(q, kind, id);
    if (!o)
        return error("GenericError", "Failed to find '%s'", id);
    if (strcmp(kind, "netdev") && user_of(q, kind, id))
        return error("GenericError", "'%s' is busy", id);
    del(q, o);
    return ok();
}

static json_t *
device_add(struct fake_qemu *q, const json_t *args)
{
    static const struct {
        const char *prop, *kind;
    } refs[] = {{"drive", "block"}, {"memdev", "object"}, {"netdev", "netdev"},
                {"chardev", "chardev"}};
    const char *id = str(args, "id");
    if (!id)
        return error("GenericError", "a device without an id");
    if (find(q, "device", id))
        return error("GenericError", "Duplicate device ID '%s' for device", id);
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        const char *ref = str(args, refs[i].prop);
        if (!ref)
            continue;
        if (!find(q, refs[i].kind, ref))
            return error("GenericError", "Property can't find value '%s'", ref);
        add(q, "device", id, refs[i].kind, ref);
        return ok();
    }
    add(q, "device", id, NULL, NULL);
    return ok();
}

static json_t *
device_del(struct fake_qemu *q, const json_t *args, json_t **event)
{
    const char *id = str(args, "id");
    struct object *o = find(q, "device", id);
    if (!o)
        return error("DeviceNotFound", "Device '%s' not found", id);
    char path[160];
    snprintf(path, sizeof(path), "/machine/peripheral/%s", id);
    *event = json_pack("{s:s, s:{s:s, s:s}, s:{s:i, s:i}}", "event", "DEVICE_DELETED", "data",
                       "device", id, "path", path, "timestamp", "seconds", 1, "microseconds", 0);
    del(q, o);
    return ok();
}

static json_t *
named(struct fake_qemu *q, const char *command, const json_t *args, size_t nfds)
{
    const char *name = str(args, "fdname");
    struct object *o = find(q, "fdname", name);
    if (!strcmp(command, "getfd")) {
        if (nfds != 1)
            return error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
        if (!o)
            add(q, "fdname", name ? name : "", NULL, NULL);
        return ok();
    }
    if (!o)
        return error("GenericError", "File descriptor named '%s' not found", name);
    del(q, o);
    return ok();
}

static json_t *
model(struct fake_qemu *q, const char *c, const json_t *args, size_t nfds, json_t **event)
{
    if (!strcmp(c, "add-fd"))
        return add_fd(q, args, nfds);
    if (!strcmp(c, "remove-fd")) {
        char id[16];
        snprintf(id, sizeof(id), "%d", (int)json_integer_value(json_object_get(args, "fdset-id")));
        struct object *o = find(q, "fdset", id);
        if (!o)
            return error("GenericError", "File descriptor named 'fdset-id:%s' not found", id);
        del(q, o);
        return ok();
    }
    if (!strcmp(c, "getfd") || !strcmp(c, "closefd"))
        return named(q, c, args, nfds);
    if (!strcmp(c, "blockdev-add"))
        return backend_add(q, "block", "node-name", args);
    if (!strcmp(c, "blockdev-del"))
        return backend_del(q, "block", "node-name", args);
    if (!strcmp(c, "object-add"))
        return backend_add(q, "object", "id", args);
    if (!strcmp(c, "object-del"))
        return backend_del(q, "object", "id", args);
    if (!strcmp(c, "netdev_add"))
        return backend_add(q, "netdev", "id", args);
    if (!strcmp(c, "netdev_del"))
        return backend_del(q, "netdev", "id", args);
    if (!strcmp(c, "chardev-add"))
        return backend_add(q, "chardev", "id", args);
    if (!strcmp(c, "chardev-remove"))
        return backend_del(q, "chardev", "id", args);
    if (!strcmp(c, "device_add"))
        return device_add(q, args);
    if (!strcmp(c, "device_del"))
        return device_del(q, args, event);
    return ok();
}

json_t *
fake_qemu_answer(struct fake_qemu *q, const json_t *cmd, size_t nfds, json_t **event)
{
    *event = NULL;
    const char *c = str(cmd, "execute");
    json_t *args = json_object_get(cmd, "arguments");
    pthread_mutex_lock(&q->lock);
    json_t *reply;
    ++q->served;
    if (q->fail_at && (q->served == q->fail_at || (q->fail_on && q->served > q->fail_at))) {
        if (q->served == q->fail_at)
            snprintf(q->failed, sizeof(q->failed), "%s", c ? c : "?");
        reply = error("GenericError", "injected failure of %s", c);
    } else {
        reply = model(q, c ? c : "", args, nfds, event);
    }
    pthread_mutex_unlock(&q->lock);
    return reply;
}

static void
fail(struct fake_qemu *q, unsigned n, bool on)
{
    pthread_mutex_lock(&q->lock);
    q->fail_at = n ? q->served + n : 0;
    q->fail_on = on;
    if (n)
        q->failed[0] = '\0';
    pthread_mutex_unlock(&q->lock);
}

void
fake_qemu_fail_nth(struct fake_qemu *q, unsigned n)
{
    fail(q, n, false);
}

void
fake_qemu_fail_from(struct fake_qemu *q, unsigned n)
{
    fail(q, n, true);
}

unsigned
fake_qemu_served(struct fake_qemu *q)
{
    pthread_mutex_lock(&q->lock);
    unsigned n = q->served;
    pthread_mutex_unlock(&q->lock);
    return n;
}

const char *
fake_qemu_failed(struct fake_qemu *q)
{
    return q->failed; /* read after the call that failed, by the test's thread */
}

static int
cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *
fake_qemu_objects(struct fake_qemu *q)
{
    pthread_mutex_lock(&q->lock);
    char **names = xcalloc(q->n + 1, sizeof(char *));
    size_t len = 1;
    for (size_t i = 0; i < q->n; i++) {
        names[i] = xasprintf("%s:%s", q->obj[i].kind, q->obj[i].id);
        len += strlen(names[i]) + 1;
    }
    size_t n = q->n;
    pthread_mutex_unlock(&q->lock);
    qsort(names, n, sizeof(char *), cmp);
    char *out = xmalloc(len);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, names[i]);
        free(names[i]);
    }
    free(names);
    return out;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A fake guest agent: see fake-guest.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cleanup.h"
#include "fake-guest.h"
#include "proto.h"

static bool
read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

static void *
guest_main(void *arg)
{
    struct fake_guest *g = arg;
    for (;;) {
        uint8_t hdr[PROTO_HEADER_SIZE];
        struct proto_header h;
        if (!read_full(g->fd, hdr, sizeof(hdr)) || proto_header_decode(hdr, &h) < 0)
            break;
        size_t len = h.size - PROTO_HEADER_SIZE;
        cleanup_free char *payload = xcalloc(1, len + 1);
        if (!read_full(g->fd, payload, len))
            break;
        if (PROTO_CLASS(h.type) != PROTO_CLASS_REQUEST)
            continue;
        cleanup_json json_t *j = json_loads(payload, 0, NULL);
        json_t *request = json_object_get(j, "Request");
        pthread_mutex_lock(&g->lock);
        json_array_append(g->requests, request);
        json_array_append_new(g->calls, json_pack("[I, O]", (json_int_t)h.type, j));
        bool counts = true;
        if (g->fail_match) {
            const char *res = json_string_value(json_object_get(request, "ResourceType"));
            const char *type = json_string_value(json_object_get(request, "RequestType"));
            char kind[128];
            snprintf(kind, sizeof(kind), "%s/%s", res ? res : "", type ? type : "");
            counts = !strcmp(kind, g->fail_match);
        }
        if (counts && g->freeze_skip > 0) {
            g->freeze_skip--;
        } else if (counts && g->freeze_next > 0) {
            g->freeze_next--;
            g->frozen = true;
            while (g->frozen) /* received, and nothing more read or answered */
                pthread_cond_wait(&g->thaw, &g->lock);
        }
        bool fail = false;
        if (counts && g->fail_skip > 0) {
            g->fail_skip--;
        } else if (counts && g->fail_next > 0) {
            fail = true;
            g->fail_next--;
        }
        unsigned delay = g->delay_ms;
        void (*hook)(void *, const json_t *) = g->on_request;
        const char *(*respond)(void *, uint32_t) = g->respond;
        void *opaque = g->opaque;
        pthread_mutex_unlock(&g->lock);
        if (hook)
            hook(opaque, request);
        if (delay) {
            struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = delay % 1000 * 1000000L};
            nanosleep(&ts, NULL);
        }
        const char *resp = fail ? "{\"Result\":-2147467259,\"ErrorMessage\":\"mount failed\"}"
                                : "{\"Result\":0}";
        const char *custom = !fail && respond ? respond(opaque, h.type) : NULL;
        if (custom)
            resp = custom;
        uint8_t out[PROTO_HEADER_SIZE];
        struct proto_header rh = {.type = PROTO_RESPONSE_OF(h.type),
                                  .size = (uint32_t)(PROTO_HEADER_SIZE + strlen(resp)),
                                  .id = h.id};
        proto_header_encode(out, &rh);
        /* MSG_NOSIGNAL: a late answer may find the host gone (it timed out and closed) */
        if (send(g->fd, out, sizeof(out), MSG_NOSIGNAL) != (ssize_t)sizeof(out) ||
            send(g->fd, resp, strlen(resp), MSG_NOSIGNAL) != (ssize_t)strlen(resp))
            break;
    }
    return NULL;
}

void
fake_guest_start(struct fake_guest *g, int fd)
{
    g->fd = fd;
    g->requests = json_array();
    g->calls = json_array();
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->thaw, NULL);
    pthread_create(&g->thread, NULL, guest_main, g);
}

void
fake_guest_thaw(struct fake_guest *g)
{
    pthread_mutex_lock(&g->lock);
    g->freeze_next = 0;
    g->freeze_skip = 0;
    g->frozen = false;
    pthread_cond_broadcast(&g->thaw);
    pthread_mutex_unlock(&g->lock);
}

void
fake_guest_stop(struct fake_guest *g)
{
    fake_guest_thaw(g); /* a guest still frozen: its answer finds the host gone */
    pthread_join(g->thread, NULL);
    close(g->fd);
    json_decref(g->requests);
    json_decref(g->calls);
    pthread_cond_destroy(&g->thaw);
    pthread_mutex_destroy(&g->lock);
}

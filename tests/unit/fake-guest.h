/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fake guest agent for the resource tests (scsi.c, vpmem.c, ...; the fixture is fixture.h).
 *
 * The fake guest answers every request on its end of a socketpair (the bridge has the other
 * end) with {"Result":0}, or with an error for the next `fail_next` ones, after `delay_ms`; it
 * records the "Request" object of each (ModifySettings) request in `requests`, in order, and
 * every request's type and body in `calls`; frames that are not requests are ignored.
 * `fail_match` ("ResourceType/RequestType", e.g. "Network/Remove") limits fail_next and
 * fail_skip to the requests it names; `fail_skip` lets that many pass before failing.
 *
 * A frozen agent: `freeze_next` holds the next n requests (after `freeze_skip` pass; fail_match
 * limits both) received, recorded and unanswered, and the guest reads nothing more, until
 * fake_guest_thaw(); then each held request is answered (late: the host may have given up on
 * it) and the guest goes on.
 */
#ifndef UVM_TESTS_FAKE_GUEST_H
#define UVM_TESTS_FAKE_GUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>


struct fake_guest {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock; /* guards what follows: tests set them before calls, not during */
    int fail_next;        /* answer the next n requests with an error ("mount failed") */
    int fail_skip;        /* ... after letting this many through */
    const char *fail_match; /* NULL: every request counts, else only "ResourceType/RequestType" */
    unsigned delay_ms;    /* wait before each answer */
    int freeze_next;      /* hold the next n requests unanswered until thawed */
    int freeze_skip;      /* ... after letting this many through */
    bool frozen;          /* a request is held now */
    pthread_cond_t thaw;  /* frozen cleared */
    json_t *requests;     /* the "Request" objects received */
    json_t *calls;        /* every request received: [type, whole body], in order */
    /* Called from the fake guest's thread for each request, before it is answered. */
    void (*on_request)(void *opaque, const json_t *request);
    /* Called from the fake guest's thread: the response text for a request of this type when it
     * is not failed (it must stay valid), or NULL for {"Result":0}. */
    const char *(*respond)(void *opaque, uint32_t type);
    void *opaque;
};

/* Serve requests on fd (owned from now on) from a thread. */
void fake_guest_start(struct fake_guest *g, int fd);
/* Let a frozen guest answer what it holds and go on (freeze_next is cleared). */
void fake_guest_thaw(struct fake_guest *g);
/* After the other end was closed: join the thread, close fd, free what was recorded. */
void fake_guest_stop(struct fake_guest *g);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Log lines of one agent bridge (bridge.c). They are made while the bridge lock is held and
 * handed to the log handler after it is released: a slow handler must not stall the channel,
 * and must be free to call into libuvm. Every function takes the bridge lock as held, except
 * bridgelog_deliver, which runs without it.
 *
 * The guest is hostile, so the lines it causes (its Log notifications and our complaints about
 * what it sent) pass a token bucket per VM: at most BRIDGELOG_BURST at once and BRIDGELOG_RATE a
 * second after that. The dropped ones are counted and reported in one WARNING line,
 * "guest: N log lines suppressed", as soon as a token is back (the report costs one). Guest text
 * is sanitised (sanitize.h) and cut to GUEST_TEXT_MAX bytes; guest-chosen levels stop at WARNING
 * unless the caller trusts them.
 */
#ifndef UVM_LIB_BRIDGELOG_H
#define UVM_LIB_BRIDGELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvm.h"

#define GUEST_TEXT_MAX 2048 /* longest guest error or log text we pass on, in bytes */
#define BRIDGELOG_BURST 100u
#define BRIDGELOG_RATE 20u        /* guest-caused lines per second, after the burst */
#define BRIDGELOG_MAX_QUEUED 256u /* lines waiting for delivery; more are counted and dropped */

struct bridgelog_line;

struct bridgelog {
    const char *vm_id; /* borrowed */
    bool trust_levels;
    int64_t (*clock)(void *opaque); /* monotonic microseconds */
    void *clock_opaque;
    /* waiting for delivery */
    struct bridgelog_line *head, **tail;
    unsigned queued, overflow;
    /* token bucket for guest-caused lines */
    unsigned tokens;
    int64_t last_us;     /* when the tokens were last counted */
    unsigned suppressed; /* dropped since the last report */
};

/* A taken batch of lines, delivered without the lock. */
struct bridgelog_batch {
    struct bridgelog_line *head;
    unsigned overflow;
};

void bridgelog_init(struct bridgelog *l, const char *vm_id, bool trust_guest_levels);
/* Lines not delivered yet are freed. */
void bridgelog_release(struct bridgelog *l);
/* Test hook: the bucket's clock (NULL: CLOCK_MONOTONIC); the bucket starts full at its now. */
void bridgelog_set_clock(struct bridgelog *l, int64_t (*clock)(void *opaque), void *opaque);

/* A line of our own. */
void bridgelog_add(struct bridgelog *l, enum uvm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A line the guest caused: passed on only if the bucket allows. */
void bridgelog_guest(struct bridgelog *l, enum uvm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A Log notification's payload: {"level": debug|info|warning|error|fatal, "msg": string};
 * anything else is a malformed notification (one guest-caused warning). */
void bridgelog_notification(struct bridgelog *l, const uint8_t *data, size_t len);

/* poll() timeout until the suppressed lines can be reported; -1 when there are none. */
int bridgelog_timeout_ms(struct bridgelog *l);
/* Report the suppressed lines if a token is back. */
void bridgelog_tick(struct bridgelog *l);

/* Take the queued lines; hand them to bridgelog_deliver after unlocking. */
struct bridgelog_batch bridgelog_take(struct bridgelog *l);
void bridgelog_deliver(struct bridgelog_batch batch, const char *vm_id);

#endif

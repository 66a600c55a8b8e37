/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bridge: one single-threaded poll loop over the host channel (framed per
 * docs/protocol.md), a signalfd (SIGCHLD, SIGIO) and the stdio pipes of processes. Requests
 * are dispatched through a table by message type; a handler either answers at once or keeps
 * the request and answers later (WaitForProcess, ModifySettings before late modules).
 */
#ifndef GCS_BRIDGE_H
#define GCS_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

struct bridge;

/* Handler return values: 0 = answer with req->result (NULL: {}), <0 = answer with req->error,
 * BRIDGE_DEFERRED = the handler owns req and answers later with bridge_reply(). */
#define BRIDGE_DEFERRED 1
typedef int bridge_handler_fn(struct bridge *b, struct request *req);

/* Queue one frame to the host (payload may be NULL when len is 0). */
int bridge_send(struct bridge *b, uint32_t type, uint64_t id, const void *payload, size_t len);

/* Answer req (result or error, per the handler convention rc) and free it. */
void bridge_reply(struct bridge *b, struct request *req, int rc);

/* Quiesce (clone.h): send nothing of our own, serve only NegotiateProtocol and Resume, take a
 * hang-up as "not connected yet". Resume: back to normal. */
void bridge_quiesce(struct bridge *b);
void bridge_resume(struct bridge *b);

/* Run the loop on the opened port fd until the host goes away (0) or a fatal error (-errno,
 * logged). init_start_us: CLOCK_BOOTTIME at the top of main (for GuestTimes). */
int bridge_run(int port_fd, int64_t init_start_us);

/* CLOCK_BOOTTIME / CLOCK_MONOTONIC in micro/milliseconds. */
int64_t boottime_us(void);
int64_t monotonic_ms(void);

#endif

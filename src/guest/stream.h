/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Process stdio streams multiplexed over the bridge (docs/protocol.md, "Streams and flow
 * control"). Output streams (stdout/stderr, guest -> host) are read only while fewer than
 * PROTO_STREAM_WINDOW data frames are unacknowledged; an empty data frame ends them. Input
 * streams (stdin) queue at most PROTO_STREAM_WINDOW chunks and acknowledge each one once it
 * has been written to the process's pipe.
 */
#ifndef GCS_STREAM_H
#define GCS_STREAM_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bridge;
struct stream;

/* Called once the end-of-stream frame of an output stream has been queued. It may free the
 * stream. */
typedef void stream_end_fn(struct bridge *b, void *ctx);

/* Create streams over a non-blocking pipe end (consumed: closed by stream_free). */
struct stream *stream_new_output(uint64_t id, int fd, stream_end_fn *on_end, void *ctx);
struct stream *stream_new_input(uint64_t id, int fd);
void stream_free(struct stream *s);

/* Stream frames received from the host. */
void stream_on_data(struct bridge *b, uint64_t id, const uint8_t *data, size_t len);
void stream_on_ack(struct bridge *b, uint64_t id);

/* Poll integration: fill up to max entries for the streams that wait for I/O, with keys[i]
 * identifying the stream (stable even if streams are freed meanwhile). */
size_t stream_count(void);
size_t stream_poll_fill(struct pollfd *pfds, uint64_t *keys, size_t max);
void stream_poll_handle(struct bridge *b, uint64_t key, short revents);

#endif

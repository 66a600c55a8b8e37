/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bodies of the template requests, decoded and checked (pure: no I/O; clone.c acts on
 * them): Quiesce {} and Resume {"Hostname", "Entropy", "RealTimeUs"}, every Resume field
 * optional (absent: left as it is). Fields other than these and the envelope's "ActivityId"
 * and "ContainerId" are refused, as is a Quiesce or Resume for a container.
 */
#ifndef GCS_CLONEREQ_H
#define GCS_CLONEREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"

#define CLONE_HOSTNAME_MAX 64 /* HOST_NAME_MAX */
#define CLONE_ENTROPY_MIN 32  /* bytes: at least 256 bits, what the CRNG needs to be seeded */
#define CLONE_ENTROPY_MAX 256
/* 2^62 us is year 148,000: far enough, and safely inside time_t and int64 arithmetic. */
#define CLONE_REALTIME_MAX (1ull << 62)

struct resume_params {
    char hostname[CLONE_HOSTNAME_MAX + 1]; /* "": unchanged */
    uint8_t entropy[CLONE_ENTROPY_MAX];
    size_t entropy_len;   /* 0: none */
    uint64_t realtime_us; /* 0: the clock is not set */
};

/* Quiesce: no fields. 0, or -EINVAL with req->error. */
int quiesce_params_parse(struct request *req);

/* Resume: "Hostname" 1..64 of [A-Za-z0-9._-], not starting with '.' (a VM id); "Entropy" an even
 * number of hex digits (either case) for CLONE_ENTROPY_MIN..MAX bytes; "RealTimeUs" an integer
 * in 1..CLONE_REALTIME_MAX (CLOCK_REALTIME in microseconds). 0, or -EINVAL with req->error. */
int resume_params_parse(struct request *req, struct resume_params *out);

#endif

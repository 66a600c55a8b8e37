/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Monotonic time in microseconds and deadline arithmetic for poll(). */
#ifndef UVM_COMMON_TIMEUTIL_H
#define UVM_COMMON_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

#define DEADLINE_NEVER INT64_MAX

static inline int64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t
deadline_after_ms(unsigned ms)
{
    return now_us() + (int64_t)ms * 1000;
}

/* Milliseconds left until deadline, for poll(): -1 for DEADLINE_NEVER, 0 once passed. */
static inline int
deadline_poll_ms(int64_t deadline)
{
    if (deadline == DEADLINE_NEVER)
        return -1;
    int64_t left = deadline - now_us();
    if (left <= 0)
        return 0;
    left = (left + 999) / 1000;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* Absolute CLOCK_MONOTONIC timespec of a deadline, for pthread_cond_timedwait with a monotonic
 * condattr. */
static inline struct timespec
deadline_timespec(int64_t deadline)
{
    struct timespec ts = {.tv_sec = deadline / 1000000, .tv_nsec = (deadline % 1000000) * 1000};
    return ts;
}

#endif

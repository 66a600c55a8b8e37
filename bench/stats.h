/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Timing and order statistics shared by the benchmarks. */
#ifndef UVM_BENCH_STATS_H
#define UVM_BENCH_STATS_H

#include <stdlib.h>
#include <time.h>

static inline double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v. */
static inline double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* v must be sorted. */
static inline double
percentile(const double *v, int n, double p)
{
    return v[(int)(p * (n - 1) + 0.5)];
}

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bytes and blocks the whole process has allocated and not freed (heapcount.c). */
#ifndef UVM_BENCH_HEAPCOUNT_H
#define UVM_BENCH_HEAPCOUNT_H

void heapcount_get(long *bytes, long *blocks);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The heap the process really holds: malloc and friends, defined in the executable, so that
 * every allocation of the process (libuvm's, jansson's, glibc's own) goes through here (glibc
 * supports replacing malloc this way), counted and passed on to glibc's. What glibc keeps for
 * reuse after a free (its per-thread caches, arenas) is not counted: mallinfo2() counts the
 * per-thread caches as "in use", which is why the soak does not judge by it.
 */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>

#include "heapcount.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static long live_bytes, live_blocks;

static void
count(void *p, long sign)
{
    if (!p)
        return;
    __atomic_add_fetch(&live_bytes, sign * (long)malloc_usable_size(p), __ATOMIC_RELAXED);
    __atomic_add_fetch(&live_blocks, sign, __ATOMIC_RELAXED);
}

void
heapcount_get(long *bytes, long *blocks)
{
    *bytes = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
    *blocks = __atomic_load_n(&live_blocks, __ATOMIC_RELAXED);
}

void *
malloc(size_t n)
{
    void *p = __libc_malloc(n);
    count(p, 1);
    return p;
}

void *
calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    count(p, 1);
    return p;
}

void
free(void *p)
{
    count(p, -1);
    __libc_free(p);
}

void *
realloc(void *old, size_t n)
{
    if (!old)
        return malloc(n);
    long before = (long)malloc_usable_size(old);
    void *p = __libc_realloc(old, n);
    if (p) {
        __atomic_add_fetch(&live_bytes, (long)malloc_usable_size(p) - before, __ATOMIC_RELAXED);
    } else if (n == 0) { /* freed */
        __atomic_add_fetch(&live_bytes, -before, __ATOMIC_RELAXED);
        __atomic_add_fetch(&live_blocks, -1, __ATOMIC_RELAXED);
    }
    return p;
}

void *
memalign(size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    count(p, 1);
    return p;
}

void *
aligned_alloc(size_t align, size_t n)
{
    return memalign(align, n);
}

int
posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *
valloc(size_t n)
{
    return memalign(4096, n);
}

void *
pvalloc(size_t n)
{
    return memalign(4096, (n + 4095) & ~(size_t)4095);
}

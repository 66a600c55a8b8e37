/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* FNV-1a 64: a fast, non-cryptographic hash (it tells files and names apart; it does not stand
 * up to someone forging an input). Start with FNV1A64_INIT, feed the bytes in order. */
#ifndef UVM_COMMON_HASH_H
#define UVM_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A64_INIT 0xcbf29ce484222325ull

static inline uint64_t
fnv1a64(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#endif

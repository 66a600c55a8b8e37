/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The guest RAM's file: QEMU maps it as the VM's memory (argv.h ARGV_RAM_FD,
 * memory-backend-file on /proc/self/fd/6). A cold VM's is a memfd the library makes (shared:
 * vhost-user devices need it), a clone's its template's RAM file (template.h), mapped private.
 */
#ifndef UVM_LIB_RAM_H
#define UVM_LIB_RAM_H

#include <stdint.h>

/* A new memfd of `bytes` (close-on-exec). 0 or -errno with the message set. */
int ram_memfd_new(uint64_t bytes, int *fd);

/* Copy the first `bytes` of src (a sparse file: a memfd) into dst (new and empty), sized to
 * `bytes`: holes and all-zero pages stay holes, so the copy holds only what the guest wrote and
 * costs in proportion to it. *copied: the bytes written. 0 or -errno with the message set. */
int ram_copy(int src, int dst, uint64_t bytes, uint64_t *copied);

#endif

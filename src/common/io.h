/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small I/O helpers shared by the host library and the guest agent. */
#ifndef UVM_COMMON_IO_H
#define UVM_COMMON_IO_H

#include <sys/types.h>

/* pread until len bytes, end of file or an error (EINTR retried): bytes read, or -errno. */
ssize_t pread_full(int fd, void *buf, size_t len, off_t off);

#endif

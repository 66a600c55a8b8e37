/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Disk and layer images on the host: opened once by the library (QEMU gets the open file, never
 * the path), format detected from the content, never from the name. */
#ifndef UVM_LIB_IMAGE_H
#define UVM_LIB_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

struct image_info {
    char *path;         /* canonical absolute path (owned) */
    const char *driver; /* QEMU block driver: "raw", "qcow2", "vpc" (VHD) or "vhdx" */
    uint64_t size;      /* file size in bytes */
    /* Bytes of plain data from offset 0: the file without a fixed VHD's footer; 0 when the
     * data is not laid out plainly (qcow2, VHDX, dynamic VHD). */
    uint64_t raw_size;
};

/* Open path once, read-only or (writable) read-write, O_CLOEXEC, and probe it from that fd
 * (image_probe). On success *fd owns the open file, which is what QEMU is to be given, and
 * info->path is the canonical path of the very file opened. Errors name the path, leave *fd
 * -1 and info holding nothing to release: UVM_E_NOT_FOUND for a missing file, UVM_E_INVALID_ARGUMENT for a directory or
 * another non-regular file, -EACCES when it cannot be opened in that mode, and image_probe's. */
int image_open(const char *path, bool writable, int *fd, struct image_info *info);

/* Detect the format and sizes of the open regular file fd (borrowed); name (copied into
 * info->path) is used in messages. A qcow2 image that names another host file is refused,
 * because QEMU is only ever given this one: a backing file is UVM_E_NOT_SUPPORTED (the message
 * names it), an external data file UVM_E_INVALID_ARGUMENT. */
int image_probe(int fd, const char *name, struct image_info *info);
void image_info_release(struct image_info *info);

#endif

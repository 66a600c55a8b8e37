/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Disk and layer images on the host: format detected from the content, never from the name. */
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

/* Resolve path (symlinks, "..") and detect its format. Errors name the path: UVM_E_NOT_FOUND
 * for a missing file, UVM_E_INVALID_ARGUMENT for a directory or another non-regular file,
 * -EACCES when it cannot be read (or written, when writable is asked). */
int image_probe(const char *path, bool writable, struct image_info *info);
void image_info_release(struct image_info *info);

#endif

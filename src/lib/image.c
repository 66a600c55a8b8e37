/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "image.h"

#define VHD_FOOTER 512

void
image_info_release(struct image_info *info)
{
    free(info->path);
    info->path = NULL;
}

static const char *
detect(int fd, uint64_t size)
{
    uint8_t head[8] = {0};
    if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head))
        return "raw";
    if (!memcmp(head, "QFI\xfb", 4))
        return "qcow2";
    if (!memcmp(head, "vhdxfile", 8))
        return "vhdx";
    if (!memcmp(head, "conectix", 8)) /* dynamic VHD: a copy of the footer leads */
        return "vpc";
    uint8_t foot[8] = {0};
    if (size >= VHD_FOOTER && pread(fd, foot, sizeof(foot), (off_t)(size - VHD_FOOTER)) ==
                                  (ssize_t)sizeof(foot) &&
        !memcmp(foot, "conectix", 8))
        return "vpc"; /* fixed VHD */
    return "raw";
}

int
image_probe(const char *path, bool writable, struct image_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!path || !*path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "image path is empty");
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        if (errno == ENOENT || errno == ENOTDIR)
            return uvm_error(UVM_E_NOT_FOUND, "image '%s' not found", path);
        return uvm_error_errno(-errno, "image '%s'", path);
    }
    struct stat st;
    if (stat(real, &st) < 0)
        return uvm_error_errno(-errno, "image '%s'", path);
    if (S_ISDIR(st.st_mode))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "image '%s' is a directory", path);
    if (!S_ISREG(st.st_mode))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "image '%s' is not a regular file", path);
    cleanup_close int fd = open(real, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return uvm_error_errno(-errno, "image '%s' cannot be opened %s", path,
                               writable ? "for writing" : "for reading");
    info->driver = detect(fd, (uint64_t)st.st_size);
    if (!strcmp(info->driver, "qcow2")) {
        /* A qcow2 header can name other host files: its backing file is never opened (the
         * block node gets "backing": null) and an external data file is refused. */
        uint8_t h[80] = {0};
        if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h)) {
            uint32_t version = (uint32_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
            if (version >= 3 && (h[79] & 0x4))
                return uvm_error(UVM_E_INVALID_ARGUMENT,
                                 "qcow2 image '%s' uses an external data file: refused", path);
        }
    }
    info->size = (uint64_t)st.st_size;
    if (!strcmp(info->driver, "raw"))
        info->raw_size = info->size;
    else if (!strcmp(info->driver, "vpc") && info->size > VHD_FOOTER) {
        uint8_t head[8] = {0};
        if (pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
            memcmp(head, "conectix", 8)) /* fixed: the footer is only at the end */
            info->raw_size = info->size - VHD_FOOTER;
    }
    info->path = xstrdup(real);
    return 0;
}

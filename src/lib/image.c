/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "image.h"

#define VHD_FOOTER 512
#define QCOW2_BACKING_NAME_MAX 1023 /* QEMU's limit */

void
image_info_release(struct image_info *info)
{
    free(info->path);
    info->path = NULL;
}

static uint64_t
be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
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

/* A qcow2 header can name other host files. QEMU only ever gets this file (and the block node
 * is added with "backing": null in case the header changes later), so an image that needs
 * another file is refused here, saying which. */
static int
check_qcow2(int fd, const char *name)
{
    uint8_t h[80] = {0};
    if (pread(fd, h, sizeof(h), 0) < 20)
        return 0; /* QEMU will say what is wrong with it */
    uint64_t off = be(h + 8, 8);
    uint32_t len = (uint32_t)be(h + 16, 4);
    if (off && len) {
        char file[QCOW2_BACKING_NAME_MAX + 1] = "";
        ssize_t got = len <= QCOW2_BACKING_NAME_MAX && off <= (uint64_t)INT64_MAX
                          ? pread(fd, file, len, (off_t)off)
                          : -1;
        file[got > 0 ? got : 0] = '\0';
        for (char *c = file; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                *c = '?';
        return uvm_error(UVM_E_NOT_SUPPORTED,
                         "qcow2 image '%s' has a backing file '%s': not supported (QEMU is given "
                         "this file only; flatten it with qemu-img convert)",
                         name, got > 0 ? file : "(unreadable name)");
    }
    if (be(h + 4, 4) >= 3 && (h[79] & 0x4))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "qcow2 image '%s' uses an external data file: refused", name);
    return 0;
}

int
image_probe(int fd, const char *name, struct image_info *info)
{
    memset(info, 0, sizeof(*info));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return uvm_error_errno(-errno, "image '%s'", name);
    if (!S_ISREG(st.st_mode))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "image '%s' is not a regular file", name);
    info->driver = detect(fd, (uint64_t)st.st_size);
    if (!strcmp(info->driver, "qcow2")) {
        int rc = check_qcow2(fd, name);
        if (rc < 0)
            return rc;
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
    info->path = xstrdup(name);
    return 0;
}

/* The canonical path of an open file: where /proc says it is, else realpath(path). Owned. */
static char *
canonical(int fd, const char *path)
{
    char link[32], real[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    if (n > 0 && real[0] == '/') {
        real[n] = '\0';
        return xstrdup(real);
    }
    return realpath(path, real) ? xstrdup(real) : xstrdup(path);
}

int
image_open(const char *path, bool writable, int *fd, struct image_info *info)
{
    memset(info, 0, sizeof(*info));
    *fd = -1;
    if (!path || !*path)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "image path is empty");
    /* O_NONBLOCK: a FIFO cannot hang the open; it is refused as not a regular file below. */
    cleanup_close int f =
        open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (f < 0 && (errno == ENOENT || errno == ENOTDIR))
        return uvm_error(UVM_E_NOT_FOUND, "image '%s' not found", path);
    if (f < 0 && errno == EISDIR)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "image '%s' is a directory", path);
    if (f < 0)
        return uvm_error_errno(-errno, "image '%s' cannot be opened %s", path,
                               writable ? "for writing" : "for reading");
    struct stat st;
    if (fstat(f, &st) < 0)
        return uvm_error_errno(-errno, "image '%s'", path);
    if (S_ISDIR(st.st_mode))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "image '%s' is a directory", path);
    int flags = fcntl(f, F_GETFL);
    if (flags < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return uvm_error_errno(-errno, "image '%s'", path);
    int rc = image_probe(f, path, info);
    if (rc < 0)
        return rc;
    free(info->path);
    info->path = canonical(f, path);
    *fd = steal_fd(&f);
    return 0;
}

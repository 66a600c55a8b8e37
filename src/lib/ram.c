/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "ram.h"

#define RAM_PAGE 4096u
#define RAM_CHUNK (1u << 20)

int
ram_memfd_new(uint64_t bytes, int *fd)
{
    *fd = memfd_create("uvm-ram", MFD_CLOEXEC);
    if (*fd < 0)
        return uvm_error_errno(-errno, "guest RAM: memfd_create");
    if (ftruncate(*fd, (off_t)bytes) < 0) {
        int rc = uvm_error_errno(-errno, "guest RAM: size the memfd to %llu bytes",
                                 (unsigned long long)bytes);
        close(*fd);
        *fd = -1;
        return rc;
    }
    return 0;
}

static bool
page_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = 0; i < RAM_PAGE / sizeof(*w); i++)
        if (w[i])
            return false;
    return true;
}

/* Write the non-zero pages of buf (len bytes, from file offset off) to dst. */
static int
write_pages(int dst, const uint8_t *buf, size_t len, uint64_t off, uint64_t *copied)
{
    for (size_t i = 0; i < len;) {
        if (page_zero(buf + i)) {
            i += RAM_PAGE;
            continue;
        }
        size_t j = i + RAM_PAGE;
        while (j < len && !page_zero(buf + j))
            j += RAM_PAGE;
        for (size_t done = i; done < j;) {
            ssize_t n = pwrite(dst, buf + done, j - done, (off_t)(off + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return uvm_error_errno(n < 0 ? -errno : -EIO, "guest RAM: write the copy");
            done += (size_t)n;
        }
        *copied += j - i;
        i = j;
    }
    return 0;
}

/* Copy [off, end) of src, a data extent. */
static int
copy_extent(int src, int dst, uint8_t *buf, uint64_t off, uint64_t end, uint64_t *copied)
{
    while (off < end) {
        size_t len = end - off < RAM_CHUNK ? (size_t)(end - off) : RAM_CHUNK;
        ssize_t n = pread(src, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return uvm_error_errno(n < 0 ? -errno : -EIO, "guest RAM: read at %llu",
                                   (unsigned long long)off);
        size_t whole = (size_t)n / RAM_PAGE * RAM_PAGE;
        if (whole == 0) { /* extents are page aligned in a memfd: never expected */
            memset(buf + n, 0, RAM_PAGE - (size_t)n);
            whole = RAM_PAGE;
        }
        int rc = write_pages(dst, buf, whole, off, copied);
        if (rc < 0)
            return rc;
        off += whole;
    }
    return 0;
}

int
ram_copy(int src, int dst, uint64_t bytes, uint64_t *copied)
{
    *copied = 0;
    if (bytes % RAM_PAGE)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "guest RAM: %llu bytes is not whole pages",
                         (unsigned long long)bytes);
    if (ftruncate(dst, (off_t)bytes) < 0)
        return uvm_error_errno(-errno, "guest RAM: size the copy");
    cleanup_free uint8_t *buf = xmalloc(RAM_CHUNK);
    for (uint64_t off = 0; off < bytes;) {
        off_t data = lseek(src, (off_t)off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* only holes from here */
        if (data < 0)
            return uvm_error_errno(-errno, "guest RAM: SEEK_DATA");
        off_t hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0)
            return uvm_error_errno(-errno, "guest RAM: SEEK_HOLE");
        uint64_t end = (uint64_t)hole < bytes ? (uint64_t)hole : bytes;
        int rc = copy_extent(src, dst, buf, (uint64_t)data, end, copied);
        if (rc < 0)
            return rc;
        off = end;
    }
    return 0;
}

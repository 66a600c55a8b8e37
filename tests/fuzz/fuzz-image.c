/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "image": image probing (src/lib/image.c): format detection from the content (qcow2,
 * VHDX, dynamic and fixed VHD, raw) and the qcow2 header checks (backing file, external data
 * file), on an in-memory file.
 * Input: 1 byte (bit 0: the file is sparse-extended by bytes 1-2 KiB, the last 512 input bytes
 * moved to its end, where a fixed VHD's footer is), then the file's bytes.
 * Properties: a driver among raw, qcow2, vpc, vhdx; raw_size is the size for raw, the size
 * less the footer for a fixed VHD, else 0; a refusal is UVM_E_NOT_SUPPORTED (backing file) or
 * UVM_E_INVALID_ARGUMENT (data file) on a qcow2, with a printable ASCII message.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "image.h"
#include "uvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    size_t gap = ((size_t)fuzz_u8(&in) | (size_t)fuzz_u8(&in) << 8) * 1024;
    int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    size_t tail = (flags & 1) ? (in.len < 512 ? in.len : 512) : 0;
    size_t head = in.len - tail;
    FUZZ_CHECK(pwrite(fd, in.data, head, 0) == (ssize_t)head, "write");
    if (tail)
        FUZZ_CHECK(pwrite(fd, in.data + head, tail, (off_t)(head + gap)) == (ssize_t)tail, "write");
    uint64_t fsize = head + (tail ? gap + tail : 0);

    struct image_info info;
    int rc = image_probe(fd, "fuzz.img", &info);
    if (rc == 0) {
        const char *d = info.driver;
        FUZZ_CHECK(!strcmp(d, "raw") || !strcmp(d, "qcow2") || !strcmp(d, "vpc") ||
                       !strcmp(d, "vhdx"),
                   "driver %s", d);
        FUZZ_CHECK(info.size == fsize, "size %llu of %llu", (unsigned long long)info.size,
                   (unsigned long long)fsize);
        bool raw_ok = !strcmp(d, "raw")   ? info.raw_size == info.size
                      : !strcmp(d, "vpc") ? info.raw_size == 0 || info.raw_size == info.size - 512
                                          : info.raw_size == 0;
        FUZZ_CHECK(raw_ok, "raw_size %llu of %llu for %s", (unsigned long long)info.raw_size,
                   (unsigned long long)info.size, d);
        FUZZ_CHECK(info.path && !strcmp(info.path, "fuzz.img"), "path");
        image_info_release(&info);
    } else {
        char magic[4] = {0};
        FUZZ_CHECK((rc == UVM_E_NOT_SUPPORTED || rc == UVM_E_INVALID_ARGUMENT) &&
                       pread(fd, magic, 4, 0) == 4 && !memcmp(magic, "QFI\xfb", 4),
                   "refused with %d: %s", rc, uvm_last_error());
        for (const char *c = uvm_last_error(); *c; c++)
            FUZZ_CHECK(*c >= 0x20 && *c < 0x7f, "unprintable byte 0x%02x in the message",
                       (unsigned char)*c);
    }
    close(fd);
    return 0;
}

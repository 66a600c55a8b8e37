/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The terminal fields of requests, decoded and checked (pure: no I/O; tty.h runs terminals):
 * ExecuteProcess's ProcessParameters "EmulateConsole" (bool) and "ConsoleSize" ([Height, Width],
 * hcsshim's shape), and the body of ResizeConsole {"ProcessId", "Height", "Width"}.
 */
#ifndef GCS_TTYREQ_H
#define GCS_TTYREQ_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"

#define TTY_SIZE_MAX 65535u /* struct winsize and hcsshim's ResizeConsole: uint16 */

struct tty_size {
    uint16_t rows, cols; /* 0: unset (the kernel's default of a new terminal) */
};

/* From ProcessParameters `params`: *terminal (false when absent) and *size (0x0 when absent).
 * "ConsoleSize" without "EmulateConsole": true is an error. 0, or -EINVAL with req->error. */
int tty_params_parse(struct request *req, json_t *params, bool *terminal, struct tty_size *size);

struct tty_resize {
    uint32_t pid; /* 1..INT32_MAX */
    struct tty_size size;
};

/* The ResizeConsole request body; every field is required. 0, or -EINVAL with req->error. */
int tty_resize_parse(struct request *req, struct tty_resize *out);

#endif

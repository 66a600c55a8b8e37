/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "ttyreq.h"

static int
parse_console_size(struct request *req, json_t *params, struct tty_size *size)
{
    json_t *v = json_object_get(params, "ConsoleSize");
    if (!v)
        return 0;
    json_t *h = json_array_get(v, 0), *w = json_array_get(v, 1);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(h) ||
        !json_is_integer(w) || json_integer_value(h) < 0 || json_integer_value(w) < 0 ||
        json_integer_value(h) > TTY_SIZE_MAX || json_integer_value(w) > TTY_SIZE_MAX)
        return request_fail(req,
                            "invalid request: field \"ConsoleSize\" must be [Height, Width], "
                            "two integers in [0, %u]",
                            TTY_SIZE_MAX);
    size->rows = (uint16_t)json_integer_value(h);
    size->cols = (uint16_t)json_integer_value(w);
    return 0;
}

int
tty_params_parse(struct request *req, json_t *params, bool *terminal, struct tty_size *size)
{
    *terminal = false;
    *size = (struct tty_size){0};
    int rc = req_bool(req, params, "EmulateConsole", false, terminal);
    if (rc == 0)
        rc = parse_console_size(req, params, size);
    if (rc < 0)
        return rc;
    if (!*terminal && json_object_get(params, "ConsoleSize"))
        return request_fail(req, "invalid request: \"ConsoleSize\" needs \"EmulateConsole\": true");
    return 0;
}

int
tty_resize_parse(struct request *req, struct tty_resize *out)
{
    uint64_t pid = 0, rows = 0, cols = 0;
    int rc = req_uint(req, req->body, "ProcessId", true, 1, INT32_MAX, &pid);
    if (rc == 0)
        rc = req_uint(req, req->body, "Height", true, 0, TTY_SIZE_MAX, &rows);
    if (rc == 0)
        rc = req_uint(req, req->body, "Width", true, 0, TTY_SIZE_MAX, &cols);
    if (rc < 0)
        return rc;
    out->pid = (uint32_t)pid;
    out->size = (struct tty_size){.rows = (uint16_t)rows, .cols = (uint16_t)cols};
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <jansson.h>
#include <string.h>

#include "cleanup.h"
#include "crunlog.h"

/* msg of one line when it is {"level":"error","msg":"..."}, else NULL (new string). */
static char *
line_error(const char *line, size_t len)
{
    if (len == 0 || len > CRUN_LOG_LINE_MAX || line[0] != '{')
        return NULL;
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    const char *level = json_string_value(json_object_get(j, "level"));
    const char *msg = json_string_value(json_object_get(j, "msg"));
    char *out = level && msg && !strcmp(level, "error") ? xstrdup(msg) : NULL;
    if (j)
        json_decref(j);
    return out;
}

char *
crun_log_last_error(const char *text, size_t len)
{
    /* Backwards from the end: the first error found is the last one written. */
    size_t end = len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && text[start - 1] != '\n')
            start--;
        size_t n = end - start;
        while (n > 0 && (text[start + n - 1] == '\n' || text[start + n - 1] == '\r'))
            n--;
        char *msg = line_error(text + start, n);
        if (msg)
            return msg;
        end = start > 0 ? start - 1 : 0;
    }
    return NULL;
}

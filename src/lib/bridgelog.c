/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "bridgelog.h"
#include "cleanup.h"
#include "error.h"
#include "sanitize.h"
#include "timeutil.h"

#define TOKEN_US (INT64_C(1000000) / BRIDGELOG_RATE)

struct bridgelog_line {
    struct bridgelog_line *next;
    enum uvm_log_level level;
    char msg[];
};

static int64_t
real_clock(void *opaque)
{
    return now_us();
}

void
bridgelog_init(struct bridgelog *l, const char *vm_id, bool trust_guest_levels)
{
    *l = (struct bridgelog){.vm_id = vm_id, .trust_levels = trust_guest_levels};
    l->tail = &l->head;
    bridgelog_set_clock(l, NULL, NULL);
}

void
bridgelog_set_clock(struct bridgelog *l, int64_t (*clock)(void *opaque), void *opaque)
{
    l->clock = clock ? clock : real_clock;
    l->clock_opaque = opaque;
    l->tokens = BRIDGELOG_BURST;
    l->last_us = l->clock(opaque);
    l->suppressed = 0;
}

static void
free_lines(struct bridgelog_line *line)
{
    while (line) {
        struct bridgelog_line *next = line->next;
        free(line);
        line = next;
    }
}

void
bridgelog_release(struct bridgelog *l)
{
    free_lines(l->head);
    l->head = NULL;
    l->tail = &l->head;
    l->queued = 0;
}

static void __attribute__((format(printf, 3, 0)))
vqueue(struct bridgelog *l, enum uvm_log_level level, const char *fmt, va_list ap)
{
    if (l->queued >= BRIDGELOG_MAX_QUEUED) {
        l->overflow++;
        return;
    }
    char buf[GUEST_TEXT_MAX + 128];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t n = strlen(buf);
    struct bridgelog_line *line = xmalloc(sizeof(*line) + n + 1);
    line->next = NULL;
    line->level = level;
    memcpy(line->msg, buf, n + 1);
    *l->tail = line;
    l->tail = &line->next;
    l->queued++;
}

void
bridgelog_add(struct bridgelog *l, enum uvm_log_level level, const char *fmt, ...)
{
    if (!uvm_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vqueue(l, level, fmt, ap);
    va_end(ap);
}

/* Add the tokens earned since last_us (a clock going backwards earns none). */
static void
refill(struct bridgelog *l)
{
    int64_t now = l->clock(l->clock_opaque);
    int64_t earned = now > l->last_us ? (now - l->last_us) / TOKEN_US : 0;
    if (earned <= 0)
        return;
    if (earned >= BRIDGELOG_BURST - l->tokens) {
        l->tokens = BRIDGELOG_BURST;
        l->last_us = now;
    } else {
        l->tokens += (unsigned)earned;
        l->last_us += earned * TOKEN_US;
    }
}

void
bridgelog_tick(struct bridgelog *l)
{
    if (!l->suppressed)
        return;
    refill(l);
    if (!l->tokens)
        return;
    l->tokens--;
    bridgelog_add(l, UVM_LOG_WARNING, "guest: %u log lines suppressed", l->suppressed);
    l->suppressed = 0;
}

int
bridgelog_timeout_ms(struct bridgelog *l)
{
    if (!l->suppressed)
        return -1;
    int64_t wait = l->last_us + TOKEN_US - l->clock(l->clock_opaque);
    if (wait <= 0)
        return 0;
    return (int)((wait > TOKEN_US ? TOKEN_US : wait + 999) / 1000);
}

void
bridgelog_guest(struct bridgelog *l, enum uvm_log_level level, const char *fmt, ...)
{
    if (!uvm_log_enabled(level))
        return; /* costs nothing, counts nothing */
    bridgelog_tick(l);
    refill(l);
    if (!l->tokens) {
        l->suppressed++;
        return;
    }
    l->tokens--;
    va_list ap;
    va_start(ap, fmt);
    vqueue(l, level, fmt, ap);
    va_end(ap);
}

static const struct {
    const char *name;
    enum uvm_log_level level;
} guest_levels[] = {
    {"debug", UVM_LOG_DEBUG}, {"info", UVM_LOG_INFO},   {"warning", UVM_LOG_WARNING},
    {"error", UVM_LOG_ERROR}, {"fatal", UVM_LOG_ERROR},
};

void
bridgelog_notification(struct bridgelog *l, const uint8_t *data, size_t len)
{
    cleanup_json json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    const char *lvl = json_string_value(json_object_get(j, "level"));
    json_t *msg = json_object_get(j, "msg");
    size_t i = 0;
    while (lvl && i < ARRAY_SIZE(guest_levels) && strcmp(lvl, guest_levels[i].name) != 0)
        i++;
    if (!lvl || i == ARRAY_SIZE(guest_levels) || !json_is_string(msg)) {
        bridgelog_guest(l, UVM_LOG_WARNING, "agent: malformed log notification dropped");
        return;
    }
    enum uvm_log_level level = guest_levels[i].level;
    if (level < UVM_LOG_WARNING && !l->trust_levels)
        level = UVM_LOG_WARNING; /* a guest cannot raise an alarm at ERROR */
    if (!uvm_log_enabled(level))
        return;
    cleanup_free char *clean =
        sanitize_dup(json_string_value(msg), json_string_length(msg), GUEST_TEXT_MAX, 0);
    bridgelog_guest(l, level, "guest: %s", clean);
}

struct bridgelog_batch
bridgelog_take(struct bridgelog *l)
{
    struct bridgelog_batch batch = {.head = l->head, .overflow = l->overflow};
    l->head = NULL;
    l->tail = &l->head;
    l->queued = 0;
    l->overflow = 0;
    return batch;
}

void
bridgelog_deliver(struct bridgelog_batch batch, const char *vm_id)
{
    for (struct bridgelog_line *line = batch.head; line; line = line->next)
        uvm_log(line->level, vm_id, "%s", line->msg);
    free_lines(batch.head);
    if (batch.overflow)
        uvm_log(UVM_LOG_WARNING, vm_id, "agent: %u log lines dropped (too many at once)",
                batch.overflow);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uvmctl run --timeline FILE: the phases of one run as a picture (FILE.svg, drawn like
 * systemd-analyze plot: one bar per phase on a common time axis) or as data (FILE.json).
 * Times are milliseconds since uvmctl started the run. The boot phases come from the library's
 * timings (uvm_get_timings, measured from uvm_start), placed at `start_ms`; the guest kernel's
 * start is the guest's own clock (its uptime when the agent answered).
 */
#ifndef UVM_CLI_TIMELINE_H
#define UVM_CLI_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "uvm.h"

#define TIMELINE_MAX 96

enum timeline_kind { TL_HOST, TL_BOOT, TL_GUEST, TL_DEVICE, TL_COMMAND, TL_PRINTK };

struct timeline_phase {
    char name[96];
    enum timeline_kind kind;
    double start_ms, end_ms;
};

struct timeline {
    struct timeline_phase v[TIMELINE_MAX];
    size_t n;
    bool clone;
    double start_ms; /* when uvm_start was called */
    struct uvm_timings lib;
    bool have_lib;
    double total_ms;
    char command[256];
};

/* A phase (dropped when the table is full or end < start). */
void timeline_add(struct timeline *t, enum timeline_kind kind, double start_ms, double end_ms,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The boot phases from t->lib (set t->start_ms, t->lib, t->have_lib, t->clone first). */
void timeline_add_boot(struct timeline *t);
/* With -v: the guest kernel's own milestones, from its log (/dev/kmsg records carry their
 * printk time in microseconds whatever printk.time says), read by a process in the guest after
 * the command (about a second). Kept in `kmsg` until timeline_add_kmsg places them. */
#define TIMELINE_KMSG_MAX 16
struct timeline_kmsg {
    size_t n;
    struct {
        unsigned long long us;
        char text[80];
    } v[TIMELINE_KMSG_MAX];
};
void timeline_read_kmsg(struct uvm *vm, struct timeline_kmsg *k);
/* Add them as points on the guest kernel's clock (needs t->lib.kernel_start_us). */
void timeline_add_kmsg(struct timeline *t, const struct timeline_kmsg *k);

/* Write FILE: SVG when its name ends in ".svg", JSON when in ".json". 0, or -1 with a message
 * on stderr. */
int timeline_write(const struct timeline *t, const char *path);
/* Whether path names a format timeline_write knows. */
bool timeline_path_ok(const char *path);

#endif

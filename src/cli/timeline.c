/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "timeline.h"

static const char *const kind_names[] = {"host", "boot", "guest", "device", "command", "printk"};
static const char *const kind_colours[] = {"#8c8c8c", "#4a7fc1", "#59a14f",
                                           "#e49444", "#b65fa5", "#222222"};
#define TL_KINDS 6

void
timeline_add(struct timeline *t, enum timeline_kind kind, double start_ms, double end_ms,
             const char *fmt, ...)
{
    if (t->n >= TIMELINE_MAX || end_ms < start_ms)
        return;
    struct timeline_phase *p = &t->v[t->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof(p->name), fmt, ap);
    va_end(ap);
    p->kind = kind;
    p->start_ms = start_ms;
    p->end_ms = end_ms;
}

void
timeline_add_boot(struct timeline *t)
{
    if (!t->have_lib)
        return;
    const struct uvm_timings *l = &t->lib;
    double s = t->start_ms;
#define AT(us) (s + (double)(us) / 1e3)
    if (l->spawn_us)
        timeline_add(t, TL_BOOT, s, AT(l->spawn_us), "QEMU spawned (jailed)");
    if (l->spawn_us && l->qmp_ready_us)
        timeline_add(t, TL_BOOT, AT(l->spawn_us), AT(l->qmp_ready_us), "QEMU up, QMP ready");
    if (t->clone && l->restore_us) {
        timeline_add(t, TL_BOOT, AT(l->qmp_ready_us), AT(l->restore_us),
                     "template state loaded, vCPUs running");
        timeline_add(t, TL_GUEST, AT(l->restore_us), AT(l->agent_ready_us),
                     "agent: negotiate + resume (clock, entropy, hostname)");
        return;
    }
    if (l->spawn_us && l->kernel_start_us)
        timeline_add(t, TL_BOOT, AT(l->spawn_us), AT(l->kernel_start_us),
                     "QEMU init + firmware + kernel load");
    if (l->kernel_start_us && l->guest_init_us)
        timeline_add(t, TL_GUEST, AT(l->kernel_start_us), AT(l->guest_init_us),
                     "guest kernel (guest clock)");
    if (l->guest_init_us && l->agent_ready_us)
        timeline_add(t, TL_GUEST, AT(l->guest_init_us), AT(l->agent_ready_us),
                     "/init (agent) -> agent ready");
#undef AT
}

/* The kernel log lines worth a mark: where a boot's time goes (docs/performance.md). */
static const char *const milestones[] = {
    "smpboot: Total of",
    "ACPI: Interpreter enabled",
    "PCI: Using configuration",
    "pci 0000:00:00.0",
    "clocksource: Switched to",
    "Freeing initrd memory",
    "Freeing unused kernel image (initmem)",
    "Run /init",
};

/* One /dev/kmsg record "prio,seq,usec,flags;text": a milestone into k. */
static void
kmsg_record(const char *line, struct timeline_kmsg *k)
{
    unsigned long long us = 0;
    const char *text = strchr(line, ';');
    if (!text || sscanf(line, "%*u,%*u,%llu", &us) != 1 || k->n >= TIMELINE_KMSG_MAX)
        return;
    text++;
    for (size_t i = 0; i < sizeof(milestones) / sizeof(milestones[0]); i++)
        if (!strncmp(text, milestones[i], strlen(milestones[i]))) {
            for (size_t j = 0; j < k->n; j++)
                if (!strncmp(k->v[j].text, milestones[i], strlen(milestones[i])))
                    return; /* the first of each */
            k->v[k->n].us = us;
            snprintf(k->v[k->n].text, sizeof(k->v[k->n].text), "%.*s", (int)strcspn(text, "\r\n"),
                     text);
            k->n++;
            return;
        }
}

void
timeline_read_kmsg(struct uvm *vm, struct timeline_kmsg *k)
{
    k->n = 0;
    const char *argv[] = {"timeout", "1", "cat", "/dev/kmsg", NULL};
    struct uvm_process_config cfg = {.argv = argv, .create_stdout = true};
    struct uvm_process *p = NULL;
    int out = -1, code = 0;
    if (uvm_exec(vm, &cfg, &p) < 0 || uvm_process_stdio(p, NULL, &out, NULL) < 0) {
        uvm_process_close(p);
        return;
    }
    FILE *f = fdopen(out, "r");
    char line[1024];
    while (f && fgets(line, sizeof(line), f))
        kmsg_record(line, k);
    if (f)
        fclose(f);
    else
        close(out);
    uvm_process_wait(p, &code);
    uvm_process_close(p);
}

void
timeline_add_kmsg(struct timeline *t, const struct timeline_kmsg *k)
{
    if (!t->have_lib || !t->lib.kernel_start_us)
        return;
    double zero = t->start_ms + (double)t->lib.kernel_start_us / 1e3;
    for (size_t i = 0; i < k->n; i++)
        timeline_add(t, TL_PRINTK, zero + (double)k->v[i].us / 1e3, zero + (double)k->v[i].us / 1e3,
                     "kernel: %s", k->v[i].text);
}

bool
timeline_path_ok(const char *path)
{
    size_t n = strlen(path);
    return (n > 4 && !strcmp(path + n - 4, ".svg")) || (n > 5 && !strcmp(path + n - 5, ".json"));
}

static int
write_json(const struct timeline *t, FILE *f)
{
    json_t *phases = json_array();
    for (size_t i = 0; i < t->n; i++)
        json_array_append_new(phases, json_pack("{s:s, s:s, s:f, s:f}", "name", t->v[i].name,
                                                "kind", kind_names[t->v[i].kind], "start_ms",
                                                t->v[i].start_ms, "end_ms", t->v[i].end_ms));
    const struct uvm_timings *l = &t->lib;
    json_t *root = json_pack("{s:i, s:s, s:b, s:f, s:f, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
                             "version", 1, "command", t->command, "clone", t->clone, "total_ms",
                             t->total_ms, "start_ms", t->start_ms, "phases", phases,
                             "library_timings_us", "spawn", (json_int_t)l->spawn_us, "qmp_ready",
                             (json_int_t)l->qmp_ready_us, "kernel_start",
                             (json_int_t)l->kernel_start_us, "guest_init",
                             (json_int_t)l->guest_init_us, "restore", (json_int_t)l->restore_us,
                             "agent_ready", (json_int_t)l->agent_ready_us);
    int rc = root ? json_dumpf(root, f,
                               JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))
                  : -1;
    json_decref(root);
    fputc('\n', f);
    return rc;
}

static void
xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
}

/* A "nice" grid step for a span of ms: 1, 2 or 5 times a power of ten, ~10 lines. */
static double
grid_step(double span)
{
    for (double step = 1;; step *= 10) {
        if (span / step <= 12)
            return step;
        if (span / (step * 2) <= 12)
            return step * 2;
        if (span / (step * 5) <= 12)
            return step * 5;
    }
}

#define SVG_LEFT 20.0
#define SVG_WIDTH 1000.0
#define SVG_ROW 22.0
#define SVG_TOP 50.0

static void
svg_axis(const struct timeline *t, FILE *f, double scale, double height)
{
    double step = grid_step(t->total_ms);
    for (double ms = 0; ms <= t->total_ms + 1e-9; ms += step) {
        double x = SVG_LEFT + ms * scale;
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#dddddd'/>\n", x,
                SVG_TOP - 8, x, height - 20);
        fprintf(f,
                "<text x='%.1f' y='%.1f' font-size='10' text-anchor='middle' "
                "fill='#555'>%.0f ms</text>\n",
                x, SVG_TOP - 12, ms);
    }
}

static int
write_svg(const struct timeline *t, FILE *f)
{
    double scale = SVG_WIDTH / (t->total_ms > 0 ? t->total_ms : 1);
    double height = SVG_TOP + SVG_ROW * (double)t->n + 40;
    fprintf(f,
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
            "font-family='sans-serif'>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n"
            "<text x='%.0f' y='18' font-size='14'>uvmctl run ",
            SVG_LEFT * 2 + SVG_WIDTH + 320, height, SVG_LEFT);
    xml_text(f, t->command);
    fprintf(f, "%s: %.1f ms</text>\n", t->clone ? " (clone)" : "", t->total_ms);
    svg_axis(t, f, scale, height);
    for (size_t i = 0; i < t->n; i++) {
        const struct timeline_phase *p = &t->v[i];
        double x = SVG_LEFT + p->start_ms * scale, w = (p->end_ms - p->start_ms) * scale;
        double y = SVG_TOP + SVG_ROW * (double)i;
        fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'><title>", x, y,
                w < 1 ? 1 : w, SVG_ROW - 6, kind_colours[p->kind]);
        xml_text(f, p->name);
        fprintf(f, "</title></rect>\n<text x='%.1f' y='%.1f' font-size='11'>",
                x + (w < 1 ? 1 : w) + 4, y + SVG_ROW - 10);
        xml_text(f, p->name);
        if (p->kind == TL_PRINTK) /* a point on the guest's clock */
            fputs("</text>\n", f);
        else
            fprintf(f, " (%.1f ms)</text>\n", p->end_ms - p->start_ms);
    }
    for (size_t k = 0; k < TL_KINDS; k++)
        fprintf(f,
                "<rect x='%.0f' y='%.0f' width='10' height='10' fill='%s'/><text x='%.0f' "
                "y='%.0f' font-size='10'>%s</text>\n",
                SVG_LEFT + 90.0 * (double)k, height - 14, kind_colours[k],
                SVG_LEFT + 90.0 * (double)k + 14, height - 5, kind_names[k]);
    fputs("</svg>\n", f);
    return 0;
}

int
timeline_write(const struct timeline *t, const char *path)
{
    FILE *f = fopen(path, "we");
    if (!f) {
        fprintf(stderr, "uvmctl: timeline '%s': %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(path);
    int rc = n > 4 && !strcmp(path + n - 4, ".svg") ? write_svg(t, f) : write_json(t, f);
    if (fclose(f) != 0 || rc < 0) {
        fprintf(stderr, "uvmctl: timeline '%s': write failed\n", path);
        return -1;
    }
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state the fault-injection tests check: see faultstate.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fake-qemu.h"
#include "faultstate.h"

size_t
fault_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    size_t n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A word of the state with the names QEMU or the library numbers replaced by '*': fd set
 * numbers (QEMU's choice; a set a tolerated remove-fd failure left behind shifts them) and share
 * names (a counter: a share added again is a new name, never one QEMU may still hold). */
static char *
normalised(const char *w)
{
    static const char *const numbered[] = {"fdset:", "vfs-s", "vfsdev-s", "9p/s", "vsmb/s"};
    for (size_t i = 0; i < ARRAY_SIZE(numbered); i++) {
        const char *at = strstr(w, numbered[i]);
        if (at) {
            size_t head = (size_t)(at - w) + strlen(numbered[i]);
            size_t digits = strspn(w + head, "0123456789abcdef");
            return xasprintf("%.*s*%s", (int)head, w, w + head + digits);
        }
    }
    return xstrdup(w);
}

/* The entries of a staging directory of the runtime directory, as "host:<dir>/<name>". */
static void
staging_entries(const char *rundir, const char *sub, char **words, size_t *n, size_t max)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", rundir, sub);
    DIR *d = opendir(path);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d)) && *n < max;)
        if (e->d_name[0] != '.')
            words[(*n)++] = xasprintf("host:%s/%s", sub, e->d_name);
    closedir(d);
}

/* Our child processes, as "child:<comm>" (the daemons the library started). */
static void
child_processes(char **words, size_t *n, size_t max)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[96], comm[64];
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
        FILE *fp = fopen(path, "r");
        for (long pid; fp && fscanf(fp, "%ld", &pid) == 1 && *n < max;) {
            snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
            FILE *c = fopen(path, "r");
            if (c && fgets(comm, sizeof(comm), c)) {
                comm[strcspn(comm, "\n")] = '\0';
                words[(*n)++] = xasprintf("child:%s", comm);
            }
            if (c)
                fclose(c);
        }
        if (fp)
            fclose(fp);
    }
    closedir(d);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What QEMU holds, what the host holds for the VM (staging entries of shares, daemons), sorted,
 * numbered names aside (normalised). Owned. */
char *
fault_state(struct fixture *f, const char *rundir)
{
    enum { MAX = 128 };
    char *words[MAX];
    size_t n = 0;
    cleanup_free char *q = fake_qemu_objects(fake_qmp_qemu(f->fq));
    for (char *save = NULL, *w = strtok_r(q, " ", &save); w && n < MAX;
         w = strtok_r(NULL, " ", &save))
        words[n++] = xstrdup(w);
    staging_entries(rundir, "9p", words, &n, MAX);
    staging_entries(rundir, "vsmb", words, &n, MAX);
    child_processes(words, &n, MAX);
    for (size_t i = 0; i < n; i++) {
        char *w = normalised(words[i]);
        free(words[i]);
        words[i] = w;
    }
    qsort(words, n, sizeof(char *), cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(words[i]) + 1;
    char *out = xmalloc(len);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, words[i]);
        free(words[i]);
    }
    return out;
}

char *
fault_children(void)
{
    char *words[64];
    size_t n = 0;
    child_processes(words, &n, 64);
    qsort(words, n, sizeof(char *), cmp_str);
    char *out = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char *t = xasprintf("%s%s%s", out, i ? " " : "", words[i]);
        free(out);
        free(words[i]);
        out = t;
    }
    return out;
}

/* Fill the file system at path: blocks (a file written until ENOSPC) or inodes (empty files
 * until ENOSPC). */
void
fault_fill(const char *path, bool inodes)
{
    char p[160];
    if (!inodes) {
        snprintf(p, sizeof(p), "%s/filler", path);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        static const char block[4096];
        while (write(fd, block, sizeof(block)) > 0)
            ;
        assert_int_equal(errno, ENOSPC);
        close(fd);
        return;
    }
    for (int i = 0;; i++) {
        snprintf(p, sizeof(p), "%s/i%d", path, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            assert_int_equal(errno, ENOSPC);
            return;
        }
        close(fd);
    }
}

void
fault_unfill(const char *path)
{
    char cmd[192];
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/filler '%s'/i*", path, path);
    assert_int_equal(system(cmd), 0);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Clones: a template opened, checked and restored (template.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "proto.h"
#include "qmp.h"
#include "qmpmig.h"
#include "spawn.h"
#include "template.h"
#include "timeutil.h"
#include "tpldir.h"
#include "vm.h"

#define TEMPLATE_ENTROPY_BYTES 64

static int64_t
ns_of(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* --- files: identity and content hash ------------------------------------------------------- */

/* The content hash of path's first `size` bytes (its size when it was looked at). */
static int
hash_file(int fd, const char *path, uint64_t size, uint64_t *hash)
{
    int rc = tpldir_hash_fd(fd, size, hash);
    return rc < 0 ? uvm_error_errno(rc, "read '%s'", path) : 0;
}

/* Size, mtime and (with_hash) the content hash of path. */
static int
file_identity(const char *role, const char *path, bool with_hash, struct tpl_file *f)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return uvm_error_errno(-errno, "%s '%s'", role, path);
    f->role = xstrdup(role);
    f->path = xstrdup(path);
    f->size = (uint64_t)st.st_size;
    f->mtime_ns = ns_of(&st.st_mtim);
    f->hash = 0;
    return with_hash ? hash_file(fd, path, f->size, &f->hash) : 0;
}

static const char *
doc_string(json_t *doc, const char *const *path)
{
    for (; *path && doc; path++)
        doc = json_object_get(doc, *path);
    return json_string_value(doc);
}

int
template_boot_files(json_t *doc, bool with_hash, struct tpl_file files[TPL_FILES_MAX], size_t *n)
{
    static const char *const kernel[] = {"VirtualMachine", "Chipset", "LinuxKernelDirect",
                                         "KernelFilePath", NULL};
    static const char *const initrd[] = {"VirtualMachine", "Chipset", "LinuxKernelDirect",
                                         "InitRdPath", NULL};
    static const char *const vhd[] = {"VirtualMachine", "Devices", "VirtualPMem", "Devices", "0",
                                      "HostPath",       NULL};
    const struct {
        const char *role;
        const char *const *path;
    } roles[] = {{"kernel", kernel}, {"initrd", initrd}, {"vhd", vhd}};
    *n = 0;
    for (size_t i = 0; i < 3; i++) {
        const char *p = doc_string(doc, roles[i].path);
        if (!p)
            continue;
        int rc = file_identity(roles[i].role, p, with_hash, &files[*n]);
        if (rc < 0)
            return rc;
        ++*n;
    }
    return 0;
}

int
template_qemu_binary(const char *argv0, struct tpl_file *f)
{
    cleanup_free char *path = spawn_which(argv0);
    if (!path)
        return uvm_error(UVM_E_NOT_FOUND, "QEMU binary '%s' not found in PATH", argv0);
    return file_identity("qemu", path, false, f);
}

static void
file_free(struct tpl_file *f)
{
    free(f->role);
    free(f->path);
}

/* --- create ---------------------------------------------------------------------------------- */

static int
read_manifest(struct template *t)
{
    cleanup_close int fd = -1;
    struct stat st;
    int rc = tpldir_part(t->dirfd, t->dir, TPL_MANIFEST, TPLDIR_ANY_SIZE, &fd, &st);
    if (rc == UVM_E_NOT_FOUND)
        return uvm_error(UVM_E_NOT_FOUND,
                         "template '%s' has no %s (not a template, or its save did not finish)",
                         t->dir, TPL_MANIFEST);
    if (rc < 0)
        return rc;
    if (st.st_size > TPL_MANIFEST_MAX)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "template '%s': %s is larger than %u bytes",
                         t->dir, TPL_MANIFEST, TPL_MANIFEST_MAX);
    cleanup_free char *text = xmalloc((size_t)st.st_size + 1);
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return uvm_error_errno(n < 0 ? -errno : -EIO, "template '%s': read %s", t->dir,
                                   TPL_MANIFEST);
        len += (size_t)n;
    }
    return tpl_manifest_decode(text, len, t->dir, &t->m);
}

int
template_open(const struct uvm_options *opts, struct template **tpl, struct uvm_options *merged)
{
    *tpl = NULL;
    *merged = *opts;
    if (!opts->template_dir || !*opts->template_dir)
        return 0;
    char real[PATH_MAX];
    if (!realpath(opts->template_dir, real))
        return uvm_error_errno(errno == ENOENT ? UVM_E_NOT_FOUND : -errno, "template '%s'",
                               opts->template_dir);
    struct template *t = xcalloc(1, sizeof(*t));
    t->state_fd = -1;
    t->dir = xstrdup(real);
    int rc = tpldir_open(real, &t->dirfd);
    if (rc == 0)
        rc = read_manifest(t);
    if (rc == 0 && opts->boot_files_path && *opts->boot_files_path) {
        if (realpath(opts->boot_files_path, real))
            t->boot_real = xstrdup(real);
        else
            rc = uvm_error_errno(-errno, "boot files '%s'", opts->boot_files_path);
    }
    if (rc == 0)
        rc = tpl_options_merge(&t->m, opts, t->boot_real, t->dir, merged);
    if (rc < 0) {
        template_free(t);
        *merged = *opts;
        return rc;
    }
    *tpl = t;
    return 0;
}

static int
check_file(const struct template *t, const struct tpl_file *want, const struct tpl_file *have)
{
    if (strcmp(want->role, have->role) || strcmp(want->path, have->path))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "template '%s' was made with other boot files: %s '%s', here %s '%s'",
                         t->dir, want->role, want->path, have->role, have->path);
    if (want->size == have->size && want->mtime_ns == have->mtime_ns)
        return 0;
    uint64_t hash = 0;
    cleanup_close int fd = open(have->path, O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 ? uvm_error_errno(-errno, "%s '%s'", have->role, have->path)
                    : hash_file(fd, have->path, have->size, &hash);
    if (rc < 0)
        return rc;
    if (want->size == have->size && hash == want->hash)
        return 0; /* rewritten with the same content (a rebuild) */
    return uvm_error(UVM_E_INVALID_ARGUMENT,
                     "template '%s' was made with other boot files: %s '%s' has changed since "
                     "(%" PRIu64 " bytes, %s; the template's was %" PRIu64 " bytes)",
                     t->dir, have->role, have->path, have->size,
                     want->size == have->size ? "other content" : "another size", want->size);
}

static int
check_qemu(const struct template *t, const char *argv0)
{
    struct tpl_file q = {0};
    int rc = template_qemu_binary(argv0, &q);
    if (rc == 0 && (strcmp(q.path, t->m.qemu.path) || q.size != t->m.qemu.size ||
                    q.mtime_ns != t->m.qemu.mtime_ns))
        rc = uvm_error(UVM_E_INVALID_ARGUMENT,
                       "template '%s' was made with another QEMU: '%s' (%" PRIu64 " bytes, QEMU "
                       "%s), here '%s' (%" PRIu64 " bytes, another build)",
                       t->dir, t->m.qemu.path, t->m.qemu.size, t->m.qemu_version, q.path, q.size);
    file_free(&q);
    return rc;
}

int
template_check(struct template *t, json_t *doc, char *const *argv, const char *rundir)
{
    int rc = check_qemu(t, argv[0]);
    if (rc < 0)
        return rc;
    struct tpl_file files[TPL_FILES_MAX] = {{0}};
    size_t n = 0;
    rc = template_boot_files(doc, false, files, &n);
    if (rc == 0 && n != t->m.n_files)
        rc = uvm_error(UVM_E_INVALID_ARGUMENT,
                       "template '%s' was made with %zu boot files, this VM reads %zu", t->dir,
                       t->m.n_files, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_file(t, &t->m.files[i], &files[i]);
    for (size_t i = 0; i < n; i++)
        file_free(&files[i]);
    if (rc < 0)
        return rc;
    char **key = tpl_argv_key((const char *const *)argv, rundir);
    rc = tpl_argv_compare(t->m.argv, key, t->dir);
    for (char **a = key; *a; a++)
        free(*a);
    free(key);
    return rc;
}

/* --- start ----------------------------------------------------------------------------------- */

int
template_files_open(struct template *t, int *fd)
{
    struct stat st;
    if (t->state_fd >= 0)
        close(t->state_fd);
    t->state_fd = -1;
    /* QEMU parses the state: it will read a sealed copy whose hash is the manifest's. */
    int rc = tpldir_state_memfd(t->dirfd, t->dir, TPL_STATE, t->m.state_size, t->m.state_hash,
                                &t->state_fd);
    if (rc < 0)
        return rc;
    rc = tpldir_part(t->dirfd, t->dir, TPL_RAM, t->m.ram_size, fd, &st);
    if (rc == 0 && ns_of(&st.st_ctim) != t->m.ram_ctime_ns) {
        close(*fd);
        *fd = -1;
        /* A clone maps this file as its memory: content written after the save (or a copy of
         * the directory, which cannot be told apart) is refused. */
        rc = uvm_error(UVM_E_INVALID_ARGUMENT,
                       "template '%s': its RAM file changed after the save (ctime differs from "
                       "the recorded one; a copied template must be saved again)",
                       t->dir);
    }
    if (rc < 0 && t->state_fd >= 0)
        close(steal_fd(&t->state_fd));
    return rc;
}

int
template_restore(struct uvm *vm, struct qmp *q, int64_t t0, int64_t deadline)
{
    struct template *t = vm->tpl;
    cleanup_free char *version = NULL;
    int rc = qmpm_version(q, &version, deadline);
    if (rc < 0)
        return rc;
    if (strcmp(version, t->m.qemu_version))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "template '%s' was made with QEMU %s, this is QEMU %s", t->dir,
                         t->m.qemu_version, version);
    cleanup_close int fd = steal_fd(&t->state_fd); /* template_files_open's */
    if (fd < 0)
        return uvm_error(UVM_E_INVALID_STATE, "template '%s': the state was not opened", t->dir);
    rc = qmpm_load(q, fd, deadline);
    if (rc < 0)
        return uvm_error_wrap(rc, "template '%s'", t->dir);
    rc = qmp_execute(q, "cont", NULL, NULL, deadline);
    if (rc < 0)
        return rc;
    int64_t d = now_us() - t0;
    pthread_mutex_lock(&vm->lock);
    vm->timings.restore_us = d > 0 ? (uint64_t)d : 1;
    pthread_mutex_unlock(&vm->lock);
    return 0;
}

int
template_resume(struct uvm *vm, struct bridge *b, int64_t deadline)
{
    uint8_t seed[TEMPLATE_ENTROPY_BYTES];
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        return uvm_error_errno(-errno, "clone '%s': host entropy", vm->cfg.id);
    char hex[2 * TEMPLATE_ENTROPY_BYTES + 1];
    for (size_t i = 0; i < sizeof(seed); i++)
        snprintf(hex + 2 * i, 3, "%02x", seed[i]);
    explicit_bzero(seed, sizeof(seed));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_int_t us = (json_int_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    json_t *req = json_pack("{s:s, s:s, s:I}", "Hostname", vm->cfg.id, "Entropy", hex, "RealTimeUs",
                            us);
    explicit_bzero(hex, sizeof(hex));
    int rc = bridge_call(b, PROTO_REQ_RESUME, req, NULL, deadline);
    return rc < 0 ? uvm_error_wrap(rc, "clone '%s': the guest's identity", vm->cfg.id) : 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A template's manifest (`<dir>/template.json`) and the pure checks a clone runs against it:
 * no I/O here (template.c reads and writes the files).
 *
 * The manifest says what the template was made of, so that a clone can be refused, with a
 * message naming the difference, before QEMU would fail late and opaquely (a missing device or a
 * different ROM size ends an incoming migration with a one-line error, or worse):
 *   - the VM options a clone inherits (memory, processors, device counts, boot files, kernel
 *     options, additional JSON): a clone's options leave them unset or repeat them;
 *   - the QEMU binary (size, mtime) and version, the accelerator;
 *   - the files QEMU reads at start (kernel, initrd, VHD root: size, mtime, a 64-bit FNV-1a
 *     hash of the content, compared only when size or mtime differ);
 *   - the QEMU command line with the per-VM parts replaced by placeholders (the key);
 *   - the RAM file's size and ctime (a RAM file written after the save is refused) and the
 *     state file's size and content hash (QEMU parses it: a changed or swapped one is refused,
 *     tpldir.h).
 * The manifest is written by the library and read back strictly: unknown fields, wrong types,
 * out-of-range numbers and oversized texts are refused.
 */
#ifndef UVM_LIB_TPLFILE_H
#define UVM_LIB_TPLFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvm.h"

#define TPL_FORMAT "libuvm-template"
#define TPL_VERSION 2 /* 2: State.Hash */
#define TPL_MANIFEST "template.json"
#define TPL_RAM "ram"
#define TPL_STATE "state"
#define TPL_MANIFEST_MAX (1u << 20) /* bytes */
#define TPL_FILES_MAX 4
#define TPL_ARGV_MAX 512
#define TPL_TEXT_MAX 8192 /* one string of the manifest */

struct tpl_file {
    char *role; /* "kernel", "initrd", "vhd" */
    char *path;
    uint64_t size;
    int64_t mtime_ns;
    uint64_t hash; /* FNV-1a 64 of the content */
};

struct tpl_manifest {
    char *source_id;      /* the VM that was saved */
    int64_t saved_at;     /* Unix time */
    char *qemu_version;   /* "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" (query-version) */
    struct tpl_file qemu; /* the binary: role "qemu", hash unused (0) */
    char *accel;
    /* The options a clone inherits. */
    char *boot_files_path, *kernel_file, *rootfs_file;
    uint64_t memory_mb;
    uint32_t processor_count, vpmem_count, scsi_count;
    char *kernel_boot_options; /* NULL: none */
    bool has_memory_backing;
    enum uvm_memory_backing memory_backing;
    bool graphics_console;
    char *additional_json; /* NULL: none */
    struct tpl_file files[TPL_FILES_MAX];
    size_t n_files;
    char **argv;                 /* the key (tpl_argv_key), NULL-terminated */
    uint64_t ram_size, ram_used; /* bytes: of the guest RAM, of data in the RAM file */
    int64_t ram_ctime_ns;
    uint64_t state_size;
    uint64_t state_hash; /* FNV-1a 64 of the state file */
};

/* An open template (template.h): what a clone keeps for its life. */
struct template
{
    char *dir;       /* canonical */
    int dirfd;       /* the directory, open: its files are opened beneath it */
    char *boot_real; /* the clone's boot_files_path, canonical (its merged options point here) */
    int state_fd;    /* the checked, sealed copy of the state (tpldir.h), from
                        template_files_open until template_restore loads it; else -1 */
    struct tpl_manifest m;
};
const char *template_dir(const struct template *t);
/* Close and free (NULL is fine). */
void template_free(struct template *t);

/* The JSON text (owned). */
char *tpl_manifest_encode(const struct tpl_manifest *m);
/* Parse text (len bytes) strictly into *m (zeroed first; released on failure). `dir` names the
 * template in messages. UVM_E_INVALID_ARGUMENT naming the field. */
int tpl_manifest_decode(const char *text, size_t len, const char *dir, struct tpl_manifest *m);
void tpl_manifest_release(struct tpl_manifest *m);

/* The key of a QEMU command line: argv with the VM's own parts replaced, so that the lines of
 * a template and of its clones compare equal: the value of -name, of -append (a clone runs
 * the template's kernel command line whatever its own says) and of the serial console's
 * -chardev, every occurrence of the runtime directory `rundir`; dropped: -incoming and -add-fd
 * with their values, and the memory backend's share= and prealloc=. Owned, NULL-terminated. */
char **tpl_argv_key(const char *const *argv, const char *rundir);
/* 0 when the keys are equal; else UVM_E_INVALID_ARGUMENT naming the first difference. */
int tpl_argv_compare(char *const *tpl, char *const *vm, const char *dir);

/* The options of a clone: `in` with every option the template decides taken from m when unset
 * in `in`, and refused (UVM_E_INVALID_ARGUMENT naming the option and both values) when set to
 * something else. `boot_real`: in->boot_files_path canonicalised (NULL when not given).
 * Strings of *out belong to in or m. */
int tpl_options_merge(const struct tpl_manifest *m, const struct uvm_options *in,
                      const char *boot_real, const char *dir, struct uvm_options *out);


#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Templates and clones (docs/design.md "Templates and clones").
 *
 * A template is a directory: `template.json` (tplfile.h), `ram` (the guest RAM, a sparse file of
 * what the guest wrote) and `state` (QEMU's device state, a migration stream without the RAM).
 * uvm_save_template (tplsave.c) makes one from a running, idle VM. A VM created with
 * uvm_options.template_dir is a clone: this file opens and checks the template at create, hands
 * QEMU the RAM file at start (mapped private: copy on write), loads the state, and gives the
 * clone its identity once the guest runs. The lifecycle (uvm.c) calls these at its steps:
 *
 *   uvm_create:  template_open (options merged) ... argv ... template_check
 *   uvm_start:   template_files_open -> QEMU spawned (-incoming defer) -> QMP up ->
 *                template_restore (version, state loaded, cont) -> agent negotiated ->
 *                template_resume (clock, entropy, hostname)
 */
#ifndef UVM_LIB_TEMPLATE_H
#define UVM_LIB_TEMPLATE_H

#include <jansson.h>
#include <stdint.h>

#include "tplfile.h"
#include "uvm.h"

struct uvm;
struct qmp;
struct bridge;

#define TEMPLATE_SAVE_TIMEOUT_MS 60000u /* quiesce + stop + save + RAM copy */

/* opts->template_dir NULL or "": *tpl NULL and *merged = *opts. Else open the template (its
 * manifest read and checked) and merge the options (tpl_options_merge): *merged's strings live
 * as long as opts and *tpl. UVM_E_NOT_FOUND (no such template), UVM_E_INVALID_ARGUMENT (a bad
 * manifest, an option that differs), with the message set. */
int template_open(const struct uvm_options *opts, struct template **tpl,
                  struct uvm_options *merged);
/* After the document and the QEMU command line were built: the boot files are the template's
 * (size and mtime, else the content hash), so is the QEMU binary, and the command line's key
 * matches. UVM_E_INVALID_ARGUMENT naming the difference. */
int template_check(struct template *t, json_t *doc, char *const *argv, const char *rundir);
/* Before QEMU is spawned: the template's RAM file into *fd, read-only (QEMU maps it private),
 * unchanged since the save (size and ctime as recorded); and the state checked against the
 * manifest's hash into a sealed memfd kept in t for template_restore (tpldir.h): a tampered
 * template never gets a QEMU started. */
int template_files_open(struct template *t, int *fd);
/* QEMU is up (-incoming defer): its version is the template's, the state is loaded, the vCPUs
 * run. Sets vm->timings.restore_us (t0: uvm_start's start, monotonic microseconds). */
int template_restore(struct uvm *vm, struct qmp *q, int64_t t0, int64_t deadline);
/* The agent answered: Resume with the clone's identity (hostname = VM id, 64 bytes of host
 * entropy, the host's wall clock). */
int template_resume(struct uvm *vm, struct bridge *b, int64_t deadline);

/* For tplsave.c: the files QEMU reads at start (kernel, initrd, VHD root) as the document names
 * them, with their identity (hash when with_hash). */
int template_boot_files(json_t *doc, bool with_hash, struct tpl_file files[TPL_FILES_MAX],
                        size_t *n);
/* The identity of the QEMU binary argv0 (looked up in PATH), role "qemu", no hash. */
int template_qemu_binary(const char *argv0, struct tpl_file *f);

#endif

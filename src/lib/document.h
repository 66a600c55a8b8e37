/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VM document: an HCS-v2-shaped JSON description of the utility VM, built from the
 * configuration and turned into a QEMU command line by argv.c. */
#ifndef UVM_LIB_DOCUMENT_H
#define UVM_LIB_DOCUMENT_H

#include <jansson.h>

#include "options.h"

/* Arguments the guest agent gets after " -- " on the kernel command line. */
#define UVM_AGENT_ARGS "-loglevel info"
/* Boot-speed options, always appended (see docs/design.md). */
#define UVM_FAST_BOOT_OPTIONS "no_timer_check tsc=reliable i8042.noaux i8042.nokbd i8042.nopnp"

/* Kernel command line as hcsshim builds it (owned string). */
char *document_kernel_cmdline(const struct uvm_config *c);

/* The document (new reference), before merging. */
json_t *document_build(const struct uvm_config *c);

/* Deep-merge additional JSON over doc (hcsshim semantics: objects merge recursively, at a leaf
 * or type mismatch the additional value wins, an additional null over an object keeps the
 * object, keys only in the additional JSON are added). Error text: "failed to merge additional
 * JSON '<json>': <why>". */
int document_merge(json_t *doc, const char *additional_json);
void document_merge_values(json_t *dst, json_t *add);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Validation of struct uvm_options and the resolved configuration the rest of the library uses. */
#ifndef UVM_LIB_OPTIONS_H
#define UVM_LIB_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "uvm.h"

#define UVM_MAX_SCSI_CONTROLLERS 4
#define UVM_MIN_MEMORY_MB 128
#define UVM_MAX_PROCESSORS 255
#define UVM_MAX_ID_LEN 64
#define UVM_KERNEL_CMDLINE_MAX 2047 /* x86 COMMAND_LINE_SIZE - 1 */
#define UVM_DEFAULT_START_TIMEOUT_MS 120000u

/* Everything uvm_create decided, owned strings. */
struct uvm_config {
    char *id;
    char *owner;
    bool windows;
    uint64_t memory_mb;
    uint32_t processor_count;
    char *additional_json; /* NULL when none */
    /* windows */
    char **layer_folders;
    size_t layer_folder_count;
    char *uvm_folder; /* first layer folder with a UtilityVM subfolder */
    char *scratch_path; /* <last layer folder>/sandbox.vhdx */
    /* linux */
    char *boot_files_path;
    char *kernel_path; /* boot_files_path/kernel_file */
    char *rootfs_file; /* file name as given or defaulted */
    char *rootfs_path;
    enum uvm_rootfs_type rootfs_type;
    char *vhd_initrd_path; /* VHD boot: boot_files_path/initrd.img when present */
    char *kernel_boot_options; /* NULL when none */
    bool graphics_console;
    char *console_pipe; /* NULL when none */
    uint32_t vpmem_count;
    uint32_t scsi_count;
    bool has_memory_backing;
    enum uvm_memory_backing memory_backing;
    uint32_t start_timeout_ms;
    struct uvm_timeouts timeouts; /* every one set: the defaults are qmpcmd.h's and bridge.h's */
    bool trust_guest_log_levels;
};

/* Validate opts in hcsshim's order with its error texts, apply defaults and check the boot
 * files exist. Windows: also creates the scratch folder and sandbox.vhdx when missing (as
 * hcsshim's Create does). On failure *cfg is released. */
int options_resolve(const struct uvm_options *opts, struct uvm_config *cfg);
void config_release(struct uvm_config *cfg);

/* A VM ID must be usable as a directory name: [A-Za-z0-9._-]{1,64}, not starting with '.'. */
bool options_id_valid(const char *id);

/* Generate a random GUID string (36 chars + NUL). */
void options_new_guid(char out[37]);

#endif

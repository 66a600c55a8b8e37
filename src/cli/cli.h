/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl: what main.c shares with the verbs (one file per verb). */
#ifndef UVM_CLI_H
#define UVM_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "uvm.h"

/* Exit statuses of uvmctl itself (docker/crun convention). A verb that runs a command in the
 * guest exits with that command's status instead. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_USAGE = 2,         /* bad option, missing argument */
    CLI_EXIT_FAILURE = 125,     /* uvmctl (or libuvm) failed */
    CLI_EXIT_CANNOT_EXEC = 126, /* the command exists but could not be executed */
    CLI_EXIT_NOT_FOUND = 127,   /* the command was not found in the guest */
};

/* Global options (before the verb). */
struct cli_global {
    unsigned verbose; /* -v: library info lines on stderr */
    bool debug;       /* --debug: library and guest debug lines on stderr */
};

struct cli_verb {
    const char *name;
    /* argv[0] is "uvmctl VERB" (getopt messages use it). Returns the process exit status. */
    int (*main)(const struct cli_global *g, int argc, char **argv);
    const char *summary;
};

int cli_run_main(const struct cli_global *g, int argc, char **argv);
int cli_create_main(const struct cli_global *g, int argc, char **argv);
int cli_template_main(const struct cli_global *g, int argc, char **argv);

/* Options shared by the verbs that build a VM (run, create). getopt_long values >= 0x100 so they
 * never clash with a short option; a verb's own long-only options start at CLI_OPT_VERB. */
enum {
    CLI_OPT_MEMORY = 0x100,
    CLI_OPT_CPUS,
    CLI_OPT_BOOT_FILES,
    CLI_OPT_KERNEL_ARGS,
    CLI_OPT_ID,
    CLI_OPT_CONSOLE,
    CLI_OPT_TIMEOUT_MS,
    CLI_OPT_ROOTFS,
    CLI_OPT_TEMPLATE,
    CLI_OPT_VERB = 0x200,
};

#define CLI_VM_LONG_OPTIONS                                                                        \
    {"memory", required_argument, NULL, CLI_OPT_MEMORY},                                           \
        {"cpus", required_argument, NULL, CLI_OPT_CPUS},                                           \
        {"boot-files", required_argument, NULL, CLI_OPT_BOOT_FILES},                               \
        {"kernel-args", required_argument, NULL, CLI_OPT_KERNEL_ARGS},                             \
        {"id", required_argument, NULL, CLI_OPT_ID},                                               \
        {"console", required_argument, NULL, CLI_OPT_CONSOLE},                                     \
        {"timeout-ms", required_argument, NULL, CLI_OPT_TIMEOUT_MS},                               \
        {"rootfs", required_argument, NULL, CLI_OPT_ROOTFS},                                       \
        {"template", required_argument, NULL, CLI_OPT_TEMPLATE}

/* Help lines for CLI_VM_LONG_OPTIONS. */
extern const char cli_vm_options_help[];

/* Apply getopt_long's result opt/arg to o if it is one of CLI_VM_LONG_OPTIONS.
 * Returns 1 when applied, 0 when opt is not a VM option, -1 on a bad value (message printed). */
int cli_vm_option(const char *prog, int opt, const char *arg, struct uvm_options *o);

/* Parse a decimal unsigned number in [min, max] for option name; prints and returns -1 if not. */
int cli_parse_uint(const char *prog, const char *name, const char *s, uint64_t min, uint64_t max,
                   uint64_t *out);

/* "uvmctl: <uvm_last_error()>" on stderr (the short text of code when there is no message). */
void cli_print_error(int code);
/* The "Try 'PROG --help'" hint for a usage error; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *prog);

#endif

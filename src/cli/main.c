/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl: global options, the verb table, and the helpers the verbs share. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#ifndef UVM_VERSION
#define UVM_VERSION "unknown"
#endif

static const struct cli_verb verbs[] = {
    {"run", cli_run_main, "boot a VM, run a command in it, tear the VM down"},
    {"create", cli_create_main, "print a VM's document and QEMU command line (--dry-run)"},
    {"template", cli_template_main, "save a booted VM as a template (template create DIR)"},
};

const char cli_vm_options_help[] =
    "VM options:\n"
    "      --memory MB         guest memory in MiB (default 1024)\n"
    "      --cpus N            virtual processors (default 2; 1 on a 1-CPU host)\n"
    "      --boot-files DIR    folder holding kernel and initrd.img / rootfs.vhd\n"
    "                          (default $UVM_BOOT_FILES_PATH, else the installed default)\n"
    "      --kernel-args S     extra kernel command line\n"
    "      --id ID             VM id (default: a generated GUID)\n"
    "      --console PATH      write the serial console to PATH\n"
    "      --timeout-ms N      boot deadline (default $UVM_START_TIMEOUT_MS, else 120000)\n"
    "      --rootfs initrd|vhd preferred root file system (initrd.img or rootfs.vhd)\n"
    "      --template DIR      start from the template in DIR (uvmctl template create): a\n"
    "                          clone, with the template's memory, CPUs, boot files and\n"
    "                          kernel options (the options above may only repeat them)\n";

static void
usage(FILE *f)
{
    fprintf(f, "Usage: uvmctl [-v] [--debug] VERB [OPTION]... [ARG]...\n"
               "       uvmctl --help | --version | VERB --help\n"
               "Drive libuvm utility VMs (QEMU + guest agent).\n"
               "\n"
               "Verbs:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "\n"
               "Global options:\n"
               "  -v, --verbose  also print library info lines on stderr\n"
               "      --debug    print library and guest agent debug lines on stderr\n"
               "                 (default: warnings and errors only)\n"
               "  -h, --help     this help; 'uvmctl VERB --help' for a verb's\n"
               "      --version  print the version\n"
               "\n"
               "Environment: UVM_BOOT_FILES_PATH, UVM_RUNTIME_DIR (default /run/uvm),\n"
               "UVM_ACCEL=kvm|tcg, UVM_START_TIMEOUT_MS.\n"
               "\n"
               "Exit status: 0 success; 2 usage error; 125 uvmctl failed; 'run' exits with the\n"
               "command's status (126 cannot execute, 127 not found, 128+N killed by signal N;\n"
               "130/143/129 when uvmctl itself got SIGINT/SIGTERM/SIGHUP).\n");
}

static const char *const level_names[] = {"error", "warning", "info", "debug"};
static struct timespec log_t0;

static void
cli_log(void *opaque, enum uvm_log_level level, const char *vm_id, const char *message)
{
    const struct cli_global *g = opaque;
    const char *name = (unsigned)level < 4 ? level_names[level] : "?";
    int len = (int)strlen(message);
    while (len > 0 && message[len - 1] == '\n')
        len--;

    if (g->debug) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double s = (double)(now.tv_sec - log_t0.tv_sec) + (now.tv_nsec - log_t0.tv_nsec) / 1e9;
        fprintf(stderr, "uvmctl: [%8.3f] %s: %s%s%.*s\n", s, name, vm_id ? vm_id : "",
                vm_id ? ": " : "", len, message);
    } else {
        fprintf(stderr, "uvmctl: %s: %s%s%.*s\n", name, vm_id ? vm_id : "", vm_id ? ": " : "",
                len, message);
    }
}

void
cli_print_error(int code)
{
    const char *msg = uvm_last_error();
    fprintf(stderr, "uvmctl: %s\n", msg && *msg ? msg : uvm_strerror(code));
}

int
cli_usage_error(const char *prog)
{
    fprintf(stderr, "Try '%s --help' for more information.\n", prog);
    return CLI_EXIT_USAGE;
}

int
cli_parse_uint(const char *prog, const char *name, const char *s, uint64_t min, uint64_t max,
               uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || errno != 0 || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "%s: invalid --%s '%s' (want an integer in %" PRIu64 "..%" PRIu64 ")\n",
                prog, name, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int
cli_vm_option(const char *prog, int opt, const char *arg, struct uvm_options *o)
{
    uint64_t v = 0;

    switch (opt) {
    case CLI_OPT_MEMORY:
        if (cli_parse_uint(prog, "memory", arg, 1, UINT64_MAX / (1024 * 1024), &v) < 0)
            return -1;
        o->memory_mb = v;
        return 1;
    case CLI_OPT_CPUS:
        if (cli_parse_uint(prog, "cpus", arg, 1, UINT32_MAX, &v) < 0)
            return -1;
        o->processor_count = (uint32_t)v;
        return 1;
    case CLI_OPT_BOOT_FILES:
        o->boot_files_path = arg;
        return 1;
    case CLI_OPT_KERNEL_ARGS:
        o->kernel_boot_options = arg;
        return 1;
    case CLI_OPT_ID:
        o->id = arg;
        return 1;
    case CLI_OPT_CONSOLE:
        o->console_pipe = arg;
        return 1;
    case CLI_OPT_TIMEOUT_MS:
        if (cli_parse_uint(prog, "timeout-ms", arg, 1, UINT32_MAX, &v) < 0)
            return -1;
        o->start_timeout_ms = (uint32_t)v;
        return 1;
    case CLI_OPT_TEMPLATE:
        o->template_dir = arg;
        return 1;
    case CLI_OPT_ROOTFS:
        if (strcmp(arg, "initrd") == 0) {
            o->preferred_rootfs_type = UVM_ROOTFS_INITRD;
        } else if (strcmp(arg, "vhd") == 0) {
            o->preferred_rootfs_type = UVM_ROOTFS_VHD;
        } else {
            fprintf(stderr, "%s: invalid --rootfs '%s' (want initrd or vhd)\n", prog, arg);
            return -1;
        }
        o->has_preferred_rootfs_type = true;
        return 1;
    default:
        return 0;
    }
}

int
main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"verbose", no_argument, NULL, 'v'},
        {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli_global g = {0};
    int c;

    clock_gettime(CLOCK_MONOTONIC, &log_t0);
    argv[0] = (char *)"uvmctl";
    /* '+': stop at the verb; its options are its own. */
    while ((c = getopt_long(argc, argv, "+vh", long_options, NULL)) != -1) {
        switch (c) {
        case 'v':
            g.verbose++;
            break;
        case 'd':
            g.debug = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        case 'V':
            printf("uvmctl %s\n", UVM_VERSION);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("uvmctl");
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "uvmctl: no verb given\n");
        return cli_usage_error("uvmctl");
    }

    const char *name = argv[optind];
    const struct cli_verb *verb = NULL;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verbs[i].name, name) == 0)
            verb = &verbs[i];
    if (!verb) {
        fprintf(stderr, "uvmctl: unknown verb '%s'\n", name);
        return cli_usage_error("uvmctl");
    }

    enum uvm_log_level max = g.debug ? UVM_LOG_DEBUG : g.verbose ? UVM_LOG_INFO : UVM_LOG_WARNING;
    uvm_set_log_handler(cli_log, &g, max);

    char prog[64];
    snprintf(prog, sizeof(prog), "uvmctl %s", verb->name);
    char **vargv = argv + optind;
    vargv[0] = prog;
    optind = 0; /* glibc: full re-initialisation for the verb's getopt_long */
    int status = verb->main(&g, argc - (int)(vargv - argv), vargv);

    uvm_set_log_handler(NULL, NULL, UVM_LOG_ERROR);
    if (fflush(stdout) != 0 && status == CLI_EXIT_OK) {
        fprintf(stderr, "uvmctl: write error on standard output: %s\n", strerror(errno));
        status = CLI_EXIT_FAILURE;
    }
    return status;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl template create DIR: boot a VM with the given options and save it as a template. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void
usage(FILE *f)
{
    fprintf(f, "Usage: uvmctl template create [OPTION]... DIR\n"
               "Boot a VM, wait until its agent is ready, and save it as a template in DIR\n"
               "(created; or an existing empty directory of ours, not group or world\n"
               "writable). Then start clones of it with\n"
               "'uvmctl run --template DIR -- COMMAND'. A template on tmpfs (/dev/shm) starts\n"
               "clones fastest; it holds the guest RAM the VM wrote (tens of MiB) and the\n"
               "devices' state. Remove it with rm -r when done.\n"
               "\n");
    fputs(cli_vm_options_help, f);
    fprintf(f, "\n"
               "  -h, --help              this help\n"
               "\n"
               "Exit status: 0 saved; 2 usage error; 125 uvmctl failed (DIR is left as it was).\n");
}

static int
template_create(const struct uvm_options *o, const char *dir)
{
    struct uvm *vm = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = uvm_create(o, &vm);
    if (rc == 0)
        rc = uvm_start(vm);
    if (rc == 0)
        rc = uvm_save_template(vm, dir);
    if (rc < 0)
        cli_print_error(rc);
    uvm_close(vm);
    if (rc < 0)
        return CLI_EXIT_FAILURE;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "uvmctl: template saved in '%s' (%.0f ms)\n", dir,
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return CLI_EXIT_OK;
}

int
cli_template_main(const struct cli_global *g, int argc, char **argv)
{
    (void)g;
    static const struct option long_options[] = {
        CLI_VM_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "create")) {
        fprintf(stderr, "%s: %s\n", argv[0],
                argc < 2 ? "missing sub-command (create)" : "unknown sub-command");
        return cli_usage_error(argv[0]);
    }
    struct uvm_options o = {0};
    int c;
    argv[1] = argv[0];
    argv++;
    argc--;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        int v = cli_vm_option(argv[0], c, optarg, &o);
        if (v < 0)
            return cli_usage_error(argv[0]);
        if (v > 0)
            continue;
        if (c == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        return cli_usage_error(argv[0]);
    }
    if (o.template_dir) {
        fprintf(stderr, "%s: a template is made from a booted VM, not from a clone\n", argv[0]);
        return cli_usage_error(argv[0]);
    }
    if (optind != argc - 1) {
        fprintf(stderr, "%s: %s\n", argv[0], optind >= argc ? "missing DIR" : "too many arguments");
        return cli_usage_error(argv[0]);
    }
    signal(SIGPIPE, SIG_IGN);
    return template_create(&o, argv[optind]);
}

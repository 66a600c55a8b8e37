/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvmctl create --dry-run: build a VM's document and QEMU command line, print both. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
    OPT_DRY_RUN = CLI_OPT_VERB,
    OPT_OS,
    OPT_LAYER,
    OPT_VPMEM,
    OPT_SCSI,
    OPT_ADDITIONAL_JSON,
};

static void
usage(FILE *f)
{
    fprintf(f, "Usage: uvmctl create --dry-run [OPTION]...\n"
               "Validate the options, build the VM document and the QEMU command line, print the\n"
               "document (JSON) and then the command line (one shell-quoted line). Nothing is\n"
               "started. Only --dry-run is supported: a VM does not outlive uvmctl (see 'run').\n"
               "\n");
    fputs(cli_vm_options_help, f);
    fprintf(f, "      --os linux|windows  guest operating system (default linux)\n"
               "      --layer DIR         windows: a layer folder, top to base, then scratch;\n"
               "                          repeat for each\n"
               "      --vpmem N           VPMEM devices (0..%d, default %d)\n"
               "      --scsi N            SCSI controllers (0..4, default 1)\n"
               "      --additional-json JSON\n"
               "                          deep-merged over the VM document\n"
               "\n"
               "Create options:\n"
               "      --dry-run           required\n"
               "  -h, --help              this help\n"
               "\n"
               "Exit status: 0 printed; 2 usage error (or no --dry-run); 125 uvmctl failed.\n",
            UVM_MAX_VPMEM, UVM_DEFAULT_VPMEM);
}

/* One word for a POSIX shell: as is when safe, else in single quotes. */
static void
print_shell_word(FILE *f, const char *s)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "@%+=:,./_-";
    if (*s && strspn(s, safe) == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

static void
print_document(const char *doc)
{
    json_error_t jerr;
    json_t *root = json_loads(doc, 0, &jerr);
    char *pretty = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

    fputs(pretty ? pretty : doc, stdout);
    fputc('\n', stdout);
    free(pretty);
    json_decref(root);
}

static int
create_dry_run(const struct uvm_options *opts)
{
    struct uvm *vm = NULL;
    int rc = uvm_create(opts, &vm);

    if (rc < 0) {
        cli_print_error(rc);
        return CLI_EXIT_FAILURE;
    }
    const char *doc = uvm_document(vm);
    const char *const *argv = uvm_qemu_argv(vm);
    print_document(doc ? doc : "");
    for (size_t i = 0; argv && argv[i]; i++) {
        if (i)
            fputc(' ', stdout);
        print_shell_word(stdout, argv[i]);
    }
    fputc('\n', stdout);
    uvm_close(vm);
    return CLI_EXIT_OK;
}

/* One option of `uvmctl create` besides the VM options: 0 taken, 1 --help, -1 a usage error. */
static int
create_option(const char *prog, int c, struct uvm_options *opts, const char **layers,
              bool *dry_run)
{
    uint64_t v = 0;
    switch (c) {
    case OPT_DRY_RUN:
        *dry_run = true;
        return 0;
    case OPT_OS:
        if (strcmp(optarg, "linux") != 0 && strcmp(optarg, "windows") != 0) {
            fprintf(stderr, "%s: invalid --os '%s' (want linux or windows)\n", prog, optarg);
            return -1;
        }
        opts->operating_system = optarg;
        return 0;
    case OPT_LAYER:
        layers[opts->layer_folder_count++] = optarg;
        return 0;
    case OPT_VPMEM:
        if (cli_parse_uint(prog, "vpmem", optarg, 0, UVM_MAX_VPMEM, &v) < 0)
            return -1;
        opts->has_vpmem_device_count = true;
        opts->vpmem_device_count = (int32_t)v;
        return 0;
    case OPT_SCSI:
        if (cli_parse_uint(prog, "scsi", optarg, 0, 4, &v) < 0)
            return -1;
        opts->has_scsi_controller_count = true;
        opts->scsi_controller_count = (int)v;
        return 0;
    case OPT_ADDITIONAL_JSON:
        opts->additional_hcs_document_json = optarg;
        return 0;
    case 'h':
        return 1;
    default:
        return -1;
    }
}

int
cli_create_main(const struct cli_global *g, int argc, char **argv)
{
    static const struct option long_options[] = {
        CLI_VM_LONG_OPTIONS,
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"os", required_argument, NULL, OPT_OS},
        {"layer", required_argument, NULL, OPT_LAYER},
        {"vpmem", required_argument, NULL, OPT_VPMEM},
        {"scsi", required_argument, NULL, OPT_SCSI},
        {"additional-json", required_argument, NULL, OPT_ADDITIONAL_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct uvm_options opts = {0};
    (void)g;
    bool dry_run = false;
    int c;

    /* at most one --layer per argument */
    const char **layers = calloc((size_t)argc + 1, sizeof(*layers));
    if (!layers) {
        fprintf(stderr, "uvmctl: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int status = CLI_EXIT_USAGE;

    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        int applied = cli_vm_option(argv[0], c, optarg, &opts);
        if (applied < 0)
            goto usage_error;
        if (applied)
            continue;
        int rc = create_option(argv[0], c, &opts, layers, &dry_run);
        if (rc < 0)
            goto usage_error;
        if (rc > 0) {
            usage(stdout);
            status = CLI_EXIT_OK;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
        goto usage_error;
    }
    if (!dry_run) {
        fprintf(stderr, "%s: only --dry-run is supported: a created VM does not outlive uvmctl "
                        "(use 'uvmctl run' to boot one)\n",
                argv[0]);
        goto usage_error;
    }
    if (opts.layer_folder_count)
        opts.layer_folders = layers;

    status = create_dry_run(&opts);
    goto out;

usage_error:
    status = cli_usage_error(argv[0]);
out:
    free(layers);
    return status;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* uvm-runtime: an OCI runtime CLI in runc's shape that runs each container in its own libuvm
 * utility VM, for containerd's stock runc shim (docs/runtime.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtlog.h"
#include "runtime.h"

#ifndef UVM_VERSION
#define UVM_VERSION "unknown"
#endif

static void
usage(void)
{
    printf("Usage: uvm-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n"
           "An OCI runtime with runc's command line: each container runs in its own utility VM\n"
           "(libuvm). For containerd: ctr run --runc-binary /path/uvm-runtime ..., or CRI's\n"
           "runtimes.<name>.options.BinaryName.\n"
           "\n"
           "Commands:\n"
           "  create [--bundle DIR] [--pid-file FILE] ID    boot the VM, create the container\n"
           "  start ID                                      run its process\n"
           "  exec [--process FILE|-e K=V --cwd DIR] [--detach] [--pid-file FILE] ID [CMD...]\n"
           "  kill [--all] ID [SIGNAL]                      signal the init (default TERM)\n"
           "  delete [--force] ID                           delete it; the VM is gone after\n"
           "  ps [--format table|json] ID                   host pids of its processes' stubs\n"
           "  state ID                                      runc's state JSON\n"
           "  pause, resume, update                         not supported\n"
           "\n"
           "Default --root " RT_DEFAULT_ROOT ". Environment: UVM_BOOT_FILES_PATH,\n"
           "UVM_RUNTIME_MEMORY_MB (default 512), UVM_RUNTIME_CPUS (default 1), UVM_RUNTIME_DIR,\n"
           "UVM_RUNTIME_TIMINGS (a file: one JSON line of phase times per container).\n"
           "Annotations: io.libuvm.boot-files, io.libuvm.memory-mb, io.libuvm.cpus.\n");
}

/* One function per verb (crun's verb table); version and help are answered in main. */
static int (*const verb_main[])(const struct rt_cmd *) = {
    [RT_CREATE] = rt_create,      [RT_START] = rt_start,       [RT_EXEC] = rt_exec,
    [RT_KILL] = rt_kill,          [RT_DELETE] = rt_delete,     [RT_PS] = rt_ps,
    [RT_STATE] = rt_state,        [RT_PAUSE] = rt_unsupported, [RT_RESUME] = rt_unsupported,
    [RT_UPDATE] = rt_unsupported,
};

const char *
rt_uvm_runtime_dir(void)
{
    const char *d = getenv("UVM_RUNTIME_DIR");
    return d && d[0] ? d : "/run/uvm";
}

int
main(int argc, char **argv)
{
    struct rt_cmd c;
    char err[512];
    if (rt_parse(argc, argv, &c, err, sizeof(err)) < 0) {
        /* --log may have been parsed before the error: use it */
        rtlog_setup(c.log, c.log_json);
        return rtlog_error("%s", err);
    }
    rtlog_setup(c.log, c.log_json);
    if (c.verb == RT_VERSION) {
        printf("uvm-runtime version %s\nspec: 1.0.2-dev\n", UVM_VERSION);
        return 0;
    }
    if (c.verb == RT_HELP) {
        usage();
        return 0;
    }
    return verb_main[c.verb](&c);
}

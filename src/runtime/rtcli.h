/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uvm-runtime's command line, in runc's shapes (go-runc's argument orders, containerd-oci.md §0):
 *
 *   uvm-runtime [GLOBAL]... VERB [FLAG]... ID [ARG]...
 *   GLOBAL  --root DIR  --log FILE  --log-format text|json  --systemd-cgroup  --debug
 *           --criu PATH --rootless VALUE (accepted, ignored)
 *   create  --bundle|-b DIR  --pid-file FILE  --console-socket PATH  --no-pivot
 *           --no-new-keyring  --preserve-fds N (0 only)  ID
 *   start ID | state ID | pause ID | resume ID
 *   exec    --process|-p FILE  --detach|-d  --pid-file FILE  --console-socket PATH  --tty|-t
 *           --cwd DIR  --env|-e K=V (repeatable)  ID [COMMAND [ARG]...]
 *   kill    --all|-a  ID [SIGNAL]   (a number or a name, with or without SIG; default TERM)
 *   delete  --force|-f  ID
 *   ps      --format|-f table|json  ID
 *   update  --resources|-r FILE  ID  (and the other runc update flags, taking a value)
 *   --version | version | --help | help
 *
 * A flag is --name, -name or a short -x; a value follows as the next argument or after '='.
 * Flags come before the ID (urfave/cli's rule: after the first positional argument everything
 * is an argument). Parsing is pure: no I/O.
 */
#ifndef UVM_RUNTIME_RTCLI_H
#define UVM_RUNTIME_RTCLI_H

#include <stdbool.h>
#include <stddef.h>

#define RT_DEFAULT_ROOT "/run/uvm-runtime"
#define RT_MAX_ENV 256

enum rt_verb {
    RT_CREATE,
    RT_START,
    RT_EXEC,
    RT_KILL,
    RT_DELETE,
    RT_PS,
    RT_STATE,
    RT_PAUSE,
    RT_RESUME,
    RT_UPDATE,
    RT_VERSION,
    RT_HELP,
};

struct rt_cmd {
    /* global */
    const char *root; /* RT_DEFAULT_ROOT when not given */
    const char *log;  /* NULL: errors on stderr only */
    bool log_json;
    bool systemd_cgroup, debug;
    /* verb */
    enum rt_verb verb;
    const char *id;
    const char *bundle, *pid_file, *console_socket, *process, *cwd, *resources;
    const char *env[RT_MAX_ENV + 1];
    size_t nenv;
    bool detach, tty, all, force, ps_json;
    int signal;  /* kill: 1..64 */
    char **args; /* exec: the command after the ID (NULL-terminated), NULL when none */
    size_t nargs;
};

/* Parse argv (argv[0] is the program). 0, or -1 with a one-line message in err (a usage
 * error: exit 1 as runc does, with the message logged). */
int rt_parse(int argc, char **argv, struct rt_cmd *cmd, char *err, size_t errlen);

/* A signal as runc takes it: "9", "KILL", "SIGKILL", "sigkill". 1..64, or -1. */
int rt_parse_signal(const char *s);

/* A container ID as runc takes it: [A-Za-z0-9_+.-]{1,1024}, not "." or "..". */
bool rt_id_valid(const char *id);

#endif

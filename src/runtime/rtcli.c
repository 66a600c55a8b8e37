/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rtcli.h"

enum flag_id {
    F_ROOT = 1,
    F_LOG,
    F_LOG_FORMAT,
    F_SYSTEMD,
    F_DEBUG,
    F_IGNORED_VALUE,
    F_IGNORED,
    F_BUNDLE,
    F_PID_FILE,
    F_CONSOLE,
    F_PRESERVE_FDS,
    F_PROCESS,
    F_DETACH,
    F_TTY,
    F_CWD,
    F_ENV,
    F_ALL,
    F_FORCE,
    F_FORMAT,
    F_RESOURCES,
};

struct flag {
    const char *name;
    char short_name;
    bool value;
    enum flag_id id;
};

static const struct flag global_flags[] = {
    {"root", 0, true, F_ROOT},
    {"log", 0, true, F_LOG},
    {"log-format", 0, true, F_LOG_FORMAT},
    {"systemd-cgroup", 0, false, F_SYSTEMD},
    {"debug", 0, false, F_DEBUG},
    {"criu", 0, true, F_IGNORED_VALUE},
    {"rootless", 0, true, F_IGNORED_VALUE},
    {NULL, 0, false, 0},
};
static const struct flag create_flags[] = {
    {"bundle", 'b', true, F_BUNDLE},
    {"pid-file", 0, true, F_PID_FILE},
    {"console-socket", 0, true, F_CONSOLE},
    {"no-pivot", 0, false, F_IGNORED},
    {"no-new-keyring", 0, false, F_IGNORED},
    {"preserve-fds", 0, true, F_PRESERVE_FDS},
    {NULL, 0, false, 0},
};
static const struct flag exec_flags[] = {
    {"process", 'p', true, F_PROCESS},
    {"detach", 'd', false, F_DETACH},
    {"pid-file", 0, true, F_PID_FILE},
    {"console-socket", 0, true, F_CONSOLE},
    {"tty", 't', false, F_TTY},
    {"cwd", 0, true, F_CWD},
    {"env", 'e', true, F_ENV},
    {"preserve-fds", 0, true, F_PRESERVE_FDS},
    {"no-new-privs", 0, false, F_IGNORED},
    {NULL, 0, false, 0},
};
static const struct flag kill_flags[] = {{"all", 'a', false, F_ALL}, {NULL, 0, false, 0}};
static const struct flag delete_flags[] = {{"force", 'f', false, F_FORCE}, {NULL, 0, false, 0}};
static const struct flag ps_flags[] = {{"format", 'f', true, F_FORMAT}, {NULL, 0, false, 0}};
static const struct flag update_flags[] = {
    {"resources", 'r', true, F_RESOURCES},
    {"blkio-weight", 0, true, F_IGNORED_VALUE},
    {"cpu-period", 0, true, F_IGNORED_VALUE},
    {"cpu-quota", 0, true, F_IGNORED_VALUE},
    {"cpu-share", 0, true, F_IGNORED_VALUE},
    {"cpu-rt-period", 0, true, F_IGNORED_VALUE},
    {"cpu-rt-runtime", 0, true, F_IGNORED_VALUE},
    {"cpuset-cpus", 0, true, F_IGNORED_VALUE},
    {"cpuset-mems", 0, true, F_IGNORED_VALUE},
    {"memory", 0, true, F_IGNORED_VALUE},
    {"memory-reservation", 0, true, F_IGNORED_VALUE},
    {"memory-swap", 0, true, F_IGNORED_VALUE},
    {"pids-limit", 0, true, F_IGNORED_VALUE},
    {"l3-cache-schema", 0, true, F_IGNORED_VALUE},
    {"mem-bw-schema", 0, true, F_IGNORED_VALUE},
    {NULL, 0, false, 0},
};
static const struct flag no_flags[] = {{NULL, 0, false, 0}};

struct verb {
    const char *name;
    enum rt_verb verb;
    const struct flag *flags;
    size_t min_args, max_args; /* positional arguments, the ID included */
};

/* clang-format off: one verb a line */
static const struct verb verbs[] = {
    {"create", RT_CREATE, create_flags, 1, 1},    {"start", RT_START, no_flags, 1, 1},
    {"exec", RT_EXEC, exec_flags, 1, (size_t)-1}, {"kill", RT_KILL, kill_flags, 1, 2},
    {"delete", RT_DELETE, delete_flags, 1, 1},    {"ps", RT_PS, ps_flags, 1, 1},
    {"state", RT_STATE, no_flags, 1, 1},          {"pause", RT_PAUSE, no_flags, 1, 1},
    {"resume", RT_RESUME, no_flags, 1, 1},        {"update", RT_UPDATE, update_flags, 1, 1},
    {"version", RT_VERSION, no_flags, 0, 0},      {"help", RT_HELP, no_flags, 0, 0},
};
/* clang-format on */

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* argv[*i] against flags: 1 = a flag (id, value set, *i moved past it), 0 = not a flag (a
 * positional argument; "--" is consumed and makes the rest positional), -1 = error. */
static int
next_flag(int argc, char **argv, int *i, const struct flag *flags, enum flag_id *id,
          const char **value, bool *rest, char *err, size_t errlen)
{
    const char *a = argv[*i];
    if (a[0] != '-' || a[1] == '\0')
        return 0;
    if (!strcmp(a, "--")) {
        (*i)++;
        *rest = true;
        return 0;
    }
    const char *name = a + (a[1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct flag *f = flags;
    for (; f->name; f++)
        if ((strlen(f->name) == len && !strncmp(f->name, name, len)) ||
            (f->short_name && len == 1 && a[1] != '-' && name[0] == f->short_name))
            break;
    if (!f->name)
        return FAIL("flag provided but not defined: -%.*s", (int)len, name);
    *id = f->id;
    *value = NULL;
    if (!f->value) {
        if (eq && strcmp(eq + 1, "true") && strcmp(eq + 1, "false"))
            return FAIL("invalid boolean value \"%s\" for -%s", eq + 1, f->name);
        *value = eq ? eq + 1 : "true";
    } else if (eq) {
        *value = eq + 1;
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        return FAIL("flag needs an argument: -%s", f->name);
    }
    (*i)++;
    return 1;
}

static int
apply_global(struct rt_cmd *c, enum flag_id id, const char *v, char *err, size_t errlen)
{
    bool on = !strcmp(v, "true");
    switch (id) {
    case F_ROOT:
        if (!v[0])
            return FAIL("--root must not be empty");
        c->root = v;
        break;
    case F_LOG:
        c->log = v[0] ? v : NULL;
        break;
    case F_LOG_FORMAT:
        if (strcmp(v, "json") && strcmp(v, "text"))
            return FAIL("invalid log-format: %s", v);
        c->log_json = !strcmp(v, "json");
        break;
    case F_SYSTEMD:
        c->systemd_cgroup = on;
        break;
    case F_DEBUG:
        c->debug = on;
        break;
    default:
        break;
    }
    return 0;
}

static int
apply_verb(struct rt_cmd *c, enum flag_id id, const char *v, char *err, size_t errlen)
{
    bool on = !strcmp(v, "true");
    switch (id) {
    case F_BUNDLE:
        c->bundle = v;
        break;
    case F_PID_FILE:
        c->pid_file = v;
        break;
    case F_CONSOLE:
        c->console_socket = v;
        break;
    case F_PROCESS:
        c->process = v;
        break;
    case F_CWD:
        c->cwd = v;
        break;
    case F_RESOURCES:
        c->resources = v;
        break;
    case F_DETACH:
        c->detach = on;
        break;
    case F_TTY:
        c->tty = on;
        break;
    case F_ALL:
        c->all = on;
        break;
    case F_FORCE:
        c->force = on;
        break;
    case F_PRESERVE_FDS:
        if (strcmp(v, "0"))
            return FAIL("--preserve-fds %s: passing extra descriptors is not supported", v);
        break;
    case F_ENV:
        if (c->nenv >= RT_MAX_ENV)
            return FAIL("too many --env values (at most %d)", RT_MAX_ENV);
        if (!strchr(v, '=') || v[0] == '=')
            return FAIL("--env %s: not KEY=VALUE", v);
        c->env[c->nenv++] = v;
        break;
    case F_FORMAT:
        if (strcmp(v, "json") && strcmp(v, "table"))
            return FAIL("invalid format option: %s", v);
        c->ps_json = !strcmp(v, "json");
        break;
    default:
        break;
    }
    return 0;
}

bool
rt_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 1024 || !strcmp(id, ".") || !strcmp(id, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && !strchr("_+.-", id[i]))
            return false;
    return true;
}

static const char *const signal_names[] = {
    NULL,   "HUP",  "INT",  "QUIT", "ILL",    "TRAP",   "ABRT",  "BUS",  "FPE",  "KILL", "USR1",
    "SEGV", "USR2", "PIPE", "ALRM", "TERM",   "STKFLT", "CHLD",  "CONT", "STOP", "TSTP", "TTIN",
    "TTOU", "URG",  "XCPU", "XFSZ", "VTALRM", "PROF",   "WINCH", "IO",   "PWR",  "SYS",
};

int
rt_parse_signal(const char *s)
{
    if (isdigit((unsigned char)s[0])) {
        char *end;
        long v = strtol(s, &end, 10);
        return (*end || v < 1 || v > 64 || strlen(s) > 2) ? -1 : (int)v;
    }
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    for (size_t i = 1; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (!strcasecmp(s, signal_names[i]))
            return (int)i;
    return -1;
}

/* The positional arguments of the verb: ID first. */
static int
positional(struct rt_cmd *c, const struct verb *v, char **args, size_t n, char *err, size_t errlen)
{
    if (n < v->min_args || n > v->max_args)
        return FAIL("%s: %s", v->name,
                    n < v->min_args ? "container id cannot be empty"
                                    : "incorrect number of arguments");
    if (n == 0)
        return 0;
    c->id = args[0];
    if (!rt_id_valid(c->id))
        return FAIL("invalid container id format: %s", c->id);
    if (v->verb == RT_KILL) {
        c->signal = n > 1 ? rt_parse_signal(args[1]) : 15;
        if (c->signal < 0)
            return FAIL("unknown signal \"%s\"", args[1]);
    } else if (v->verb == RT_EXEC && n > 1) {
        c->args = &args[1];
        c->nargs = n - 1;
    }
    return 0;
}

/* Cross-flag checks of a verb. */
static int
verb_checks(const struct rt_cmd *c, char *err, size_t errlen)
{
    if (c->verb == RT_EXEC && !c->process && !c->nargs)
        return FAIL("exec: either --process or a command is needed");
    if (c->verb == RT_EXEC && c->process && c->nargs)
        return FAIL("exec: --process and a command cannot be used together");
    return 0;
}

int
rt_parse(int argc, char **argv, struct rt_cmd *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->root = RT_DEFAULT_ROOT;
    int i = 1;
    enum flag_id id;
    const char *val;
    bool rest = false;
    while (i < argc && !rest) {
        const char *a = argv[i];
        if (!strcmp(a, "--version") || !strcmp(a, "-v") || !strcmp(a, "--help") ||
            !strcmp(a, "-h")) {
            c->verb = a[2] == 'v' || a[1] == 'v' ? RT_VERSION : RT_HELP;
            return 0;
        }
        int r = next_flag(argc, argv, &i, global_flags, &id, &val, &rest, err, errlen);
        if (r < 0 || (r > 0 && apply_global(c, id, val, err, errlen) < 0))
            return -1;
        if (r == 0)
            break;
    }
    if (i >= argc)
        return FAIL("no command given (try --help)");
    const struct verb *v = NULL;
    for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++)
        if (!strcmp(argv[i], verbs[k].name))
            v = &verbs[k];
    if (!v)
        return FAIL("command \"%s\" not supported", argv[i]);
    c->verb = v->verb;
    i++;
    rest = false;
    while (i < argc && !rest) {
        int r = next_flag(argc, argv, &i, v->flags, &id, &val, &rest, err, errlen);
        if (r < 0 || (r > 0 && apply_verb(c, id, val, err, errlen) < 0))
            return -1;
        if (r == 0)
            break;
    }
    if (positional(c, v, &argv[i], (size_t)(argc - i), err, errlen) < 0)
        return -1;
    return verb_checks(c, err, errlen);
}

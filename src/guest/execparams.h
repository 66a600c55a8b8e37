/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The parameters of ExecuteProcess, decoded and checked (pure: no I/O; process.c runs them):
 * {"Settings":{"ProcessParameters":{"CommandArgs":[...], "Environment":{...},
 * "WorkingDirectory", "CreateStd{In,Out,Err}Pipe", "NetworkNamespace", "EmulateConsole",
 * "ConsoleSize"}, "StdioHandle"}}. With "EmulateConsole" the process runs on a terminal whose
 * output is the stdout stream (stderr merged into it, as runc and hcsshim do): CreateStdOutPipe
 * is then required and CreateStdErrPipe refused.
 */
#ifndef GCS_EXECPARAMS_H
#define GCS_EXECPARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"
#include "ttyreq.h"

#define EXEC_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct exec_params {
    const char **argv; /* NULL-terminated; the strings are borrowed from the request body */
    char **envp;       /* owned "KEY=value" strings, NULL-terminated; EXEC_DEFAULT_PATH added
                          when the request has no PATH */
    const char *cwd;   /* "/" when absent or empty */
    bool pipes[3];     /* stdin, stdout, stderr */
    uint32_t handle;   /* StdioHandle, 0: none (then no pipes) */
    const char *netns; /* NetworkNamespace (a valid id), NULL: the root namespace */
    bool terminal;     /* EmulateConsole */
    struct tty_size size; /* ConsoleSize (0x0: absent) */
};

/* Decode req->body into p (zeroed by the caller). 0, or -EINVAL with req->error naming the
 * field; either way p must be released. */
int exec_params_parse(struct request *req, struct exec_params *p);

void exec_params_release(struct exec_params *p);

#endif

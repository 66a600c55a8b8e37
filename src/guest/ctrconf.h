/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container requests, decoded and checked (pure: no I/O; container.c runs them):
 *   CreateContainer {"ContainerId":"c1","ContainerConfig":"<JSON text>"}, the text being
 *     {"OciBundlePath":"/run/gcs/c/c1","OciSpecification":{...},"StdioHandle":7,
 *      "CreateStdInPipe":true,"CreateStdOutPipe":true,"CreateStdErrPipe":true}
 *   ExecuteProcess in a container {"ContainerId":"c1","Settings":{"ProcessParameters":
 *     {"OCIProcess":{...},"CreateStd*Pipe":...},"StdioHandle":8}}; without OCIProcess it
 *     starts the container's init (hcsshim's order).
 * The spec comes translated by the host (docs/containers.md); the agent only puts the container
 * in its own cgroup, checks what it relies on and leaves the rest to crun.
 */
#ifndef GCS_CTRCONF_H
#define GCS_CTRCONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "request.h"

#define CTR_BUNDLE_ROOT "/run/gcs/c"  /* bundles: /run/gcs/c/<id> */
#define CTR_CGROUP_ROOT "/c"          /* cgroups: /sys/fs/cgroup/c/<id> */
#define CTR_ID_MAX 64

/* The stdio of a process: which pipes, and the stream handle naming them; or a terminal (the
 * spec's process.terminal), relayed over the handle's streams, with input when pipes[0]. */
struct ctr_stdio {
    bool pipes[3];   /* stdin, stdout, stderr */
    uint32_t handle; /* StdioHandle, 0: none (then no pipes and no terminal) */
    bool terminal;
};

struct ctr_create {
    const char *id;       /* ContainerId (borrowed from the request) */
    char *bundle;         /* CTR_BUNDLE_ROOT "/<id>" */
    json_t *spec;         /* the spec to write as config.json (new reference): the host's with
                             linux.cgroupsPath = CTR_CGROUP_ROOT "/<id>" */
    bool own_pid_ns;      /* the spec asks for a new PID namespace */
    char *cmdline;        /* the init's args joined with spaces (for logs, ProcessList) */
    struct ctr_stdio stdio; /* the init's */
};

/* Same rule as network namespace ids: [A-Za-z0-9._-]{1,64}, not starting with '.'. */
bool ctr_id_valid(const char *id);

/* Decode a CreateContainer request into c (zeroed by the caller). 0, or -EINVAL with
 * req->error naming the field; either way c must be released. */
int ctr_create_parse(struct request *req, struct ctr_create *c);
void ctr_create_release(struct ctr_create *c);

struct ctr_exec {
    json_t *process;      /* OCIProcess (borrowed), NULL: start the init */
    char *cmdline;        /* its args joined (NULL for a start) */
    struct ctr_stdio stdio;
};

/* Decode an ExecuteProcess request for a container. Same conventions. */
int ctr_exec_parse(struct request *req, struct ctr_exec *e);
void ctr_exec_release(struct ctr_exec *e);

#endif

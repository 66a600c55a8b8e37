/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI containers run by crun (docs/containers.md): CreateContainer (`crun create`),
 * ExecuteProcess with a ContainerId (for the init what `crun start` does, crun_start_init;
 * `crun exec -d` for an OCIProcess), SignalProcess with a ContainerId (`crun kill --all` for the init of a container
 * without a PID namespace of its own) and DeleteContainerState (`crun delete --force`). Each crun
 * call is an asynchronous child (crun.h) whose exit answers the request. The processes crun
 * starts are adopted by process.c: stdio streams, WaitForProcess, SignalProcess as for any
 * process. Requests without a ContainerId go to process.c unchanged.
 */
#ifndef GCS_CONTAINER_H
#define GCS_CONTAINER_H

#include "bridge.h"

bridge_handler_fn container_handle_create;
bridge_handler_fn container_handle_execute;
bridge_handler_fn container_handle_signal;
bridge_handler_fn container_handle_delete;

/* GetProperties' ContainerList: [{"Id","State","InitProcessId"}] (new reference). */
json_t *container_list(void);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Templates and clones, the agent's part (docs/design.md "Templates and clones").
 *
 * Quiesce: the host is about to pause the VM and save it as a template. The agent refuses when
 * anything is in use (processes, containers, shares, device waits, modify requests waiting for
 * the late modules: a clone would inherit them half-done), waits for the late modules, unmounts
 * the 9p export (QEMU refuses to migrate while it is mounted; the next Plan9 Add mounts it
 * again), syncs, and answers. From then on the agent sends nothing of its own (no Log lines: a
 * frame cut in half by the pause would reach the clone's host), serves only NegotiateProtocol
 * and Resume, and takes a hang-up of the port as "the host is not connected yet", never as the
 * end: the host of a clone is another connection.
 *
 * Resume: the clone's identity, sent once per clone right after it runs (and to end a quiesce
 * whose save failed): the wall clock (frozen at the template's), fresh host entropy credited to
 * the kernel's pool and a forced CRNG reseed (clones share the template's random state), the
 * hostname. Then the agent serves every request again.
 */
#ifndef GCS_CLONE_H
#define GCS_CLONE_H

#include "bridge.h"

bridge_handler_fn clone_handle_quiesce;
bridge_handler_fn clone_handle_resume;
/* The late modules are loaded: answer a Quiesce that waited for them. */
void clone_late_ready(struct bridge *b);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An OCI runtime spec made fit for the guest (pure: no I/O; container.c acts on the result).
 * What names host things must not cross into the VM, where it would mean something else or
 * nothing (docs/containers.md, "What the host translates"):
 *   hooks                           dropped: host programs; they would run in the guest
 *   linux.cgroupsPath               dropped: the agent puts each container in /c/<id>
 *   process.apparmorProfile,        dropped: the guest kernel has no LSM
 *   process.selinuxLabel, linux.mountLabel
 *   linux.resources.devices         replaced by "deny all" (crun still allows its default
 *                                   devices): host device numbers mean nothing in the guest
 *   linux.devices                   dropped: host device nodes
 *   linux.intelRdt                  dropped: host hardware
 *   linux.namespaces[].path         dropped: host namespace files; the network namespace becomes
 *                                   the guest's /run/netns/<id> when one is given
 *   windows, solaris, vm            dropped
 *   root.path                       the guest path given (a share, a CombinedLayers root, a layer)
 *   mounts[] binds                  returned: their host sources are shared into the VM by the
 *                                   caller, which then rewrites them (ocispec_set_mount_source)
 * process.terminal is reported: the process's stdio is then one terminal stream.
 */
#ifndef UVM_LIB_OCISPEC_H
#define UVM_LIB_OCISPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define OCISPEC_NETNS_DIR "/run/netns" /* where the agent pins network namespaces */

struct ocispec_opts {
    const char *root_path; /* guest path of the root file system; NULL: root.path, absolute */
    const char *netns_id;  /* a uvm_add_netns id: the network namespace; NULL: as the spec says */
};

/* A bind mount whose source is a host path. */
struct ocispec_bind {
    size_t index;       /* in "mounts" */
    const char *source; /* absolute host path (borrowed from the spec) */
    bool read_only;     /* "ro" among its options */
};

/* Translate spec (an object, changed in place). On success *binds (caller frees; NULL when
 * none) lists the host bind mounts and *terminal says whether process.terminal is true.
 * UVM_E_INVALID_ARGUMENT with a message naming the field otherwise (spec then partly
 * changed). */
int ocispec_translate(json_t *spec, const struct ocispec_opts *o, struct ocispec_bind **binds,
                      size_t *nbinds, bool *terminal);

/* The same for a process object (an exec): LSM labels dropped, args and terminal checked. */
int ocispec_translate_process(json_t *process, const char *what, bool *terminal);

/* Replace mounts[index].source (index from ocispec_translate). */
void ocispec_set_mount_source(json_t *spec, size_t index, const char *source);

/* An absolute guest path without empty, "." or ".." components, not "/", at most 4095 bytes. */
bool ocispec_guest_path_valid(const char *path);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The QEMU jail: what a guest that escapes into QEMU finds.
 *
 * QEMU starts in new mount, PID, network, IPC and UTS namespaces (spawn's clone_flags) and the
 * spawn hook jail_enter() then, before exec:
 *   - builds a root on a small tmpfs holding read-only, nosuid binds of /usr (and the /bin, /lib*
 *     links or directories), /etc/ld.so.cache, the boot files QEMU reads at start, a fresh /proc
 *     (QEMU is PID 1 of its PID namespace: it sees no host process), a /dev with only null, zero,
 *     full, random, urandom (and kvm when used), the runtime directory read-only and
 *     `<rundir>/9p` as a read-only *slave* (share binds the library makes below it in the host
 *     namespace propagate in; the guest cannot write the export root);
 *   - pivot_root()s into it and detaches the host tree: no host path, socket or device is
 *     reachable by name; hot-added images and taps arrive as fds over QMP;
 *   - drops every capability (bounding, ambient, inheritable, permitted, effective), locks the
 *     securebits so that uid 0 regains none at exec, and sets no_new_privs;
 *   - loads fsfilter.h's seccomp filter: QEMU (the 9p server) cannot make a set-id file or a
 *     device node, whatever the guest asks.
 * QEMU's own `-sandbox` seccomp filter (argv.c) is installed on top by QEMU.
 *
 * jail_prepare() runs in the library (it allocates and formats everything); jail_enter() runs
 * in the forked child and only issues system calls on that precomputed data.
 */
#ifndef UVM_LIB_JAIL_H
#define UVM_LIB_JAIL_H

#include <stdbool.h>
#include <stdint.h>

struct jail;

/* The namespaces the jailed child must be created in (spawn_opts.clone_flags). */
uint64_t jail_clone_flags(void);

/* Plan a jail whose root is built on the (existing, empty) directory `mountpoint`: `rundir`
 * (canonical) is exposed read-only with `<rundir>/9p` as a read-only slave, `files` (NULL
 * terminated, absolute, may be NULL) read-only at the same paths, /dev/kvm when `kvm`, and
 * `writable_dir` (NULL: none; inside rundir) writable but nosuid, nodev, noexec. Returns
 * NULL with the message set when a file cannot be exposed. */
struct jail *jail_prepare(const char *mountpoint, const char *rundir, const char *const *files,
                          bool kvm, const char *writable_dir);
/* The spawn hook: arg is the struct jail. Returns 0, or -(step << 12 | errno). */
int jail_enter(void *arg);
/* spawn_opts.hook_explain: "<step>: <strerror>" for a jail_enter() failure (owned). */
char *jail_explain(void *arg, int code);
void jail_free(struct jail *j);

/* 1 when this kernel and our privileges can build the jail (root with CAP_SYS_ADMIN), else 0;
 * $UVM_JAIL=0 turns it off for debugging (logged at warning on every start). */
bool jail_supported(void);

#endif

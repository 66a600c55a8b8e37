/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What uvm-runtime takes from a bundle's config.json and its environment (pure: no I/O).
 *
 *   root.path            the container's root file system on the host: relative to the bundle
 *                        (containerd's "rootfs") or absolute (ctr run --rootfs DIR); shared
 *                        into the VM with virtio-fs, read-only when root.readonly
 *   process.terminal     true needs --console-socket (and is not supported yet)
 *   process.env          PATH=RT_DEFAULT_PATH added when it has no PATH: runc resolves args[0]
 *                        with its own (the host's) PATH then, crun in the guest with none
 *   annotations          io.libuvm.boot-files (absolute folder), io.libuvm.memory-mb (64..1048576),
 *                        io.libuvm.cpus (1..128); they override the environment:
 *   environment          UVM_BOOT_FILES_PATH, UVM_RUNTIME_MEMORY_MB, UVM_RUNTIME_CPUS
 *   defaults             the library's boot files, 512 MiB, 1 CPU
 *
 * The spec itself goes to uvm_create_container, which translates it for the guest (hooks,
 * cgroupsPath, host devices and namespace paths dropped; ocispec.h).
 */
#ifndef UVM_RUNTIME_RTCONFIG_H
#define UVM_RUNTIME_RTCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_CONFIG_MAX (4u << 20) /* config.json and --process files: 4 MiB at most */
#define RT_DEFAULT_MEMORY_MB 512u
#define RT_DEFAULT_CPUS 1u
#define RT_ANN_BOOT_FILES "io.libuvm.boot-files"
#define RT_ANN_MEMORY "io.libuvm.memory-mb"
#define RT_ANN_CPUS "io.libuvm.cpus"
#define RT_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct rt_env {
    const char *boot_files; /* $UVM_BOOT_FILES_PATH */
    const char *memory_mb;  /* $UVM_RUNTIME_MEMORY_MB */
    const char *cpus;       /* $UVM_RUNTIME_CPUS */
};

struct rt_config {
    char *spec;   /* the spec for uvm_create_container (JSON text) */
    char *rootfs; /* absolute host path */
    bool rootfs_ro;
    bool terminal;
    char *boot_files; /* NULL: the library's default */
    uint32_t memory_mb;
    uint32_t cpus;
};

/* Parse spec_text (config.json) of the bundle at the absolute path bundle. 0, or -1 with a
 * message naming the field in err. */
int rtconfig_parse(const char *spec_text, const char *bundle, const struct rt_env *env,
                   struct rt_config *out, char *err, size_t errlen);
void rtconfig_free(struct rt_config *c);

/* A process object (exec's --process file): its "terminal", and its text for
 * uvm_container_exec in *out (caller frees; PATH added as above). 0, or -1 with a message. */
int rtconfig_process(const char *text, bool *terminal, char **out, char *err, size_t errlen);

/* The VM's id for container id under root: the id's first 40 characters (those outside
 * [A-Za-z0-9_.-] as '_', a leading '.' as '_') + '-' + 16 hex digits of a hash of root and
 * id, so that one id in two roots (containerd namespaces) gives two VMs. out: 64 bytes. */
void rtconfig_vm_id(const char *root, const char *id, char out[64]);

#endif

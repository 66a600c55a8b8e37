/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU command line of a (linux) VM document. */
#ifndef UVM_LIB_ARGV_H
#define UVM_LIB_ARGV_H

#include <jansson.h>
#include <stdbool.h>

#define ARGV_QMP_FD 3   /* listening QMP socket, as numbered in the QEMU process */
#define ARGV_AGENT_FD 4 /* listening agent (virtio-serial) socket */
#define ARGV_CONSOLE_FD                                                                            \
    5 /* connected socket receiving the serial console, or the console_pipe
                           * file opened by the library (then fd set ARGV_CONSOLE_FDSET) */
#define ARGV_CONSOLE_FDSET 1
#define ARGV_RAM_FD 6 /* the guest RAM's file (ram.h): a memfd, or a template's RAM file */
#define ARGV_SPARE_ROOT_PORTS 4
/* Root ports are rp0 (agent), rp1.. (SCSI controllers), then the VHD root's pmem port, then the
 * 9p export's port, then the spare ports for hot-plugged devices: the first spare's number. */
static inline unsigned
argv_first_spare_port(unsigned nscsi, int vhd_root)
{
    return 1 + nscsi + (vhd_root ? 1 : 0) + 1;
}
/* Every pci-bridge for hot-plugged devices holds, in its last slot (ARGV_BRIDGE_WINDOW_SLOT), a
 * placeholder device whose BARs make the guest kernel open the bridge's memory windows at boot
 * (argv.c): its other 31 slots take hot-added devices. VMs that can hot-add VPMem devices also
 * have the pci-bridge ARGV_HOTPLUG_BRIDGE with ARGV_HOTPLUG_BRIDGE_SLOTS more slots for NICs and
 * virtio-fs devices. */
#define ARGV_BRIDGE_WINDOW_SLOT 31u
static inline int
argv_has_hotplug_bridges(unsigned vpmem_count, int vhd_root)
{
    return vpmem_count > (vhd_root ? 1u : 0u);
}
#define ARGV_HOTPLUG_BRIDGE "hpbr0"
#define ARGV_HOTPLUG_BRIDGE_SLOTS ARGV_BRIDGE_WINDOW_SLOT
/* The 9p export (Plan9 shares): this directory of the runtime directory, tag "uvm9p". */
#define ARGV_PLAN9_DIR "9p"
#define ARGV_PLAN9_TAG "uvm9p"
/* The graphics console's VNC socket lives in this directory of the runtime directory: the only
 * place QEMU may write in its jail (jail.h), and only for VMs with a graphics console. */
#define ARGV_VNC_DIR "vnc"
#define ARGV_PMEM_ALIGN (2u << 20) /* pmem backing sizes are multiples of this */
/* Hot-added VPMem devices sit on pci-bridges (ACPI hot-plug), 31 slots each: bridge i is
 * "vpmembr<i>" and the device with hot index h goes to bridge h / 31, slot h % 31. */
#define ARGV_VPMEM_PER_BRIDGE ARGV_BRIDGE_WINDOW_SLOT
#define ARGV_VPMEM_BRIDGE_FMT "vpmembr%u"
/* Guest-physical room reserved for hot-added VPMem images (address space only, no RAM). */
#define ARGV_VPMEM_HOT_SPACE_MB (64u << 10)

struct argv_ctx {
    const char *qemu;   /* argv[0] */
    const char *accel;  /* "kvm" or "tcg" */
    const char *bios;   /* NULL: QEMU's default firmware */
    const char *name;   /* VM id */
    const char *rundir; /* runtime directory (vnc socket) */
    bool clone;         /* started from a template (template.h): the RAM file is mapped
                          * private, QEMU waits for the template's state (-incoming defer) */
};

/* Build a NULL-terminated argv from the document. Values are validated (the document may have
 * been changed by additional JSON): a missing or mistyped field gives UVM_E_INVALID_ARGUMENT
 * naming the field. */
int argv_build(json_t *doc, const struct argv_ctx *ctx, char ***out);
void argv_free(char **argv);
/* The host files QEMU reads at start by path (kernel, initrd, VHD root), NULL terminated; the
 * strings belong to doc. For the jail (jail.h). */
int argv_host_files(json_t *doc, const char *files[4]);
/* One shell-quoted line (owned). */
char *argv_join(const char *const *argv);

/* "kvm" when /dev/kvm is usable on real hardware virtualisation, else "tcg"; $UVM_ACCEL
 * (kvm|tcg) overrides. Cheap: never boots anything. */
const char *argv_detect_accel(void);

#endif

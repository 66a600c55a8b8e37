/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"
#include "cleanup.h"
#include "error.h"

struct argv_buf {
    char **v;
    size_t n, cap;
};

static void __attribute__((format(printf, 2, 3))) add(struct argv_buf *a, const char *fmt, ...)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = xrealloc(a->v, a->cap * sizeof(char *));
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = xstrdup("");
    va_end(ap);
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

void
argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

/* Fetch a field by a dotted path, for error messages naming it. */
static json_t *
field(json_t *doc, const char *path)
{
    cleanup_free char *copy = xstrdup(path);
    json_t *cur = doc;
    for (char *save = NULL, *tok = strtok_r(copy, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save))
        cur = json_is_object(cur) ? json_object_get(cur, tok) : NULL;
    return cur;
}

static int
get_uint(json_t *doc, const char *path, json_int_t min, json_int_t max, json_int_t *out)
{
    json_t *v = field(doc, path);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "document: %s must be an integer between %lld and %lld", path,
                         (long long)min, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

static int
get_string(json_t *doc, const char *path, bool required, const char **out)
{
    json_t *v = field(doc, path);
    if (!v && !required) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v) || strchr(json_string_value(v), '\n'))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "document: %s must be a string", path);
    *out = json_string_value(v);
    return 0;
}

/* QEMU option values use ',' as separator; a literal ',' is written ',,'. */
static char *
qemu_escape(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == ',' ? 2 : 1;
    char *out = xmalloc(n + 1), *o = out;
    for (const char *p = s; *p; p++) {
        *o++ = *p;
        if (*p == ',')
            *o++ = ',';
    }
    *o = '\0';
    return out;
}

/* What argv_build reads from the document, checked. */
struct spec {
    json_int_t mem, cpus;
    const char *kernel, *initrd, *cmdline, *backing, *console_pipe;
    size_t nscsi;
    bool graphics;
    const char *pmem0; /* VPMem device 0 present at boot: the VHD root filesystem */
    uint64_t pmem0_size;
    unsigned vpmem_hot;     /* devices that can be hot-added (all but a VHD boot's device 0) */
    unsigned vpmem_bridges; /* their pci-bridges */
};

static int
decode_strings(json_t *doc, struct spec *sp)
{
    int rc;
    if ((rc = get_uint(doc, "VirtualMachine.ComputeTopology.Memory.SizeInMB", 128, 1 << 22,
                       &sp->mem)) < 0 ||
        (rc = get_uint(doc, "VirtualMachine.ComputeTopology.Processor.Count", 1, 255, &sp->cpus)) <
            0 ||
        (rc = get_string(doc, "VirtualMachine.ComputeTopology.Memory.Backing", false,
                         &sp->backing)) < 0 ||
        (rc = get_string(doc, "VirtualMachine.Chipset.LinuxKernelDirect.KernelFilePath", true,
                         &sp->kernel)) < 0 ||
        (rc = get_string(doc, "VirtualMachine.Chipset.LinuxKernelDirect.InitRdPath", false,
                         &sp->initrd)) < 0 ||
        (rc = get_string(doc, "VirtualMachine.Chipset.LinuxKernelDirect.KernelCmdLine", true,
                         &sp->cmdline)) < 0 ||
        (rc = get_string(doc, "VirtualMachine.Devices.ComPorts.0.NamedPipe", false,
                         &sp->console_pipe)) < 0)
        return rc;
    if (sp->backing && strcmp(sp->backing, "Virtual") && strcmp(sp->backing, "Physical"))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "document: VirtualMachine.ComputeTopology.Memory.Backing '%s' is not "
                         "Virtual or Physical",
                         sp->backing);
    if (strlen(sp->cmdline) > 2047)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "document: the kernel command line is %zu bytes, the limit is 2047",
                         strlen(sp->cmdline));
    return 0;
}

/* The VHD root of a VHD boot: a regular file of a non-zero multiple of 2 MiB. */
static int
decode_pmem0(json_t *doc, struct spec *sp)
{
    int rc = get_string(doc, "VirtualMachine.Devices.VirtualPMem.Devices.0.HostPath", false,
                        &sp->pmem0);
    if (rc < 0 || !sp->pmem0)
        return rc;
    struct stat st;
    if (stat(sp->pmem0, &st) < 0 || !S_ISREG(st.st_mode))
        return uvm_error(UVM_E_NOT_FOUND, "VPMem device 0 image '%s' not found", sp->pmem0);
    sp->pmem0_size = (uint64_t)st.st_size;
    if (sp->pmem0_size == 0 || sp->pmem0_size % ARGV_PMEM_ALIGN)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "VPMem device 0 image '%s' is %llu bytes, not a non-zero multiple of "
                         "2 MiB",
                         sp->pmem0, (unsigned long long)sp->pmem0_size);
    return 0;
}

static int
decode(json_t *doc, struct spec *sp)
{
    int rc = decode_strings(doc, sp);
    if (rc < 0)
        return rc;
    json_t *scsi = field(doc, "VirtualMachine.Devices.Scsi");
    sp->nscsi = json_is_object(scsi) ? json_object_size(scsi) : 0;
    if (sp->nscsi > 4)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "document: %zu SCSI controllers, at most 4",
                         sp->nscsi);
    sp->graphics = field(doc, "VirtualMachine.Devices.VideoMonitor") != NULL;
    json_int_t vpmem_max = 0;
    if (field(doc, "VirtualMachine.Devices.VirtualPMem.MaximumCount") &&
        (rc = get_uint(doc, "VirtualMachine.Devices.VirtualPMem.MaximumCount", 0, 128,
                       &vpmem_max)) < 0)
        return rc;
    if ((rc = decode_pmem0(doc, sp)) < 0)
        return rc;
    sp->vpmem_hot = (unsigned)vpmem_max - (sp->pmem0 && vpmem_max ? 1u : 0u);
    sp->vpmem_bridges = (sp->vpmem_hot + ARGV_VPMEM_PER_BRIDGE - 1) / ARGV_VPMEM_PER_BRIDGE;
    return 0;
}

/* The machine, its memory and CPUs, the sandbox, the kernel. */
static void
add_machine(struct argv_buf *a, const struct argv_ctx *ctx, const struct spec *sp)
{
    add(a, "%s", ctx->qemu);
    add(a, "-name");
    add(a, "guest=%s,debug-threads=on", ctx->name);
    add(a, "-machine");
    add(a, "q35,memory-backend=mem");
    add(a, "-accel");
    add(a, "%s", ctx->accel);
    if (!strcmp(ctx->accel, "kvm")) {
        add(a, "-cpu");
        add(a, "host");
    }
    if (ctx->bios) {
        add(a, "-bios");
        add(a, "%s", ctx->bios);
    }
    add(a, "-m");
    if (sp->pmem0 || sp->vpmem_hot) /* room for the pmem regions (device memory), 1 GiB aligned */
        add(a, "%lldM,slots=1,maxmem=%lluM", (long long)sp->mem,
            (unsigned long long)sp->mem + ((sp->pmem0_size + (1ull << 30) - 1) >> 30 << 10) + 1024 +
                (sp->vpmem_hot ? ARGV_VPMEM_HOT_SPACE_MB : 0));
    else
        add(a, "%lldM", (long long)sp->mem);
    add(a, "-object");
    /* The guest RAM is a file the library hands over (ram.h; QEMU 7.2's memory-backend-file
     * has no fd= and opens mem-path itself). Shared on a memfd: vhost-user devices (virtio-fs)
     * need it, from boot since a share can be added at any time, and a template save copies
     * it. A clone maps its template's RAM file private (copy on write), never preallocated:
     * that would copy every page. */
    if (ctx->clone)
        add(a, "memory-backend-file,id=mem,size=%lldM,mem-path=/proc/self/fd/%d,share=off",
            (long long)sp->mem, ARGV_RAM_FD);
    else
        add(a, "memory-backend-file,id=mem,size=%lldM,mem-path=/proc/self/fd/%d,share=on%s",
            (long long)sp->mem, ARGV_RAM_FD,
            sp->backing && !strcmp(sp->backing, "Physical") ? ",prealloc=on" : "");
    add(a, "-smp");
    add(a, "%lld", (long long)sp->cpus);
}

static void
add_boot(struct argv_buf *a, const struct spec *sp)
{
    add(a, "-nodefaults");
    add(a, "-no-user-config");
    /* QEMU's seccomp filter on top of its jail (jail.h): no obsolete system calls, no setuid,
     * no fork/exec, no scheduler or affinity changes. */
    add(a, "-sandbox");
    add(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    add(a, "-no-reboot");
    add(a, "-display");
    add(a, "none");
    add(a, "-kernel");
    add(a, "%s", sp->kernel);
    if (sp->initrd) {
        add(a, "-initrd");
        add(a, "%s", sp->initrd);
    }
    add(a, "-append");
    add(a, "%s", sp->cmdline);
}

/* A device with nothing to do in the last slot of a hot-plug bridge, for its BARs. A device
 * hot-added behind a bridge is given room only inside the bridge's windows, which are opened
 * at boot and never grow at an ACPI hot-add: qboot opens none, and Linux sizes a conventional
 * bridge's windows from the devices behind it (its hpmemsize extras are for PCIe and
 * SHPC-marked hot-plug bridges only). So each bridge holds a modern-only virtio-rng (the guest
 * kernel has no driver for it) whose 16 KiB 64-bit prefetchable BAR makes Linux open a 1 MiB
 * prefetchable window, room for 31 virtio-pmem or virtio-net BARs; with one MSI-X vector, its
 * 4 KiB MSI-X BAR opens the non-prefetchable window virtio-net and virtio-fs need too. The
 * bridges' *-reserve properties serve SeaBIOS, when qboot is missing. This replaced booting
 * such VMs with SeaBIOS (~0.4 s under TCG; see docs/design.md). */
static void
add_window_holder(struct argv_buf *a, const char *bridge, bool nonpref)
{
    add(a, "-device");
    add(a, "virtio-rng-pci,id=%s-win,bus=%s,addr=%#x,disable-legacy=on,vectors=%d", bridge, bridge,
        ARGV_BRIDGE_WINDOW_SLOT, nonpref ? 1 : 0);
}

/* The buses (topology.h): one PCIe root port per PCI device (the agent's serial controller,
 * each SCSI controller, the VHD root, the 9p export) and the spare ports for hot-plugged
 * devices; the pci-bridges of hot-plugged NICs, shares and VPMem devices. */
static void
add_buses(struct argv_buf *a, const struct spec *sp)
{
    size_t nports = argv_first_spare_port((unsigned)sp->nscsi, sp->pmem0 != NULL) +
                    ARGV_SPARE_ROOT_PORTS;
    for (size_t i = 0; i < nports; i++) {
        add(a, "-device");
        add(a, "pcie-root-port,id=rp%zu,bus=pcie.0,chassis=%zu,slot=%zu", i, i + 1, i + 1);
    }
    if (sp->vpmem_hot) {
        /* Slots for NICs and virtio-fs devices beyond the spare root ports. virtio-net needs a
         * 4 KiB MSI-X BAR besides its 16 KiB prefetchable one. */
        add(a, "-device");
        add(a, "pci-bridge,id=" ARGV_HOTPLUG_BRIDGE ",bus=pcie.0,chassis_nr=63,shpc=off,"
               "io-reserve=0,mem-reserve=2M,pref64-reserve=2M");
        add_window_holder(a, ARGV_HOTPLUG_BRIDGE, true);
    }
    for (unsigned i = 0; i < sp->vpmem_bridges; i++) {
        /* Conventional bridges with ACPI hot-plug (shpc off): 31 slots for the price of one
         * port. Each virtio-pmem needs only a 16 KiB 64-bit prefetchable BAR. */
        char bridge[16];
        snprintf(bridge, sizeof(bridge), ARGV_VPMEM_BRIDGE_FMT, i);
        add(a, "-device");
        add(a,
            "pci-bridge,id=%s,bus=pcie.0,chassis_nr=%u,shpc=off,"
            "io-reserve=0,mem-reserve=0,pref64-reserve=2M",
            bridge, 64 + i);
        add_window_holder(a, bridge, false);
    }
}

/* The agent's channel, the SCSI controllers, the VHD root, the 9p export. */
static void
add_devices(struct argv_buf *a, const struct argv_ctx *ctx, const struct spec *sp)
{
    add(a, "-device");
    add(a, "virtio-serial-pci,id=vser0,bus=rp0,max_ports=32");
    add(a, "-chardev");
    add(a, "socket,id=gcs,fd=%d,server=on,wait=off", ARGV_AGENT_FD);
    add(a, "-device");
    add(a, "virtserialport,id=gcsport,bus=vser0.0,nr=1,chardev=gcs,name=gcs");
    for (size_t i = 0; i < sp->nscsi; i++) {
        add(a, "-device");
        add(a, "virtio-scsi-pci,id=scsi%zu,bus=rp%zu", i, i + 1);
    }
    if (sp->pmem0) {
        cleanup_free char *img = qemu_escape(sp->pmem0);
        add(a, "-object");
        add(a, "memory-backend-file,id=pmem0-mem,mem-path=%s,size=%llu,share=on,readonly=on", img,
            (unsigned long long)sp->pmem0_size);
        add(a, "-device");
        add(a, "virtio-pmem-pci,id=pmem0,memdev=pmem0-mem,bus=rp%zu", 1 + sp->nscsi);
    }
    /* One 9p export for the VM's life on a private staging directory: Plan9 shares are bind
     * mounts into it (QEMU 7.2 cannot add an fsdev at run time). security_model=none: QEMU
     * serves the files as they are (host symlinks stay symlinks: mapped-xattr turns them into
     * ELOOP, which breaks shared trees such as Kubernetes ConfigMaps). What keeps guest root
     * from host privileges is QEMU's jail (jail.h): uid 0 without any capability (chown to
     * another owner and mknod fail; "none" ignores the failed chown of a new file, so guest
     * files are QEMU's) and fsfilter.h's seccomp filter (no set-id modes, no device nodes). */
    cleanup_free char *rd = qemu_escape(ctx->rundir);
    add(a, "-fsdev");
    add(a,
        "local,id=" ARGV_PLAN9_TAG ",path=%s/" ARGV_PLAN9_DIR
        ",security_model=none,multidevs=remap",
        rd);
    add(a, "-device");
    add(a, "virtio-9p-pci,id=plan9,fsdev=" ARGV_PLAN9_TAG ",mount_tag=" ARGV_PLAN9_TAG ",bus=rp%u",
        argv_first_spare_port((unsigned)sp->nscsi, sp->pmem0 != NULL) - 1);
}

/* QMP, the serial console, the graphics console. */
static void
add_channels(struct argv_buf *a, const struct argv_ctx *ctx, const struct spec *sp)
{
    add(a, "-chardev");
    add(a, "socket,id=qmp,fd=%d,server=on,wait=off", ARGV_QMP_FD);
    add(a, "-mon");
    add(a, "chardev=qmp,mode=control");
    /* The console goes to the caller's file when asked (the library opens it, QEMU opens no
     * host path, and passes it as an fd; the document keeps the path); otherwise to us through
     * a socket, into a bounded ring (a guest must not be able to fill the host's disk). */
    add(a, "-chardev");
    if (sp->console_pipe)
        add(a, "file,id=serial0,path=/dev/fdset/%d", ARGV_CONSOLE_FDSET);
    else
        add(a, "socket,id=serial0,fd=%d", ARGV_CONSOLE_FD);
    add(a, "-serial");
    add(a, "chardev:serial0");
    if (sp->console_pipe) {
        add(a, "-add-fd");
        add(a, "fd=%d,set=%d,opaque=console", ARGV_CONSOLE_FD, ARGV_CONSOLE_FDSET);
    }
    if (ctx->clone) {
        add(a, "-incoming");
        add(a, "defer");
    }
    if (sp->graphics) {
        cleanup_free char *rd = qemu_escape(ctx->rundir);
        add(a, "-device");
        add(a, "VGA");
        add(a, "-vnc");
        add(a, "unix:%s/" ARGV_VNC_DIR "/vnc.sock", rd);
    }
}

int
argv_build(json_t *doc, const struct argv_ctx *ctx, char ***out)
{
    struct spec sp = {0};
    int rc = decode(doc, &sp);
    if (rc < 0)
        return rc;
    struct argv_buf a = {0};
    add_machine(&a, ctx, &sp);
    add_boot(&a, &sp);
    add_buses(&a, &sp);
    add_devices(&a, ctx, &sp);
    add_channels(&a, ctx, &sp);
    *out = a.v;
    return 0;
}

static bool
needs_quote(const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,@+%", *s))
            return true;
    return false;
}

char *
argv_join(const char *const *argv)
{
    size_t cap = 256, len = 0;
    char *out = xmalloc(cap);
    out[0] = '\0';
    for (size_t i = 0; argv[i]; i++) {
        const char *s = argv[i];
        size_t need = len + 4 * strlen(s) + 4;
        if (need > cap) {
            cap = need * 2;
            out = xrealloc(out, cap);
        }
        if (i)
            out[len++] = ' ';
        if (!needs_quote(s)) {
            len += (size_t)sprintf(out + len, "%s", s);
            continue;
        }
        out[len++] = '\'';
        for (; *s; s++) {
            if (*s == '\'') {
                memcpy(out + len, "'\\''", 4);
                len += 4;
            } else {
                out[len++] = *s;
            }
        }
        out[len++] = '\'';
        out[len] = '\0';
    }
    return out;
}

static const char *detected;

static void
detect(void)
{
    detected = "tcg";
    /* kvm_pvm (software nested virtualisation) accepts KVM_CREATE_VM but cannot run ordinary
     * guests; real KVM needs vmx or svm. */
    if (access("/sys/module/kvm_pvm", F_OK) == 0)
        return;
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    close(fd);
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5))
            continue;
        if (strstr(line, " vmx") || strstr(line, " svm"))
            detected = "kvm";
        break;
    }
    fclose(f);
}

const char *
argv_detect_accel(void)
{
    const char *env = getenv("UVM_ACCEL");
    if (env && (!strcmp(env, "kvm") || !strcmp(env, "tcg")))
        return env;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, detect);
    return detected;
}

int
argv_host_files(json_t *doc, const char *files[4])
{
    int rc, n = 0;
    const char *kernel = NULL, *initrd = NULL, *pmem0 = NULL;
    if ((rc = get_string(doc, "VirtualMachine.Chipset.LinuxKernelDirect.KernelFilePath", true,
                         &kernel)) < 0 ||
        (rc = get_string(doc, "VirtualMachine.Chipset.LinuxKernelDirect.InitRdPath", false,
                         &initrd)) < 0 ||
        (rc = get_string(doc, "VirtualMachine.Devices.VirtualPMem.Devices.0.HostPath", false,
                         &pmem0)) < 0)
        return rc;
    const char *all[] = {kernel, initrd, pmem0};
    for (size_t i = 0; i < 3; i++)
        if (all[i])
            files[n++] = all[i];
    files[n] = NULL;
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "hostcmd.h"
#include "options.h"
#include "qmpcmd.h"

#ifndef UVM_DEFAULT_BOOT_FILES
#define UVM_DEFAULT_BOOT_FILES "/usr/local/share/libuvm/bootfiles"
#endif

#define SCRATCH_SIZE "20G"

void
config_release(struct uvm_config *c)
{
    free(c->id);
    free(c->owner);
    free(c->additional_json);
    for (size_t i = 0; i < c->layer_folder_count; i++)
        free(c->layer_folders[i]);
    free(c->layer_folders);
    free(c->uvm_folder);
    free(c->scratch_path);
    free(c->boot_files_path);
    free(c->kernel_path);
    free(c->rootfs_file);
    free(c->rootfs_path);
    free(c->vhd_initrd_path);
    free(c->kernel_boot_options);
    free(c->console_pipe);
    memset(c, 0, sizeof(*c));
}

void
options_new_guid(char out[37])
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        /* getrandom on Linux >= 3.17 does not fail for 16 bytes; fall back anyway. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (uint8_t)((uint64_t)ts.tv_nsec >> (i % 8) ^ (uint64_t)getpid() >> (i % 4));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

bool
options_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > UVM_MAX_ID_LEN || id[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool
empty(const char *s)
{
    return !s || !*s;
}

static char *
path_join(const char *dir, const char *file)
{
    size_t n = strlen(dir);
    if (n && dir[n - 1] == '/')
        return xasprintf("%s%s", dir, file);
    return xasprintf("%s/%s", dir, file);
}

static bool
is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool
is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool
has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static char *
default_owner(void)
{
    extern char *program_invocation_short_name;
    return xstrdup(empty(program_invocation_short_name) ? "libuvm" : program_invocation_short_name);
}

static int
mkdir_p(const char *path, mode_t mode)
{
    cleanup_free char *tmp = xstrdup(path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int
resolve_windows(const struct uvm_options *o, struct uvm_config *c)
{
    if (o->layer_folder_count < 2 || !o->layer_folders)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "at least 2 LayerFolders must be supplied");
    if (o->has_vpmem_device_count)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "cannot specify VPMemDeviceCount for Windows utility VMs");
    c->layer_folders = xcalloc(o->layer_folder_count, sizeof(char *));
    for (size_t i = 0; i < o->layer_folder_count; i++) {
        if (empty(o->layer_folders[i]))
            return uvm_error(UVM_E_INVALID_ARGUMENT, "layer folder %zu is empty", i);
        c->layer_folders[i] = xstrdup(o->layer_folders[i]);
        c->layer_folder_count++;
    }
    /* The UVM image folder: the first read-only layer containing a UtilityVM folder. */
    for (size_t i = 0; i + 1 < c->layer_folder_count && !c->uvm_folder; i++) {
        cleanup_free char *p = path_join(c->layer_folders[i], "UtilityVM");
        if (is_dir(p))
            c->uvm_folder = xstrdup(c->layer_folders[i]);
    }
    if (!c->uvm_folder)
        return uvm_error(UVM_E_NOT_FOUND, "failed to locate utility VM folder from layer folders: "
                                          "utility VM folder could not be found in layers");
    const char *scratch = c->layer_folders[c->layer_folder_count - 1];
    int rc = mkdir_p(scratch, 0777);
    if (rc < 0)
        return uvm_error_errno(rc, "failed to create utility VM scratch folder: '%s'", scratch);
    c->scratch_path = path_join(scratch, "sandbox.vhdx");
    if (!is_file(c->scratch_path)) {
        const char *argv[] = {"qemu-img", "create", "-q", "-f", "vhdx", c->scratch_path,
                              SCRATCH_SIZE, NULL};
        rc = hostcmd_run(argv, 60000);
        if (rc < 0)
            return uvm_error_wrap(rc, "failed to create scratch '%s'", c->scratch_path);
    }
    c->scsi_count = 1; /* the scratch is SCSI 0:0; the option is ignored as in hcsshim */
    return 0;
}

static int
resolve_rootfs(const struct uvm_options *o, struct uvm_config *c)
{
    if (empty(o->rootfs_file)) {
        c->rootfs_type = UVM_ROOTFS_INITRD;
        if (o->has_preferred_rootfs_type) {
            if (o->preferred_rootfs_type != UVM_ROOTFS_INITRD &&
                o->preferred_rootfs_type != UVM_ROOTFS_VHD)
                return uvm_error(UVM_E_INVALID_ARGUMENT, "invalid PreferredRootFSType");
            c->rootfs_type = o->preferred_rootfs_type;
        }
        c->rootfs_file = xstrdup(c->rootfs_type == UVM_ROOTFS_VHD ? "rootfs.vhd" : "initrd.img");
        c->rootfs_path = path_join(c->boot_files_path, c->rootfs_file);
        if (!is_file(c->rootfs_path))
            return uvm_error(UVM_E_NOT_FOUND, "%s not found ('%s')",
                             c->rootfs_type == UVM_ROOTFS_VHD ? "rootfs.vhd" : "initrd",
                             c->rootfs_path);
        return 0;
    }
    /* An explicit file: its type comes from its extension. hcsshim v0.7.13 compared the
     * extension without its dot and so rejected every name; we do what it meant. */
    c->rootfs_file = xstrdup(o->rootfs_file);
    c->rootfs_path = path_join(c->boot_files_path, c->rootfs_file);
    if (!is_file(c->rootfs_path))
        return uvm_error(UVM_E_NOT_FOUND, "%s not found under %s", c->rootfs_file,
                         c->boot_files_path);
    const char *ext = strrchr(c->rootfs_file, '.');
    if (ext && (!strcmp(ext, ".vhd") || !strcmp(ext, ".vhdx")))
        c->rootfs_type = UVM_ROOTFS_VHD;
    else if (ext && !strcmp(ext, ".img"))
        c->rootfs_type = UVM_ROOTFS_INITRD;
    else
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "unsupported filename extension for RootFSFile '%s' (want .img, .vhd or "
                         ".vhdx)",
                         c->rootfs_file);
    return 0;
}

static int
resolve_linux(const struct uvm_options *o, struct uvm_config *c)
{
    c->vpmem_count = UVM_DEFAULT_VPMEM;
    if (o->has_vpmem_device_count) {
        if (o->vpmem_device_count < 0 || o->vpmem_device_count > UVM_MAX_VPMEM)
            return uvm_error(UVM_E_INVALID_ARGUMENT, "vpmem device count must between 0 and 128");
        c->vpmem_count = (uint32_t)o->vpmem_device_count;
    }
    c->scsi_count = 1;
    if (o->has_scsi_controller_count) {
        if (o->scsi_controller_count < 0 || o->scsi_controller_count > UVM_MAX_SCSI_CONTROLLERS)
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "SCSI controller count must be between 0 and %d",
                             UVM_MAX_SCSI_CONTROLLERS);
        c->scsi_count = (uint32_t)o->scsi_controller_count;
    }
    const char *boot = o->boot_files_path;
    if (empty(boot))
        boot = getenv("UVM_BOOT_FILES_PATH");
    if (empty(boot))
        boot = UVM_DEFAULT_BOOT_FILES;
    c->boot_files_path = xstrdup(boot);
    c->kernel_path = path_join(boot, empty(o->kernel_file) ? "kernel" : o->kernel_file);
    if (!is_file(c->kernel_path))
        return uvm_error(UVM_E_NOT_FOUND, "kernel '%s' not found", c->kernel_path);
    /* From here on absolute: QEMU and the document must not depend on our working directory. */
    char real[PATH_MAX];
    if (realpath(boot, real)) {
        free(c->boot_files_path);
        free(c->kernel_path);
        c->boot_files_path = xstrdup(real);
        c->kernel_path = path_join(real, empty(o->kernel_file) ? "kernel" : o->kernel_file);
    }
    int rc = resolve_rootfs(o, c);
    if (rc < 0)
        return rc;
    if (c->rootfs_type == UVM_ROOTFS_VHD && c->vpmem_count == 0)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "PreferredRootFSTypeVHD requires at least one VPMem device");
    if (c->rootfs_type == UVM_ROOTFS_VHD) {
        /* Boot files made with Debian's kernel, whose pmem drivers are modules, carry
         * vhd-initrd.img to load them; the tailored kernel has them built in and boots the VHD
         * with no initrd at all. */
        char *initrd = path_join(c->boot_files_path, "vhd-initrd.img");
        if (is_file(initrd))
            c->vhd_initrd_path = initrd;
        else
            free(initrd);
    }
    if (!empty(o->kernel_boot_options)) {
        if (has_control_chars(o->kernel_boot_options) || strstr(o->kernel_boot_options, "--"))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "kernel boot options '%s' contain control characters or '--'",
                             o->kernel_boot_options);
        c->kernel_boot_options = xstrdup(o->kernel_boot_options);
    }
    if (!empty(o->console_pipe)) {
        if (o->console_pipe[0] != '/' || has_control_chars(o->console_pipe))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "console pipe '%s' must be an absolute path", o->console_pipe);
        c->console_pipe = xstrdup(o->console_pipe);
    }
    c->graphics_console = o->enable_graphics_console;
    return 0;
}

/* Each deadline 0 (its default) or 1..UVM_TIMEOUT_MAX_MS. */
static int
resolve_timeouts(const struct uvm_timeouts *t, struct uvm_timeouts *out)
{
    const struct {
        const char *name;
        uint32_t given, def, *out;
    } knobs[] = {
        {"qmp_command_ms", t->qmp_command_ms, QMPC_TIMEOUT_MS, &out->qmp_command_ms},
        {"unplug_ms", t->unplug_ms, QMPC_UNPLUG_TIMEOUT_MS, &out->unplug_ms},
        {"agent_call_ms", t->agent_call_ms, BRIDGE_TIMEOUT_MS, &out->agent_call_ms},
        {"container_ms", t->container_ms, BRIDGE_CONTAINER_TIMEOUT_MS, &out->container_ms},
    };
    for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
        if (knobs[i].given > UVM_TIMEOUT_MAX_MS)
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "timeouts.%s %u ms is out of range (1..%u, or 0 for the default %u)",
                             knobs[i].name, knobs[i].given, UVM_TIMEOUT_MAX_MS, knobs[i].def);
        *knobs[i].out = knobs[i].given ? knobs[i].given : knobs[i].def;
    }
    return 0;
}

static int
resolve(const struct uvm_options *o, struct uvm_config *c)
{
    if (!o)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "no options supplied to create");
    const char *os = empty(o->operating_system) ? "linux" : o->operating_system;
    if (strcmp(os, "linux") && strcmp(os, "windows"))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "unsupported operating system \"%s\"", os);
    c->windows = !strcmp(os, "windows");

    if (empty(o->id)) {
        char guid[37];
        options_new_guid(guid);
        c->id = xstrdup(guid);
    } else {
        if (!options_id_valid(o->id))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "invalid ID '%s': use 1 to %d of [A-Za-z0-9._-], not starting with '.'",
                             o->id, UVM_MAX_ID_LEN);
        c->id = xstrdup(o->id);
    }
    if (!empty(o->owner) && has_control_chars(o->owner))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "owner '%s' contains control characters",
                         o->owner);
    c->owner = empty(o->owner) ? default_owner() : xstrdup(o->owner);

    int rc = c->windows ? resolve_windows(o, c) : resolve_linux(o, c);
    if (rc < 0)
        return rc;

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->memory_mb = o->memory_mb ? o->memory_mb : 1024;
    c->processor_count = o->processor_count ? o->processor_count : (ncpu == 1 ? 1 : 2);
    if (c->memory_mb < UVM_MIN_MEMORY_MB || c->memory_mb > (1ull << 22))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "memory %llu MB is out of range (%d..%llu)",
                         (unsigned long long)c->memory_mb, UVM_MIN_MEMORY_MB, 1ull << 22);
    if (c->processor_count > UVM_MAX_PROCESSORS)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "processor count %u is out of range (1..%d)",
                         c->processor_count, UVM_MAX_PROCESSORS);
    if (o->has_memory_backing_type) {
        if ((unsigned)o->memory_backing_type > UVM_MEMORY_PHYSICAL)
            return uvm_error(UVM_E_INVALID_ARGUMENT, "invalid memory backing type %d",
                             (int)o->memory_backing_type);
        c->has_memory_backing = true;
        c->memory_backing = o->memory_backing_type;
    }
    if (!empty(o->additional_hcs_document_json))
        c->additional_json = xstrdup(o->additional_hcs_document_json);

    c->trust_guest_log_levels = o->trust_guest_log_levels;
    if ((rc = resolve_timeouts(&o->timeouts, &c->timeouts)) < 0)
        return rc;
    c->start_timeout_ms = o->start_timeout_ms;
    if (!c->start_timeout_ms) {
        const char *env = getenv("UVM_START_TIMEOUT_MS");
        char *end = NULL;
        unsigned long v = env ? strtoul(env, &end, 10) : 0;
        c->start_timeout_ms = (env && *env && !*end && v > 0 && v <= UINT32_MAX)
                                  ? (uint32_t)v
                                  : UVM_DEFAULT_START_TIMEOUT_MS;
    }
    return 0;
}

int
options_resolve(const struct uvm_options *opts, struct uvm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    int rc = resolve(opts, cfg);
    if (rc < 0)
        config_release(cfg);
    return rc;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "cleanup.h"
#include "document.h"
#include "error.h"

#define HV_SOCKET_SDDL "D:P(A;;FA;;;SY)(A;;FA;;;BA)"

char *
document_kernel_cmdline(const struct uvm_config *c)
{
    const char *root = c->rootfs_type == UVM_ROOTFS_VHD ? "root=/dev/pmem0 init=/init ro" : NULL;
    cleanup_free char *base = root ? xstrdup(root) : xasprintf("initrd=/%s", c->rootfs_file);
    cleanup_free char *console = NULL;
    if (c->console_pipe || c->graphics_console) {
        console = xasprintf("%s%s", c->console_pipe ? " console=ttyS0,115200" : "",
                            c->graphics_console ? " console=tty" : "");
    } else {
        /* Not debugging: hcsshim adds panic=-1. We also keep a quiet serial console so that a
         * failed boot can be explained from the console (kept in a bounded ring). */
        console = xstrdup(" console=ttyS0,115200 quiet panic=-1");
    }
    return xasprintf("%s%s %s%s%s -- %s", base, console, UVM_FAST_BOOT_OPTIONS,
                     c->kernel_boot_options ? " " : "",
                     c->kernel_boot_options ? c->kernel_boot_options : "", UVM_AGENT_ARGS);
}

static json_t *
memory_section(const struct uvm_config *c)
{
    json_t *m = json_pack("{s:I, s:b}", "SizeInMB", (json_int_t)c->memory_mb, "AllowOvercommit",
                          1);
    if (c->windows)
        json_object_set_new(m, "EnableHotHint", json_true());
    if (c->has_memory_backing) {
        json_object_set_new(
            m, "Backing",
            json_string(c->memory_backing == UVM_MEMORY_PHYSICAL ? "Physical" : "Virtual"));
        if (c->memory_backing == UVM_MEMORY_VIRTUAL_DEFERRED)
            json_object_set_new(m, "EnableDeferredCommit", json_true());
    }
    return m;
}

static json_t *
scsi_section(const struct uvm_config *c)
{
    json_t *scsi = json_object();
    for (uint32_t i = 0; i < c->scsi_count; i++) {
        char key[12];
        snprintf(key, sizeof(key), "%u", i);
        json_object_set_new(scsi, key, json_pack("{s:{}}", "Attachments"));
    }
    if (c->windows) {
        json_t *att = json_object_get(json_object_get(scsi, "0"), "Attachments");
        json_object_set_new(att, "0",
                            json_pack("{s:s, s:s}", "Path", c->scratch_path, "Type", "VirtualDisk"));
    }
    return scsi;
}

static json_t *
linux_devices(const struct uvm_config *c)
{
    json_t *dev = json_object();
    if (c->scsi_count)
        json_object_set_new(dev, "Scsi", scsi_section(c));
    if (c->vpmem_count) {
        json_t *pmem = json_pack("{s:i}", "MaximumCount", (int)c->vpmem_count);
        if (c->rootfs_type == UVM_ROOTFS_VHD)
            json_object_set_new(pmem, "Devices",
                                json_pack("{s:{s:s, s:b, s:s}}", "0", "HostPath", c->rootfs_path,
                                          "ReadOnly", 1, "ImageFormat", "Vhd1"));
        json_object_set_new(dev, "VirtualPMem", pmem);
    }
    json_object_set_new(dev, "Plan9", json_object()); /* shares are added at run time */
    json_object_set_new(dev, "HvSocket",
                        json_pack("{s:{s:s}}", "HvSocketConfig", "DefaultBindSecurityDescriptor",
                                  HV_SOCKET_SDDL));
    if (c->console_pipe)
        json_object_set_new(dev, "ComPorts",
                            json_pack("{s:{s:s}}", "0", "NamedPipe", c->console_pipe));
    if (c->graphics_console) {
        json_object_set_new(dev, "Keyboard", json_object());
        json_object_set_new(dev, "EnhancedModeVideo", json_object());
        json_object_set_new(dev, "VideoMonitor", json_object());
    }
    return dev;
}

static json_t *
windows_devices(const struct uvm_config *c)
{
    cleanup_free char *files = xasprintf("%s/UtilityVM/Files", c->uvm_folder);
    json_t *dev = json_object();
    json_object_set_new(dev, "Scsi", scsi_section(c));
    json_object_set_new(dev, "HvSocket",
                        json_pack("{s:{s:s}}", "HvSocketConfig", "DefaultBindSecurityDescriptor",
                                  HV_SOCKET_SDDL));
    json_object_set_new(
        dev, "VirtualSmb",
        json_pack("{s:I, s:[{s:s, s:s, s:{s:b, s:b, s:b, s:b, s:b}}]}", "DirectFileMappingInMB",
                  (json_int_t)1024, "Shares", "Name", "os", "Path", files, "Options", "ReadOnly",
                  1, "PseudoOplocks", 1, "TakeBackupPrivilege", 1, "CacheIo", 1, "ShareRead", 1));
    return dev;
}

json_t *
document_build(const struct uvm_config *c)
{
    json_t *chipset;
    if (c->windows) {
        chipset = json_pack("{s:{s:{s:s, s:s}}}", "Uefi", "BootThis", "DevicePath",
                            "\\EFI\\Microsoft\\Boot\\bootmgfw.efi", "DeviceType", "VmbFs");
    } else {
        cleanup_free char *cmdline = document_kernel_cmdline(c);
        json_t *direct = json_pack("{s:s, s:s}", "KernelFilePath", c->kernel_path, "KernelCmdLine",
                                   cmdline);
        if (c->rootfs_type == UVM_ROOTFS_INITRD)
            json_object_set_new(direct, "InitRdPath", json_string(c->rootfs_path));
        else if (c->vhd_initrd_path) /* loads the pmem drivers, then switches root */
            json_object_set_new(direct, "InitRdPath", json_string(c->vhd_initrd_path));
        chipset = json_pack("{s:o}", "LinuxKernelDirect", direct);
    }
    json_t *vm = json_pack("{s:o, s:{s:o, s:{s:i}}}", "Chipset", chipset, "ComputeTopology",
                           "Memory", memory_section(c), "Processor", "Count",
                           (int)c->processor_count);
    if (!c->windows)
        json_object_set_new(vm, "GuestConnection",
                            json_pack("{s:b, s:b}", "UseVsock", 1, "UseConnectedSuspend", 1));
    json_object_set_new(vm, "Devices", c->windows ? windows_devices(c) : linux_devices(c));
    return json_pack("{s:s, s:{s:i, s:i}, s:o}", "Owner", c->owner, "SchemaVersion", "Major", 2,
                     "Minor", 1, "VirtualMachine", vm);
}

void
document_merge_values(json_t *dst, json_t *add)
{
    const char *key;
    json_t *val;
    json_object_foreach(add, key, val)
    {
        json_t *cur = json_object_get(dst, key);
        if (cur && json_is_object(cur) && json_is_object(val))
            document_merge_values(cur, val);
        else if (cur && json_is_object(cur) && json_is_null(val))
            continue; /* null over an object keeps the object */
        else
            json_object_set(dst, key, val);
    }
}

int
document_merge(json_t *doc, const char *additional_json)
{
    if (!additional_json || !*additional_json)
        return 0;
    json_error_t err;
    json_t *add = json_loads(additional_json, JSON_REJECT_DUPLICATES, &err);
    if (!add)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "failed to merge additional JSON '%s': %s",
                         additional_json, err.text);
    if (!json_is_object(add)) {
        json_decref(add);
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "failed to merge additional JSON '%s': not a JSON object",
                         additional_json);
    }
    document_merge_values(doc, add);
    json_decref(add);
    return 0;
}

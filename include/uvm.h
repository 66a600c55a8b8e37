/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libuvm: utility VMs for Linux container runtimes.
 *
 * The API of hcsshim's internal/uvm (v0.7.13) in C, on QEMU driven over QMP and a guest agent
 * (the GCS) inside the VM. Every function that can fail returns 0 on success or a negative code:
 * -errno for system errors or a UVM_E_* value (all <= -1000). uvm_last_error() gives the full
 * message of the calling thread's last failure; uvm_strerror() the short text of a code.
 *
 * A struct uvm may be used from many threads at once.
 */
#ifndef LIBUVM_UVM_H
#define LIBUVM_UVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UVM_MAX_VPMEM 128
#define UVM_DEFAULT_VPMEM 64

/* Error codes. The first six are hcsshim's sentinel errors, with its texts. */
enum uvm_error_code {
    UVM_E_NO_AVAILABLE_LOCATION = -1000,      /* "no available location" */
    UVM_E_NOT_ATTACHED = -1001,               /* "not attached" */
    UVM_E_ALREADY_ATTACHED = -1002,           /* "already attached" */
    UVM_E_NO_SCSI_CONTROLLERS = -1003,        /* "no SCSI controllers configured for this utility VM" */
    UVM_E_TOO_MANY_ATTACHMENTS = -1004,       /* "too many SCSI attachments" */
    UVM_E_SCSI_LAYER_WCOW_UNSUPPORTED = -1005, /* "SCSI attached layers are not supported for WCOW" */
    UVM_E_NOT_SUPPORTED = -1006,              /* "not supported" */
    UVM_E_INVALID_ARGUMENT = -1007,           /* an option or argument is invalid */
    UVM_E_INVALID_STATE = -1008,              /* the VM is not in a state that allows the call */
    UVM_E_CLOSED = -1009,                     /* the object was closed */
    UVM_E_TIMEOUT = -1010,                    /* a deadline passed */
    UVM_E_HYPERVISOR = -1011,                 /* QEMU or QMP failed */
    UVM_E_GUEST = -1012,                      /* the guest agent refused or failed a request */
    UVM_E_UNEXPECTED_EXIT = -1013,            /* the VM exited while we were waiting on it */
    UVM_E_NOT_FOUND = -1014,                  /* a file, process or object does not exist */
    UVM_E_PROTOCOL = -1015,                   /* the guest or QEMU sent a malformed message */
    UVM_E_ALREADY_EXISTS = -1016,             /* e.g. a live VM already has this ID */
};

/* Short text of a code (UVM_E_* or -errno). Never NULL. */
const char *uvm_strerror(int code);
/* Full message of the calling thread's last failure, e.g. "kernel '/x/kernel' not found".
 * "" when none. Valid until the next failing libuvm call in this thread. */
const char *uvm_last_error(void);

/* Logging. The library never prints; it hands lines to this handler (process-wide). */
enum uvm_log_level { UVM_LOG_ERROR = 0, UVM_LOG_WARNING, UVM_LOG_INFO, UVM_LOG_DEBUG };
typedef void (*uvm_log_fn)(void *opaque, enum uvm_log_level level, const char *vm_id,
                           const char *message);
/* fn NULL: discard. max_level: lines above it are not even formatted. Guest agent log lines are
 * forwarded with vm_id set and the message prefixed by "guest: ". The handler is called from
 * libuvm's threads (the agent I/O thread, the QEMU watcher) as well as the caller's; it should
 * return quickly and must not call uvm_close or uvm_terminate (guest lines are handed over
 * without any libuvm lock held; some QMP lines still are, so do not call into the same VM). */
void uvm_set_log_handler(uvm_log_fn fn, void *opaque, enum uvm_log_level max_level);

enum uvm_rootfs_type { UVM_ROOTFS_INITRD = 0, UVM_ROOTFS_VHD = 1 };
enum uvm_memory_backing {
    UVM_MEMORY_VIRTUAL = 0,
    UVM_MEMORY_VIRTUAL_DEFERRED = 1,
    UVM_MEMORY_PHYSICAL = 2,
};

/* How long a call waits on QEMU or the guest before it fails with UVM_E_TIMEOUT, per VM, in
 * milliseconds: 0 is the default, else 1..UVM_TIMEOUT_MAX_MS. The message of a call that hit one
 * names it ("... (uvm_options.timeouts.agent_call_ms: 30000 ms)"). A stuck guest or QEMU holds
 * only the calls on its own VM, each round trip for at most its deadline (an add or a remove
 * makes a few); uvm_terminate never waits for the guest and ends the calls waiting on it. The
 * boot has its own (start_timeout_ms); uvm_process_wait waits for as long as the process runs
 * (or the VM does). */
struct uvm_timeouts {
    uint32_t qmp_command_ms; /* 0: 10000. One QMP command (or batch) answered by QEMU */
    uint32_t unplug_ms;      /* 0: 10000. device_del until QEMU's DEVICE_DELETED: the guest
                              * lets the device go (every remove of a hot-plugged device) */
    uint32_t agent_call_ms;  /* 0: 30000. One guest agent request: exec, signal, resize, the
                              * guest part of every add and remove, uvm_modify's GuestRequest */
    uint32_t container_ms;   /* 0: 60000. A container's create, start, signal, delete and
                              * state request (the guest runs crun) */
};
#define UVM_TIMEOUT_MAX_MS 86400000u /* 24 h */

struct uvm_options {              /* zero-initialised == all defaults */
    const char *id;               /* NULL: generated GUID */
    const char *owner;            /* NULL: program name */
    const char *operating_system; /* "linux" or "windows" (NULL: "linux") */
    uint64_t memory_mb;           /* 0: 1024 (Resources.Memory) */
    uint32_t processor_count;     /* 0: 2, or 1 on a 1-CPU host (Resources.CPU.Count) */
    const char *additional_hcs_document_json; /* deep-merged over the VM document */
    const char *const *layer_folders;         /* windows only: RO layers top->base, then scratch */
    size_t layer_folder_count;
    const char *boot_files_path; /* NULL: $UVM_BOOT_FILES_PATH, else the installed default */
    const char *kernel_file;     /* NULL: "kernel" */
    const char *rootfs_file;     /* NULL: "initrd.img" or "rootfs.vhd" */
    bool has_preferred_rootfs_type;
    enum uvm_rootfs_type preferred_rootfs_type;
    const char *kernel_boot_options;
    bool enable_graphics_console;
    const char *console_pipe; /* path: the serial console is written there */
    bool has_vpmem_device_count;
    int32_t vpmem_device_count; /* default 64, 0..128 */
    bool has_scsi_controller_count;
    int scsi_controller_count; /* default 1; 0..4 */
    bool has_memory_backing_type;
    enum uvm_memory_backing memory_backing_type;
    /* libuvm additions */
    uint32_t start_timeout_ms; /* 0: $UVM_START_TIMEOUT_MS, else 120000: uvm_start, from QEMU's
                                * spawn until the guest agent negotiated */
    /* the other deadlines (above) */
    struct uvm_timeouts timeouts;
    bool trust_guest_log_levels; /* false: guest log lines reach the handler at WARNING at
                                  * most (a guest cannot log at ERROR); true: as the guest says */
    /* Start from the template saved in this directory (uvm_save_template): the VM is a clone.
     * It has the template's memory, processors, device counts, boot files, kernel options and
     * additional JSON: leave those options unset (or repeat them; a different value is
     * UVM_E_INVALID_ARGUMENT naming it). Its own: id, owner, console_pipe, start_timeout_ms,
     * trust_guest_log_levels. A template made with other boot files, another QEMU or another
     * QEMU command line is refused with a message saying which. uvm_start then restores the
     * template's state instead of booting, and gives the clone its identity before returning:
     * hostname = VM id, fresh entropy, the host's wall clock (docs/design.md). A clone cannot
     * add VSMB shares (virtio-fs needs shared guest RAM): UVM_E_NOT_SUPPORTED. */
    const char *template_dir;
};

struct uvm;
struct uvm_system;
struct uvm_process;

/* Validate the options, claim the ID (runtime directory), build the VM document and the QEMU
 * command line. Nothing is started. *out is set only on success. */
int uvm_create(const struct uvm_options *opts, struct uvm **out);
/* Boot the VM; returns once the guest agent has negotiated the protocol. On failure
 * (UVM_E_TIMEOUT, UVM_E_UNEXPECTED_EXIT with the end of the guest console in the message, ...)
 * everything started is undone and the VM is back to "created": start may be retried. */
int uvm_start(struct uvm *vm);
/* Block until QEMU exits. Any number of threads may wait. 0 on a clean guest power-off or after
 * uvm_terminate; UVM_E_UNEXPECTED_EXIT when QEMU died otherwise, the guest reset itself (kernel
 * panic, agent death) or a start in progress failed; UVM_E_INVALID_STATE if never started. */
int uvm_wait(struct uvm *vm);
/* Save a running, idle linux VM as a template in `dir` (created, or an existing empty
 * directory; on tmpfs, e.g. /dev/shm, clones start fastest): the guest agent quiesces (syncs,
 * becomes ready for another host), the VM is paused, its device state and its RAM (only the
 * pages the guest wrote) are written to `dir`, and the VM is terminated: clones map its RAM
 * file, it must not run on. Refused (UVM_E_INVALID_STATE, naming it) while anything is attached
 * (SCSI disks, VPMem devices, shares, network namespaces), while processes or containers run,
 * or during another save; UVM_E_NOT_SUPPORTED for a clone. A failure undoes everything: the VM
 * runs on as before and `dir` is left as it was. Templates are not relocatable: a copied RAM
 * file is refused (save again). */
int uvm_save_template(struct uvm *vm, const char *dir);
/* Hard stop: kills QEMU, waits for it, releases the ID. Idempotent. */
int uvm_terminate(struct uvm *vm);
/* Release the runtime directories under $UVM_RUNTIME_DIR (default /run/uvm) whose owning process
 * died: their taps deleted, mounts detached, files removed, as uvm_create does first. Live VMs'
 * directories are left alone. For a runtime cleaning up after a process that owned a VM was
 * killed. Returns how many were released, or a negative code when the base is refused. */
int uvm_sweep_runtime_dirs(void);
/* Terminates if needed, releases everything and frees vm. NULL is fine. Processes of the VM stay
 * valid objects until uvm_process_close: their signal and wait return UVM_E_CLOSED (a wait that
 * already has the exit status still returns it), and the VM's memory is freed with the last of
 * them. Let other threads' calls on vm itself return before closing it. */
void uvm_close(struct uvm *vm);

const char *uvm_id(const struct uvm *vm);
const char *uvm_os(const struct uvm *vm);
/* Per-VM, atomic: 1, 2, 3, ... (for /run/gcs/c/<N> layouts). */
uint64_t uvm_container_counter(struct uvm *vm);
/* The compute system behind the VM (QEMU + QMP + agent bridge); owned by vm. */
struct uvm_system *uvm_compute_system(struct uvm *vm);
/* Apply a ModifySettingRequest: {"ResourcePath","RequestType","Settings","GuestRequest"}. */
int uvm_modify(struct uvm *vm, const char *modify_request_json);

/* The VM document (JSON) and QEMU command line built by uvm_create. Owned by vm. */
const char *uvm_document(const struct uvm *vm);
const char *const *uvm_qemu_argv(const struct uvm *vm);

/* Boot timings of the last uvm_start, in microseconds since uvm_start was entered. A field is 0
 * when not reached. */
struct uvm_timings {
    uint64_t spawn_us;       /* QEMU process created */
    uint64_t qmp_ready_us;   /* QMP greeting read and capabilities negotiated */
    uint64_t guest_init_us;  /* guest agent (PID 1) started, from the guest's uptime */
    uint64_t agent_ready_us; /* protocol negotiated: uvm_start returns */
    uint64_t restore_us;     /* a clone: the template's state loaded and the vCPUs running */
    uint64_t kernel_start_us; /* the guest kernel's clock started (its CLOCK_BOOTTIME zero), from
                               * the guest's uptime at agent ready; 0 for a clone */
};
int uvm_get_timings(struct uvm *vm, struct uvm_timings *t);

struct uvm_process_config {
    const char *const *argv; /* argv[0] is looked up in the guest PATH */
    const char *const *env;  /* "K=V" strings, NULL-terminated; NULL: a sane default */
    const char *working_dir; /* NULL: "/" */
    bool create_stdin, create_stdout, create_stderr;
    const char *network_namespace; /* NULL: the guest's root namespace; else an id added with
                                    * uvm_add_netns (its resolv.conf is the process's) */
    /* A terminal (hcsshim's EmulateConsole): the process runs on a new pseudo-terminal in the
     * guest, its controlling terminal and its stdin, stdout and stderr (stderr is not apart),
     * of terminal_rows x terminal_cols (0: unset). The host end is one bidirectional stream
     * socket, uvm_process_terminal's; create_stdin/stdout/stderr must then be false. */
    bool terminal;
    uint16_t terminal_rows, terminal_cols; /* only with terminal */
};
/* Start a process in the guest. */
int uvm_exec(struct uvm *vm, const struct uvm_process_config *cfg, struct uvm_process **out);
/* Hand the host ends of the stdio pipes to the caller, who owns and must close them (close
 * in_fd to send end-of-file). -1 where not created (all three for a process with a terminal).
 * A second call gives -1 for all. */
int uvm_process_stdio(struct uvm_process *p, int *in_fd, int *out_fd, int *err_fd);
/* Hand the host end of the process's terminal to the caller, who owns and must close it: a
 * connected stream socket (blocking). What is written to it is typed on the terminal (0x03 is
 * Ctrl-C: the terminal sends SIGINT), what the process writes to stdout and stderr is read from
 * it, then end-of-file once every guest process holding the terminal has closed it. A shutdown
 * of its write side is not passed on (send the terminal's end-of-file character, 0x04, instead);
 * closing it discards the rest of the output. *fd = -1 on a second call.
 * UVM_E_INVALID_ARGUMENT when the process has no terminal. */
int uvm_process_terminal(struct uvm_process *p, int *fd);
/* Set the window size of the process's terminal (hcsshim's ResizeConsole; in the guest the
 * terminal's foreground process group gets SIGWINCH). rows and cols are at most 65535.
 * UVM_E_INVALID_ARGUMENT when the process has no terminal or a size is out of range,
 * UVM_E_INVALID_STATE once the process has exited, UVM_E_CLOSED after uvm_close of its VM,
 * UVM_E_GUEST when the guest refuses (e.g. the process exited meanwhile). */
int uvm_process_resize(struct uvm_process *p, unsigned rows, unsigned cols);
int uvm_process_signal(struct uvm_process *p, int signal);
/* Block until the process has exited and its output has been delivered. exit_code is the exit
 * status, or 128 + signal number for a process killed by a signal. */
int uvm_process_wait(struct uvm_process *p, int *exit_code);
/* Pid of the process inside the guest. After uvm_close of its VM, signal and wait return
 * UVM_E_CLOSED; uvm_process_close is still needed and safe. */
int uvm_process_pid(const struct uvm_process *p);
void uvm_process_close(struct uvm_process *p);

/* SCSI (hcsshim AddSCSI / AddSCSILayer / RemoveSCSI). Disks are raw, qcow2, VHD or VHDX,
 * detected from their content. controller/lun (may be NULL) are set, or -1 on error. */
/* A read-write disk at the first free (controller, LUN); mounted in the guest at uvm_path before
 * returning (NULL: only attached). UVM_E_ALREADY_ATTACHED when the path is attached. */
int uvm_add_scsi(struct uvm *vm, const char *host_path, const char *uvm_path, int *controller,
                 int32_t *lun);
/* A read-only layer, mounted read-only at /tmp/S<controller>/<lun>; ref-counted per host path. */
int uvm_add_scsi_layer(struct uvm *vm, const char *host_path, int *controller, int32_t *lun);
/* Drop a reference; the last one unmounts, ejects in the guest and unplugs. */
int uvm_remove_scsi(struct uvm *vm, const char *host_path);

/* VPMem (hcsshim AddVPMEM / RemoveVPMEM): a read-only image (ext4 with 4 KiB blocks, or erofs;
 * a raw file or a fixed VHD) mapped into the guest with virtio-pmem at the first free device
 * number; with expose, mounted read-only (DAX) at /tmp/p<n> before returning. Ref-counted per
 * host path: re-adding returns the stored number and path. On success *location is the device
 * number and *uvm_path (may be NULL; caller frees) "/tmp/p<n>" or "" when not exposed.
 * UVM_E_NO_AVAILABLE_LOCATION when all vpmem_device_count numbers are taken. */
int uvm_add_vpmem(struct uvm *vm, const char *host_path, bool expose, uint32_t *location,
                  char **uvm_path);
/* Drop a reference; the last one unmounts it in the guest. QEMU 7.2 cannot unplug virtio-pmem:
 * the device stays plugged, kept for this image (re-adding it needs no hot-plug), and its number
 * is not given to another image. UVM_E_NOT_ATTACHED for an unknown path. */
int uvm_remove_vpmem(struct uvm *vm, const char *host_path);

/* Plan9 shares (hcsshim AddPlan9 / RemovePlan9): host directory host_path (resolved once; it
 * must be a directory) appears at uvm_path in the guest before the call returns, read-only
 * enforced by the host when asked. Ref-counted per host path (a re-add with another uvm_path or
 * read_only only takes a reference, as hcsshim). UVM_E_NOT_ATTACHED on removing an unknown
 * path. Needs CAP_SYS_ADMIN (host bind mounts into the VM's private 9p export). */
int uvm_add_plan9(struct uvm *vm, const char *host_path, const char *uvm_path, bool read_only);
int uvm_remove_plan9(struct uvm *vm, const char *host_path);

/* VSMB shares (hcsshim AddVSMB / RemoveVSMB / GetVSMBUvmPath). hcsshim's share options; on a
 * linux VM a share is virtio-fs (one virtiofsd per share), mounted at /run/vsmb/<name>, and the
 * options map to virtiofsd and mount options (docs/design.md). */
struct uvm_vsmb_options {
    bool read_only, share_read, cache_io, no_oplocks, take_backup_privilege, no_directmap,
        no_locks, pseudo_oplocks, non_cache_io, single_file_mapping;
    bool use_share_root_identity, pseudo_dirnotify, restrict_file_access, force_level_ii_oplocks,
        reparse_base_layer, support_cloud_files;
};
/* guest_request_json (may be NULL) is stored with the share, never sent (hcsshim). options NULL:
 * all false. Ref-counted per host path. */
int uvm_add_vsmb(struct uvm *vm, const char *host_path, const char *guest_request_json,
                 const struct uvm_vsmb_options *options);
int uvm_remove_vsmb(struct uvm *vm, const char *host_path);
/* The guest path of a share (caller frees): \\?\VMSMB\VSMB-{dcc079ae-...}\<name> on windows,
 * /run/vsmb/<name> on linux. */
int uvm_get_vsmb_uvm_path(struct uvm *vm, const char *host_path, char **uvm_path);

/* Network namespaces (hcsshim AddNetNS / RemoveNetNS) with virtio-net NICs. */
struct uvm_endpoint {            /* stands in for hns.HNSEndpoint */
    const char *id;              /* endpoint id (GUID string) */
    const char *name;
    const char *mac_address;     /* "52:54:00:xx:xx:xx"; NULL: generated */
    const char *ip_address;      /* IPv4 or IPv6, NULL: none */
    uint8_t prefix_length;
    const char *gateway_address; /* NULL: no default route */
    const char *dns_servers;     /* comma separated, NULL: none */
    const char *host_ifname;     /* an existing host tap device, or NULL: the library creates one */
    const char *host_netns;      /* named host network namespace (ip netns) for a created tap,
                                  * NULL: the caller's */
};
/* A new id: the guest creates network namespace `id`; for each endpoint a NIC (tap backend) is
 * hot-added with the endpoint's MAC and, in the guest, moved into the namespace as eth0, eth1,
 * ..., addressed, brought up, given the default route; resolv.conf is written for processes of
 * the namespace. All done when the call returns; a failure undoes everything it made. A known
 * id only takes a reference (endpoints ignored). Bad input gives UVM_E_INVALID_ARGUMENT before
 * anything is touched. */
int uvm_add_netns(struct uvm *vm, const char *id, const struct uvm_endpoint *endpoints,
                  size_t count);
/* Drop a reference; the last one removes the NICs (guest first, then host), the namespace and
 * the taps the library created. UVM_E_NOT_FOUND for an unknown id. */
int uvm_remove_netns(struct uvm *vm, const char *id);

/* OCI containers in the guest (hcsshim's later internal/uvm CreateContainer and cow.Container;
 * docs/containers.md). The agent runs them with crun, which is in rootfs.vhd only: boot the VM
 * with preferred_rootfs_type = UVM_ROOTFS_VHD. */
struct uvm_container;
struct uvm_container_config {
    const char *id;        /* [A-Za-z0-9._-]{1,64}, not starting with '.'; NULL: the next
                            * uvm_container_counter value ("1", "2", ...). The bundle is
                            * /run/gcs/c/<id>, the cgroup /sys/fs/cgroup/c/<id> */
    const char *spec_json; /* the OCI runtime spec (config.json); translated for the guest:
                            * hooks, cgroupsPath, AppArmor/SELinux labels, host devices and
                            * namespace paths dropped; bind mounts of host directories shared
                            * into the VM (virtio-fs) with their sources rewritten */
    const char *root_path; /* guest path of the root file system (a share, a CombinedLayers
                            * root, a layer); NULL: the spec's root.path, absolute */
    const char *network_namespace; /* a uvm_add_netns id: the container's network namespace;
                                    * NULL: as the spec says (a "network" entry: a new, empty one) */
    bool create_stdin, create_stdout, create_stderr; /* the init's pipes; with the spec's
                                                      * process.terminal a terminal instead
                                                      * (uvm_process_terminal, its size from
                                                      * process.consoleSize) */
};
/* Create the container (`crun create`): its init exists, stopped before exec. A failure
 * undoes what was done (shares added); crun's own error text is in the message, e.g.
 * "... crun create: executable file `nosuch` not found in $PATH: No such file or directory". */
int uvm_create_container(struct uvm *vm, const struct uvm_container_config *cfg,
                         struct uvm_container **out);
const char *uvm_container_id(const struct uvm_container *c);
/* Start the init (what `crun start` does). init (may be NULL): a new reference to the init process, for
 * its stdio (uvm_process_stdio), signal and wait; close it with uvm_process_close. */
int uvm_container_start(struct uvm_container *c, struct uvm_process **init);
struct uvm_container_process_config {
    const char *process_json; /* an OCI process object (config.json's "process" shape); with
                               * "terminal": true the process is on a terminal */
    bool create_stdin, create_stdout, create_stderr; /* pipes, without a terminal */
};
/* Run another process in the container's namespaces and cgroup (`crun exec --detach`;
 * hcsshim: CreateProcess). A process like uvm_exec's: uvm_process_* apply. */
int uvm_container_exec(struct uvm_container *c, const struct uvm_container_process_config *cfg,
                       struct uvm_process **out);
/* Signal the init; without a PID namespace of its own, every process of the container
 * (`crun kill --all`). */
int uvm_container_signal(struct uvm_container *c, int signal);
/* Wait for the init to exit: its status, or 128 + signal. */
int uvm_container_wait(struct uvm_container *c, int *exit_code);
/* Delete the container in the guest (`crun delete --force`: kills what still runs, removes its
 * cgroup, mounts and bundle), then the shares its create added (hcsshim: DeleteContainerState).
 * A share whose remove fails (the guest did not let go in time) is kept and the call fails
 * naming it; calling delete again (or close) removes what is left. Processes stay valid
 * objects (their stdio drained, their waits answered). */
int uvm_container_delete(struct uvm_container *c);
/* Delete if not deleted yet (errors ignored) and free. NULL is fine. */
void uvm_container_close(struct uvm_container *c);
struct uvm_container_info {
    char id[65];
    char state[16]; /* "created", "running", "stopped", ... (the agent's) */
    int init_pid;   /* 0 while being created */
};
/* The containers the guest agent has (caller frees *list). */
int uvm_list_containers(struct uvm *vm, struct uvm_container_info **list, size_t *count);

struct uvm_guest_connection_info {
    uint32_t protocol_version;
    bool namespace_add_request_supported, signal_process_supported;
};
int uvm_system_guest_connection(struct uvm_system *sys, struct uvm_guest_connection_info *info);

#ifdef __cplusplus
}
#endif
#endif

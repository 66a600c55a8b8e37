/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uvm_modify: hcsshim's ModifySettingRequest {ResourcePath, RequestType, Settings, GuestRequest}
 * (v0.7.13 field names). A ResourcePath is matched against `handlers` (pattern -> handler, the
 * kvmtool way); the handler decodes Settings and calls the same internal entry point as the
 * typed call (scsi_add, vpmem_add, plan9_add, vsmb_add, netns_nic_add and their removes), which
 * keeps the bookkeeping and applies hcsshim's order: Add = host, then the GuestRequest, the host
 * part undone when the guest fails; Remove = the GuestRequest, then the host. Without a
 * ResourcePath the GuestRequest goes straight to the agent. Everything is decoded before
 * anything is touched; a malformed request fails UVM_E_INVALID_ARGUMENT naming the field, an
 * unknown ResourcePath or setting value UVM_E_NOT_SUPPORTED.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "cleanup.h"
#include "error.h"
#include "modify.h"
#include "proto.h"
#include "share.h"
#include "timeutil.h"
#include "uvm-internal.h"

#define MAX_PATH_NUMBERS 2

/* One decoded request, as the handlers see it. */
struct modify_req {
    const char *id;       /* the VM's, for messages */
    const char *path;     /* ResourcePath */
    bool add;             /* RequestType Add (else Remove) */
    json_t *settings;     /* borrowed; NULL when absent */
    struct guest_part guest;
    unsigned long long num[MAX_PATH_NUMBERS]; /* the path's {n} segments */
    const char *name;     /* the path's {id} segment (points into path_copy) */
    char path_copy[256];
};

struct modify_handler {
    const char *pattern;                     /* '/'-separated; {n}: a number, {id}: a name */
    const char *fields[MAX_PATH_NUMBERS + 1]; /* the placeholders' names, for messages */
    int (*apply)(struct uvm *vm, struct modify_req *r);
};

static int scsi_apply(struct uvm *vm, struct modify_req *r);
static int vpmem_apply(struct uvm *vm, struct modify_req *r);
static int plan9_apply(struct uvm *vm, struct modify_req *r);
static int vsmb_apply(struct uvm *vm, struct modify_req *r);
static int nic_apply(struct uvm *vm, struct modify_req *r);

static const struct modify_handler handlers[] = {
    {"VirtualMachine/Devices/Scsi/{n}/Attachments/{n}", {"controller", "LUN"}, scsi_apply},
    {"VirtualMachine/Devices/VirtualPMem/Devices/{n}", {"device number"}, vpmem_apply},
    {"VirtualMachine/Devices/Plan9/Shares", {NULL}, plan9_apply},
    {"VirtualMachine/Devices/VirtualSmb/Shares", {NULL}, vsmb_apply},
    {"VirtualMachine/Devices/NetworkAdapters/{id}", {"adapter id"}, nic_apply},
};

/* --- decoding (pure) -------------------------------------------------------------------------- */

/* Match path against pattern segment by segment: literal segments exactly, {n} and {id} any
 * non-empty segment; *segs gets the placeholder segments (pointers into buf, a copy of path). */
static bool
path_match(const char *pattern, const char *path, char *buf, size_t size, const char **segs,
           bool *is_id)
{
    if (strlen(path) >= size)
        return false;
    strcpy(buf, path);
    const char *p = pattern;
    char *s = buf;
    unsigned k = 0;
    for (;;) {
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (slen == 0)
            return false;
        bool hole = (plen == 3 && !strncmp(p, "{n}", 3)) || (plen == 4 && !strncmp(p, "{id}", 4));
        if (hole) {
            is_id[k] = plen == 4;
            segs[k++] = s;
        }
        else if (plen != slen || strncmp(p, s, plen))
            return false;
        bool p_end = p[plen] == '\0', s_end = s[slen] == '\0';
        if (p_end || s_end)
            return p_end && s_end;
        s[slen] = '\0'; /* terminates the placeholder copied out above (or a literal) */
        p += plen + 1;
        s += slen + 1;
    }
}

/* A decimal number segment: digits only, at most 9 of them. */
static bool
parse_number(const char *s, unsigned long long *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    *out = strtoull(s, NULL, 10);
    return true;
}

/* Find the handler of r->path and fill r->num / r->name. NULL with the error set. */
static const struct modify_handler *
route(struct modify_req *r, int *rc)
{
    for (size_t i = 0; i < ARRAY_SIZE(handlers); i++) {
        const struct modify_handler *h = &handlers[i];
        const char *segs[MAX_PATH_NUMBERS + 1] = {0};
        bool is_id[MAX_PATH_NUMBERS + 1] = {0};
        if (!path_match(h->pattern, r->path, r->path_copy, sizeof(r->path_copy), segs, is_id))
            continue;
        unsigned k = 0;
        for (unsigned j = 0; segs[j]; j++) {
            if (is_id[j]) {
                r->name = segs[j];
                continue;
            }
            if (!parse_number(segs[j], &r->num[k++])) {
                *rc = uvm_error(UVM_E_INVALID_ARGUMENT,
                                "modify '%s': ResourcePath '%s': the %s '%s' is not a number",
                                r->id, r->path, h->fields[j], segs[j]);
                return NULL;
            }
        }
        return h;
    }
    *rc = uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s': ResourcePath '%s' is not supported",
                    r->id, r->path);
    return NULL;
}

/* Settings.<key>: absent -> required ? error : 0 with *out untouched. */
static int
get_string(const struct modify_req *r, const char *key, bool required, const char **out)
{
    json_t *v = r->settings ? json_object_get(r->settings, key) : NULL;
    if (!v && !required)
        return 0;
    if (!v)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.%s is missing", r->id,
                         r->path, key);
    if (!json_is_string(v))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.%s must be a string",
                         r->id, r->path, key);
    *out = json_string_value(v);
    return 0;
}

static int
get_bool(const struct modify_req *r, const char *key, bool *out)
{
    json_t *v = r->settings ? json_object_get(r->settings, key) : NULL;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.%s must be a boolean",
                         r->id, r->path, key);
    *out = json_is_true(v);
    return 0;
}

static int
get_uint(const struct modify_req *r, const char *key, bool required, json_int_t min,
         json_int_t max, uint64_t *out)
{
    json_t *v = r->settings ? json_object_get(r->settings, key) : NULL;
    if (!v && !required)
        return 0;
    if (!v)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.%s is missing", r->id,
                         r->path, key);
    if (!json_is_integer(v))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.%s must be an integer",
                         r->id, r->path, key);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s' %s: Settings.%s %lld is out of range (%lld..%lld)", r->id,
                         r->path, key, (long long)n, (long long)min, (long long)max);
    *out = (uint64_t)n;
    return 0;
}

/* An Add needs Settings. */
static int
need_settings(const struct modify_req *r)
{
    if (r->settings)
        return 0;
    return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings is missing", r->id,
                     r->path);
}

/* GuestRequest.Settings.<key> when the GuestRequest is of resource type `type`, else NULL. */
static const char *
guest_setting(const struct modify_req *r, const char *type, const char *key)
{
    json_t *g = r->guest.request;
    if (!g || strcmp(json_string_value(json_object_get(g, "ResourceType")), type))
        return NULL;
    return json_string_value(json_object_get(json_object_get(g, "Settings"), key));
}

/* Wrap a resource kind's error with the request it came from (its message names the value). */
static int
wrap(const struct modify_req *r, int rc)
{
    return rc < 0 ? uvm_error_wrap(rc, "modify '%s' %s %s", r->id, r->add ? "Add" : "Remove",
                                   r->path)
                  : 0;
}

/* --- the resource kinds ----------------------------------------------------------------------- */

static int
scsi_apply(struct uvm *vm, struct modify_req *r)
{
    if (r->num[0] >= UVM_MAX_SCSI_CONTROLLERS || r->num[1] >= UVM_SCSI_LUNS)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': ResourcePath '%s': controller must be below %u and LUN "
                         "below %u",
                         r->id, r->path, UVM_MAX_SCSI_CONTROLLERS, UVM_SCSI_LUNS);
    if (!r->add)
        return wrap(r, scsi_remove(vm, NULL, (int)r->num[0], (int)r->num[1], &r->guest));
    const char *path = NULL, *type = "VirtualDisk";
    bool ro = false;
    int rc = need_settings(r);
    if (rc == 0)
        rc = get_string(r, "Path", true, &path);
    if (rc == 0)
        rc = get_string(r, "Type", false, &type);
    if (rc == 0)
        rc = get_bool(r, "ReadOnly", &ro);
    if (rc < 0)
        return rc;
    if (strcmp(type, "VirtualDisk"))
        return uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s' %s: Settings.Type '%s' is not "
                         "supported (only VirtualDisk)",
                         r->id, r->path, type);
    /* A read-only attachment is a layer: shared by reference with uvm_add_scsi_layer. */
    struct scsi_add_args a = {.host_path = path, .layer = ro, .read_only = ro,
                              .controller = (int)r->num[0], .lun = (int)r->num[1],
                              .uvm_path = guest_setting(r, "MappedVirtualDisk", "MountPath"),
                              .guest = &r->guest};
    return wrap(r, scsi_add(vm, &a, NULL, NULL));
}

static int
vpmem_apply(struct uvm *vm, struct modify_req *r)
{
    if (r->num[0] >= UVM_MAX_VPMEM)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': ResourcePath '%s': device number must be below %u", r->id,
                         r->path, UVM_MAX_VPMEM);
    if (!r->add)
        return wrap(r, vpmem_remove(vm, NULL, (int)r->num[0], &r->guest));
    const char *path = NULL, *format = NULL;
    bool ro = true;
    int rc = need_settings(r);
    if (rc == 0)
        rc = get_string(r, "HostPath", true, &path);
    if (rc == 0)
        rc = get_bool(r, "ReadOnly", &ro);
    if (rc == 0) /* the format is detected from the content (raw or fixed VHD) */
        rc = get_string(r, "ImageFormat", false, &format);
    if (rc < 0)
        return rc;
    if (!ro)
        return uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s' %s: Settings.ReadOnly false is not "
                         "supported (VPMem devices are read-only)",
                         r->id, r->path);
    /* Without a GuestRequest the typed VPMemDevice Add is sent anyway, without a mount path:
     * the guest numbers pmem devices by arrival, and this claims the device for its number. */
    struct vpmem_add_args a = {.host_path = path, .number = (int)r->num[0],
                               .uvm_path = guest_setting(r, "VPMemDevice", "MountPath"),
                               .guest = r->guest.request ? &r->guest : NULL};
    return wrap(r, vpmem_add(vm, &a, NULL, NULL));
}

/* hcsshim's Plan9ShareFlags. */
#define PLAN9_FLAG_READ_ONLY 0x1u
#define PLAN9_FLAGS_KNOWN (0x1u | 0x4u | 0x8u) /* ReadOnly, LinuxMetadata, CaseSensitive */

/* Our guest finds a Plan9 share by name, s<port>: a MappedDirectory GuestRequest without a
 * ShareName gets it (a copy; the caller's JSON is not changed). */
static json_t *
plan9_guest(const struct modify_req *r, uint64_t port)
{
    json_t *g = r->guest.request;
    if (!g || strcmp(json_string_value(json_object_get(g, "ResourceType")), "MappedDirectory"))
        return NULL;
    json_t *settings = json_object_get(g, "Settings");
    if (!json_is_object(settings) || json_object_get(settings, "ShareName"))
        return NULL;
    json_t *copy = json_deep_copy(g);
    char name[24];
    snprintf(name, sizeof(name), "s%llu", (unsigned long long)port);
    json_object_set_new(json_object_get(copy, "Settings"), "ShareName", json_string(name));
    return copy;
}

static int
plan9_apply(struct uvm *vm, struct modify_req *r)
{
    const char *name = NULL, *path = NULL;
    uint64_t port = 0, flags = 0;
    int rc = need_settings(r);
    if (rc == 0 && r->add)
        rc = get_string(r, "Name", true, &name);
    if (rc == 0 && r->add)
        rc = get_string(r, "Path", true, &path);
    if (rc == 0)
        rc = get_uint(r, "Port", true, 1, UINT32_MAX, &port);
    if (rc == 0)
        rc = get_uint(r, "Flags", false, 0, UINT32_MAX, &flags);
    if (rc < 0)
        return rc;
    if (flags & ~(uint64_t)PLAN9_FLAGS_KNOWN)
        return uvm_error(UVM_E_NOT_SUPPORTED, "modify '%s' %s: Settings.Flags 0x%llx has unknown "
                         "bits",
                         r->id, r->path, (unsigned long long)flags);
    cleanup_json json_t *named = plan9_guest(r, port);
    struct guest_part g = {.custom = true, .request = named ? named : r->guest.request};
    if (!r->add)
        return wrap(r, plan9_remove(vm, NULL, port, &g));
    struct plan9_add_args a = {.host_path = path, .port = port,
                               .read_only = flags & PLAN9_FLAG_READ_ONLY,
                               .uvm_path = guest_setting(r, "MappedDirectory", "MountPath"),
                               .guest = &g};
    return wrap(r, plan9_add(vm, &a));
}

/* hcsshim's VirtualSmbShareOptions -> ours; offset -1: accepted, no effect here. */
static const struct {
    const char *name;
    ptrdiff_t offset;
} vsmb_flags[] = {
#define FLAG(n, f) {n, offsetof(struct uvm_vsmb_options, f)}
    FLAG("ReadOnly", read_only),
    FLAG("ShareRead", share_read),
    FLAG("CacheIo", cache_io),
    FLAG("NoOplocks", no_oplocks),
    FLAG("TakeBackupPrivilege", take_backup_privilege),
    FLAG("UseShareRootIdentity", use_share_root_identity),
    FLAG("NoDirectmap", no_directmap),
    FLAG("NoLocks", no_locks),
    {"NoDirnotify", -1},
    {"VmSharedMemory", -1},
    FLAG("RestrictFileAccess", restrict_file_access),
    FLAG("ForceLevelIIOplocks", force_level_ii_oplocks),
    FLAG("ReparseBaseLayer", reparse_base_layer),
    FLAG("PseudoOplocks", pseudo_oplocks),
    FLAG("NonCacheIo", non_cache_io),
    FLAG("PseudoDirnotify", pseudo_dirnotify),
    FLAG("SingleFileMapping", single_file_mapping),
    FLAG("SupportCloudFiles", support_cloud_files),
#undef FLAG
};

static int
vsmb_options(const struct modify_req *r, struct uvm_vsmb_options *o)
{
    json_t *opts = json_object_get(r->settings, "Options");
    if (!opts)
        return 0;
    if (!json_is_object(opts))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.Options must be an "
                         "object",
                         r->id, r->path);
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v) {
        size_t i = 0;
        while (i < ARRAY_SIZE(vsmb_flags) && strcmp(vsmb_flags[i].name, key))
            i++;
        if (i == ARRAY_SIZE(vsmb_flags))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "modify '%s' %s: Settings.Options.%s is not a VSMB share option",
                             r->id, r->path, key);
        if (!json_is_boolean(v))
            return uvm_error(UVM_E_INVALID_ARGUMENT,
                             "modify '%s' %s: Settings.Options.%s must be a boolean", r->id,
                             r->path, key);
        if (vsmb_flags[i].offset >= 0)
            *(bool *)((char *)o + vsmb_flags[i].offset) = json_is_true(v);
    }
    return 0;
}

/* A share name is its virtio-fs tag and part of QEMU ids. */
static bool
share_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

static int
vsmb_apply(struct uvm *vm, struct modify_req *r)
{
    const char *name = NULL, *path = NULL;
    struct uvm_vsmb_options o = {0};
    int rc = need_settings(r);
    if (rc == 0)
        rc = get_string(r, "Name", true, &name);
    if (rc == 0 && r->add)
        rc = get_string(r, "Path", true, &path);
    if (rc == 0 && r->add)
        rc = vsmb_options(r, &o);
    if (rc < 0)
        return rc;
    if (!share_name_ok(name))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.Name '%s' is not a "
                         "share name (1 to 20 of [A-Za-z0-9_-])",
                         r->id, r->path, name);
    if (!r->add)
        return wrap(r, vsmb_remove(vm, NULL, name, &r->guest));
    struct vsmb_add_args a = {.host_path = path, .options = &o, .name = name,
                              .guest = &r->guest};
    return wrap(r, vsmb_add(vm, &a));
}

int
modify_mac_normalize(const char *in, char out[18])
{
    if (strlen(in) != 17)
        return -1;
    for (size_t i = 0; i < 17; i++) {
        char c = in[i];
        if (i % 3 == 2) {
            if (c != ':' && c != '-')
                return -1;
            out[i] = ':';
        } else {
            if (!isxdigit((unsigned char)c))
                return -1;
            out[i] = (char)tolower((unsigned char)c);
        }
    }
    out[17] = '\0';
    return 0;
}

static int
nic_apply(struct uvm *vm, struct modify_req *r)
{
    if (!share_name_ok(r->name) && strspn(r->name, "0123456789abcdefABCDEF-{}") != strlen(r->name))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': ResourcePath '%s': adapter id '%s' is not a GUID", r->id,
                         r->path, r->name);
    if (strlen(r->name) > 38)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': ResourcePath '%s': adapter id is longer than a GUID",
                         r->id, r->path);
    if (!r->add)
        return wrap(r, netns_nic_remove(vm, r->name, &r->guest));
    const char *endpoint = NULL, *mac = NULL;
    int rc = need_settings(r);
    if (rc == 0)
        rc = get_string(r, "EndpointId", true, &endpoint);
    if (rc == 0)
        rc = get_string(r, "MacAddress", true, &mac);
    if (rc < 0)
        return rc;
    char norm[18];
    if (modify_mac_normalize(mac, norm) < 0)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s' %s: Settings.MacAddress '%s' is "
                         "not a MAC address",
                         r->id, r->path, mac);
    return wrap(r, netns_nic_add(vm, r->name, endpoint, norm, &r->guest));
}

/* --- the request -------------------------------------------------------------------------- */

static int
guest_modify(struct uvm *vm, json_t *guest_request)
{
    pthread_mutex_lock(&vm->lock);
    int rc = uvm_check_running(vm, "modify");
    struct bridge *b = vm->bridge;
    pthread_mutex_unlock(&vm->lock);
    if (rc < 0)
        return rc;
    rc = bridge_modify(b, guest_request, deadline_after_ms(UVM_AGENT_TIMEOUT_MS));
    if (rc < 0)
        return uvm_error_wrap(rc, "modify '%s'", vm->cfg.id);
    return 0;
}

/* The top level's fields and types; RequestType absent means Add. */
static int
decode(const char *id, json_t *req, struct modify_req *r, const char **path)
{
    static const char *const known[] = {"ResourcePath", "RequestType", "Settings",
                                        "GuestRequest"};
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v) {
        size_t i = 0;
        while (i < ARRAY_SIZE(known) && strcmp(known[i], key))
            i++;
        if (i == ARRAY_SIZE(known))
            return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': unknown field '%s'", id, key);
    }
    json_t *p = json_object_get(req, "ResourcePath");
    json_t *type = json_object_get(req, "RequestType");
    json_t *settings = json_object_get(req, "Settings");
    json_t *guest = json_object_get(req, "GuestRequest");
    if (p && !json_is_string(p))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': ResourcePath must be a string", id);
    if (type && !json_is_string(type))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': RequestType must be a string", id);
    if (settings && !json_is_null(settings) && !json_is_object(settings))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': Settings must be an object", id);
    if (guest && !json_is_object(guest))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': GuestRequest must be an object", id);
    /* A guest-only request is the agent's to check (after the VM's state): it names the field. */
    if (p && guest && !json_is_string(json_object_get(guest, "ResourceType")))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': GuestRequest.ResourceType must be a string", id);
    const char *t = type ? json_string_value(type) : "Add";
    if (p && strcmp(t, "Add") && strcmp(t, "Remove"))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': RequestType '%s' is not Add or Remove", id, t);
    r->id = id;
    r->add = !strcmp(t, "Add");
    r->settings = json_is_object(settings) ? settings : NULL;
    r->guest.custom = true;
    r->guest.request = guest;
    *path = p ? json_string_value(p) : NULL;
    return 0;
}

static int do_modify(struct uvm *vm, const char *modify_request_json);

int
uvm_modify(struct uvm *vm, const char *modify_request_json)
{
    if (!vm || !modify_request_json)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify: NULL argument");
    int rc = uvm_call_enter(vm, "modify");
    if (rc == 0) {
        rc = do_modify(vm, modify_request_json);
        uvm_call_leave(vm);
    }
    return rc;
}

int
modify_route(const char *vm_id, const char *json, const char **handler_pattern)
{
    json_error_t err;
    cleanup_json json_t *req = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(req))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': request is not a JSON object%s%s",
                         vm_id, req ? "" : ": ", req ? "" : err.text);
    struct modify_req r = {0};
    const char *path = NULL;
    int rc = decode(vm_id, req, &r, &path);
    if (rc < 0 || !path) {
        *handler_pattern = NULL;
        return rc;
    }
    r.path = path;
    const struct modify_handler *h = route(&r, &rc);
    *handler_pattern = h ? h->pattern : NULL;
    return rc;
}

static int
do_modify(struct uvm *vm, const char *modify_request_json)
{
    json_error_t err;
    cleanup_json json_t *req = json_loads(modify_request_json, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(req))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "modify '%s': request is not a JSON object%s%s",
                         vm->cfg.id, req ? "" : ": ", req ? "" : err.text);
    struct modify_req r = {0};
    const char *path = NULL;
    int rc = decode(vm->cfg.id, req, &r, &path);
    if (rc < 0)
        return rc;
    if (!path && !r.guest.request)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "modify '%s': the request has neither ResourcePath nor GuestRequest",
                         vm->cfg.id);
    if (!path)
        return guest_modify(vm, r.guest.request);
    r.path = path;
    const struct modify_handler *h = route(&r, &rc);
    if (!h)
        return rc;
    return h->apply(vm, &r);
}

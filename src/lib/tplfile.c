/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "error.h"
#include "tplfile.h"

static const char *const backing_names[] = {"Virtual", "VirtualDeferred", "Physical"};

/* --- encoding -------------------------------------------------------------------------------- */

static json_t *
file_json(const struct tpl_file *f, bool with_hash)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:I}", "Role", f->role, "Path", f->path, "Size",
                          (json_int_t)f->size, "MtimeNs", (json_int_t)f->mtime_ns);
    if (j && with_hash) {
        char hex[17];
        snprintf(hex, sizeof(hex), "%016" PRIx64, f->hash);
        json_object_set_new(j, "Hash", json_string(hex));
    }
    return j;
}

static json_t *
options_json(const struct tpl_manifest *m)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b}", "BootFilesPath",
                          m->boot_files_path, "KernelFile", m->kernel_file, "RootfsFile",
                          m->rootfs_file, "MemoryMB", (json_int_t)m->memory_mb, "ProcessorCount",
                          (json_int_t)m->processor_count, "VPMemDeviceCount",
                          (json_int_t)m->vpmem_count, "SCSIControllerCount",
                          (json_int_t)m->scsi_count, "GraphicsConsole", m->graphics_console);
    if (!o)
        return NULL;
    if (m->kernel_boot_options)
        json_object_set_new(o, "KernelBootOptions", json_string(m->kernel_boot_options));
    if (m->has_memory_backing)
        json_object_set_new(o, "MemoryBacking", json_string(backing_names[m->memory_backing]));
    if (m->additional_json)
        json_object_set_new(o, "AdditionalJSON", json_string(m->additional_json));
    return o;
}

char *
tpl_manifest_encode(const struct tpl_manifest *m)
{
    json_t *files = json_array(), *argv = json_array();
    for (size_t i = 0; i < m->n_files; i++)
        json_array_append_new(files, file_json(&m->files[i], true));
    for (char **a = m->argv; a && *a; a++)
        json_array_append_new(argv, json_string(*a));
    json_t *qemu = file_json(&m->qemu, false);
    json_object_del(qemu, "Role");
    json_object_set_new(qemu, "Version", json_string(m->qemu_version));
    cleanup_json json_t *j = json_pack(
        "{s:s, s:i, s:s, s:I, s:o, s:s, s:o, s:o, s:o, s:{s:s, s:I, s:I, s:I}, s:{s:s, s:I}}",
        "Format", TPL_FORMAT, "Version", TPL_VERSION, "SourceId", m->source_id, "SavedAt",
        (json_int_t)m->saved_at, "Qemu", qemu, "Accel", m->accel, "Options", options_json(m),
        "Files", files, "Argv", argv, "Ram", "File", TPL_RAM, "Size", (json_int_t)m->ram_size,
        "Used", (json_int_t)m->ram_used, "CtimeNs", (json_int_t)m->ram_ctime_ns, "State", "File",
        TPL_STATE, "Size", (json_int_t)m->state_size);
    char hex[17];
    snprintf(hex, sizeof(hex), "%016" PRIx64, m->state_hash);
    if (j)
        json_object_set_new(json_object_get(j, "State"), "Hash", json_string(hex));
    return j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
}

/* --- decoding -------------------------------------------------------------------------------- */

struct dec {
    const char *dir;
    const char *where; /* the object being read, for messages */
};

static int
bad(const struct dec *d, const char *key, const char *why)
{
    return uvm_error(UVM_E_INVALID_ARGUMENT, "template '%s': %s: %s%s%s %s", d->dir, TPL_MANIFEST,
                     d->where, *d->where && *key ? "." : "", key, why);
}

/* Every key of obj is in `known` (NULL-terminated). */
static int
only_known(const struct dec *d, json_t *obj, const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = !strcmp(*k, key);
        if (!ok)
            return bad(d, strnlen(key, 64) < 64 ? key : "(a long name)", "is not a known field");
    }
    return 0;
}

static int
get_obj(const struct dec *d, json_t *obj, const char *key, json_t **out)
{
    *out = json_object_get(obj, key);
    return json_is_object(*out) ? 0 : bad(d, key, "must be an object");
}

/* A string without NUL or control characters, at most TPL_TEXT_MAX bytes; optional: absent
 * leaves *out NULL. Owned copy. */
static int
str_value(const struct dec *d, json_t *v, const char *key, char **out)
{
    if (!json_is_string(v))
        return bad(d, key, "must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n > TPL_TEXT_MAX || strlen(s) != n)
        return bad(d, key, "is too long or contains a NUL");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t')
            return bad(d, key, "contains a control character");
    *out = xstrdup(s);
    return 0;
}

static int
get_str(const struct dec *d, json_t *obj, const char *key, bool optional, char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v && optional)
        return 0;
    return str_value(d, v, key, out);
}

static int
get_u64(const struct dec *d, json_t *obj, const char *key, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return bad(d, key, "must be a non-negative integer in range");
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int
get_u32(const struct dec *d, json_t *obj, const char *key, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    int rc = get_u64(d, obj, key, max, &v);
    *out = (uint32_t)v;
    return rc;
}

static int
get_i64(const struct dec *d, json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return bad(d, key, "must be an integer");
    *out = json_integer_value(v);
    return 0;
}

/* "Hash": 16 hex digits. */
static int
get_hash(const struct dec *d, json_t *obj, uint64_t *out)
{
    cleanup_free char *hex = NULL;
    int rc = get_str(d, obj, "Hash", false, &hex);
    if (rc < 0)
        return rc;
    char *end = NULL;
    *out = strtoull(hex, &end, 16);
    if (strlen(hex) != 16 || *end || hex[0] == '-' || hex[0] == '+')
        return bad(d, "Hash", "must be 16 hex digits");
    return 0;
}

static int
decode_file(const struct dec *d, json_t *obj, bool with_hash, struct tpl_file *f)
{
    static const char *const keys[] = {"Role", "Path", "Size", "MtimeNs", "Hash", "Version", NULL};
    int rc = only_known(d, obj, keys);
    uint64_t size = 0;
    if (rc == 0 && with_hash)
        rc = get_str(d, obj, "Role", false, &f->role);
    if (rc == 0)
        rc = get_str(d, obj, "Path", false, &f->path);
    if (rc == 0)
        rc = get_u64(d, obj, "Size", INT64_MAX, &size);
    if (rc == 0)
        rc = get_i64(d, obj, "MtimeNs", &f->mtime_ns);
    f->size = size;
    if (rc < 0 || !with_hash)
        return rc;
    return get_hash(d, obj, &f->hash);
}

static int
decode_options(struct dec *d, json_t *o, struct tpl_manifest *m)
{
    static const char *const keys[] = {
        "BootFilesPath",  "KernelFile",       "RootfsFile",          "MemoryMB",
        "ProcessorCount", "VPMemDeviceCount", "SCSIControllerCount", "KernelBootOptions",
        "MemoryBacking",  "GraphicsConsole",  "AdditionalJSON",      NULL};
    d->where = "Options";
    int rc = only_known(d, o, keys);
    if (rc == 0)
        rc = get_str(d, o, "BootFilesPath", false, &m->boot_files_path);
    if (rc == 0)
        rc = get_str(d, o, "KernelFile", false, &m->kernel_file);
    if (rc == 0)
        rc = get_str(d, o, "RootfsFile", false, &m->rootfs_file);
    if (rc == 0)
        rc = get_u64(d, o, "MemoryMB", 1ull << 22, &m->memory_mb);
    if (rc == 0)
        rc = get_u32(d, o, "ProcessorCount", 255, &m->processor_count);
    if (rc == 0)
        rc = get_u32(d, o, "VPMemDeviceCount", UVM_MAX_VPMEM, &m->vpmem_count);
    if (rc == 0)
        rc = get_u32(d, o, "SCSIControllerCount", 4, &m->scsi_count);
    if (rc == 0)
        rc = get_str(d, o, "KernelBootOptions", true, &m->kernel_boot_options);
    if (rc == 0)
        rc = get_str(d, o, "AdditionalJSON", true, &m->additional_json);
    if (rc < 0)
        return rc;
    json_t *g = json_object_get(o, "GraphicsConsole");
    if (!json_is_boolean(g))
        return bad(d, "GraphicsConsole", "must be a boolean");
    m->graphics_console = json_is_true(g);
    cleanup_free char *backing = NULL;
    if ((rc = get_str(d, o, "MemoryBacking", true, &backing)) < 0 || !backing)
        return rc;
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(backing, backing_names[i])) {
            m->has_memory_backing = true;
            m->memory_backing = (enum uvm_memory_backing)i;
            return 0;
        }
    return bad(d, "MemoryBacking", "must be Virtual, VirtualDeferred or Physical");
}

static int
decode_lists(struct dec *d, json_t *root, struct tpl_manifest *m)
{
    json_t *files = json_object_get(root, "Files"), *argv = json_object_get(root, "Argv");
    d->where = "";
    if (!json_is_array(files) || json_array_size(files) > TPL_FILES_MAX)
        return bad(d, "Files", "must be an array of at most 4 files");
    if (!json_is_array(argv) || json_array_size(argv) < 1 || json_array_size(argv) > TPL_ARGV_MAX)
        return bad(d, "Argv", "must be an array of 1 to 512 strings");
    d->where = "Files[]";
    for (size_t i = 0; i < json_array_size(files); i++) {
        json_t *f = json_array_get(files, i);
        if (!json_is_object(f))
            return bad(d, "", "must be an object");
        m->n_files++;
        int rc = decode_file(d, f, true, &m->files[i]);
        if (rc < 0)
            return rc;
    }
    d->where = "";
    m->argv = xcalloc(json_array_size(argv) + 1, sizeof(char *));
    for (size_t i = 0; i < json_array_size(argv); i++) {
        int rc = str_value(d, json_array_get(argv, i), "Argv[]", &m->argv[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int
decode_files(struct dec *d, json_t *root, struct tpl_manifest *m)
{
    static const char *const ram_keys[] = {"File", "Size", "Used", "CtimeNs", NULL};
    static const char *const state_keys[] = {"File", "Size", "Hash", NULL};
    json_t *ram = NULL, *state = NULL;
    cleanup_free char *ram_file = NULL, *state_file = NULL;
    d->where = "";
    int rc = get_obj(d, root, "Ram", &ram);
    if (rc == 0)
        rc = get_obj(d, root, "State", &state);
    if (rc < 0)
        return rc;
    d->where = "Ram";
    if ((rc = only_known(d, ram, ram_keys)) < 0 ||
        (rc = get_str(d, ram, "File", false, &ram_file)) < 0 ||
        (rc = get_u64(d, ram, "Size", INT64_MAX, &m->ram_size)) < 0 ||
        (rc = get_u64(d, ram, "Used", INT64_MAX, &m->ram_used)) < 0 ||
        (rc = get_i64(d, ram, "CtimeNs", &m->ram_ctime_ns)) < 0)
        return rc;
    if (strcmp(ram_file, TPL_RAM))
        return bad(d, "File", "must be \"" TPL_RAM "\"");
    d->where = "State";
    if ((rc = only_known(d, state, state_keys)) < 0 ||
        (rc = get_str(d, state, "File", false, &state_file)) < 0 ||
        (rc = get_u64(d, state, "Size", INT64_MAX, &m->state_size)) < 0 ||
        (rc = get_hash(d, state, &m->state_hash)) < 0)
        return rc;
    if (strcmp(state_file, TPL_STATE))
        return bad(d, "File", "must be \"" TPL_STATE "\"");
    d->where = "Ram";
    if (m->ram_size != m->memory_mb << 20)
        return bad(d, "Size", "is not Options.MemoryMB");
    return 0;
}

static int
decode_root(struct dec *d, json_t *root, struct tpl_manifest *m)
{
    static const char *const keys[] = {"Format", "Version", "SourceId", "SavedAt",
                                       "Qemu",   "Accel",   "Options",  "Files",
                                       "Argv",   "Ram",     "State",    NULL};
    json_t *fmt = json_object_get(root, "Format"), *ver = json_object_get(root, "Version");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), TPL_FORMAT))
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "template '%s': %s is not a libuvm template manifest", d->dir,
                         TPL_MANIFEST);
    if (!json_is_integer(ver) || json_integer_value(ver) != TPL_VERSION)
        return uvm_error(UVM_E_INVALID_ARGUMENT,
                         "template '%s': manifest version %lld, this libuvm reads version %d",
                         d->dir, json_is_integer(ver) ? (long long)json_integer_value(ver) : -1LL,
                         TPL_VERSION);
    json_t *qemu = NULL, *opts = NULL;
    int rc = only_known(d, root, keys);
    if (rc == 0)
        rc = get_str(d, root, "SourceId", false, &m->source_id);
    if (rc == 0)
        rc = get_i64(d, root, "SavedAt", &m->saved_at);
    if (rc == 0)
        rc = get_str(d, root, "Accel", false, &m->accel);
    if (rc == 0)
        rc = get_obj(d, root, "Qemu", &qemu);
    if (rc == 0)
        rc = get_obj(d, root, "Options", &opts);
    if (rc < 0)
        return rc;
    d->where = "Qemu";
    if ((rc = decode_file(d, qemu, false, &m->qemu)) < 0 ||
        (rc = get_str(d, qemu, "Version", false, &m->qemu_version)) < 0)
        return rc;
    m->qemu.role = xstrdup("qemu");
    if ((rc = decode_options(d, opts, m)) < 0 || (rc = decode_lists(d, root, m)) < 0)
        return rc;
    return decode_files(d, root, m);
}

int
tpl_manifest_decode(const char *text, size_t len, const char *dir, struct tpl_manifest *m)
{
    memset(m, 0, sizeof(*m));
    json_error_t jerr;
    cleanup_json json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "template '%s': %s is not a JSON object (%s)", dir,
                         TPL_MANIFEST, root ? "another JSON value" : jerr.text);
    struct dec d = {.dir = dir, .where = ""};
    int rc = decode_root(&d, root, m);
    if (rc < 0)
        tpl_manifest_release(m);
    return rc;
}

static void
file_release(struct tpl_file *f)
{
    free(f->role);
    free(f->path);
}

const char *
template_dir(const struct template *t)
{
    return t ? t->dir : NULL;
}

void
template_free(struct template *t)
{
    if (!t)
        return;
    if (t->dirfd >= 0)
        close(t->dirfd);
    if (t->state_fd >= 0)
        close(t->state_fd);
    tpl_manifest_release(&t->m);
    free(t->boot_real);
    free(t->dir);
    free(t);
}

void
tpl_manifest_release(struct tpl_manifest *m)
{
    free(m->source_id);
    free(m->qemu_version);
    file_release(&m->qemu);
    free(m->accel);
    free(m->boot_files_path);
    free(m->kernel_file);
    free(m->rootfs_file);
    free(m->kernel_boot_options);
    free(m->additional_json);
    for (size_t i = 0; i < m->n_files; i++)
        file_release(&m->files[i]);
    for (char **a = m->argv; a && *a; a++)
        free(*a);
    free(m->argv);
    memset(m, 0, sizeof(*m));
}

/* --- the command line's key ------------------------------------------------------------------ */

/* s with every occurrence of `from` replaced by `to` (owned). */
static char *
replace_all(const char *s, const char *from, const char *to)
{
    size_t nf = strlen(from), nt = strlen(to), n = 0;
    if (!nf)
        return xstrdup(s);
    for (const char *p = strstr(s, from); p; p = strstr(p + nf, from))
        n++;
    char *out = xmalloc(strlen(s) + n * nt + 1), *o = out;
    const char *p = s, *q;
    while ((q = strstr(p, from))) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, nt);
        o += nt;
        p = q + nf;
    }
    strcpy(o, p);
    return out;
}

/* The memory backend without share= and prealloc= (a clone's is share=off, never
 * preallocated). */
static char *
memory_key(const char *arg)
{
    char *out = xstrdup(arg);
    static const char *const drop[] = {",share=on", ",share=off", ",prealloc=on"};
    for (size_t i = 0; i < 3; i++) {
        char *p = strstr(out, drop[i]);
        if (p)
            memmove(p, p + strlen(drop[i]), strlen(p + strlen(drop[i])) + 1);
    }
    return out;
}

static char *
key_of(const char *opt, const char *arg, const char *rundir)
{
    if (opt && !strcmp(opt, "-name"))
        return xstrdup("<name>");
    if (opt && !strcmp(opt, "-append"))
        return xstrdup("<append>");
    if (opt && !strcmp(opt, "-chardev") &&
        (!strncmp(arg, "socket,id=serial0,", 18) || !strncmp(arg, "file,id=serial0,", 16)))
        return xstrdup("<serial0>");
    if (opt && !strcmp(opt, "-object") && !strncmp(arg, "memory-backend-file,id=mem,", 27))
        return memory_key(arg);
    return replace_all(arg, rundir, "<rundir>");
}

char **
tpl_argv_key(const char *const *argv, const char *rundir)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **out = xcalloc(n + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if ((!strcmp(argv[i], "-incoming") || !strcmp(argv[i], "-add-fd")) && i + 1 < n) {
            i++;
            continue;
        }
        out[k++] = key_of(i ? argv[i - 1] : NULL, argv[i], rundir);
    }
    return out;
}

int
tpl_argv_compare(char *const *tpl, char *const *vm, const char *dir)
{
    size_t i = 0;
    while (tpl[i] && vm[i] && !strcmp(tpl[i], vm[i]))
        i++;
    if (!tpl[i] && !vm[i])
        return 0;
    return uvm_error(UVM_E_INVALID_ARGUMENT,
                     "template '%s' does not match this VM's QEMU command line: argument %zu "
                     "is '%s %s' in the template and '%s %s' here",
                     dir, i, i && tpl[i] ? tpl[i - 1] : "", tpl[i] ? tpl[i] : "(end)",
                     i && vm[i] ? vm[i - 1] : "", vm[i] ? vm[i] : "(end)");
}

/* --- the options of a clone ------------------------------------------------------------------ */

static int
differs(const char *dir, const char *option, const char *mine, const char *theirs)
{
    return uvm_error(UVM_E_INVALID_ARGUMENT,
                     "template '%s': %s %s differs from the template's %s (a clone has its "
                     "template's; leave it unset)",
                     dir, option, mine, theirs);
}

static int
merge_string(const char *dir, const char *option, const char *in, char *tpl, const char **out)
{
    *out = tpl;
    if (!in || !*in)
        return 0;
    if (!tpl || strcmp(in, tpl)) {
        cleanup_free char *a = xasprintf("'%s'", in);
        cleanup_free char *b = tpl ? xasprintf("'%s'", tpl) : xstrdup("(none)");
        return differs(dir, option, a, b);
    }
    return 0;
}

static int
merge_number(const char *dir, const char *option, bool set, uint64_t in, uint64_t tpl)
{
    if (!set || in == tpl)
        return 0;
    char a[24], b[24];
    snprintf(a, sizeof(a), "%" PRIu64, in);
    snprintf(b, sizeof(b), "%" PRIu64, tpl);
    return differs(dir, option, a, b);
}

static int
merge_rootfs(const struct tpl_manifest *m, const struct uvm_options *in, const char *dir,
             struct uvm_options *out)
{
    int rc = merge_string(dir, "rootfs_file", in->rootfs_file, m->rootfs_file, &out->rootfs_file);
    if (rc < 0 || !in->has_preferred_rootfs_type)
        return rc;
    const char *ext = strrchr(m->rootfs_file, '.');
    bool vhd = ext && (!strcmp(ext, ".vhd") || !strcmp(ext, ".vhdx"));
    if ((in->preferred_rootfs_type == UVM_ROOTFS_VHD) != vhd)
        return differs(dir, "preferred_rootfs_type",
                       in->preferred_rootfs_type == UVM_ROOTFS_VHD ? "vhd" : "initrd",
                       vhd ? "vhd" : "initrd");
    return 0;
}

static int
merge_values(const struct tpl_manifest *m, const struct uvm_options *in, const char *dir,
             struct uvm_options *out)
{
    int rc;
    if ((rc = merge_number(dir, "memory_mb", in->memory_mb, in->memory_mb, m->memory_mb)) < 0 ||
        (rc = merge_number(dir, "processor_count", in->processor_count, in->processor_count,
                           m->processor_count)) < 0 ||
        (rc = merge_number(dir, "vpmem_device_count", in->has_vpmem_device_count,
                           (uint64_t)in->vpmem_device_count, m->vpmem_count)) < 0 ||
        (rc = merge_number(dir, "scsi_controller_count", in->has_scsi_controller_count,
                           (uint64_t)in->scsi_controller_count, m->scsi_count)) < 0 ||
        (rc = merge_number(dir, "memory_backing_type", in->has_memory_backing_type,
                           (uint64_t)in->memory_backing_type,
                           m->has_memory_backing ? (uint64_t)m->memory_backing : 0)) < 0)
        return rc;
    if (in->enable_graphics_console && !m->graphics_console)
        return differs(dir, "enable_graphics_console", "true", "false");
    out->memory_mb = m->memory_mb;
    out->processor_count = m->processor_count;
    out->has_vpmem_device_count = true;
    out->vpmem_device_count = (int32_t)m->vpmem_count;
    out->has_scsi_controller_count = true;
    out->scsi_controller_count = (int)m->scsi_count;
    out->has_memory_backing_type = m->has_memory_backing;
    out->memory_backing_type = m->memory_backing;
    out->enable_graphics_console = m->graphics_console;
    return 0;
}

int
tpl_options_merge(const struct tpl_manifest *m, const struct uvm_options *in, const char *boot_real,
                  const char *dir, struct uvm_options *out)
{
    *out = *in;
    if (in->operating_system && *in->operating_system && strcmp(in->operating_system, "linux"))
        return uvm_error(UVM_E_NOT_SUPPORTED, "template '%s': templates are linux VMs", dir);
    if (in->layer_folder_count)
        return uvm_error(UVM_E_INVALID_ARGUMENT, "template '%s': layer folders are for windows VMs",
                         dir);
    int rc = merge_values(m, in, dir, out);
    if (rc == 0)
        rc = merge_string(dir, "boot_files_path", boot_real, m->boot_files_path,
                          &out->boot_files_path);
    if (rc == 0)
        rc = merge_string(dir, "kernel_file", in->kernel_file, m->kernel_file, &out->kernel_file);
    if (rc == 0)
        rc = merge_rootfs(m, in, dir, out);
    if (rc == 0)
        rc = merge_string(dir, "kernel_boot_options", in->kernel_boot_options,
                          m->kernel_boot_options, &out->kernel_boot_options);
    if (rc == 0)
        rc = merge_string(dir, "additional_hcs_document_json", in->additional_hcs_document_json,
                          m->additional_json, &out->additional_hcs_document_json);
    out->has_preferred_rootfs_type = false;
    return rc;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Target "vm-argv": the VM document merged with the caller's additional JSON, and the QEMU
 * command line built from it (src/lib/document.c, argv.c).
 * Input: 1 byte choosing the configuration (bit 0 VHD root, bits 1-2 SCSI controllers, bits
 * 3-4 VPMem devices 0/1/33/64, bit 5 console file, bit 6 graphics, bit 7 physical memory),
 * then the additional JSON. argv_build runs in a directory of its own holding 2 MiB images
 * whose names carry QEMU's separators ("a,b", "x,share=off,readonly=off.vhd", ...): a
 * document naming one of them gets past argv_build's checks.
 *
 * Property (issue 14): no JSON string can add a QEMU option. The argv is parsed as QEMU parses
 * it: every option is a known one with the number of arguments it takes, every key=value
 * option (QemuOpts syntax: ',' separates, ',,' is a literal ',') has only keys argv.c writes
 * for that option, none twice, and the values that come from strings (the VPMem image, the
 * runtime directory) read back unchanged; the guest RAM backend names only the RAM fd, and
 * "-incoming defer" appears only on a clone's command line (each input is built cold and as a
 * clone). Also: argv_join's shell quoting reads back as the argv, and argv_host_files names
 * the document's files.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "argv.h"
#include "document.h"
#include "fuzz-util.h"
#include "options.h"
#include "uvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RUNDIR "/run/uvm/fuzz,rd=x"
#define RAM_PATH "/proc/self/fd/6" /* ARGV_RAM_FD */
#define VHD_ROOT "x,share=off,readonly=off.vhd"

static const char *const images[] = {VHD_ROOT, "a,b",         "pmem.vhd",
                                     "x,,y",   "mem-path=z,", ",id=evil"};
static char workdir[] = "/tmp/uvm-fuzz-argv.XXXXXX";
static int cwd_fd = -1; /* where libFuzzer runs: its corpus paths may be relative */

static void
cleanup_workdir(void)
{
    for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", workdir, images[i]);
        unlink(path);
    }
    rmdir(workdir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd_fd < 0 || !mkdtemp(workdir))
        abort();
    atexit(cleanup_workdir);
    for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", workdir, images[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, ARGV_PMEM_ALIGN) < 0)
            abort();
        close(fd);
    }
    return 0;
}

enum kind { FLAG, RAW, KEYVAL };

/* The options argv.c writes: how QEMU parses their argument, the implied first key (NULL:
 * none) and the keys allowed. */
static const struct option_rule {
    const char *name;
    enum kind kind;
    const char *implied;
    const char *keys[20];
} rules[] = {
    {"-name", KEYVAL, "guest", {"debug-threads"}},
    {"-machine", KEYVAL, "type", {"memory-backend"}},
    {"-accel", KEYVAL, "accel", {0}},
    {"-cpu", RAW, NULL, {0}},
    {"-bios", RAW, NULL, {0}},
    {"-m", KEYVAL, "size", {"slots", "maxmem"}},
    {"-object", KEYVAL, "qom-type", {"id", "size", "share", "prealloc", "mem-path", "readonly"}},
    {"-smp", KEYVAL, "cpus", {0}},
    {"-nodefaults", FLAG, NULL, {0}},
    {"-no-user-config", FLAG, NULL, {0}},
    {"-sandbox", KEYVAL, "enable", {"obsolete", "elevateprivileges", "spawn", "resourcecontrol"}},
    {"-no-reboot", FLAG, NULL, {0}},
    {"-display", KEYVAL, "type", {0}},
    {"-kernel", RAW, NULL, {0}},
    {"-initrd", RAW, NULL, {0}},
    {"-append", RAW, NULL, {0}},
    {"-device",
     KEYVAL,
     "driver",
     {"id", "bus", "chassis", "slot", "chassis_nr", "shpc", "io-reserve", "mem-reserve",
      "pref64-reserve", "max_ports", "nr", "chardev", "name", "memdev", "fsdev", "mount_tag",
      "addr", "disable-legacy", "vectors"}},
    {"-chardev", KEYVAL, "backend", {"id", "fd", "server", "wait", "path"}},
    {"-mon", KEYVAL, "chardev", {"mode"}},
    {"-fsdev", KEYVAL, "fsdriver", {"id", "path", "security_model", "multidevs"}},
    {"-serial", RAW, NULL, {0}},
    {"-add-fd", KEYVAL, NULL, {"fd", "set", "opaque"}},
    {"-vnc", KEYVAL, "vnc", {0}},
    {"-incoming", RAW, NULL, {0}},
};

struct kv {
    char *key, *value;
};

/* QemuOpts' parse (util/qemu-option.c, opts_do_parse): a name runs to '=' or ','; a value to a
 * ',' that is not ",,", which reads as ','; an item without '=' is the implied key's value when
 * first, else a flag. Returns the number of items (at most max). */
static size_t
qemu_opts_split(const char *s, const char *implied, struct kv *out, size_t max)
{
    size_t n = 0;
    for (const char *p = s; *p && n < max; n++) {
        size_t len = strcspn(p, "=,");
        const char *v = p;
        if (p[len] == '=') {
            out[n].key = strndup(p, len);
            v = p + len + 1;
        } else if (n == 0 && implied) {
            out[n].key = strdup(implied);
        } else {
            out[n].key = strndup(p, len);
            out[n].value = strdup("on");
            p += len + (p[len] == ',');
            continue;
        }
        char *val = malloc(strlen(v) + 1), *o = val;
        for (; *v; v++) {
            if (*v == ',' && v[1] != ',')
                break;
            *o++ = *v;
            if (*v == ',')
                v++;
        }
        *o = '\0';
        out[n].value = val;
        p = *v ? v + 1 : v;
    }
    return n;
}

static const char *
kv_get(const struct kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return kv[i].value;
    return NULL;
}

/* One key=value option: only keys argv.c writes, none twice; the string-valued ones intact. */
static void
check_keyval(const struct option_rule *r, const char *arg, const char *pmem0)
{
    struct kv kv[64] = {0};
    size_t n = qemu_opts_split(arg, r->implied, kv, 64);
    for (size_t i = 0; i < n; i++) {
        bool known = r->implied && !strcmp(kv[i].key, r->implied);
        for (size_t k = 0; !known && k < 20 && r->keys[k]; k++)
            known = !strcmp(kv[i].key, r->keys[k]);
        FUZZ_CHECK(known, "%s '%s': key '%s' added", r->name, arg, kv[i].key);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(kv[i].key, kv[j].key), "%s '%s': key '%s' twice", r->name, arg,
                       kv[i].key);
    }
    const char *v;
    if (!strcmp(r->name, "-object") && (v = kv_get(kv, n, "mem-path"))) {
        const char *id = kv_get(kv, n, "id");
        if (id && !strcmp(id, "mem")) /* the guest RAM: the file the library hands over */
            FUZZ_CHECK(!strcmp(v, RAM_PATH), "RAM mem-path '%s'", v);
        else
            FUZZ_CHECK(pmem0 && !strcmp(v, pmem0), "mem-path '%s' for image '%s'", v, pmem0);
    }
    if (!strcmp(r->name, "-fsdev"))
        FUZZ_CHECK((v = kv_get(kv, n, "path")) && !strcmp(v, RUNDIR "/" ARGV_PLAN9_DIR),
                   "fsdev path '%s'", v);
    if (!strcmp(r->name, "-vnc"))
        FUZZ_CHECK((v = kv_get(kv, n, "vnc")) &&
                       !strcmp(v, "unix:" RUNDIR "/" ARGV_VNC_DIR "/vnc.sock"),
                   "vnc '%s'", v);
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
}

static void
check_argv(char **argv, const char *pmem0, bool clone)
{
    FUZZ_CHECK(argv && argv[0] && !strcmp(argv[0], "qemu-system-x86_64"), "argv[0]");
    bool incoming = false;
    for (size_t i = 1; argv[i]; i++) {
        const struct option_rule *r = NULL;
        for (size_t k = 0; k < sizeof(rules) / sizeof(rules[0]) && !r; k++)
            if (!strcmp(argv[i], rules[k].name))
                r = &rules[k];
        FUZZ_CHECK(r, "argv[%zu] '%s' is not an option argv.c writes", i, argv[i]);
        if (r->kind == FLAG)
            continue;
        FUZZ_CHECK(argv[i + 1], "%s without its argument", r->name);
        i++;
        if (r->kind == KEYVAL)
            check_keyval(r, argv[i], pmem0);
        if (!strcmp(r->name, "-incoming")) {
            FUZZ_CHECK(clone && !incoming && !strcmp(argv[i], "defer"), "-incoming '%s'", argv[i]);
            incoming = true;
        }
    }
    FUZZ_CHECK(incoming == clone, "a clone without -incoming");
}

/* POSIX shell words of a line argv_join made (spaces, '...' quotes, \ outside quotes). */
static void
check_join(char **argv)
{
    char *line = argv_join((const char *const *)argv);
    char *word = malloc(strlen(line) + 1);
    size_t i = 0;
    const char *p = line;
    while (*p) {
        size_t n = 0;
        bool any = false;
        for (; *p && *p != ' '; p++) {
            any = true;
            if (*p == '\'') {
                for (p++; *p && *p != '\''; p++)
                    word[n++] = *p;
                FUZZ_CHECK(*p == '\'', "unterminated quote in %s", line);
            } else if (*p == '\\' && p[1]) {
                word[n++] = *++p;
            } else {
                word[n++] = *p;
            }
        }
        word[n] = '\0';
        FUZZ_CHECK(any && argv[i] && !strcmp(word, argv[i]), "word %zu '%s' is not '%s'", i, word,
                   argv[i] ? argv[i] : "(end)");
        i++;
        if (*p == ' ')
            p++;
    }
    FUZZ_CHECK(!argv[i], "argv_join lost words from %zu", i);
    free(word);
    free(line);
}

static void
config_for(uint8_t b, struct uvm_config *c)
{
    static const uint32_t vpmem[4] = {0, 1, 33, 64};
    *c = (struct uvm_config){
        .id = "fuzz",
        .owner = "fuzz",
        .memory_mb = 512,
        .processor_count = 2,
        .kernel_path = "/boot,x/kernel",
        .rootfs_file = "initrd,x.img",
        .rootfs_path = (b & 1) ? VHD_ROOT : "/boot,x/initrd,x.img",
        .rootfs_type = (b & 1) ? UVM_ROOTFS_VHD : UVM_ROOTFS_INITRD,
        .scsi_count = (b >> 1) & 3,
        .vpmem_count = vpmem[(b >> 3) & 3],
        .console_pipe = (b & 0x20) ? "/tmp/console,1.log" : NULL,
        .graphics_console = b & 0x40,
        .has_memory_backing = true,
        .memory_backing = (b & 0x80) ? UVM_MEMORY_PHYSICAL : UVM_MEMORY_VIRTUAL,
    };
}

/* The command line of a cold VM, or of a clone of a template (same devices, -incoming), built
 * from the merged document and checked. */
static void
build_and_check(json_t *doc, bool clone)
{
    struct argv_ctx ctx = {.qemu = "qemu-system-x86_64",
                           .accel = "tcg",
                           .bios = "/usr/share/qemu/qboot.rom",
                           .name = "fuzz",
                           .rundir = RUNDIR,
                           .clone = clone};
    char **argv = NULL;
    /* relative image paths are the images of the work directory */
    if (chdir(workdir) < 0)
        abort();
    int rc = argv_build(doc, &ctx, &argv);
    if (fchdir(cwd_fd) < 0)
        abort();
    FUZZ_CHECK(rc == 0 || rc == UVM_E_INVALID_ARGUMENT || rc == UVM_E_NOT_FOUND, "argv: %d %s", rc,
               uvm_last_error());
    if (rc != 0)
        return;
    json_t *dev0 = json_object_get(
        json_object_get(json_object_get(json_object_get(json_object_get(doc, "VirtualMachine"),
                                                        "Devices"),
                                        "VirtualPMem"),
                        "Devices"),
        "0");
    const char *pmem0 = json_string_value(json_object_get(dev0, "HostPath"));
    check_argv(argv, pmem0, clone);
    check_join(argv);
    const char *files[4];
    FUZZ_CHECK(argv_host_files(doc, files) == 0, "host files");
    for (size_t i = 0; files[i]; i++)
        FUZZ_CHECK(i < 3, "more than 3 host files");
    argv_free(argv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    struct uvm_config c;
    config_for(fuzz_u8(&in), &c);
    char *extra = strndup((const char *)in.data, in.len);
    json_t *doc = document_build(&c);
    int rc = document_merge(doc, extra);
    FUZZ_CHECK(rc == 0 || rc == UVM_E_INVALID_ARGUMENT, "merge: %d", rc);
    if (rc == 0) {
        build_and_check(doc, false);
        build_and_check(doc, true);
    }
    json_decref(doc);
    free(extra);
    return 0;
}

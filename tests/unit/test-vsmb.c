/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VSMB on a windows VM (created, never started): hcsshim's bookkeeping through the VM document
 * (VirtualMachine.Devices.VirtualSmb.Shares): TestVSMB's 64 adds and removes, hex share names,
 * guest paths, hcsshim's error texts, the document pointers staying valid, concurrent callers;
 * and Plan9, which windows VMs do not have. On linux a share is a virtiofsd: its command line
 * for each option mapping. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testsh.h"
#include <jansson.h>

#include "argv.h"
#include "uvm.h"
#include "virtiofsd.h"

#define VM_ID "vsmb-unit"
#define VSMB_PREFIX "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\"
#define NMORE 16

static char dir[64], base[128], scratch[128], share_a[128], more[NMORE][128];
static struct uvm *vm;

/* hcsshim TestVSMB's options */
static const struct uvm_vsmb_options test_options = {.read_only = true,
                                                     .pseudo_oplocks = true,
                                                     .take_backup_privilege = true,
                                                     .cache_io = true,
                                                     .share_read = true};

static int
group_setup(void **state)
{
    strcpy(dir, "/tmp/uvm-vsmb-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(base, sizeof(base), "%s/base", dir);
    snprintf(scratch, sizeof(scratch), "%s/scratch", dir);
    snprintf(share_a, sizeof(share_a), "%s/share/a", dir);
    unit_sh("mkdir -p '%s/UtilityVM' '%s' '%s/run'", base, share_a, dir);
    for (int i = 0; i < NMORE; i++) {
        snprintf(more[i], sizeof(more[i]), "%s/share/m%d", dir, i);
        unit_sh("mkdir -p '%s'", more[i]);
    }
    char run[96];
    snprintf(run, sizeof(run), "%s/run", dir);
    setenv("UVM_RUNTIME_DIR", run, 1);
    return 0;
}

static int
group_teardown(void **state)
{
    unsetenv("UVM_RUNTIME_DIR");
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A windows VM as test-options makes one: a base layer with UtilityVM/, a scratch folder (its
 * sandbox.vhdx made by qemu-img on the first create). */
static int
setup(void **state)
{
    const char *layers[] = {base, scratch};
    struct uvm_options o = {.id = VM_ID,
                            .operating_system = "windows",
                            .layer_folders = layers,
                            .layer_folder_count = 2};
    vm = NULL;
    int rc = uvm_create(&o, &vm);
    if (rc < 0)
        fail_msg("uvm_create: %s", uvm_last_error());
    assert_string_equal(uvm_os(vm), "windows");
    return 0;
}

static int
teardown(void **state)
{
    uvm_close(vm);
    vm = NULL;
    return 0;
}

/* ---- the document ---- */

/* VirtualMachine.Devices.VirtualSmb.Shares of the current document (new reference). */
static json_t *
doc_shares(void)
{
    json_error_t err;
    json_t *doc = json_loads(uvm_document(vm), 0, &err);
    if (!doc)
        fail_msg("the document is not JSON: %s", err.text);
    json_t *shares = json_object_get(
        json_object_get(json_object_get(json_object_get(doc, "VirtualMachine"), "Devices"),
                        "VirtualSmb"),
        "Shares");
    assert_true(json_is_array(shares));
    json_incref(shares);
    json_decref(doc);
    return shares;
}

/* The share named name in the document (new reference) or NULL. */
static json_t *
doc_share(const char *name)
{
    json_t *shares = doc_shares();
    json_t *found = NULL;
    for (size_t i = 0; i < json_array_size(shares) && !found; i++) {
        json_t *s = json_array_get(shares, i);
        if (!strcmp(json_string_value(json_object_get(s, "Name")), name))
            found = json_incref(s);
    }
    json_decref(shares);
    return found;
}

/* The names in the document, in order, joined by ','. */
static char *
doc_names(void)
{
    json_t *shares = doc_shares();
    char *out = calloc(1, 4096);
    for (size_t i = 0; i < json_array_size(shares); i++) {
        if (i)
            strcat(out, ",");
        strcat(out, json_string_value(json_object_get(json_array_get(shares, i), "Name")));
    }
    json_decref(shares);
    return out;
}

static void
assert_names(const char *want)
{
    char *names = doc_names();
    assert_string_equal(names, want);
    free(names);
}

static void
assert_uvm_path(const char *host, const char *want)
{
    char *p = NULL;
    int rc = uvm_get_vsmb_uvm_path(vm, host, &p);
    if (rc < 0)
        fail_msg("get vsmb uvm path '%s': %s", host, uvm_last_error());
    assert_string_equal(p, want);
    free(p);
}

static void __attribute__((format(printf, 3, 4)))
assert_error(int rc, int want_rc, const char *fmt, ...)
{
    char want[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof(want), fmt, ap);
    va_end(ap);
    assert_int_equal(rc, want_rc);
    assert_string_equal(uvm_last_error(), want);
}

/* Options of a share: exactly the five TestVSMB flags are true (any other flag present is
 * false). */
static void
assert_test_options(const json_t *opts)
{
    static const char *const want[] = {"ReadOnly", "ShareRead", "CacheIo", "TakeBackupPrivilege",
                                       "PseudoOplocks"};
    assert_true(json_is_object(opts));
    const char *key;
    json_t *v;
    size_t n_true = 0;
    json_object_foreach((json_t *)opts, key, v) {
        assert_true(json_is_boolean(v));
        bool expected = false;
        for (size_t i = 0; i < 5; i++)
            expected |= !strcmp(key, want[i]);
        if (json_is_true(v) != expected)
            fail_msg("Options.%s is %s", key, json_is_true(v) ? "true" : "false");
        n_true += json_is_true(v);
    }
    assert_int_equal(n_true, 5);
}

/* ---- tests ---- */

/* hcsshim TestVSMB on a windows VM: 64 adds of one path -> one share s1; 63 removes keep it,
 * the 64th removes it from the document. */
static void
test_add_64(void **state)
{
    for (int i = 0; i < 64; i++)
        if (uvm_add_vsmb(vm, share_a, "{\"Settings\":{\"x\":1}}", &test_options) < 0)
            fail_msg("add #%d: %s", i, uvm_last_error());
    assert_names("os,s1");
    json_t *s = doc_share("s1");
    assert_non_null(s);
    assert_int_equal(json_object_size(s), 3);
    assert_string_equal(json_string_value(json_object_get(s, "Path")), share_a);
    assert_test_options(json_object_get(s, "Options"));
    json_decref(s);
    assert_uvm_path(share_a, VSMB_PREFIX "s1");
    assert_uvm_path(share_a,
                    "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\s1");

    for (int i = 0; i < 63; i++)
        assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
    assert_names("os,s1");
    assert_uvm_path(share_a, VSMB_PREFIX "s1");
    assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
    assert_names("os");

    char *p = (char *)"untouched";
    assert_error(uvm_get_vsmb_uvm_path(vm, share_a, &p), UVM_E_NOT_FOUND,
                 "%s not found as VSMB share in " VM_ID, share_a);
    assert_null(p);
    assert_error(uvm_remove_vsmb(vm, share_a), UVM_E_NOT_ATTACHED,
                 "%s is not present as a VSMB share in " VM_ID ", cannot remove", share_a);
}

/* What HCS would be given is hcsshim's VirtualSmbShare, whose option fields are all
 * `omitempty`: the share object holds the true flags only, like the "os" share next to it. */
static void
test_document_share_object(void **state)
{
    assert_int_equal(uvm_add_vsmb(vm, share_a, NULL, &test_options), 0);
    json_t *want = json_pack("{s:s, s:s, s:{s:b, s:b, s:b, s:b, s:b}}", "Name", "s1", "Path",
                             share_a, "Options", "ReadOnly", 1, "ShareRead", 1, "CacheIo", 1,
                             "TakeBackupPrivilege", 1, "PseudoOplocks", 1);
    json_t *got = doc_share("s1");
    assert_non_null(got);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "share in the document: %s\nhcsshim's:              %s\n", g, w);
        free(g);
        free(w);
        fail_msg("the share object differs from hcsshim's");
    }
    json_decref(got);
    json_decref(want);
}

/* Names count in hex (hcsshim: "s" + strconv.FormatUint(counter, 16)) and are never reused. */
static void
test_names_hex(void **state)
{
    assert_int_equal(uvm_add_vsmb(vm, share_a, NULL, &test_options), 0);
    for (int i = 0; i < NMORE; i++)
        assert_int_equal(uvm_add_vsmb(vm, more[i], NULL, NULL), 0);
    static const char *const names[NMORE] = {"s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
                                             "sa", "sb", "sc", "sd", "se", "sf", "s10", "s11"};
    for (int i = 0; i < NMORE; i++) {
        char want[128];
        snprintf(want, sizeof(want), VSMB_PREFIX "%s", names[i]);
        assert_uvm_path(more[i], want);
        json_t *s = doc_share(names[i]);
        assert_non_null(s);
        assert_string_equal(json_string_value(json_object_get(s, "Path")), more[i]);
        json_decref(s);
    }
    assert_names("os,s1,s2,s3,s4,s5,s6,s7,s8,s9,sa,sb,sc,sd,se,sf,s10,s11");
    /* a remove in the middle takes that share only */
    assert_int_equal(uvm_remove_vsmb(vm, more[8]), 0);
    assert_names("os,s1,s2,s3,s4,s5,s6,s7,s8,s9,sb,sc,sd,se,sf,s10,s11");
    assert_uvm_path(more[9], VSMB_PREFIX "sb");
    /* a path added again after its removal gets a new name */
    assert_int_equal(uvm_add_vsmb(vm, more[8], NULL, NULL), 0);
    assert_uvm_path(more[8], VSMB_PREFIX "s12");
    assert_names("os,s1,s2,s3,s4,s5,s6,s7,s8,s9,sb,sc,sd,se,sf,s10,s11,s12");
    assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
    for (int i = 0; i < NMORE; i++)
        assert_int_equal(uvm_remove_vsmb(vm, more[i]), 0);
    assert_names("os");
}

/* A re-add only takes a reference: other options are ignored, the document is not rewritten. */
static void
test_readd_keeps_first_options(void **state)
{
    assert_int_equal(uvm_add_vsmb(vm, share_a, NULL, &test_options), 0);
    const char *before = uvm_document(vm);
    struct uvm_vsmb_options other = {.no_oplocks = true, .no_locks = true};
    assert_int_equal(uvm_add_vsmb(vm, share_a, "{}", &other), 0);
    assert_int_equal(uvm_add_vsmb(vm, share_a, NULL, NULL), 0);
    assert_ptr_equal(uvm_document(vm), before);
    json_t *s = doc_share("s1");
    assert_test_options(json_object_get(s, "Options"));
    json_decref(s);
    for (int i = 0; i < 3; i++)
        assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
    assert_names("os");
}

/* Windows paths go into the document as given (JSON-escaped). */
static void
test_windows_path(void **state)
{
    const char *win = "C:\\ProgramData\\docker\\\"quoted\" dir\\\xc3\xbc";
    assert_int_equal(uvm_add_vsmb(vm, win, NULL, NULL), 0);
    json_t *s = doc_share("s1");
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "Path")), win);
    json_decref(s);
    assert_uvm_path(win, VSMB_PREFIX "s1");
    assert_int_equal(uvm_remove_vsmb(vm, win), 0);
    assert_names("os");
}

static void
test_errors(void **state)
{
    char *p = (char *)"untouched";
    assert_error(uvm_get_vsmb_uvm_path(vm, "", &p), UVM_E_INVALID_ARGUMENT,
                 "no hostPath passed to GetVSMBUvmPath");
    assert_null(p);
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, NULL, &p), UVM_E_INVALID_ARGUMENT);
    assert_string_equal(uvm_last_error(), "no hostPath passed to GetVSMBUvmPath");
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, share_a, NULL), UVM_E_INVALID_ARGUMENT);
    assert_error(uvm_get_vsmb_uvm_path(vm, share_a, &p), UVM_E_NOT_FOUND,
                 "%s not found as VSMB share in " VM_ID, share_a);
    assert_error(uvm_remove_vsmb(vm, "/no/such/share"), UVM_E_NOT_ATTACHED,
                 "/no/such/share is not present as a VSMB share in " VM_ID ", cannot remove");
    assert_int_equal(uvm_remove_vsmb(vm, ""), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_vsmb(vm, "", NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_int_equal(uvm_add_vsmb(vm, NULL, NULL, NULL), UVM_E_INVALID_ARGUMENT);

    /* a guest request that is not JSON: refused before anything is recorded */
    const char *before = uvm_document(vm);
    static const char *const bad[] = {"not json", "", "{\"a\":", "{} trailing"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(uvm_add_vsmb(vm, share_a, bad[i], &test_options),
                         UVM_E_INVALID_ARGUMENT);
        assert_non_null(strstr(uvm_last_error(), share_a));
    }
    assert_ptr_equal(uvm_document(vm), before);
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, share_a, &p), UVM_E_NOT_FOUND);
    assert_int_equal(uvm_remove_vsmb(vm, share_a), UVM_E_NOT_ATTACHED);
    /* and no name was used up */
    assert_int_equal(uvm_add_vsmb(vm, share_a, "[1, 2]", NULL), 0);
    assert_uvm_path(share_a, VSMB_PREFIX "s1");
    assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
}

/* A pointer returned by uvm_document stays readable after changes (until uvm_close); ASan
 * would report a use after free. An add then a remove gives back the first document. */
static void
test_document_pointers_stay_valid(void **state)
{
    const char *d0 = uvm_document(vm);
    char *copy0 = strdup(d0);
    assert_int_equal(uvm_add_vsmb(vm, share_a, NULL, &test_options), 0);
    const char *d1 = uvm_document(vm);
    char *copy1 = strdup(d1);
    assert_ptr_not_equal(d1, d0);
    assert_string_equal(d0, copy0); /* reads every byte of the old text */
    assert_null(strstr(d0, share_a));
    assert_non_null(strstr(d1, share_a));
    assert_int_equal(uvm_add_vsmb(vm, more[0], NULL, NULL), 0);
    assert_int_equal(uvm_remove_vsmb(vm, more[0]), 0);
    assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
    const char *d2 = uvm_document(vm);
    assert_string_equal(d0, copy0);
    assert_string_equal(d1, copy1);
    json_t *j0 = json_loads(d0, 0, NULL), *j2 = json_loads(d2, 0, NULL);
    assert_non_null(j0);
    assert_non_null(j2);
    assert_true(json_equal(j0, j2));
    json_decref(j0);
    json_decref(j2);
    free(copy0);
    free(copy1);
}

/* Many threads: each adds one path of its own and a path they all share, reads the document
 * and the guest paths, then removes; names stay unique, the document ends as it began. */
#define NTHREADS 8
#define ROUNDS 50

struct worker {
    int i;
    char err[256];
};

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    const char *own = more[w->i];
    for (int r = 0; r < ROUNDS && !w->err[0]; r++) {
        char *p = NULL;
        if (uvm_add_vsmb(vm, share_a, NULL, &test_options) < 0 ||
            uvm_add_vsmb(vm, own, NULL, NULL) < 0 || uvm_get_vsmb_uvm_path(vm, own, &p) < 0) {
            snprintf(w->err, sizeof(w->err), "add: %s", uvm_last_error());
            break;
        }
        const char *d = uvm_document(vm);
        if (strncmp(p, VSMB_PREFIX "s", strlen(VSMB_PREFIX) + 1) || !strstr(d, "VirtualSmb"))
            snprintf(w->err, sizeof(w->err), "path '%s'", p);
        free(p);
        if (uvm_remove_vsmb(vm, own) < 0 || uvm_remove_vsmb(vm, share_a) < 0)
            snprintf(w->err, sizeof(w->err), "remove: %s", uvm_last_error());
    }
    return NULL;
}

static void
test_concurrent(void **state)
{
    /* held throughout, so that s1 stays share_a's */
    assert_int_equal(uvm_add_vsmb(vm, share_a, NULL, &test_options), 0);
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.i = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].err[0])
            fail_msg("thread %d: %s", i, w[i].err);
    }
    assert_names("os,s1");
    assert_uvm_path(share_a, VSMB_PREFIX "s1");
    assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
    assert_names("os");
    /* every own-path add was a new share: 1 + NTHREADS * ROUNDS names used */
    assert_int_equal(uvm_add_vsmb(vm, share_a, NULL, NULL), 0);
    char want[128];
    snprintf(want, sizeof(want), VSMB_PREFIX "s%x", 2 + NTHREADS * ROUNDS);
    assert_uvm_path(share_a, want);
    assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
}

/* hcsshim: Plan9 is for linux utility VMs only. */
static void
test_plan9_not_supported(void **state)
{
    assert_int_equal(uvm_add_plan9(vm, share_a, "/mnt/x", false), UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "not supported"));
    assert_int_equal(uvm_add_plan9(vm, share_a, "/mnt/x", true), UVM_E_NOT_SUPPORTED);
    assert_int_equal(uvm_remove_plan9(vm, share_a), UVM_E_NOT_SUPPORTED);
    assert_non_null(strstr(uvm_last_error(), "not supported"));
    assert_names("os");
}

/* A host path that is not UTF-8 cannot go into the JSON document: refused, nothing recorded.
 * (json_pack fails on it; the add must not go on with a NULL share object.) Last: today it
 * crashes the binary. */
static void
test_non_utf8_path(void **state)
{
    const char *bad = "/tmp/share-\xff\xfe";
    const char *before = uvm_document(vm);
    assert_int_equal(uvm_add_vsmb(vm, bad, NULL, NULL), UVM_E_INVALID_ARGUMENT);
    assert_ptr_equal(uvm_document(vm), before);
    char *p = NULL;
    assert_int_equal(uvm_get_vsmb_uvm_path(vm, bad, &p), UVM_E_NOT_FOUND);
    assert_names("os");
    assert_int_equal(uvm_add_vsmb(vm, share_a, NULL, NULL), 0);
    assert_uvm_path(share_a, VSMB_PREFIX "s1");
    assert_int_equal(uvm_remove_vsmb(vm, share_a), 0);
}

/* ---- linux: the virtiofsd command line ---- */

static char *
joined(char **argv)
{
    size_t len = 1;
    for (char **a = argv; *a; a++)
        len += strlen(*a) + 1;
    char *out = calloc(1, len);
    for (char **a = argv; *a; a++) {
        if (a != argv)
            strcat(out, " ");
        strcat(out, *a);
    }
    argv_free(argv);
    return out;
}

static void
test_linux_daemon_argv(void **state)
{
    static const struct {
        struct uvm_vsmb_options o;
        const char *extra;
    } cases[] = {
        {{0}, "-o cache=auto"},
        {{.read_only = true, .share_read = true}, "-o cache=auto"},
        {{.cache_io = true}, "-o cache=always"},
        {{.non_cache_io = true, .cache_io = true}, "-o cache=none"},
        {{.no_directmap = true}, "-o cache=none"},
        {{.no_locks = true, .cache_io = true},
         "-o cache=always -o no_posix_lock -o no_flock"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[512];
        /* namespace sandbox; no mknod, setfcap or fsetid; never xattr (off by default) */
        snprintf(want, sizeof(want),
                 VIRTIOFSD " --socket-path=/run/uvm/x/vsmb/s1.sock -o source=/run/uvm/x/vsmb/s1 "
                           "-o sandbox=namespace -o modcaps=-mknod:-setfcap:-fsetid %s",
                 cases[i].extra);
        char *got = joined(virtiofsd_argv(&cases[i].o, "/run/uvm/x/vsmb/s1",
                                          "/run/uvm/x/vsmb/s1.sock"));
        assert_string_equal(got, want);
        free(got);
    }
}

int
main(void)
{
    if (system("command -v qemu-img >/dev/null") != 0) {
        printf("SKIP: qemu-img is not installed (a windows VM's scratch is made with it)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linux_daemon_argv),
        cmocka_unit_test_setup_teardown(test_add_64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_share_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_hex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readd_keeps_first_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_windows_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_pointers_stay_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan9_not_supported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_utf8_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

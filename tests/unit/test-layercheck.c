/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest's CombinedLayers path checks and overlay options (src/guest/layercheck.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "layercheck.h"

static void
test_paths(void **state)
{
    const char *why = NULL;
    assert_true(layers_path_ok("/tmp/p0", &why));
    assert_true(layers_path_ok("/run/gcs/c/1/rootfs", &why));
    const char *bad[] = {"", "tmp/p0", "/", "/tmp/", "/tmp//p0", "/tmp/./p0", "/tmp/../etc",
                         "/..", "/a:b", "/a,b", "/a\\b", "/a\nb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_false(layers_path_ok(bad[i], &why));
        assert_non_null(why);
    }
    char longp[LAYERS_PATH_MAX + 2];
    memset(longp, 'a', sizeof(longp));
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_false(layers_path_ok(longp, &why));
    assert_string_equal(why, "too long");
}

static void
test_options(void **state)
{
    char out[LAYERS_OPTIONS_MAX + 1], err[160];
    const char *two[] = {"/tmp/p4", "/tmp/p5"};
    assert_int_equal(layers_options("/r", two, 2, "", out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "lowerdir=/tmp/p4:/tmp/p5");
    assert_int_equal(layers_options("/r", two, 2, "/s", out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "lowerdir=/tmp/p4:/tmp/p5,upperdir=/s/upper,workdir=/s/work");
    const char *bad[] = {"/tmp/p4", "/tmp/../x"};
    assert_int_equal(layers_options("/r", bad, 2, "", out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "Layers[1].Path"));
    assert_int_equal(layers_options("r", two, 2, "", out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ContainerRootPath"));
    assert_int_equal(layers_options("/r", two, 2, "/s:x", out, sizeof(out), err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "ScratchPath"));
    assert_int_equal(layers_options("/r", two, 0, "", out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "Layers"));
    const char *many[LAYERS_MAX + 1];
    for (size_t i = 0; i <= LAYERS_MAX; i++)
        many[i] = "/tmp/p0";
    assert_int_equal(layers_options("/r", many, LAYERS_MAX + 1, "", out, sizeof(out), err,
                                    sizeof(err)),
                     -1);
    /* LAYERS_MAX layers of the longest path do not fit one page */
    static char longp[LAYERS_PATH_MAX];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    for (size_t i = 0; i < LAYERS_MAX; i++)
        many[i] = longp;
    assert_int_equal(layers_options("/r", many, LAYERS_MAX, "", out, sizeof(out), err,
                                    sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "longer than"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

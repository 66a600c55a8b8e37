/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A QMP client connected to the fake QMP peer, for the unit tests of what sits on the client
 * (fake-qmp.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fake-qmp.h"
#include "qmp.h"
#include "timeutil.h"

struct qmp *
fake_qmp_client(const struct fake_qmp_step *steps, size_t n, struct fake_qmp **f)
{
    struct fake_qmp_step *all = xcalloc(n + 1, sizeof(*all));
    all[0] = (struct fake_qmp_step)FAKE_QMP_HANDSHAKE();
    memcpy(all + 1, steps, n * sizeof(*steps));
    int fd = -1;
    *f = fake_qmp_start(all, n + 1, &fd);
    free(all);
    struct qmp *q = qmp_new(fd, "vm1");
    assert_non_null(q);
    assert_int_equal(qmp_handshake(q, deadline_after_ms(5000)), 0);
    return q;
}

void
fake_qmp_client_finish(struct qmp *q, struct fake_qmp *f)
{
    qmp_free(q);
    cleanup_free char *failure = NULL;
    if (fake_qmp_finish(f, &failure) < 0)
        fail_msg("fake QMP: %s", failure);
    fake_qmp_free(f);
}

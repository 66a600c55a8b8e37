/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests that set up real files and mounts: run a shell command, fail the test if it fails. */
#ifndef UVM_TESTS_TESTSH_H
#define UVM_TESTS_TESTSH_H

void unit_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers for integration tests against real QEMU VMs booted from the project's boot files. */
#ifndef UVM_TESTS_ITEST_H
#define UVM_TESTS_ITEST_H

#include <stdbool.h>
#include <stddef.h>

#include "uvm.h"

/* Exit 77 (skip) with a reason when the boot files or QEMU are missing; set up a private
 * UVM_RUNTIME_DIR. Call first in main(). */
void itest_init(void);
/* uvm_start, retried once (loudly) when it times out: see docs/design.md "Known problems". */
int itest_start(struct uvm *vm);
/* Create + start a linux VM with default options and the given ID (NULL: generated).
 * $UVM_TEST_CONSOLE: write its serial console there; $UVM_TEST_KERNEL_ARGS: extra kernel
 * arguments (for debugging a test). */
struct uvm *itest_boot(const char *id);

struct itest_run {
    char *out, *err; /* NUL-terminated captured output */
    size_t out_len, err_len;
    int exit_code;
};
/* Run argv in vm; stdin gets `in` (NULL: no stdin pipe). Returns uvm_process_wait's code. */
int itest_run(struct uvm *vm, const char *const *argv, const char *in, struct itest_run *r);
/* The same in guest network namespace netns (NULL: the root one). */
int itest_run_in(struct uvm *vm, const char *netns, const char *const *argv, const char *in,
                 struct itest_run *r);
/* Feed `in` (NULL: nothing) to p's stdin, capture its stdout/stderr (pipes not created count
 * as empty), wait and close p (consumed). r is initialised by the call. */
int itest_collect(struct uvm_process *p, const char *in, struct itest_run *r);
void itest_run_free(struct itest_run *r);

/* main()'s exit status after the tests: removes the private runtime directory; 1 when tests
 * failed or the directory could not be removed. */
int itest_finish(int failed);
/* Run a host shell command and return its standard output (caller frees). */
char *itest_host_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a host shell command; fails the test unless it exits 0. */
void itest_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a shell command in the guest; returns its stdout (caller frees); fails the test unless it
 * exits 0. itest_guest_count: its output as a number. */
char *itest_guest(struct uvm *vm, const char *cmd);
int itest_guest_count(struct uvm *vm, const char *cmd);

/* What a terminal (or any stream) fd has said so far; `mark` is where the next itest_expect()
 * starts looking. Zero-initialise; itest_tbuf_free. */
struct itest_tbuf {
    char *data;
    size_t len, mark;
    bool eof;
};
#define ITEST_WAIT_MS 180000 /* a failure bound for output that never comes, not a timing check */
void itest_tbuf_free(struct itest_tbuf *b);
/* Read once from fd into b (waiting at most ITEST_WAIT_MS, then the test fails): false at
 * end-of-file (EIO, as a host pty master says it, counts as end-of-file). */
bool itest_tbuf_fill(int fd, struct itest_tbuf *b);
/* Read until `needle` appears after the mark: the text from the mark to its end (caller
 * frees); the mark moves past it. Fails the test at end-of-file. */
char *itest_expect(int fd, struct itest_tbuf *b, const char *needle);
/* Read to end-of-file: the text after the mark (caller frees). */
char *itest_expect_eof(int fd, struct itest_tbuf *b);
/* Write all of text to fd (the test fails otherwise). */
void itest_type(int fd, const char *text);

/* True when a process with this pid exists. */
bool itest_pid_alive(int pid);
/* Pid of the QEMU process of VM id (found by its -name guest=<id>), or -1. */
int itest_qemu_pid(const char *id);
/* Our open fds, but the library's pidfd of this process (its spawner thread's, spawn.h: it
 * lives as long as the process). */
int itest_open_fds(void);
/* Runtime directory base used by the tests. */
const char *itest_runtime_dir(void);

/* Mount points (from /proc/self/mountinfo) at or below path, also when path names a symlink or
 * has a trailing slash (both spellings are compared). */
int itest_mounts_below(const char *path);
/* Lazily detach every mount at or below path, deepest first. Returns how many. */
int itest_umount_below(const char *path);
/* itest_umount_below, then rm -rf: never deletes through a bind mount left by a failed test. */
void itest_rm_rf(const char *path);
/* A listing of the tree at path (relative names, types, modes, owners, sizes and content
 * checksums), to compare before and after (caller frees). */
char *itest_tree(const char *path);

#endif

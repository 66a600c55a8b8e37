/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Attacks on a template's directory and files (tpldir.h) and on the save's RAM source
 * (vmm_open_fd): a careless operator's directory (another user's, world-writable, a symlink,
 * not empty), a second save into the same directory, files swapped for symlinks, FIFOs or
 * another owner's, a state file altered after the save (same size, one byte), and a QEMU that
 * put a FIFO without a writer where its RAM fd was.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "error.h"
#include "hash.h"
#include "tpldir.h"
#include "tplfile.h"
#include "vmm.h"

#define NOBODY 65534

struct base {
    char path[64];
};

static int
setup(void **state)
{
    struct base *b = calloc(1, sizeof(*b));
    snprintf(b->path, sizeof(b->path), "/tmp/uvm-tpldir-XXXXXX");
    if (!mkdtemp(b->path))
        return -1;
    *state = b;
    return 0;
}

static int
teardown(void **state)
{
    struct base *b = *state;
    cleanup_free char *cmd = xasprintf("rm -rf '%s'", b->path);
    if (system(cmd) != 0)
        return -1;
    free(b);
    return 0;
}

static char *
at(const struct base *b, const char *name)
{
    return xasprintf("%s/%s", b->path, name);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
expect_error(int rc, int code, const char *text)
{
    assert_int_equal(rc, code);
    if (!strstr(uvm_last_error(), text))
        fail_msg("'%s' does not say '%s'", uvm_last_error(), text);
}

static void
test_save_dir_refusals(void **state)
{
    struct base *b = *state;
    int fd = -1;
    bool created = false;
    /* A symlink at the path: refused, its target untouched. */
    cleanup_free char *target = at(b, "elsewhere"), *link = at(b, "link");
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_true(tpldir_open_save(link, &fd, &created) < 0);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(uvm_last_error(), "a symlink?"));
    /* World-writable, another user's, not empty. */
    cleanup_free char *ww = at(b, "ww"), *other = at(b, "other"), *full = at(b, "full");
    assert_int_equal(mkdir(ww, 0700), 0);
    assert_int_equal(chmod(ww, 0777), 0);
    expect_error(tpldir_open_save(ww, &fd, &created), UVM_E_INVALID_ARGUMENT,
                 "group or world writable");
    if (geteuid() == 0) {
        assert_int_equal(mkdir(other, 0700), 0);
        assert_int_equal(chown(other, NOBODY, NOBODY), 0);
        expect_error(tpldir_open_save(other, &fd, &created), UVM_E_INVALID_ARGUMENT,
                     "is owned by uid 65534");
    }
    assert_int_equal(mkdir(full, 0700), 0);
    cleanup_free char *f = at(b, "full/x");
    write_file(f, "x", 0600);
    expect_error(tpldir_open_save(full, &fd, &created), UVM_E_ALREADY_EXISTS, "not empty");
    assert_int_equal(access(f, F_OK), 0);
    /* A new one: created 0700. */
    cleanup_free char *fresh = at(b, "fresh");
    assert_int_equal(tpldir_open_save(fresh, &fd, &created), 0);
    assert_true(created);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    close(fd);
}

static void
test_second_save_refused(void **state)
{
    struct base *b = *state;
    cleanup_free char *dir = at(b, "tpl");
    int first = -1, second = -1;
    bool c1 = false, c2 = false;
    assert_int_equal(tpldir_open_save(dir, &first, &c1), 0);
    assert_true(c1);
    /* The directory is empty still: only the lock tells the second save off. */
    expect_error(tpldir_open_save(dir, &second, &c2), UVM_E_ALREADY_EXISTS, "another save into");
    assert_int_equal(second, -1);
    assert_false(c2);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0); /* the refused save did not remove the first's dir */
    close(first);
    assert_int_equal(tpldir_open_save(dir, &second, &c2), 0);
    assert_false(c2);
    close(second);
}

static void
test_clone_dir_refusals(void **state)
{
    struct base *b = *state;
    int fd = -1;
    cleanup_free char *dir = at(b, "tpl"), *missing = at(b, "missing");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(tpldir_open(dir, &fd), 0);
    close(fd);
    expect_error(tpldir_open(missing, &fd), UVM_E_NOT_FOUND, "missing");
    assert_int_equal(chmod(dir, 0757), 0);
    expect_error(tpldir_open(dir, &fd), UVM_E_INVALID_ARGUMENT, "group or world writable");
    assert_int_equal(fd, -1);
    assert_int_equal(chmod(dir, 0700), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(dir, NOBODY, NOBODY), 0);
        expect_error(tpldir_open(dir, &fd), UVM_E_INVALID_ARGUMENT, "is owned by uid 65534");
    }
}

static void
test_part_refusals(void **state)
{
    struct base *b = *state;
    int dfd = open(b->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;
    struct stat st;
    cleanup_free char *ram = at(b, "ram"), *elsewhere = at(b, "elsewhere");
    write_file(elsewhere, "0123456789", 0600);
    /* A symlink to a file of the right size: not followed. */
    assert_int_equal(symlink(elsewhere, ram), 0);
    expect_error(tpldir_part(dfd, b->path, "ram", 10, &fd, &st), -ELOOP, "(a symlink)");
    assert_int_equal(unlink(ram), 0);
    /* A FIFO without a writer: refused at once, the open does not wait. */
    assert_int_equal(mkfifo(ram, 0600), 0);
    expect_error(tpldir_part(dfd, b->path, "ram", 10, &fd, &st), UVM_E_INVALID_ARGUMENT,
                 "not a regular file");
    assert_int_equal(unlink(ram), 0);
    write_file(ram, "0123456789", 0600);
    assert_int_equal(tpldir_part(dfd, b->path, "ram", 10, &fd, &st), 0);
    close(fd);
    expect_error(tpldir_part(dfd, b->path, "ram", 4096, &fd, &st), UVM_E_INVALID_ARGUMENT,
                 "has 10 bytes, the manifest says 4096");
    assert_int_equal(chmod(ram, 0620), 0);
    expect_error(tpldir_part(dfd, b->path, "ram", 10, &fd, &st), UVM_E_INVALID_ARGUMENT,
                 "ram is group or world writable");
    assert_int_equal(chmod(ram, 0600), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(ram, NOBODY, NOBODY), 0);
        expect_error(tpldir_part(dfd, b->path, "ram", 10, &fd, &st), UVM_E_INVALID_ARGUMENT,
                     "ram is owned by uid 65534");
    }
    assert_int_equal(fd, -1);
    close(dfd);
}

static void
test_state_sealed_and_hashed(void **state)
{
    struct base *b = *state;
    const char *text = "QEVM\x00\x00\x00\x03 device state";
    size_t len = 9 + strlen(text + 9);
    cleanup_free char *path = at(b, "state");
    int w = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_int_equal(write(w, text, len), (ssize_t)len);
    uint64_t hash = 0;
    assert_int_equal(tpldir_hash_fd(w, len, &hash), 0);
    assert_int_equal(tpldir_hash_fd(w, len + 1, &hash), -EIO); /* shorter than claimed */
    assert_int_equal(tpldir_hash_fd(w, len, &hash), 0);
    assert_int_equal(hash, fnv1a64(FNV1A64_INIT, text, len));
    int dfd = open(b->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;
    assert_int_equal(tpldir_state_memfd(dfd, b->path, "state", len, hash, &fd), 0);
    /* What QEMU gets: the same bytes from offset 0, and nobody can change them any more. */
    char back[64] = {0};
    assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)len);
    assert_memory_equal(back, text, len);
    assert_int_equal(fcntl(fd, F_GET_SEALS) & (F_SEAL_WRITE | F_SEAL_SEAL),
                     F_SEAL_WRITE | F_SEAL_SEAL);
    errno = 0;
    assert_int_equal(pwrite(fd, "X", 1, 0), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(fd, 1), -1);
    cleanup_free char *proc = xasprintf("/proc/self/fd/%d", fd);
    int rw = open(proc, O_RDWR | O_CLOEXEC); /* QEMU could reopen it */
    if (rw >= 0) {
        assert_int_equal(write(rw, "X", 1), -1);
        assert_ptr_equal(mmap(NULL, 4096, PROT_WRITE, MAP_SHARED, rw, 0), MAP_FAILED);
        close(rw);
    }
    close(fd);
    /* One byte changed after the save, same size and owner: refused before QEMU reads it. */
    assert_int_equal(pwrite(w, "q", 1, 0), 1);
    expect_error(tpldir_state_memfd(dfd, b->path, "state", len, hash, &fd), UVM_E_INVALID_ARGUMENT,
                 "state is not the one saved");
    assert_int_equal(fd, -1);
    /* Truncated; and a manifest claiming a huge state. */
    assert_int_equal(ftruncate(w, 4), 0);
    expect_error(tpldir_state_memfd(dfd, b->path, "state", len, hash, &fd), UVM_E_INVALID_ARGUMENT,
                 "has 4 bytes");
    expect_error(tpldir_state_memfd(dfd, b->path, "state", TPLDIR_STATE_MAX + 1, hash, &fd),
                 UVM_E_INVALID_ARGUMENT, "is larger than");
    close(w);
    close(dfd);
}

static void
exited(void *opaque, struct vmm *v, int status)
{
    (void)opaque;
    (void)v;
    (void)status;
}

/* QEMU's fd 6 is a FIFO nobody writes (what a QEMU taken over by the guest could arrange): the
 * save's open of it returns at once, refused. */
static void
test_ram_source_fifo(void **state)
{
    struct base *b = *state;
    cleanup_free char *fifo = at(b, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int ram = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int sp[2], null = open("/dev/null", O_RDWR | O_CLOEXEC);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    char *const argv[] = {"sleep", "60", NULL};
    struct vmm_config c = {.argv = argv,
                           .qmp_fd = null,
                           .agent_fd = null,
                           .console_fd = sp[0],
                           .ram_fd = ram,
                           .console_reader = sp[1],
                           .fn = exited};
    struct vmm *v = NULL;
    assert_int_equal(vmm_spawn(&c, &v), 0);
    alarm(30); /* a regression hangs in open(): fail instead of waiting for meson */
    expect_error(vmm_open_fd(v, 6), UVM_E_PROTOCOL, "is not a regular file");
    alarm(0);
    vmm_free(v);
    close(sp[0]);
    close(ram);
    close(null);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_dir_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_save_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_dir_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_sealed_and_hashed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ram_source_fifo, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The program, as blocks: a header checks the architecture; then one block per system call
 * starts with "nr == this one?" and, when it is not, jumps over the rest of the block with the
 * accumulator still holding the number; a matching block ends in a return. The last
 * instruction allows whatever no block matched. Mode and flag arguments are read as their low
 * 32 bits (the kernel takes a umode_t / int from the register).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "cleanup.h"
#include "error.h"
#include "fsfilter.h"

#if defined(__x86_64__)
#define FSFILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FSFILTER_ARCH AUDIT_ARCH_AARCH64
#endif

/* Newer than the kernel headers we build against; the same number on every architecture. */
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

#define SETID_BITS (S_ISUID | S_ISGID)
#define CREATE_FLAGS (O_CREAT | (O_TMPFILE & ~O_DIRECTORY))

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]) + 4)
#endif

#define LD_ARG(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(i))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define RET_ERRNO(e) RET(SECCOMP_RET_ERRNO | ((e)&SECCOMP_RET_DATA))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define JSET(k, t, f) BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (t), (f))

static void
emit(struct fsfilter *f, const struct sock_filter *block, unsigned short n)
{
    if (f->n > FSFILTER_MAX_INSNS - n) {
        f->n = FSFILTER_MAX_INSNS + 1; /* marks the program as cut */
        return;
    }
    for (unsigned short i = 0; i < n; i++)
        f->insns[f->n++] = block[i];
}

/* EPERM when the mode argument has a set-id bit. */
static void
rule_mode(struct fsfilter *f, unsigned nr, unsigned mode_arg)
{
    const struct sock_filter b[] = {
        JEQ(nr, 0, 4),
        LD_ARG(mode_arg),
        JSET(SETID_BITS, 0, 1),
        RET_ERRNO(EPERM),
        RET(SECCOMP_RET_ALLOW),
    };
    emit(f, b, ARRAY_SIZE(b));
}

/* EPERM when the flags create a file and the mode has a set-id bit. */
static void
rule_open(struct fsfilter *f, unsigned nr, unsigned flags_arg, unsigned mode_arg)
{
    const struct sock_filter b[] = {
        JEQ(nr, 0, 6),
        LD_ARG(flags_arg),
        JSET(CREATE_FLAGS, 0, 3),
        LD_ARG(mode_arg),
        JSET(SETID_BITS, 0, 1),
        RET_ERRNO(EPERM),
        RET(SECCOMP_RET_ALLOW),
    };
    emit(f, b, ARRAY_SIZE(b));
}

/* EPERM for a character or block device, or a set-id bit. */
static void
rule_mknod(struct fsfilter *f, unsigned nr, unsigned mode_arg)
{
    const struct sock_filter b[] = {
        JEQ(nr, 0, 7),
        LD_ARG(mode_arg),
        JSET(SETID_BITS, 4, 0),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, S_IFMT),
        JEQ(S_IFCHR, 2, 0),
        JEQ(S_IFBLK, 1, 0),
        RET(SECCOMP_RET_ALLOW),
        RET_ERRNO(EPERM),
    };
    emit(f, b, ARRAY_SIZE(b));
}

static void
rule_deny(struct fsfilter *f, unsigned nr, int err)
{
    const struct sock_filter b[] = {
        JEQ(nr, 0, 1),
        RET_ERRNO(err),
    };
    emit(f, b, ARRAY_SIZE(b));
}

int
fsfilter_build(struct fsfilter *f)
{
    f->n = 0;
#ifndef FSFILTER_ARCH
    return uvm_error(UVM_E_NOT_SUPPORTED, "the file server's seccomp filter does not know this "
                     "architecture");
#else
    const struct sock_filter head[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        JEQ(FSFILTER_ARCH, 1, 0),
        RET(SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
        /* x32 system calls share the architecture with their own numbers */
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
        RET_ERRNO(ENOSYS),
#endif
    };
    emit(f, head, ARRAY_SIZE(head));
#ifdef __NR_chmod
    rule_mode(f, __NR_chmod, 1);
#endif
    rule_mode(f, __NR_fchmod, 1);
    rule_mode(f, __NR_fchmodat, 2);
    rule_mode(f, __NR_fchmodat2, 2);
#ifdef __NR_creat
    rule_mode(f, __NR_creat, 1);
#endif
#ifdef __NR_open
    rule_open(f, __NR_open, 1, 2);
#endif
    rule_open(f, __NR_openat, 2, 3);
#ifdef __NR_mkdir
    rule_mode(f, __NR_mkdir, 1);
#endif
    rule_mode(f, __NR_mkdirat, 2);
#ifdef __NR_mknod
    rule_mknod(f, __NR_mknod, 1);
#endif
    rule_mknod(f, __NR_mknodat, 2);
    rule_deny(f, __NR_openat2, ENOSYS);
    rule_deny(f, __NR_io_uring_setup, ENOSYS);
    const struct sock_filter allow = RET(SECCOMP_RET_ALLOW);
    emit(f, &allow, 1);
    if (f->n > FSFILTER_MAX_INSNS) /* a block did not fit: never load a cut program */
        return uvm_error(UVM_E_INVALID_STATE, "the file server's seccomp filter is too long");
    return 0;
#endif
}

int
fsfilter_install(void *arg)
{
    const struct fsfilter *f = arg;
    struct sock_fprog prog = {.len = f->n, .filter = (struct sock_filter *)f->insns};
    if (f->n == 0 || f->n > FSFILTER_MAX_INSNS)
        return -EINVAL;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        return -errno;
    return 0;
}

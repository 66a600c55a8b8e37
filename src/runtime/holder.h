/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The holder: one daemon per container (docs/runtime.md). `create` forks it (double fork,
 * setsid, stdio /dev/null, its log in the state directory); only then does it use libuvm, whose
 * threads would not survive a fork. It boots the VM, shares the bundle's root file system into
 * it (virtio-fs), creates the container, reports to `create` on a pipe, and then serves the
 * later calls and the stubs on its socket until `delete`, after which it closes the VM (QEMU and
 * virtiofsd gone) and exits.
 *
 * Processes (the init and each exec) are struct hproc: the shim's stdio descriptors (the host
 * side), the library's ends, the attached stub, and a thread that relays output, waits for the
 * guest process and sends the stub its exit status once the output has been written.
 */
#ifndef UVM_RUNTIME_HOLDER_H
#define UVM_RUNTIME_HOLDER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rtconfig.h"
#include "rtmsg.h"
#include "uvm.h"

#define HOLDER_MAX_PROCS 1024
#define HOLDER_MAX_CONNS 256

struct hproc {
    char name[RTMSG_NAME_MAX + 1];
    struct uvm_process *p; /* NULL for the init until started */
    int host[3];           /* the shim's stdin (read), stdout, stderr (write); -1 when closed */
    int lib[3];            /* the library's ends, -1 when absent */
    int stop_fd;           /* eventfd: the stdin relay stops */
    bool terminal;         /* on a guest terminal: host[0] and host[1] are a host pty's slave */
    int tty_fd;            /* a copy of that slave for its window size, -1; under the lock */
    unsigned users;        /* threads and callers using the record (under the lock): an exec
                            * is freed once exited, unused and its stub gone */
    pid_t stub_pid;        /* 0 until a stub attached */
    int stub_fd;           /* the attached stub's connection, -1 */
    bool running, exited;
    int status;
    int64_t started_us, exited_us;
};

struct holder_args {
    const char *id, *bundle, *created, *vm_id, *state_dir;
    struct rt_config cfg;
    int listen_fd; /* bound and listening */
    int result_fd; /* `create` reads "ok <pid>" or the error here */
    int log_fd;    /* holder.log */
    int stdio[3];  /* the init's stdin, stdout, stderr; with a terminal (cfg.terminal) the
                       * host pty's slave twice and -1 */
    bool debug;
};

struct holder {
    const struct holder_args *a;
    struct uvm *vm;
    struct uvm_container *ctr;
    pthread_mutex_t lock; /* procs, flags, counts */
    pthread_cond_t cond;
    pthread_mutex_t req_lock; /* one control request at a time */
    struct hproc *procs[HOLDER_MAX_PROCS];
    size_t nprocs;
    unsigned next_exec;
    unsigned live_threads; /* process threads still running */
    unsigned conns;        /* connection threads */
    bool deleted, vm_gone;
    int dead_fd; /* eventfd: the VM is gone or being deleted: relays stop */
    int done_fd; /* eventfd: delete finished: the holder exits */
    int64_t t0, boot_us, share_us, create_us, start_us, teardown_us;
};

/* Run the holder (in the forked child); never returns. */
void holder_main(struct holder_args *a) __attribute__((noreturn));

/* hproc.c: a process record with the host descriptors (consumed), added to h. NULL when the
 * table is full. */
/* Also frees the execs that are done for good. Under the holder's req_lock. */
struct hproc *hproc_add(struct holder *h, const char *name, const int host[3], bool terminal);
/* The init's record (the first; never freed). */
struct hproc *hproc_init(struct holder *h);
/* A process by name, held (hproc_put) so that it is not freed meanwhile; NULL when unknown. */
struct hproc *hproc_get(struct holder *h, const char *name);
void hproc_put(struct holder *h, struct hproc *p);
/* Start relaying and waiting for p (its struct uvm_process set): a detached thread. */
int hproc_run(struct holder *h, struct hproc *p);
/* The window size of p's host pty to its guest terminal (no-op without one). */
void hproc_resize(struct holder *h, struct hproc *p);
/* Kill p (an exec) if no stub attached to it within a minute. */
void hproc_watch_attach(struct holder *h, struct hproc *p);
/* A stub's connection after ATTACH: serve its SIGNALs until it goes; kill the guest process
 * when the stub goes first. Consumes fd. */
void hproc_stub(struct holder *h, struct hproc *p, int fd, pid_t pid);
/* Wait until every process thread finished, at most timeout_ms; false on timeout. */
bool hproc_wait_all(struct holder *h, int timeout_ms);

/* hreq.c: answer one request (m) on connection fd. ATTACH hands fd to hproc_stub and returns
 * true (fd taken); otherwise false (the caller closes fd). */
bool hreq_handle(struct holder *h, int fd, struct rtmsg *m);

/* holder.c: the log (holder.log), like libuvm's lines. */
void holder_log(struct holder *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

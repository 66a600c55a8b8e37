/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A container's state directory, <root>/<id> (mode 0700, made by create, removed by delete):
 *   state.json   what the calls after create need when the holder is gone: the bundle, the
 *                VM's id and runtime directory base, the holder's pid and start time
 *   holder.sock  the holder's socket (SOCK_SEQPACKET, rtmsg.h)
 *   holder.log   the holder's log (libuvm's lines, the phases and their times)
 * The socket is reached through the directory's descriptor (/proc/self/fd/N/holder.sock), so a
 * long --root or id never meets sun_path's 108 bytes.
 */
#ifndef UVM_RUNTIME_RTSTATE_H
#define UVM_RUNTIME_RTSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RT_STATE_FILE "state.json"
#define RT_SOCK_NAME "holder.sock"
#define RT_HOLDER_LOG "holder.log"
#define RT_STATE_MAX 65536

struct rt_state {
    char *id, *bundle, *rootfs, *created; /* created: RFC3339 */
    char *vm_id, *uvm_runtime_dir;        /* the VM's runtime directory is <dir>/<vm_id> */
    pid_t holder_pid, init_pid;           /* init_pid: the init's stub */
    unsigned long long holder_start;      /* /proc/<pid>/stat field 22, against pid reuse */
};

/* JSON text of s (caller frees) and back (strict: every field, of its type). */
char *rtstate_encode(const struct rt_state *s);
int rtstate_decode(const char *text, struct rt_state *s, char *err, size_t errlen);
void rtstate_free(struct rt_state *s);

/* Make <root> (0700, parents as needed) and <root>/<id> (0700; an existing one is -EEXIST).
 * Returns an O_DIRECTORY descriptor of the new directory or -errno. */
int rtstate_mkdir(const char *root, const char *id);
/* Open <root>/<id>: an O_DIRECTORY descriptor, or -errno (-ENOENT: no such container). */
int rtstate_open(const char *root, const char *id);
/* Write state.json atomically into dirfd. 0 or -errno. */
int rtstate_write(int dirfd, const struct rt_state *s);
int rtstate_read(int dirfd, struct rt_state *s, char *err, size_t errlen);
/* Remove <root>/<id> and what is in it (plain files and sockets only; never crosses a mount:
 * a subdirectory is an error). 0 or -errno. */
int rtstate_remove(const char *root, const char *id);

/* sockaddr path for the holder socket of dirfd (buf: 64 bytes). */
void rtstate_sock_path(int dirfd, char buf[64]);
/* Connect to the holder of dirfd: a SOCK_SEQPACKET descriptor, or -errno (-ECONNREFUSED or
 * -ENOENT when no holder listens). */
int rtstate_connect(int dirfd);

/* RFC3339 UTC of now (buf: 32 bytes). */
void rtstate_now(char buf[32]);

#endif

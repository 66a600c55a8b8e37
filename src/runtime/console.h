/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Terminals for containerd (containerd-oci.md §0.3): for a tty create or exec the runtime makes
 * a host pty, sends its master over --console-socket before it exits (one message: the pty's
 * name, exactly one SCM_RIGHTS descriptor), and keeps the slave: the holder relays it to the
 * guest terminal (uvm_process_terminal), the stub makes it its controlling terminal so that the
 * shim's resizes of the master reach it as SIGWINCH. The host pty is raw: the guest's terminal
 * does the line discipline.
 */
#ifndef UVM_RUNTIME_CONSOLE_H
#define UVM_RUNTIME_CONSOLE_H

/* A raw host pty: *master and *slave (O_CLOEXEC, the slave O_NOCTTY), name = its /dev/pts path
 * (64 bytes). 0 or -errno. */
int rt_console_new(int *master, int *slave, char name[64]);
/* Send master with name to the console socket at path. 0 or -errno. */
int rt_console_send(const char *path, int master, const char *name);
/* The window size of tty fd; 0 and rows = cols = 0 when unset. 0 or -errno. */
int rt_console_size(int fd, unsigned *rows, unsigned *cols);

#endif

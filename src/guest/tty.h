/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Terminals of processes. The unit is a pseudo-terminal master the agent holds, whoever made
 * it: tty_open() for a process the agent starts itself, or a master handed over by another
 * program (crun's --console-socket for a container's process). A relay (tty_relay_new) carries
 * it over a process's streams (stream.h): what the master reads (the process's stdout and
 * stderr, one stream as with runc and hcsshim) is the stdout stream, the stdin stream is
 * written to the master. The output ends when every holder of the terminal's slave side has
 * closed it and its last bytes were read (the master then reads EIO).
 */
#ifndef GCS_TTY_H
#define GCS_TTY_H

#include <stdbool.h>
#include <stdint.h>

#include "stream.h"
#include "ttyreq.h"

struct tty;

/* A new pseudo-terminal of the given size (0x0: the kernel's default): *master non-blocking,
 * *slave for the child; both close-on-exec, neither becomes the agent's controlling terminal,
 * and the slave is opened from the master (TIOCGPTPEER), not by a path. 0 or -errno. */
int tty_open(struct tty_size size, int *master, int *slave);

/* In a child that has just called setsid(): make slave its controlling terminal and its
 * stdin, stdout and stderr. 0, or -1 with errno set. */
int tty_child_attach(int slave);

/* Relay master (taken: closed on failure too) over the streams of handle: output on
 * PROTO_STDOUT; input from PROTO_STDIN when `input`. on_end(b, ctx) is called once the output
 * stream has ended. NULL when the descriptors could not be duplicated (errno set). */
struct tty *tty_relay_new(int master, uint32_t handle, bool input, stream_end_fn *on_end,
                          void *ctx);

/* Set the window size (TIOCSWINSZ; the terminal's foreground process group gets SIGWINCH).
 * 0 or -errno. */
int tty_resize(struct tty *t, struct tty_size size);

/* Stop relaying, close the master. NULL is fine. */
void tty_free(struct tty *t);

#endif

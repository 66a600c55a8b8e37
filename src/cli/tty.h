/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uvmctl run -t: the local terminal. Its size is the guest terminal's at start; while the
 * command runs it is in raw mode (every byte, Ctrl-C included, goes to the guest) and each
 * SIGWINCH becomes a uvm_process_resize on a thread of its own (resizes are agent round trips:
 * the thread that polls stdio must never wait for one). The saved mode is restored by
 * cli_tty_restore, at exit (atexit) and on a fatal signal (SIGQUIT, SIGABRT, SIGSEGV, ...),
 * whatever path uvmctl leaves by.
 */
#ifndef UVM_CLI_TTY_H
#define UVM_CLI_TTY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "uvm.h"

struct cli_tty {
    int fd;   /* the local terminal: stdin, else stdout; -1: neither is one */
    bool raw; /* stdin is a terminal whose mode we changed */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool resizer_running, pending, stop;
    pthread_t resizer;
    struct uvm_process *proc; /* borrowed, while the resizer runs */
};

/* Find the local terminal. */
void cli_tty_init(struct cli_tty *t);
/* Its size (0x0 when there is none, or it has none). */
void cli_tty_size(const struct cli_tty *t, uint16_t *rows, uint16_t *cols);
/* Put stdin in raw mode when it is a terminal (nothing to do otherwise): 0, or -1 with a
 * message printed. */
int cli_tty_raw(struct cli_tty *t);
/* Restore the mode raw mode replaced. Idempotent. */
void cli_tty_restore(struct cli_tty *t);
/* Start forwarding window size changes to p: -1 with a message printed when the thread
 * cannot start. Then cli_tty_winch on each SIGWINCH (coalesced), cli_tty_stop before p goes. */
int cli_tty_follow(struct cli_tty *t, struct uvm_process *p);
void cli_tty_winch(struct cli_tty *t);
void cli_tty_stop(struct cli_tty *t);

#endif

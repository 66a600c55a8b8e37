/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "tty.h"

/* The mode to restore, for atexit and the fatal signal handler (async-signal-safe: tcsetattr). */
static struct termios saved;
static volatile sig_atomic_t saved_valid;

static void
restore_saved(void)
{
    if (saved_valid) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
        saved_valid = 0;
    }
}

static void
on_fatal(int sig)
{
    restore_saved();
    signal(sig, SIG_DFL);
    raise(sig); /* blocked while in this handler: delivered on return */
}

static void
install_fatal_handlers(void)
{
    static const int sigs[] = {SIGQUIT, SIGABRT, SIGSEGV, SIGBUS,  SIGFPE,  SIGILL, SIGTRAP,
                               SIGSYS,  SIGXCPU, SIGXFSZ, SIGUSR1, SIGUSR2, SIGALRM};
    static bool done;
    if (done)
        return;
    done = true;
    atexit(restore_saved);
    struct sigaction sa = {.sa_handler = on_fatal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction old;
        /* leave a disposition somebody chose alone (an ignored signal stays ignored) */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
            sigaction(sigs[i], &sa, NULL);
    }
}

void
cli_tty_init(struct cli_tty *t)
{
    *t = (struct cli_tty){.fd = -1};
    if (isatty(STDIN_FILENO))
        t->fd = STDIN_FILENO;
    else if (isatty(STDOUT_FILENO))
        t->fd = STDOUT_FILENO;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
}

void
cli_tty_size(const struct cli_tty *t, uint16_t *rows, uint16_t *cols)
{
    struct winsize ws = {0};
    if (t->fd < 0 || ioctl(t->fd, TIOCGWINSZ, &ws) < 0)
        ws = (struct winsize){0};
    *rows = ws.ws_row;
    *cols = ws.ws_col;
}

int
cli_tty_raw(struct cli_tty *t)
{
    if (t->raw || t->fd != STDIN_FILENO)
        return 0;
    struct termios mode;
    if (tcgetattr(STDIN_FILENO, &mode) < 0) {
        fprintf(stderr, "uvmctl: cannot read the terminal's mode: %s\n", strerror(errno));
        return -1;
    }
    saved = mode;
    saved_valid = 1;
    install_fatal_handlers();
    cfmakeraw(&mode); /* no echo, no line editing, no signals, no output processing */
    if (tcsetattr(STDIN_FILENO, TCSADRAIN, &mode) < 0) {
        saved_valid = 0;
        fprintf(stderr, "uvmctl: cannot put the terminal in raw mode: %s\n", strerror(errno));
        return -1;
    }
    t->raw = true;
    return 0;
}

void
cli_tty_restore(struct cli_tty *t)
{
    if (!t->raw)
        return;
    restore_saved();
    t->raw = false;
}

static void *
resizer_main(void *opaque)
{
    struct cli_tty *t = opaque;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (!t->pending && !t->stop)
            pthread_cond_wait(&t->cond, &t->lock);
        if (t->stop)
            break;
        t->pending = false;
        pthread_mutex_unlock(&t->lock);
        uint16_t rows, cols;
        cli_tty_size(t, &rows, &cols);
        /* fails harmlessly once the command has exited: nothing left to resize */
        (void)uvm_process_resize(t->proc, rows, cols);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int
cli_tty_follow(struct cli_tty *t, struct uvm_process *p)
{
    if (t->fd < 0)
        return 0;
    t->proc = p;
    t->stop = t->pending = false;
    int err = pthread_create(&t->resizer, NULL, resizer_main, t);
    if (err) {
        fprintf(stderr, "uvmctl: cannot create a thread: %s\n", strerror(err));
        return -1;
    }
    t->resizer_running = true;
    return 0;
}

void
cli_tty_winch(struct cli_tty *t)
{
    pthread_mutex_lock(&t->lock);
    t->pending = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void
cli_tty_stop(struct cli_tty *t)
{
    if (!t->resizer_running)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->resizer, NULL);
    t->resizer_running = false;
    t->proc = NULL;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "proto.h"
#include "tty.h"

struct tty {
    int master; /* for resizes; the streams have their own descriptors */
    struct stream *in, *out;
};

static int
set_size(int fd, struct tty_size size)
{
    struct winsize ws = {.ws_row = size.rows, .ws_col = size.cols};
    return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

int
tty_open(struct tty_size size, int *master, int *slave)
{
    *master = *slave = -1;
    int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (m < 0)
        return -errno;
    int unlock = 0, rc = 0;
    if (ioctl(m, TIOCSPTLCK, &unlock) < 0)
        rc = -errno;
    if (rc == 0)
        rc = set_size(m, size);
    int s = rc == 0 ? ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (rc == 0 && s < 0)
        rc = -errno;
    if (rc < 0) {
        close(m);
        return rc;
    }
    *master = m;
    *slave = s;
    return 0;
}

int
tty_child_attach(int slave)
{
    /* dup2 onto itself would keep close-on-exec: move a low descriptor out of the way. */
    int fd = slave < 3 ? fcntl(slave, F_DUPFD_CLOEXEC, 3) : slave;
    if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
        return -1;
    for (int i = 0; i < 3; i++)
        if (dup2(fd, i) < 0)
            return -1;
    return 0;
}

struct tty *
tty_relay_new(int master, uint32_t handle, bool input, stream_end_fn *on_end, void *ctx)
{
    int out = fcntl(master, F_DUPFD_CLOEXEC, 3);
    int in = input && out >= 0 ? fcntl(master, F_DUPFD_CLOEXEC, 3) : -1;
    if (out < 0 || (input && in < 0)) {
        int err = errno;
        close(master);
        if (out >= 0)
            close(out);
        errno = err;
        return NULL;
    }
    struct tty *t = xcalloc(1, sizeof(*t));
    t->master = master;
    t->out = stream_new_output(PROTO_STREAM_ID(handle, PROTO_STDOUT), out, on_end, ctx);
    if (in >= 0)
        t->in = stream_new_input(PROTO_STREAM_ID(handle, PROTO_STDIN), in);
    return t;
}

int
tty_resize(struct tty *t, struct tty_size size)
{
    return set_size(t->master, size);
}

void
tty_free(struct tty *t)
{
    if (!t)
        return;
    stream_free(t->in);
    stream_free(t->out);
    close(t->master);
    free(t);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "console.h"

int
rt_console_new(int *master, int *slave, char name[64])
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return -errno;
    int rc = 0;
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, 64) != 0)
        rc = errno ? -errno : -EIO;
    int s = rc == 0 ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (rc == 0 && s < 0)
        rc = -errno;
    struct termios t;
    if (rc == 0 && tcgetattr(s, &t) == 0) {
        cfmakeraw(&t);
        if (tcsetattr(s, TCSANOW, &t) < 0)
            rc = -errno;
    }
    if (rc < 0) {
        if (s >= 0)
            close(s);
        close(m);
        return rc;
    }
    *master = m;
    *slave = s;
    return 0;
}

int
rt_console_send(const char *path, int master, const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = -errno;
        close(s);
        return e;
    }
    struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &master, sizeof(int));
    ssize_t w;
    do
        w = sendmsg(s, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    int rc = w < 0 ? -errno : 0;
    close(s);
    return rc;
}

int
rt_console_size(int fd, unsigned *rows, unsigned *cols)
{
    struct winsize ws = {0};
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
        return -errno;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return 0;
}

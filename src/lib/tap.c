/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cleanup.h"
#include "error.h"
#include "tap.h"

int
tap_open(const char *name)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (!name || !*name || strlen(name) >= sizeof(ifr.ifr_name))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "tap '%s': invalid interface name",
                         name ? name : "(null)");
    cleanup_close int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return uvm_error_errno(-errno, "tap %s: cannot open /dev/net/tun", name);
    memcpy(ifr.ifr_name, name, strlen(name));
    /* QEMU's own flags for a tap it opens by name: no packet info, virtio-net headers. */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        return uvm_error_errno(-errno, "tap %s: cannot attach to it (TUNSETIFF)", name);
    return steal_fd(&fd);
}

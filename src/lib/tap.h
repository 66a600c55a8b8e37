/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host taps opened by the library, to be handed to QEMU as an fd (QEMU opens no host device). */
#ifndef UVM_LIB_TAP_H
#define UVM_LIB_TAP_H

/* Attach to the tap `name` as QEMU would (/dev/net/tun, TUNSETIFF with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR). Returns the fd (O_CLOEXEC, owned by the caller) or a
 * negative code with the message naming the tap: -errno from open or TUNSETIFF (-EBUSY: another
 * process is attached; -EINVAL: not a tap, or a multi-queue one), UVM_E_INVALID_ARGUMENT for a
 * name too long. A name that does not exist would make a new, non-persistent tap: callers
 * attach to taps they made or checked. A single-queue tap takes one attached file: once QEMU
 * holds a copy, close this one, so that QEMU letting go detaches the tap.
 * The unit tests replace this function at link time (-Wl,--wrap=tap_open). */
int tap_open(const char *name);

#endif

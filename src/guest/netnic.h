/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ModifySettings "Network": a hot-plugged virtio-net NIC, found by its MAC address, moved into
 * a network namespace (netns.h) and configured there; Remove moves it back to the root
 * namespace so that its unplug happens there.
 *
 * Add waits (devwait, up to 10 s) for a net device with the MAC to appear in the root
 * namespace, then: move it into the namespace (renamed to IfName), address, up, default route,
 * resolv.conf. A failure moves it back to the root namespace before the error is answered.
 */
#ifndef GCS_NETNIC_H
#define GCS_NETNIC_H

#include "modify.h"

modify_fn netnic_modify;

#endif

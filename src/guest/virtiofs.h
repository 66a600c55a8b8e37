/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ModifySettings "VirtioFs" (libuvm's VSMB on Linux): a virtio-fs share, one vhost-user-fs-pci
 * device per share, known by its tag. Add waits (up to 10 s) until the virtiofs driver has
 * registered the tag of the device the host just hot-plugged, then mounts it on MountPath;
 * Remove unmounts it (before the host unplugs the device).
 */
#ifndef GCS_VIRTIOFS_H
#define GCS_VIRTIOFS_H

#include "modify.h"

modify_fn virtiofs_modify;

#endif

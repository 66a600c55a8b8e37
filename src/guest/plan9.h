/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ModifySettings "MappedDirectory" (hcsshim's Plan9 shares). The host exports one 9p file
 * system per VM (a virtio-9p-pci device with mount tag "uvm9p", present from boot) and
 * bind-mounts each share as the directory <ShareName> under its root. The first Add mounts the
 * export on /run/plan9 (waiting up to 10 s for the device's driver); each Add bind-mounts
 * /run/plan9/<ShareName> on its MountPath (read-only when asked); Remove unmounts it.
 */
#ifndef GCS_PLAN9_H
#define GCS_PLAN9_H

#include "modify.h"

#define PLAN9_TAG "uvm9p"
#define PLAN9_ROOT "/run/plan9"

modify_fn plan9_modify;
/* Unmount the export when mounted (no share may be using it): a template save, since QEMU
 * cannot migrate a mounted 9p device. 0 or -errno. */
int plan9_export_unmount(void);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MappedVirtualDisk: SCSI disks hot-plugged by the host as scsi-hd (channel 0, scsi-id 0,
 * lun L) on virtio-scsi controller C. Controller C is the C-th virtio_scsi host ordered by the
 * PCI path of its device (the host puts controller i on root port rp<i+1>, in order).
 *
 * Add:    wait (uevents, 10 s) for /sys/bus/scsi/devices/H:0:0:L/block/<sdX> and /dev/<sdX>;
 *         mount it on MountPath when one is given. Answered once mounted.
 * Remove: unmount and rmdir MountPath (both may be gone already), then eject the disk
 *         (write "1" to .../H:0:0:L/delete) and wait until it is gone.
 */
#ifndef GCS_SCSI_H
#define GCS_SCSI_H

#include "modify.h"

modify_fn scsi_modify;

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CombinedLayers (hcsshim's container root file system): an overlay of layers already mounted
 * in the guest (VPMem /tmp/p<n>, SCSI /tmp/S<c>/<l>) at ContainerRootPath, read-only without a
 * scratch, else with upperdir/workdir <ScratchPath>/upper and <ScratchPath>/work. */
#ifndef GCS_LAYERS_H
#define GCS_LAYERS_H

#include "modify.h"

modify_fn layers_modify;

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetProperties, answered from the other modules' lists (ProcessList, ContainerList). */
#ifndef GCS_PROPERTIES_H
#define GCS_PROPERTIES_H

#include "bridge.h"

bridge_handler_fn properties_handle_get;

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public face of the runtime directory sweep (rundir.c): for a runtime whose VM-owning
 * process died (killed, crashed) and that cleans up after it before the next uvm_create would. */
#include "rundir.h"
#include "uvm.h"

int
uvm_sweep_runtime_dirs(void)
{
    return rundir_sweep();
}

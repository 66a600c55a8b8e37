/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running short host helper commands (qemu-img) with a deadline. */
#ifndef UVM_LIB_HOSTCMD_H
#define UVM_LIB_HOSTCMD_H

/* Run argv (argv[0] looked up in PATH, spawn.h), stdin /dev/null, stderr captured. 0 when it exits 0;
 * otherwise UVM_E_HYPERVISOR (or UVM_E_TIMEOUT, the child is then killed) with a message naming
 * the command and the last line of its stderr. */
int hostcmd_run(const char *const *argv, unsigned timeout_ms);

#endif

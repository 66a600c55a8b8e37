/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The library's log lines through the clean-text check (fuzz-util.h); targets that link it. */
#include <string.h>

#include "fuzz-util.h"
#include "uvm.h"

static unsigned long log_lines;

static void
log_check(void *opaque, enum uvm_log_level level, const char *vm_id, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)vm_id;
    const char *why = fuzz_text_problem(msg, strlen(msg), false);
    FUZZ_CHECK(!why, "log line with %s: %s", why, msg);
    __atomic_add_fetch(&log_lines, 1, __ATOMIC_RELAXED);
}

void
fuzz_log_check_install(void)
{
    uvm_set_log_handler(log_check, NULL, UVM_LOG_DEBUG);
}

unsigned long
fuzz_log_lines(void)
{
    return __atomic_load_n(&log_lines, __ATOMIC_RELAXED);
}

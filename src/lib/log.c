/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "error.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static uvm_log_fn log_fn;
static void *log_opaque;
static enum uvm_log_level log_max = UVM_LOG_INFO;

void
uvm_set_log_handler(uvm_log_fn fn, void *opaque, enum uvm_log_level max_level)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_opaque = opaque;
    log_max = max_level;
    pthread_mutex_unlock(&log_lock);
}

bool
uvm_log_enabled(enum uvm_log_level level)
{
    pthread_mutex_lock(&log_lock);
    bool on = log_fn && level <= log_max;
    pthread_mutex_unlock(&log_lock);
    return on;
}

void
uvm_log(enum uvm_log_level level, const char *vm_id, const char *fmt, ...)
{
    pthread_mutex_lock(&log_lock);
    uvm_log_fn fn = level <= log_max ? log_fn : NULL;
    void *opaque = log_opaque;
    pthread_mutex_unlock(&log_lock);
    if (!fn)
        return;
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fn(opaque, level, vm_id, buf);
}

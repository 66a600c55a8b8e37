/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "error.h"

#define ERRBUF_SIZE 4096

static __thread char errbuf[ERRBUF_SIZE];
static __thread int errclass;

static const struct {
    int code;
    const char *text;
} texts[] = {
    {UVM_E_NO_AVAILABLE_LOCATION, "no available location"},
    {UVM_E_NOT_ATTACHED, "not attached"},
    {UVM_E_ALREADY_ATTACHED, "already attached"},
    {UVM_E_NO_SCSI_CONTROLLERS, "no SCSI controllers configured for this utility VM"},
    {UVM_E_TOO_MANY_ATTACHMENTS, "too many SCSI attachments"},
    {UVM_E_SCSI_LAYER_WCOW_UNSUPPORTED, "SCSI attached layers are not supported for WCOW"},
    {UVM_E_NOT_SUPPORTED, "not supported"},
    {UVM_E_INVALID_ARGUMENT, "invalid argument"},
    {UVM_E_INVALID_STATE, "invalid state for this operation"},
    {UVM_E_CLOSED, "already closed"},
    {UVM_E_TIMEOUT, "timeout"},
    {UVM_E_HYPERVISOR, "hypervisor failure"},
    {UVM_E_GUEST, "guest agent failure"},
    {UVM_E_UNEXPECTED_EXIT, "unexpected exit of the utility VM"},
    {UVM_E_NOT_FOUND, "not found"},
    {UVM_E_PROTOCOL, "protocol violation (guest or QEMU)"},
    {UVM_E_ALREADY_EXISTS, "already exists"},
};

const char *
uvm_strerror(int code)
{
    if (code == 0)
        return "success";
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].code == code)
            return texts[i].text;
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}

const char *
uvm_last_error(void)
{
    return errbuf;
}

void
uvm_error_clear(void)
{
    errbuf[0] = '\0';
    errclass = 0;
}

int
uvm_error_class(void)
{
    return errclass;
}

void
uvm_error_set_class(int cls)
{
    errclass = cls;
}

void
uvm_error_capture(struct uvm_error_state *st)
{
    st->msg = xstrdup(errbuf);
    st->cls = errclass;
}

int
uvm_error_restore(struct uvm_error_state *st, int code)
{
    snprintf(errbuf, sizeof(errbuf), "%s", st->msg ? st->msg : "");
    errclass = st->cls;
    free(st->msg);
    st->msg = NULL;
    return code;
}

static void __attribute__((format(printf, 1, 0)))
set_msg(const char *fmt, va_list ap)
{
    char tmp[ERRBUF_SIZE];
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    memcpy(errbuf, tmp, sizeof(tmp));
}

int
uvm_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);
    errclass = 0;
    return code;
}

int
uvm_error_errno(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);
    errclass = 0;
    size_t n = strlen(errbuf);
    snprintf(errbuf + n, sizeof(errbuf) - n, ": %s", uvm_strerror(code));
    return code;
}

int
uvm_error_wrap(int code, const char *fmt, ...)
{
    char prefix[ERRBUF_SIZE], old[ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof(old));
    if (old[0])
        snprintf(errbuf, sizeof(errbuf), "%s: %s", prefix, old);
    else
        snprintf(errbuf, sizeof(errbuf), "%s: %s", prefix, uvm_strerror(code));
    return code;
}

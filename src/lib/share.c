/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argv.h"
#include "cleanup.h"
#include "error.h"
#include "share.h"
#include "uvm-internal.h"

int
shares_prepare(struct uvm *vm)
{
    const char *dirs[] = {ARGV_PLAN9_DIR, "vsmb"};
    for (size_t i = 0; i < 2; i++) {
        cleanup_free char *p = rundir_file(&vm->rd, dirs[i]);
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return uvm_error_errno(-errno, "create staging directory '%s'", p);
    }
    return 0;
}

int
share_resolve_dir(const char *what, const char *host_path, char **real)
{
    char buf[PATH_MAX];
    if (!realpath(host_path, buf)) {
        if (errno == ENOENT || errno == ENOTDIR)
            return uvm_error(UVM_E_NOT_FOUND, "%s '%s': no such directory", what, host_path);
        return uvm_error_errno(-errno, "%s '%s'", what, host_path);
    }
    struct stat st;
    if (stat(buf, &st) < 0)
        return uvm_error_errno(-errno, "%s '%s'", what, host_path);
    if (!S_ISDIR(st.st_mode))
        return uvm_error(UVM_E_INVALID_ARGUMENT, "%s '%s': not a directory", what, host_path);
    *real = xstrdup(buf);
    return 0;
}

int
share_bind(const char *dir, const char *target, bool read_only)
{
    if (mkdir(target, 0700) < 0 && errno != EEXIST)
        return uvm_error_errno(-errno, "create '%s'", target);
    /* Not recursive: mounts below the shared directory are not exported. */
    if (mount(dir, target, NULL, MS_BIND, NULL) < 0) {
        int e = -errno;
        rmdir(target);
        return uvm_error_errno(e, "bind mount '%s' on '%s'%s", dir, target,
                               e == -EPERM ? " (sharing directories needs CAP_SYS_ADMIN)" : "");
    }
    if (read_only &&
        mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
            0) {
        int e = -errno;
        share_unbind(target);
        return uvm_error_errno(e, "make the bind mount '%s' read-only", target);
    }
    return 0;
}

void
share_unbind(const char *target)
{
    umount2(target, MNT_DETACH);
    rmdir(target);
}

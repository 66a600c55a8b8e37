/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Directory shares (Plan9 and virtio-fs): what the two have in common. The agent records every
 * share mount it makes for the host (kind, share name or tag, mount path, the directories it
 * created for it), so that a Remove unmounts only what an Add mounted and removes only the
 * directories the agent created, and a retried Add or Remove is a success.
 *
 * An Add reserves its mount path first (the share is "pending" while it waits for its device),
 * then commits the share once mounted or releases it on failure.
 */
#ifndef GCS_SHARE_H
#define GCS_SHARE_H

#include <jansson.h>
#include <stdbool.h>

#include "mount.h"
#include "shareconf.h"
#include "request.h"


enum share_kind { SHARE_PLAN9, SHARE_VIRTIOFS };

struct share {
    struct share *next;
    enum share_kind kind;
    char *name; /* ShareName (Plan9) or Tag (virtio-fs) */
    char *path; /* MountPath */
    bool read_only;
    bool pending; /* reserved by an Add that is not done */
    struct mount_created created;
};

/* "Plan9" or "virtio-fs": errors read "<kind> share <name>: <step>: <reason>". */
const char *share_kind_name(enum share_kind kind);
/* Shares mounted or being added. */
size_t share_count(void);


/* Reserve path for a new share: mkdir -p path (recording what was created) and record the share
 * as pending. Returns 0 with *out set, 1 when the same share (kind, name, read-only) is mounted
 * there already (a retried Add: nothing to do), or a negative code with req->error set (another
 * share or a pending Add has the path, mkdir failed). */
int share_reserve(struct request *req, enum share_kind kind, const char *name, const char *path,
                  bool read_only, struct share **out);

/* The reserved share is mounted. */
void share_commit(struct share *s);

/* The reserved share could not be mounted: remove the directories created for it and forget it.
 * s is freed. */
void share_release(struct share *s);

/* Unmount the share kind/name from path, remove the directories the agent created for it and
 * forget it. A path with no share is a success (logged); one with another share is an error.
 * A busy mount is an error (EBUSY) and stays recorded: the host may retry. */
int share_remove(struct request *req, enum share_kind kind, const char *name, const char *path,
                 bool lazy);

#endif

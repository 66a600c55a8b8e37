/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Settings of the share requests, decoded and checked (pure: no I/O; plan9.c and
 * virtiofs.c mount): "MappedDirectory" {"MountPath", "ShareName", "Port", "ReadOnly"} and
 * "VirtioFs" {"Tag", "MountPath", "ReadOnly", "Options", "Lazy"}. Strings are borrowed from the
 * request body.
 */
#ifndef GCS_SHARECONF_H
#define GCS_SHARECONF_H

#include <stdbool.h>

#include <jansson.h>

#include "modifyreq.h"
#include "request.h"

#define SHARE_FIELD_MAX 4096      /* bytes of any string field */
#define SHARE_NAME_MAX 17         /* "s" + 16 hex digits */
#define VIRTIOFS_TAG_MAX 36       /* bytes of the tag in the device's configuration space */
#define VIRTIOFS_OPTIONS_MAX 4095 /* a page with its NUL: what mount(2) takes */

/* A string field of settings, at most SHARE_FIELD_MAX bytes. Same contract as req_string. */
int share_string(struct request *req, json_t *settings, const char *key, bool required,
                 const char **out);

/* A required, normalised absolute MountPath (mount_check_path). */
int share_mount_path(struct request *req, json_t *settings, const char **out);

struct plan9_conf {
    const char *name; /* ShareName: s[0-9a-f]{1,16} */
    const char *path; /* MountPath, not the export (PLAN9_ROOT) nor inside it */
    bool read_only;
};

/* A MappedDirectory Add or Remove (settings NULL: missing). 0, or -EINVAL with req->error
 * naming the field. */
int plan9_conf_parse(struct request *req, enum modify_request_type type, json_t *settings,
                     struct plan9_conf *c);

struct virtiofs_conf {
    const char *tag;     /* 1 to VIRTIOFS_TAG_MAX of [A-Za-z0-9._-] */
    const char *path;    /* MountPath */
    const char *options; /* "" or comma-separated key / key=value of [a-z0-9_], not source */
    bool read_only;
    bool lazy; /* Remove: the host saw the share's virtiofsd die */
};

/* A VirtioFs Add or Remove (settings NULL: missing). 0, or -EINVAL with req->error naming the
 * field. */
int virtiofs_conf_parse(struct request *req, enum modify_request_type type, json_t *settings,
                        struct virtiofs_conf *c);

#endif

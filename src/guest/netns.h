/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Named network namespaces, as iproute2 keeps them: the namespace of <id> is pinned by a bind
 * mount of its nsfs file on /run/netns/<id> (/run/netns being a shared mount point), and its
 * resolv.conf is /etc/netns/<id>/resolv.conf, bind-mounted on /etc/resolv.conf for the
 * processes started in it (process.c).
 *
 * ModifySettings "NetworkNamespace": Add {"ID"} creates the namespace with `lo` up; Remove
 * {"ID"} unpins it and removes /etc/netns/<id> (processes still inside keep it alive).
 */
#ifndef GCS_NETNS_H
#define GCS_NETNS_H

#include <stdbool.h>
#include <stddef.h>

#include "modify.h"
#include "nsid.h" /* netns_id_valid, NETNS_ID_MAX */

#define NETNS_RUN_DIR "/run/netns"
#define NETNS_ETC_DIR "/etc/netns"
#define NETNS_RESOLV_CONF "/etc/resolv.conf"

/* Open /run/netns/<id> (id valid): fd (O_CLOEXEC), or -errno (-ENOENT: no such namespace). */
int netns_open(const char *id);

/* "/etc/netns/<id>/resolv.conf" (caller frees). */
char *netns_resolv_path(const char *id);

/* Write /etc/netns/<id>/resolv.conf with text (replaced atomically). When / is read-only, an
 * existing /etc/netns gets a tmpfs. Returns 0 or -errno with req->error set (naming what). */
int netns_write_resolv(struct request *req, const char *id, const char *text);

/* At start: create an empty /etc/resolv.conf, the mount point of namespaces' resolv.conf, if
 * it is missing and / is writable. */
void netns_init(void);

modify_fn netns_modify;

#endif

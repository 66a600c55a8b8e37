/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Finding the bridge's virtio-serial port. Without udev there is no /dev/virtio-ports/<name>:
 * the port is the /sys/class/virtio-ports/vportNpM whose "name" attribute is "gcs". The name
 * is set when the host's PORT_NAME control message arrives (a KOBJ_CHANGE uevent), possibly
 * after the port device itself appeared.
 */
#ifndef GCS_PORT_H
#define GCS_PORT_H

/* Subscribe to kernel uevents (call before loading the virtio modules so that nothing is
 * missed). Returns a netlink fd or -errno. */
int port_watch_open(void);

/* Find the port named name: scan sysfs, then wait on the uevent fd (consumed: closed) until
 * it shows up or timeout_ms passes. Returns the port opened O_RDWR|O_NONBLOCK|O_CLOEXEC,
 * -ETIMEDOUT, or another -errno. */
int port_open(int uevent_fd, const char *name, int timeout_ms);

#endif

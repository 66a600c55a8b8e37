/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A model of the QEMU objects libuvm's QMP commands make, for the fake QMP peer's
 * FAKE_QMP_QEMU() step (fake-qmp.h): fault injection without a script per sequence.
 *
 * It answers as QEMU 7.2 does for the commands libuvm sends: add-fd (the fd set named, or the
 * lowest id not in use; the command must carry one fd) / remove-fd, getfd / closefd, blockdev-add / -del,
 * object-add / -del, netdev_add (its "fd" name is consumed) / netdev_del, chardev-add /
 * chardev-remove (a client socket chardev connects to its server at chardev-add, as QEMU does,
 * and closes the connection at chardev-remove), device_add (its drive, memdev, netdev or chardev must exist) / device_del
 * (answered, then DEVICE_DELETED for it; an unknown id is DeviceNotFound); everything else gets
 * {"return": {}}. An id in use, a missing object, or a backend still used by a device is an
 * error, and a command that fails changes nothing. The n-th command from a point on can be made
 * to fail (GenericError "injected failure"), also changing nothing.
 *
 * Thread-safe: the peer's thread answers while the test reads or injects.
 */
#ifndef UVM_TESTS_FAKE_QEMU_H
#define UVM_TESTS_FAKE_QEMU_H

#include <stddef.h>

#include <jansson.h>

struct fake_qemu;

struct fake_qemu *fake_qemu_new(void);
void fake_qemu_free(struct fake_qemu *q);

/* The reply (new reference, without id) to cmd (borrowed, without id), which came with nfds
 * fds, and *event: an event to send after it (new reference) or NULL. */
json_t *fake_qemu_answer(struct fake_qemu *q, const json_t *cmd, size_t nfds, json_t **event);

/* Fail the n-th command answered from now on (1: the next one; 0: none). */
void fake_qemu_fail_nth(struct fake_qemu *q, unsigned n);
/* Fail the n-th command from now on and every one after it, until fake_qemu_fail_nth. */
void fake_qemu_fail_from(struct fake_qemu *q, unsigned n);
/* Commands answered so far (the failed ones included). */
unsigned fake_qemu_served(struct fake_qemu *q);
/* The command that was failed by injection ("" if none since the last fake_qemu_fail_nth with
 * n > 0). */
const char *fake_qemu_failed(struct fake_qemu *q);
/* The live objects, "kind:id" sorted and joined by spaces ("" when none); owned by the caller.
 * Kinds: fdset, fdname, block, object, netdev, chardev, device. */
char *fake_qemu_objects(struct fake_qemu *q);

#endif

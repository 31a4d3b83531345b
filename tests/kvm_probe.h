/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whether the KVM tests can run here (they exit 77 with the reason if not). */
#ifndef VMRES_TEST_KVM_PROBE_H
#define VMRES_TEST_KVM_PROBE_H

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/*
 * Why KVM cannot be used here, or NULL if it can: /dev/kvm opens, a VM can be
 * made (with an in-kernel irqchip if @p irqchip), and KVM has every
 * capability of @p caps (@p n of them); @p lacking says what is missing if not.
 */
static inline const char *test_kvm_unusable(bool irqchip, const long *caps, size_t n,
					    const char *lacking)
{
	static char why[160];
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm;
	const char *r = NULL;

	if (kvm < 0) {
		snprintf(why, sizeof(why), "cannot open /dev/kvm: %s", strerror(errno));
		return why;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		snprintf(why, sizeof(why), "KVM_CREATE_VM failed: %s", strerror(errno));
		r = why;
	} else if (irqchip && ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		snprintf(why, sizeof(why), "KVM_CREATE_IRQCHIP failed: %s", strerror(errno));
		r = why;
	}
	for (size_t i = 0; !r && i < n; i++)
		if (ioctl(kvm, KVM_CHECK_EXTENSION, caps[i]) <= 0)
			r = lacking;
	if (vm >= 0)
		close(vm);
	close(kvm);
	return r;
}

#endif

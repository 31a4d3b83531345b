/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real system calls behind struct vmres_irq_kvm_sys (kvm_sys.h). */
#include "kvm_sys.h"

#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int real_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	(void)ctx;
	return ioctl(fd, request, arg);
}

static int real_eventfd(void *ctx, unsigned int initval, int flags)
{
	(void)ctx;
	return eventfd(initval, flags);
}

static ssize_t real_read(void *ctx, int fd, void *buf, size_t len)
{
	(void)ctx;
	return read(fd, buf, len);
}

static ssize_t real_write(void *ctx, int fd, const void *buf, size_t len)
{
	(void)ctx;
	return write(fd, buf, len);
}

static int real_close(void *ctx, int fd)
{
	(void)ctx;
	return close(fd);
}

const struct vmres_irq_kvm_sys vmres__kvm_real_sys = {
	.version = VMRES_IRQ_KVM_SYS_VERSION,
	.ioctl = real_ioctl,
	.eventfd = real_eventfd,
	.read = real_read,
	.write = real_write,
	.close = real_close,
};

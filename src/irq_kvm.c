/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The KVM interrupt backend: an eventfd per source bound with KVM_IRQFD, MSI
 * routes installed with KVM_SET_GSI_ROUTING.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, and KVM offers no way to read
 * it back, so every commit sends the complete table built from the manager's
 * record: the MSI routes, and for every GSI the record does not route as MSI
 * the irqchip routes that KVM_CREATE_IRQCHIP installed (x86: each of GSIs 0-15
 * to its PIC pin and IOAPIC pin, 16-23 to the IOAPIC). Forgetting those would
 * silently cut every legacy interrupt, including those raised with
 * KVM_IRQ_LINE by other code.
 *
 * Every system call goes through struct vmres_irq_kvm_sys, so that tests can
 * check what is sent and fail any call; every error path closes what it opened
 * and restores the errno of the call that failed.
 */
#include <vmres/irq.h>

#include "util/kvm_sys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include <linux/kvm.h>

/* KVM_MAX_IRQ_ROUTES of x86 and arm64 (not exported in the uapi headers). */
#define KVM_ROUTES_MAX 4096u

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_PIC_IOAPIC 1
#define IOAPIC_PINS	24u
#define PIC_GSIS	16u
#else
#define HAVE_PIC_IOAPIC 0
#define IOAPIC_PINS	0u
#define PIC_GSIS	0u
#endif

struct kvm_backend {
	int vm_fd;
	struct vmres_irq_kvm_sys sys;
	bool irqchip; /* in-kernel PIC and IOAPIC (not split, not none) */
};

struct kvm_source {
	uint32_t gsi;
	int trigger_fd;
	int resample_fd; /* -1 unless level-triggered */
};

/* ---- sources ----------------------------------------------------------- */

static void close_keep_errno(struct kvm_backend *kb, int fd)
{
	int saved = errno;

	if (fd >= 0)
		kb->sys.close(kb->sys.ctx, fd);
	errno = saved;
}

static int kvm_attach(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
		      enum vmres_irq_trigger trigger, void **handle)
{
	struct kvm_backend *kb = ctx;
	struct kvm_source *ks;
	struct kvm_irqfd irqfd;
	bool level = kind == VMRES_IRQ_LEGACY && trigger == VMRES_IRQ_LEVEL;
	int saved;

	if (gsi >= KVM_ROUTES_MAX)
		return VMRES_ERANGE;
	if (kind == VMRES_IRQ_LEGACY && (!kb->irqchip || gsi >= IOAPIC_PINS))
		return VMRES_ERANGE;
	ks = malloc(sizeof(*ks));
	if (!ks)
		return VMRES_ENOMEM;
	ks->gsi = gsi;
	ks->resample_fd = -1;
	ks->trigger_fd = kb->sys.eventfd(kb->sys.ctx, 0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ks->trigger_fd < 0)
		goto fail;
	if (level) {
		ks->resample_fd = kb->sys.eventfd(kb->sys.ctx, 0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ks->resample_fd < 0)
			goto fail;
	}
	memset(&irqfd, 0, sizeof(irqfd));
	irqfd.fd = (uint32_t)ks->trigger_fd;
	irqfd.gsi = gsi;
	if (level) {
		irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irqfd.resamplefd = (uint32_t)ks->resample_fd;
	}
	if (kb->sys.ioctl(kb->sys.ctx, kb->vm_fd, KVM_IRQFD, &irqfd) < 0)
		goto fail;
	*handle = ks;
	return 0;

fail:
	saved = errno;
	close_keep_errno(kb, ks->resample_fd);
	close_keep_errno(kb, ks->trigger_fd);
	free(ks);
	errno = saved;
	return VMRES_ESYS;
}

static void kvm_detach(void *ctx, void *handle)
{
	struct kvm_backend *kb = ctx;
	struct kvm_source *ks = handle;
	struct kvm_irqfd irqfd;

	if (!ks)
		return;
	memset(&irqfd, 0, sizeof(irqfd));
	irqfd.fd = (uint32_t)ks->trigger_fd;
	irqfd.gsi = ks->gsi;
	irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	/* If this fails, closing the eventfd below still makes KVM drop the irqfd. */
	kb->sys.ioctl(kb->sys.ctx, kb->vm_fd, KVM_IRQFD, &irqfd);
	if (ks->resample_fd >= 0)
		kb->sys.close(kb->sys.ctx, ks->resample_fd);
	kb->sys.close(kb->sys.ctx, ks->trigger_fd);
	free(ks);
}

static int kvm_deliver(void *ctx, void *handle, uint32_t gsi, enum vmres_irq_kind kind,
		       const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct kvm_backend *kb = ctx;
	struct kvm_source *ks = handle;
	uint64_t value = 1;
	int saved;

	(void)gsi;
	(void)kind;
	(void)msg;
	if (signal != VMRES_IRQ_SIGNAL_DEASSERT) {
		if (kb->sys.write(kb->sys.ctx, ks->trigger_fd, &value, sizeof(value)) !=
		    (ssize_t)sizeof(value))
			return VMRES_ESYS;
		return 0;
	}
	/* KVM lowered the line at EOI; consume the notification, if any. */
	if (ks->resample_fd < 0)
		return 0;
	saved = errno;
	if (kb->sys.read(kb->sys.ctx, ks->resample_fd, &value, sizeof(value)) < 0) {
		if (errno != EAGAIN)
			return VMRES_ESYS;
		errno = saved;
	}
	return 0;
}

static int kvm_get_fd(void *ctx, void *handle, enum vmres_irq_fd which, int *fd)
{
	struct kvm_source *ks = handle;

	(void)ctx;
	if (which == VMRES_IRQ_FD_TRIGGER) {
		*fd = ks->trigger_fd;
		return 0;
	}
	if (ks->resample_fd < 0)
		return VMRES_ENOTSUP;
	*fd = ks->resample_fd;
	return 0;
}

/* ---- the routing table ------------------------------------------------- */

/* The irqchip routes KVM_CREATE_IRQCHIP installs for gsi; returns how many. */
static unsigned int irqchip_routes(const struct kvm_backend *kb, uint32_t gsi,
				   struct kvm_irq_routing_entry *e)
{
	unsigned int n = 0;

	if (!kb->irqchip || gsi >= IOAPIC_PINS)
		return 0;
	if (e) {
		memset(&e[0], 0, sizeof(e[0]));
		e[0].gsi = gsi;
		e[0].type = KVM_IRQ_ROUTING_IRQCHIP;
#if HAVE_PIC_IOAPIC
		e[0].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
#endif
		e[0].u.irqchip.pin = gsi;
	}
	n++;
	if (gsi < PIC_GSIS) {
		if (e) {
			memset(&e[1], 0, sizeof(e[1]));
			e[1].gsi = gsi;
			e[1].type = KVM_IRQ_ROUTING_IRQCHIP;
#if HAVE_PIC_IOAPIC
			e[1].u.irqchip.irqchip =
				gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
#endif
			e[1].u.irqchip.pin = gsi % 8;
		}
		n++;
	}
	return n;
}

/*
 * Merge the irqchip defaults (for GSIs the record does not route as MSI) with
 * the record's MSI routes, in GSI order. With e NULL, only count.
 */
static size_t build_table(const struct kvm_backend *kb, const struct vmres_irq_route *routes,
			  size_t n, struct kvm_irq_routing_entry *e)
{
	uint32_t pin = 0, pins = kb->irqchip ? IOAPIC_PINS : 0;
	size_t count = 0, i = 0;

	for (;;) {
		while (i < n && routes[i].kind != VMRES_IRQ_MSI)
			i++;
		if (pin >= pins && i >= n)
			return count;
		if (pin < pins && (i >= n || pin < routes[i].gsi)) {
			count += irqchip_routes(kb, pin++, e ? &e[count] : NULL);
			continue;
		}
		/* An MSI route replaces the defaults of its GSI. */
		if (pin < pins && routes[i].gsi == pin)
			pin++;
		if (e) {
			memset(&e[count], 0, sizeof(e[count]));
			e[count].gsi = routes[i].gsi;
			e[count].type = KVM_IRQ_ROUTING_MSI;
			e[count].u.msi.address_lo = routes[i].msg.addr_lo;
			e[count].u.msi.address_hi = routes[i].msg.addr_hi;
			e[count].u.msi.data = routes[i].msg.data;
		}
		count++;
		i++;
	}
}

static int kvm_commit(void *ctx, const struct vmres_irq_route *routes, size_t n)
{
	struct kvm_backend *kb = ctx;
	struct kvm_irq_routing *table;
	size_t count = build_table(kb, routes, n, NULL);
	int r = 0;

	if (count > KVM_ROUTES_MAX)
		return VMRES_EFULL;
	table = calloc(1, sizeof(*table) + count * sizeof(table->entries[0]));
	if (!table)
		return VMRES_ENOMEM;
	table->nr = (uint32_t)build_table(kb, routes, n, table->entries);
	if (kb->sys.ioctl(kb->sys.ctx, kb->vm_fd, KVM_SET_GSI_ROUTING, table) < 0)
		r = VMRES_ESYS;
	free(table);
	return r;
}

static const struct vmres_irq_backend_ops kvm_ops = {
	.version = VMRES_IRQ_BACKEND_OPS_VERSION,
	.attach = kvm_attach,
	.detach = kvm_detach,
	.commit = kvm_commit,
	.deliver = kvm_deliver,
	.get_fd = kvm_get_fd,
	.destroy = free, /* the context is one malloc'd block */
};

/* Does the VM have the in-kernel PIC and IOAPIC (KVM_CREATE_IRQCHIP)? */
static int probe_irqchip(struct kvm_backend *kb)
{
#if HAVE_PIC_IOAPIC
	struct kvm_irqchip chip;
	int saved = errno;

	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
	if (kb->sys.ioctl(kb->sys.ctx, kb->vm_fd, KVM_GET_IRQCHIP, &chip) == 0) {
		kb->irqchip = true;
		return 0;
	}
	if (errno != ENXIO)
		return VMRES_ESYS;
	errno = saved;
#else
	(void)kb;
#endif
	return 0;
}

int vmres_irq_backend_kvm_new(int vm_fd, const struct vmres_irq_kvm_sys *sys,
			      struct vmres_irq_backend **out)
{
	struct kvm_backend *kb;
	int r;

	if (!out || vm_fd < 0)
		return VMRES_EINVAL;
	if (sys && sys->version != VMRES_IRQ_KVM_SYS_VERSION)
		return VMRES_EVERSION;
	if (sys && (!sys->ioctl || !sys->eventfd || !sys->read || !sys->write || !sys->close))
		return VMRES_EINVAL;
	kb = calloc(1, sizeof(*kb));
	if (!kb)
		return VMRES_ENOMEM;
	kb->vm_fd = vm_fd;
	kb->sys = sys ? *sys : vmres__kvm_real_sys;
	r = probe_irqchip(kb);
	if (r == 0)
		r = vmres_irq_backend_new(&kvm_ops, kb, out);
	if (r) {
		int saved = errno;

		free(kb);
		errno = saved;
	}
	return r;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A virtio entropy device over PCI, virtio 1.x "modern" layout only (the
 * virtio specification 1.2, sections 4.1 "Virtio Over PCI Bus" and 5.4
 * "Entropy Device"). Its configuration space, BAR and MSI-X table are vmres's
 * PCI helper; what is left here is virtio: the capabilities that point into
 * BAR0, the common configuration registers, the ISR byte, and one split
 * virtqueue that a device thread fills with random bytes.
 *
 *     config space                          BAR0 (16 KiB, 32-bit memory)
 *     0x40 MSI-X (2 vectors)        vmres    0x0000 common configuration
 *     0x50 virtio common cap -> BAR0 0x0000  0x1000 ISR status (read clears)
 *     0x60 virtio ISR cap    -> BAR0 0x1000  0x2000 notify: queue 0 (eventfd)
 *     0x70 virtio notify cap -> BAR0 0x2000  0x3000 MSI-X table      vmres
 *          (notify_off_multiplier 0)         0x3800 MSI-X PBA        vmres
 *
 * The driver's kicks (2-byte writes of the queue index at 0x2000) never
 * reach this file: vmres_kvmres serves them with an ioeventfd (or vmres's bus
 * signals the eventfd), wherever the guest moves BAR0. The device thread
 * waits on that eventfd, takes every buffer the driver made available, fills
 * its device-writable descriptors from getrandom(), returns it in the used
 * ring and fires the queue's MSI-X vector (vmres_pci_func_fire()).
 *
 * Guest memory is the VM's RAM (vm->ram); a descriptor outside it ends the
 * chain with what was written so far. Locking: one mutex for the registers
 * and the queue, taken by vCPU threads (register accesses) and the device
 * thread (a pass over the queue); MSI-X is the PCI helper's, with its own.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "devices.h"
#include "setup.h"

#define VIRTIO_VENDOR	       0x1af4u
#define VIRTIO_DEV_ENTROPY     (0x1040u + 4u) /* modern id: 0x1040 + device type 4 */
#define VIRTIO_CAP_VENDOR      0x09u	      /* vendor-specific capability */
#define VIRTIO_CAP_COMMON      1u
#define VIRTIO_CAP_NOTIFY      2u
#define VIRTIO_CAP_ISR	       3u
#define VIRTIO_F_VERSION_1     (1ull << 32)
#define VIRTIO_MSI_NO_VECTOR   0xffffu
#define STATUS_FEATURES_OK     0x08u
#define STATUS_NEEDS_RESET     0x40u
#define VRING_DESC_F_NEXT      1u
#define VRING_DESC_F_WRITE     2u
#define VRING_AVAIL_F_NO_INTR  1u
#define QUEUE_MAX	       256u

#define COMMON_OFF  0x0000u
#define COMMON_SIZE 0x0040u
#define ISR_OFF	    0x1000u
#define NOTIFY_OFF  0x2000u

/* Common configuration registers (offsets in the structure). */
enum {
	CC_DFSELECT = 0x00, /* le32 device_feature_select */
	CC_DF = 0x04,	    /* le32 device_feature (ro) */
	CC_GFSELECT = 0x08, /* le32 driver_feature_select */
	CC_GF = 0x0c,	    /* le32 driver_feature */
	CC_MSIX = 0x10,	    /* le16 config_msix_vector */
	CC_NUMQ = 0x12,	    /* le16 num_queues (ro) */
	CC_STATUS = 0x14,   /* u8 device_status */
	CC_CFGGEN = 0x15,   /* u8 config_generation (ro) */
	CC_Q_SELECT = 0x16, /* le16 */
	CC_Q_SIZE = 0x18,   /* le16 */
	CC_Q_MSIX = 0x1a,   /* le16 */
	CC_Q_ENABLE = 0x1c, /* le16 */
	CC_Q_NOFF = 0x1e,   /* le16 queue_notify_off (ro) */
	CC_Q_DESCLO = 0x20, /* le64 queue_desc, in two halves */
	CC_Q_DESCHI = 0x24,
	CC_Q_AVAILLO = 0x28,
	CC_Q_AVAILHI = 0x2c,
	CC_Q_USEDLO = 0x30,
	CC_Q_USEDHI = 0x34,
};

struct vqueue {
	uint16_t size, msix, enable;
	uint64_t desc, avail, used;
	uint16_t last_avail;
};

struct vmm_virtio_rng {
	struct vmm *vm;
	struct vmres_pci_func *func;
	pthread_mutex_t lock;
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint16_t config_msix;
	uint8_t status;
	uint8_t isr;
	uint16_t queue_select;
	struct vqueue q;
	int notify_fd;
	struct vmm_worker worker; /* the device thread */
	_Atomic uint64_t bytes, buffers, kicks, interrupts;
	/* kicks by where BAR0 was when the device thread took them */
	uint64_t kick_at[VMM_VIRTIO_RNG_KICK_PLACES];
	uint64_t kicks_at[VMM_VIRTIO_RNG_KICK_PLACES];
	struct vmm_devstat stat;
};

static const struct vmres_pci_func_ops rng_ops = {
	.version = VMRES_PCI_FUNC_OPS_VERSION,
};

/* One virtio capability: ID and next pointer are the helper's, the rest ours. */
static int add_virtio_cap(struct vmres_pci_func *f, unsigned int off, uint8_t type,
			  uint32_t bar_off, uint32_t len, bool notify)
{
	unsigned int cap_len = notify ? 20 : 16;
	int rc = vmres_pci_func_add_capability(f, off, VIRTIO_CAP_VENDOR, cap_len);

	if (rc == 0)
		rc = vmres_pci_func_define(f, off + 2, 2, cap_len | (uint32_t)type << 8, 0);
	if (rc == 0)
		rc = vmres_pci_func_define(f, off + 4, 4, 0 /* BAR0, id 0 */, 0);
	if (rc == 0)
		rc = vmres_pci_func_define(f, off + 8, 4, bar_off, 0);
	if (rc == 0)
		rc = vmres_pci_func_define(f, off + 12, 4, len, 0);
	if (rc == 0 && notify)
		rc = vmres_pci_func_define(f, off + 16, 4, 0 /* notify_off_multiplier */, 0);
	return rc;
}

static void queue_reset(struct vqueue *q)
{
	memset(q, 0, sizeof(*q));
	q->size = QUEUE_MAX;
	q->msix = VIRTIO_MSI_NO_VECTOR;
}

static void device_reset(struct vmm_virtio_rng *r)
{
	r->dfselect = r->gfselect = 0;
	r->driver_features = 0;
	r->config_msix = VIRTIO_MSI_NO_VECTOR;
	r->status = 0;
	r->isr = 0;
	r->queue_select = 0;
	queue_reset(&r->q);
}

int vmm_virtio_rng_new(struct vmm *vm, uint64_t bar0, struct vmm_virtio_rng **out)
{
	struct vmm_virtio_rng *r = calloc(1, sizeof(*r));
	struct vmres_pci_func_config cfg = VMRES_PCI_FUNC_CONFIG_INIT;
	int rc;

	if (!r)
		return -1;
	r->vm = vm;
	r->stat.name = "virtio-rng";
	r->notify_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	device_reset(r);
	if (vmm_worker_init(&r->worker) != 0)
		goto fail;
	cfg.vendor_id = VIRTIO_VENDOR;
	cfg.device_id = VIRTIO_DEV_ENTROPY;
	cfg.revision = 1; /* modern */
	cfg.subsystem_vendor_id = VIRTIO_VENDOR;
	cfg.subsystem_id = 0x40; /* "from 0x40": a device of the modern range */
	cfg.class_code = 0xff0000;
	cfg.bars[0].kind = VMRES_PCI_BAR_MEM32;
	cfg.bars[0].size = VMM_VIRTIO_RNG_BAR_SIZE;
	cfg.bars[0].addr = bar0;
	cfg.bars[0].res_index = VMM_VIRTIO_RNG_RES_BAR0;
	cfg.msix.vectors = VMM_VIRTIO_RNG_VECTORS;
	cfg.msix.table_bar = 0;
	cfg.msix.table_offset = 0x3000;
	cfg.msix.pba_bar = 0;
	cfg.msix.pba_offset = 0x3800;
	cfg.msix.res_index = VMM_VIRTIO_RNG_RES_MSIX;
	cfg.ops = &rng_ops;
	cfg.opaque = r;
	r->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->notify_fd < 0 || vmres_pci_func_new(&cfg, &r->func) != 0)
		goto fail;
	rc = add_virtio_cap(r->func, 0x50, VIRTIO_CAP_COMMON, COMMON_OFF, COMMON_SIZE, false);
	if (rc == 0)
		rc = add_virtio_cap(r->func, 0x60, VIRTIO_CAP_ISR, ISR_OFF, 1, false);
	if (rc == 0)
		rc = add_virtio_cap(r->func, 0x70, VIRTIO_CAP_NOTIFY, NOTIFY_OFF, 2, true);
	if (rc != 0) {
		vmm_fail("virtio capabilities", rc);
		goto fail;
	}
	*out = r;
	return 0;
fail:
	vmm_virtio_rng_free(r);
	return -1;
}

void vmm_virtio_rng_stop(struct vmm_virtio_rng *r)
{
	if (r)
		vmm_worker_stop(&r->worker);
}

void vmm_virtio_rng_free(struct vmm_virtio_rng *r)
{
	if (!r)
		return;
	vmm_worker_free(&r->worker);
	vmres_pci_func_free(r->func);
	if (r->notify_fd >= 0)
		close(r->notify_fd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

struct vmres_pci_func *vmm_virtio_rng_func(struct vmm_virtio_rng *r)
{
	return r->func;
}

int vmm_virtio_rng_notify_fd(struct vmm_virtio_rng *r)
{
	return r->notify_fd;
}

struct vmm_devstat *vmm_virtio_rng_stat(struct vmm_virtio_rng *r)
{
	return &r->stat;
}

void vmm_virtio_rng_counts(struct vmm_virtio_rng *r, struct vmm_virtio_rng_counts *out)
{
	out->bytes = atomic_load(&r->bytes);
	out->buffers = atomic_load(&r->buffers);
	out->kicks = atomic_load(&r->kicks);
	out->interrupts = atomic_load(&r->interrupts);
	pthread_mutex_lock(&r->lock);
	memcpy(out->kick_at, r->kick_at, sizeof(out->kick_at));
	memcpy(out->kicks_at, r->kicks_at, sizeof(out->kicks_at));
	pthread_mutex_unlock(&r->lock);
}

/* Count @n kicks where BAR0 is now (the first places seen). Under the lock. */
static void count_kick_place(struct vmm_virtio_rng *r, uint64_t n)
{
	struct vmres_pci_bar_state st;

	if (vmres_pci_func_bar_get(r->func, 0, &st) != 0)
		return;
	for (unsigned int i = 0; i < VMM_VIRTIO_RNG_KICK_PLACES; i++) {
		if (r->kicks_at[i] && r->kick_at[i] != st.mapped_base)
			continue;
		r->kick_at[i] = st.mapped_base;
		r->kicks_at[i] += n;
		return;
	}
}

/* Guest memory [gpa, gpa + len) in the VMM, or NULL if it is not all RAM. */
static uint8_t *guest_ptr(struct vmm_virtio_rng *r, uint64_t gpa, uint64_t len)
{
	if (gpa > r->vm->ram_size || len > r->vm->ram_size - gpa)
		return NULL;
	return r->vm->ram + gpa;
}

static uint16_t le16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Fill one descriptor chain from @head; the bytes written, in *@len. */
static bool fill_chain(struct vmm_virtio_rng *r, const struct vqueue *q, uint16_t head,
		       uint32_t *len)
{
	uint16_t i = head;

	*len = 0;
	for (unsigned int n = 0; n < q->size; n++) {
		const uint8_t *d = guest_ptr(r, q->desc + 16ull * i, 16);
		uint64_t addr;
		uint32_t dlen;
		uint16_t flags;
		uint8_t *buf;

		if (!d || i >= q->size)
			return false;
		memcpy(&addr, d, 8);
		memcpy(&dlen, d + 8, 4);
		flags = le16_at(d + 12);
		if (flags & VRING_DESC_F_WRITE) {
			buf = guest_ptr(r, addr, dlen);
			if (!buf)
				return false;
			for (uint32_t done = 0; done < dlen;) {
				ssize_t got = getrandom(buf + done, dlen - done, 0);

				if (got <= 0) {
					if (got < 0 && errno == EINTR)
						continue;
					return false;
				}
				done += (uint32_t)got;
			}
			*len += dlen;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			return true;
		i = le16_at(d + 14);
	}
	return false; /* a loop */
}

/* One pass over the queue: every available buffer filled and used; true if
 * the driver is to be interrupted. Under the lock. */
static bool process_queue(struct vmm_virtio_rng *r)
{
	struct vqueue *q = &r->q;
	uint8_t *avail, *used;
	uint16_t avail_idx, used_idx;
	bool any = false;

	if (!q->enable || !(r->status & STATUS_FEATURES_OK) || (r->status & STATUS_NEEDS_RESET))
		return false;
	avail = guest_ptr(r, q->avail, 6 + 2ull * q->size);
	used = guest_ptr(r, q->used, 6 + 8ull * q->size);
	if (!avail || !used) {
		r->status |= STATUS_NEEDS_RESET;
		return false;
	}
	avail_idx = __atomic_load_n((uint16_t *)(avail + 2), __ATOMIC_ACQUIRE);
	used_idx = le16_at(used + 2);
	while (q->last_avail != avail_idx) {
		uint16_t head = le16_at(avail + 4 + 2u * (q->last_avail % q->size));
		uint8_t *elem = used + 4 + 8u * (used_idx % q->size);
		uint32_t head32 = head, len;

		if (!fill_chain(r, q, head, &len)) {
			r->status |= STATUS_NEEDS_RESET;
			break;
		}
		memcpy(elem, &head32, 4);
		memcpy(elem + 4, &len, 4);
		q->last_avail++;
		used_idx++;
		atomic_fetch_add_explicit(&r->bytes, len, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->buffers, 1, memory_order_relaxed);
		any = true;
	}
	if (!any)
		return false;
	/* sequentially consistent: the used index is visible before the flags
	 * are read, so a driver that clears NO_INTERRUPT meanwhile is seen */
	__atomic_store_n((uint16_t *)(used + 2), used_idx, __ATOMIC_SEQ_CST);
	r->isr |= 1;
	return !(__atomic_load_n((uint16_t *)avail, __ATOMIC_SEQ_CST) & VRING_AVAIL_F_NO_INTR);
}

static void *rng_thread(void *arg)
{
	struct vmm_virtio_rng *r = arg;
	struct pollfd pfd[2] = {{.fd = r->notify_fd, .events = POLLIN},
				{.fd = r->worker.stop_fd, .events = POLLIN}};

	for (;;) {
		eventfd_t n;
		uint16_t vector;
		bool fire;
		int rc;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("vmres-demo: virtio-rng: poll");
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		if (!(pfd[0].revents & POLLIN) || eventfd_read(r->notify_fd, &n) != 0)
			continue;
		atomic_fetch_add_explicit(&r->kicks, n, memory_order_relaxed);
		pthread_mutex_lock(&r->lock);
		count_kick_place(r, n);
		fire = process_queue(r);
		vector = r->q.msix;
		pthread_mutex_unlock(&r->lock);
		if (!fire || vector == VIRTIO_MSI_NO_VECTOR)
			continue;
		rc = vmres_pci_func_fire(r->func, vector);
		if (rc == 0)
			atomic_fetch_add_explicit(&r->interrupts, 1, memory_order_relaxed);
		else if (rc != VMRES_ESTATE) /* MSI-X off: the driver polls */
			fprintf(stderr, "vmres-demo: virtio-rng: MSI-X vector %u: %s\n", vector,
				vmres_strerror(rc));
	}
}

int vmm_virtio_rng_start(struct vmm_virtio_rng *r, struct vmres_irq_src *const *msix)
{
	int rc = vmres_pci_func_set_msix_sources(r->func, msix, VMM_VIRTIO_RNG_VECTORS);

	if (rc != 0)
		return vmm_fail("virtio-rng MSI-X sources", rc);
	return vmm_worker_start(&r->worker, rng_thread, r, "virtio-rng");
}

static uint32_t common_read(struct vmm_virtio_rng *r, unsigned int off)
{
	const uint64_t features = VIRTIO_F_VERSION_1;

	switch (off) {
	case CC_DFSELECT:
		return r->dfselect;
	case CC_DF:
		return r->dfselect < 2 ? (uint32_t)(features >> (32 * r->dfselect)) : 0;
	case CC_GFSELECT:
		return r->gfselect;
	case CC_GF:
		return r->gfselect < 2 ? (uint32_t)(r->driver_features >> (32 * r->gfselect)) : 0;
	case CC_MSIX:
		return r->config_msix;
	case CC_NUMQ:
		return 1;
	case CC_STATUS:
		return r->status;
	case CC_CFGGEN:
		return 0;
	case CC_Q_SELECT:
		return r->queue_select;
	}
	if (r->queue_select != 0)
		return 0; /* a queue that does not exist: size 0 */
	switch (off) {
	case CC_Q_SIZE:
		return r->q.size;
	case CC_Q_MSIX:
		return r->q.msix;
	case CC_Q_ENABLE:
		return r->q.enable;
	case CC_Q_NOFF:
		return 0;
	case CC_Q_DESCLO:
		return (uint32_t)r->q.desc;
	case CC_Q_DESCHI:
		return (uint32_t)(r->q.desc >> 32);
	case CC_Q_AVAILLO:
		return (uint32_t)r->q.avail;
	case CC_Q_AVAILHI:
		return (uint32_t)(r->q.avail >> 32);
	case CC_Q_USEDLO:
		return (uint32_t)r->q.used;
	case CC_Q_USEDHI:
		return (uint32_t)(r->q.used >> 32);
	}
	return 0;
}

static void set_half(uint64_t *reg, bool high, uint32_t v)
{
	*reg = high ? (*reg & 0xffffffffull) | (uint64_t)v << 32 : (*reg & ~0xffffffffull) | v;
}

static void common_write(struct vmm_virtio_rng *r, unsigned int off, uint32_t v)
{
	struct vqueue *q = &r->q;

	switch (off) {
	case CC_DFSELECT:
		r->dfselect = v;
		return;
	case CC_GFSELECT:
		r->gfselect = v;
		return;
	case CC_GF:
		if (r->gfselect < 2)
			set_half(&r->driver_features, r->gfselect == 1, v);
		return;
	case CC_MSIX:
		r->config_msix = v < VMM_VIRTIO_RNG_VECTORS ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		return;
	case CC_STATUS:
		if (v == 0) {
			device_reset(r);
			return;
		}
		/* FEATURES_OK only for what the device offers, VERSION_1 included */
		if ((v & STATUS_FEATURES_OK) && r->driver_features != VIRTIO_F_VERSION_1)
			v &= ~STATUS_FEATURES_OK;
		r->status = (uint8_t)v;
		return;
	case CC_Q_SELECT:
		r->queue_select = (uint16_t)v;
		return;
	}
	if (r->queue_select != 0 || q->enable)
		return; /* no such queue; or enabled: its set-up is fixed until reset */
	switch (off) {
	case CC_Q_SIZE:
		/* a power of two up to the maximum (split ring) */
		if (v && v <= QUEUE_MAX && !(v & (v - 1)))
			q->size = (uint16_t)v;
		return;
	case CC_Q_MSIX:
		q->msix = v < VMM_VIRTIO_RNG_VECTORS ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		return;
	case CC_Q_ENABLE:
		q->enable = v == 1;
		return;
	case CC_Q_DESCLO:
	case CC_Q_DESCHI:
		set_half(&q->desc, off == CC_Q_DESCHI, v);
		return;
	case CC_Q_AVAILLO:
	case CC_Q_AVAILHI:
		set_half(&q->avail, off == CC_Q_AVAILHI, v);
		return;
	case CC_Q_USEDLO:
	case CC_Q_USEDHI:
		set_half(&q->used, off == CC_Q_USEDHI, v);
		return;
	}
}

/* Each register of the common configuration: offset and width. */
static const struct {
	uint8_t off, width;
} common_regs[] = {
	{CC_DFSELECT, 4}, {CC_DF, 4},	   {CC_GFSELECT, 4},  {CC_GF, 4},	 {CC_MSIX, 2},
	{CC_NUMQ, 2},	  {CC_STATUS, 1},  {CC_CFGGEN, 1},    {CC_Q_SELECT, 2},	 {CC_Q_SIZE, 2},
	{CC_Q_MSIX, 2},	  {CC_Q_ENABLE, 2}, {CC_Q_NOFF, 2},   {CC_Q_DESCLO, 4},	 {CC_Q_DESCHI, 4},
	{CC_Q_AVAILLO, 4}, {CC_Q_AVAILHI, 4}, {CC_Q_USEDLO, 4}, {CC_Q_USEDHI, 4},
};

/* A read of any bytes of the common configuration: from the registers' image. */
static uint64_t common_bytes(struct vmm_virtio_rng *r, unsigned int off, unsigned int size)
{
	uint8_t img[COMMON_SIZE] = {0};
	uint64_t v = 0;

	for (size_t i = 0; i < sizeof(common_regs) / sizeof(common_regs[0]); i++) {
		uint32_t reg = common_read(r, common_regs[i].off);

		for (unsigned int b = 0; b < common_regs[i].width; b++)
			img[common_regs[i].off + b] = (uint8_t)(reg >> (8 * b));
	}
	for (unsigned int b = 0; b < size && off + b < COMMON_SIZE; b++)
		v |= (uint64_t)img[off + b] << (8 * b);
	return v;
}

/* The register a write of @size bytes at @off is, or -1 (a partial or
 * straddling write, which drivers do not make). */
static int common_reg_at(unsigned int off, unsigned int size)
{
	for (size_t i = 0; i < sizeof(common_regs) / sizeof(common_regs[0]); i++)
		if (common_regs[i].off == off && common_regs[i].width == size)
			return (int)off;
	return -1;
}

static uint64_t rng_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			 unsigned int size)
{
	struct vmm_virtio_rng *r = opaque;
	uint64_t v = 0;

	(void)addr;
	vmm_devstat_count(&r->stat, false);
	if (vmres_pci_func_bar_read(r->func, range, offset, size, &v) == 0)
		return v; /* MSI-X table or PBA */
	pthread_mutex_lock(&r->lock);
	if (offset < COMMON_SIZE) {
		v = common_bytes(r, (unsigned int)offset, size);
	} else if (offset == ISR_OFF) {
		v = r->isr; /* reading clears it */
		r->isr = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void rng_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		      unsigned int size, uint64_t value)
{
	struct vmm_virtio_rng *r = opaque;

	(void)addr;
	vmm_devstat_count(&r->stat, true);
	if (vmres_pci_func_bar_write(r->func, range, offset, size, value) == 0)
		return; /* MSI-X table */
	if (offset >= NOTIFY_OFF && offset < NOTIFY_OFF + 2) {
		/* no ioeventfd took it (the region is not installed yet) */
		eventfd_write(r->notify_fd, 1);
		return;
	}
	if (offset >= COMMON_SIZE || common_reg_at((unsigned int)offset, size) < 0)
		return;
	pthread_mutex_lock(&r->lock);
	common_write(r, (unsigned int)offset, (uint32_t)value);
	pthread_mutex_unlock(&r->lock);
}

void vmm_virtio_rng_device(struct vmm_virtio_rng *r, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = r->stat.name;
	dev->opaque = r;
	dev->read = rng_read;
	dev->write = rng_write;
}

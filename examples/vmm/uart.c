/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A 16550-style UART: the transmit holding register goes to stdout (a line at a
 * time), the line status always says "transmitter empty, nothing received",
 * the other registers hold what the guest writes. With an interrupt line
 * (vmm_uart_set_irq()) it raises the transmitter-empty interrupt as a 16550A
 * does, which an interrupt-driven driver (Linux's 8250) needs: pending when
 * the guest enables it with the transmitter empty and after every character
 * written, cleared by a read of IIR that reports it or by the next write; the
 * line is the pending interrupt gated by MCR OUT2, and each rise of it is an
 * edge on the ISA interrupt. The FIFO bits of IIR follow FCR's enable bit.
 *
 *     0 THR/RBR (DLL when LCR.DLAB)   1 IER (DLM when LCR.DLAB)   2 IIR/FCR
 *     3 LCR   4 MCR   5 LSR   6 MSR   7 SCR
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "devices.h"

#define UART_LCR_DLAB 0x80
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_IIR_NONE 0x01
#define UART_IIR_THRI 0x02
#define UART_IER_THRI 0x02
#define UART_MCR_OUT2 0x08
#define UART_MSR_IDLE 0xb0 /* DCD, DSR, CTS */
#define UART_LINE_MAX 256

struct vmm_uart {
	pthread_mutex_t lock; /* several vCPUs may print */
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thre_pending; /* transmitter-empty interrupt pending */
	bool irq_level;	   /* what the interrupt line shows */
	void (*irq_fn)(void *ctx);
	void *irq_ctx;
	void (*out_fn)(void *ctx, const char *text, size_t len);
	void *out_ctx;
	char line[UART_LINE_MAX];
	size_t len;
	struct vmm_devstat stat;
};

int vmm_uart_new(const char *name, struct vmm_uart **out)
{
	struct vmm_uart *u = calloc(1, sizeof(*u));

	if (!u)
		return -1;
	pthread_mutex_init(&u->lock, NULL);
	u->dll = 12; /* 9600 baud, as after reset */
	u->stat.name = name;
	*out = u;
	return 0;
}

static void flush_locked(struct vmm_uart *u)
{
	if (u->len) {
		if (u->out_fn)
			u->out_fn(u->out_ctx, u->line, u->len);
		fwrite(u->line, 1, u->len, stdout);
		fflush(stdout);
		u->len = 0;
	}
}

void vmm_uart_flush(struct vmm_uart *u)
{
	pthread_mutex_lock(&u->lock);
	flush_locked(u);
	pthread_mutex_unlock(&u->lock);
}

void vmm_uart_free(struct vmm_uart *u)
{
	if (!u)
		return;
	vmm_uart_flush(u);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

struct vmm_devstat *vmm_uart_stat(struct vmm_uart *u)
{
	return &u->stat;
}

void vmm_uart_set_irq(struct vmm_uart *u, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&u->lock);
	u->irq_fn = fn;
	u->irq_ctx = ctx;
	pthread_mutex_unlock(&u->lock);
}

void vmm_uart_set_output(struct vmm_uart *u, void (*fn)(void *ctx, const char *text, size_t len),
			 void *ctx)
{
	pthread_mutex_lock(&u->lock);
	u->out_fn = fn;
	u->out_ctx = ctx;
	pthread_mutex_unlock(&u->lock);
}

/* Recompute the interrupt line; a rise is an edge for the interrupt controller. */
static void update_irq_locked(struct vmm_uart *u)
{
	bool level = u->thre_pending && (u->ier & UART_IER_THRI) && (u->mcr & UART_MCR_OUT2);

	if (level && !u->irq_level && u->irq_fn)
		u->irq_fn(u->irq_ctx);
	u->irq_level = level;
}

static void transmit(struct vmm_uart *u, char c)
{
	u->line[u->len++] = c;
	if (c == '\n' || u->len == UART_LINE_MAX)
		flush_locked(u);
}

static uint64_t uart_read(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
			  unsigned int size)
{
	struct vmm_uart *u = opaque;
	uint8_t v = 0;

	(void)range;
	(void)addr;
	(void)size; /* a wider access reads the register at its first byte */
	vmm_devstat_count(&u->stat, false);
	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case 0:
		v = (u->lcr & UART_LCR_DLAB) ? u->dll : 0;
		break;
	case 1:
		v = (u->lcr & UART_LCR_DLAB) ? u->dlm : u->ier;
		break;
	case 2:
		if (u->thre_pending && (u->ier & UART_IER_THRI)) {
			v = UART_IIR_THRI;
			u->thre_pending = false; /* reading the reason clears it */
			update_irq_locked(u);
		} else {
			v = UART_IIR_NONE;
		}
		v |= (u->fcr & 1) ? 0xc0 : 0;
		break;
	case 3:
		v = u->lcr;
		break;
	case 4:
		v = u->mcr;
		break;
	case 5:
		v = UART_LSR_THRE | UART_LSR_TEMT;
		break;
	case 6:
		v = UART_MSR_IDLE;
		break;
	case 7:
		v = u->scr;
		break;
	}
	pthread_mutex_unlock(&u->lock);
	return v;
}

static void uart_write(void *opaque, unsigned int range, uint64_t offset, uint64_t addr,
		       unsigned int size, uint64_t value)
{
	struct vmm_uart *u = opaque;
	uint8_t v = (uint8_t)value;

	(void)range;
	(void)addr;
	(void)size;
	vmm_devstat_count(&u->stat, true);
	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case 0:
		if (u->lcr & UART_LCR_DLAB)
			u->dll = v;
		else
			transmit(u, (char)v);
		/* sent at once: the holding register is empty again */
		u->thre_pending = !(u->lcr & UART_LCR_DLAB) || u->thre_pending;
		break;
	case 1:
		if (u->lcr & UART_LCR_DLAB) {
			u->dlm = v;
		} else {
			if ((v & UART_IER_THRI) && !(u->ier & UART_IER_THRI))
				u->thre_pending = true; /* enabled while empty */
			u->ier = v & 0x0f;
		}
		break;
	case 2:
		u->fcr = v;
		break;
	case 3:
		u->lcr = v;
		break;
	case 4:
		u->mcr = v & 0x1f;
		break;
	case 7:
		u->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
	update_irq_locked(u);
	pthread_mutex_unlock(&u->lock);
}

void vmm_uart_device(struct vmm_uart *u, struct vmres_device *dev)
{
	*dev = (struct vmres_device)VMRES_DEVICE_INIT;
	dev->name = u->stat.name;
	dev->opaque = u;
	dev->read = uart_read;
	dev->write = uart_write;
}

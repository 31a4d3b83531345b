/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A 16550-style UART, enough for a polling guest: the transmit holding register
 * goes to stdout (a line at a time), the line status always says "transmitter
 * empty, nothing received", the other registers hold what the guest writes.
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
#define UART_MSR_IDLE 0xb0 /* DCD, DSR, CTS */
#define UART_LINE_MAX 256

struct vmm_uart {
	pthread_mutex_t lock; /* several vCPUs may print */
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
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
		v = UART_IIR_NONE | ((u->fcr & 1) ? 0xc0 : 0);
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
		break;
	case 1:
		if (u->lcr & UART_LCR_DLAB)
			u->dlm = v;
		else
			u->ier = v & 0x0f;
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

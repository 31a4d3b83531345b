/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "restext.h"
#include "bits.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

void vmres__text_put(struct vmres__text *o, const char *fmt, ...)
{
	va_list ap;
	char *dst = NULL;
	size_t room = 0;
	int n;

	if (o->buf && o->pos < o->len) {
		dst = o->buf + o->pos;
		room = o->len - o->pos;
	}
	va_start(ap, fmt);
	n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += (size_t)n;
}

int vmres__resource_text(struct vmres__text *o, const struct vmres_resource *r, const char *word,
			 int word_len)
{
	const char *kind;

	switch (r->kind) {
	case VMRES_RES_ADDR:
		kind = vmres_space_name(r->u.addr.space);
		break;
	case VMRES_RES_IRQ:
	case VMRES_RES_MSI:
	case VMRES_RES_ID:
		kind = vmres_res_kind_name(r->kind);
		break;
	default:
		return VMRES_EINVAL;
	}
	vmres__text_put(o, "%s", kind);
	if (word)
		vmres__text_put(o, " %.*s", word_len, word);
	switch (r->kind) {
	case VMRES_RES_ADDR:
		vmres__text_put(o, " [0x%" PRIx64 "-0x%" PRIx64 "]", r->u.addr.base,
				vmres__range_last(r->u.addr.base, r->u.addr.size));
		if (r->u.addr.align > 1)
			vmres__text_put(o, " align 0x%" PRIx64, r->u.addr.align);
		break;
	case VMRES_RES_IRQ:
		vmres__text_put(o, " %" PRIu32 "%s", r->u.irq.gsi,
				r->u.irq.shared ? " shared" : "");
		break;
	case VMRES_RES_MSI:
		vmres__text_put(o, " %" PRIu32 " msg 0x%08" PRIx32 ":%08" PRIx32 "/0x%" PRIx32,
				r->u.msi.gsi, r->u.msi.msg.addr_hi, r->u.msi.msg.addr_lo,
				r->u.msi.msg.data);
		break;
	default:
		vmres__text_put(o, " %" PRIu32, r->u.id.id);
		break;
	}
	return 0;
}

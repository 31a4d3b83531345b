/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One writer of a resource as text, for vmres_resource_format() and the device
 * manager's dump, so that the two print each kind the same way. They differ
 * only in the word after the kind: the format names the pool there ("irq
 * gsi-legacy 4"), the dump names the number ("irq gsi 4") and appends the pool
 * after it ("irq gsi 4 pool gsi-legacy"), a format its tests and users read
 * already. Not installed.
 */
#ifndef VMRES_UTIL_RESTEXT_H
#define VMRES_UTIL_RESTEXT_H

#include <vmres/resource.h>

#include <stddef.h>

/* snprintf that appends at pos and keeps counting once the buffer is full. */
struct vmres__text {
	char *buf;
	size_t len;
	size_t pos;
};

void vmres__text_put(struct vmres__text *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Append @p r: "<kind>[ <word>] <value>", where the kind is the space for an
 * address range, and <word> is the first @p word_len bytes of @p word (none
 * when @p word is NULL). The value is "[0x<first>-0x<last>][ align 0x<align>]",
 * "<gsi>[ shared]", "<gsi> msg 0x<addr_hi>:<addr_lo>/0x<data>" or "<id>".
 * Returns VMRES_EINVAL (nothing appended) for an unknown kind, else 0.
 */
int vmres__resource_text(struct vmres__text *o, const struct vmres_resource *r, const char *word,
			 int word_len);

#endif /* VMRES_UTIL_RESTEXT_H */

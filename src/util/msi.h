/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the interrupt router and the PCI model share about MSI messages. Not installed. */
#ifndef VMRES_UTIL_MSI_H
#define VMRES_UTIL_MSI_H

#include <vmres/resource.h>

#include <stdbool.h>

/* Do @p a and @p b name the same message (every field, never padding)? */
static inline bool vmres__msi_msg_equal(const struct vmres_msi_msg *a,
					const struct vmres_msi_msg *b)
{
	return a->addr_lo == b->addr_lo && a->addr_hi == b->addr_hi && a->data == b->data;
}

#endif /* VMRES_UTIL_MSI_H */

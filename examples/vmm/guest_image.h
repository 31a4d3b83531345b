/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest's flat binary, built from examples/guest/ by the normal build and
 * embedded by the generated guest_image.c (examples/guest/embed.py). */
#ifndef VMM_GUEST_IMAGE_H
#define VMM_GUEST_IMAGE_H

#include <stddef.h>

extern const unsigned char vmm_guest_image[];
extern const size_t vmm_guest_image_size;

#endif

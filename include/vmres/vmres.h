/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file vmres.h
 * @brief Everything: includes every public vmres header.
 */
#ifndef VMRES_VMRES_H
#define VMRES_VMRES_H

#include <vmres/common.h>
#include <vmres/addr.h>
#include <vmres/ids.h>
#include <vmres/resource.h>

#endif /* VMRES_VMRES_H */

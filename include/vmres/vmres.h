/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file vmres.h
 * @brief Everything: includes every public vmres header, in layer order.
 */
#ifndef VMRES_VMRES_H
#define VMRES_VMRES_H

#include <vmres/common.h>
#include <vmres/addr.h>
#include <vmres/ids.h>
#include <vmres/resource.h>
#include <vmres/sysalloc.h>
#include <vmres/device.h>
#include <vmres/bus.h>
#include <vmres/devmgr.h>
#include <vmres/irq.h>
#include <vmres/kvmres.h>
#include <vmres/pci.h>
#include <vmres/snapshot.h>

#endif /* VMRES_VMRES_H */

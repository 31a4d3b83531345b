/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Firmware mode of the demo VMM: a real PC firmware (SeaBIOS, Debian's
 * /usr/share/seabios/bios.bin) as the guest, which enumerates PCI, sizes every
 * BAR and assigns addresses itself; afterwards the demo checks that vmres's
 * device manager, buses, pools and BAR registers agree with what SeaBIOS says
 * it mapped.
 *
 *     guest physical                        what                      vmres
 *     [0, 64 MiB)                           RAM (CMOS says so)        -
 *     [0xe0000, 0x100000)                   the BIOS image's last     (RAM: SeaBIOS's
 *                                           128 KiB, pre-copied       shadowing needs
 *                                                                     no PAM emulation)
 *     [4 GiB - image size, 4 GiB)           the BIOS image, ROM       -
 *     port 0x402                            debugcon -> stdout        "pio" (exact)
 *     ports 0x70-0x71                       CMOS/RTC                  "pio" (platform rtc)
 *     ports 0x40-0x43, 0x61                 PIT counters (software    "pio" (platform
 *     ports 0x20-0x21, 0xa0-0xa1            CPU; KVM: the kernel's)   timer0, pic1, pic2)
 *                                           PICs, IRQ 0 only
 *     ports 0xcf8-0xcff                     PCI conf1 -> vmres host   "pio" (platform)
 *       00:00.0 i440FX host bridge          vmres_pci_host_bridge_new
 *       00:01.0 .. 00:1f.0 stub functions   BARs: "mmio32", "mmio64", "pio"
 *     everything else                       misses: reads all ones, writes dropped
 */
#ifndef VMM_FIRMWARE_H
#define VMM_FIRMWARE_H

#include <stdbool.h>

#include "vmm.h"

#define VMM_FW_DEFAULT_BIOS "/usr/share/seabios/bios.bin"
#define VMM_FW_MAX_COPIES   8 /* 8 copies of the 4-device set fill slots 1-31 */

struct vmm_fw_opts {
	const struct vmm_backend *backend;
	const char *bios;    /* path of the image (128 or 256 KiB) */
	unsigned int copies; /* copies of the default device set, 1..VMM_FW_MAX_COPIES */
	bool collide;	     /* pre-reserve the address SeaBIOS picks for one BAR */
	double timeout_s;    /* stop the guest after this long at the latest */
	bool until_boot;     /* run on to SeaBIOS's boot phase, not only its PCI set-up */
};

/* Run SeaBIOS and check: 0 if vmres and SeaBIOS agree (with --collide: if the
 * collision was refused and the device kept its BAR, and all else agrees), 1 if
 * not, 77 if this host cannot run it (reason printed). */
int vmm_fw_main(const struct vmm_fw_opts *opts);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Makes the committed snapshot fixture: a small but complete VMM state saved in
 * the format this vmres writes, and its description (tests/snapshot_fixture.h).
 * test_snapshot.c restores the committed file and compares the description of
 * the result with the committed one, so that every later vmres is shown to read
 * snapshots of this format.
 *
 *     gen_snapshot_fixture OUT.bin OUT.dump      build the state, save it, describe it
 *     gen_snapshot_fixture --describe IN.bin OUT.dump
 *                                               restore IN.bin and describe that
 *
 * tests/data/snapshot-v1.bin was made by the first form with format 1.0. Do not
 * make it again after the format changes: it is the witness of the old format
 * (a new major gets its own snapshot-v<major>.bin). Should the description
 * itself change (a dump prints more), the second form rewrites the .dump from
 * the committed file; check the difference by hand before committing it.
 *
 * Built by meson (not installed, not a test).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/devmgr.h>
#include <vmres/snapshot.h>
#include <vmres/sysalloc.h>

#include "../helpers.h"
#include "../snapshot_fixture.h"

static void check(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "gen_snapshot_fixture: %s: %s\n", what, vmres_errname(rc));
		exit(1);
	}
}

#define CHECK(call) check((call), #call)

/* Allocate @q for @owner, name the owner and label the first resource. */
static size_t alloc(struct vmres_sysalloc *sa, const struct vmres_request *q, size_t n,
		    uint64_t owner, const char *owner_name, const char *label,
		    struct vmres_resource *out)
{
	size_t n_out = 0;

	CHECK(vmres_sysalloc_alloc(sa, q, n, owner, out, 16, &n_out, NULL));
	if (owner_name)
		CHECK(vmres_sysalloc_set_owner_name(sa, owner, owner_name));
	if (label)
		CHECK(vmres_sysalloc_set_label(sa, &out[0], owner, label));
	return n_out;
}

static uint32_t add(struct vmres_devmgr *m, const char *name, uint64_t owner, uint32_t parent,
		    const struct vmres_resource *res, size_t n)
{
	struct vmres_device dev = VMRES_DEVICE_INIT;
	uint32_t id;

	dev.name = name;
	dev.owner = owner;
	CHECK(vmres_devmgr_register(m, &dev, parent, res, n, &id));
	return id;
}

static void msi(struct vmres_devmgr *m, uint32_t id, unsigned int index, uint32_t addr_lo,
		uint32_t data)
{
	struct vmres_msi_msg msg = {addr_lo, 0, data};

	CHECK(vmres_devmgr_reroute_msi(m, id, index, &msg));
}

/*
 * A PC: the x86-64 preset's platform reservations, a PCI host bridge with its
 * ECAM window, devices under it (one two levels down), a legacy UART and an
 * unnamed PIO device, a device with no resources, unplugged devices (an id gap,
 * and the last id handed out, so that the next id is above the highest left
 * plus one), guest-moved BARs
 * (one into the other MMIO window), unmapped BARs (one then moved over another
 * device's mapped BAR), programmed and unprogrammed MSI vectors, allocations no
 * device holds (firmware), an owner with a name and nothing allocated.
 */
static void build(struct vmres_sysalloc **sa_out, struct vmres_devmgr **m_out)
{
	struct vmres_resource res[16], fw;
	struct vmres_request q[8];
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	uint32_t host, net, blk, nvme, fn, gone, last;
	size_t n;

	CHECK(vmres_sysalloc_new_x86_64(&sa));
	CHECK(vmres_devmgr_new(sa, &m));

	/* Firmware's own reservations, and a name with nothing allocated. */
	CHECK(vmres_sysalloc_reserve(sa, "mmio32", 0xffe00000, 0x200000, 0, 0x30, "bios", &fw));
	CHECK(vmres_sysalloc_reserve(sa, "device-id", 1000, 0, 0, 0x30, "fw-cfg", &fw));
	CHECK(vmres_sysalloc_set_owner_name(sa, 0x30, "firmware"));
	CHECK(vmres_sysalloc_set_owner_name(sa, 0x31, "spare"));

	/* The host bridge: its ECAM window where firmware put it. */
	CHECK(vmres_sysalloc_reserve(sa, "mmio32", 0xe0000000, 0x10000000, 0x10000000, 1, "ecam",
				     &res[0]));
	CHECK(vmres_sysalloc_set_owner_name(sa, 1, "pci-host"));
	host = add(m, "pci-host", 1, VMRES_DEVMGR_NO_PARENT, res, 1);

	/* virtio-net: 32- and 64-bit BARs, a 4-vector MSI-X block, an id. */
	q[0] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0);
	q[1] = test_rq_addr("mmio64", VMRES_SPACE_MMIO, 0x4000, 0x4000, VMRES_ADDR_FIRST_FIT, 0);
	q[2] = test_rq_num(VMRES_RES_MSI, "gsi-msi", 4, true);
	q[3] = test_rq_num(VMRES_RES_ID, "device-id", 1, false);
	n = alloc(sa, q, 4, 0x10, "virtio-net0", "bar1", res);
	CHECK(vmres_sysalloc_set_label(sa, &res[1], 0x10, "bar4"));
	CHECK(vmres_sysalloc_set_label(sa, &res[2], 0x10, "msix-config"));
	net = add(m, "virtio-net0", 0x10, host, res, n);
	msi(m, net, 2, 0xfee00000, 0x4021);
	msi(m, net, 3, 0xfee01000, 0x4022);
	msi(m, net, 5, 0xfee00000, 0x4024); /* vector 2 left unprogrammed */

	/* virtio-blk: a PIO BAR, an MMIO BAR without alignment, INTx, 3 loose MSIs. */
	q[0] = test_rq_addr("pio", VMRES_SPACE_PIO, 0x40, 0x40, VMRES_ADDR_FIRST_FIT, 0);
	q[1] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x100, 0, VMRES_ADDR_LAST_FIT, 0);
	q[2] = test_rq_num(VMRES_RES_IRQ, "gsi-legacy", 1, false);
	q[3] = test_rq_num(VMRES_RES_MSI, "gsi-msi", 3, false);
	n = alloc(sa, q, 4, 0x11, "virtio-blk0", "io", res);
	blk = add(m, "virtio-blk0", 0x11, host, res, n);
	msi(m, blk, 3, 0xfee02000, 0x4031);

	/* nvme with a function below it (an SR-IOV VF, say). */
	q[0] = test_rq_addr("mmio64", VMRES_SPACE_MMIO, 0x100000, 0x100000, VMRES_ADDR_FIRST_FIT,
			    0);
	q[1] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x2000, 0x1000, VMRES_ADDR_FIRST_FIT, 0);
	q[2] = test_rq_num(VMRES_RES_MSI, "gsi-msi", 2, true);
	n = alloc(sa, q, 3, 0x12, "nvme0", "bar0", res);
	nvme = add(m, "nvme0", 0x12, host, res, n);
	q[0] = test_rq_addr("mmio64", VMRES_SPACE_MMIO, 0x10000, 0x10000, VMRES_ADDR_FIRST_FIT, 0);
	q[1] = test_rq_num(VMRES_RES_MSI, "gsi-msi", 1, false);
	q[2] = test_rq_num(VMRES_RES_ID, "device-id", 1, false);
	n = alloc(sa, q, 3, 0x13, "nvme0-vf0", NULL, res);
	fn = add(m, "nvme0-vf0", 0x13, nvme, res, n);
	msi(m, fn, 1, 0xfee03000, 0x4041);

	/* A hot-plugged device that was unplugged again: its id stays used. */
	q[0] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0);
	n = alloc(sa, q, 1, 0x14, "hotplug", NULL, res);
	gone = add(m, "hotplug", 0x14, host, res, n);

	/* A legacy UART at fixed places, and an unnamed PIO device with no parent. */
	CHECK(vmres_sysalloc_reserve(sa, "pio", 0x2e0, 8, 0, 0x20, "com5", &res[0]));
	CHECK(vmres_sysalloc_reserve(sa, "gsi-legacy", 7, 0, 0, 0x20, "com5", &res[1]));
	CHECK(vmres_sysalloc_set_owner_name(sa, 0x20, "uart1"));
	add(m, "uart1", 0x20, VMRES_DEVMGR_NO_PARENT, res, 2);
	q[0] = test_rq_addr("pio", VMRES_SPACE_PIO, 4, 0, VMRES_ADDR_LAST_FIT, 0);
	n = alloc(sa, q, 1, 0x21, NULL, NULL, res);
	add(m, NULL, 0x21, VMRES_DEVMGR_NO_PARENT, res, n);
	add(m, "vmm-internal", 0, VMRES_DEVMGR_NO_PARENT, NULL, 0);
	last = add(m, "hotplug-last", 0x15, host, NULL, 0);

	/* What the guest did: moved BARs, one into the 32-bit window ... */
	CHECK(vmres_devmgr_move_range(m, net, 0, 0xd0000000));
	CHECK(vmres_devmgr_move_range(m, net, 1, 0xd1000000));
	CHECK(vmres_devmgr_move_range(m, nvme, 0, 0x1100000000));
	/* ... disabled decoding on two BARs, then moved one under a mapped one ... */
	CHECK(vmres_devmgr_unmap_range(m, blk, 1));
	CHECK(vmres_devmgr_unmap_range(m, fn, 0));
	CHECK(vmres_devmgr_move_range(m, fn, 0, 0xd0000000));
	/* ... and unplugged two devices. */
	CHECK(vmres_devmgr_unregister(m, gone));
	CHECK(vmres_devmgr_unregister(m, last));
	CHECK(vmres_sysalloc_release_owner(sa, 0x14));
	*sa_out = sa;
	*m_out = m;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		return 1;
	}
	return 0;
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
	    !(buf = malloc((size_t)size + 1)) || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		perror(path);
		exit(1);
	}
	fclose(f);
	*len = (size_t)size;
	return buf;
}

int main(int argc, char **argv)
{
	struct vmres_snapshot_error e;
	struct vmres_sysalloc *sa, *sa2;
	struct vmres_devmgr *m, *m2;
	char *text, *again;
	void *buf;
	size_t len;
	int rc = 0;

	if (argc == 4 && !strcmp(argv[1], "--describe")) {
		buf = read_file(argv[2], &len);
		if (vmres_snapshot_restore(buf, len, NULL, NULL, &sa, &m, &e)) {
			fprintf(stderr, "%s: %s at byte %zu\n", argv[2], vmres_errname(e.code),
				e.offset);
			return 1;
		}
		text = fixture_describe_str(sa, m);
		check(text ? 0 : VMRES_ENOMEM, "describe");
		rc = write_file(argv[3], text, strlen(text));
		free(text);
		free(buf);
		vmres_devmgr_free(m);
		vmres_sysalloc_free(sa);
		return rc;
	}
	if (argc != 3) {
		fprintf(stderr,
			"usage: %s OUT.bin OUT.dump\n"
			"       %s --describe IN.bin OUT.dump\n",
			argv[0], argv[0]);
		return 2;
	}
	build(&sa, &m);
	CHECK(vmres_snapshot_save(sa, m, &buf, &len));
	text = fixture_describe_str(sa, m);
	check(text ? 0 : VMRES_ENOMEM, "describe");
	/* What the test will see: the restored state is described the same way. */
	CHECK(vmres_snapshot_restore(buf, len, NULL, NULL, &sa2, &m2, &e));
	again = fixture_describe_str(sa2, m2);
	if (!again || strcmp(text, again)) {
		fprintf(stderr, "gen_snapshot_fixture: the restored state differs\n");
		return 1;
	}
	rc = write_file(argv[1], buf, len) || write_file(argv[2], text, strlen(text));
	printf("%s: %zu bytes; %s: %zu bytes\n", argv[1], len, argv[2], strlen(text));
	free(again);
	free(text);
	free(buf);
	vmres_devmgr_free(m2);
	vmres_sysalloc_free(sa2);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	return rc;
}

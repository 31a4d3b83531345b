/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for vmres_snapshot_restore(): any bytes must give 0 or an
 * error, never a crash, an out-of-bounds read or a leak. Each input is tried
 * twice: as it is, and with its total length and crc32 fixed up, so that the
 * fuzzer reaches the record checks behind the checksum. When a restore succeeds,
 * the result is saved and restored again, and both states must dump alike and
 * save to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <vmres/snapshot.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_dev {
	uint32_t instance;
};

/* Devices are real allocations, so a leak on any failure path shows up. */
static int bind_dev(void *ctx, const struct vmres_devmgr_info *entry,
		    const struct vmres_resource *res, const bool *mapped, struct vmres_device *dev)
{
	struct fuzz_dev *d;

	(void)ctx, (void)res, (void)mapped;
	if (entry->instance % 97 == 13)
		return VMRES_ENOMEM; /* exercise the rollback too */
	d = malloc(sizeof(*d));
	if (!d)
		return VMRES_ENOMEM;
	d->instance = entry->instance;
	dev->opaque = d;
	dev->release = free;
	return 0;
}

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void same_dumps(struct vmres_sysalloc *sa1, struct vmres_devmgr *m1,
		       struct vmres_sysalloc *sa2, struct vmres_devmgr *m2)
{
	char *a = NULL, *b = NULL;

	check(vmres_sysalloc_dump_str(sa1, &a) == 0 && vmres_sysalloc_dump_str(sa2, &b) == 0);
	check(strcmp(a, b) == 0);
	free(a);
	free(b);
	check(vmres_devmgr_dump_json(m1, &a) == 0 && vmres_devmgr_dump_json(m2, &b) == 0);
	check(strcmp(a, b) == 0);
	free(a);
	free(b);
}

static void try_restore(const uint8_t *data, size_t size)
{
	struct vmres_snapshot_error e;
	struct vmres_sysalloc *sa = NULL, *sa2 = NULL;
	struct vmres_devmgr *m = NULL, *m2 = NULL;
	void *buf = NULL, *buf2 = NULL;
	size_t len, len2;
	int rc = vmres_snapshot_restore(data, size, bind_dev, NULL, &sa, &m, &e);

	check(rc == e.code && rc <= 0 && rc >= VMRES_ERRNO_MIN);
	if (rc) {
		check(sa == NULL && m == NULL && e.offset <= size);
		return;
	}
	check(vmres_sysalloc_validate(sa) == 0);
	rc = vmres_snapshot_save(sa, m, &buf, &len);
	if (rc == 0)
		rc = vmres_snapshot_restore(buf, len, bind_dev, NULL, &sa2, &m2, &e);
	check(rc == 0 || rc == VMRES_ENOMEM); /* ENOMEM: also bind_dev's refusal */
	if (rc == 0) {
		same_dumps(sa, m, sa2, m2);
		check(vmres_snapshot_save(sa2, m2, &buf2, &len2) == 0);
		check(len2 == len && memcmp(buf, buf2, len) == 0);
	}
	free(buf);
	free(buf2);
	vmres_devmgr_free(m2);
	vmres_sysalloc_free(sa2);
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	try_restore(data, size);
	if (size < 36 || size > (1u << 20))
		return 0;
	fixed = malloc(size);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	for (int i = 0; i < 8; i++)
		fixed[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
	uLong crc = crc32(0, fixed, (uInt)(size - 4));
	for (int i = 0; i < 4; i++)
		fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
	try_restore(fixed, size);
	free(fixed);
	return 0;
}

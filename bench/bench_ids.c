/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ID workloads of bench/WORKLOADS.md: id-fill and id-churn over [0, 2^20 - 1];
 * id-sparse and id-block over the whole u32 range, with their memory. */
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include <vmres/ids.h>

#include "bench.h"

#define ID_SPACE ((uint32_t)1 << 20)

/* Allocate n IDs from a fresh allocator; sum the IDs into *sum. */
static int fill(struct vmres_ids *ids, uint64_t n, uint64_t *sum)
{
	for (uint64_t k = 0; k < n; k++) {
		uint32_t id;
		int rc = vmres_ids_alloc(ids, &id);

		if (rc) {
			fprintf(stderr, "id: alloc %llu failed: %s\n", (unsigned long long)k,
				vmres_strerror(rc));
			return -1;
		}
		*sum += id;
	}
	return 0;
}

/* An allocator of [0, @p last] for workload @p name, or NULL (said on stderr). */
static struct vmres_ids *new_ids(const char *name, uint32_t last)
{
	struct vmres_ids *ids;
	int rc = vmres_ids_new(0, last, &ids);

	if (rc) {
		fprintf(stderr, "%s: %s\n", name, vmres_strerror(rc));
		return NULL;
	}
	return ids;
}

int bench_id_fill(uint64_t n, uint64_t d)
{
	struct vmres_ids *ids;
	uint64_t sum = 0;
	double t0, t1;
	int rc;

	(void)d;
	if (!(ids = new_ids("id-fill", ID_SPACE - 1)))
		return -1;
	t0 = bench_now_ns();
	rc = fill(ids, n, &sum);
	t1 = bench_now_ns();
	vmres_ids_free(ids);
	if (rc)
		return -1;
	bench_report("id-fill", n, 0, NULL, (t1 - t0) / (double)n, sum);
	return 0;
}

int bench_id_churn(uint64_t n, uint64_t d)
{
	struct vmres_ids *ids;
	uint64_t seed = BENCH_SEED, sum = 0, fill_sum = 0;
	double t0, t1;
	int rc;

	(void)d;
	if (!(ids = new_ids("id-churn", ID_SPACE - 1)))
		return -1;
	/* Setup (untimed): the full state id-fill leaves, then free about half. */
	if (fill(ids, ID_SPACE, &fill_sum))
		goto fail;
	for (uint64_t k = 0; k < n / 2; k++) {
		uint32_t id = (uint32_t)(bench_next(&seed) % ID_SPACE);

		if (vmres_ids_test(ids, id) == 1 && vmres_ids_release(ids, id))
			goto fail;
	}
	t0 = bench_now_ns();
	for (uint64_t k = 0; k < n; k++) {
		uint32_t id = (uint32_t)(bench_next(&seed) % ID_SPACE);

		rc = vmres_ids_test(ids, id);
		if (rc == 1) {
			rc = vmres_ids_release(ids, id);
		} else if (rc == 0) {
			rc = vmres_ids_alloc(ids, &id);
			sum += id;
		}
		if (rc)
			goto fail;
	}
	t1 = bench_now_ns();
	vmres_ids_free(ids);
	bench_report("id-churn", n, 0, NULL, (t1 - t0) / (double)n, sum);
	return 0;
fail:
	fprintf(stderr, "id-churn: an allocator call failed unexpectedly\n");
	vmres_ids_free(ids);
	return -1;
}

/* Resident set size of this process in bytes (/proc/self/statm), 0 if unknown. */
static uint64_t rss_bytes(void)
{
	unsigned long long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int got;

	if (!f)
		return 0;
	got = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	return got == 2 ? resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

/* The memory of @ids as bytes: the allocator's count and the growth of the
 * resident set since @rss0. */
static void memory_of(const struct vmres_ids *ids, uint64_t rss0, uint64_t *mem, uint64_t *rss)
{
	struct vmres_ids_stats st;
	uint64_t now = rss_bytes();

	*mem = vmres_ids_stats(ids, &st) == 0 ? st.mem_bytes : 0;
	*rss = now > rss0 ? now - rss0 : 0;
}

static void report_with_memory(const char *name, uint64_t n, double ns, uint64_t sum,
			       uint64_t mem, uint64_t rss)
{
	bench_report_begin(name, n, 0, NULL, ns, sum);
	bench_report_field("mem_bytes", mem);
	bench_report_field("rss_bytes", rss);
	bench_report_end();
}

int bench_id_sparse(uint64_t n, uint64_t d)
{
	struct vmres_ids *ids;
	uint64_t seed = BENCH_SEED, sum = 0, rss0 = rss_bytes(), mem, rss;
	double t0, t1;
	int rc;

	(void)d;
	if (!(ids = new_ids("id-sparse", UINT32_MAX)))
		return -1;
	t0 = bench_now_ns();
	for (uint64_t k = 0; k < n; k++) {
		uint32_t id = (uint32_t)bench_next(&seed);

		rc = vmres_ids_reserve(ids, id);
		if (rc == 0) {
			sum += id;
		} else if (rc != VMRES_EOVERLAP) {
			fprintf(stderr, "id-sparse: reserve %u: %s\n", id, vmres_strerror(rc));
			vmres_ids_free(ids);
			return -1;
		}
	}
	t1 = bench_now_ns();
	memory_of(ids, rss0, &mem, &rss);
	vmres_ids_free(ids);
	/* Untimed: let glibc merge the ~650000 small freed blocks now, not in the
	 * next workload's first large malloc() (malloc_consolidate: 70 ms). */
	malloc_trim(0);
	report_with_memory("id-sparse", n, (t1 - t0) / (double)n, sum, mem, rss);
	return 0;
}

/* One step: an aligned 2^31 block, an aligned 2^30 block; *sum += their firsts. */
static int two_blocks(struct vmres_ids *ids, uint32_t *a, uint32_t *b, uint64_t *sum)
{
	if (vmres_ids_alloc_block(ids, 1u << 31, a) || vmres_ids_alloc_block(ids, 1u << 30, b)) {
		fprintf(stderr, "id-block: alloc_block failed\n");
		return -1;
	}
	*sum += (uint64_t)*a + *b;
	return 0;
}

static int release_two(struct vmres_ids *ids, uint32_t a, uint32_t b)
{
	if (vmres_ids_release_block(ids, a, 1u << 31) || vmres_ids_release_block(ids, b, 1u << 30)) {
		fprintf(stderr, "id-block: release_block failed\n");
		return -1;
	}
	return 0;
}

int bench_id_block(uint64_t n, uint64_t d)
{
	struct vmres_ids *ids;
	uint64_t sum = 0, untimed = 0, rss0 = rss_bytes(), mem, rss;
	uint32_t a, b;
	double t0, t1;

	(void)d;
	if (!(ids = new_ids("id-block", UINT32_MAX)))
		return -1;
	/* Untimed: the two blocks once, for the memory they hold. */
	if (two_blocks(ids, &a, &b, &untimed))
		goto fail;
	memory_of(ids, rss0, &mem, &rss);
	if (release_two(ids, a, b))
		goto fail;
	t0 = bench_now_ns();
	for (uint64_t k = 0; k < n; k++)
		if (two_blocks(ids, &a, &b, &sum) || release_two(ids, a, b))
			goto fail;
	t1 = bench_now_ns();
	vmres_ids_free(ids);
	report_with_memory("id-block", n, (t1 - t0) / (double)n, sum, mem, rss);
	return 0;
fail:
	vmres_ids_free(ids);
	return -1;
}

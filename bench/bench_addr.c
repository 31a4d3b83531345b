/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The address-space workloads of bench/WORKLOADS.md: addr-fill, addr-churn,
 * addr-last, addr-exact, addr-fill-reserved. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <vmres/addr.h>

#include "bench.h"

/* [0x1_0000_0000, 0x1_0000_0000 + 2^40), inclusive end 0x100_FFFF_FFFF. */
#define SPACE_BASE 0x100000000ULL
#define SPACE_LAST (SPACE_BASE + (1ULL << 40) - 1)

struct range {
	uint64_t base;
	uint64_t size;
};

static int new_space(struct vmres_addr **out)
{
	int rc = vmres_addr_new(SPACE_BASE, SPACE_LAST, out);

	if (rc)
		fprintf(stderr, "bench: vmres_addr_new: %s\n", vmres_strerror(rc));
	return rc;
}

/* One random BAR-like size: 4 KiB to 16 MiB, aligned to itself. */
static int alloc_random(struct vmres_addr *a, uint64_t *s, enum vmres_addr_policy policy,
			struct range *out)
{
	struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
	int rc;

	req.policy = policy;
	req.size = 1ULL << (12 + bench_next(s) % 13);
	req.align = req.size;
	rc = vmres_addr_alloc(a, &req, &out->base);
	if (rc) {
		fprintf(stderr, "bench: allocating %#" PRIx64 " bytes: %s\n", req.size,
			vmres_strerror(rc));
		return rc;
	}
	out->size = req.size;
	return 0;
}

/* n allocations with one policy; @live (if not NULL) receives them in order. */
static int fill(struct vmres_addr *a, uint64_t *s, uint64_t n, enum vmres_addr_policy policy,
		struct range *live, uint64_t *sum)
{
	struct range r;

	for (uint64_t i = 0; i < n; i++) {
		if (alloc_random(a, s, policy, &r))
			return -1;
		*sum += r.base;
		if (live)
			live[i] = r;
	}
	return 0;
}

/* Page faults of this process so far (getrusage). */
static uint64_t minor_faults(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt : 0;
}

/* n fills; @hint: vmres_addr_reserve_capacity(n) first, untimed. Prints the
 * allocator's bytes (vmres_addr_memory) after the fill. */
static int run_fill(const char *name, uint64_t n, enum vmres_addr_policy policy, bool hint)
{
	struct vmres_addr *a;
	uint64_t s = BENCH_SEED, sum = 0, mem = 0, flt;
	double t0, t1;
	int rc;

	if (new_space(&a))
		return 1;
	if (hint && (rc = vmres_addr_reserve_capacity(a, n))) {
		fprintf(stderr, "bench: vmres_addr_reserve_capacity: %s\n", vmres_strerror(rc));
		vmres_addr_free(a);
		return 1;
	}
	flt = minor_faults();
	t0 = bench_now_ns();
	rc = fill(a, &s, n, policy, NULL, &sum);
	t1 = bench_now_ns();
	flt = minor_faults() - flt;
	(void)vmres_addr_memory(a, &mem);
	vmres_addr_free(a);
	if (rc)
		return 1;
	bench_report_begin(name, n, 0, NULL, (t1 - t0) / (double)n, sum);
	bench_report_field("mem_bytes", mem);
	bench_report_field("faults", flt);
	bench_report_end();
	return 0;
}

int bench_addr_fill(uint64_t n, uint64_t d)
{
	(void)d;
	return run_fill("addr-fill", n, VMRES_ADDR_FIRST_FIT, false);
}

int bench_addr_fill_reserved(uint64_t n, uint64_t d)
{
	(void)d;
	return run_fill("addr-fill-reserved", n, VMRES_ADDR_FIRST_FIT, true);
}

int bench_addr_last(uint64_t n, uint64_t d)
{
	(void)d;
	return run_fill("addr-last", n, VMRES_ADDR_LAST_FIT, false);
}

int bench_addr_churn(uint64_t n, uint64_t d)
{
	struct vmres_addr *a;
	struct range *live = malloc(n * sizeof(*live));
	uint64_t s = BENCH_SEED, sum = 0, count = n;
	double t0, t1;
	int rc = 1;

	(void)d;
	if (!live || new_space(&a)) {
		free(live);
		return 1;
	}
	if (fill(a, &s, n, VMRES_ADDR_FIRST_FIT, live, &sum))
		goto out;
	sum = 0;
	t0 = bench_now_ns();
	for (uint64_t k = 0; k < n; k++) {
		uint64_t i = bench_next(&s) % count;
		int err = vmres_addr_release(a, live[i].base, live[i].size, NULL);

		if (err) {
			fprintf(stderr, "bench: release: %s\n", vmres_strerror(err));
			goto out;
		}
		live[i] = live[count - 1];
		if (alloc_random(a, &s, VMRES_ADDR_FIRST_FIT, &live[count - 1]))
			goto out;
		sum += live[count - 1].base;
	}
	t1 = bench_now_ns();
	bench_report("addr-churn", n, 0, NULL, (t1 - t0) / (double)n, sum);
	rc = 0;
out:
	vmres_addr_free(a);
	free(live);
	return rc;
}

static void shuffle(uint64_t *v, uint64_t n, uint64_t *s)
{
	for (uint64_t k = 0; k < n; k++)
		v[k] = k;
	for (uint64_t k = n - 1; k >= 1; k--) {
		uint64_t j = bench_next(s) % (k + 1), t = v[k];

		v[k] = v[j];
		v[j] = t;
	}
}

int bench_addr_exact(uint64_t n, uint64_t d)
{
	struct vmres_addr *a;
	uint64_t *order_in = malloc(n * sizeof(*order_in));
	uint64_t *order_out = malloc(n * sizeof(*order_out));
	uint64_t s = BENCH_SEED, sum = 0;
	double t0, t1;
	int rc = 1;

	(void)d;
	if (!order_in || !order_out || new_space(&a)) {
		free(order_in);
		free(order_out);
		return 1;
	}
	shuffle(order_in, n, &s);
	shuffle(order_out, n, &s);
	t0 = bench_now_ns();
	for (uint64_t k = 0; k < n; k++) {
		uint64_t base = SPACE_BASE + order_in[k] * 0x10000;
		int err = vmres_addr_reserve(a, base, 0x1000, k);

		if (err) {
			fprintf(stderr, "bench: reserve %#" PRIx64 ": %s\n", base,
				vmres_strerror(err));
			goto out;
		}
		sum += base;
	}
	for (uint64_t k = 0; k < n; k++) {
		uint64_t base = SPACE_BASE + order_out[k] * 0x10000;
		int err = vmres_addr_release(a, base, 0x1000, NULL);

		if (err) {
			fprintf(stderr, "bench: release %#" PRIx64 ": %s\n", base,
				vmres_strerror(err));
			goto out;
		}
	}
	t1 = bench_now_ns();
	bench_report("addr-exact", n, 0, NULL, (t1 - t0) / (double)(2 * n), sum);
	rc = 0;
out:
	vmres_addr_free(a);
	free(order_in);
	free(order_out);
	return rc;
}

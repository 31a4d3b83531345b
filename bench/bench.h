/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The benchmark program's shared helpers: the splitmix64 generator, the clock and
 * the output line of bench/WORKLOADS.md. Each workload lives in one
 * bench_<module>.c and is listed in main.c. */
#ifndef VMRES_BENCH_H
#define VMRES_BENCH_H

#include <stdint.h>

/* splitmix64, seeded with 42 at the start of every workload. */
#define BENCH_SEED 42

static inline uint64_t bench_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Monotonic wall clock in nanoseconds. */
double bench_now_ns(void);

/*
 * Print one result line:
 *   bench: <name> n=<n>[ d=<d>][ <extra>] ns_per_op=<x> checksum=<16 hex>
 * d == 0 omits "d=", extra == NULL omits the extra field ("t=2", "backend=kvm").
 */
void bench_report(const char *name, uint64_t n, uint64_t d, const char *extra, double ns_per_op,
		  uint64_t checksum);

/* The same line with measurement fields after the checksum ("mem_bytes=<n>"):
 * bench_report_begin(), bench_report_field() for each, bench_report_end(). */
void bench_report_begin(const char *name, uint64_t n, uint64_t d, const char *extra,
			double ns_per_op, uint64_t checksum);
void bench_report_field(const char *key, uint64_t value);
void bench_report_end(void);

/* A workload: runs with n operations (and d devices where it has them), prints its
 * line(s) with bench_report() and returns 0, or prints a reason on stderr and
 * returns non-zero. */
typedef int (*bench_fn)(uint64_t n, uint64_t d);

int bench_addr_fill(uint64_t n, uint64_t d);
int bench_addr_fill_reserved(uint64_t n, uint64_t d);
int bench_addr_churn(uint64_t n, uint64_t d);
int bench_addr_last(uint64_t n, uint64_t d);
int bench_addr_exact(uint64_t n, uint64_t d);
int bench_id_fill(uint64_t n, uint64_t d);
int bench_id_churn(uint64_t n, uint64_t d);
int bench_id_sparse(uint64_t n, uint64_t d);
int bench_id_block(uint64_t n, uint64_t d);
int bench_bus_lookup(uint64_t n, uint64_t d);
int bench_bus_dispatch(uint64_t n, uint64_t d);
int bench_bus_dispatch_mt(uint64_t n, uint64_t d);
int bench_bus_dispatch_mt_idle(uint64_t n, uint64_t d);
int bench_bus_dispatch_ctx(uint64_t n, uint64_t d);
int bench_bus_refused_move(uint64_t n, uint64_t d);
int bench_devmgr_mem(uint64_t n, uint64_t d);
int bench_kvmres_bar_move(uint64_t n, uint64_t d);
int bench_pci_msix_write(uint64_t n, uint64_t d);
int bench_pci_msix_retarget(uint64_t n, uint64_t d);
int bench_pci_ecam_read(uint64_t n, uint64_t d);

#endif

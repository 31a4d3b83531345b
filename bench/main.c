/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vmres-bench: runs the workloads that bench/WORKLOADS.md defines.
 *
 *   vmres-bench                 every workload at its default sizes (below)
 *   vmres-bench WORKLOAD [N [D]] one workload
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

double bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

void bench_report_begin(const char *name, uint64_t n, uint64_t d, const char *extra,
			double ns_per_op, uint64_t checksum)
{
	printf("bench: %s n=%" PRIu64, name, n);
	if (d)
		printf(" d=%" PRIu64, d);
	if (extra)
		printf(" %s", extra);
	printf(" ns_per_op=%.2f checksum=%016" PRIx64, ns_per_op, checksum);
}

void bench_report_field(const char *key, uint64_t value)
{
	printf(" %s=%" PRIu64, key, value);
}

void bench_report_end(void)
{
	printf("\n");
	fflush(stdout);
}

void bench_report(const char *name, uint64_t n, uint64_t d, const char *extra, double ns_per_op,
		  uint64_t checksum)
{
	bench_report_begin(name, n, d, extra, ns_per_op, checksum);
	bench_report_end();
}

struct workload {
	const char *name;
	bench_fn run;
	uint64_t n;
	uint64_t d; /* 0: the workload has no d */
};

/* The default run; a name may appear at several sizes. bench/WORKLOADS.md
 * defines each workload, bench/targets holds their targets. */
static const struct workload workloads[] = {
	/* addr-*, id-*: bench_addr.c, bench_ids.c (with the n = 10000 growth lines) */
	{"addr-fill", bench_addr_fill, 100000, 0},
	{"addr-churn", bench_addr_churn, 100000, 0},
	{"addr-last", bench_addr_last, 100000, 0},
	{"addr-exact", bench_addr_exact, 100000, 0},
	{"addr-fill-reserved", bench_addr_fill_reserved, 100000, 0},
	{"id-fill", bench_id_fill, 1048576, 0},
	{"id-churn", bench_id_churn, 1048576, 0},
	{"id-sparse", bench_id_sparse, 1048576, 0},
	{"id-block", bench_id_block, 100000, 0},
	{"addr-fill", bench_addr_fill, 10000, 0},
	{"addr-churn", bench_addr_churn, 10000, 0},
	{"addr-last", bench_addr_last, 10000, 0},
	/* bus-*: bench_bus.c */
	{"bus-lookup", bench_bus_lookup, 10000000, 16},
	{"bus-lookup", bench_bus_lookup, 10000000, 256},
	{"bus-lookup", bench_bus_lookup, 10000000, 4096},
	{"bus-dispatch", bench_bus_dispatch, 10000000, 16},
	{"bus-dispatch", bench_bus_dispatch, 10000000, 256},
	{"bus-dispatch", bench_bus_dispatch, 10000000, 4096},
	{"bus-dispatch-mt", bench_bus_dispatch_mt, 10000000, 4096},
	{"bus-dispatch-mt-idle", bench_bus_dispatch_mt_idle, 10000000, 4096},
	{"bus-refused-move", bench_bus_refused_move, 100000, 4096},
	{"devmgr-mem", bench_devmgr_mem, 1000, 4096},
	/* bus-dispatch with devices that take the caller. */
	{"bus-dispatch-ctx", bench_bus_dispatch_ctx, 10000000, 16},
	{"bus-dispatch-ctx", bench_bus_dispatch_ctx, 10000000, 4096},
	/* A BAR move carrying 2 ioeventfds and a memory slot through the fake
	 * KVM seam (bench_kvmres.c). */
	{"kvmres-bar-move", bench_kvmres_bar_move, 100000, 16},
	{"kvmres-bar-move", bench_kvmres_bar_move, 10000, 4096},
	/* pci-*: bench_pci.c */
	{"pci-msix-write", bench_pci_msix_write, 10000000, 2048},
	{"pci-msix-retarget", bench_pci_msix_retarget, 100000, 64},
	{"pci-ecam-read", bench_pci_ecam_read, 10000000, 32},
};

#define N_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 0);
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: vmres-bench [WORKLOAD [N [D]]]\nworkloads:");
	for (size_t i = 0; i < N_WORKLOADS; i++)
		if (i == 0 || strcmp(workloads[i].name, workloads[i - 1].name))
			fprintf(stderr, " %s", workloads[i].name);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc == 1) {
		for (size_t i = 0; i < N_WORKLOADS; i++)
			rc |= workloads[i].run(workloads[i].n, workloads[i].d);
		return rc ? 1 : 0;
	}
	if (argc > 4 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage();
		return 2;
	}
	for (size_t i = 0; i < N_WORKLOADS; i++) {
		const struct workload *w = &workloads[i];
		uint64_t n = w->n, d = w->d;

		if (strcmp(argv[1], w->name))
			continue;
		if ((argc > 2 && parse_u64(argv[2], &n)) || (argc > 3 && parse_u64(argv[3], &d)) ||
		    n == 0) {
			usage();
			return 2;
		}
		return w->run(n, d) ? 1 : 0;
	}
	fprintf(stderr, "vmres-bench: unknown workload '%s'\n", argv[1]);
	usage();
	return 2;
}

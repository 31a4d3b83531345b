/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmres-demo: a minimal real VMM built on vmres. It runs the guest of
 * examples/guest/ on KVM where /dev/kvm works and on the Unicorn software CPU
 * otherwise, prints the guest's serial output, the resource map before and after
 * the guest moves its test device's BARs (with the notify regions and memory
 * slot that follow them), the exits by kind and by device, and what the test
 * device saw (kicks, MSI-X vectors fired), checked against what the guest did.
 *
 *   vmres-demo [--backend=auto|kvm|unicorn] [--vcpus=N]
 *       exit 0 if the guest reported success, 1 if not, 77 if the backend
 *       asked for cannot run here (with the reason), 2 for bad arguments;
 *       N vCPUs (default 2): vCPU 0 runs the scenario, the others read ports
 *       all along, so that dispatch runs on several threads while BARs move
 *   vmres-demo --bench guest-pio [N] [--backend=...]
 *       the guest-pio workload of bench/WORKLOADS.md (vmres dispatch, then the
 *       hard-coded loop), on the backend given or on every usable one
 *   vmres-demo --firmware=seabios [--bios=PATH] [--pci-copies=N] [--collide]
 *              [--until=boot] [--timeout=SECONDS] [--backend=...]
 *       SeaBIOS as the guest (firmware.h): it assigns the BARs of N copies of
 *       the default PCI device set (8 fill the bus), then the demo checks vmres
 *       against its log; exit 0 if they agree, 1 if not, 77 if it cannot run;
 *       --until=boot: let SeaBIOS run on to its boot phase first (about 3 s
 *       more: its boot menu waits 2.5 s); the run is stopped after SECONDS
 *       (default 60) whatever SeaBIOS does
 *   vmres-demo --linux=BZIMAGE --initrd=CPIO [--append=ARGS] [--vcpus=N]
 *              [--ram=MIB] [--timeout=SECONDS]
 *       an unmodified Linux kernel as the guest (linux.h), on KVM only: it
 *       assigns a virtio device's BAR, reads its random bytes, moves it; then
 *       the demo checks vmres against the guest's view; exit 0 if all is well,
 *       3 if the guest stopped on its own (triple fault, or no progress for
 *       30 s), 1 for any other failure, 77 if this host's KVM cannot boot it
 *       (tools/demo-linux.sh then runs it in a nested KVM)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../guest/bootinfo.h"
#include "firmware.h"
#include "linux.h"
#include "machine.h"

#define EXIT_SKIP   77
#define DEMO_VCPUS  2
#define BENCH_PIO_N 1000000u

static const struct vmm_backend *const backends[] = {&vmm_backend_kvm, &vmm_backend_unicorn};
#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

static void usage(void)
{
	fprintf(stderr, "usage: vmres-demo [--backend=auto|kvm|unicorn] [--vcpus=N]\n"
			"       vmres-demo --bench guest-pio [N] [--backend=auto|kvm|unicorn]\n"
			"       vmres-demo --firmware=seabios [--bios=PATH] [--pci-copies=N] "
			"[--collide]\n"
			"                  [--until=boot] [--timeout=SECONDS] "
			"[--backend=auto|kvm|unicorn]\n"
			"       vmres-demo --linux=BZIMAGE --initrd=CPIO [--append=ARGS] [--vcpus=N]\n"
			"                  [--ram=MIB] [--timeout=SECONDS]\n");
}

static const struct vmm_backend *backend_by_name(const char *name)
{
	for (size_t i = 0; i < N_BACKENDS; i++)
		if (!strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}

static void print_indented(const char *text)
{
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		printf("  %.*s\n", n, p);
		p += n + (nl != NULL);
	}
}

/* Does @text hold @line (n bytes) as a whole line? */
static bool has_line(const char *text, const char *line, size_t n)
{
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len == n && !memcmp(p, line, n))
			return true;
		p += len + (nl != NULL);
	}
	return false;
}

/* The lines of @after that @before lacks (+) and those it lost (-). */
static void print_changes(const char *before, const char *after)
{
	const char *texts[2] = {before, after};
	const char *mark[2] = {"-", "+"};

	for (int t = 0; t < 2; t++) {
		for (const char *p = texts[t]; *p;) {
			const char *nl = strchr(p, '\n');
			size_t n = nl ? (size_t)(nl - p) : strlen(p);

			if (!has_line(texts[1 - t], p, n))
				printf("%s %.*s\n", mark[t], (int)n, p);
			p += n + (nl != NULL);
		}
	}
}

static int run_demo(const struct vmm_backend *be, const char *why_not_kvm, unsigned int vcpus)
{
	struct vmm_machine_opts opts = {
		.backend = be, .mode = VMM_GUEST_SCENARIO, .nr_vcpus = vcpus};
	struct vmm_machine *m;
	struct vmm *vm;
	char *before, *after;
	int ok;

	if (be == &vmm_backend_kvm)
		printf("vmres-demo: vCPU backend: kvm (/dev/kvm works), %u vCPUs\n", vcpus);
	else if (why_not_kvm)
		printf("vmres-demo: vCPU backend: unicorn (software CPU; %s), %u vCPUs\n",
		       why_not_kvm, vcpus);
	else
		printf("vmres-demo: vCPU backend: unicorn (software CPU, as asked), %u vCPUs\n",
		       vcpus);
	if (vmm_machine_new(&opts, &m) < 0)
		return 1;
	before = vmm_machine_map(m);
	printf("=== resource map before the guest runs (devices, then allocations) ===\n");
	print_indented(before ? before : "(out of memory)\n");
	printf("=== guest serial output (COM1) ===\n");
	fflush(stdout);
	vmm_machine_run(m);
	vm = vmm_machine_vm(m);
	after = vmm_machine_map(m);
	printf("=== resource map after the guest ran ===\n");
	print_indented(after ? after : "(out of memory)\n");
	printf("=== what the guest changed (- before, + after) ===\n");
	if (before && after)
		print_changes(before, after);
	free(before);
	free(after);
	vmm_machine_print_exits(m, stdout);
	ok = vm->guest_exited && vm->guest_status == VMM_GUEST_OK && !vm->failed;
	/* the VMM's own view: kicks and MSI-X answers counted, resources moved */
	if (vmm_machine_check_testdev(m, stdout) < 0)
		ok = false;
	if (ok)
		printf("vmres-demo: guest reported success on %s\n", be->name);
	else if (vm->guest_exited)
		printf("vmres-demo: guest reported FAILURE on %s (status 0x%08" PRIx32 ")\n",
		       be->name, vm->guest_status);
	else
		printf("vmres-demo: the guest did not finish on %s\n", be->name);
	vmm_machine_free(m);
	return ok ? 0 : 1;
}

/* One run of guest-pio: 0 and the figures, or -1. */
static int bench_once(const struct vmm_backend *be, uint32_t n, bool direct, double *ns_per_op,
		      uint64_t *checksum)
{
	struct vmm_machine_opts opts = {.backend = be,
					.mode = VMM_GUEST_BENCH_PIO,
					.bench_n = n,
					.direct = direct,
					.nr_vcpus = 1};
	struct vmm_machine *m;
	struct vmm *vm;
	int rc = -1;

	if (vmm_machine_new(&opts, &m) < 0)
		return -1;
	vmm_machine_run(m);
	vm = vmm_machine_vm(m);
	if (vm->guest_exited && vm->guest_status == VMM_GUEST_OK && !vm->failed && vm->mark_ns) {
		*ns_per_op = (vm->end_ns - vm->mark_ns) / n;
		*checksum = vmm_machine_bench_sum(m);
		rc = 0;
	} else {
		fprintf(stderr, "vmres-demo: guest-pio on %s did not finish\n", be->name);
	}
	vmm_machine_free(m);
	return rc;
}

/* The line of bench/bench.h's bench_report(name, n, 0, "backend=...", ...). */
static void bench_report(const char *name, uint64_t n, const char *backend, double ns_per_op,
			 uint64_t checksum)
{
	printf("bench: %s n=%" PRIu64 " backend=%s ns_per_op=%.2f checksum=%016" PRIx64 "\n", name,
	       n, backend, ns_per_op, checksum);
	fflush(stdout);
}

static int run_bench(const struct vmm_backend *only, uint32_t n)
{
	char why[160];
	int rc = 0, ran = 0;
	uint64_t expect = (uint64_t)n * (n - 1) / 2;

	/* Software CPU first: it is always there. */
	for (size_t i = N_BACKENDS; i-- > 0;) {
		const struct vmm_backend *be = backends[i];
		double ns[2];
		uint64_t sum[2];

		if (only && be != only)
			continue;
		if (be->probe(why, sizeof(why)) < 0) {
			fprintf(stderr, "vmres-demo: guest-pio: skipping %s: %s\n", be->name, why);
			continue;
		}
		ran++;
		if (bench_once(be, n, false, &ns[0], &sum[0]) < 0 ||
		    bench_once(be, n, true, &ns[1], &sum[1]) < 0) {
			rc = 1;
			continue;
		}
		bench_report("guest-pio-vmres", n, be->name, ns[0], sum[0]);
		bench_report("guest-pio-direct", n, be->name, ns[1], sum[1]);
		/* The guest wrote 0..n-1: a device that saw anything else is a bug. */
		if (sum[0] != expect || sum[1] != expect) {
			fprintf(stderr,
				"vmres-demo: guest-pio on %s: checksum should be %016" PRIx64 "\n",
				be->name, expect);
			rc = 1;
		}
	}
	return ran ? rc : EXIT_SKIP;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-')
		return -1;
	v = strtoul(s, &end, 0);
	if (*end || v == 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	const struct vmm_backend *be = NULL;
	const char *bench = NULL;
	uint32_t n = BENCH_PIO_N, vcpus = DEMO_VCPUS;
	struct vmm_fw_opts fw = {.bios = VMM_FW_DEFAULT_BIOS, .copies = 1, .timeout_s = 60};
	struct vmm_linux_opts lx = {.ram_mib = 256};
	bool firmware = false, timeout_set = false;
	char why[160];

	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--backend=", 10)) {
			if (strcmp(argv[i] + 10, "auto")) {
				be = backend_by_name(argv[i] + 10);
				if (!be) {
					usage();
					return 2;
				}
			}
		} else if (!strncmp(argv[i], "--vcpus=", 8)) {
			if (parse_u32(argv[i] + 8, &vcpus) < 0 || vcpus > VMM_MAX_VCPUS) {
				usage();
				return 2;
			}
		} else if (!strcmp(argv[i], "--firmware=seabios")) {
			firmware = true;
		} else if (!strncmp(argv[i], "--bios=", 7) && argv[i][7]) {
			fw.bios = argv[i] + 7;
		} else if (!strncmp(argv[i], "--pci-copies=", 13)) {
			if (parse_u32(argv[i] + 13, &fw.copies) < 0 ||
			    fw.copies > VMM_FW_MAX_COPIES) {
				usage();
				return 2;
			}
		} else if (!strcmp(argv[i], "--collide")) {
			fw.collide = true;
		} else if (!strcmp(argv[i], "--until=boot")) {
			fw.until_boot = true;
		} else if (!strncmp(argv[i], "--timeout=", 10)) {
			uint32_t secs;

			if (parse_u32(argv[i] + 10, &secs) < 0 || secs > 3600) {
				usage();
				return 2;
			}
			fw.timeout_s = secs;
			timeout_set = true;
		} else if (!strncmp(argv[i], "--linux=", 8) && argv[i][8]) {
			lx.kernel = argv[i] + 8;
		} else if (!strncmp(argv[i], "--initrd=", 9) && argv[i][9]) {
			lx.initrd = argv[i] + 9;
		} else if (!strncmp(argv[i], "--append=", 9)) {
			lx.append = argv[i] + 9;
		} else if (!strncmp(argv[i], "--ram=", 6)) {
			uint32_t mib;

			if (parse_u32(argv[i] + 6, &mib) < 0 || mib < 64 || mib > 3072) {
				usage();
				return 2;
			}
			lx.ram_mib = mib;
		} else if (!strcmp(argv[i], "--bench") && i + 1 < argc) {
			bench = argv[++i];
			if (i + 1 < argc && argv[i + 1][0] != '-' && parse_u32(argv[++i], &n) < 0) {
				usage();
				return 2;
			}
		} else {
			usage();
			return 2;
		}
	}
	if (lx.kernel) {
		if (firmware || bench || !lx.initrd || (be && be != &vmm_backend_kvm)) {
			usage();
			return 2;
		}
		lx.nr_vcpus = vcpus;
		lx.timeout_s = timeout_set ? fw.timeout_s : 120;
		return vmm_linux_main(&lx);
	}
	if (firmware) {
		if (bench) {
			usage();
			return 2;
		}
		if (be && be->probe(why, sizeof(why)) < 0) {
			printf("vmres-demo: skipped: the %s backend cannot run here: %s\n",
			       be->name, why);
			return EXIT_SKIP;
		}
		if (be)
			fw.backend = be;
		else if (vmm_backend_kvm.probe(why, sizeof(why)) == 0)
			fw.backend = &vmm_backend_kvm;
		else
			fw.backend = &vmm_backend_unicorn;
		return vmm_fw_main(&fw);
	}
	if (bench) {
		if (strcmp(bench, "guest-pio")) {
			usage();
			return 2;
		}
		return run_bench(be, n);
	}
	if (be) {
		if (be->probe(why, sizeof(why)) < 0) {
			printf("vmres-demo: skipped: the %s backend cannot run here: %s\n",
			       be->name, why);
			return EXIT_SKIP;
		}
		return run_demo(be, NULL, vcpus);
	}
	if (vmm_backend_kvm.probe(why, sizeof(why)) == 0)
		return run_demo(&vmm_backend_kvm, NULL, vcpus);
	return run_demo(&vmm_backend_unicorn, why, vcpus);
}

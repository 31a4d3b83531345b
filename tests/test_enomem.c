/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Out-of-memory fault injection: every allocation the library makes may fail, and
 * then the call must return VMRES_ENOMEM, change nothing and leak nothing.
 *
 * Mechanism. This program alone is linked with GNU ld's --wrap for malloc,
 * calloc, realloc, aligned_alloc and free, and for the mapping calls of the
 * address allocator's node pools (mmap64, mremap, mprotect, munmap;
 * tests/meson.build). The tests link the static libvmres.a, so the library's own
 * calls to these functions (and this file's) go to the __wrap_* functions below,
 * which call the __real_* ones. A wrapper counts the allocations (and mappings
 * and protection changes) made on the test thread and fails the one whose number
 * is fail_at; it also keeps the set of live blocks and the number of mapped
 * bytes, so that the plain build can check that a scenario frees everything it
 * allocated (under ASan, LeakSanitizer checks the heap too). Allocations made inside liburcu,
 * jansson or libc (open_memstream, json_dumps, call_rcu's own bookkeeping) are not wrapped: they
 * never fail here, and frees of such blocks pass straight through.
 *
 * A scenario is a fixed sequence of library calls, each made through CALL(). It
 * first runs once without injection (the counting run), which records how many
 * allocations each step makes and the final state. Then it runs again for
 * fail_at = 0, 1, 2, ... (every point, or for the slow scenarios a selection:
 * see MAX_POINTS), each time with the fail_at-th allocation failing: in the
 * one-shot mode that allocation alone, in the persistent mode that one and
 * every later one until the step that made it returns (so a call's undo path
 * finds no memory either; the failure then stops, as the repeat below needs
 * memory). Each scenario runs in both modes. The step
 * whose allocation fails must return VMRES_ENOMEM (or succeed if the library
 * could do without that memory), its out-parameters must be untouched and the
 * observable state (dumps, iteration, validate) must equal the state before the
 * call. The step is then repeated without injection, which must succeed, so the
 * rest of the scenario runs; its final state must equal the counting run's, and
 * after everything is freed the live-block count must be back where it started.
 * A call whose header does not list VMRES_ENOMEM (releases, for instance) goes
 * through CALL_NOMEM(), which also fails the test if it ever returns it.
 *
 * Scenarios: addr, ids, sysalloc, bus, devmgr (with an attached sysalloc),
 * snapshot save and restore, irq with the callback backend and with the KVM
 * backend (on a fake VM behind its system-call seam: no /dev/kvm needed), and
 * pci: functions bound to a device manager with an attached sysalloc, whose
 * config writes report a refused change in the BAR and MSI state instead of
 * to the caller, and are checked as (9) describes; and pci-device:
 * vmres_pci_device_add() and vmres_pci_device_remove() on a host. Not covered:
 * the device manager's KVM exit helper (it allocates nothing).
 *
 * Library defects found this way and not fixed yet are listed, case by case,
 * in known_failures[] (issue 16 item 4); a run that hits one ends there.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

#include <linux/kvm.h>

#include <cmocka.h>

#include <vmres/addr.h>
#include <vmres/bus.h>
#include <vmres/devmgr.h>
#include <vmres/ids.h>
#include <vmres/irq.h>
#include <vmres/pci.h>
#include <vmres/snapshot.h>
#include <vmres/sysalloc.h>

#include "helpers.h"

/* The scenarios whose objects use RCU wait a few ms for grace periods each time
 * they free them. Those (bus, devmgr, snapshot) therefore fail, instead of
 * every point, the first and the last allocation of every step (the last one
 * makes the call undo the most), thinned evenly to at most MAX_POINTS runs or,
 * if there are fewer, topped up to MAX_POINTS with points spread evenly; the
 * others fail every point. VMRES_ENOMEM_ALL=1 in the environment makes every
 * scenario fail every point (some seconds more). */
#define MAX_POINTS  100
#define EVERY_POINT 0
/* In persistent mode the slow scenarios fail only the first allocation of
 * each step (the whole step then runs out of memory; failing its last one alone
 * is what the one-shot run does), thinned or topped up as above to at most: */
#define PERSISTENT_POINTS 30

/* ---- the allocator wrappers ---------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
void __real_free(void *p);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
void __wrap_free(void *p);

/* Injection state: touched only by the test thread. */
static _Thread_local bool on_test_thread;
static long inj_count;		 /* allocations counted in this run */
static long inj_fail_at = -1;	 /* the allocation that fails; -1: none */
static bool inj_paused;		 /* dumps and set-up: neither counted nor failed */
static long inj_fired_step = -1; /* step in which the failure was injected */
static long cur_step;
/* Persistent mode: from inj_fail_at on, every allocation fails until the step
 * that hit it returns (inj_disarm()); else only allocation inj_fail_at fails. */
static bool inj_persistent;

/* Bytes the node pools have mapped. */
static _Atomic size_t mapped_bytes;

/* Live blocks: an open-addressing set of pointers (0 empty, 1 deleted). */
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *set_slot;
static size_t set_cap, set_used, set_live;

static size_t ptr_hash(uintptr_t p)
{
	p ^= p >> 33;
	p *= 0xff51afd7ed558ccdULL;
	p ^= p >> 33;
	return (size_t)p;
}

static void set_insert_slot(uintptr_t *slots, size_t cap, uintptr_t p)
{
	size_t i = ptr_hash(p) & (cap - 1);

	while (slots[i] > 1)
		i = (i + 1) & (cap - 1);
	slots[i] = p;
}

static void set_add(void *ptr)
{
	pthread_mutex_lock(&set_lock);
	if ((set_used + 1) * 2 > set_cap) {
		size_t cap = 1024;
		uintptr_t *slots;

		while (cap < (set_live + 1) * 4)
			cap *= 2;
		slots = __real_calloc(cap, sizeof(*slots));
		if (!slots)
			abort();
		for (size_t i = 0; i < set_cap; i++)
			if (set_slot[i] > 1)
				set_insert_slot(slots, cap, set_slot[i]);
		__real_free(set_slot);
		set_slot = slots;
		set_cap = cap;
		set_used = set_live;
	}
	set_insert_slot(set_slot, set_cap, (uintptr_t)ptr);
	set_used++;
	set_live++;
	pthread_mutex_unlock(&set_lock);
}

/* Forget @ptr; false if it was not a block of ours (open_memstream, jansson). */
static bool set_remove(void *ptr)
{
	bool found = false;

	pthread_mutex_lock(&set_lock);
	if (set_cap) {
		size_t i = ptr_hash((uintptr_t)ptr) & (set_cap - 1);

		for (; set_slot[i]; i = (i + 1) & (set_cap - 1)) {
			if (set_slot[i] == (uintptr_t)ptr) {
				set_slot[i] = 1;
				set_live--;
				found = true;
				break;
			}
		}
	}
	pthread_mutex_unlock(&set_lock);
	return found;
}

/* Live heap blocks, plus one per mapped page. */
static size_t live_blocks(void)
{
	size_t n;

	pthread_mutex_lock(&set_lock);
	n = set_live;
	pthread_mutex_unlock(&set_lock);
	return n + mapped_bytes / 4096;
}

/* Should this allocation fail? */
static bool inject(void)
{
	long n;

	if (!on_test_thread || inj_paused)
		return false;
	n = inj_count++;
	if (inj_fail_at < 0 || n < inj_fail_at)
		return false;
	if (!inj_persistent)
		inj_fail_at = -1;
	inj_fired_step = cur_step;
	return true;
}

/* For messages: which mode failed. */
static const char *inj_mode(void)
{
	return inj_persistent ? ", and every allocation after it" : "";
}

/* At the end of a step (and before it is repeated): a persistent failure that
 * started in it stops, so that the repeat and the rest of the scenario run. */
static void inj_disarm(void)
{
	if (inj_fired_step == cur_step)
		inj_fail_at = -1;
}

void *__wrap_malloc(size_t size)
{
	void *p = inject() ? NULL : __real_malloc(size);

	if (p)
		set_add(p);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	void *p = inject() ? NULL : __real_calloc(n, size);

	if (p)
		set_add(p);
	return p;
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
	void *p = inject() ? NULL : __real_aligned_alloc(align, size);

	if (p)
		set_add(p);
	return p;
}

void *__wrap_realloc(void *old, size_t size)
{
	void *p;

	if (inject())
		return NULL;
	p = __real_realloc(old, size);
	if (p) {
		if (old)
			set_remove(old);
		set_add(p);
	}
	return p;
}

void __wrap_free(void *p)
{
	if (p)
		set_remove(p);
	__real_free(p);
}

/* The node pools' address space: injection as above, and a count of mapped
 * bytes for the leak check. */
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
int __real_mprotect(void *addr, size_t len, int prot);
void *__real_mremap(void *old, size_t old_len, size_t new_len, int flags, ...);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);
int __wrap_mprotect(void *addr, size_t len, int prot);
void *__wrap_mremap(void *old, size_t old_len, size_t new_len, int flags, ...);

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = inject() ? MAP_FAILED : __real_mmap64(addr, len, prot, flags, fd, off);

	if (p != MAP_FAILED)
		mapped_bytes += len;
	return p;
}

int __wrap_munmap(void *addr, size_t len)
{
	int rc = __real_munmap(addr, len);

	if (rc == 0)
		mapped_bytes -= len;
	return rc;
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
	return inject() ? -1 : __real_mprotect(addr, len, prot);
}

/* Only the moving form (MREMAP_FIXED) is used: the pages move into space that
 * is already counted, and the old range is gone. */
void *__wrap_mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *to = NULL, *p;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		to = va_arg(ap, void *);
		va_end(ap);
	}
	if (inject())
		return MAP_FAILED;
	p = __real_mremap(old, old_len, new_len, flags, to);
	if (p != MAP_FAILED)
		mapped_bytes -= old_len;
	return p;
}

/* ---- scenario runs --------------------------------------------------------- */

#define PCI_FUNCS 2
/* Places of bus 0 the pci-device scenario puts functions on. */
#define PCI_DEVICE_SLOTS 4

/*
 * Known library defects (issue 16 item 4): each entry is one exact case this
 * program finds (scenario, mode, the step's call) where a call that fails with
 * VMRES_ENOMEM changes the observable state. A run that hits one reports it,
 * ends there (its later steps would start from a wrong state) and does not fail
 * the test; any other such case still fails it. Remove an entry with its fix.
 */
struct known_failure {
	const char *scenario;
	int mode;	  /* KNOWN_ONE_SHOT, KNOWN_PERSISTENT or both */
	int check;	  /* KNOWN_CHANGED or KNOWN_DISAGREES */
	const char *call; /* the step's call, as CALL() prints it (a prefix) */
	const char *defect;
};

/* What went wrong: a failed call changed the state; or after a config write a
 * PCI function's view of its BARs or MSI vectors disagrees with the device
 * manager's (without an error to say so, for MSI), or a refusal is unreported. */
#define KNOWN_CHANGED	1
#define KNOWN_DISAGREES 2

#define KNOWN_ONE_SHOT	 1
#define KNOWN_PERSISTENT 2

static const struct known_failure known_failures[] = {
	{NULL, 0, 0, NULL, NULL},
};

static long known_hits[sizeof(known_failures) / sizeof(known_failures[0])];

/* The known defect that @c's current step is, or NULL. */
static const struct known_failure *known_failure(const char *scenario, int check, const char *call)
{
	int mode = inj_persistent ? KNOWN_PERSISTENT : KNOWN_ONE_SHOT;

	for (size_t i = 0; known_failures[i].scenario; i++) {
		const struct known_failure *k = &known_failures[i];

		if (!strcmp(k->scenario, scenario) && (k->mode & mode) && k->check == check &&
		    !strncmp(call, k->call, strlen(k->call))) {
			known_hits[i]++;
			return k;
		}
	}
	return NULL;
}

/* A run ends early (a refused PCI change was checked, or a known defect hit):
 * run_scenario() frees the scenario's objects. */
static jmp_buf run_stop;

struct fake_stats {
	int created, released;
};

/* One scenario's objects (those that are not NULL make up the state) and the
 * bookkeeping of its runs. */
struct ctx {
	struct vmres_addr *addr;
	struct vmres_ids *ids;
	struct vmres_sysalloc *sa;
	struct vmres_bus *bus[2];
	struct vmres_devmgr *m;
	struct vmres_irq_mgr *irq;
	struct vmres_irq_group *groups[16];
	struct vmres_pci_func *pci[PCI_FUNCS];
	uint32_t pci_inst[PCI_FUNCS]; /* their devices' instance ids */
	struct vmres_pci_host *host;  /* pci-device: the functions' places */
	bool kvm;		      /* the irq scenario's backend is the fake KVM's */
	struct fake_stats bind;	      /* snapshot: devices made by the bind callback */
	long notified;		      /* devmgr: calls of the MSI notifier */

	bool counting; /* the run without injection */
	/* The scenario's writers retire memory through call_rcu: whether a write
	 * reuses a retired snapshot block or allocates depends on when the call_rcu
	 * thread ran, so allocation numbers may shift between runs by a few. */
	bool rcu_timing;
	long *step_start;  /* counting run: allocation count at each step's start */
	long *step_allocs; /* counting run: allocations each step made */
	size_t steps_cap;
	long n_steps;
	char *final; /* the counting run's final state */

	long fail_at;
	char *before; /* state before the step that the injection hits */
	unsigned char *out;
	size_t out_size;
	const char *what;
	int line;
	long enomem_seen;
	long swallowed; /* injected failures the library did without */

	const char *scenario;
	bool pci_step;	    /* inside a PCI config write: mapper calls are checked */
	long mapper_enomem; /* mapper calls of this config write refused with ENOMEM */
	long refusals;	    /* runs that ended at a refused config write */
	const struct known_failure *known; /* the known defect this run hit */
};

static char *state_str(struct ctx *c);

static void inj_pause(void)
{
	inj_paused = true;
}

static void inj_resume(void)
{
	inj_paused = false;
}

static void step_begin(struct ctx *c, const char *what, int line, void *out, size_t out_size)
{
	long step = ++cur_step;

	c->what = what;
	c->line = line;
	c->out = out;
	c->out_size = out ? out_size : 0;
	if (out)
		memset(out, 0xa5, out_size);
	if (c->counting) {
		if ((size_t)step >= c->steps_cap) {
			size_t cap = c->steps_cap ? c->steps_cap * 2 : 1024;

			c->step_start = __real_realloc(c->step_start, cap * sizeof(long));
			c->step_allocs = __real_realloc(c->step_allocs, cap * sizeof(long));
			assert_non_null(c->step_start);
			assert_non_null(c->step_allocs);
			c->steps_cap = cap;
		}
		c->step_start[step] = inj_count;
		c->n_steps = step;
		return;
	}
	if (inj_fail_at < 0)
		return; /* already fired */
	if (c->rcu_timing) {
		/* The failure may land in any step: keep the state before each. */
		c->before = state_str(c);
		return;
	}
	if (step > c->n_steps || c->step_start[step] != inj_count)
		fail_msg("%s:%d: step %ld starts at allocation %ld, counting run at %ld: the "
			 "scenario is not deterministic",
			 what, line, step, inj_count, step > c->n_steps ? -1 : c->step_start[step]);
	if (inj_fail_at - inj_count < c->step_allocs[step])
		c->before = state_str(c);
}

/* After the first attempt: true if it failed with an injected VMRES_ENOMEM
 * that left everything as it was (then the caller repeats the call). */
static bool step_failed(struct ctx *c, int rc, bool enomem_documented)
{
	char *after;

	if (rc != VMRES_ENOMEM)
		return false;
	if (inj_fired_step != cur_step || c->counting)
		fail_msg("%s:%d: VMRES_ENOMEM without an injected failure", c->what, c->line);
	if (!enomem_documented)
		fail_msg("%s:%d: returns VMRES_ENOMEM, which its header does not list", c->what,
			 c->line);
	assert_non_null(c->before);
	c->enomem_seen++;
	for (size_t i = 0; i < c->out_size; i++)
		if (c->out[i] != 0xa5)
			fail_msg("%s:%d: out-parameter byte %zu written on VMRES_ENOMEM (fail_at "
				 "%ld%s)",
				 c->what, c->line, i, c->fail_at, inj_mode());
	after = state_str(c);
	if (strcmp(c->before, after) &&
	    (c->known = known_failure(c->scenario, KNOWN_CHANGED, c->what))) {
		free(after);
		free(c->before);
		c->before = NULL;
		longjmp(run_stop, 1);
	}
	if (strcmp(c->before, after)) {
		fprintf(stderr, "---- before ----\n%s---- after ----\n%s", c->before, after);
		fail_msg("%s:%d: state changed by a call that failed with "
			 "VMRES_ENOMEM "
			 "(fail_at %ld%s)",
			 c->what, c->line, c->fail_at, inj_mode());
	}
	free(after);
	free(c->before);
	c->before = NULL;
	if (c->out)
		memset(c->out, 0xa5, c->out_size);
	return true;
}

static void step_end(struct ctx *c, int rc, int expect)
{
	inj_disarm();
	if (c->counting)
		c->step_allocs[cur_step] = inj_count - c->step_start[cur_step];
	else if (inj_fired_step == cur_step && c->before)
		c->swallowed++; /* the library did without the memory */
	free(c->before);
	c->before = NULL;
	if (rc != expect)
		fail_msg("%s:%d: returned %s, expected %s (fail_at %ld%s)", c->what, c->line,
			 vmres_errname(rc), vmres_errname(expect), c->fail_at, inj_mode());
}

/* Make @call (returning @expect) through the injection checks; @out (may be
 * NULL) is an object the call writes only on success. */
#define CALL_X(c, documented, expect, out, call)                                                   \
	do {                                                                                       \
		int rc_;                                                                           \
		step_begin((c), #call, __LINE__, (out), sizeof(*(out)));                           \
		rc_ = (call);                                                                      \
		inj_disarm();                                                                      \
		if (step_failed((c), rc_, (documented)))                                           \
			rc_ = (call);                                                              \
		step_end((c), rc_, (expect));                                                      \
	} while (0)

/* A call whose header lists VMRES_ENOMEM. */
#define CALL(c, expect, out, call) CALL_X(c, true, expect, out, call)
/* A call whose header does not list VMRES_ENOMEM: it must never return it. */
#define CALL_NOMEM(c, expect, out, call) CALL_X(c, false, expect, out, call)

static void *no_out; /* typed NULL for CALL's out argument */
#define NO_OUT ((char *)no_out)

/* At the end of a scenario (before freeing): the state must equal the counting
 * run's whatever failed and was repeated on the way. */
static void final_state(struct ctx *c)
{
	char *s = state_str(c);

	if (c->counting) {
		c->final = s;
		return;
	}
	if (strcmp(s, c->final))
		fail_msg("final state differs from the run without injection (fail_at %ld%s)",
			 c->fail_at, inj_mode());
	free(s);
}

/* Which failure points to run: *@stride is set to how many of the candidates
 * (first and last allocation of each step) there are per point run. */
static bool *pick_points(const struct ctx *c, long total, long max_points, bool persistent,
			 long *stride)
{
	bool *pick = __real_calloc((size_t)total + 1, sizeof(bool));
	long candidates = 0, k = 0;

	assert_non_null(pick);
	if (getenv("VMRES_ENOMEM_ALL")) /* an exhaustive run, by hand */
		max_points = EVERY_POINT;
	for (long n = 0; n < total; n++)
		pick[n] = max_points == EVERY_POINT;
	*stride = 1;
	if (max_points == EVERY_POINT)
		return pick;
	for (long st = 1; st <= c->n_steps; st++) {
		if (c->step_allocs[st] > 0) {
			pick[c->step_start[st]] = true;
			/* Persistent, the last alone is the one-shot run's point. */
			if (!persistent)
				pick[c->step_start[st] + c->step_allocs[st] - 1] = true;
		}
	}
	for (long n = 0; n < total; n++)
		candidates += pick[n];
	*stride = (candidates + max_points - 1) / max_points;
	for (long n = 0; n < total; n++)
		if (pick[n])
			pick[n] = k++ % *stride == 0;
	/* Few steps (snapshot): spend the rest on points spread evenly. */
	candidates = (candidates + *stride - 1) / *stride;
	if (candidates < max_points) {
		long every = (total - candidates + max_points - candidates - 1) /
			     (max_points - candidates);

		k = 0;
		for (long n = 0; n < total; n++)
			if (!pick[n] && k++ % every == 0)
				pick[n] = true;
	}
	return pick;
}

/* Free whatever objects of the scenario are still there (a run ended early). */
static void free_objects(struct ctx *c)
{
	for (int i = 0; i < PCI_FUNCS; i++)
		vmres_pci_func_free(c->pci[i]);
	vmres_pci_host_free(c->host);
	c->host = NULL;
	vmres_devmgr_free(c->m);
	vmres_irq_mgr_free(c->irq);
	vmres_sysalloc_free(c->sa);
	vmres_bus_free(c->bus[0]);
	vmres_bus_free(c->bus[1]);
	vmres_ids_free(c->ids);
	vmres_addr_free(c->addr);
	free(c->before);
	c->before = NULL;
}

/* Run @scenario on @run: false if it ended early (run_stop). */
static bool run_to_end(void (*scenario)(struct ctx *c), struct ctx *run)
{
	if (setjmp(run_stop))
		return false;
	scenario(run);
	return true;
}

/*
 * Run @scenario once without injection, then once per picked failure point:
 * with only that allocation failing, or (@persistent) with it and every later
 * allocation of the step that makes it failing.
 */
static void run_scenario(const char *name, void (*scenario)(struct ctx *c), long max_points,
			 bool rcu_timing, bool persistent)
{
	struct timespec t0, t1;
	struct ctx c, run;
	size_t live0;
	long total, points = 0, enomem = 0, swallowed = 0, refusals = 0, known = 0, stride;
	bool *pick;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&c, 0, sizeof(c));
	on_test_thread = true;
	inj_paused = false;
	inj_persistent = persistent;
	live0 = live_blocks();
	c.scenario = name;
	c.counting = true;
	c.rcu_timing = rcu_timing;
	c.fail_at = -1;
	inj_fail_at = -1;
	inj_count = 0;
	cur_step = 0;
	scenario(&c);
	total = inj_count;
	if (live_blocks() != live0)
		fail_msg("%s: %zu blocks leaked without injection", name, live_blocks() - live0);
	c.counting = false;
	pick = pick_points(&c, total, max_points, persistent, &stride);
	for (long n = 0; n < total; n++) {
		if (!pick[n])
			continue;
		run = c;
		memset(&run.bind, 0, sizeof(run.bind));
		run.addr = NULL;
		run.ids = NULL;
		run.sa = NULL;
		run.bus[0] = run.bus[1] = NULL;
		run.m = NULL;
		run.irq = NULL;
		memset(run.groups, 0, sizeof(run.groups));
		memset(run.pci, 0, sizeof(run.pci));
		run.host = NULL;
		run.fail_at = n;
		run.enomem_seen = run.swallowed = run.notified = run.refusals = 0;
		run.known = NULL;
		run.pci_step = false;
		inj_count = 0;
		inj_fail_at = n;
		inj_fired_step = -1;
		cur_step = 0;
		if (run_to_end(scenario, &run)) {
			/* With RCU timing a run may make a few allocations fewer. */
			if (inj_fail_at >= 0 && !rcu_timing)
				fail_msg("%s: allocation %ld never happened (counting run made "
					 "%ld)",
					 name, n, total);
		} else {
			inj_fail_at = -1;
			free_objects(&run);
			if (run.known) {
				printf("%s: known defect (issue 16 item 4) at %s:%d, allocation "
				       "%ld failing%s: %s\n",
				       name, run.what, run.line, n, inj_mode(), run.known->defect);
				known++;
			}
		}
		if (live_blocks() != live0)
			fail_msg("%s: %zu blocks leaked with allocation %ld failing%s", name,
				 live_blocks() - live0, n, inj_mode());
		points++;
		enomem += run.enomem_seen;
		swallowed += run.swallowed;
		refusals += run.refusals;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	__real_free(pick);
	printf("%s%s: %ld steps, %ld allocations; failed %ld of them (%s", name,
	       persistent ? " (each and every allocation after it)" : "", c.n_steps, total, points,
	       points == total ? "every one"
	       : persistent    ? "the first of each step"
			       : "the first and last of each step");
	if (stride > 1)
		printf(", every %ldth of those", stride);
	else if (points < total)
		printf(", and others spread evenly");
	printf("): %ld gave VMRES_ENOMEM, %ld were done without", enomem, swallowed);
	if (refusals)
		printf(", %ld refused a PCI change", refusals);
	if (known)
		printf(", %ld hit a known defect", known);
	printf("; %.2f s\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	inj_persistent = false;
	__real_free(c.step_start);
	__real_free(c.step_allocs);
	free(c.final);
}

/* ---- a KVM VM for the KVM interrupt backend, through its system-call seam ---- */

/* Enough of KVM_IRQFD, KVM_SET_GSI_ROUTING, KVM_GET_IRQCHIP and eventfds for the
 * backend, without /dev/kvm; its system calls never fail (only allocations do
 * here). Its irqfds, open eventfds and last routing table are observable state. */
#define FAKE_VM_FD  3
#define FAKE_FD_MAX 256
#define FAKE_ROUTES 512

static struct fake_kvm {
	bool open[FAKE_FD_MAX];
	uint32_t irqfd_gsi[FAKE_FD_MAX]; /* +1; 0: not an irqfd */
	bool resample[FAKE_FD_MAX];
	int nopen;
	struct kvm_irq_routing_entry table[FAKE_ROUTES];
	uint32_t ntable;
	long pushes;
} kvm;

static int fake_eventfd(void *ctx, unsigned int initval, int flags)
{
	(void)ctx, (void)initval, (void)flags;
	for (int i = 0; i < FAKE_FD_MAX; i++) {
		if (!kvm.open[i]) {
			kvm.open[i] = true;
			kvm.nopen++;
			return 1000 + i;
		}
	}
	fail_msg("fake KVM: out of eventfds");
	return -1;
}

static int fake_close(void *ctx, int fd)
{
	(void)ctx;
	assert_true(fd >= 1000 && fd < 1000 + FAKE_FD_MAX && kvm.open[fd - 1000]);
	kvm.open[fd - 1000] = false;
	kvm.irqfd_gsi[fd - 1000] = 0; /* as KVM: closing an irqfd's eventfd releases it */
	kvm.nopen--;
	return 0;
}

static ssize_t fake_read(void *ctx, int fd, void *buf, size_t len)
{
	(void)ctx, (void)fd, (void)buf, (void)len;
	errno = EAGAIN;
	return -1;
}

static ssize_t fake_write(void *ctx, int fd, const void *buf, size_t len)
{
	(void)ctx, (void)fd, (void)buf;
	return (ssize_t)len;
}

static int fake_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	(void)ctx;
	assert_int_equal(fd, FAKE_VM_FD);
	if (request == KVM_GET_IRQCHIP)
		return 0; /* a full in-kernel irqchip */
	if (request == KVM_IRQFD) {
		const struct kvm_irqfd *a = arg;
		int i = (int)a->fd - 1000;

		assert_true(i >= 0 && i < FAKE_FD_MAX && kvm.open[i]);
		if (a->flags & KVM_IRQFD_FLAG_DEASSIGN) {
			kvm.irqfd_gsi[i] = 0;
			return 0;
		}
		assert_int_equal(kvm.irqfd_gsi[i], 0);
		kvm.irqfd_gsi[i] = a->gsi + 1;
		kvm.resample[i] = a->flags & KVM_IRQFD_FLAG_RESAMPLE;
		return 0;
	}
	if (request == KVM_SET_GSI_ROUTING) {
		const struct kvm_irq_routing *r = arg;

		assert_true(r->nr <= FAKE_ROUTES);
		memcpy(kvm.table, r->entries, r->nr * sizeof(r->entries[0]));
		kvm.ntable = r->nr;
		kvm.pushes++;
		return 0;
	}
	fail_msg("fake KVM: ioctl %lx", request);
	return -1;
}

static const struct vmres_irq_kvm_sys fake_kvm_sys = {
	.version = VMRES_IRQ_KVM_SYS_VERSION,
	.ioctl = fake_ioctl,
	.eventfd = fake_eventfd,
	.read = fake_read,
	.write = fake_write,
	.close = fake_close,
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void print_fake_kvm(FILE *f)
{
	uint32_t irqfds[FAKE_FD_MAX];
	size_t n = 0;

	fprintf(f, "kvm: %d eventfds open, routing table of %u\n", kvm.nopen, kvm.ntable);
	/* by GSI, not fd number: which fd a source got is not state */
	for (int i = 0; i < FAKE_FD_MAX; i++)
		if (kvm.irqfd_gsi[i])
			irqfds[n++] = (kvm.irqfd_gsi[i] - 1) * 2 + kvm.resample[i];
	qsort(irqfds, n, sizeof(irqfds[0]), cmp_u32);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  irqfd gsi %u%s\n", irqfds[i] / 2, irqfds[i] % 2 ? " resample" : "");
	for (uint32_t i = 0; i < kvm.ntable; i++) {
		const struct kvm_irq_routing_entry *e = &kvm.table[i];

		if (e->type == KVM_IRQ_ROUTING_MSI)
			fprintf(f, "  route gsi %u msi %x:%x/%x\n", e->gsi, e->u.msi.address_hi,
				e->u.msi.address_lo, e->u.msi.data);
		else
			fprintf(f, "  route gsi %u type %u chip %u pin %u\n", e->gsi, e->type,
				e->u.irqchip.irqchip, e->u.irqchip.pin);
	}
}

/* ---- observable state ------------------------------------------------------ */

static int print_addr_entry(void *ctx, const struct vmres_addr_entry *e)
{
	fprintf(ctx, "  %" PRIx64 "-%" PRIx64 " owner %" PRIx64 "\n", e->base, e->last, e->owner);
	return 0;
}

static int print_owner(void *ctx, uint64_t owner, const char *name, uint64_t count)
{
	fprintf(ctx, "  owner %" PRIx64 " %s %" PRIu64 "\n", owner, name ? name : "-", count);
	return 0;
}

static void print_pci_func(FILE *f, int i, struct vmres_pci_func *fn)
{
	struct vmres_pci_msi_state ms;
	uint32_t cmd;

	assert_int_equal(vmres_pci_func_config_read(fn, VMRES_PCI_COMMAND, 2, &cmd), 0);
	fprintf(f, "pci %d: command %x\n", i, cmd);
	for (unsigned int b = 0; b < VMRES_PCI_NUM_BARS; b++) {
		struct vmres_pci_bar_state st;
		uint32_t reg;

		assert_int_equal(vmres_pci_func_bar_get(fn, b, &st), 0);
		assert_int_equal(vmres_pci_func_config_read(fn, VMRES_PCI_BAR_OFFSET(b), 4, &reg),
				 0);
		if (st.kind == VMRES_PCI_BAR_NONE && !reg)
			continue;
		fprintf(f,
			"  bar %u reg %08x addr %" PRIx64 " %d%d mapped %d at %" PRIx64
			" error %s refused %" PRIu64 "\n",
			b, reg, st.reg_addr, st.reg_is_address, st.half_pending, st.mapped,
			st.mapped_base, vmres_errname(st.last_error), st.refused);
	}
	if (vmres_pci_func_msi_get(fn, &ms) == 0)
		fprintf(f, "  msi enabled %d vectors %u mask %x msg %x:%x/%x error %s\n",
			ms.enabled, ms.vectors, ms.mask, ms.msg.addr_hi, ms.msg.addr_lo,
			ms.msg.data, vmres_errname(ms.last_error));
}

/* Which function answers at each place of bus 0 that the pci-device scenario
 * uses (configuration mechanism #1: vendor and device id, all ones if none). */
static void print_pci_host(FILE *f, struct vmres_pci_host *h)
{
	for (unsigned int slot = 0; slot < PCI_DEVICE_SLOTS; slot++) {
		uint32_t id;

		assert_int_equal(vmres_pci_host_conf1_write(h, 0, 4, 0x80000000u | slot << 11), 0);
		assert_int_equal(vmres_pci_host_conf1_read(h, 4, 4, &id), 0);
		fprintf(f, "host slot %u: %08x\n", slot, id);
	}
}

/* Everything observable about the scenario's objects, with injection paused. */
static char *state_str(struct ctx *c)
{
	char *buf = NULL, *text;
	size_t len = 0;
	FILE *f;

	inj_pause();
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	if (c->addr) {
		struct vmres_addr_stats st;

		assert_int_equal(vmres_addr_stats(c->addr, &st), 0);
		fprintf(f,
			"addr: validate %d count %" PRIu64 " used %" PRIx64 " gaps %" PRIu64 "\n",
			vmres_addr_validate(c->addr), st.count, st.used, st.gaps);
		assert_int_equal(vmres_addr_foreach(c->addr, print_addr_entry, f), 0);
	}
	if (c->ids) {
		struct vmres_ids_stats st;
		uint32_t from = 0, id, run_first = 0, run_last = 0;
		bool have = false;

		assert_int_equal(vmres_ids_stats(c->ids, &st), 0);
		fprintf(f, "ids: validate %d used %" PRIu64 " free %" PRIu64 "\n",
			vmres_ids_validate(c->ids), st.used, st.free);
		while (vmres_ids_next(c->ids, from, &id) == 0) {
			if (have && id == run_last + 1) {
				run_last = id;
			} else {
				if (have)
					fprintf(f, "  %u-%u\n", run_first, run_last);
				run_first = run_last = id;
				have = true;
			}
			if (id == UINT32_MAX)
				break;
			from = id + 1;
		}
		if (have)
			fprintf(f, "  %u-%u\n", run_first, run_last);
	}
	if (c->sa) {
		assert_int_equal(vmres_sysalloc_dump_str(c->sa, &text), 0);
		fprintf(f, "sysalloc: validate %d\n%s", vmres_sysalloc_validate(c->sa), text);
		free(text);
		assert_int_equal(vmres_sysalloc_foreach_owner(c->sa, print_owner, f), 0);
	}
	for (int b = 0; b < 2; b++) {
		static struct vmres_bus_hit hits[1024];
		size_t n;

		if (!c->bus[b])
			continue;
		assert_int_equal(vmres_bus_ranges(c->bus[b], hits, 1024, &n), 0);
		assert_true(n <= 1024);
		fprintf(f, "bus %d: %zu ranges\n", b, n);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "  %" PRIx64 "-%" PRIx64 " %p %u\n", hits[i].base, hits[i].last,
				(const void *)hits[i].dev, hits[i].range);
	}
	if (c->m) {
		struct vmres_devmgr_stats st;
		uint32_t next_id;

		assert_int_equal(vmres_devmgr_dump_str(c->m, &text), 0);
		assert_int_equal(vmres_devmgr_next_id(c->m, &next_id), 0);
		assert_int_equal(vmres_devmgr_stats(c->m, &st), 0);
		fprintf(f, "devmgr: next id %u devices %" PRIu64 " notified %ld\n%s", next_id,
			st.devices, c->notified, text);
		free(text);
	}
	if (c->irq) {
		static struct vmres_irq_route routes[256];
		struct vmres_irq_mgr_info info;
		size_t n;

		/* Not the commit count: a push that group_free() could not make is
		 * retried by the next commit, which then counts one fewer. */
		assert_int_equal(vmres_irq_mgr_get_info(c->irq, &info), 0);
		assert_int_equal(vmres_irq_mgr_get_routes(c->irq, routes, 256, &n), 0);
		assert_true(n <= 256);
		fprintf(f, "irq: groups %zu sources %zu depth %u dirty %d routes %zu\n",
			info.groups, info.sources, info.batch_depth, info.dirty, n);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "  gsi %u kind %d msg %x:%x/%x\n", routes[i].gsi, routes[i].kind,
				routes[i].msg.addr_hi, routes[i].msg.addr_lo, routes[i].msg.data);
		for (size_t g = 0; g < 16; g++) {
			for (unsigned int i = 0;
			     c->groups[g] && i < vmres_irq_group_count(c->groups[g]); i++) {
				struct vmres_irq_src_state st;
				struct vmres_irq_src *src;

				assert_int_equal(vmres_irq_group_src(c->groups[g], i, &src), 0);
				assert_int_equal(vmres_irq_src_get_state(src, &st), 0);
				fprintf(f,
					"  group %zu src %u gsi %u kind %d trigger %d msg %x/%x "
					"live %x/%x %d%d%d%d\n",
					g, i, st.gsi, st.config.kind, st.config.trigger,
					st.config.msg.addr_lo, st.config.msg.data,
					st.live_msg.addr_lo, st.live_msg.data, st.enabled,
					st.masked, st.pending, st.asserted);
			}
		}
	}
	for (int i = 0; i < PCI_FUNCS; i++)
		if (c->pci[i])
			print_pci_func(f, i, c->pci[i]);
	if (c->host)
		print_pci_host(f, c->host);
	if (c->kvm)
		print_fake_kvm(f);
	assert_int_equal(fclose(f), 0);
	inj_resume();
	return buf;
}

/* ---- scenarios --------------------------------------------------------------- */

/* (1) Address allocator: 16000 allocations by every policy and 4000 releases, so
 * that the node pools grow chunk by chunk past the point where chunks come from
 * 2 MiB slabs; then everything is released. A fixed pattern. */
#define ADDR_OPS 16000

static struct span {
	uint64_t base, size;
} spans[ADDR_OPS];

static void scenario_addr(struct ctx *c)
{
	struct vmres_addr *a;
	size_t n = 0;

	CALL(c, 0, &a, vmres_addr_new(0, (1ULL << 44) - 1, &a));
	c->addr = a;
	CALL(c, 0, NO_OUT, vmres_addr_reserve_capacity(c->addr, 40));
	for (uint32_t i = 0; i < ADDR_OPS; i++) {
		struct vmres_addr_req req = VMRES_ADDR_REQ_INIT;
		uint64_t base;

		req.owner = i;
		switch (i % 4) {
		case 0: /* first fit, aligned, low half */
			req.size = 0x1000 * (1 + i % 7);
			req.align = 0x1000;
			req.max = (1ULL << 43) - 1;
			break;
		case 1: /* last fit in a sub-window */
			req.policy = VMRES_ADDR_LAST_FIT;
			req.size = 0x100 + (i % 13) * 0x10;
			req.align = 0x10;
			req.min = 1ULL << 42;
			req.max = (1ULL << 43) - 1;
			break;
		case 2: /* exact, spread out in the top half */
			req.policy = VMRES_ADDR_EXACT;
			req.size = 0x2000;
			req.addr = (1ULL << 43) + (uint64_t)i * 0x100000;
			break;
		default: /* a power-of-two BAR, first fit anywhere */
			req.size = 1ULL << (12 + i % 9);
			req.align = req.size;
			break;
		}
		CALL(c, 0, &base, vmres_addr_alloc(c->addr, &req, &base));
		spans[n].base = base;
		spans[n].size = req.size;
		n++;
		if (i % 4 == 3) { /* release an older one */
			struct span *s = &spans[(i * 7919u) % n];
			uint64_t owner;

			if (s->size) {
				CALL_NOMEM(c, 0, &owner,
					   vmres_addr_release(c->addr, s->base, s->size, &owner));
				s->size = 0;
			}
		}
		if (i % 1000 == 999) /* bad input stays bad input */
			CALL_NOMEM(c, VMRES_ENOENT, NO_OUT,
				   vmres_addr_release(c->addr, 1ULL << 42, 0x1000, NULL));
	}
	for (size_t i = 0; i < n; i++) {
		if (spans[i].size) {
			CALL(c, VMRES_EOVERLAP, NO_OUT,
			     vmres_addr_reserve(c->addr, spans[i].base, 1, 0));
			break;
		}
	}
	final_state(c);
	for (size_t i = 0; i < n; i++)
		if (spans[i].size)
			CALL_NOMEM(c, 0, NO_OUT,
				   vmres_addr_release(c->addr, spans[i].base, spans[i].size, NULL));
	vmres_addr_free(c->addr);
	c->addr = NULL;
}

/* (2) ID allocator: a small range (its bitmap made at creation) and the whole
 * u32 range, whose 4096-number leaves are made on first use and freed when
 * emptied. */
static void scenario_ids(struct ctx *c)
{
	struct vmres_ids *small, *big;
	uint32_t id, first;

	CALL(c, 0, &small, vmres_ids_new(0, 100000, &small));
	CALL(c, 0, &id, vmres_ids_alloc(small, &id));
	vmres_ids_free(small);
	CALL(c, 0, &big, vmres_ids_new(0, UINT32_MAX, &big));
	c->ids = big;
	for (uint32_t i = 0; i < 120; i++) {
		uint32_t at = i * 35791394u; /* spread over the whole range */

		CALL(c, 0, NO_OUT, vmres_ids_reserve(c->ids, at + 5));
		CALL(c, 0, &id, vmres_ids_alloc_from(c->ids, at + 4096 * 3, &id));
		CALL(c, 0, &first, vmres_ids_alloc_block(c->ids, 64, &first));
		CALL(c, 0, &id, vmres_ids_alloc(c->ids, &id));
		if (i % 3 == 0) /* a block across a leaf boundary */
			CALL(c, 0, NO_OUT, vmres_ids_reserve_block(c->ids, at + 4096 * 7 - 10, 20));
		if (i % 5 == 0) {
			CALL_NOMEM(c, 0, NO_OUT, vmres_ids_release(c->ids, at + 5));
			CALL(c, VMRES_EOVERLAP, NO_OUT, vmres_ids_reserve(c->ids, first));
		}
		if (i % 7 == 0)
			CALL_NOMEM(c, 0, NO_OUT, vmres_ids_release_block(c->ids, first, 64));
	}
	CALL(c, 0, &first, vmres_ids_alloc_block(c->ids, 1u << 15, &first));
	final_state(c);
	vmres_ids_free(c->ids);
	c->ids = NULL;
}

struct batch {
	struct vmres_resource res[16];
	size_t n;
};

/* (3) System allocator: pools, batches of every kind (MSI blocks too), names,
 * labels, releases, reservations, and a batch that fails late and rolls back. */
static void scenario_sysalloc(struct ctx *c)
{
	static struct batch held[60], shares[30];
	struct vmres_sysalloc_error err;
	struct vmres_sysalloc *sa;
	struct vmres_resource r, rolled_back[16];
	char name[VMRES_SYSALLOC_LABEL_MAX];

	CALL(c, 0, &sa, vmres_sysalloc_new_aarch64(&sa));
	vmres_sysalloc_free(sa);
	CALL(c, 0, &sa, vmres_sysalloc_new(&sa));
	c->sa = sa;
	CALL(c, 0, NO_OUT, vmres_sysalloc_add_addr_pool(c->sa, "pio", VMRES_SPACE_PIO, 0, 0xffff));
	CALL(c, 0, NO_OUT,
	     vmres_sysalloc_add_addr_pool(c->sa, "mmio32", VMRES_SPACE_MMIO, 0xc0000000,
					  0xffffffff));
	CALL(c, 0, NO_OUT,
	     vmres_sysalloc_add_addr_pool(c->sa, "mmio64", VMRES_SPACE_MMIO, 1ULL << 36,
					  (1ULL << 40) - 1));
	CALL(c, 0, NO_OUT, vmres_sysalloc_add_id_pool(c->sa, "gsi", VMRES_RES_IRQ, 0, 23));
	CALL(c, 0, NO_OUT, vmres_sysalloc_add_id_pool(c->sa, "msi", VMRES_RES_MSI, 24, 4095));
	CALL(c, 0, NO_OUT, vmres_sysalloc_add_id_pool(c->sa, "ids", VMRES_RES_ID, 0, UINT32_MAX));
	for (uint32_t i = 0; i < 12; i++) { /* enough pools to grow the pool array */
		snprintf(name, sizeof(name), "extra%u", i);
		CALL(c, 0, NO_OUT,
		     vmres_sysalloc_add_addr_pool(c->sa, name, VMRES_SPACE_MMIO,
						  (1ULL << 41) + ((uint64_t)i << 32),
						  (1ULL << 41) + ((uint64_t)i << 32) + 0xffffff));
	}
	CALL(c, VMRES_EEXIST, NO_OUT, vmres_sysalloc_add_id_pool(c->sa, "ids", VMRES_RES_ID, 0, 9));
	for (uint64_t owner = 1; owner <= 60; owner++) {
		struct batch *b = &held[owner - 1];
		struct vmres_request q[9];
		size_t nq = 0;
		char extra[VMRES_POOL_NAME_MAX];

		snprintf(extra, sizeof(extra), "extra%u", (unsigned)(owner % 12));
		q[nq++] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000 << (owner % 3), 0x1000,
				       VMRES_ADDR_FIRST_FIT, 0);
		q[nq++] = test_rq_addr("mmio64", VMRES_SPACE_MMIO, 0x100000, 0x100000,
				       VMRES_ADDR_LAST_FIT, 0);
		q[nq++] = test_rq_addr("pio", VMRES_SPACE_PIO, 8, 8, VMRES_ADDR_FIRST_FIT, 0);
		q[nq++] = test_rq_num(VMRES_RES_MSI, "msi", 4, true);
		q[nq++] = test_rq_num(VMRES_RES_MSI, "msi", 3, false);
		q[nq++] = test_rq_num(VMRES_RES_ID, "ids", 1, false);
		q[nq++] =
			test_rq_addr(extra, VMRES_SPACE_MMIO, 0x10000, 0, VMRES_ADDR_FIRST_FIT, 0);
		if (owner <= 16)
			q[nq++] = test_rq_num(VMRES_RES_IRQ, "gsi", 1, false);
		CALL(c, 0, b, vmres_sysalloc_alloc(c->sa, q, nq, owner, b->res, 16, &b->n, &err));
		snprintf(name, sizeof(name), "dev%u", (unsigned)owner);
		CALL(c, 0, NO_OUT, vmres_sysalloc_set_owner_name(c->sa, owner, name));
		CALL_NOMEM(c, 0, NO_OUT,
			   vmres_sysalloc_set_label(c->sa, &b->res[0], owner, "bar0"));
		if (owner % 4 == 0) /* release one MSI vector and the id */
			CALL_NOMEM(c, 0, NO_OUT, vmres_sysalloc_release(c->sa, &b->res[4], owner));
		if (owner % 5 == 0) {
			CALL(c, 0, &r,
			     vmres_sysalloc_reserve(c->sa, "mmio32", 0xf0000000 + owner * 0x10000,
						    0x1000, 0x1000, owner, "fw", &r));
			CALL(c, 0, &r,
			     vmres_sysalloc_reserve(c->sa, "msi", 4000 + owner / 5, 0, 0, owner,
						    NULL, &r));
		}
		if (owner % 6 == 0) { /* fails at its last request: everything rolls back */
			q[nq++] = test_rq_num(VMRES_RES_IRQ, "gsi", 1, false);
			q[nq - 1].u.irq.any = false;
			q[nq - 1].u.irq.gsi = 0; /* owner 1's */
			CALL(c, VMRES_EOVERLAP, NO_OUT,
			     vmres_sysalloc_alloc(c->sa, q, nq, owner + 1000, rolled_back, 16,
						  &b->n, NULL));
		}
		if (owner % 7 == 0) {
			CALL_NOMEM(c, 0, NO_OUT, vmres_sysalloc_release_owner(c->sa, owner - 1));
			CALL(c, 0, NO_OUT, vmres_sysalloc_set_owner_name(c->sa, owner - 2, NULL));
		}
	}
	/* Shared legacy lines: new lines (the line table, the heap growing past
	 * 8), joins, a rollback of both, a label, releases of single shares. */
	CALL(c, 0, NO_OUT, vmres_sysalloc_add_id_pool(c->sa, "intx", VMRES_RES_IRQ, 5000, 5011));
	for (uint64_t owner = 61; owner <= 90; owner++) {
		struct vmres_request q[2] = {test_rq_num(VMRES_RES_IRQ, "intx", 1, false),
					     test_rq_num(VMRES_RES_ID, "ids", 1, false)};
		struct batch *b = &shares[owner - 61];
		size_t n;

		q[0].u.irq.shared = true;
		if (owner % 3 == 0) { /* join a specific line */
			q[0].u.irq.any = false;
			q[0].u.irq.gsi = 5000 + (uint32_t)(owner % 12);
		}
		CALL(c, 0, b, vmres_sysalloc_alloc(c->sa, q, 2, owner, b->res, 16, &b->n, &err));
		if (owner % 4 == 0)
			CALL_NOMEM(c, 0, NO_OUT,
				   vmres_sysalloc_set_label(c->sa, &b->res[0], owner, "intx"));
		q[1].u.id.any = false;
		q[1].u.id.id = b->res[1].u.id.id; /* taken: the batch below fails there */
		if (owner % 5 == 0) /* fails at its last request: line and join roll back */
			CALL(c, VMRES_EOVERLAP, NO_OUT,
			     vmres_sysalloc_alloc(c->sa, q, 2, owner + 1000, rolled_back, 16, &n,
						  NULL));
		if (owner % 7 == 0)
			CALL_NOMEM(c, 0, NO_OUT, vmres_sysalloc_release(c->sa, &b->res[0], owner));
	}
	final_state(c);
	for (uint64_t owner = 1; owner <= 90; owner += 2)
		CALL_NOMEM(c, 0, NO_OUT, vmres_sysalloc_release_owner(c->sa, owner));
	vmres_sysalloc_free(c->sa);
	c->sa = NULL;
}

/* (4) Buses: ranges inserted and removed on a PIO and an MMIO bus. */
static struct tdev bus_devs[64];

static uint64_t bus_mmio_at(unsigned int i)
{
	return i % 2 ? 0xfe000000ull + 0x1000ull * i : (1ULL << 40) + 0x40ull * i;
}

static void scenario_bus(struct ctx *c)
{
	struct vmres_bus *bus;

	CALL(c, 0, &bus, vmres_bus_new(VMRES_SPACE_PIO, &bus));
	c->bus[0] = bus;
	CALL(c, 0, &bus, vmres_bus_new(VMRES_SPACE_MMIO, &bus));
	c->bus[1] = bus;
	for (unsigned int i = 0; i < 64; i++)
		tdev_init(&bus_devs[i], "dev", NULL);
	for (unsigned int i = 0; i < 120; i++) {
		const struct vmres_device *dev = &bus_devs[i % 64].dev;
		/* PIO: spread over many 256-port pages, some clustered */
		uint64_t port = i % 3 ? 0x100u * i : 0x3000 + 4u * i;
		uint64_t mmio = bus_mmio_at(i);

		CALL(c, 0, NO_OUT, vmres_bus_insert(c->bus[0], port, 4, dev, i));
		CALL(c, 0, NO_OUT, vmres_bus_insert(c->bus[1], mmio, 0x40, dev, i));
		if (i % 3 == 2) {
			CALL(c, 0, NO_OUT, vmres_bus_remove(c->bus[0], 0x100u * (i - 1)));
			CALL(c, 0, NO_OUT, vmres_bus_remove(c->bus[1], bus_mmio_at(i - 2)));
		}
		if (i % 10 == 0) {
			CALL(c, VMRES_EOVERLAP, NO_OUT,
			     vmres_bus_insert(c->bus[0], port, 1, dev, 0));
			CALL(c, VMRES_ENOENT, NO_OUT, vmres_bus_remove(c->bus[1], mmio + 1));
		}
	}
	final_state(c);
	vmres_bus_free(c->bus[0]);
	vmres_bus_free(c->bus[1]);
	c->bus[0] = c->bus[1] = NULL;
}

/* (5) Device manager with an attached x86-64 system allocator. */
static struct tdev dm_devs[16];
static char dm_names[16][16];

static int count_devices(void *ctx, const struct vmres_devmgr_info *info,
			 const struct vmres_resource *res, const bool *mapped)
{
	(void)info, (void)res, (void)mapped;
	(*(int *)ctx)++;
	return 0;
}

/* What the interrupt module would do; a reroute that fails must not have told it. */
static int count_notified(void *ctx, uint32_t instance, unsigned int res_index, uint32_t gsi,
			  const struct vmres_msi_msg *msg)
{
	(void)instance, (void)res_index, (void)gsi, (void)msg;
	((struct ctx *)ctx)->notified++;
	return 0;
}

static void scenario_devmgr(struct ctx *c)
{
	struct vmres_msi_msg msg = {0xfee00000, 0, 0x4021};
	uint32_t inst[16], found;
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct batch b;
	char *text;
	int n;

	CALL(c, 0, &sa, vmres_sysalloc_new_x86_64(&sa));
	c->sa = sa;
	CALL(c, 0, &m, vmres_devmgr_new(c->sa, &m));
	c->m = m;
	for (unsigned int i = 0; i < 16; i++) {
		struct vmres_request q[6];
		size_t nq = 0;

		snprintf(dm_names[i], sizeof(dm_names[i]), "dev%u", i);
		tdev_init(&dm_devs[i], dm_names[i], c->m);
		dm_devs[i].dev.owner = 100 + i;
		q[nq++] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000,
				       VMRES_ADDR_FIRST_FIT, 0);
		q[nq++] = test_rq_addr("pio", VMRES_SPACE_PIO, 8, 8, VMRES_ADDR_FIRST_FIT, 0);
		q[nq++] = test_rq_num(VMRES_RES_MSI, "gsi-msi", 2, true);
		q[nq++] = test_rq_addr("mmio64", VMRES_SPACE_MMIO, 0x100000, 0x100000,
				       VMRES_ADDR_FIRST_FIT, 0);
		/* aligned below its size: it can move onto part of itself */
		q[nq++] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x4000, 0x1000,
				       VMRES_ADDR_LAST_FIT, 0);
		if (i < 8)
			q[nq++] = test_rq_num(VMRES_RES_IRQ, "gsi-legacy", 1, false);
		CALL(c, 0, &b, vmres_sysalloc_alloc(c->sa, q, nq, 100 + i, b.res, 16, &b.n, NULL));
		CALL(c, 0, &inst[i],
		     vmres_devmgr_register(c->m, &dm_devs[i].dev, i ? inst[0] : 0, b.res, b.n,
					   &inst[i]));
	}
	CALL(c, VMRES_EOVERLAP, NO_OUT,
	     vmres_devmgr_register(c->m, &dm_devs[0].dev, 0, b.res, 1, &found));
	CALL(c, 0, NO_OUT, vmres_devmgr_set_msi_notifier(c->m, count_notified, c));
	for (unsigned int i = 1; i < 16; i++) {
		struct vmres_resource cur[8];
		struct vmres_devmgr_info info;

		bool mapped[8];
		uint64_t base5;

		CALL(c, 0, NO_OUT,
		     vmres_devmgr_move_range(c->m, inst[i], 0, 0xd0000000 + i * 0x10000));
		CALL(c, 0, NO_OUT, vmres_devmgr_unmap_range(c->m, inst[i], 1));
		/* overlapping moves, mapped and unmapped, then all mapped at once */
		base5 = 0xf0000000 + i * 0x10000;
		CALL(c, 0, NO_OUT, vmres_devmgr_move_range(c->m, inst[i], 5, base5));
		CALL(c, 0, NO_OUT, vmres_devmgr_move_range(c->m, inst[i], 5, base5 + 0x1000));
		CALL(c, 0, NO_OUT, vmres_devmgr_unmap_range(c->m, inst[i], 5));
		CALL(c, 0, NO_OUT, vmres_devmgr_move_range(c->m, inst[i], 5, base5 + 0x3000));
		assert_int_equal(vmres_devmgr_get(c->m, inst[i], &info, cur, mapped, 8), 0);
		mapped[0] = false;
		mapped[5] = true;
		CALL(c, 0, NO_OUT, vmres_devmgr_set_mapped(c->m, inst[i], mapped, info.n_res));
		mapped[0] = true;
		CALL(c, 0, NO_OUT, vmres_devmgr_set_mapped(c->m, inst[i], mapped, info.n_res));
		CALL(c, 0, NO_OUT, vmres_devmgr_reroute_msi(c->m, inst[i], 2, &msg));
		if (i % 4 == 2) { /* into the other window's pool, and back */
			CALL(c, 0, NO_OUT,
			     vmres_devmgr_move_range(c->m, inst[i], 0,
						     0x1400000000ull + i * 0x10000));
			CALL(c, 0, NO_OUT,
			     vmres_devmgr_move_range(c->m, inst[i], 0, 0xd8000000 + i * 0x10000));
		}
		if (i % 2) {
			CALL(c, 0, NO_OUT, vmres_devmgr_map_range(c->m, inst[i], 1));
			CALL(c, 0, NO_OUT,
			     vmres_devmgr_move_range(c->m, inst[i], 4,
						     0x1000000000ull + i * 0x1000000));
		}
		assert_int_equal(vmres_devmgr_get(c->m, inst[i], &info, cur, NULL, 8), 0);
		CALL(c, 0, NO_OUT, vmres_devmgr_update(c->m, inst[i], cur, info.n_res - 1));
		CALL(c, 0, NO_OUT, vmres_devmgr_update(c->m, inst[i], cur, info.n_res));
		if (i % 3 == 0) {
			CALL(c, 0, NO_OUT, vmres_devmgr_unregister(c->m, inst[i]));
			CALL_NOMEM(c, 0, NO_OUT, vmres_sysalloc_release_owner(c->sa, 100 + i));
		}
	}
	/* From requests, with a range that starts unmapped: a failure part-way
	 * must give back what the call allocated. */
	for (int k = 0; k < 2; k++) {
		struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
		struct vmres_request q[2] = {
			test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000,
				     VMRES_ADDR_FIRST_FIT, 0),
			test_rq_num(VMRES_RES_MSI, "gsi-msi", 2, true),
		};
		bool off[1] = {false};
		uint32_t ex;

		o.parent = inst[0];
		o.reqs = q;
		o.n_reqs = 2;
		o.mapped = off;
		o.n_mapped = 1;
		CALL(c, 0, &ex,
		     vmres_devmgr_register_ex(c->m, &dm_devs[3].dev, &o, &ex, NULL, 0, NULL, NULL));
		CALL(c, 0, NO_OUT, vmres_devmgr_map_range(c->m, ex, 0));
		if (k == 0)
			CALL(c, 0, NO_OUT, vmres_devmgr_unregister_release(c->m, ex));
	}
	CALL(c, VMRES_EPARENT, NO_OUT, vmres_devmgr_unregister(c->m, inst[0]));
	n = 0;
	CALL(c, 0, NO_OUT, vmres_devmgr_foreach(c->m, count_devices, &n));
	CALL(c, 0, &text, vmres_devmgr_dump_str(c->m, &text));
	free(text);
	CALL(c, 0, &found, vmres_snapshot_find_device(c->m, "dev7", 0, &found));
	assert_int_equal(found, inst[7]);
	final_state(c);
	vmres_devmgr_free(c->m);
	vmres_sysalloc_free(c->sa);
	c->m = NULL;
	c->sa = NULL;
}

/* (6) Snapshot: save a small machine and restore it. */
struct fake_dev {
	struct fake_stats *stats;
};

static void fake_release(void *opaque)
{
	struct fake_dev *d = opaque;

	__atomic_fetch_add(&d->stats->released, 1, __ATOMIC_RELAXED);
	__real_free(d);
}

static int bind_fake(void *ctx, const struct vmres_devmgr_info *entry,
		     const struct vmres_resource *res, const bool *mapped, struct vmres_device *dev)
{
	struct fake_stats *st = ctx;
	struct fake_dev *d = __real_malloc(sizeof(*d)); /* the test's, never failed */

	(void)entry, (void)res, (void)mapped;
	assert_non_null(d);
	d->stats = st;
	dev->opaque = d;
	dev->release = fake_release;
	st->created++;
	return 0;
}

static void scenario_snapshot(struct ctx *c)
{
	struct vmres_msi_msg msg = {0xfee00000, 0, 0x4031};
	struct {
		void *buf;
		size_t len;
	} saved;
	struct {
		struct vmres_sysalloc *sa;
		struct vmres_devmgr *m;
	} restored, again;
	int null_fd = open("/dev/null", O_WRONLY);
	FILE *file;
	struct vmres_snapshot_error e;
	uint32_t inst[6];
	char *a, *b;

	inj_pause(); /* the machine to save is built without injection */
	assert_int_equal(vmres_sysalloc_new_x86_64(&c->sa), 0);
	assert_int_equal(vmres_devmgr_new(c->sa, &c->m), 0);
	for (unsigned int i = 0; i < 6; i++) {
		struct vmres_request q[4];
		struct batch bt;
		struct vmres_device dev = VMRES_DEVICE_INIT;

		q[0] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000,
				    VMRES_ADDR_FIRST_FIT, 0);
		q[1] = test_rq_num(VMRES_RES_MSI, "gsi-msi", 2, true);
		q[2] = test_rq_num(VMRES_RES_ID, "device-id", 1, false);
		q[3] = test_rq_addr("pio", VMRES_SPACE_PIO, 8, 8, VMRES_ADDR_FIRST_FIT, 0);
		assert_int_equal(vmres_sysalloc_alloc(c->sa, q, 4, 10 + i, bt.res, 16, &bt.n, NULL),
				 0);
		assert_int_equal(vmres_sysalloc_set_owner_name(c->sa, 10 + i, "nic"), 0);
		assert_int_equal(vmres_sysalloc_set_label(c->sa, &bt.res[0], 10 + i, "bar0"), 0);
		dev.name = "nic";
		dev.owner = 10 + i;
		assert_int_equal(
			vmres_devmgr_register(c->m, &dev, i ? inst[0] : 0, bt.res, bt.n, &inst[i]),
			0);
		assert_int_equal(vmres_devmgr_reroute_msi(c->m, inst[i], 1, &msg), 0);
	}
	assert_int_equal(vmres_devmgr_unmap_range(c->m, inst[2], 0), 0);
	inj_resume();

	CALL(c, 0, &saved, vmres_snapshot_save(c->sa, c->m, &saved.buf, &saved.len));
	memset(&c->bind, 0, sizeof(c->bind));
	CALL(c, 0, &restored,
	     vmres_snapshot_restore(saved.buf, saved.len, bind_fake, &c->bind, &restored.sa,
				    &restored.m, &e));
	assert_int_equal(c->bind.created - c->bind.released, 6);
	CALL(c, 0, NO_OUT, vmres_snapshot_save_fd(c->sa, c->m, null_fd));
	inj_pause();
	file = tmpfile();
	assert_non_null(file);
	assert_int_equal(fwrite(saved.buf, 1, saved.len, file), saved.len);
	assert_int_equal(fflush(file), 0);
	inj_resume();
	CALL(c, 0, &again,
	     vmres_snapshot_restore_fd((lseek(fileno(file), 0, SEEK_SET), fileno(file)), bind_fake,
				       &c->bind, &again.sa, &again.m, &e));
	fclose(file);
	vmres_devmgr_free(again.m);
	vmres_sysalloc_free(again.sa);
	assert_int_equal(c->bind.created - c->bind.released, 6);
	inj_pause();
	assert_int_equal(vmres_devmgr_dump_str(restored.m, &a), 0);
	assert_int_equal(vmres_devmgr_dump_str(c->m, &b), 0);
	assert_string_equal(a, b);
	free(a);
	free(b);
	assert_int_equal(vmres_sysalloc_dump_str(restored.sa, &a), 0);
	assert_int_equal(vmres_sysalloc_dump_str(c->sa, &b), 0);
	assert_string_equal(a, b);
	free(a);
	free(b);
	inj_resume();
	final_state(c);
	vmres_devmgr_free(restored.m);
	vmres_sysalloc_free(restored.sa);
	assert_int_equal(c->bind.created, c->bind.released);
	free(saved.buf);
	close(null_fd);
	vmres_devmgr_free(c->m);
	vmres_sysalloc_free(c->sa);
	c->m = NULL;
	c->sa = NULL;
}

/* (7) Interrupt manager with the callback backend: groups of legacy and MSI
 * sources, configuration, MSI notifications, batches, groups freed. */
static void deliver_nothing(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
			    const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	(void)ctx, (void)gsi, (void)kind, (void)msg, (void)signal;
}

static int free_group(struct ctx *c, size_t g)
{
	vmres_irq_group_free(c->groups[g]);
	c->groups[g] = NULL;
	return 0;
}

static void irq_steps(struct ctx *c, bool kvm_backend)
{
	struct vmres_irq_backend *be;
	struct vmres_irq_group *grp;
	struct vmres_irq_mgr *mgr;

	if (kvm_backend) {
		memset(&kvm, 0, sizeof(kvm));
		c->kvm = true;
		CALL(c, 0, &be, vmres_irq_backend_kvm_new(FAKE_VM_FD, &fake_kvm_sys, &be));
	} else {
		CALL(c, 0, &be, vmres_irq_backend_callback_new(deliver_nothing, NULL, &be));
	}
	CALL(c, 0, &mgr, vmres_irq_mgr_new(be, &mgr)); /* on error the backend stays ours */
	c->irq = mgr;
	for (uint32_t g = 0; g < 12; g++) {
		struct vmres_resource res[5];
		struct vmres_irq_config cfg;
		struct vmres_irq_src *src;

		res[0] = test_irq_res(g % 8); /* legacy lines may share a GSI */
		for (uint32_t i = 1; i < 5; i++) {
			memset(&res[i], 0, sizeof(res[i]));
			res[i].kind = VMRES_RES_MSI;
			res[i].u.msi.gsi = 100 + g * 4 + i;
			res[i].u.msi.msg = (struct vmres_msi_msg){0xfee00000, 0, 0x4000 + g};
		}
		CALL(c, 0, &grp, vmres_irq_group_new(c->irq, res, 5, &grp));
		c->groups[g] = grp;
		assert_int_equal(vmres_irq_group_src(grp, 0, &src), 0);
		cfg = (struct vmres_irq_config){VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, {0, 0, 0}};
		CALL(c, 0, NO_OUT, vmres_irq_src_configure(src, &cfg));
		assert_int_equal(vmres_irq_src_enable(src), 0);
		assert_int_equal(vmres_irq_group_src(grp, 2, &src), 0);
		cfg = (struct vmres_irq_config){
			VMRES_IRQ_MSI, VMRES_IRQ_EDGE, {0xfee01000, 0, 0x4100 + g}};
		CALL(c, 0, NO_OUT, vmres_irq_src_configure(src, &cfg));
		CALL(c, 0, NO_OUT,
		     vmres_irq_mgr_msi_notify(c->irq, g, 3, 100 + g * 4 + 3,
					      &(struct vmres_msi_msg){0xfee02000, 0, 0x4200 + g}));
		if (g % 3 == 2) { /* a batch of three changes, one commit */
			CALL_NOMEM(c, 0, NO_OUT, vmres_irq_mgr_begin_update(c->irq));
			for (uint32_t i = 1; i < 4; i++)
				CALL(c, 0, NO_OUT,
				     vmres_irq_mgr_msi_notify(
					     c->irq, g, i, 100 + g * 4 + i,
					     &(struct vmres_msi_msg){0xfee03000, 0, 0x4300 + i}));
			CALL(c, 0, NO_OUT, vmres_irq_mgr_commit(c->irq));
		}
		if (g % 4 == 3)
			CALL_NOMEM(c, 0, NO_OUT, free_group(c, g - 1));
		if (g == 5)
			CALL(c, VMRES_EEXIST, &grp, vmres_irq_group_new(c->irq, res + 1, 1, &grp));
	}
	/* Shared lines: a new line (backend state attached once), joins, a share
	 * and an MSI in one group, a refused mix, a driving share freed. */
	for (uint32_t g = 12; g < 16; g++) {
		struct vmres_resource res[2];
		struct vmres_irq_src *src;

		res[0] = test_irq_res(g < 14 ? 10 : 11);
		res[0].u.irq.shared = true;
		memset(&res[1], 0, sizeof(res[1]));
		res[1].kind = VMRES_RES_MSI;
		res[1].u.msi.gsi = 200 + g;
		res[1].u.msi.msg = (struct vmres_msi_msg){0xfee00000, 0, 0x4400 + g};
		CALL(c, 0, &grp, vmres_irq_group_new(c->irq, res, 2, &grp));
		c->groups[g] = grp;
		assert_int_equal(vmres_irq_group_src(grp, 0, &src), 0);
		assert_int_equal(vmres_irq_src_enable(src), 0);
		CALL_NOMEM(c, 0, NO_OUT, vmres_irq_src_trigger(src));
		if (g == 13) {
			CALL_NOMEM(c, 0, NO_OUT, vmres_irq_src_resample(src));
			CALL_NOMEM(c, 0, NO_OUT, vmres_irq_src_ack(src));
			res[0].u.irq.shared = false; /* unshared on a shared line */
			CALL(c, VMRES_EEXIST, &grp, vmres_irq_group_new(c->irq, res, 1, &grp));
		}
	}
	CALL_NOMEM(c, 0, NO_OUT, free_group(c, 12)); /* drives line 10 alone: lowered */
	CALL_NOMEM(c, 0, NO_OUT, free_group(c, 14)); /* 15 still drives line 11 */
	/* Push whatever a group_free() could not. */
	CALL_NOMEM(c, 0, NO_OUT, vmres_irq_mgr_begin_update(c->irq));
	CALL(c, 0, NO_OUT, vmres_irq_mgr_commit(c->irq));
	final_state(c);
	for (size_t g = 0; g < 12; g += 2)
		CALL_NOMEM(c, 0, NO_OUT, free_group(c, g));
	vmres_irq_mgr_free(c->irq);
	c->irq = NULL;
	memset(c->groups, 0, sizeof(c->groups));
	if (kvm_backend) {
		assert_int_equal(kvm.nopen, 0); /* every eventfd closed */
		c->kvm = false;
	}
}

static void scenario_irq(struct ctx *c)
{
	irq_steps(c, false);
}

/* (8) The same with the KVM backend, on the fake VM above: eventfds, irqfds
 * (level lines with resample fds) and the routing table it pushes. */
static void scenario_irq_kvm(struct ctx *c)
{
	irq_steps(c, true);
}

/*
 * (9) PCI functions bound to a device manager with an attached x86-64 sysalloc:
 * decode on and off, BAR moves with decode on (a 64-bit BAR half by half),
 * BARs written while decode is off and mapped when it comes on, MSI enabled,
 * reprogrammed, widened, masked and disabled.
 *
 * A config write does not fail: a mapper call (the device manager's move, map,
 * unmap or reroute, which pci.c makes through vmres_devmgr_*) that fails is a
 * refused change the function records. So a config write is checked in three
 * places: each mapper call, through the --wrap'd vmres_devmgr_* functions
 * below, as a CALL() step (VMRES_ENOMEM leaves the manager and sysalloc as they
 * were); after the write, the function's view of each BAR and MSI vector must
 * be what the device manager holds; and a refused change must be reported
 * (some BAR's or the MSI's last_error is VMRES_ENOMEM). A guest would then
 * retry in its own way; the run ends there instead (its objects are freed and
 * checked for leaks), as the steps after it would start from another state.
 */
static struct ctx *mapper_ctx; /* the scenario whose config writes are being checked */

static char *mapper_state(struct ctx *c)
{
	struct ctx only = *c; /* the manager and sysalloc: the function is mid-write */

	memset(only.pci, 0, sizeof(only.pci));
	return state_str(&only);
}

static char *mapper_before(void)
{
	struct ctx *c = mapper_ctx;

	if (!c || !c->pci_step || c->counting || inj_fail_at < 0)
		return NULL; /* nothing can fail in this call */
	return mapper_state(c);
}

static int mapper_after(int rc, char *before, const char *what)
{
	struct ctx *c = mapper_ctx;
	char *after;

	if (!before)
		return rc;
	if (rc == VMRES_ENOMEM) {
		if (inj_fired_step != cur_step)
			fail_msg("%s:%d: %s: VMRES_ENOMEM without an injected failure", c->what,
				 c->line, what);
		after = mapper_state(c);
		if (strcmp(before, after) && !c->known &&
		    !(c->known = known_failure(c->scenario, KNOWN_CHANGED, c->what))) {
			fprintf(stderr, "---- before ----\n%s---- after ----\n%s", before, after);
			fail_msg("%s:%d: %s changed the state and failed with VMRES_ENOMEM "
				 "(fail_at %ld%s)",
				 c->what, c->line, what, c->fail_at, inj_mode());
		}
		free(after);
		c->mapper_enomem++;
	}
	free(before);
	return rc;
}

int __real_vmres_devmgr_move_range(struct vmres_devmgr *m, uint32_t instance,
				   unsigned int res_index, uint64_t new_base);
int __real_vmres_devmgr_unmap_range(struct vmres_devmgr *m, uint32_t instance,
				    unsigned int res_index);
int __real_vmres_devmgr_map_range(struct vmres_devmgr *m, uint32_t instance,
				  unsigned int res_index);
int __real_vmres_devmgr_reroute_msi(struct vmres_devmgr *m, uint32_t instance,
				    unsigned int res_index, const struct vmres_msi_msg *msg);
int __wrap_vmres_devmgr_move_range(struct vmres_devmgr *m, uint32_t instance,
				   unsigned int res_index, uint64_t new_base);
int __wrap_vmres_devmgr_unmap_range(struct vmres_devmgr *m, uint32_t instance,
				    unsigned int res_index);
int __wrap_vmres_devmgr_map_range(struct vmres_devmgr *m, uint32_t instance,
				  unsigned int res_index);
int __wrap_vmres_devmgr_reroute_msi(struct vmres_devmgr *m, uint32_t instance,
				    unsigned int res_index, const struct vmres_msi_msg *msg);

int __wrap_vmres_devmgr_move_range(struct vmres_devmgr *m, uint32_t instance,
				   unsigned int res_index, uint64_t new_base)
{
	char *before = mapper_before();

	return mapper_after(__real_vmres_devmgr_move_range(m, instance, res_index, new_base),
			    before, "vmres_devmgr_move_range");
}

int __wrap_vmres_devmgr_unmap_range(struct vmres_devmgr *m, uint32_t instance,
				    unsigned int res_index)
{
	char *before = mapper_before();

	return mapper_after(__real_vmres_devmgr_unmap_range(m, instance, res_index), before,
			    "vmres_devmgr_unmap_range");
}

int __wrap_vmres_devmgr_map_range(struct vmres_devmgr *m, uint32_t instance, unsigned int res_index)
{
	char *before = mapper_before();

	return mapper_after(__real_vmres_devmgr_map_range(m, instance, res_index), before,
			    "vmres_devmgr_map_range");
}

int __wrap_vmres_devmgr_reroute_msi(struct vmres_devmgr *m, uint32_t instance,
				    unsigned int res_index, const struct vmres_msi_msg *msg)
{
	char *before = mapper_before();

	return mapper_after(__real_vmres_devmgr_reroute_msi(m, instance, res_index, msg), before,
			    "vmres_devmgr_reroute_msi");
}

#define PCI_MSI_OFF  0x40 /* the capability: 64-bit address, per-vector mask */
#define PCI_MSI_CTRL (PCI_MSI_OFF + 2)
#define PCI_MSI_ADDR (PCI_MSI_OFF + 4)
#define PCI_MSI_DATA (PCI_MSI_OFF + 12)
#define PCI_MSI_MASK (PCI_MSI_OFF + 16)
#define PCI_MSI_RES  3 /* the device's resources: BAR0, BAR1, BAR2, 4 MSI vectors */

/* Is the function's view of its BARs and MSI vectors the device manager's? If
 * not, @why says where they differ. A vector whose reroute failed may differ
 * while the function reports the error (msi last_error). */
static bool pci_agrees(struct ctx *c, int i, char *why, size_t len)
{
	struct vmres_resource res[8];
	struct vmres_pci_msi_state ms;
	struct vmres_devmgr_info info;
	bool mapped[8], ok = true;

	inj_pause();
	assert_int_equal(vmres_devmgr_get(c->m, c->pci_inst[i], &info, res, mapped, 8), 0);
	for (unsigned int b = 0; ok && b < 3; b++) {
		struct vmres_pci_bar_state st;

		assert_int_equal(vmres_pci_func_bar_get(c->pci[i], b, &st), 0);
		if (st.mapped != mapped[b] || st.mapped_base != res[b].u.addr.base) {
			snprintf(why, len,
				 "pci %d BAR %u: the function has it %s at %" PRIx64
				 ", the device manager %s at %" PRIx64,
				 i, b, st.mapped ? "mapped" : "unmapped", st.mapped_base,
				 mapped[b] ? "mapped" : "unmapped", res[b].u.addr.base);
			ok = false;
		}
	}
	assert_int_equal(vmres_pci_func_msi_get(c->pci[i], &ms), 0);
	for (unsigned int v = 0; ok && ms.enabled && !ms.last_error && v < ms.vectors; v++) {
		struct vmres_msi_msg want = ms.msg, *got = &res[PCI_MSI_RES + v].u.msi.msg;

		want.data = (ms.msg.data & ~(ms.vectors - 1)) | v;
		if (memcmp(&want, got, sizeof(want))) {
			snprintf(why, len,
				 "pci %d MSI vector %u: programmed %x/%x, the device manager "
				 "routes %x/%x, and the function reports no error",
				 i, v, want.addr_lo, want.data, got->addr_lo, got->data);
			ok = false;
		}
	}
	inj_resume();
	return ok;
}

/* Did the function record a refused change in this write? */
static bool pci_reports_enomem(struct ctx *c, int i)
{
	struct vmres_pci_msi_state ms;
	bool seen = false;

	inj_pause();
	for (unsigned int b = 0; b < 3; b++) {
		struct vmres_pci_bar_state st;

		assert_int_equal(vmres_pci_func_bar_get(c->pci[i], b, &st), 0);
		seen |= st.last_error == VMRES_ENOMEM;
	}
	assert_int_equal(vmres_pci_func_msi_get(c->pci[i], &ms), 0);
	seen |= ms.last_error == VMRES_ENOMEM;
	inj_resume();
	return seen;
}

/* A guest's config write to function @i as one step (see (9) above). */
#define PCI_WRITE(c, i, off, size, val) pci_write(c, i, off, size, val, #off " := " #val, __LINE__)

static void pci_write(struct ctx *c, int i, unsigned int off, unsigned int size, uint32_t val,
		      const char *what, int line)
{
	char why[256];
	bool fired;
	int rc;

	step_begin(c, what, line, NULL, 0);
	c->mapper_enomem = 0;
	c->pci_step = true;
	mapper_ctx = c;
	rc = vmres_pci_func_config_write(c->pci[i], off, size, val);
	c->pci_step = false;
	mapper_ctx = NULL;
	fired = !c->counting && inj_fired_step == cur_step;
	inj_disarm();
	free(c->before);
	c->before = NULL;
	if (c->known)
		longjmp(run_stop, 1);
	if (rc)
		fail_msg("%s:%d: returned %s", what, line, vmres_errname(rc));
	if (!pci_agrees(c, i, why, sizeof(why))) {
		if ((c->known = known_failure(c->scenario, KNOWN_DISAGREES, what)))
			longjmp(run_stop, 1);
		fail_msg("%s:%d: %s (fail_at %ld%s)", what, line, why, c->fail_at, inj_mode());
	}
	if (c->mapper_enomem) {
		if (!pci_reports_enomem(c, i) &&
		    !(c->known = known_failure(c->scenario, KNOWN_DISAGREES, what)))
			fail_msg("%s:%d: a mapper call failed with VMRES_ENOMEM and the function "
				 "reports no refused change (fail_at %ld%s)",
				 what, line, c->fail_at, inj_mode());
		c->refusals++;
		longjmp(run_stop, 1);
	}
	if (fired)
		c->swallowed++;
	step_end(c, 0, 0);
}

/* PCI function @p i of the PCI scenarios (c->pci[i]): a 4 KiB, an I/O and a
 * 64-bit BAR and 4 MSI vectors, and in @p q the requests for its resources. */
static void pci_function(struct ctx *c, int i, struct vmres_request q[4])
{
	struct vmres_pci_func_config cfg = VMRES_PCI_FUNC_CONFIG_INIT;
	struct vmres_pci_func *fn;

	cfg.vendor_id = 0x1af4;
	cfg.device_id = 0x1000 + (uint16_t)i;
	cfg.bars[0] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM32, false, 0x1000, 0, 0};
	cfg.bars[1] = (struct vmres_pci_bar){VMRES_PCI_BAR_IO, false, 0x40, 0, 1};
	cfg.bars[2] = (struct vmres_pci_bar){VMRES_PCI_BAR_MEM64, true, 0x100000, 0, 2};
	cfg.msi = (struct vmres_pci_msi){4, true, true, PCI_MSI_OFF, PCI_MSI_RES};
	CALL(c, 0, &fn, vmres_pci_func_new(&cfg, &fn));
	c->pci[i] = fn;
	q[0] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000, VMRES_ADDR_FIRST_FIT, 0);
	q[1] = test_rq_addr("pio", VMRES_SPACE_PIO, 0x40, 0x40, VMRES_ADDR_FIRST_FIT, 0);
	q[2] = test_rq_addr("mmio64", VMRES_SPACE_MMIO, 0x100000, 0x100000, VMRES_ADDR_FIRST_FIT,
			    0);
	q[3] = test_rq_num(VMRES_RES_MSI, "gsi-msi", 4, true);
}

static void scenario_pci(struct ctx *c)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	static struct tdev devs[PCI_FUNCS];

	CALL(c, 0, &sa, vmres_sysalloc_new_x86_64(&sa));
	c->sa = sa;
	CALL(c, 0, &m, vmres_devmgr_new(c->sa, &m));
	c->m = m;
	for (int i = 0; i < PCI_FUNCS; i++) {
		struct vmres_request q[4];
		struct batch b;

		pci_function(c, i, q);
		CALL(c, 0, &b, vmres_sysalloc_alloc(c->sa, q, 4, 300 + i, b.res, 16, &b.n, NULL));
		CALL(c, 0, NO_OUT, vmres_sysalloc_set_label(c->sa, &b.res[0], 300 + i, "bar0"));
		tdev_init(&devs[i], "pci", NULL);
		devs[i].dev.owner = 300 + i;
		CALL(c, 0, &c->pci_inst[i],
		     vmres_devmgr_register(c->m, &devs[i].dev, 0, b.res, b.n, &c->pci_inst[i]));
		/* command 0: every BAR is unmapped and its reservation given back */
		CALL(c, 0, NO_OUT, vmres_pci_func_bind(c->pci[i], c->m, c->pci_inst[i]));
	}
	for (int i = 0; i < PCI_FUNCS; i++) {
		uint32_t dmmio = 0xd0000000 + 0x100000 * (uint32_t)i;

		/* firmware: decode on, where the sysalloc put them */
		PCI_WRITE(c, i, VMRES_PCI_COMMAND, 2,
			  VMRES_PCI_COMMAND_IO | VMRES_PCI_COMMAND_MEMORY);
		/* moves with decode on */
		PCI_WRITE(c, i, VMRES_PCI_BAR_OFFSET(0), 4, dmmio);
		PCI_WRITE(c, i, VMRES_PCI_BAR_OFFSET(1), 4, 0x2000u + 0x40u * (uint32_t)i);
		PCI_WRITE(c, i, VMRES_PCI_BAR_OFFSET(2), 4, 0x08000000u * (uint32_t)i);
		PCI_WRITE(c, i, VMRES_PCI_BAR_OFFSET(3), 4, 0x14);
		/* Linux around a BAR update: decode off, write, decode on */
		PCI_WRITE(c, i, VMRES_PCI_COMMAND, 2, 0);
		PCI_WRITE(c, i, VMRES_PCI_BAR_OFFSET(0), 4, dmmio + 0x10000);
		PCI_WRITE(c, i, VMRES_PCI_BAR_OFFSET(2), 4, 0x08100000u * (uint32_t)i);
		PCI_WRITE(c, i, VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_MEMORY);
		/* MSI: message, enable 2 vectors, reprogram, 4 vectors, mask, disable */
		PCI_WRITE(c, i, PCI_MSI_ADDR, 4, 0xfee00000);
		PCI_WRITE(c, i, PCI_MSI_ADDR + 4, 4, 0);
		PCI_WRITE(c, i, PCI_MSI_DATA, 2, 0x4020 + 8 * (uint32_t)i);
		PCI_WRITE(c, i, PCI_MSI_CTRL, 2, VMRES_PCI_MSI_CTRL_ENABLE | 1 << 4);
		PCI_WRITE(c, i, PCI_MSI_ADDR, 4, 0xfee01000);
		PCI_WRITE(c, i, PCI_MSI_DATA, 2, 0x4040 + 8 * (uint32_t)i);
		PCI_WRITE(c, i, PCI_MSI_CTRL, 2, VMRES_PCI_MSI_CTRL_ENABLE | 2 << 4);
		PCI_WRITE(c, i, PCI_MSI_MASK, 4, 0x5);
		if (i == 0)
			PCI_WRITE(c, i, PCI_MSI_CTRL, 2, 0);
		PCI_WRITE(c, i, VMRES_PCI_COMMAND, 2,
			  VMRES_PCI_COMMAND_IO | VMRES_PCI_COMMAND_MEMORY);
	}
	final_state(c);
	for (int i = 0; i < PCI_FUNCS; i++) {
		vmres_pci_func_free(c->pci[i]);
		c->pci[i] = NULL;
	}
	vmres_devmgr_free(c->m);
	vmres_sysalloc_free(c->sa);
	c->m = NULL;
	c->sa = NULL;
}

/* (11) PCI devices into the VM and out of it: vmres_pci_device_add() (the
 * registration with its requests allocated, the bind, the place on the host)
 * and vmres_pci_device_remove() (the unregistration with the release, the
 * unbind), with decoding on so that the BARs are on the bus; one function comes
 * back at another place. A failed call must leave the host's places, the
 * device manager, the sysalloc and the function as they were. */
static void scenario_pci_device(struct ctx *c)
{
	static struct tdev devs[PCI_FUNCS];
	struct vmres_sysalloc *sa;
	struct vmres_pci_host *h;
	struct vmres_devmgr *m;

	CALL(c, 0, &sa, vmres_sysalloc_new_x86_64(&sa));
	c->sa = sa;
	CALL(c, 0, &m, vmres_devmgr_new(c->sa, &m));
	c->m = m;
	CALL(c, 0, &h, vmres_pci_host_new(&h));
	c->host = h;
	for (int i = 0; i < PCI_FUNCS; i++) {
		struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
		struct vmres_request q[4];

		pci_function(c, i, q);
		o.reqs = q;
		o.n_reqs = 4;
		tdev_init(&devs[i], "pci", NULL);
		devs[i].dev.owner = 300 + i;
		CALL(c, 0, &c->pci_inst[i],
		     vmres_pci_device_add(h, 1 + (unsigned int)i, 0, c->pci[i], c->m, &devs[i].dev, &o,
					  &c->pci_inst[i]));
		/* firmware: decode on, where the sysalloc put them */
		PCI_WRITE(c, i, VMRES_PCI_COMMAND, 2,
			  VMRES_PCI_COMMAND_IO | VMRES_PCI_COMMAND_MEMORY);
	}
	/* out and in again at another place, then out for good */
	CALL(c, 0, NO_OUT, vmres_pci_device_remove(h, 1, 0, c->m));
	{
		struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
		struct vmres_request q[4];

		q[0] = test_rq_addr("mmio32", VMRES_SPACE_MMIO, 0x1000, 0x1000,
				    VMRES_ADDR_FIRST_FIT, 0);
		q[1] = test_rq_addr("pio", VMRES_SPACE_PIO, 0x40, 0x40, VMRES_ADDR_FIRST_FIT, 0);
		q[2] = test_rq_addr("mmio64", VMRES_SPACE_MMIO, 0x100000, 0x100000,
				    VMRES_ADDR_FIRST_FIT, 0);
		q[3] = test_rq_num(VMRES_RES_MSI, "gsi-msi", 4, true);
		o.reqs = q;
		o.n_reqs = 4;
		CALL(c, 0, &c->pci_inst[0],
		     vmres_pci_device_add(h, 3, 0, c->pci[0], c->m, &devs[0].dev, &o,
					  &c->pci_inst[0]));
		PCI_WRITE(c, 0, VMRES_PCI_COMMAND, 2, VMRES_PCI_COMMAND_MEMORY);
	}
	CALL(c, 0, NO_OUT, vmres_pci_device_remove(h, 2, 0, c->m));
	final_state(c);
	for (int i = 0; i < PCI_FUNCS; i++) {
		vmres_pci_func_free(c->pci[i]);
		c->pci[i] = NULL;
	}
	vmres_pci_host_free(c->host);
	c->host = NULL;
	vmres_devmgr_free(c->m);
	vmres_sysalloc_free(c->sa);
	c->m = NULL;
	c->sa = NULL;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_addr_calls_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("addr", scenario_addr, EVERY_POINT, false, false);
}

static void test_addr_calls_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("addr", scenario_addr, EVERY_POINT, false, true);
}

static void test_ids_calls_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("ids", scenario_ids, EVERY_POINT, false, false);
}

static void test_ids_calls_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("ids", scenario_ids, EVERY_POINT, false, true);
}

static void test_sysalloc_calls_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("sysalloc", scenario_sysalloc, EVERY_POINT, false, false);
}

static void test_sysalloc_calls_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("sysalloc", scenario_sysalloc, EVERY_POINT, false, true);
}

static void test_bus_calls_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("bus", scenario_bus, MAX_POINTS, true, false);
}

static void test_bus_calls_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("bus", scenario_bus, PERSISTENT_POINTS, true, true);
}

static void test_devmgr_calls_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("devmgr", scenario_devmgr, MAX_POINTS, true, false);
}

static void test_devmgr_calls_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("devmgr", scenario_devmgr, PERSISTENT_POINTS, true, true);
}

static void test_snapshot_save_and_restore_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("snapshot", scenario_snapshot, MAX_POINTS, true, false);
}

static void test_snapshot_save_and_restore_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("snapshot", scenario_snapshot, PERSISTENT_POINTS, true, true);
}

static void test_irq_calls_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("irq", scenario_irq, EVERY_POINT, false, false);
}

static void test_irq_calls_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("irq", scenario_irq, EVERY_POINT, false, true);
}

static void test_irq_kvm_backend_calls_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("irq-kvm", scenario_irq_kvm, EVERY_POINT, false, false);
}

static void test_irq_kvm_backend_calls_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("irq-kvm", scenario_irq_kvm, EVERY_POINT, false, true);
}

static void test_pci_config_writes_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("pci", scenario_pci, MAX_POINTS / 2, true, false);
}

static void test_pci_config_writes_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("pci", scenario_pci, 2 * PERSISTENT_POINTS, true, true);
}

static void test_pci_device_add_and_remove_survive_every_allocation_failure(void **state)
{
	(void)state;
	run_scenario("pci-device", scenario_pci_device, MAX_POINTS, true, false);
}

static void test_pci_device_add_and_remove_survive_running_out_of_memory(void **state)
{
	(void)state;
	run_scenario("pci-device", scenario_pci_device, EVERY_POINT, true, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_calls_survive_every_allocation_failure),
		cmocka_unit_test(test_addr_calls_survive_running_out_of_memory),
		cmocka_unit_test(test_ids_calls_survive_every_allocation_failure),
		cmocka_unit_test(test_ids_calls_survive_running_out_of_memory),
		cmocka_unit_test(test_sysalloc_calls_survive_every_allocation_failure),
		cmocka_unit_test(test_sysalloc_calls_survive_running_out_of_memory),
		cmocka_unit_test(test_bus_calls_survive_every_allocation_failure),
		cmocka_unit_test(test_bus_calls_survive_running_out_of_memory),
		cmocka_unit_test(test_devmgr_calls_survive_every_allocation_failure),
		cmocka_unit_test(test_devmgr_calls_survive_running_out_of_memory),
		cmocka_unit_test(test_snapshot_save_and_restore_survive_every_allocation_failure),
		cmocka_unit_test(test_snapshot_save_and_restore_survive_running_out_of_memory),
		cmocka_unit_test(test_irq_calls_survive_every_allocation_failure),
		cmocka_unit_test(test_irq_calls_survive_running_out_of_memory),
		cmocka_unit_test(test_irq_kvm_backend_calls_survive_every_allocation_failure),
		cmocka_unit_test(test_irq_kvm_backend_calls_survive_running_out_of_memory),
		cmocka_unit_test(test_pci_config_writes_survive_every_allocation_failure),
		cmocka_unit_test(test_pci_config_writes_survive_running_out_of_memory),
		cmocka_unit_test(test_pci_device_add_and_remove_survive_every_allocation_failure),
		cmocka_unit_test(test_pci_device_add_and_remove_survive_running_out_of_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

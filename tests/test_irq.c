/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Interrupt sources: every state transition with the callback backend, the
 * manager's batching and rollback with a scripted backend, and the KVM
 * backend's own logic (routing table, irqfd and eventfd bookkeeping, failure of
 * any system call) through the struct vmres_irq_kvm_sys seam, on any machine.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include <cmocka.h>

#include <linux/kvm.h>

#include <vmres/devmgr.h>
#include <vmres/irq.h>

/* ---- resources --------------------------------------------------------- */

static struct vmres_resource irq_res(uint32_t gsi)
{
	return VMRES_RESOURCE_IRQ("gsi-legacy", gsi);
}

static struct vmres_msi_msg msg_of(uint32_t k)
{
	/* Every field derived from k, so that a torn read shows. */
	return (struct vmres_msi_msg){0xfee00000u | (k << 12), k, 0x4000u | k};
}

static struct vmres_resource msi_res(uint32_t gsi, uint32_t k)
{
	struct vmres_resource r = VMRES_RESOURCE_MSI("gsi-msi", gsi);

	r.u.msi.msg = msg_of(k);
	return r;
}

static bool msg_eq(struct vmres_msi_msg a, struct vmres_msi_msg b)
{
	return a.addr_lo == b.addr_lo && a.addr_hi == b.addr_hi && a.data == b.data;
}

/* ---- the callback backend's recorder ----------------------------------- */

#define MAX_DELIVERIES 256

struct delivery {
	uint32_t gsi;
	enum vmres_irq_kind kind;
	bool has_msg;
	struct vmres_msi_msg msg;
	enum vmres_irq_signal signal;
};

struct recorder {
	size_t n;
	struct delivery d[MAX_DELIVERIES];
};

static void record(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
		   const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct recorder *rec = ctx;
	struct delivery *d;

	assert_true(rec->n < MAX_DELIVERIES);
	d = &rec->d[rec->n++];
	memset(d, 0, sizeof(*d));
	d->gsi = gsi;
	d->kind = kind;
	d->has_msg = msg != NULL;
	if (msg)
		d->msg = *msg;
	d->signal = signal;
}

struct fixture {
	struct recorder rec;
	struct vmres_irq_mgr *mgr;
	struct vmres_irq_group *grp;
	struct vmres_irq_src *legacy, *msi_a, *msi_b; /* gsi 5, 24, 25 */
};

static int cb_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vmres_irq_backend *be;
	struct vmres_resource res[3] = {irq_res(5), msi_res(24, 1), msi_res(25, 2)};

	assert_non_null(f);
	assert_int_equal(vmres_irq_backend_callback_new(record, &f->rec, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &f->mgr), 0);
	assert_int_equal(vmres_irq_group_new(f->mgr, res, 3, &f->grp), 0);
	assert_int_equal(vmres_irq_group_src(f->grp, 0, &f->legacy), 0);
	assert_int_equal(vmres_irq_group_src(f->grp, 1, &f->msi_a), 0);
	assert_int_equal(vmres_irq_group_src(f->grp, 2, &f->msi_b), 0);
	*state = f;
	return 0;
}

static int cb_teardown(void **state)
{
	struct fixture *f = *state;

	vmres_irq_mgr_free(f->mgr);
	free(f);
	return 0;
}

static struct vmres_irq_src_state st(struct vmres_irq_src *s)
{
	struct vmres_irq_src_state out;

	assert_int_equal(vmres_irq_src_get_state(s, &out), 0);
	return out;
}

static void assert_state_equal(struct vmres_irq_src_state a, struct vmres_irq_src_state b)
{
	assert_int_equal(a.gsi, b.gsi);
	assert_int_equal(a.config.kind, b.config.kind);
	assert_int_equal(a.config.trigger, b.config.trigger);
	assert_true(msg_eq(a.config.msg, b.config.msg));
	assert_true(msg_eq(a.live_msg, b.live_msg));
	assert_int_equal(a.enabled, b.enabled);
	assert_int_equal(a.masked, b.masked);
	assert_int_equal(a.pending, b.pending);
	assert_int_equal(a.asserted, b.asserted);
}

/* The manager's whole observable state, for before/after comparisons. */
#define SNAP_MAX 64

struct mgr_snap {
	struct vmres_irq_mgr_info info;
	size_t nroutes;
	struct vmres_irq_route routes[SNAP_MAX];
};

static struct mgr_snap snap(struct vmres_irq_mgr *m)
{
	struct mgr_snap s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(vmres_irq_mgr_get_info(m, &s.info), 0);
	assert_int_equal(vmres_irq_mgr_get_routes(m, s.routes, SNAP_MAX, &s.nroutes), 0);
	assert_true(s.nroutes <= SNAP_MAX);
	return s;
}

static void assert_snap_equal(const struct mgr_snap *a, const struct mgr_snap *b)
{
	assert_int_equal(a->info.groups, b->info.groups);
	assert_int_equal(a->info.sources, b->info.sources);
	assert_int_equal(a->info.batch_depth, b->info.batch_depth);
	assert_int_equal(a->info.dirty, b->info.dirty);
	assert_int_equal(a->info.commits, b->info.commits);
	assert_int_equal(a->nroutes, b->nroutes);
	for (size_t i = 0; i < a->nroutes; i++) {
		assert_int_equal(a->routes[i].gsi, b->routes[i].gsi);
		assert_int_equal(a->routes[i].kind, b->routes[i].kind);
		assert_true(msg_eq(a->routes[i].msg, b->routes[i].msg));
	}
}

/* ---- groups ------------------------------------------------------------ */

static void test_group_makes_one_disabled_source_per_resource_in_order(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_src_state s;
	struct vmres_irq_src *out = NULL;

	assert_int_equal(vmres_irq_group_count(f->grp), 3);
	assert_int_equal(vmres_irq_group_count(NULL), 0);
	s = st(f->legacy);
	assert_int_equal(s.gsi, 5);
	assert_int_equal(s.config.kind, VMRES_IRQ_LEGACY);
	assert_int_equal(s.config.trigger, VMRES_IRQ_EDGE);
	assert_false(s.enabled || s.masked || s.pending || s.asserted);
	s = st(f->msi_b);
	assert_int_equal(s.gsi, 25);
	assert_int_equal(s.config.kind, VMRES_IRQ_MSI);
	assert_true(msg_eq(s.config.msg, msg_of(2)));
	assert_true(msg_eq(s.live_msg, msg_of(2)));
	assert_int_equal(vmres_irq_group_src(f->grp, 3, &out), VMRES_ERANGE);
	assert_null(out);
	assert_int_equal(vmres_irq_group_src(NULL, 0, &out), VMRES_EINVAL);
	assert_int_equal(vmres_irq_group_src(f->grp, 0, NULL), VMRES_EINVAL);
}

static void test_group_refuses_bad_input_and_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct mgr_snap before = snap(f->mgr), after;
	struct vmres_irq_group *g = NULL;
	struct vmres_resource addr = irq_res(7);
	struct vmres_resource two[2];

	addr.kind = VMRES_RES_ADDR;
	two[0] = irq_res(6);
	two[1] = addr;
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 2, &g), VMRES_EKIND);
	two[1] = irq_res(7);
	two[1].kind = VMRES_RES_ID;
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 2, &g), VMRES_EKIND);
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 0, &g), VMRES_ESIZE);
	assert_int_equal(vmres_irq_group_new(NULL, two, 1, &g), VMRES_EINVAL);
	assert_int_equal(vmres_irq_group_new(f->mgr, NULL, 1, &g), VMRES_EINVAL);
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 1, NULL), VMRES_EINVAL);
	/* An MSI's GSI is its own: against the record, within the array, vs legacy. */
	two[0] = msi_res(24, 9);
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 1, &g), VMRES_EEXIST);
	two[0] = msi_res(30, 9);
	two[1] = msi_res(30, 8);
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 2, &g), VMRES_EEXIST);
	two[1] = irq_res(30);
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 2, &g), VMRES_EEXIST);
	two[0] = irq_res(25);
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 1, &g), VMRES_EEXIST);
	two[0] = msi_res(5, 9);
	assert_int_equal(vmres_irq_group_new(f->mgr, two, 1, &g), VMRES_EEXIST);
	assert_null(g);
	after = snap(f->mgr);
	assert_snap_equal(&before, &after);
	assert_int_equal(f->rec.n, 0);
}

static void test_legacy_lines_may_share_a_gsi_and_its_route_outlives_one_of_them(void **state)
{
	struct fixture *f = *state;
	struct vmres_resource r = irq_res(5);
	struct vmres_irq_group *g;
	struct vmres_irq_src *shared;
	struct mgr_snap before = snap(f->mgr), after;

	assert_int_equal(vmres_irq_group_new(f->mgr, &r, 1, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &shared), 0);
	after = snap(f->mgr);
	assert_int_equal(after.info.sources, before.info.sources + 1);
	assert_int_equal(after.nroutes, before.nroutes); /* still one route for GSI 5 */
	assert_int_equal(vmres_irq_src_enable(shared), 0);
	assert_int_equal(vmres_irq_src_trigger(shared), 0);
	assert_int_equal(f->rec.n, 1);
	assert_int_equal(f->rec.d[0].gsi, 5);
	assert_false(f->rec.d[0].has_msg);
	vmres_irq_group_free(g);
	after = snap(f->mgr);
	before.info.commits = after.info.commits;
	assert_snap_equal(&before, &after);
}

/* ---- the state machine ------------------------------------------------- */

static void test_trigger_while_disabled_is_refused_and_not_remembered(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vmres_irq_src_trigger(f->msi_a), VMRES_ESTATE);
	assert_int_equal(vmres_irq_src_mask(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_trigger(f->msi_a), VMRES_ESTATE);
	assert_false(st(f->msi_a).pending);
	assert_int_equal(vmres_irq_src_enable(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_unmask(f->msi_a), 0);
	assert_int_equal(f->rec.n, 0);
	assert_int_equal(vmres_irq_src_trigger(NULL), VMRES_EINVAL);
}

static void test_trigger_delivers_msi_with_its_message_and_legacy_without(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vmres_irq_src_enable(f->msi_b), 0);
	assert_int_equal(vmres_irq_src_enable(f->legacy), 0);
	assert_int_equal(vmres_irq_src_enable(f->legacy), 0); /* idempotent */
	assert_int_equal(vmres_irq_src_trigger(f->msi_b), 0);
	assert_int_equal(vmres_irq_src_trigger(f->legacy), 0);
	assert_int_equal(f->rec.n, 2);
	assert_int_equal(f->rec.d[0].gsi, 25);
	assert_int_equal(f->rec.d[0].kind, VMRES_IRQ_MSI);
	assert_true(f->rec.d[0].has_msg);
	assert_true(msg_eq(f->rec.d[0].msg, msg_of(2)));
	assert_int_equal(f->rec.d[0].signal, VMRES_IRQ_SIGNAL_EDGE);
	assert_int_equal(f->rec.d[1].gsi, 5);
	assert_int_equal(f->rec.d[1].kind, VMRES_IRQ_LEGACY);
	assert_false(f->rec.d[1].has_msg);
	assert_int_equal(f->rec.d[1].signal, VMRES_IRQ_SIGNAL_EDGE);
}

static void test_trigger_while_masked_sets_pending_and_delivers_nothing(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vmres_irq_src_enable(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_mask(f->msi_a), 0);
	assert_false(st(f->msi_a).pending);
	assert_int_equal(vmres_irq_src_trigger(f->msi_a), 0);
	assert_int_equal(f->rec.n, 0);
	assert_true(st(f->msi_a).pending);
	assert_true(st(f->msi_a).masked);
}

static void test_unmask_delivers_pending_exactly_once(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vmres_irq_src_enable(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_mask(f->msi_a), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vmres_irq_src_trigger(f->msi_a), 0); /* coalesce */
	assert_int_equal(vmres_irq_src_unmask(f->msi_a), 0);
	assert_int_equal(f->rec.n, 1);
	assert_int_equal(f->rec.d[0].gsi, 24);
	assert_true(msg_eq(f->rec.d[0].msg, msg_of(1)));
	assert_false(st(f->msi_a).pending);
	assert_int_equal(vmres_irq_src_unmask(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_mask(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_unmask(f->msi_a), 0);
	assert_int_equal(f->rec.n, 1);
}

static void test_disable_forgets_pending(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vmres_irq_src_enable(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_mask(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_trigger(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_disable(f->msi_a), 0);
	assert_false(st(f->msi_a).pending);
	assert_int_equal(vmres_irq_src_enable(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_unmask(f->msi_a), 0);
	assert_int_equal(f->rec.n, 0);
}

static void test_reconfigure_while_enabled_takes_effect_for_next_trigger(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_config c = {VMRES_IRQ_MSI, VMRES_IRQ_EDGE, msg_of(7)};

	assert_int_equal(vmres_irq_src_enable(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_trigger(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_configure(f->msi_a, &c), 0);
	assert_true(msg_eq(st(f->msi_a).live_msg, msg_of(7)));
	assert_int_equal(vmres_irq_src_trigger(f->msi_a), 0);
	assert_int_equal(f->rec.n, 2);
	assert_true(msg_eq(f->rec.d[0].msg, msg_of(1)));
	assert_true(msg_eq(f->rec.d[1].msg, msg_of(7)));
	assert_true(st(f->msi_a).enabled);
}

static void test_pending_msi_is_delivered_with_the_new_message_on_unmask(void **state)
{
	struct fixture *f = *state;
	struct vmres_msi_msg m = msg_of(9);

	assert_int_equal(vmres_irq_src_enable(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_mask(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_trigger(f->msi_a), 0);
	assert_int_equal(vmres_irq_mgr_msi_notify(f->mgr, 3, 1, 24, &m), 0);
	assert_int_equal(f->rec.n, 0);
	assert_int_equal(vmres_irq_src_unmask(f->msi_a), 0);
	assert_int_equal(f->rec.n, 1);
	assert_true(msg_eq(f->rec.d[0].msg, msg_of(9)));
}

static void test_configure_refuses_bad_config_and_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_src_state a = st(f->msi_a), l = st(f->legacy);
	struct mgr_snap before = snap(f->mgr), after;
	struct vmres_irq_config c = {VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, msg_of(3)};

	assert_int_equal(vmres_irq_src_configure(f->msi_a, &c), VMRES_EKIND);
	c.kind = VMRES_IRQ_MSI;
	assert_int_equal(vmres_irq_src_configure(f->legacy, &c), VMRES_EINVAL); /* level MSI */
	assert_int_equal(vmres_irq_src_configure(f->msi_a, &c), VMRES_EINVAL);
	c.trigger = VMRES_IRQ_EDGE;
	assert_int_equal(vmres_irq_src_configure(f->legacy, &c), VMRES_EKIND);
	c.kind = 7;
	assert_int_equal(vmres_irq_src_configure(f->msi_a, &c), VMRES_EINVAL);
	c.kind = VMRES_IRQ_MSI;
	c.trigger = 5;
	assert_int_equal(vmres_irq_src_configure(f->msi_a, &c), VMRES_EINVAL);
	assert_int_equal(vmres_irq_src_configure(NULL, &c), VMRES_EINVAL);
	assert_int_equal(vmres_irq_src_configure(f->msi_a, NULL), VMRES_EINVAL);
	assert_state_equal(a, st(f->msi_a));
	assert_state_equal(l, st(f->legacy));
	after = snap(f->mgr);
	assert_snap_equal(&before, &after);
}

static void test_setting_the_same_message_again_commits_nothing(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_config c = {VMRES_IRQ_MSI, VMRES_IRQ_EDGE, msg_of(1)};
	struct mgr_snap before = snap(f->mgr), after;

	assert_int_equal(vmres_irq_src_configure(f->msi_a, &c), 0);
	after = snap(f->mgr);
	assert_snap_equal(&before, &after);
	c.msg.data++;
	assert_int_equal(vmres_irq_src_configure(f->msi_a, &c), 0);
	after = snap(f->mgr);
	assert_int_equal(after.info.commits, before.info.commits + 1);
}

static void configure_level(struct vmres_irq_src *s)
{
	struct vmres_irq_config c = {VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, {0, 0, 0}};

	assert_int_equal(vmres_irq_src_configure(s, &c), 0);
	assert_int_equal(st(s).config.trigger, VMRES_IRQ_LEVEL);
}

static void test_level_line_is_raised_by_trigger_and_lowered_by_ack(void **state)
{
	struct fixture *f = *state;

	configure_level(f->legacy);
	assert_int_equal(vmres_irq_src_enable(f->legacy), 0);
	assert_int_equal(vmres_irq_src_trigger(f->legacy), 0);
	assert_true(st(f->legacy).asserted);
	assert_int_equal(vmres_irq_src_ack(f->legacy), 0);
	assert_false(st(f->legacy).asserted);
	assert_int_equal(f->rec.n, 2);
	assert_int_equal(f->rec.d[0].signal, VMRES_IRQ_SIGNAL_ASSERT);
	assert_int_equal(f->rec.d[1].signal, VMRES_IRQ_SIGNAL_DEASSERT);
	assert_int_equal(f->rec.d[1].gsi, 5);
}

static void test_level_line_raised_while_masked_is_raised_on_unmask_unless_acked(void **state)
{
	struct fixture *f = *state;

	configure_level(f->legacy);
	assert_int_equal(vmres_irq_src_enable(f->legacy), 0);
	assert_int_equal(vmres_irq_src_mask(f->legacy), 0);
	assert_int_equal(vmres_irq_src_trigger(f->legacy), 0);
	assert_true(st(f->legacy).pending);
	assert_int_equal(vmres_irq_src_unmask(f->legacy), 0);
	assert_int_equal(f->rec.n, 1);
	assert_int_equal(f->rec.d[0].signal, VMRES_IRQ_SIGNAL_ASSERT);
	/* Dropped by the device while masked: nothing on unmask. */
	assert_int_equal(vmres_irq_src_mask(f->legacy), 0);
	assert_int_equal(vmres_irq_src_trigger(f->legacy), 0);
	assert_int_equal(vmres_irq_src_ack(f->legacy), 0);
	assert_false(st(f->legacy).pending);
	assert_int_equal(vmres_irq_src_unmask(f->legacy), 0);
	assert_int_equal(f->rec.n, 2);
	assert_int_equal(f->rec.d[1].signal, VMRES_IRQ_SIGNAL_DEASSERT);
}

static void test_ack_is_only_for_level_lines(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_config c = {VMRES_IRQ_LEGACY, VMRES_IRQ_EDGE, {0, 0, 0}};

	assert_int_equal(vmres_irq_src_ack(f->msi_a), VMRES_ENOTSUP);
	assert_int_equal(vmres_irq_src_ack(f->legacy), VMRES_ENOTSUP);
	assert_int_equal(vmres_irq_src_ack(NULL), VMRES_EINVAL);
	configure_level(f->legacy);
	assert_int_equal(vmres_irq_src_ack(f->legacy), 0);
	assert_int_equal(vmres_irq_src_configure(f->legacy, &c), 0);
	assert_int_equal(vmres_irq_src_ack(f->legacy), VMRES_ENOTSUP);
	assert_int_equal(f->rec.n, 1);
}

static void test_msi_notify_finds_the_source_by_gsi(void **state)
{
	struct fixture *f = *state;
	struct vmres_msi_msg m = msg_of(12);
	struct vmres_irq_src_state a = st(f->msi_a);
	struct mgr_snap before = snap(f->mgr), after;

	assert_int_equal(vmres_irq_mgr_msi_notify(f->mgr, 1, 0, 26, &m), VMRES_ENOENT);
	assert_int_equal(vmres_irq_mgr_msi_notify(f->mgr, 1, 0, 5, &m), VMRES_ENOENT);
	assert_int_equal(vmres_irq_mgr_msi_notify(NULL, 1, 0, 25, &m), VMRES_EINVAL);
	assert_int_equal(vmres_irq_mgr_msi_notify(f->mgr, 1, 0, 25, NULL), VMRES_EINVAL);
	after = snap(f->mgr);
	assert_snap_equal(&before, &after);
	assert_int_equal(vmres_irq_mgr_msi_notify(f->mgr, 1, 0, 25, &m), 0);
	assert_true(msg_eq(st(f->msi_b).live_msg, msg_of(12)));
	assert_state_equal(a, st(f->msi_a));
	assert_int_equal(vmres_irq_src_enable(f->msi_b), 0);
	assert_int_equal(vmres_irq_src_trigger(f->msi_b), 0);
	assert_true(msg_eq(f->rec.d[0].msg, msg_of(12)));
}

static void test_callback_backend_has_no_fds(void **state)
{
	struct fixture *f = *state;
	int fd = -5;

	assert_int_equal(vmres_irq_src_get_fd(f->msi_a, VMRES_IRQ_FD_TRIGGER, &fd), VMRES_ENOTSUP);
	assert_int_equal(vmres_irq_src_get_fd(f->msi_a, 9, &fd), VMRES_EINVAL);
	assert_int_equal(vmres_irq_src_get_fd(f->msi_a, VMRES_IRQ_FD_TRIGGER, NULL), VMRES_EINVAL);
	assert_int_equal(fd, -5);
}

static void test_batch_defers_routes_until_outermost_commit(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_config c = {VMRES_IRQ_MSI, VMRES_IRQ_EDGE, msg_of(4)};
	struct vmres_irq_mgr_info info;
	uint64_t commits;

	assert_int_equal(vmres_irq_mgr_commit(f->mgr), VMRES_ESTATE);
	assert_int_equal(vmres_irq_mgr_get_info(f->mgr, &info), 0);
	commits = info.commits;
	assert_int_equal(vmres_irq_mgr_begin_update(f->mgr), 0);
	assert_int_equal(vmres_irq_mgr_begin_update(f->mgr), 0);
	assert_int_equal(vmres_irq_src_configure(f->msi_a, &c), 0);
	assert_int_equal(vmres_irq_src_enable(f->msi_a), 0);
	assert_int_equal(vmres_irq_src_trigger(f->msi_a), 0); /* old route in force */
	assert_true(msg_eq(st(f->msi_a).config.msg, msg_of(4)));
	assert_true(msg_eq(st(f->msi_a).live_msg, msg_of(1)));
	assert_int_equal(vmres_irq_mgr_commit(f->mgr), 0);
	assert_int_equal(vmres_irq_mgr_get_info(f->mgr, &info), 0);
	assert_int_equal(info.batch_depth, 1);
	assert_true(info.dirty);
	assert_int_equal(info.commits, commits);
	assert_int_equal(vmres_irq_mgr_commit(f->mgr), 0);
	assert_int_equal(vmres_irq_mgr_get_info(f->mgr, &info), 0);
	assert_int_equal(info.batch_depth, 0);
	assert_false(info.dirty);
	assert_int_equal(info.commits, commits + 1);
	assert_int_equal(vmres_irq_src_trigger(f->msi_a), 0);
	assert_true(msg_eq(f->rec.d[0].msg, msg_of(1)));
	assert_true(msg_eq(f->rec.d[1].msg, msg_of(4)));
	assert_int_equal(vmres_irq_mgr_commit(f->mgr), VMRES_ESTATE);
	assert_int_equal(vmres_irq_mgr_begin_update(NULL), VMRES_EINVAL);
	assert_int_equal(vmres_irq_mgr_commit(NULL), VMRES_EINVAL);
}

static void test_routes_are_one_per_gsi_in_gsi_order(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_route r[2];
	size_t n = 0;

	assert_int_equal(vmres_irq_mgr_get_routes(f->mgr, r, 2, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].gsi, 5);
	assert_int_equal(r[0].kind, VMRES_IRQ_LEGACY);
	assert_int_equal(r[1].gsi, 24);
	assert_true(msg_eq(r[1].msg, msg_of(1)));
	assert_int_equal(vmres_irq_mgr_get_routes(f->mgr, NULL, 0, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(vmres_irq_mgr_get_routes(f->mgr, NULL, 1, &n), VMRES_EINVAL);
	assert_int_equal(vmres_irq_mgr_get_routes(f->mgr, r, 2, NULL), VMRES_EINVAL);
}

/* ---- backends and managers --------------------------------------------- */

static void test_backend_new_checks_version_and_required_ops(void **state)
{
	static struct vmres_irq_backend_ops ops;
	struct vmres_irq_backend *be = NULL;
	struct vmres_irq_mgr *m = NULL, *m2 = NULL;
	struct recorder rec = {0};

	(void)state;
	memset(&ops, 0, sizeof(ops));
	ops.version = VMRES_IRQ_BACKEND_OPS_VERSION;
	assert_int_equal(vmres_irq_backend_new(&ops, NULL, &be), VMRES_EINVAL);
	ops.version = VMRES_IRQ_BACKEND_OPS_VERSION + 1;
	assert_int_equal(vmres_irq_backend_new(&ops, NULL, &be), VMRES_EVERSION);
	assert_int_equal(vmres_irq_backend_new(NULL, NULL, &be), VMRES_EINVAL);
	assert_null(be);
	assert_int_equal(vmres_irq_backend_callback_new(NULL, NULL, &be), VMRES_EINVAL);
	assert_int_equal(vmres_irq_backend_callback_new(record, &rec, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_irq_mgr_new(NULL, &m), VMRES_EINVAL);
	assert_int_equal(vmres_irq_backend_callback_new(record, &rec, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_irq_mgr_new(be, &m), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &m2), VMRES_EEXIST);
	assert_null(m2);
	vmres_irq_backend_free(be); /* owned: ignored */
	assert_int_equal(vmres_irq_mgr_get_info(m, NULL), VMRES_EINVAL);
	assert_int_equal(vmres_irq_mgr_get_info(NULL, &(struct vmres_irq_mgr_info){0}),
			 VMRES_EINVAL);
	assert_int_equal(vmres_irq_src_enable(NULL), VMRES_EINVAL);
	assert_int_equal(vmres_irq_src_disable(NULL), VMRES_EINVAL);
	assert_int_equal(vmres_irq_src_mask(NULL), VMRES_EINVAL);
	assert_int_equal(vmres_irq_src_unmask(NULL), VMRES_EINVAL);
	assert_int_equal(vmres_irq_src_get_state(NULL, &(struct vmres_irq_src_state){0}),
			 VMRES_EINVAL);
	/* A backend no manager took is freed by its owner (ASan checks the leak). */
	assert_int_equal(vmres_irq_backend_callback_new(record, &rec, &be), 0);
	vmres_irq_backend_free(be);
	vmres_irq_mgr_free(m);
	vmres_irq_mgr_free(NULL);
	vmres_irq_backend_free(NULL);
	vmres_irq_group_free(NULL);
}

/* A scripted backend: fails chosen calls, records commits and attaches. */
struct script {
	int fail_attach_at; /* fail the n-th attach from now (1-based); 0: never */
	int fail_commit;    /* fail every commit with this code; 0: never */
	int fail_deliver;
	int attached, attaches, commits, delivers;
	size_t last_n;
	struct vmres_irq_route last[SNAP_MAX];
};

static int sc_attach(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
		     enum vmres_irq_trigger trigger, void **handle)
{
	struct script *sc = ctx;

	(void)gsi;
	(void)kind;
	(void)trigger;
	if (sc->fail_attach_at && ++sc->attaches == sc->fail_attach_at) {
		errno = E2BIG;
		return VMRES_ESYS;
	}
	sc->attached++;
	*handle = sc;
	return 0;
}

static void sc_detach(void *ctx, void *handle)
{
	struct script *sc = ctx;

	assert_ptr_equal(handle, sc);
	sc->attached--;
	errno = EBADF; /* the core must restore the first failure's errno */
}

static int sc_commit(void *ctx, const struct vmres_irq_route *routes, size_t n)
{
	struct script *sc = ctx;

	if (sc->fail_commit) {
		errno = E2BIG;
		return sc->fail_commit;
	}
	assert_true(n <= SNAP_MAX);
	for (size_t i = 1; i < n; i++)
		assert_true(routes[i - 1].gsi < routes[i].gsi);
	memcpy(sc->last, routes, n * sizeof(*routes));
	sc->last_n = n;
	sc->commits++;
	return 0;
}

static int sc_deliver(void *ctx, void *handle, uint32_t gsi, enum vmres_irq_kind kind,
		      const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct script *sc = ctx;

	(void)handle;
	(void)gsi;
	(void)kind;
	(void)msg;
	(void)signal;
	if (sc->fail_deliver)
		return sc->fail_deliver;
	sc->delivers++;
	return 0;
}

static const struct vmres_irq_backend_ops script_ops = {
	.version = VMRES_IRQ_BACKEND_OPS_VERSION,
	.attach = sc_attach,
	.detach = sc_detach,
	.commit = sc_commit,
	.deliver = sc_deliver,
};

static struct vmres_irq_mgr *script_mgr(struct script *sc)
{
	struct vmres_irq_backend *be;
	struct vmres_irq_mgr *m;

	memset(sc, 0, sizeof(*sc));
	assert_int_equal(vmres_irq_backend_new(&script_ops, sc, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &m), 0);
	return m;
}

static void test_attach_failure_half_way_undoes_the_group(void **state)
{
	struct script sc;
	struct vmres_irq_mgr *m = script_mgr(&sc);
	struct vmres_resource one = msi_res(40, 1);
	struct vmres_resource res[4] = {irq_res(3), msi_res(41, 2), msi_res(42, 3), irq_res(4)};
	struct vmres_irq_group *g0, *g = NULL;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, &one, 1, &g0), 0);
	for (int k = 1; k <= 4; k++) {
		struct mgr_snap before = snap(m), after;

		sc.attaches = 0;
		sc.fail_attach_at = k;
		errno = 0;
		assert_int_equal(vmres_irq_group_new(m, res, 4, &g), VMRES_ESYS);
		assert_int_equal(errno, E2BIG);
		assert_null(g);
		assert_int_equal(sc.attached, 1);
		after = snap(m);
		assert_snap_equal(&before, &after);
	}
	sc.fail_attach_at = 0;
	assert_int_equal(vmres_irq_group_new(m, res, 4, &g), 0);
	assert_int_equal(sc.attached, 5);
	assert_int_equal(sc.last_n, 5);
	vmres_irq_mgr_free(m);
	assert_int_equal(sc.attached, 0);
}

static void test_commit_failure_undoes_the_call_and_keeps_errno(void **state)
{
	struct script sc;
	struct vmres_irq_mgr *m = script_mgr(&sc);
	struct vmres_resource res[2] = {msi_res(40, 1), irq_res(6)};
	struct vmres_resource more = msi_res(50, 5);
	struct vmres_irq_group *g, *g2 = NULL;
	struct vmres_irq_src *s;
	struct vmres_irq_config c = {VMRES_IRQ_MSI, VMRES_IRQ_EDGE, msg_of(8)};
	struct vmres_msi_msg m9 = msg_of(9);

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, res, 2, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &s), 0);
	struct vmres_irq_src_state s_before = st(s);
	struct mgr_snap before = snap(m), after;

	sc.fail_commit = VMRES_ESYS;
	errno = 0;
	assert_int_equal(vmres_irq_src_configure(s, &c), VMRES_ESYS);
	assert_int_equal(errno, E2BIG);
	assert_int_equal(vmres_irq_mgr_msi_notify(m, 0, 0, 40, &m9), VMRES_ESYS);
	errno = 0;
	assert_int_equal(vmres_irq_group_new(m, &more, 1, &g2), VMRES_ESYS);
	assert_int_equal(errno, E2BIG);
	assert_null(g2);
	assert_int_equal(sc.attached, 2);
	sc.fail_commit = VMRES_EFULL;
	assert_int_equal(vmres_irq_src_configure(s, &c), VMRES_EFULL);
	assert_state_equal(s_before, st(s));
	after = snap(m);
	assert_snap_equal(&before, &after);
	/* A failed push on free leaves the manager dirty; the next commit retries. */
	sc.fail_commit = 0;
	assert_int_equal(vmres_irq_group_new(m, &more, 1, &g2), 0);
	sc.fail_commit = VMRES_ESYS;
	vmres_irq_group_free(g2);
	after = snap(m);
	assert_true(after.info.dirty);
	assert_int_equal(sc.last_n, 3);
	sc.fail_commit = 0;
	assert_int_equal(vmres_irq_src_configure(s, &c), 0);
	assert_int_equal(sc.last_n, 2);
	assert_true(msg_eq(sc.last[1].msg, msg_of(8)));
	vmres_irq_mgr_free(m);
}

static void test_failed_batch_commit_keeps_the_batch_open_for_a_retry(void **state)
{
	struct script sc;
	struct vmres_irq_mgr *m = script_mgr(&sc);
	struct vmres_resource res[2] = {msi_res(40, 1), msi_res(41, 2)};
	struct vmres_irq_group *g;
	struct vmres_msi_msg m7 = msg_of(7);
	int commits;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, res, 2, &g), 0);
	commits = sc.commits;
	assert_int_equal(vmres_irq_mgr_begin_update(m), 0);
	assert_int_equal(vmres_irq_mgr_msi_notify(m, 0, 0, 40, &m7), 0);
	assert_int_equal(vmres_irq_mgr_msi_notify(m, 0, 1, 41, &m7), 0);
	struct mgr_snap before = snap(m), after;

	assert_int_equal(sc.commits, commits);
	sc.fail_commit = VMRES_ESYS;
	assert_int_equal(vmres_irq_mgr_commit(m), VMRES_ESYS);
	after = snap(m);
	assert_snap_equal(&before, &after); /* still open, still dirty */
	assert_int_equal(after.info.batch_depth, 1);
	sc.fail_commit = 0;
	assert_int_equal(vmres_irq_mgr_commit(m), 0);
	assert_int_equal(sc.commits, commits + 1);
	assert_int_equal(sc.last_n, 2);
	assert_true(msg_eq(sc.last[0].msg, m7) && msg_eq(sc.last[1].msg, m7));
	vmres_irq_mgr_free(m);
}

static void test_failed_delivery_on_unmask_leaves_it_pending(void **state)
{
	struct script sc;
	struct vmres_irq_mgr *m = script_mgr(&sc);
	struct vmres_resource r = msi_res(40, 1);
	struct vmres_irq_group *g;
	struct vmres_irq_src *s;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, &r, 1, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &s), 0);
	assert_int_equal(vmres_irq_src_enable(s), 0);
	assert_int_equal(vmres_irq_src_mask(s), 0);
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	sc.fail_deliver = VMRES_ESYS;
	assert_int_equal(vmres_irq_src_unmask(s), VMRES_ESYS);
	assert_true(st(s).pending && st(s).masked);
	assert_int_equal(vmres_irq_src_trigger(s), 0);
	sc.fail_deliver = 0;
	assert_int_equal(vmres_irq_src_unmask(s), 0);
	assert_int_equal(sc.delivers, 1);
	sc.fail_deliver = VMRES_ESYS;
	assert_int_equal(vmres_irq_src_trigger(s), VMRES_ESYS);
	vmres_irq_mgr_free(m);
}

/* ---- randomized differential test against a model ---------------------- */

struct model_src {
	bool msi, level, enabled, masked, pending, asserted;
	uint32_t gsi, msg_k, live_k;
};

static void test_random_operations_match_a_simple_model(void **state)
{
	enum { NSRC = 4, STEPS = 20000 };
	unsigned int seed = 20261125;
	struct recorder *rec = calloc(1, sizeof(*rec));
	struct vmres_irq_backend *be;
	struct vmres_irq_mgr *m;
	struct vmres_irq_group *g;
	struct vmres_irq_src *src[NSRC];
	struct model_src md[NSRC];
	struct vmres_resource res[NSRC] = {irq_res(3), msi_res(30, 0), msi_res(31, 1), irq_res(4)};
	unsigned int depth = 0;

	(void)state;
	printf("random seed %u\n", seed);
	srand(seed);
	assert_non_null(rec);
	assert_int_equal(vmres_irq_backend_callback_new(record, rec, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &m), 0);
	assert_int_equal(vmres_irq_group_new(m, res, NSRC, &g), 0);
	for (int i = 0; i < NSRC; i++) {
		assert_int_equal(vmres_irq_group_src(g, (unsigned int)i, &src[i]), 0);
		memset(&md[i], 0, sizeof(md[i]));
		md[i].msi = res[i].kind == VMRES_RES_MSI;
		md[i].gsi = md[i].msi ? res[i].u.msi.gsi : res[i].u.irq.gsi;
		md[i].msg_k = md[i].live_k = (uint32_t)(md[i].msi ? i - 1 : 0);
	}
	for (int step = 0; step < STEPS; step++) {
		int i = rand() % NSRC, op = rand() % 10, want_rc = 0;
		struct model_src *x = &md[i];
		size_t n0 = rec->n;
		bool want_delivery = false;
		enum vmres_irq_signal want_sig = VMRES_IRQ_SIGNAL_EDGE;
		int rc = 0;

		switch (op) {
		case 0:
			rc = vmres_irq_src_enable(src[i]);
			x->enabled = true;
			break;
		case 1:
			rc = vmres_irq_src_disable(src[i]);
			x->enabled = x->pending = false;
			break;
		case 2:
			rc = vmres_irq_src_mask(src[i]);
			x->masked = true;
			break;
		case 3:
			rc = vmres_irq_src_unmask(src[i]);
			if (x->masked && x->pending && x->enabled) {
				want_delivery = true;
				want_sig =
					x->level ? VMRES_IRQ_SIGNAL_ASSERT : VMRES_IRQ_SIGNAL_EDGE;
				x->asserted |= x->level;
			}
			x->masked = x->pending = false;
			break;
		case 4:
		case 5:
			rc = vmres_irq_src_trigger(src[i]);
			if (!x->enabled) {
				want_rc = VMRES_ESTATE;
			} else if (x->masked) {
				x->pending = true;
				x->asserted |= x->level;
			} else {
				want_delivery = true;
				x->asserted |= x->level;
				want_sig =
					x->level ? VMRES_IRQ_SIGNAL_ASSERT : VMRES_IRQ_SIGNAL_EDGE;
			}
			break;
		case 6:
			rc = vmres_irq_src_ack(src[i]);
			if (!x->level) {
				want_rc = VMRES_ENOTSUP;
			} else {
				want_delivery = true;
				want_sig = VMRES_IRQ_SIGNAL_DEASSERT;
				x->asserted = x->pending = false;
			}
			break;
		case 7: {
			struct vmres_irq_config c = {x->msi ? VMRES_IRQ_MSI : VMRES_IRQ_LEGACY,
						     VMRES_IRQ_EDGE, msg_of((uint32_t)rand() % 8)};

			if (!x->msi)
				c.trigger = rand() % 2 ? VMRES_IRQ_LEVEL : VMRES_IRQ_EDGE;
			rc = vmres_irq_src_configure(src[i], &c);
			if (x->msi) {
				x->msg_k = c.msg.data & 0xfff;
				if (!depth)
					for (int j = 0; j < NSRC; j++)
						md[j].live_k = md[j].msg_k;
			} else {
				if (x->level && c.trigger == VMRES_IRQ_EDGE)
					x->asserted = false;
				x->level = c.trigger == VMRES_IRQ_LEVEL;
			}
			break;
		}
		case 8:
			if (depth < 2) {
				rc = vmres_irq_mgr_begin_update(m);
				depth++;
			}
			break;
		case 9:
			rc = vmres_irq_mgr_commit(m);
			if (!depth) {
				want_rc = VMRES_ESTATE;
			} else if (--depth == 0) {
				for (int j = 0; j < NSRC; j++)
					md[j].live_k = md[j].msg_k;
			}
			break;
		}
		assert_int_equal(rc, want_rc);
		assert_int_equal(rec->n, n0 + (want_delivery ? 1 : 0));
		if (want_delivery) {
			struct delivery *d = &rec->d[n0];

			assert_int_equal(d->gsi, x->gsi);
			assert_int_equal(d->signal, want_sig);
			assert_int_equal(d->has_msg, x->msi);
			if (x->msi)
				assert_true(msg_eq(d->msg, msg_of(x->live_k)));
		}
		rec->n = 0;
		for (int j = 0; j < NSRC; j++) {
			struct vmres_irq_src_state s = st(src[j]);

			assert_int_equal(s.enabled, md[j].enabled);
			assert_int_equal(s.masked, md[j].masked);
			assert_int_equal(s.pending, md[j].pending);
			assert_int_equal(s.asserted, md[j].asserted);
			assert_int_equal(s.config.trigger,
					 md[j].level ? VMRES_IRQ_LEVEL : VMRES_IRQ_EDGE);
			if (md[j].msi) {
				assert_true(msg_eq(s.config.msg, msg_of(md[j].msg_k)));
				assert_true(msg_eq(s.live_msg, msg_of(md[j].live_k)));
			}
		}
	}
	vmres_irq_mgr_free(m);
	free(rec);
}

/* ---- concurrency (the 'concurrent' suite runs this under TSan) --------- */

enum { TRIGGER_THREADS = 2, TRIGGERS_PER_THREAD = 20000 };

struct race {
	struct vmres_irq_src *src;
	atomic_uint produced;  /* bumped before each trigger */
	atomic_uint delivered; /* deliveries seen */
	atomic_uint max_seen;  /* largest 'produced' a delivery observed */
	atomic_uint torn;      /* deliveries whose message fields disagree */
	atomic_uint errors;    /* triggers that did not return 0 */
};

static void race_deliver(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
			 const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct race *r = ctx;
	unsigned int seen = atomic_load(&r->produced), max = atomic_load(&r->max_seen);
	uint32_t k = msg->addr_hi;

	(void)gsi;
	(void)kind;
	(void)signal;
	if (!msg_eq(*msg, msg_of(k)))
		atomic_fetch_add(&r->torn, 1);
	atomic_fetch_add(&r->delivered, 1);
	while (seen > max && !atomic_compare_exchange_weak(&r->max_seen, &max, seen))
		;
}

static void *race_trigger(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < TRIGGERS_PER_THREAD; i++) {
		atomic_fetch_add(&r->produced, 1);
		if (vmres_irq_src_trigger(r->src) != 0)
			atomic_fetch_add(&r->errors, 1);
	}
	return NULL;
}

static void test_concurrent_triggers_masks_and_reroutes_lose_nothing(void **state)
{
	struct race *r = calloc(1, sizeof(*r));
	struct vmres_irq_backend *be;
	struct vmres_irq_mgr *m;
	struct vmres_irq_group *g;
	struct vmres_resource res = msi_res(24, 0);
	pthread_t t[TRIGGER_THREADS];
	unsigned int total = TRIGGER_THREADS * TRIGGERS_PER_THREAD, k = 0;

	(void)state;
	assert_non_null(r);
	assert_int_equal(vmres_irq_backend_callback_new(race_deliver, r, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &m), 0);
	assert_int_equal(vmres_irq_group_new(m, &res, 1, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &r->src), 0);
	assert_int_equal(vmres_irq_src_enable(r->src), 0);
	for (int i = 0; i < TRIGGER_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_trigger, r), 0);
	/* Mask, unmask and reroute while the triggers run. */
	while (atomic_load(&r->produced) < total) {
		struct vmres_msi_msg msg = msg_of(++k % 64);

		assert_int_equal(vmres_irq_src_mask(r->src), 0);
		assert_int_equal(vmres_irq_mgr_msi_notify(m, 0, 0, 24, &msg), 0);
		assert_int_equal(vmres_irq_src_unmask(r->src), 0);
	}
	for (int i = 0; i < TRIGGER_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(vmres_irq_src_unmask(r->src), 0);
	printf("%u triggers, %u deliveries, %u reroutes\n", total, atomic_load(&r->delivered), k);
	assert_false(st(r->src).pending);
	assert_true(atomic_load(&r->delivered) >= 1);
	assert_true(atomic_load(&r->delivered) <= total);
	/* The last trigger was followed by a delivery: nothing was lost. */
	assert_int_equal(atomic_load(&r->max_seen), total);
	assert_int_equal(atomic_load(&r->torn), 0);
	assert_int_equal(atomic_load(&r->errors), 0);
	vmres_irq_mgr_free(m);
	free(r);
}

/* ---- shared lines (callback backend) ----------------------------------- */

static struct vmres_resource shared_res(uint32_t gsi)
{
	struct vmres_resource r = irq_res(gsi);

	r.u.irq.shared = true;
	return r;
}

/* One group of one share of line @p gsi, enabled. */
static struct vmres_irq_src *sharer(struct vmres_irq_mgr *m, uint32_t gsi,
				    struct vmres_irq_group **gout)
{
	struct vmres_resource r = shared_res(gsi);
	struct vmres_irq_src *s;

	assert_int_equal(vmres_irq_group_new(m, &r, 1, gout), 0);
	assert_int_equal(vmres_irq_group_src(*gout, 0, &s), 0);
	assert_int_equal(vmres_irq_src_enable(s), 0);
	return s;
}

/* The deliveries since @p from are exactly @p n signals, all on @p gsi, legacy. */
static void expect_signals(const struct recorder *rec, size_t from, uint32_t gsi, size_t n, ...)
{
	va_list ap;

	assert_int_equal(rec->n - from, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		const struct delivery *d = &rec->d[from + i];

		assert_int_equal(d->gsi, gsi);
		assert_int_equal(d->kind, VMRES_IRQ_LEGACY);
		assert_false(d->has_msg);
		assert_int_equal(d->signal, va_arg(ap, int));
	}
	va_end(ap);
}

#define ASSERT_SIG   VMRES_IRQ_SIGNAL_ASSERT
#define DEASSERT_SIG VMRES_IRQ_SIGNAL_DEASSERT

static void test_shared_line_is_raised_while_any_sharer_drives_it(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_group *ga, *gb, *gc;
	struct vmres_irq_src *a = sharer(f->mgr, 10, &ga), *b = sharer(f->mgr, 10, &gb),
			     *c = sharer(f->mgr, 10, &gc);
	size_t n;

	/* Shares start level-triggered, on one route. */
	assert_int_equal(st(a).config.trigger, VMRES_IRQ_LEVEL);
	n = f->rec.n;
	assert_int_equal(vmres_irq_src_trigger(a), 0);
	assert_int_equal(vmres_irq_src_trigger(b), 0);
	assert_int_equal(vmres_irq_src_trigger(a), 0); /* raised again, still one driver */
	expect_signals(&f->rec, n, 10, 3, ASSERT_SIG, ASSERT_SIG, ASSERT_SIG);
	assert_true(st(a).asserted && st(b).asserted && !st(c).asserted);
	/* a stops: b still drives, nothing is lowered. */
	n = f->rec.n;
	assert_int_equal(vmres_irq_src_ack(a), 0);
	assert_int_equal(vmres_irq_src_ack(c), 0); /* drove nothing: nothing to lower */
	expect_signals(&f->rec, n, 10, 0);
	assert_false(st(a).asserted);
	/* The last driver lowers it. */
	assert_int_equal(vmres_irq_src_ack(b), 0);
	expect_signals(&f->rec, n, 10, 1, DEASSERT_SIG);
	assert_int_equal(vmres_irq_src_ack(b), 0);
	expect_signals(&f->rec, n, 10, 1, DEASSERT_SIG);
	vmres_irq_group_free(ga);
	vmres_irq_group_free(gb);
	vmres_irq_group_free(gc);
}

static void test_resample_reraises_a_line_while_a_sharer_still_drives_it(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_group *ga, *gb;
	struct vmres_irq_src *a = sharer(f->mgr, 10, &ga), *b = sharer(f->mgr, 10, &gb);
	size_t n;

	assert_int_equal(vmres_irq_src_trigger(a), 0);
	assert_int_equal(vmres_irq_src_trigger(b), 0);
	/* The guest served a and EOIs: b still drives, the line comes back. */
	assert_int_equal(vmres_irq_src_ack(a), 0);
	n = f->rec.n;
	assert_int_equal(vmres_irq_src_resample(a), 0);
	expect_signals(&f->rec, n, 10, 2, DEASSERT_SIG, ASSERT_SIG);
	assert_false(st(a).asserted);
	assert_true(st(b).asserted);
	/* Served b: lowered; the next EOI leaves it low. */
	n = f->rec.n;
	assert_int_equal(vmres_irq_src_ack(b), 0);
	assert_int_equal(vmres_irq_src_resample(b), 0);
	expect_signals(&f->rec, n, 10, 2, DEASSERT_SIG, DEASSERT_SIG);
	/* An unshared level line re-raises while its source is asserted. */
	struct vmres_irq_config level = {VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, {0, 0, 0}};

	assert_int_equal(vmres_irq_src_configure(f->legacy, &level), 0);
	assert_int_equal(vmres_irq_src_enable(f->legacy), 0);
	assert_int_equal(vmres_irq_src_trigger(f->legacy), 0);
	n = f->rec.n;
	assert_int_equal(vmres_irq_src_resample(f->legacy), 0);
	expect_signals(&f->rec, n, 5, 2, DEASSERT_SIG, ASSERT_SIG);
	assert_int_equal(vmres_irq_src_ack(f->legacy), 0);
	n = f->rec.n;
	assert_int_equal(vmres_irq_src_resample(f->legacy), 0);
	expect_signals(&f->rec, n, 5, 1, DEASSERT_SIG);
	/* Only level lines resample. */
	assert_int_equal(vmres_irq_src_resample(f->msi_a), VMRES_ENOTSUP);
	assert_int_equal(vmres_irq_src_resample(NULL), VMRES_EINVAL);
	vmres_irq_group_free(ga);
	vmres_irq_group_free(gb);
}

static void test_freeing_a_driving_sharer_lowers_the_line_only_if_it_was_the_last(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_group *ga, *gb, *gc;
	struct vmres_irq_src *a = sharer(f->mgr, 10, &ga), *b = sharer(f->mgr, 10, &gb);
	size_t n;

	sharer(f->mgr, 10, &gc);
	assert_int_equal(vmres_irq_src_trigger(a), 0);
	assert_int_equal(vmres_irq_src_trigger(b), 0);
	n = f->rec.n;
	vmres_irq_group_free(ga); /* b still drives */
	expect_signals(&f->rec, n, 10, 0);
	assert_int_equal(vmres_irq_src_resample(b), 0); /* the line lives on, driven */
	expect_signals(&f->rec, n, 10, 2, DEASSERT_SIG, ASSERT_SIG);
	n = f->rec.n;
	vmres_irq_group_free(gb); /* the last driver goes: lowered */
	expect_signals(&f->rec, n, 10, 1, DEASSERT_SIG);
	n = f->rec.n;
	vmres_irq_group_free(gc); /* drove nothing */
	expect_signals(&f->rec, n, 10, 0);
	/* The GSI is free again, for any kind of legacy source. */
	struct vmres_resource r = irq_res(10);

	assert_int_equal(vmres_irq_group_new(f->mgr, &r, 1, &ga), 0);
	vmres_irq_group_free(ga);
}

static void test_masked_sharer_drives_its_line_only_once_unmasked(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_group *ga, *gb;
	struct vmres_irq_src *a = sharer(f->mgr, 10, &ga), *b = sharer(f->mgr, 10, &gb);
	struct vmres_irq_src_state s;
	size_t n = f->rec.n;

	assert_int_equal(vmres_irq_src_mask(a), 0);
	assert_int_equal(vmres_irq_src_trigger(a), 0);
	s = st(a);
	assert_true(s.pending && !s.asserted);
	expect_signals(&f->rec, n, 10, 0);
	assert_int_equal(vmres_irq_src_trigger(b), 0);
	assert_int_equal(vmres_irq_src_ack(b), 0); /* a does not drive yet */
	expect_signals(&f->rec, n, 10, 2, ASSERT_SIG, DEASSERT_SIG);
	n = f->rec.n;
	assert_int_equal(vmres_irq_src_unmask(a), 0);
	expect_signals(&f->rec, n, 10, 1, ASSERT_SIG);
	s = st(a);
	assert_true(!s.pending && s.asserted);
	assert_int_equal(vmres_irq_src_ack(a), 0);
	expect_signals(&f->rec, n, 10, 2, ASSERT_SIG, DEASSERT_SIG);
	vmres_irq_group_free(ga);
	vmres_irq_group_free(gb);
}

static void test_shares_are_level_only_and_never_mix_with_unshared_sources(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_config edge = {VMRES_IRQ_LEGACY, VMRES_IRQ_EDGE, {0, 0, 0}};
	struct vmres_irq_config level = {VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, {0, 0, 0}};
	struct vmres_irq_group *ga, *g = NULL;
	struct vmres_irq_src *a = sharer(f->mgr, 10, &ga);
	struct vmres_resource mix[2] = {shared_res(11), irq_res(11)};
	struct vmres_resource r;
	struct mgr_snap before, after;
	struct vmres_irq_src_state sa_before = st(a);

	/* An edge cannot be shared: refused, nothing changes. */
	assert_int_equal(vmres_irq_src_configure(a, &edge), VMRES_EKIND);
	assert_int_equal(vmres_irq_src_configure(a, &level), 0);
	assert_state_equal(st(a), sa_before);
	before = snap(f->mgr);
	r = irq_res(10); /* unshared on a shared line */
	assert_int_equal(vmres_irq_group_new(f->mgr, &r, 1, &g), VMRES_EEXIST);
	r = shared_res(5); /* a share on an unshared source's GSI */
	assert_int_equal(vmres_irq_group_new(f->mgr, &r, 1, &g), VMRES_EEXIST);
	r = shared_res(24); /* on an MSI's */
	assert_int_equal(vmres_irq_group_new(f->mgr, &r, 1, &g), VMRES_EEXIST);
	assert_int_equal(vmres_irq_group_new(f->mgr, mix, 2, &g), VMRES_EEXIST);
	mix[1] = msi_res(11, 3);
	assert_int_equal(vmres_irq_group_new(f->mgr, mix, 2, &g), VMRES_EEXIST);
	assert_null(g);
	after = snap(f->mgr);
	assert_snap_equal(&before, &after);
	/* Two shares of one line in one group (two functions of a device). */
	mix[1] = shared_res(10);
	mix[0] = shared_res(10);
	assert_int_equal(vmres_irq_group_new(f->mgr, mix, 2, &g), 0);
	after = snap(f->mgr);
	assert_int_equal(after.info.sources, before.info.sources + 2);
	assert_int_equal(after.nroutes, before.nroutes);
	vmres_irq_group_free(g);
	vmres_irq_group_free(ga);
}

static void test_unshared_legacy_sources_on_one_gsi_stay_independent(void **state)
{
	struct fixture *f = *state;
	struct vmres_irq_config level = {VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, {0, 0, 0}};
	struct vmres_resource r = irq_res(5);
	struct vmres_irq_src_state all[8];
	struct vmres_irq_group *g;
	struct vmres_irq_src *second;
	size_t n;

	/* f->legacy (first group) and second, both on GSI 5, both level. */
	assert_int_equal(vmres_irq_group_new(f->mgr, &r, 1, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &second), 0);
	assert_int_equal(vmres_irq_src_configure(f->legacy, &level), 0);
	assert_int_equal(vmres_irq_src_configure(second, &level), 0);
	assert_int_equal(vmres_irq_src_enable(f->legacy), 0);
	assert_int_equal(vmres_irq_src_enable(second), 0);
	n = f->rec.n;
	assert_int_equal(vmres_irq_src_trigger(f->legacy), 0);
	assert_int_equal(vmres_irq_src_trigger(second), 0);
	/* No OR: each signals for itself, so one ack lowers the line for both. */
	assert_int_equal(vmres_irq_src_ack(f->legacy), 0);
	expect_signals(&f->rec, n, 5, 3, ASSERT_SIG, ASSERT_SIG, DEASSERT_SIG);
	assert_true(st(second).asserted);
	/* Saved in the order their groups were created. */
	assert_int_equal(vmres_irq_mgr_save_state(f->mgr, all, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(all[0].gsi, 5);
	assert_false(all[0].asserted);
	assert_int_equal(all[1].gsi, 5);
	assert_true(all[1].asserted);
	vmres_irq_group_free(g);
}

/* Three shares of line 10 in three groups on a fresh callback manager. */
static struct vmres_irq_mgr *three_sharers(struct recorder *rec, struct vmres_irq_group *g[3],
					   struct vmres_irq_src *s[3])
{
	struct vmres_irq_backend *be;
	struct vmres_irq_mgr *m;

	assert_int_equal(vmres_irq_backend_callback_new(record, rec, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &m), 0);
	for (int i = 0; i < 3; i++) {
		s[i] = sharer(m, 10, &g[i]);
		assert_int_equal(vmres_irq_src_disable(s[i]), 0);
	}
	return m;
}

static void test_saved_state_keeps_which_sharers_drive_the_line(void **state)
{
	struct recorder *rec = calloc(2, sizeof(*rec));
	struct vmres_irq_group *g[3], *h[3];
	struct vmres_irq_src *s[3], *t[3];
	struct vmres_irq_mgr *m = three_sharers(&rec[0], g, s), *m2 = three_sharers(&rec[1], h, t);
	struct vmres_irq_src_state saved[3], bad[3], again[3];
	size_t n;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(vmres_irq_src_enable(s[i]), 0);
	assert_int_equal(vmres_irq_src_trigger(s[0]), 0); /* drives */
	assert_int_equal(vmres_irq_src_mask(s[2]), 0);
	assert_int_equal(vmres_irq_src_trigger(s[2]), 0); /* pending, not driving */
	assert_int_equal(vmres_irq_mgr_save_state(m, saved, 3, &n), 0);
	assert_int_equal(n, 3);
	assert_true(saved[0].asserted && !saved[1].asserted && !saved[2].asserted);
	assert_true(saved[2].pending && saved[2].masked);
	assert_int_equal(saved[1].config.trigger, VMRES_IRQ_LEVEL);
	/* An edge-triggered share cannot be loaded: nothing changes. */
	memcpy(bad, saved, sizeof(bad));
	bad[1].config.trigger = VMRES_IRQ_EDGE;
	assert_int_equal(vmres_irq_mgr_load_state(m2, bad, 3), VMRES_EKIND);
	assert_int_equal(vmres_irq_mgr_save_state(m2, again, 3, &n), 0);
	assert_false(again[0].enabled || again[0].asserted);
	/* Loaded into the same sources: the line is driven by the first alone. */
	assert_int_equal(vmres_irq_mgr_load_state(m2, saved, 3), 0);
	assert_int_equal(rec[1].n, 0); /* delivering nothing */
	assert_int_equal(vmres_irq_mgr_save_state(m2, again, 3, &n), 0);
	for (int i = 0; i < 3; i++)
		assert_state_equal(again[i], saved[i]);
	assert_int_equal(vmres_irq_src_resample(t[1]), 0); /* the EOI re-raises it */
	expect_signals(&rec[1], 0, 10, 2, DEASSERT_SIG, ASSERT_SIG);
	assert_int_equal(vmres_irq_src_ack(t[1]), 0); /* drove nothing */
	assert_int_equal(vmres_irq_src_ack(t[0]), 0); /* the one driver */
	expect_signals(&rec[1], 0, 10, 3, DEASSERT_SIG, ASSERT_SIG, DEASSERT_SIG);
	assert_int_equal(vmres_irq_src_unmask(t[2]), 0); /* pending: now it drives */
	expect_signals(&rec[1], 0, 10, 4, DEASSERT_SIG, ASSERT_SIG, DEASSERT_SIG, ASSERT_SIG);
	vmres_irq_mgr_free(m);
	vmres_irq_mgr_free(m2);
	free(rec);
}

/* A level line as an irqchip sees it: the signal delivered last. */
struct wire {
	pthread_mutex_t lock;
	enum vmres_irq_signal last;
	unsigned long signals;
};

static void wire_deliver(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
			 const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct wire *w = ctx;

	(void)gsi, (void)kind, (void)msg;
	pthread_mutex_lock(&w->lock);
	w->last = signal;
	w->signals++;
	pthread_mutex_unlock(&w->lock);
}

#define SHARED_ROUNDS 20000

static void *toggle_share(void *arg)
{
	struct vmres_irq_src *s = arg;

	for (int i = 0; i < SHARED_ROUNDS; i++) {
		assert_int_equal(vmres_irq_src_trigger(s), 0);
		assert_int_equal(vmres_irq_src_ack(s), 0);
	}
	return NULL;
}

/* Two shares toggle their drive while a third keeps driving or not: the line
 * ends as its drivers say, whatever the interleaving of the deliveries. */
static void test_concurrent_sharers_never_leave_a_driven_line_low(void **state)
{
	struct wire w = {PTHREAD_MUTEX_INITIALIZER, VMRES_IRQ_SIGNAL_DEASSERT, 0};
	struct vmres_resource r = irq_res(10);
	struct vmres_irq_backend *be;
	struct vmres_irq_mgr *m;
	struct vmres_irq_group *g[3];
	struct vmres_irq_src *s[3];
	pthread_t t[2];

	(void)state;
	r.u.irq.shared = true;
	assert_int_equal(vmres_irq_backend_callback_new(wire_deliver, &w, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &m), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vmres_irq_group_new(m, &r, 1, &g[i]), 0);
		assert_int_equal(vmres_irq_group_src(g[i], 0, &s[i]), 0);
		assert_int_equal(vmres_irq_src_enable(s[i]), 0);
	}
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&t[i], NULL, toggle_share, s[i]), 0);
		/* Round 0: the third share drives throughout; round 1: never. */
		for (int i = 0; i < 200; i++) {
			if (round == 0)
				assert_int_equal(vmres_irq_src_trigger(s[2]), 0);
			assert_int_equal(vmres_irq_src_resample(s[2]), 0);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		pthread_mutex_lock(&w.lock);
		assert_int_equal(w.last,
				 round == 0 ? VMRES_IRQ_SIGNAL_ASSERT : VMRES_IRQ_SIGNAL_DEASSERT);
		pthread_mutex_unlock(&w.lock);
		assert_int_equal(vmres_irq_src_ack(s[2]), 0);
	}
	for (int i = 0; i < 3; i++)
		vmres_irq_group_free(g[i]);
	vmres_irq_mgr_free(m);
}

/* ---- the KVM backend through its system-call seam ---------------------- */

#define FAKE_FD_BASE 1000
#define FAKE_FDS     8192
#define FAKE_IRQFDS  8192
#define FAKE_ROUTES  4200

struct fake_irqfd {
	int fd, resamplefd;
	uint32_t gsi;
};

struct fake {
	bool irqchip;	 /* KVM_GET_IRQCHIP succeeds */
	int probe_errno; /* else its errno */
	bool open[FAKE_FDS];
	uint64_t count[FAKE_FDS];
	int nopen;
	struct fake_irqfd irqfd[FAKE_IRQFDS];
	int nirqfd;
	struct kvm_irq_routing_entry table[FAKE_ROUTES];
	uint32_t ntable;
	int set_routing_calls, deassigns;
	uint32_t injected[64]; /* per GSI below 64: writes that reached an irqfd */
	long calls;	       /* system calls so far */
	long fail_at;	       /* fail the call numbered fail_at (1-based); 0: never */
};

static bool fake_fail(struct fake *f)
{
	if (++f->calls == f->fail_at) {
		errno = E2BIG;
		return true;
	}
	return false;
}

static bool fake_fd_ok(struct fake *f, int fd)
{
	return fd >= FAKE_FD_BASE && fd < FAKE_FD_BASE + FAKE_FDS && f->open[fd - FAKE_FD_BASE];
}

static int fake_eventfd(void *ctx, unsigned int initval, int flags)
{
	struct fake *f = ctx;

	assert_int_equal(flags, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fake_fail(f))
		return -1;
	for (int i = 0; i < FAKE_FDS; i++) {
		if (!f->open[i]) {
			f->open[i] = true;
			f->count[i] = initval;
			f->nopen++;
			return FAKE_FD_BASE + i;
		}
	}
	errno = EMFILE;
	return -1;
}

static int fake_close(void *ctx, int fd)
{
	struct fake *f = ctx;

	f->calls++; /* close never fails here: error paths rely on it */
	assert_true(fake_fd_ok(f, fd));
	f->open[fd - FAKE_FD_BASE] = false;
	f->nopen--;
	/* As KVM: closing an irqfd's eventfd releases the irqfd. */
	for (int i = 0; i < f->nirqfd; i++)
		if (f->irqfd[i].fd == fd)
			f->irqfd[i--] = f->irqfd[--f->nirqfd];
	errno = EINTR; /* clobber, to check that vmres restores errno */
	return 0;
}

static ssize_t fake_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct fake *f = ctx;
	uint64_t v;

	if (fake_fail(f))
		return -1;
	assert_true(fake_fd_ok(f, fd));
	assert_int_equal(len, 8);
	memcpy(&v, buf, 8);
	for (int i = 0; i < f->nirqfd; i++) {
		if (f->irqfd[i].fd == fd) {
			if (f->irqfd[i].gsi < 64)
				f->injected[f->irqfd[i].gsi] += (uint32_t)v;
			return 8;
		}
	}
	f->count[fd - FAKE_FD_BASE] += v;
	return 8;
}

static ssize_t fake_read(void *ctx, int fd, void *buf, size_t len)
{
	struct fake *f = ctx;
	uint64_t *c;

	if (fake_fail(f))
		return -1;
	assert_true(fake_fd_ok(f, fd));
	assert_int_equal(len, 8);
	c = &f->count[fd - FAKE_FD_BASE];
	if (*c == 0) {
		errno = EAGAIN;
		return -1;
	}
	memcpy(buf, c, 8);
	*c = 0;
	return 8;
}

static int fake_irqfd(struct fake *f, const struct kvm_irqfd *a)
{
	if (a->flags & KVM_IRQFD_FLAG_DEASSIGN) {
		f->deassigns++;
		for (int i = 0; i < f->nirqfd; i++) {
			if (f->irqfd[i].fd == (int)a->fd && f->irqfd[i].gsi == a->gsi) {
				f->irqfd[i] = f->irqfd[--f->nirqfd];
				return 0;
			}
		}
		return 0; /* as KVM: deassigning nothing succeeds */
	}
	if (!fake_fd_ok(f, (int)a->fd)) {
		errno = EBADF;
		return -1;
	}
	for (int i = 0; i < f->nirqfd; i++) {
		if (f->irqfd[i].fd == (int)a->fd) {
			errno = EBUSY;
			return -1;
		}
	}
	if (a->flags & KVM_IRQFD_FLAG_RESAMPLE)
		assert_true(fake_fd_ok(f, (int)a->resamplefd));
	assert_true(f->nirqfd < FAKE_IRQFDS);
	f->irqfd[f->nirqfd].fd = (int)a->fd;
	f->irqfd[f->nirqfd].gsi = a->gsi;
	f->irqfd[f->nirqfd].resamplefd =
		a->flags & KVM_IRQFD_FLAG_RESAMPLE ? (int)a->resamplefd : -1;
	f->nirqfd++;
	return 0;
}

static int fake_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	struct fake *f = ctx;

	assert_int_equal(fd, 3); /* the VM fd the tests pass */
	if (fake_fail(f))
		return -1;
	switch (request) {
	case KVM_GET_IRQCHIP:
		assert_int_equal(((struct kvm_irqchip *)arg)->chip_id, KVM_IRQCHIP_PIC_MASTER);
		if (f->irqchip)
			return 0;
		errno = f->probe_errno;
		return -1;
	case KVM_IRQFD:
		return fake_irqfd(f, arg);
	case KVM_SET_GSI_ROUTING: {
		const struct kvm_irq_routing *r = arg;

		assert_true(r->nr <= FAKE_ROUTES);
		assert_int_equal(r->flags, 0);
		memcpy(f->table, r->entries, r->nr * sizeof(r->entries[0]));
		f->ntable = r->nr;
		f->set_routing_calls++;
		return 0;
	}
	default:
		fail_msg("unexpected ioctl %lx", request);
		return -1;
	}
}

static struct vmres_irq_kvm_sys fake_sys(struct fake *f)
{
	struct vmres_irq_kvm_sys sys = {
		.version = VMRES_IRQ_KVM_SYS_VERSION,
		.ctx = f,
		.ioctl = fake_ioctl,
		.eventfd = fake_eventfd,
		.read = fake_read,
		.write = fake_write,
		.close = fake_close,
	};
	return sys;
}

static struct vmres_irq_mgr *fake_mgr(struct fake *f)
{
	struct vmres_irq_kvm_sys sys = fake_sys(f);
	struct vmres_irq_backend *be;
	struct vmres_irq_mgr *m;

	assert_int_equal(vmres_irq_backend_kvm_new(3, &sys, &be), 0);
	assert_int_equal(vmres_irq_mgr_new(be, &m), 0);
	return m;
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->irqchip = true;
	return f;
}

/* Find the table entries for gsi; returns how many. */
static int table_entries(const struct fake *f, uint32_t gsi, const struct kvm_irq_routing_entry **e)
{
	int n = 0;

	*e = NULL;
	for (uint32_t i = 0; i < f->ntable; i++) {
		if (f->table[i].gsi == gsi) {
			if (!n)
				*e = &f->table[i];
			n++;
		}
	}
	return n;
}

static void assert_default_irqchip_routes(const struct fake *f, uint32_t gsi)
{
	const struct kvm_irq_routing_entry *e;
	int n = table_entries(f, gsi, &e);
	bool ioapic = false, pic = false;

	assert_int_equal(n, gsi < 16 ? 2 : 1);
	for (int i = 0; i < n; i++) {
		assert_int_equal(e[i].type, KVM_IRQ_ROUTING_IRQCHIP);
		if (e[i].u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC) {
			assert_int_equal(e[i].u.irqchip.pin, gsi);
			ioapic = true;
		} else {
			assert_int_equal(e[i].u.irqchip.irqchip,
					 gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE);
			assert_int_equal(e[i].u.irqchip.pin, gsi % 8);
			pic = true;
		}
	}
	assert_true(ioapic);
	assert_int_equal(pic, gsi < 16);
}

static void assert_msi_route(const struct fake *f, uint32_t gsi, struct vmres_msi_msg m)
{
	const struct kvm_irq_routing_entry *e;

	assert_int_equal(table_entries(f, gsi, &e), 1);
	assert_int_equal(e->type, KVM_IRQ_ROUTING_MSI);
	assert_int_equal(e->flags, 0);
	assert_int_equal(e->u.msi.address_lo, m.addr_lo);
	assert_int_equal(e->u.msi.address_hi, m.addr_hi);
	assert_int_equal(e->u.msi.data, m.data);
}

static void assert_table_sorted(const struct fake *f)
{
	for (uint32_t i = 1; i < f->ntable; i++)
		assert_true(f->table[i - 1].gsi <= f->table[i].gsi);
}

static void test_kvm_commit_sends_the_full_table_with_irqchip_routes(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource res[3] = {irq_res(4), msi_res(24, 1), msi_res(100, 2)};
	struct vmres_irq_group *g;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, res, 3, &g), 0);
	assert_int_equal(f->set_routing_calls, 1);
	assert_int_equal(f->ntable, 16 * 2 + 8 + 2);
	assert_table_sorted(f);
	for (uint32_t gsi = 0; gsi < 24; gsi++)
		assert_default_irqchip_routes(f, gsi);
	assert_msi_route(f, 24, msg_of(1));
	assert_msi_route(f, 100, msg_of(2));
	vmres_irq_group_free(g);
	assert_int_equal(f->set_routing_calls, 2);
	assert_int_equal(f->ntable, 40);
	vmres_irq_mgr_free(m);
	assert_int_equal(f->nopen, 0);
	free(f);
}

static void test_kvm_msi_on_an_irqchip_gsi_replaces_its_default_routes(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource res[2] = {msi_res(5, 3), msi_res(20, 4)};
	struct vmres_irq_group *g;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, res, 2, &g), 0);
	assert_int_equal(f->ntable, 40 - 2 - 1 + 2);
	assert_table_sorted(f);
	assert_msi_route(f, 5, msg_of(3));
	assert_msi_route(f, 20, msg_of(4));
	assert_default_irqchip_routes(f, 4);
	assert_default_irqchip_routes(f, 21);
	vmres_irq_group_free(g);
	assert_default_irqchip_routes(f, 5);
	assert_default_irqchip_routes(f, 20);
	vmres_irq_mgr_free(m);
	free(f);
}

static void test_kvm_batch_sends_one_routing_ioctl(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource res[3] = {msi_res(30, 1), msi_res(31, 2), msi_res(32, 3)};
	struct vmres_resource more = msi_res(33, 4);
	struct vmres_irq_group *g, *g2;
	struct vmres_irq_src *s;
	struct vmres_irq_config c = {VMRES_IRQ_MSI, VMRES_IRQ_EDGE, msg_of(10)};
	struct vmres_msi_msg m11 = msg_of(11);

	(void)state;
	assert_int_equal(vmres_irq_mgr_begin_update(m), 0);
	assert_int_equal(vmres_irq_group_new(m, res, 3, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &s), 0);
	assert_int_equal(vmres_irq_src_configure(s, &c), 0);
	assert_int_equal(vmres_irq_mgr_msi_notify(m, 0, 1, 31, &m11), 0);
	assert_int_equal(vmres_irq_group_new(m, &more, 1, &g2), 0);
	assert_int_equal(f->set_routing_calls, 0);
	assert_int_equal(f->nirqfd, 4); /* irqfds are bound at once */
	assert_int_equal(vmres_irq_mgr_commit(m), 0);
	assert_int_equal(f->set_routing_calls, 1);
	assert_int_equal(f->ntable, 44);
	assert_msi_route(f, 30, msg_of(10));
	assert_msi_route(f, 31, msg_of(11));
	assert_msi_route(f, 32, msg_of(3));
	assert_msi_route(f, 33, msg_of(4));
	assert_default_irqchip_routes(f, 0);
	/* Nothing changed: a commit sends nothing. */
	assert_int_equal(vmres_irq_mgr_begin_update(m), 0);
	assert_int_equal(vmres_irq_mgr_commit(m), 0);
	assert_int_equal(f->set_routing_calls, 1);
	vmres_irq_mgr_free(m);
	assert_int_equal(f->nopen, 0);
	free(f);
}

static void test_kvm_sources_get_irqfds_and_level_lines_a_resample_fd(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource res[2] = {irq_res(9), msi_res(40, 1)};
	struct vmres_irq_group *g;
	struct vmres_irq_src *leg, *msi;
	int tfd = -1, rfd = -1, mfd = -1, before_calls;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, res, 2, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &leg), 0);
	assert_int_equal(vmres_irq_group_src(g, 1, &msi), 0);
	assert_int_equal(f->nopen, 2);
	assert_int_equal(f->nirqfd, 2);
	assert_int_equal(vmres_irq_src_get_fd(msi, VMRES_IRQ_FD_TRIGGER, &mfd), 0);
	assert_int_equal(vmres_irq_src_get_fd(msi, VMRES_IRQ_FD_RESAMPLE, &rfd), VMRES_ENOTSUP);
	assert_int_equal(rfd, -1);
	configure_level(leg);
	assert_int_equal(f->nopen, 3);
	assert_int_equal(f->nirqfd, 2);
	assert_int_equal(f->deassigns, 1);
	assert_int_equal(vmres_irq_src_get_fd(leg, VMRES_IRQ_FD_TRIGGER, &tfd), 0);
	assert_int_equal(vmres_irq_src_get_fd(leg, VMRES_IRQ_FD_RESAMPLE, &rfd), 0);
	for (int i = 0; i < f->nirqfd; i++) {
		if (f->irqfd[i].gsi == 9) {
			assert_int_equal(f->irqfd[i].fd, tfd);
			assert_int_equal(f->irqfd[i].resamplefd, rfd);
		} else {
			assert_int_equal(f->irqfd[i].fd, mfd);
			assert_int_equal(f->irqfd[i].resamplefd, -1);
		}
	}
	/* Triggers write the irqfds; masked ones write nothing. */
	assert_int_equal(vmres_irq_src_enable(leg), 0);
	assert_int_equal(vmres_irq_src_enable(msi), 0);
	assert_int_equal(vmres_irq_src_trigger(leg), 0);
	assert_int_equal(vmres_irq_src_trigger(msi), 0);
	assert_int_equal(vmres_irq_src_mask(msi), 0);
	assert_int_equal(vmres_irq_src_trigger(msi), 0);
	assert_int_equal(f->injected[9], 1);
	assert_int_equal(f->injected[40], 1);
	assert_int_equal(vmres_irq_src_unmask(msi), 0);
	assert_int_equal(f->injected[40], 2);
	/* The guest's EOI signals the resample fd; ack drains it. */
	f->count[rfd - FAKE_FD_BASE] = 1;
	assert_int_equal(vmres_irq_src_ack(leg), 0);
	assert_int_equal(f->count[rfd - FAKE_FD_BASE], 0);
	before_calls = (int)f->calls;
	errno = 0;
	assert_int_equal(vmres_irq_src_ack(leg), 0); /* nothing to drain: EAGAIN is fine */
	assert_int_equal(errno, 0);
	assert_int_equal(f->calls, before_calls + 1);
	/* A failed eventfd write is reported. */
	f->fail_at = f->calls + 1;
	errno = 0;
	assert_int_equal(vmres_irq_src_trigger(msi), VMRES_ESYS);
	assert_int_equal(errno, E2BIG);
	vmres_irq_group_free(g);
	assert_int_equal(f->nopen, 0);
	assert_int_equal(f->nirqfd, 0);
	vmres_irq_mgr_free(m);
	free(f);
}

/* Everything a failure must leave as it was. */
struct fake_snap {
	int nopen, nirqfd;
	uint32_t ntable;
	struct kvm_irq_routing_entry table[64];
	struct fake_irqfd irqfd[16];
	struct mgr_snap mgr;
};

static void take_fake_snap(struct fake *f, struct vmres_irq_mgr *m, struct fake_snap *s)
{
	memset(s, 0, sizeof(*s));
	s->nopen = f->nopen;
	s->nirqfd = f->nirqfd;
	s->ntable = f->ntable;
	assert_true(f->ntable <= 64 && f->nirqfd <= 16);
	memcpy(s->table, f->table, f->ntable * sizeof(f->table[0]));
	memcpy(s->irqfd, f->irqfd, (size_t)f->nirqfd * sizeof(f->irqfd[0]));
	s->mgr = snap(m);
}

static void assert_fake_unchanged(struct fake *f, struct vmres_irq_mgr *m,
				  const struct fake_snap *s)
{
	struct fake_snap now;

	take_fake_snap(f, m, &now);
	assert_int_equal(now.nopen, s->nopen);
	assert_int_equal(now.nirqfd, s->nirqfd);
	assert_int_equal(now.ntable, s->ntable);
	assert_memory_equal(now.table, s->table, sizeof(s->table));
	assert_memory_equal(now.irqfd, s->irqfd, sizeof(s->irqfd));
	assert_snap_equal(&now.mgr, &s->mgr);
}

static void test_kvm_failure_at_each_system_call_of_group_new_changes_nothing(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource first[2] = {msi_res(24, 1), irq_res(3)};
	struct vmres_resource res[4] = {msi_res(25, 2), irq_res(4), msi_res(26, 3), irq_res(3)};
	struct vmres_irq_group *g0, *g1, *g = NULL;
	struct vmres_irq_src *s;
	int failures = 0;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, first, 2, &g0), 0);
	assert_int_equal(vmres_irq_group_src(g0, 1, &s), 0);
	configure_level(s);
	for (long k = 1;; k++) {
		struct fake_snap before;
		int rc;

		take_fake_snap(f, m, &before);
		f->fail_at = f->calls + k;
		errno = 0;
		rc = vmres_irq_group_new(m, res, 4, &g);
		if (f->calls < f->fail_at) {
			assert_int_equal(rc, 0); /* the failure point is past the last call */
			break;
		}
		assert_int_equal(rc, VMRES_ESYS);
		assert_int_equal(errno, E2BIG);
		assert_null(g);
		f->fail_at = 0;
		assert_fake_unchanged(f, m, &before);
		failures++;
	}
	/* 4 eventfds, 4 KVM_IRQFDs, 1 KVM_SET_GSI_ROUTING. */
	assert_int_equal(failures, 9);
	f->fail_at = 0;
	assert_msi_route(f, 25, msg_of(2));
	assert_msi_route(f, 26, msg_of(3));
	assert_int_equal(f->nirqfd, 6);
	assert_int_equal(f->nopen, 7);
	/* A level line with a failure at each call of its re-attach. */
	assert_int_equal(vmres_irq_group_src(g, 1, &s), 0);
	for (long k = 1;; k++) {
		struct fake_snap before;
		struct vmres_irq_config c = {VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL, {0, 0, 0}};
		struct vmres_irq_src_state sb = st(s);
		int rc;

		take_fake_snap(f, m, &before);
		f->fail_at = f->calls + k;
		errno = 0;
		rc = vmres_irq_src_configure(s, &c);
		if (rc == 0) {
			/* Past the new irqfd, a failure (of the old one's deassign) is absorbed. */
			assert_true(f->calls >= 4);
			break;
		}
		assert_int_equal(rc, VMRES_ESYS);
		assert_int_equal(errno, E2BIG);
		f->fail_at = 0;
		assert_fake_unchanged(f, m, &before);
		assert_state_equal(sb, st(s));
	}
	f->fail_at = 0;
	assert_int_equal(f->nirqfd, 6);
	assert_int_equal(f->nopen, 8);
	assert_int_equal(vmres_irq_group_new(m, res, 0, &g1), VMRES_ESIZE);
	vmres_irq_group_free(g);
	vmres_irq_group_free(g0);
	assert_int_equal(f->nopen, 0);
	assert_int_equal(f->nirqfd, 0);
	vmres_irq_mgr_free(m);
	free(f);
}

static struct vmres_resource shared_irq(uint32_t gsi)
{
	struct vmres_resource r = irq_res(gsi);

	r.u.irq.shared = true;
	return r;
}

static void test_kvm_shared_line_is_one_irqfd_with_resample_for_all_its_sharers(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource r = shared_irq(10);
	struct vmres_irq_group *g[3];
	struct vmres_irq_src *s[3];
	int tfd[3], rfd[3];
	long calls;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vmres_irq_group_new(m, &r, 1, &g[i]), 0);
		assert_int_equal(vmres_irq_group_src(g[i], 0, &s[i]), 0);
		assert_int_equal(vmres_irq_src_enable(s[i]), 0);
		assert_int_equal(vmres_irq_src_get_fd(s[i], VMRES_IRQ_FD_TRIGGER, &tfd[i]), 0);
		assert_int_equal(vmres_irq_src_get_fd(s[i], VMRES_IRQ_FD_RESAMPLE, &rfd[i]), 0);
		assert_int_equal(tfd[i], tfd[0]);
		assert_int_equal(rfd[i], rfd[0]);
	}
	/* One irqfd for the GSI, with its resample fd: 2 eventfds in all. */
	assert_int_equal(f->nirqfd, 1);
	assert_int_equal(f->nopen, 2);
	assert_int_equal(f->irqfd[0].gsi, 10);
	assert_int_equal(f->irqfd[0].fd, tfd[0]);
	assert_int_equal(f->irqfd[0].resamplefd, rfd[0]);
	assert_int_equal(vmres_irq_src_trigger(s[0]), 0);
	assert_int_equal(vmres_irq_src_trigger(s[1]), 0);
	assert_int_equal(f->injected[10], 2);
	/* s[0] drops its line: s[1] drives, no system call. */
	calls = f->calls;
	assert_int_equal(vmres_irq_src_ack(s[0]), 0);
	assert_int_equal(f->calls, calls);
	/* The guest EOIs (KVM lowered the line): drained, and raised again. */
	f->count[rfd[0] - FAKE_FD_BASE] = 1;
	assert_int_equal(vmres_irq_src_resample(s[2]), 0);
	assert_int_equal(f->count[rfd[0] - FAKE_FD_BASE], 0);
	assert_int_equal(f->injected[10], 3);
	/* The last driver drops it: the next EOI is drained and nothing raised. */
	assert_int_equal(vmres_irq_src_ack(s[1]), 0);
	f->count[rfd[0] - FAKE_FD_BASE] = 1;
	assert_int_equal(vmres_irq_src_resample(s[0]), 0);
	assert_int_equal(f->count[rfd[0] - FAKE_FD_BASE], 0);
	assert_int_equal(f->injected[10], 3);
	/* A failed eventfd write is reported by the share that raised it. */
	f->fail_at = f->calls + 1;
	errno = 0;
	assert_int_equal(vmres_irq_src_trigger(s[2]), VMRES_ESYS);
	assert_int_equal(errno, E2BIG);
	f->fail_at = 0;
	/* The irqfd goes with the last sharer. */
	vmres_irq_group_free(g[0]);
	vmres_irq_group_free(g[2]);
	assert_int_equal(f->nirqfd, 1);
	assert_int_equal(f->nopen, 2);
	vmres_irq_group_free(g[1]);
	assert_int_equal(f->nirqfd, 0);
	assert_int_equal(f->nopen, 0);
	vmres_irq_mgr_free(m);
	free(f);
}

static void test_kvm_failure_at_each_system_call_of_a_new_shared_line_changes_nothing(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource res[3] = {shared_irq(11), msi_res(30, 1), shared_irq(11)};
	struct vmres_resource join = shared_irq(11);
	struct vmres_irq_group *g = NULL, *g2;
	int failures = 0;
	long calls;

	(void)state;
	for (long k = 1;; k++) {
		struct fake_snap before;
		int rc;

		take_fake_snap(f, m, &before);
		f->fail_at = f->calls + k;
		errno = 0;
		rc = vmres_irq_group_new(m, res, 3, &g);
		if (f->calls < f->fail_at) {
			assert_int_equal(rc, 0);
			break;
		}
		assert_int_equal(rc, VMRES_ESYS);
		assert_int_equal(errno, E2BIG);
		assert_null(g);
		f->fail_at = 0;
		assert_fake_unchanged(f, m, &before);
		failures++;
	}
	f->fail_at = 0;
	/* The line: 2 eventfds and 1 KVM_IRQFD; the MSI: 1 and 1; 1 routing push. */
	assert_int_equal(failures, 6);
	assert_int_equal(f->nirqfd, 2);
	assert_int_equal(f->nopen, 3);
	/* Joining a line makes no system call. */
	calls = f->calls;
	assert_int_equal(vmres_irq_group_new(m, &join, 1, &g2), 0);
	assert_int_equal(f->calls, calls);
	vmres_irq_group_free(g);
	assert_int_equal(f->nirqfd, 1);
	vmres_irq_group_free(g2);
	assert_int_equal(f->nopen, 0);
	assert_int_equal(f->nirqfd, 0);
	vmres_irq_mgr_free(m);
	free(f);
}

static void test_kvm_failed_reroute_keeps_the_previous_table(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource res = msi_res(24, 1);
	struct vmres_irq_group *g;
	struct vmres_irq_src *s;
	struct vmres_msi_msg m2 = msg_of(2);
	struct fake_snap before;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, &res, 1, &g), 0);
	assert_int_equal(vmres_irq_group_src(g, 0, &s), 0);
	struct vmres_irq_src_state sb = st(s);

	take_fake_snap(f, m, &before);
	f->fail_at = f->calls + 1;
	errno = 0;
	assert_int_equal(vmres_irq_mgr_msi_notify(m, 0, 0, 24, &m2), VMRES_ESYS);
	assert_int_equal(errno, E2BIG);
	assert_fake_unchanged(f, m, &before);
	assert_state_equal(sb, st(s));
	assert_int_equal(vmres_irq_mgr_msi_notify(m, 0, 0, 24, &m2), 0);
	assert_msi_route(f, 24, msg_of(2));
	vmres_irq_mgr_free(m);
	free(f);
}

static void test_kvm_gsi_limits_and_split_irqchip(void **state)
{
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource r = msi_res(4096, 1);
	struct vmres_irq_group *g = NULL;
	struct vmres_irq_kvm_sys sys = fake_sys(f);
	struct vmres_irq_backend *be = NULL;

	(void)state;
	assert_int_equal(vmres_irq_group_new(m, &r, 1, &g), VMRES_ERANGE);
	r = irq_res(24); /* no IOAPIC pin */
	assert_int_equal(vmres_irq_group_new(m, &r, 1, &g), VMRES_ERANGE);
	r = msi_res(4095, 1);
	assert_int_equal(vmres_irq_group_new(m, &r, 1, &g), 0);
	vmres_irq_group_free(g);
	vmres_irq_mgr_free(m);
	assert_int_equal(f->nopen, 0);
	/* Split (or no) irqchip: no irqchip routes, no legacy lines. */
	f->irqchip = false;
	f->probe_errno = ENXIO;
	m = fake_mgr(f);
	r = irq_res(4);
	assert_int_equal(vmres_irq_group_new(m, &r, 1, &g), VMRES_ERANGE);
	r = msi_res(4, 1);
	assert_int_equal(vmres_irq_group_new(m, &r, 1, &g), 0);
	assert_int_equal(f->ntable, 1);
	assert_msi_route(f, 4, msg_of(1));
	vmres_irq_mgr_free(m);
	/* Any other probe failure is reported. */
	f->probe_errno = EIO;
	errno = 0;
	assert_int_equal(vmres_irq_backend_kvm_new(3, &sys, &be), VMRES_ESYS);
	assert_int_equal(errno, EIO);
	assert_null(be);
	assert_int_equal(vmres_irq_backend_kvm_new(-1, &sys, &be), VMRES_EINVAL);
	assert_int_equal(vmres_irq_backend_kvm_new(3, &sys, NULL), VMRES_EINVAL);
	sys.version = 99;
	assert_int_equal(vmres_irq_backend_kvm_new(3, &sys, &be), VMRES_EVERSION);
	sys = fake_sys(f);
	sys.close = NULL;
	assert_int_equal(vmres_irq_backend_kvm_new(3, &sys, &be), VMRES_EINVAL);
	assert_null(be);
	free(f);
}

static void test_kvm_table_beyond_kvm_limit_is_refused(void **state)
{
	enum { N = 4096 - 24 };
	struct fake *f = fake_new();
	struct vmres_irq_mgr *m = fake_mgr(f);
	struct vmres_resource *res = calloc(N, sizeof(*res));
	struct vmres_irq_group *g = NULL;
	struct fake_snap before;

	(void)state;
	assert_non_null(res);
	for (uint32_t i = 0; i < N; i++)
		res[i] = msi_res(24 + i, i & 0xff);
	take_fake_snap(f, m, &before);
	/* 4072 MSI routes + 40 irqchip routes > 4096 */
	assert_int_equal(vmres_irq_group_new(m, res, N, &g), VMRES_EFULL);
	assert_null(g);
	assert_fake_unchanged(f, m, &before);
	/* 16 fewer fit exactly. */
	assert_int_equal(vmres_irq_group_new(m, res, N - 16, &g), 0);
	assert_int_equal(f->ntable, 4096);
	vmres_irq_mgr_free(m);
	assert_int_equal(f->nopen, 0);
	free(res);
	free(f);
}

/* ---- glue: the device manager's MSI path ------------------------------- */

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* The notifier is exactly the device manager's type (checked at compile time). */
static const vmres_devmgr_msi_fn irq_notifier = vmres_irq_mgr_msi_notify;

static void test_device_reroute_updates_the_kvm_table_or_changes_nothing(void **state)
{
	struct fake *f;
	struct vmres_irq_mgr *m;
	struct vmres_devmgr *dm;
	struct vmres_device dev = VMRES_DEVICE_INIT;
	struct vmres_resource res[2] = {msi_res(24, 1), msi_res(25, 2)}, got[2];
	struct vmres_irq_group *g;
	struct vmres_msi_msg m5 = msg_of(5), m6 = msg_of(6);
	uint32_t inst;
	int calls;

	(void)state;
#ifdef UNDER_TSAN
	/* Not a concurrency test; liburcu (uninstrumented) frees on its own thread. */
	printf("skipped under ThreadSanitizer\n");
	skip();
#endif
	f = fake_new();
	m = fake_mgr(f);
	assert_int_equal(vmres_devmgr_new(NULL, &dm), 0);
	assert_int_equal(vmres_devmgr_register(dm, &dev, VMRES_DEVMGR_NO_PARENT, res, 2, &inst), 0);
	assert_int_equal(vmres_irq_group_new(m, res, 2, &g), 0);
	assert_int_equal(vmres_devmgr_set_msi_notifier(dm, irq_notifier, m), 0);
	calls = f->set_routing_calls;
	assert_int_equal(vmres_devmgr_reroute_msi(dm, inst, 1, &m5), 0);
	assert_int_equal(f->set_routing_calls, calls + 1);
	assert_msi_route(f, 25, msg_of(5));
	assert_msi_route(f, 24, msg_of(1));
	/* KVM refuses the table: neither the device manager nor vmres's record moves. */
	f->fail_at = f->calls + 1;
	assert_int_equal(vmres_devmgr_reroute_msi(dm, inst, 1, &m6), VMRES_ESYS);
	f->fail_at = 0;
	assert_msi_route(f, 25, msg_of(5));
	assert_int_equal(vmres_devmgr_get(dm, inst, NULL, got, NULL, 2), 0);
	assert_true(msg_eq(got[1].u.msi.msg, msg_of(5)));
	struct vmres_irq_src *s;
	assert_int_equal(vmres_irq_group_src(g, 1, &s), 0);
	assert_true(msg_eq(st(s).config.msg, msg_of(5)));
	vmres_devmgr_free(dm);
	vmres_irq_mgr_free(m);
	assert_int_equal(f->nopen, 0);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_group_makes_one_disabled_source_per_resource_in_order, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(test_group_refuses_bad_input_and_changes_nothing,
						cb_setup, cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_lines_may_share_a_gsi_and_its_route_outlives_one_of_them,
			cb_setup, cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_shared_line_is_raised_while_any_sharer_drives_it, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_resample_reraises_a_line_while_a_sharer_still_drives_it, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_freeing_a_driving_sharer_lowers_the_line_only_if_it_was_the_last,
			cb_setup, cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_masked_sharer_drives_its_line_only_once_unmasked, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_shares_are_level_only_and_never_mix_with_unshared_sources, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_unshared_legacy_sources_on_one_gsi_stay_independent, cb_setup,
			cb_teardown),
		cmocka_unit_test(test_saved_state_keeps_which_sharers_drive_the_line),
		cmocka_unit_test(test_concurrent_sharers_never_leave_a_driven_line_low),
		cmocka_unit_test_setup_teardown(
			test_trigger_while_disabled_is_refused_and_not_remembered, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_trigger_delivers_msi_with_its_message_and_legacy_without, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_trigger_while_masked_sets_pending_and_delivers_nothing, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(test_unmask_delivers_pending_exactly_once, cb_setup,
						cb_teardown),
		cmocka_unit_test_setup_teardown(test_disable_forgets_pending, cb_setup,
						cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_reconfigure_while_enabled_takes_effect_for_next_trigger, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_pending_msi_is_delivered_with_the_new_message_on_unmask, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_configure_refuses_bad_config_and_changes_nothing, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(test_setting_the_same_message_again_commits_nothing,
						cb_setup, cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_level_line_is_raised_by_trigger_and_lowered_by_ack, cb_setup,
			cb_teardown),
		cmocka_unit_test_setup_teardown(
			test_level_line_raised_while_masked_is_raised_on_unmask_unless_acked,
			cb_setup, cb_teardown),
		cmocka_unit_test_setup_teardown(test_ack_is_only_for_level_lines, cb_setup,
						cb_teardown),
		cmocka_unit_test_setup_teardown(test_msi_notify_finds_the_source_by_gsi, cb_setup,
						cb_teardown),
		cmocka_unit_test_setup_teardown(test_callback_backend_has_no_fds, cb_setup,
						cb_teardown),
		cmocka_unit_test_setup_teardown(test_batch_defers_routes_until_outermost_commit,
						cb_setup, cb_teardown),
		cmocka_unit_test_setup_teardown(test_routes_are_one_per_gsi_in_gsi_order, cb_setup,
						cb_teardown),
		cmocka_unit_test(test_backend_new_checks_version_and_required_ops),
		cmocka_unit_test(test_attach_failure_half_way_undoes_the_group),
		cmocka_unit_test(test_commit_failure_undoes_the_call_and_keeps_errno),
		cmocka_unit_test(test_failed_batch_commit_keeps_the_batch_open_for_a_retry),
		cmocka_unit_test(test_failed_delivery_on_unmask_leaves_it_pending),
		cmocka_unit_test(test_random_operations_match_a_simple_model),
		cmocka_unit_test(test_concurrent_triggers_masks_and_reroutes_lose_nothing),
		cmocka_unit_test(test_kvm_commit_sends_the_full_table_with_irqchip_routes),
		cmocka_unit_test(test_kvm_msi_on_an_irqchip_gsi_replaces_its_default_routes),
		cmocka_unit_test(test_kvm_batch_sends_one_routing_ioctl),
		cmocka_unit_test(test_kvm_sources_get_irqfds_and_level_lines_a_resample_fd),
		cmocka_unit_test(test_kvm_failure_at_each_system_call_of_group_new_changes_nothing),
		cmocka_unit_test(
			test_kvm_shared_line_is_one_irqfd_with_resample_for_all_its_sharers),
		cmocka_unit_test(
			test_kvm_failure_at_each_system_call_of_a_new_shared_line_changes_nothing),
		cmocka_unit_test(test_kvm_failed_reroute_keeps_the_previous_table),
		cmocka_unit_test(test_kvm_gsi_limits_and_split_irqchip),
		cmocka_unit_test(test_kvm_table_beyond_kvm_limit_is_refused),
		cmocka_unit_test(test_device_reroute_updates_the_kvm_table_or_changes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

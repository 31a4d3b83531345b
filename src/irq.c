/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Interrupt sources: the manager, its groups and sources, and the callback backend.
 *
 * The manager keeps the record of routes: every source sits in one array sorted
 * by GSI (legacy lines may share a GSI, an MSI's GSI is its own), from which a
 * commit rebuilds the complete table that the backend installs. A change to the
 * record marks the manager dirty; the end of each configuration call (or of the
 * outermost batch) pushes a dirty record. Configuration is serialized by one
 * mutex per manager.
 *
 * The hot path (trigger, ack, mask, unmask) never takes that mutex. Each source
 * has one atomic state word (enabled, masked, pending, asserted, level) changed
 * by compare-and-swap, so that a trigger racing an unmask either sees the mask
 * and leaves a pending bit that unmask consumes, or sees no mask and delivers
 * itself: never lost, never twice. The message in force (what the backend got
 * at the last commit) is published to triggers through a sequence lock.
 *
 * Shared lines. The sources made from shares of a shared legacy line
 * (res.u.irq.shared) are level-triggered and drive one line object per GSI,
 * which holds the only backend state of that GSI (KVM: one irqfd with
 * resample) and an atomic count of the sharers that drive it (ST_ASSERTED).
 * The line is raised when a sharer starts driving it and lowered when the
 * last one stops; a guest EOI (resample) re-raises it while any sharer still
 * drives it. Whoever lowers the line re-reads the count after each delivery
 * and delivers again until what it delivered last matches it, so that an ack
 * racing another sharer's trigger never leaves the line low while driven.
 * Unshared legacy sources that happen to share a GSI stay independent, each
 * with its own backend state, as before.
 */
#include <vmres/irq.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/msi.h"
#include "util/search.h"

#define ST_ENABLED  0x01u
#define ST_MASKED   0x02u
#define ST_PENDING  0x04u
#define ST_ASSERTED 0x08u
#define ST_LEVEL    0x10u

struct vmres_irq_backend {
	const struct vmres_irq_backend_ops *ops;
	void *ctx;
	bool owned; /* by a manager */
};

/* A shared legacy line: the backend state of its GSI and who drives it. */
struct irq_line {
	uint32_t gsi;
	void *handle;	      /* the backend's state (KVM: irqfd + resample) */
	unsigned int sharers; /* sources on it; under the manager's mutex */
	atomic_uint drivers;  /* sharers with ST_ASSERTED */
};

struct vmres_irq_src {
	struct vmres_irq_mgr *mgr;
	uint32_t gsi;
	enum vmres_irq_kind kind;
	struct irq_line *line;	  /* a share of a shared line, else NULL */
	void *handle;		  /* the backend's per-source state (NULL if shared) */
	bool lower_line;	  /* group_free: it was its line's last driver */
	struct vmres_msi_msg msg; /* record; under mgr->lock */
	atomic_uint state;	  /* ST_* */
	atomic_uint seq;	  /* sequence lock over live_* */
	atomic_uint live_lo, live_hi, live_data;
};

struct vmres_irq_group {
	struct vmres_irq_mgr *mgr;
	struct vmres_irq_group *prev, *next;
	unsigned int count;
	struct vmres_irq_src src[];
};

struct vmres_irq_mgr {
	pthread_mutex_t lock;
	struct vmres_irq_backend *be;
	struct vmres_irq_group *groups; /* doubly linked list */
	size_t ngroups;
	struct vmres_irq_src **index; /* every source, sorted by GSI */
	size_t nindex, capindex;
	unsigned int depth; /* open batches */
	bool dirty;
	uint64_t commits;
};

/* ---- backends ---------------------------------------------------------- */

int vmres_irq_backend_new(const struct vmres_irq_backend_ops *ops, void *ctx,
			  struct vmres_irq_backend **out)
{
	struct vmres_irq_backend *be;

	if (!ops || !out)
		return VMRES_EINVAL;
	if (ops->version != VMRES_IRQ_BACKEND_OPS_VERSION)
		return VMRES_EVERSION;
	if (!ops->attach || !ops->detach || !ops->deliver)
		return VMRES_EINVAL;
	be = calloc(1, sizeof(*be));
	if (!be)
		return VMRES_ENOMEM;
	be->ops = ops;
	be->ctx = ctx;
	*out = be;
	return 0;
}

static void backend_destroy(struct vmres_irq_backend *be)
{
	if (be->ops->destroy)
		be->ops->destroy(be->ctx);
	free(be);
}

void vmres_irq_backend_free(struct vmres_irq_backend *be)
{
	if (!be || be->owned)
		return;
	backend_destroy(be);
}

struct callback_backend {
	vmres_irq_deliver_fn fn;
	void *ctx;
};

static int cb_attach(void *ctx, uint32_t gsi, enum vmres_irq_kind kind,
		     enum vmres_irq_trigger trigger, void **handle)
{
	(void)ctx;
	(void)gsi;
	(void)kind;
	(void)trigger;
	*handle = NULL;
	return 0;
}

static void cb_detach(void *ctx, void *handle)
{
	(void)ctx;
	(void)handle;
}

static int cb_deliver(void *ctx, void *handle, uint32_t gsi, enum vmres_irq_kind kind,
		      const struct vmres_msi_msg *msg, enum vmres_irq_signal signal)
{
	struct callback_backend *cb = ctx;

	(void)handle;
	cb->fn(cb->ctx, gsi, kind, msg, signal);
	return 0;
}

static void cb_destroy(void *ctx)
{
	free(ctx);
}

static const struct vmres_irq_backend_ops callback_ops = {
	.version = VMRES_IRQ_BACKEND_OPS_VERSION,
	.attach = cb_attach,
	.detach = cb_detach,
	.deliver = cb_deliver,
	.destroy = cb_destroy,
};

int vmres_irq_backend_callback_new(vmres_irq_deliver_fn fn, void *ctx,
				   struct vmres_irq_backend **out)
{
	struct callback_backend *cb;
	int r;

	if (!fn || !out)
		return VMRES_EINVAL;
	cb = malloc(sizeof(*cb));
	if (!cb)
		return VMRES_ENOMEM;
	cb->fn = fn;
	cb->ctx = ctx;
	r = vmres_irq_backend_new(&callback_ops, cb, out);
	if (r)
		free(cb);
	return r;
}

/* ---- the message in force: a sequence lock ----------------------------- */

/*
 * Writers (commits) are serialized by the manager's mutex. The message fields
 * are stored with release and loaded with acquire, so that a reader that sees
 * any new field also sees the odd sequence number stored before it, and
 * retries (no fences: ThreadSanitizer does not model them).
 */
static void live_store(struct vmres_irq_src *s, const struct vmres_msi_msg *m)
{
	unsigned int q = atomic_load_explicit(&s->seq, memory_order_relaxed);

	atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
	atomic_store_explicit(&s->live_lo, m->addr_lo, memory_order_release);
	atomic_store_explicit(&s->live_hi, m->addr_hi, memory_order_release);
	atomic_store_explicit(&s->live_data, m->data, memory_order_release);
	atomic_store_explicit(&s->seq, q + 2, memory_order_release);
}

static void live_load(struct vmres_irq_src *s, struct vmres_msi_msg *m)
{
	unsigned int q1, q2;

	do {
		q1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		m->addr_lo = atomic_load_explicit(&s->live_lo, memory_order_acquire);
		m->addr_hi = atomic_load_explicit(&s->live_hi, memory_order_acquire);
		m->data = atomic_load_explicit(&s->live_data, memory_order_acquire);
		q2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
	} while ((q1 & 1) || q1 != q2);
}

/* ---- the record of routes ---------------------------------------------- */

static bool gsi_before(const void *index, size_t i, const void *gsi)
{
	return ((struct vmres_irq_src *const *)index)[i]->gsi < *(const uint32_t *)gsi;
}

/* First index position whose source's GSI is >= gsi. */
static size_t index_lower_bound(const struct vmres_irq_mgr *m, uint32_t gsi)
{
	return vmres__lower_bound(m->index, 0, m->nindex, &gsi, gsi_before);
}

/* Some source on gsi, preferring an MSI (there is at most one then). */
static struct vmres_irq_src *index_find(const struct vmres_irq_mgr *m, uint32_t gsi)
{
	size_t i = index_lower_bound(m, gsi);

	return i < m->nindex && m->index[i]->gsi == gsi ? m->index[i] : NULL;
}

static bool index_has_gsi(const struct vmres_irq_mgr *m, uint32_t gsi)
{
	return index_find(m, gsi) != NULL;
}

/* Capacity must have been reserved. */
static void index_insert(struct vmres_irq_mgr *m, struct vmres_irq_src *s)
{
	size_t i = index_lower_bound(m, s->gsi);

	while (i < m->nindex && m->index[i]->gsi == s->gsi)
		i++;
	memmove(&m->index[i + 1], &m->index[i], (m->nindex - i) * sizeof(m->index[0]));
	m->index[i] = s;
	m->nindex++;
}

static void index_remove(struct vmres_irq_mgr *m, struct vmres_irq_src *s)
{
	for (size_t i = index_lower_bound(m, s->gsi); i < m->nindex; i++) {
		if (m->index[i] == s) {
			memmove(&m->index[i], &m->index[i + 1],
				(m->nindex - i - 1) * sizeof(m->index[0]));
			m->nindex--;
			return;
		}
	}
}

static int index_reserve(struct vmres_irq_mgr *m, size_t extra)
{
	size_t want = m->nindex + extra, cap;
	struct vmres_irq_src **p;

	if (want <= m->capindex)
		return 0;
	cap = m->capindex ? m->capindex : 16;
	while (cap < want)
		cap *= 2;
	p = realloc(m->index, cap * sizeof(*p));
	if (!p)
		return VMRES_ENOMEM;
	m->index = p;
	m->capindex = cap;
	return 0;
}

/* The record as routes, one per GSI; routes has room for m->nindex entries. */
static size_t build_routes(const struct vmres_irq_mgr *m, struct vmres_irq_route *routes)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nindex; i++) {
		const struct vmres_irq_src *s = m->index[i];

		if (n && routes[n - 1].gsi == s->gsi) {
			if (s->kind == VMRES_IRQ_MSI) {
				routes[n - 1].kind = VMRES_IRQ_MSI;
				routes[n - 1].msg = s->msg;
			}
			continue;
		}
		routes[n].gsi = s->gsi;
		routes[n].kind = s->kind;
		if (s->kind == VMRES_IRQ_MSI)
			routes[n].msg = s->msg;
		else
			memset(&routes[n].msg, 0, sizeof(routes[n].msg));
		n++;
	}
	return n;
}

/* Push the whole record to the backend; on error nothing changed. */
static int push(struct vmres_irq_mgr *m)
{
	const struct vmres_irq_backend_ops *ops = m->be->ops;
	struct vmres_irq_route *routes = NULL;
	size_t n = 0;
	int r = 0, saved_errno;

	if (ops->commit) {
		if (m->nindex) {
			routes = malloc(m->nindex * sizeof(*routes));
			if (!routes)
				return VMRES_ENOMEM;
			n = build_routes(m, routes);
		}
		r = ops->commit(m->be->ctx, routes, n);
		saved_errno = errno;
		free(routes);
		if (r) {
			errno = saved_errno;
			return r;
		}
	}
	for (size_t i = 0; i < m->nindex; i++)
		if (m->index[i]->kind == VMRES_IRQ_MSI)
			live_store(m->index[i], &m->index[i]->msg);
	m->dirty = false;
	m->commits++;
	return 0;
}

static int maybe_push(struct vmres_irq_mgr *m)
{
	return m->depth == 0 && m->dirty ? push(m) : 0;
}

/* ---- manager ----------------------------------------------------------- */

int vmres_irq_mgr_new(struct vmres_irq_backend *be, struct vmres_irq_mgr **out)
{
	struct vmres_irq_mgr *m;

	if (!be || !out)
		return VMRES_EINVAL;
	if (be->owned)
		return VMRES_EEXIST;
	m = calloc(1, sizeof(*m));
	if (!m)
		return VMRES_ENOMEM;
	if (pthread_mutex_init(&m->lock, NULL)) {
		free(m);
		return VMRES_ENOMEM;
	}
	m->be = be;
	be->owned = true;
	*out = m;
	return 0;
}

/* A sharer leaves its line; the last one detaches and frees it. */
static void line_put(struct vmres_irq_mgr *m, struct irq_line *l)
{
	if (--l->sharers)
		return;
	m->be->ops->detach(m->be->ctx, l->handle);
	free(l);
}

static void group_detach_all(struct vmres_irq_group *g, unsigned int count)
{
	struct vmres_irq_backend *be = g->mgr->be;

	for (unsigned int i = count; i-- > 0;) {
		if (g->src[i].line)
			line_put(g->mgr, g->src[i].line);
		else
			be->ops->detach(be->ctx, g->src[i].handle);
	}
}

void vmres_irq_mgr_free(struct vmres_irq_mgr *m)
{
	if (!m)
		return;
	while (m->groups) {
		struct vmres_irq_group *g = m->groups;

		m->groups = g->next;
		group_detach_all(g, g->count);
		free(g);
	}
	free(m->index);
	pthread_mutex_destroy(&m->lock);
	backend_destroy(m->be);
	free(m);
}

int vmres_irq_mgr_begin_update(struct vmres_irq_mgr *m)
{
	int r = 0;

	if (!m)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->depth == UINT_MAX)
		r = VMRES_ESTATE;
	else
		m->depth++;
	pthread_mutex_unlock(&m->lock);
	return r;
}

int vmres_irq_mgr_commit(struct vmres_irq_mgr *m)
{
	int r = 0;

	if (!m)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->depth == 0) {
		r = VMRES_ESTATE;
	} else if (m->depth > 1) {
		m->depth--;
	} else if (!m->dirty || (r = push(m)) == 0) {
		m->depth = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int vmres_irq_mgr_get_info(struct vmres_irq_mgr *m, struct vmres_irq_mgr_info *out)
{
	if (!m || !out)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	out->groups = m->ngroups;
	out->sources = m->nindex;
	out->batch_depth = m->depth;
	out->dirty = m->dirty;
	out->commits = m->commits;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vmres_irq_mgr_get_routes(struct vmres_irq_mgr *m, struct vmres_irq_route *routes, size_t cap,
			     size_t *n)
{
	struct vmres_irq_route *all = NULL;
	size_t nr = 0;

	if (!m || !n || (!routes && cap))
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->nindex) {
		all = malloc(m->nindex * sizeof(*all));
		if (!all) {
			pthread_mutex_unlock(&m->lock);
			return VMRES_ENOMEM;
		}
		nr = build_routes(m, all);
	}
	pthread_mutex_unlock(&m->lock);
	if (nr && cap)
		memcpy(routes, all, (nr < cap ? nr : cap) * sizeof(*all));
	free(all);
	*n = nr;
	return 0;
}

/* Set an MSI source's message in the record and push; undone on error. */
static int configure_msi_locked(struct vmres_irq_src *s, const struct vmres_msi_msg *msg)
{
	struct vmres_irq_mgr *m = s->mgr;
	struct vmres_msi_msg old = s->msg;
	bool was_dirty = m->dirty;
	int r;

	if (vmres__msi_msg_equal(&old, msg))
		return 0;
	s->msg = *msg;
	m->dirty = true;
	r = maybe_push(m);
	if (r) {
		s->msg = old;
		m->dirty = was_dirty;
	}
	return r;
}

int vmres_irq_mgr_msi_notify(void *irq_mgr, uint32_t instance, unsigned int res_index, uint32_t gsi,
			     const struct vmres_msi_msg *msg)
{
	struct vmres_irq_mgr *m = irq_mgr;
	struct vmres_irq_src *s;
	int r;

	(void)instance;
	(void)res_index;
	if (!m || !msg)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	s = index_find(m, gsi);
	if (!s || s->kind != VMRES_IRQ_MSI)
		r = VMRES_ENOENT;
	else
		r = configure_msi_locked(s, msg);
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- groups ------------------------------------------------------------ */

static int line_lower(const struct vmres_irq_mgr *m, struct irq_line *l);

static uint32_t res_gsi(const struct vmres_resource *r)
{
	return r->kind == VMRES_RES_MSI ? r->u.msi.gsi : r->u.irq.gsi;
}

static bool res_shared(const struct vmres_resource *r)
{
	return r->kind == VMRES_RES_IRQ && r->u.irq.shared;
}

/* Check kinds and GSI conflicts, within res and against the record: an MSI's
 * GSI is its own, and a shared line's GSI has only sharers. */
static int group_validate(const struct vmres_irq_mgr *m, const struct vmres_resource *res, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (res[i].kind != VMRES_RES_IRQ && res[i].kind != VMRES_RES_MSI)
			return VMRES_EKIND;
	for (size_t i = 0; i < n; i++) {
		uint32_t gsi = res_gsi(&res[i]);
		struct vmres_irq_src *old = index_find(m, gsi);

		if (old && (res[i].kind == VMRES_RES_MSI || old->kind == VMRES_IRQ_MSI ||
			    res_shared(&res[i]) != (old->line != NULL)))
			return VMRES_EEXIST;
		for (size_t j = 0; j < i; j++)
			if (res_gsi(&res[j]) == gsi &&
			    (res[i].kind == VMRES_RES_MSI || res[j].kind == VMRES_RES_MSI ||
			     res_shared(&res[i]) != res_shared(&res[j])))
				return VMRES_EEXIST;
	}
	return 0;
}

/* The line a new share of @p gsi joins: one of the record's, or one made
 * earlier in the same group (the first @p made sources of @p g), or a new one
 * (its backend state attached here). */
static int line_get(struct vmres_irq_mgr *m, struct vmres_irq_group *g, unsigned int made,
		    uint32_t gsi, struct irq_line **out)
{
	struct vmres_irq_src *old = index_find(m, gsi);
	struct irq_line *l = old ? old->line : NULL;
	int r;

	for (unsigned int i = 0; !l && i < made; i++)
		if (g->src[i].line && g->src[i].gsi == gsi)
			l = g->src[i].line;
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l)
			return VMRES_ENOMEM;
		l->gsi = gsi;
		atomic_init(&l->drivers, 0);
		r = m->be->ops->attach(m->be->ctx, gsi, VMRES_IRQ_LEGACY, VMRES_IRQ_LEVEL,
				       &l->handle);
		if (r) {
			free(l);
			return r;
		}
	}
	l->sharers++;
	*out = l;
	return 0;
}

int vmres_irq_group_new(struct vmres_irq_mgr *m, const struct vmres_resource *res, size_t n,
			struct vmres_irq_group **out)
{
	struct vmres_irq_group *g;
	bool was_dirty;
	unsigned int i;
	int r, saved_errno;

	if (!m || !res || !out)
		return VMRES_EINVAL;
	if (n == 0)
		return VMRES_ESIZE;
	if (n > UINT_MAX || n > (SIZE_MAX - sizeof(*g)) / sizeof(g->src[0]))
		return VMRES_ENOMEM;
	pthread_mutex_lock(&m->lock);
	r = group_validate(m, res, n);
	if (r)
		goto out_unlock;
	r = index_reserve(m, n);
	if (r)
		goto out_unlock;
	g = calloc(1, sizeof(*g) + n * sizeof(g->src[0]));
	if (!g) {
		r = VMRES_ENOMEM;
		goto out_unlock;
	}
	g->mgr = m;
	g->count = (unsigned int)n;
	for (i = 0; i < n; i++) {
		struct vmres_irq_src *s = &g->src[i];

		s->mgr = m;
		s->gsi = res_gsi(&res[i]);
		s->kind = res[i].kind == VMRES_RES_MSI ? VMRES_IRQ_MSI : VMRES_IRQ_LEGACY;
		if (s->kind == VMRES_IRQ_MSI)
			s->msg = res[i].u.msi.msg;
		atomic_init(&s->state, 0);
		atomic_init(&s->seq, 0);
		atomic_init(&s->live_lo, s->msg.addr_lo);
		atomic_init(&s->live_hi, s->msg.addr_hi);
		atomic_init(&s->live_data, s->msg.data);
		if (res_shared(&res[i])) {
			/* A share: level-triggered for its whole life, on its line. */
			r = line_get(m, g, i, s->gsi, &s->line);
			atomic_init(&s->state, ST_LEVEL);
		} else {
			r = m->be->ops->attach(m->be->ctx, s->gsi, s->kind, VMRES_IRQ_EDGE,
					       &s->handle);
		}
		if (r)
			goto out_detach;
	}
	was_dirty = m->dirty;
	for (i = 0; i < n; i++) {
		if (!index_has_gsi(m, g->src[i].gsi) || g->src[i].kind == VMRES_IRQ_MSI)
			m->dirty = true;
		index_insert(m, &g->src[i]);
	}
	r = maybe_push(m);
	if (r) {
		saved_errno = errno;
		for (i = 0; i < n; i++)
			index_remove(m, &g->src[i]);
		m->dirty = was_dirty;
		group_detach_all(g, g->count);
		free(g);
		errno = saved_errno;
		goto out_unlock;
	}
	g->next = m->groups;
	if (m->groups)
		m->groups->prev = g;
	m->groups = g;
	m->ngroups++;
	*out = g;
	pthread_mutex_unlock(&m->lock);
	return 0;

out_detach:
	saved_errno = errno;
	group_detach_all(g, i);
	free(g);
	errno = saved_errno;
out_unlock:
	pthread_mutex_unlock(&m->lock);
	return r;
}

void vmres_irq_group_free(struct vmres_irq_group *g)
{
	struct vmres_irq_mgr *m;
	bool lower = false;

	if (!g)
		return;
	m = g->mgr;
	pthread_mutex_lock(&m->lock);
	for (unsigned int i = 0; i < g->count; i++) {
		struct vmres_irq_src *s = &g->src[i];

		index_remove(m, s);
		if (s->kind == VMRES_IRQ_MSI || !index_has_gsi(m, s->gsi))
			m->dirty = true;
		/* A share that drives its line stops; the last driver lowers it. */
		if (s->line &&
		    (atomic_fetch_and_explicit(&s->state, ~ST_ASSERTED, memory_order_acq_rel) &
		     ST_ASSERTED)) {
			if (atomic_fetch_sub_explicit(&s->line->drivers, 1, memory_order_acq_rel) ==
			    1)
				s->lower_line = lower = true;
		}
	}
	if (g->prev)
		g->prev->next = g->next;
	else
		m->groups = g->next;
	if (g->next)
		g->next->prev = g->prev;
	m->ngroups--;
	if (lower) {
		/* Deliveries are made without the mutex; the lines stay attached
		 * (this group's shares still count in their sharers) meanwhile. */
		pthread_mutex_unlock(&m->lock);
		for (unsigned int i = 0; i < g->count; i++)
			if (g->src[i].lower_line)
				(void)line_lower(m, g->src[i].line);
		pthread_mutex_lock(&m->lock);
	}
	group_detach_all(g, g->count);
	/* A failed push leaves the manager dirty: the next commit retries. */
	(void)maybe_push(m);
	pthread_mutex_unlock(&m->lock);
	free(g);
}

unsigned int vmres_irq_group_count(const struct vmres_irq_group *g)
{
	return g ? g->count : 0;
}

int vmres_irq_group_src(struct vmres_irq_group *g, unsigned int index, struct vmres_irq_src **out)
{
	if (!g || !out)
		return VMRES_EINVAL;
	if (index >= g->count)
		return VMRES_ERANGE;
	*out = &g->src[index];
	return 0;
}

/* ---- sources ----------------------------------------------------------- */

static int line_deliver(const struct vmres_irq_mgr *m, struct irq_line *l,
			enum vmres_irq_signal signal)
{
	return m->be->ops->deliver(m->be->ctx, l->handle, l->gsi, VMRES_IRQ_LEGACY, NULL, signal);
}

/*
 * Lower @p l (its last driver stopped, or the guest EOId it), then deliver
 * again until what was delivered last matches the drivers counted after it:
 * a sharer that started driving meanwhile delivered ASSERT itself, but
 * perhaps before this DEASSERT reached the backend.
 */
static int line_lower(const struct vmres_irq_mgr *m, struct irq_line *l)
{
	bool raised = false;
	int r = line_deliver(m, l, VMRES_IRQ_SIGNAL_DEASSERT);

	while (!r) {
		bool driven = atomic_load_explicit(&l->drivers, memory_order_acquire) != 0;

		if (driven == raised)
			break;
		raised = driven;
		r = line_deliver(m, l,
				 driven ? VMRES_IRQ_SIGNAL_ASSERT : VMRES_IRQ_SIGNAL_DEASSERT);
	}
	return r;
}

/* A share starts driving its line (if it did not already) and raises it. */
static int line_drive(struct vmres_irq_src *s)
{
	unsigned int old = atomic_fetch_or_explicit(&s->state, ST_ASSERTED, memory_order_acq_rel);

	if (!(old & ST_ASSERTED))
		atomic_fetch_add_explicit(&s->line->drivers, 1, memory_order_acq_rel);
	/* Always: KVM may have lowered the line at an EOI not yet resampled. */
	return line_deliver(s->mgr, s->line, VMRES_IRQ_SIGNAL_ASSERT);
}

static int deliver(struct vmres_irq_src *s, enum vmres_irq_signal signal)
{
	const struct vmres_irq_backend *be = s->mgr->be;
	struct vmres_msi_msg msg;

	if (s->kind != VMRES_IRQ_MSI)
		return be->ops->deliver(be->ctx, s->handle, s->gsi, s->kind, NULL, signal);
	live_load(s, &msg);
	return be->ops->deliver(be->ctx, s->handle, s->gsi, s->kind, &msg, signal);
}

int vmres_irq_src_enable(struct vmres_irq_src *s)
{
	if (!s)
		return VMRES_EINVAL;
	atomic_fetch_or_explicit(&s->state, ST_ENABLED, memory_order_acq_rel);
	return 0;
}

int vmres_irq_src_disable(struct vmres_irq_src *s)
{
	if (!s)
		return VMRES_EINVAL;
	atomic_fetch_and_explicit(&s->state, ~(ST_ENABLED | ST_PENDING), memory_order_acq_rel);
	return 0;
}

int vmres_irq_src_mask(struct vmres_irq_src *s)
{
	if (!s)
		return VMRES_EINVAL;
	atomic_fetch_or_explicit(&s->state, ST_MASKED, memory_order_acq_rel);
	return 0;
}

int vmres_irq_src_unmask(struct vmres_irq_src *s)
{
	unsigned int old;
	int r;

	if (!s)
		return VMRES_EINVAL;
	old = atomic_fetch_and_explicit(&s->state, ~(ST_MASKED | ST_PENDING), memory_order_acq_rel);
	if (!(old & ST_PENDING) || !(old & ST_ENABLED))
		return 0;
	if (s->line) {
		r = line_drive(s);
		if (r)
			atomic_fetch_or_explicit(&s->state, ST_MASKED | ST_PENDING,
						 memory_order_acq_rel);
		return r;
	}
	if (old & ST_LEVEL)
		atomic_fetch_or_explicit(&s->state, ST_ASSERTED, memory_order_acq_rel);
	r = deliver(s, old & ST_LEVEL ? VMRES_IRQ_SIGNAL_ASSERT : VMRES_IRQ_SIGNAL_EDGE);
	if (r)
		atomic_fetch_or_explicit(&s->state, ST_MASKED | ST_PENDING, memory_order_acq_rel);
	return r;
}

int vmres_irq_src_trigger(struct vmres_irq_src *s)
{
	unsigned int st, next;

	if (!s)
		return VMRES_EINVAL;
	st = atomic_load_explicit(&s->state, memory_order_acquire);
	for (;;) {
		if (!(st & ST_ENABLED))
			return VMRES_ESTATE;
		if (!(st & ST_MASKED))
			break;
		/* A share drives its line only once delivered: pending alone. */
		next = st | ST_PENDING | (st & ST_LEVEL && !s->line ? ST_ASSERTED : 0);
		if (next == st)
			return 0;
		if (atomic_compare_exchange_weak_explicit(
			    &s->state, &st, next, memory_order_acq_rel, memory_order_acquire))
			return 0;
	}
	if (!(st & ST_LEVEL))
		return deliver(s, VMRES_IRQ_SIGNAL_EDGE);
	if (s->line)
		return line_drive(s);
	if (!(st & ST_ASSERTED))
		atomic_fetch_or_explicit(&s->state, ST_ASSERTED, memory_order_acq_rel);
	/* Always re-raise: KVM may have lowered the line at EOI before the ack. */
	return deliver(s, VMRES_IRQ_SIGNAL_ASSERT);
}

int vmres_irq_src_ack(struct vmres_irq_src *s)
{
	unsigned int st;

	if (!s)
		return VMRES_EINVAL;
	st = atomic_load_explicit(&s->state, memory_order_acquire);
	if (!(st & ST_LEVEL))
		return VMRES_ENOTSUP;
	st = atomic_fetch_and_explicit(&s->state, ~(ST_ASSERTED | ST_PENDING),
				       memory_order_acq_rel);
	if (!s->line)
		return deliver(s, VMRES_IRQ_SIGNAL_DEASSERT);
	/* Only the last driver lowers a shared line. */
	if ((st & ST_ASSERTED) &&
	    atomic_fetch_sub_explicit(&s->line->drivers, 1, memory_order_acq_rel) == 1)
		return line_lower(s->mgr, s->line);
	return 0;
}

int vmres_irq_src_resample(struct vmres_irq_src *s)
{
	unsigned int st;
	int r;

	if (!s)
		return VMRES_EINVAL;
	st = atomic_load_explicit(&s->state, memory_order_acquire);
	if (!(st & ST_LEVEL))
		return VMRES_ENOTSUP;
	if (s->line)
		return line_lower(s->mgr, s->line);
	r = deliver(s, VMRES_IRQ_SIGNAL_DEASSERT);
	if (!r && (atomic_load_explicit(&s->state, memory_order_acquire) & ST_ASSERTED))
		r = deliver(s, VMRES_IRQ_SIGNAL_ASSERT);
	return r;
}

static int configure_legacy_locked(struct vmres_irq_src *s, enum vmres_irq_trigger trigger)
{
	const struct vmres_irq_backend *be = s->mgr->be;
	unsigned int st = atomic_load_explicit(&s->state, memory_order_acquire);
	void *handle, *old;
	int r;

	if ((trigger == VMRES_IRQ_LEVEL) == !!(st & ST_LEVEL))
		return 0;
	if (s->line)
		return VMRES_EKIND; /* a shared line is level-triggered: no edges to share */
	r = be->ops->attach(be->ctx, s->gsi, s->kind, trigger, &handle);
	if (r)
		return r;
	old = s->handle;
	s->handle = handle;
	if (trigger == VMRES_IRQ_LEVEL)
		atomic_fetch_or_explicit(&s->state, ST_LEVEL, memory_order_acq_rel);
	else
		atomic_fetch_and_explicit(&s->state, ~(ST_LEVEL | ST_ASSERTED),
					  memory_order_acq_rel);
	be->ops->detach(be->ctx, old);
	return 0;
}

int vmres_irq_src_configure(struct vmres_irq_src *s, const struct vmres_irq_config *c)
{
	int r;

	if (!s || !c)
		return VMRES_EINVAL;
	if (c->kind != VMRES_IRQ_LEGACY && c->kind != VMRES_IRQ_MSI)
		return VMRES_EINVAL;
	if (c->trigger != VMRES_IRQ_EDGE && c->trigger != VMRES_IRQ_LEVEL)
		return VMRES_EINVAL;
	if (c->kind == VMRES_IRQ_MSI && c->trigger != VMRES_IRQ_EDGE)
		return VMRES_EINVAL;
	if (c->kind != s->kind)
		return VMRES_EKIND;
	pthread_mutex_lock(&s->mgr->lock);
	if (s->kind == VMRES_IRQ_MSI)
		r = configure_msi_locked(s, &c->msg);
	else
		r = configure_legacy_locked(s, c->trigger);
	pthread_mutex_unlock(&s->mgr->lock);
	return r;
}

static void src_state_locked(struct vmres_irq_src *s, struct vmres_irq_src_state *out)
{
	unsigned int st = atomic_load_explicit(&s->state, memory_order_acquire);

	memset(out, 0, sizeof(*out));
	out->gsi = s->gsi;
	out->config.kind = s->kind;
	out->config.trigger = st & ST_LEVEL ? VMRES_IRQ_LEVEL : VMRES_IRQ_EDGE;
	if (s->kind == VMRES_IRQ_MSI) {
		out->config.msg = s->msg;
		live_load(s, &out->live_msg);
	}
	out->enabled = st & ST_ENABLED;
	out->masked = st & ST_MASKED;
	out->pending = st & ST_PENDING;
	out->asserted = st & ST_ASSERTED;
}

int vmres_irq_src_get_state(struct vmres_irq_src *s, struct vmres_irq_src_state *out)
{
	if (!s || !out)
		return VMRES_EINVAL;
	pthread_mutex_lock(&s->mgr->lock);
	src_state_locked(s, out);
	pthread_mutex_unlock(&s->mgr->lock);
	return 0;
}

int vmres_irq_src_get_fd(struct vmres_irq_src *s, enum vmres_irq_fd which, int *fd)
{
	const struct vmres_irq_backend *be;
	int r;

	if (!s || !fd)
		return VMRES_EINVAL;
	if (which != VMRES_IRQ_FD_TRIGGER && which != VMRES_IRQ_FD_RESAMPLE)
		return VMRES_EINVAL;
	be = s->mgr->be;
	if (!be->ops->get_fd)
		return VMRES_ENOTSUP;
	pthread_mutex_lock(&s->mgr->lock);
	r = be->ops->get_fd(be->ctx, s->line ? s->line->handle : s->handle, which, fd);
	pthread_mutex_unlock(&s->mgr->lock);
	return r;
}

/* ---- state: what the guest programmed, saved and loaded ------------------ */

int vmres_irq_mgr_save_state(struct vmres_irq_mgr *m, struct vmres_irq_src_state *out, size_t cap,
			     size_t *n)
{
	int r = 0;

	if (!m || !n || (!out && cap))
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->depth)
		r = VMRES_ESTATE;
	for (size_t i = 0; !r && i < m->nindex && i < cap; i++)
		src_state_locked(m->index[i], &out[i]);
	if (!r)
		*n = m->nindex;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* Entry @p i of a load against the manager's source @p s. */
static int load_check(const struct vmres_irq_src *s, const struct vmres_irq_src_state *st)
{
	const struct vmres_irq_config *c = &st->config;

	if (c->trigger != VMRES_IRQ_EDGE && c->trigger != VMRES_IRQ_LEVEL)
		return VMRES_EINVAL;
	if (c->kind == VMRES_IRQ_MSI && c->trigger != VMRES_IRQ_EDGE)
		return VMRES_EINVAL;
	if (st->asserted && c->trigger != VMRES_IRQ_LEVEL)
		return VMRES_EINVAL;
	if (st->gsi != s->gsi)
		return VMRES_ENOENT;
	if (c->kind != s->kind || (s->line && c->trigger != VMRES_IRQ_LEVEL))
		return VMRES_EKIND;
	return 0;
}

int vmres_irq_mgr_load_state(struct vmres_irq_mgr *m, const struct vmres_irq_src_state *st,
			     size_t n)
{
	const struct vmres_irq_backend *be;
	struct vmres_msi_msg *old_msg = NULL;
	void **handles = NULL;
	bool was_dirty;
	size_t i, attached = 0;
	int r = 0, saved_errno;

	if (!m || (!st && n))
		return VMRES_EINVAL;
	be = m->be;
	pthread_mutex_lock(&m->lock);
	if (m->depth)
		r = VMRES_ESTATE;
	else if (n != m->nindex)
		r = VMRES_ESIZE;
	for (i = 0; !r && i < n; i++)
		r = load_check(m->index[i], &st[i]);
	if (r || !n)
		goto out;
	handles = calloc(n, sizeof(*handles));
	old_msg = calloc(n, sizeof(*old_msg));
	if (!handles || !old_msg) {
		r = VMRES_ENOMEM;
		goto out;
	}
	/* New backend state for every legacy line whose trigger mode changes (KVM:
	 * an irqfd with or without resample), before anything is given up. */
	for (attached = 0; attached < n; attached++) {
		struct vmres_irq_src *s = m->index[attached];
		unsigned int word = atomic_load_explicit(&s->state, memory_order_acquire);
		bool level = st[attached].config.trigger == VMRES_IRQ_LEVEL;

		if (s->kind != VMRES_IRQ_LEGACY || level == !!(word & ST_LEVEL))
			continue;
		r = be->ops->attach(be->ctx, s->gsi, s->kind, st[attached].config.trigger,
				    &handles[attached]);
		if (r)
			goto undo_attach;
	}
	/* The messages, pushed in one commit (KVM_SET_GSI_ROUTING). */
	was_dirty = m->dirty;
	for (i = 0; i < n; i++) {
		struct vmres_irq_src *s = m->index[i];

		old_msg[i] = s->msg;
		if (s->kind == VMRES_IRQ_MSI && !vmres__msi_msg_equal(&s->msg, &st[i].config.msg)) {
			s->msg = st[i].config.msg;
			m->dirty = true;
		}
	}
	r = maybe_push(m);
	if (r) {
		for (i = 0; i < n; i++)
			m->index[i]->msg = old_msg[i];
		m->dirty = was_dirty;
		goto undo_attach;
	}
	/* From here nothing can fail. */
	for (i = 0; i < n; i++) {
		struct vmres_irq_src *s = m->index[i];
		bool level = st[i].config.trigger == VMRES_IRQ_LEVEL;
		unsigned int word = (st[i].enabled ? ST_ENABLED : 0) |
				    (st[i].masked ? ST_MASKED : 0) |
				    (st[i].pending ? ST_PENDING : 0) |
				    (st[i].asserted ? ST_ASSERTED : 0) | (level ? ST_LEVEL : 0);

		if (handles[i]) {
			void *old = s->handle;

			s->handle = handles[i];
			be->ops->detach(be->ctx, old);
		}
		if (s->line)
			atomic_store_explicit(&s->line->drivers, 0, memory_order_relaxed);
		atomic_store_explicit(&s->state, word, memory_order_release);
	}
	/* Each shared line is driven by the shares loaded as asserted. */
	for (i = 0; i < n; i++)
		if (m->index[i]->line && st[i].asserted)
			atomic_fetch_add_explicit(&m->index[i]->line->drivers, 1,
						  memory_order_acq_rel);
	goto out;

undo_attach:
	saved_errno = errno;
	for (i = 0; i < attached; i++)
		if (handles[i])
			be->ops->detach(be->ctx, handles[i]);
	errno = saved_errno;
out:
	pthread_mutex_unlock(&m->lock);
	free(handles);
	free(old_msg);
	return r;
}

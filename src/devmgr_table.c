/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device manager's table seen from outside: lookups by id and by address,
 * iteration and the text and JSON dumps. Everything here takes the writer mutex
 * only long enough to read or copy the current state; callbacks and output run
 * on a private copy, so they may call the manager's writers.
 */
#include "common_int.h"
#include "devmgr_int.h"
#include "util/json.h"
#include "util/restext.h"

#include <inttypes.h>
#include <jansson.h>
#include <string.h>

/* ---- queries ---- */

static void fill_info(const struct dm_view *v, struct vmres_devmgr_info *info)
{
	info->instance = v->instance;
	info->parent = v->parent;
	memcpy(info->name, v->rec->name, sizeof(info->name));
	info->opaque = v->rec->dev.opaque;
	info->owner = v->rec->dev.owner;
	info->n_res = v->n_res;
}

int vmres_devmgr_get(struct vmres_devmgr *m, uint32_t instance, struct vmres_devmgr_info *info,
		     struct vmres_resource *res, bool *mapped, size_t cap)
{
	const struct dm_view *v;
	size_t idx;

	if (!m || (!res && cap))
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	idx = find_index(m->state, instance);
	if (idx == SIZE_MAX) {
		pthread_mutex_unlock(&m->lock);
		return VMRES_EDEVICE;
	}
	v = m->state->views[idx];
	if (info)
		fill_info(v, info);
	for (size_t i = 0; i < v->n_res && i < cap; i++) {
		res[i] = v->res[i];
		if (mapped)
			mapped[i] = v->mapped[i];
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vmres_devmgr_find(struct vmres_devmgr *m, enum vmres_space space, uint64_t addr,
		      uint32_t *instance, unsigned int *res_index, uint64_t *offset)
{
	const struct vmres__bus_entry *e;
	int s = space_index(space);
	uint64_t off;

	if (!m || !instance || s < 0)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	e = vmres__bus_find(m->state->bus[s], &m->state->delta[s], addr, 1, &off);
	if (e) {
		*instance = caa_container_of(e->dev, struct dm_rec, dev)->instance;
		if (res_index)
			*res_index = e->range;
		if (offset)
			*offset = off;
	}
	pthread_mutex_unlock(&m->lock);
	return e ? 0 : VMRES_ENOENT;
}

/* A private deep copy of the table, taken under the lock, for callbacks and dumps
 * that run outside it (a device removed meanwhile may be released: the copy holds
 * its name and opaque pointer, never its record). */
struct table_copy {
	size_t n;
	struct vmres_devmgr_info *info;
	struct dm_view **views;
};

static void table_free(struct table_copy *t)
{
	for (size_t i = 0; t->views && i < t->n; i++)
		view_free(t->views[i]);
	free(t->views);
	free(t->info);
	t->views = NULL;
	t->info = NULL;
	t->n = 0;
}

static int table_copy(struct vmres_devmgr *m, struct table_copy *t)
{
	const struct dm_state *st;
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	st = m->state;
	t->info = malloc((st->n + 1) * sizeof(*t->info));
	t->views = malloc((st->n + 1) * sizeof(*t->views));
	for (; t->info && t->views && n < st->n; n++) {
		t->views[n] = vmres__dm_view_copy(st->views[n]);
		if (!t->views[n])
			break;
		fill_info(st->views[n], &t->info[n]);
		t->views[n]->rec = NULL;
	}
	t->n = n;
	if (!t->info || !t->views || n != st->n) {
		pthread_mutex_unlock(&m->lock);
		table_free(t);
		return VMRES_ENOMEM;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vmres_devmgr_foreach(struct vmres_devmgr *m, vmres_devmgr_fn fn, void *ctx)
{
	struct table_copy t;
	int rc;

	if (!m || !fn)
		return VMRES_EINVAL;
	rc = table_copy(m, &t);
	for (size_t i = 0; rc == 0 && i < t.n; i++)
		rc = fn(ctx, &t.info[i], t.views[i]->res, t.views[i]->mapped);
	table_free(&t);
	return rc;
}

/* ---- dumps ---- */

/* Indices of the table in tree order (each device followed by its subtree) and
 * each one's depth. Parents have lower ids than their children, so one pass over
 * the table in id order, inserting each child after its parent's subtree, works;
 * done with an explicit child list to stay O(d log d). */
struct dev_tree {
	size_t *order;
	unsigned int *depth;
};

static bool info_before(const void *info, size_t i, const void *instance)
{
	return ((const struct vmres_devmgr_info *)info)[i].instance < *(const uint32_t *)instance;
}

static size_t tree_find(const struct table_copy *t, uint32_t instance)
{
	return vmres__lower_bound(t->info, 0, t->n, &instance, info_before);
}

static int dev_tree_build(const struct table_copy *t, struct dev_tree *tr)
{
	size_t *first = malloc((t->n + 1) * sizeof(size_t));
	size_t *next = malloc((t->n + 1) * sizeof(size_t));
	size_t *stack = malloc((t->n + 1) * sizeof(size_t));
	size_t *last = malloc((t->n + 1) * sizeof(size_t));
	size_t k = 0, top = 0, roots = SIZE_MAX, roots_last = SIZE_MAX;
	int rc = VMRES_ENOMEM;

	tr->order = malloc((t->n + 1) * sizeof(size_t));
	tr->depth = malloc((t->n + 1) * sizeof(unsigned int));
	if (!first || !next || !stack || !last || !tr->order || !tr->depth)
		goto out;
	for (size_t i = 0; i < t->n; i++)
		first[i] = next[i] = last[i] = SIZE_MAX;
	/* Child lists in id order. */
	for (size_t i = 0; i < t->n; i++) {
		size_t p = t->info[i].parent ? tree_find(t, t->info[i].parent) : SIZE_MAX;
		size_t *head = p == SIZE_MAX ? &roots : &first[p];
		size_t *tail = p == SIZE_MAX ? &roots_last : &last[p];

		if (*head == SIZE_MAX)
			*head = i;
		else
			next[*tail] = i;
		*tail = i;
	}
	/* Depth-first, pre-order. */
	for (size_t r = roots; r != SIZE_MAX; r = next[r]) {
		stack[top++] = r;
		tr->depth[r] = 0;
		while (top) {
			size_t i = stack[--top];
			size_t kids = 0;

			tr->order[k++] = i;
			for (size_t c = first[i]; c != SIZE_MAX; c = next[c])
				kids++;
			/* Push children in reverse so the lowest id comes out first. */
			top += kids;
			size_t slot = top;
			for (size_t c = first[i]; c != SIZE_MAX; c = next[c]) {
				stack[--slot] = c;
				tr->depth[c] = tr->depth[i] + 1;
			}
		}
	}
	rc = 0;
out:
	free(first);
	free(next);
	free(stack);
	free(last);
	if (rc) {
		free(tr->order);
		free(tr->depth);
	}
	return rc;
}

/* A copy of @p m's table and its tree order, for a dump. */
struct dump_table {
	struct table_copy t;
	struct dev_tree tr;
};

static int dump_table_get(struct vmres_devmgr *m, struct dump_table *d)
{
	int rc = m ? table_copy(m, &d->t) : VMRES_EINVAL;

	if (!rc && (rc = dev_tree_build(&d->t, &d->tr)) != 0)
		table_free(&d->t);
	return rc;
}

static void dump_table_free(struct dump_table *d)
{
	free(d->tr.order);
	free(d->tr.depth);
	table_free(&d->t);
}

/* The k-th device in tree order: its index, its depth as dumped (at most
 * VMRES_DEVMGR_DUMP_DEPTH) and whether it is deeper (flattened). */
static size_t dev_tree_at(const struct dev_tree *tr, size_t k, unsigned int *depth, bool *flat)
{
	size_t i = tr->order[k];

	*flat = tr->depth[i] > VMRES_DEVMGR_DUMP_DEPTH;
	*depth = *flat ? VMRES_DEVMGR_DUMP_DEPTH : tr->depth[i];
	return i;
}

/* One resource of the dump: the number named "gsi", the pool after it. */
static void print_res(FILE *f, const struct vmres_resource *r, bool mapped, unsigned int indent)
{
	char line[160];
	struct vmres__text o = {line, sizeof(line), 0};
	bool named = r->kind == VMRES_RES_IRQ || r->kind == VMRES_RES_MSI;
	size_t pool = strnlen(r->pool, VMRES_POOL_NAME_MAX);

	vmres__resource_text(&o, r, named ? "gsi" : NULL, 3);
	if (pool)
		vmres__text_put(&o, " pool %.*s", (int)pool, r->pool);
	if (r->kind == VMRES_RES_ADDR && !mapped)
		vmres__text_put(&o, " (unmapped)");
	fprintf(f, "%*s%s\n", (int)indent, "", line);
}

int vmres_devmgr_dump_str(struct vmres_devmgr *m, char **out)
{
	struct dump_table d;
	const struct table_copy *t = &d.t;
	size_t len = 0;
	char *buf = NULL;
	FILE *f;
	int rc = out ? dump_table_get(m, &d) : VMRES_EINVAL;

	if (rc)
		return rc;
	f = open_memstream(&buf, &len);
	if (f) {
		fprintf(f, "devices: %zu\n", t->n);
		for (size_t k = 0; k < t->n; k++) {
			unsigned int depth;
			bool flat;
			size_t i = dev_tree_at(&d.tr, k, &depth, &flat);
			unsigned int ind = 2 * depth;
			const struct dm_view *v = t->views[i];

			fprintf(f, "%*s[%" PRIu32 "] %s", (int)ind, "", t->info[i].instance,
				t->info[i].name[0] ? t->info[i].name : "(unnamed)");
			if (flat)
				fprintf(f, " (parent %" PRIu32 ")", t->info[i].parent);
			if (t->info[i].owner)
				fprintf(f, " (owner 0x%" PRIx64 ")", t->info[i].owner);
			fputc('\n', f);
			for (size_t j = 0; j < v->n_res; j++)
				print_res(f, &v->res[j], v->mapped[j], ind + 2);
		}
		rc = fclose(f) ? VMRES_ENOMEM : 0;
	} else {
		rc = VMRES_ENOMEM;
	}
	dump_table_free(&d);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

int vmres_devmgr_dump(struct vmres_devmgr *m, FILE *f)
{
	char *text;
	int rc;

	if (!m || !f)
		return VMRES_EINVAL;
	rc = vmres_devmgr_dump_str(m, &text);
	if (rc)
		return rc;
	rc = fputs(text, f) < 0 ? VMRES_ESYS : 0;
	free(text);
	return rc;
}

/* Every jansson call below is checked: a constructor returns NULL when out of
 * memory (or for a string that is not UTF-8, which register and restore refuse);
 * json_object_set_new() and json_array_append_new() take the value, and a NULL
 * value makes them fail, so a chain of vmres__json_set() calls (util/json.h) frees everything it
 * made. */
static bool append(json_t *list, json_t *value)
{
	return value && json_array_append_new(list, value) == 0;
}

static json_t *json_msg(const struct vmres_msi_msg *msg)
{
	json_t *o = json_object();

	if (o && vmres__json_set(o, "addr_lo", json_integer(msg->addr_lo)) &&
	    vmres__json_set(o, "addr_hi", json_integer(msg->addr_hi)) &&
	    vmres__json_set(o, "data", json_integer(msg->data)))
		return o;
	json_decref(o);
	return NULL;
}

static json_t *json_res(const struct vmres_resource *r, bool mapped)
{
	json_t *o = json_object();
	bool ok = o && vmres__json_set(o, "kind", json_string(vmres_res_kind_name(r->kind))) &&
		  vmres__json_set(o, "pool", json_string(r->pool));

	if (ok) {
		switch (r->kind) {
		case VMRES_RES_ADDR:
			ok = vmres__json_set(o, "space",
					     json_string(vmres_space_name(r->u.addr.space))) &&
			     vmres__json_set(o, "base", vmres__json_hex(r->u.addr.base)) &&
			     vmres__json_set(
				     o, "last",
				     vmres__json_hex(r->u.addr.base + (r->u.addr.size - 1))) &&
			     vmres__json_set(o, "size", vmres__json_hex(r->u.addr.size)) &&
			     vmres__json_set(o, "align", vmres__json_hex(r->u.addr.align)) &&
			     vmres__json_set(o, "mapped", json_boolean(mapped));
			break;
		case VMRES_RES_IRQ:
			ok = vmres__json_set(o, "gsi", json_integer(r->u.irq.gsi));
			/* Only a share of a shared line has the key (unshared: as ever). */
			if (ok && r->u.irq.shared)
				ok = vmres__json_set(o, "shared", json_true());
			break;
		case VMRES_RES_MSI:
			ok = vmres__json_set(o, "gsi", json_integer(r->u.msi.gsi)) &&
			     vmres__json_set(o, "msg", json_msg(&r->u.msi.msg));
			break;
		default:
			ok = vmres__json_set(o, "id", json_integer(r->u.id.id));
			break;
		}
	}
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Device @p i of @p t with its resources and an empty "children" array; with
 * its parent's id when @p with_parent. */
static json_t *json_device(const struct table_copy *t, size_t i, bool with_parent)
{
	const struct dm_view *v = t->views[i];
	json_t *o = json_object(), *res = json_array();
	bool ok = o && res;

	ok = ok && vmres__json_set(o, "instance", json_integer(t->info[i].instance));
	if (with_parent)
		ok = ok && vmres__json_set(o, "parent", json_integer(t->info[i].parent));
	ok = ok && vmres__json_set(o, "name", json_string(t->info[i].name)) &&
	     vmres__json_set(o, "owner", vmres__json_hex(t->info[i].owner));
	for (size_t j = 0; ok && j < v->n_res; j++)
		ok = append(res, json_res(&v->res[j], v->mapped[j]));
	if (ok) {
		ok = vmres__json_set(o, "resources", res);
		res = NULL;
	}
	ok = ok && vmres__json_set(o, "children", json_array());
	json_decref(res);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int vmres_devmgr_dump_json(struct vmres_devmgr *m, char **out)
{
	/* children[d]: the "children" array of the last device placed at depth d. */
	json_t *root, *children[VMRES_DEVMGR_DUMP_DEPTH + 1];
	struct dump_table dt;
	char *text = NULL;
	int rc = out ? dump_table_get(m, &dt) : VMRES_EINVAL;

	if (rc)
		return rc;
	root = json_object();
	if (!root || !vmres__json_set(root, "devices", json_array()))
		goto out;
	/* In tree order, each device goes into the "children" of the device placed
	 * last one level up (its parent, or for a device deeper than the cap its
	 * ancestor there): parents come before children, children in id order. */
	for (size_t k = 0; k < dt.t.n; k++) {
		unsigned int d;
		bool flat;
		size_t i = dev_tree_at(&dt.tr, k, &d, &flat);
		json_t *node = json_device(&dt.t, i, flat);
		json_t *list = d ? children[d - 1] : json_object_get(root, "devices");

		if (!node)
			goto out;
		children[d] = json_object_get(node, "children");
		if (!append(list, node))
			goto out;
	}
	text = vmres__json_dumps(root, JSON_INDENT(2));
out:
	json_decref(root);
	dump_table_free(&dt);
	if (!text)
		return VMRES_ENOMEM;
	*out = text;
	return 0;
}

int vmres_devmgr_stats(struct vmres_devmgr *m, struct vmres_devmgr_stats *out)
{
	if (!m || !out)
		return VMRES_EINVAL;
	pthread_mutex_lock(&m->lock);
	out->devices = m->state->n;
	pthread_mutex_unlock(&m->lock);
	vmres__miss_sum(&m->miss[PIO], &out->pio_miss_reads, &out->pio_miss_writes);
	vmres__miss_sum(&m->miss[MMIO], &out->mmio_miss_reads, &out->mmio_miss_writes);
	return 0;
}

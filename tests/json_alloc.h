/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An allocator for jansson (json_set_alloc_funcs()) that fails its
 * json_fail_at-th allocation (-1: none) and counts the blocks still live, for
 * the tests that check a JSON dump fails cleanly wherever jansson runs out.
 */
#ifndef VMRES_TESTS_JSON_ALLOC_H
#define VMRES_TESTS_JSON_ALLOC_H

#include <stdlib.h>

#include <jansson.h>

static long json_fail_at = -1, json_allocs, json_live;

static void *failing_json_malloc(size_t size)
{
	void *p;

	if (json_allocs++ == json_fail_at)
		return NULL;
	p = malloc(size);
	if (p)
		json_live++;
	return p;
}

static void counting_json_free(void *p)
{
	if (p)
		json_live--;
	free(p);
}

/*
 * Run @p dump(@p obj, &text) with jansson's fail_at-th allocation failing, for
 * fail_at = 0, 1, ... until a run in which none failed. Each run must either
 * give exactly @p want, or VMRES_ENOMEM with its output untouched; no block
 * may stay live. Returns how many failure points were tried.
 */
static long json_failure_sweep(int (*dump)(void *obj, char **out), void *obj, const char *want)
{
	char sentinel, *got;

	json_set_alloc_funcs(failing_json_malloc, counting_json_free);
	for (json_fail_at = 0;; json_fail_at++) {
		int rc;

		json_allocs = json_live = 0;
		got = &sentinel;
		rc = dump(obj, &got);
		if (rc == 0) {
			assert_string_equal(got, want);
			free(got);
		} else {
			assert_int_equal(rc, VMRES_ENOMEM);
			assert_ptr_equal(got, &sentinel);
		}
		assert_int_equal(json_live, 0);
		if (json_allocs <= json_fail_at)
			break; /* no allocation failed: every point was tried */
	}
	json_set_alloc_funcs(malloc, free);
	return json_fail_at;
}

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An allocator for jansson (json_set_alloc_funcs()) that fails its
 * json_fail_at-th allocation (-1: none) and counts the blocks still live, for
 * the tests that check a JSON dump fails cleanly wherever jansson runs out.
 */
#ifndef VMRES_TESTS_JSON_ALLOC_H
#define VMRES_TESTS_JSON_ALLOC_H

#include <stdlib.h>

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

#endif

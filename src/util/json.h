/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the JSON dumps (sysalloc/dump.c, devmgr_table.c) share. Every jansson
 * constructor returns NULL when out of memory; json_object_set_new() and
 * json_array_append_new() take the value even when they fail, and a NULL value
 * makes them fail, so a chain of these calls joined with && frees everything it
 * made. Not installed.
 */
#ifndef VMRES_UTIL_JSON_H
#define VMRES_UTIL_JSON_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* @p v as the string "0x..." (lower-case hex, no padding): addresses and owners. */
static inline json_t *vmres__json_hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_string(buf);
}

/* Set @p key of @p obj to @p value (taken); false when out of memory. */
static inline bool vmres__json_set(json_t *obj, const char *key, json_t *value)
{
	return value && json_object_set_new(obj, key, value) == 0;
}

#endif /* VMRES_UTIL_JSON_H */

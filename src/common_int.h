/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every module may share beyond common.h (common.c). Not installed.
 */
#ifndef VMRES_COMMON_INT_H
#define VMRES_COMMON_INT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Is @p s a name the library may store and print: a device name, pool name,
 * owner name or label? True when @p s has its NUL within its first @p max bytes
 * and is valid UTF-8 (RFC 3629: no stray or missing continuation bytes, no
 * overlong forms, no surrogates, nothing above U+10FFFF) without a control
 * character (a byte below 0x20, or 0x7f). The empty string is valid; whether a
 * name may be empty is the caller's rule. Never reads past the NUL or past
 * @p max bytes, so @p s may be a fixed-size field that lacks a NUL.
 *
 * This is what jansson accepts as a string (so the JSON dumps can carry every
 * name) and what keeps the text dumps one line per entry.
 */
bool vmres__name_valid(const char *s, size_t max);

/*
 * Record, for vmres_error_detail(), what went wrong and what to do (printf
 * style, cut at about 220 bytes), and return @p err: `return vmres__fail(...)`
 * on a failure path. Per thread; never on the dispatch fast path.
 */
int vmres__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3), cold));

/*
 * 0 when @p s is a valid name of at most @p max - 1 bytes (vmres__name_valid()),
 * else VMRES_EINVAL with a detail naming @p what ("device name") and the limit.
 */
int vmres__name_check(const char *what, const char *s, size_t max);

struct json_t;

/*
 * json_dumps() for the JSON dumps: @p root as malloc'd text (free() it, whatever
 * allocator jansson was given), or NULL when out of memory. Unlike json_dumps(),
 * never returns a text with a piece missing: jansson ignores a failure to write
 * an object's key (dump.c, every version to 2.14) and goes on, so the first
 * failed write here fails every later one and the whole call.
 */
char *vmres__json_dumps(const struct json_t *root, size_t flags);

#endif /* VMRES_COMMON_INT_H */

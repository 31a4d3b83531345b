/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <vmres/common.h>

#include "../src/util/bits.h"

static void test_every_code_has_a_distinct_name_and_text(void **state)
{
	(void)state;
	for (int a = VMRES_ERRNO_MIN; a <= 0; a++) {
		assert_string_not_equal(vmres_errname(a), "VMRES_E?");
		assert_string_not_equal(vmres_strerror(a), "unknown error");
		for (int b = VMRES_ERRNO_MIN; b < a; b++) {
			assert_string_not_equal(vmres_errname(a), vmres_errname(b));
			assert_string_not_equal(vmres_strerror(a), vmres_strerror(b));
		}
	}
}

static void test_unknown_codes_are_reported_as_unknown(void **state)
{
	(void)state;
	assert_string_equal(vmres_strerror(1), "unknown error");
	assert_string_equal(vmres_strerror(VMRES_ERRNO_MIN - 1), "unknown error");
	assert_string_equal(vmres_errname(INT32_MIN), "VMRES_E?");
}

static void test_range_helpers_at_the_edges_of_the_space(void **state)
{
	(void)state;
	/* The library's own helpers (src/util/bits.h), at the edges of the space. */
	assert_false(vmres__range_wraps(UINT64_MAX - 0xfff, 0x1000));
	assert_true(vmres__range_wraps(UINT64_MAX - 0xfff, 0x1001));
	assert_false(vmres__range_wraps(1, UINT64_MAX));
	assert_true(vmres__range_wraps(2, UINT64_MAX));
	assert_int_equal(vmres__range_last(UINT64_MAX - 0xfff, 0x1000), UINT64_MAX);
	assert_int_equal(vmres__range_last(0, UINT64_MAX), UINT64_MAX - 1);
	assert_true(vmres__range_within(UINT64_MAX, UINT64_MAX, 0, UINT64_MAX));
	assert_true(vmres__range_within(0x1000, 0x1fff, 0x1000, 0x1fff));
	assert_false(vmres__range_within(0xfff, 0x1fff, 0x1000, 0x1fff));
	assert_false(vmres__range_within(0x1000, 0x2000, 0x1000, 0x1fff));
	assert_true(vmres__ranges_overlap(0, UINT64_MAX, UINT64_MAX - 0xfff, UINT64_MAX));
	assert_true(vmres__ranges_overlap(0xfff, 0xfff, 0, 0xfff));
	assert_false(vmres__ranges_overlap(0, 0xfff, 0x1000, UINT64_MAX));
	assert_false(vmres__ranges_overlap(0x1000, UINT64_MAX, 0, 0xfff));
}

static void test_version_matches_the_header(void **state)
{
	(void)state;
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", VMRES_VERSION_MAJOR, VMRES_VERSION_MINOR,
		 VMRES_VERSION_PATCH);
	assert_string_equal(vmres_version(), want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_has_a_distinct_name_and_text),
		cmocka_unit_test(test_unknown_codes_are_reported_as_unknown),
		cmocka_unit_test(test_range_helpers_at_the_edges_of_the_space),
		cmocka_unit_test(test_version_matches_the_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

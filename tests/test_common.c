/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <vmres/common.h>

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

static void test_range_helpers_handle_the_top_of_the_space(void **state)
{
	(void)state;
	struct vmres_range all = {0, UINT64_MAX};
	struct vmres_range top = {UINT64_MAX - 0xfff, UINT64_MAX};

	assert_int_equal(vmres_range_size(all), 0); /* 2^64 */
	assert_int_equal(vmres_range_size(top), 0x1000);
	assert_true(vmres_range_contains(all, UINT64_MAX, UINT64_MAX));
	assert_true(vmres_range_overlaps(all, top));
	assert_false(vmres_range_overlaps((struct vmres_range){0, 0xfff}, top));
	assert_false(vmres_range_contains(top, 5, 4));
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
		cmocka_unit_test(test_range_helpers_handle_the_top_of_the_space),
		cmocka_unit_test(test_version_matches_the_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <criterion/criterion.h>

#include "backoff.h"

Test(backoff, doubles_up_to_the_cap)
{
	struct backoff b;
	uint64_t seen[8];

	backoff_init(&b, 100, 1000, 60000);
	for (int i = 0; i < 8; i++)
		seen[i] = backoff_on_exit(&b, 10);
	cr_assert_eq(seen[0], 100, "first restart comes after the initial delay");
	cr_assert_eq(seen[1], 200);
	cr_assert_eq(seen[2], 400);
	cr_assert_eq(seen[3], 800);
	cr_assert_eq(seen[4], 1000, "capped");
	cr_assert_eq(seen[7], 1000);
}

Test(backoff, resets_after_a_stable_period)
{
	struct backoff b;

	backoff_init(&b, 100, 30000, 60000);
	backoff_on_exit(&b, 5);
	backoff_on_exit(&b, 5);
	cr_assert_eq(backoff_on_exit(&b, 5), 400);
	cr_assert_eq(backoff_on_exit(&b, 60000), 100, "a worker up for the stable period starts over");
	cr_assert_eq(b.consecutive, 1);
}

Test(backoff, crashloop_detection)
{
	struct backoff b;

	backoff_init(&b, 10, 100, 1000);
	for (int i = 0; i < 4; i++) {
		backoff_on_exit(&b, 1);
		cr_assert_not(backoff_crashlooping(&b, 5));
	}
	backoff_on_exit(&b, 1);
	cr_assert(backoff_crashlooping(&b, 5));
	backoff_on_exit(&b, 5000);
	cr_assert_not(backoff_crashlooping(&b, 5), "stable again");
}

Test(backoff, cap_below_initial_is_raised)
{
	struct backoff b;

	backoff_init(&b, 500, 100, 1000);
	cr_assert_eq(backoff_on_exit(&b, 0), 500);
	cr_assert_eq(backoff_on_exit(&b, 0), 500);
}

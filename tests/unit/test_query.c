/* The api's strict query-string parsing (workers/api/query.h). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "query.h"

Test(query, pairs_decoded)
{
	struct query q;
	const char *why, *bad;

	cr_assert_eq(query_parse(&q, "page=2&role=a%20b+c&&revoked=true&", &why, &bad), 0);
	cr_assert_eq(q.n, 3);
	cr_expect_str_eq(query_get(&q, "page"), "2");
	cr_expect_str_eq(query_get(&q, "role"), "a b c");
	cr_expect_str_eq(query_get(&q, "revoked"), "true");
	cr_expect_null(query_get(&q, "per_page"));
	cr_assert_eq(query_parse(&q, "", &why, &bad), 0);
	cr_expect_eq(q.n, 0);
	cr_assert_eq(query_parse(&q, "name=", &why, &bad), 0);
	cr_expect_str_eq(query_get(&q, "name"), "");
}

Test(query, refusals)
{
	static const char *const bad_queries[] = {
		"novalue", "=1", "a=%zz", "a=%2", "a=%", "a=%00", "%00=1", "page=1&page=2", "a=1&b",
	};
	struct query q;
	const char *why, *bad;
	char big[QUERY_MAX + 2];

	for (size_t i = 0; i < sizeof bad_queries / sizeof bad_queries[0]; i++) {
		why = NULL;
		cr_expect_eq(query_parse(&q, bad_queries[i], &why, &bad), -1, "%s", bad_queries[i]);
		cr_expect_not_null(why);
	}
	cr_assert_eq(query_parse(&q, "page=1&page=2", &why, &bad), -1);
	cr_expect_str_eq(bad, "page");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[1] = '=';
	cr_expect_eq(query_parse(&q, big, &why, &bad), -1, "too long");
	big[QUERY_MAX] = '\0';
	cr_expect_eq(query_parse(&q, big, &why, &bad), 0, "at the limit");
}

Test(query, pair_count_bounded)
{
	char text[QUERY_MAX];
	size_t n = 0;
	struct query q;
	const char *why, *bad;

	for (int i = 0; i < QUERY_PAIRS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "%sp%d=1", i ? "&" : "", i);
	cr_expect_eq(query_parse(&q, text, &why, &bad), 0);
	snprintf(text + n, sizeof text - n, "&one=more");
	cr_expect_eq(query_parse(&q, text, &why, &bad), -1);
}

Test(query, integers)
{
	long v = -1;

	cr_expect(query_int("1", 1, 500, &v) && v == 1);
	cr_expect(query_int("500", 1, 500, &v) && v == 500);
	cr_expect(query_int("1000000000", 1, 1000000000L, &v) && v == 1000000000L);
	cr_expect(!query_int("0", 1, 500, &v));
	cr_expect(!query_int("501", 1, 500, &v));
	cr_expect(!query_int("-1", 1, 500, &v));
	cr_expect(!query_int("+1", 1, 500, &v));
	cr_expect(!query_int(" 1", 1, 500, &v));
	cr_expect(!query_int("1x", 1, 500, &v));
	cr_expect(!query_int("", 1, 500, &v));
	cr_expect(!query_int("99999999999", 1, 1000000000L, &v));
}

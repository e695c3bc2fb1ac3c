/* The STORE_CALL parameter codec (lib/store_wire.h): the store decodes what
 * other processes send, so every malformed input must be refused cleanly. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_wire.h"

static int decode(const void *buf, size_t len, struct store_params *p)
{
	return store_params_decode(buf, len, p);
}

Test(store_wire, round_trip_with_null_and_empty)
{
	const char *in[] = {"acme.directory", NULL, "", "ünïcode"};
	struct store_params p;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(store_params_encode(in, 4, &buf, &len), 0);
	cr_assert_eq(decode(buf, len, &p), 0);
	cr_assert_eq(p.n, 4);
	cr_assert_str_eq(p.v[0], "acme.directory");
	cr_assert_null(p.v[1]);
	cr_assert_str_eq(p.v[2], "");
	cr_assert_str_eq(p.v[3], "ünïcode");
	store_params_free(&p);
	free(buf);
}

Test(store_wire, no_params)
{
	static const uint8_t zero[] = {0, 0};
	struct store_params p;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(store_params_encode(NULL, 0, &buf, &len), 0);
	cr_assert_eq(len, 2);
	cr_assert_eq(memcmp(buf, zero, 2), 0);
	cr_assert_eq(decode(buf, len, &p), 0);
	cr_assert_eq(p.n, 0);
	store_params_free(&p);
	free(buf);
}

Test(store_wire, oversize_count)
{
	static const uint8_t many[] = {0, STORE_PARAMS_MAX + 1};
	static const uint8_t huge[] = {0xff, 0xff};
	const char *in[STORE_PARAMS_MAX + 1] = {0};
	struct store_params p;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(decode(many, sizeof many, &p), -E2BIG);
	cr_assert_eq(decode(huge, sizeof huge, &p), -E2BIG);
	cr_assert_eq(store_params_encode(in, STORE_PARAMS_MAX + 1, &buf, &len), -E2BIG);
}

Test(store_wire, truncated)
{
	/* one parameter announced, its length field cut short, then its bytes */
	static const uint8_t no_len[] = {0, 1, 0, 0};
	static const uint8_t short_text[] = {0, 1, 0, 0, 0, 5, 'a', 'b', 'c'};
	static const uint8_t missing_second[] = {0, 2, 0, 0, 0, 1, 'a'};
	static const uint8_t huge_len[] = {0, 1, 0x7f, 0xff, 0xff, 0xff, 'a'};
	struct store_params p;

	cr_assert_eq(decode(NULL, 0, &p), -EINVAL);
	cr_assert_eq(decode(no_len, 1, &p), -EINVAL);
	cr_assert_eq(decode(no_len, sizeof no_len, &p), -EINVAL);
	cr_assert_eq(decode(short_text, sizeof short_text, &p), -EINVAL);
	cr_assert_eq(decode(missing_second, sizeof missing_second, &p), -EINVAL);
	cr_assert_eq(decode(huge_len, sizeof huge_len, &p), -EINVAL);
}

Test(store_wire, trailing_bytes)
{
	static const uint8_t trailing[] = {0, 1, 0, 0, 0, 1, 'a', 'b'};
	static const uint8_t after_none[] = {0, 0, 0};
	struct store_params p;

	cr_assert_eq(decode(trailing, sizeof trailing, &p), -EINVAL);
	cr_assert_eq(decode(after_none, sizeof after_none, &p), -EINVAL);
}

Test(store_wire, embedded_nul)
{
	static const uint8_t nul[] = {0, 1, 0, 0, 0, 3, 'a', 0, 'b'};
	struct store_params p;

	cr_assert_eq(decode(nul, sizeof nul, &p), -EINVAL);
}

Test(store_wire, total_size_bound)
{
	size_t big = STORE_PARAMS_BYTES;
	uint8_t *buf = calloc(1, big + 1);
	char *text = malloc(big);
	const char *in[1] = {text};
	struct store_params p;
	uint8_t *enc;
	size_t len;

	cr_assert_not_null(buf);
	cr_assert_not_null(text);
	/* the largest single parameter that fits: 2 + 4 + text */
	memset(text, 'x', big - 7);
	text[big - 7] = '\0';
	cr_assert_eq(store_params_encode(in, 1, &enc, &len), 0);
	cr_assert_eq(len, big - 1);
	cr_assert_eq(decode(enc, len, &p), 0);
	cr_assert_eq(strlen(p.v[0]), big - 7);
	store_params_free(&p);
	free(enc);
	/* one byte more is refused on both sides */
	memset(text, 'x', big - 5);
	text[big - 5] = '\0';
	cr_assert_eq(store_params_encode(in, 1, &enc, &len), -E2BIG);
	cr_assert_eq(decode(buf, big + 1, &p), -E2BIG);
	free(text);
	free(buf);
}

Test(store_wire, null_marker)
{
	static const uint8_t nulls[] = {0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct store_params p;

	cr_assert_eq(decode(nulls, sizeof nulls, &p), 0);
	cr_assert_eq(p.n, 2);
	cr_assert_null(p.v[0]);
	cr_assert_null(p.v[1]);
	store_params_free(&p);
}

#include <criterion/criterion.h>
#include <string.h>

#include "apikey.h"
#include "util.h"

static const char good[] = "cw_0123456789ab_"
			   "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

Test(apikey, parse_good)
{
	struct apikey k;

	cr_assert(apikey_parse(good, strlen(good), &k));
	cr_expect_str_eq(k.prefix, "cw_0123456789ab");
	cr_expect_eq(k.secret[0], 0x00);
	cr_expect_eq(k.secret[1], 0x11);
	cr_expect_eq(k.secret[31], 0xff);
}

Test(apikey, parse_refuses_everything_else)
{
	/* one byte of a good key replaced */
	static const struct {
		size_t pos;
		char c;
		const char *why;
	} changes[] = {
		{0, 'C', "prefix"},         {15, '-', "separator"},
		{20, 'A', "uppercase hex"}, {5, 'g', "not hex in the prefix"},
		{40, '\0', "embedded NUL"},
	};
	char bad[sizeof good + 8];
	struct apikey k;

	cr_expect(!apikey_parse("", 0, &k));
	cr_expect(!apikey_parse(good, strlen(good) - 1, &k), "short");
	for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
		memcpy(bad, good, sizeof good);
		bad[changes[i].pos] = changes[i].c;
		cr_expect(!apikey_parse(bad, strlen(good), &k), "%s", changes[i].why);
	}
	memcpy(bad, good, sizeof good);
	strcat(bad, "0");
	cr_expect(!apikey_parse(bad, strlen(bad), &k), "long");
}

Test(apikey, generated_keys_parse_and_differ)
{
	struct apikey a, b, back;
	uint8_t salt_a[APIKEY_SALT_BYTES], salt_b[APIKEY_SALT_BYTES];
	char ta[APIKEY_TEXT_LEN + 1], tb[APIKEY_TEXT_LEN + 1];

	cr_assert(apikey_generate(&a, salt_a, ta));
	cr_assert(apikey_generate(&b, salt_b, tb));
	cr_expect_eq(strlen(ta), APIKEY_TEXT_LEN);
	cr_assert(apikey_parse(ta, strlen(ta), &back));
	cr_expect_str_eq(back.prefix, a.prefix);
	cr_expect(memcmp(back.secret, a.secret, sizeof a.secret) == 0);
	cr_expect(strcmp(ta, tb) != 0);
	cr_expect(memcmp(salt_a, salt_b, sizeof salt_a) != 0);
}

Test(apikey, hash_and_match)
{
	/* SHA-256 of 32 zero bytes (no salt): a known value */
	static const uint8_t zero_hash[32] = {
		0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77, 0x6c, 0x8f, 0xc1, 0x8b, 0x8e, 0x9f, 0x8e, 0x20,
		0x08, 0x97, 0x14, 0x85, 0x6e, 0xe2, 0x33, 0xb3, 0x90, 0x2a, 0x59, 0x1d, 0x0d, 0x5f, 0x29, 0x25,
	};
	struct apikey k = {0};
	uint8_t salt[APIKEY_SALT_BYTES] = {1}, h[32];

	apikey_hash(NULL, 0, &k, h);
	cr_expect(memcmp(h, zero_hash, 32) == 0);
	apikey_hash(salt, sizeof salt, &k, h);
	cr_expect(memcmp(h, zero_hash, 32) != 0, "the salt counts");
	cr_expect(apikey_matches(salt, sizeof salt, &k, h));
	k.secret[31] ^= 1;
	cr_expect(!apikey_matches(salt, sizeof salt, &k, h), "one bit of the secret");
	k.secret[31] ^= 1;
	salt[15] ^= 0x80;
	cr_expect(!apikey_matches(salt, sizeof salt, &k, h), "one bit of the salt");
	apikey_clear(&k);
}

/* what the store records of a made key: the text parses, and the hex salt
 * and hash check against it */
Test(apikey, made_key_matches_its_record)
{
	struct apikey_made m;
	struct apikey back;
	uint8_t salt[APIKEY_SALT_BYTES], hash[32];
	static const uint8_t zero[sizeof m] = {0};

	cr_assert(apikey_make(&m));
	cr_assert(apikey_parse(m.text, strlen(m.text), &back));
	cr_expect_str_eq(back.prefix, m.key.prefix);
	cr_expect_eq(strlen(m.salt_hex), 2 * APIKEY_SALT_BYTES);
	cr_expect_eq(strlen(m.hash_hex), 64);
	cr_assert_eq(hex_decode(m.salt_hex, salt, sizeof salt), 0);
	cr_assert_eq(hex_decode(m.hash_hex, hash, sizeof hash), 0);
	cr_expect(apikey_matches(salt, sizeof salt, &back, hash));
	back.secret[0] ^= 1;
	cr_expect(!apikey_matches(salt, sizeof salt, &back, hash));
	apikey_made_clear(&m);
	cr_expect(memcmp(&m, zero, sizeof m) == 0, "not wiped");
}

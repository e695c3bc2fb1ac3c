/* See apikey.h. */
#include "apikey.h"

#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

#include "util.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase is not our format */
}

bool apikey_parse(const char *text, size_t len, struct apikey *out)
{
	if (len != APIKEY_TEXT_LEN || memcmp(text, "cw_", 3) != 0 || text[APIKEY_PREFIX_LEN] != '_')
		return false;
	for (size_t i = 3; i < APIKEY_PREFIX_LEN; i++)
		if (hexval(text[i]) < 0)
			return false;
	for (size_t i = 0; i < APIKEY_SECRET_BYTES; i++) {
		int hi = hexval(text[APIKEY_PREFIX_LEN + 1 + 2 * i]);
		int lo = hexval(text[APIKEY_PREFIX_LEN + 2 + 2 * i]);

		if (hi < 0 || lo < 0) {
			apikey_clear(out);
			return false;
		}
		out->secret[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(out->prefix, text, APIKEY_PREFIX_LEN);
	out->prefix[APIKEY_PREFIX_LEN] = '\0';
	return true;
}

bool apikey_generate(struct apikey *key, uint8_t salt[APIKEY_SALT_BYTES],
		     char text[APIKEY_TEXT_LEN + 1])
{
	uint8_t id[6];

	if (!RAND_bytes(id, sizeof id) || !RAND_bytes(key->secret, sizeof key->secret) ||
	    !RAND_bytes(salt, APIKEY_SALT_BYTES))
		return false;
	memcpy(key->prefix, "cw_", 3);
	hex_encode(id, sizeof id, key->prefix + 3);
	memcpy(text, key->prefix, APIKEY_PREFIX_LEN);
	text[APIKEY_PREFIX_LEN] = '_';
	hex_encode(key->secret, APIKEY_SECRET_BYTES, text + APIKEY_PREFIX_LEN + 1);
	return true;
}

bool apikey_make(struct apikey_made *out)
{
	uint8_t salt[APIKEY_SALT_BYTES], hash[32];
	bool ok = apikey_generate(&out->key, salt, out->text);

	if (ok) {
		apikey_hash(salt, sizeof salt, &out->key, hash);
		hex_encode(salt, sizeof salt, out->salt_hex);
		hex_encode(hash, sizeof hash, out->hash_hex);
	} else {
		apikey_made_clear(out);
	}
	OPENSSL_cleanse(salt, sizeof salt);
	OPENSSL_cleanse(hash, sizeof hash);
	return ok;
}

void apikey_made_clear(struct apikey_made *m)
{
	OPENSSL_cleanse(m, sizeof *m);
}

void apikey_hash(const uint8_t *salt, size_t salt_len, const struct apikey *key, uint8_t out[32])
{
	SHA256_CTX c;

	SHA256_Init(&c);
	SHA256_Update(&c, salt, salt_len);
	SHA256_Update(&c, key->secret, sizeof key->secret);
	SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof c);
}

bool apikey_matches(const uint8_t *salt, size_t salt_len, const struct apikey *key,
		    const uint8_t expected[32])
{
	uint8_t got[32];
	bool ok;

	apikey_hash(salt, salt_len, key, got);
	ok = CRYPTO_memcmp(got, expected, sizeof got) == 0;
	OPENSSL_cleanse(got, sizeof got);
	return ok;
}

void apikey_clear(struct apikey *key)
{
	OPENSSL_cleanse(key, sizeof *key);
}

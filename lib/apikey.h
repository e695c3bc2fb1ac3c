/*
 * API keys as clients present them: "cw_" + 12 hex digits (the public
 * prefix, unique, stored and shown) + "_" + 64 hex digits (the secret,
 * shown once, never stored). The server keeps a random salt and
 * SHA-256(salt || secret bytes) and compares in constant time.
 */
#ifndef CERTWARD_APIKEY_H
#define CERTWARD_APIKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define APIKEY_PREFIX_LEN 15 /* "cw_" + 12 hex */
#define APIKEY_SECRET_BYTES 32
#define APIKEY_TEXT_LEN (APIKEY_PREFIX_LEN + 1 + 2 * APIKEY_SECRET_BYTES)
#define APIKEY_SALT_BYTES 16

struct apikey {
	char prefix[APIKEY_PREFIX_LEN + 1];
	uint8_t secret[APIKEY_SECRET_BYTES];
};

/* Parses a presented key (exactly the format above, lowercase hex).
 * Returns false for anything else; nothing of the input is kept on failure. */
bool apikey_parse(const char *text, size_t len, struct apikey *out);

/* A new key and its salt from the system's random source; text gets the
 * presentable form (APIKEY_TEXT_LEN + 1 bytes). Returns false if no
 * randomness was available. */
bool apikey_generate(struct apikey *key, uint8_t salt[APIKEY_SALT_BYTES],
		     char text[APIKEY_TEXT_LEN + 1]);

/* A new key as the store records it: the presentable text (shown once),
 * and the hex of a fresh salt and of SHA-256(salt || secret). */
struct apikey_made {
	struct apikey key;
	char text[APIKEY_TEXT_LEN + 1];
	char salt_hex[2 * APIKEY_SALT_BYTES + 1];
	char hash_hex[65];
};

/* Returns false if no randomness was available (then nothing is kept). */
bool apikey_make(struct apikey_made *out);
/* Wipes all of it. */
void apikey_made_clear(struct apikey_made *m);

/* SHA-256(salt || secret). */
void apikey_hash(const uint8_t *salt, size_t salt_len, const struct apikey *key, uint8_t out[32]);

/* Whether key hashes to expected with salt, in time independent of where
 * they differ. */
bool apikey_matches(const uint8_t *salt, size_t salt_len, const struct apikey *key,
		    const uint8_t expected[32]);

/* Wipes the secret. */
void apikey_clear(struct apikey *key);

#endif

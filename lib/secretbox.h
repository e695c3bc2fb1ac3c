/*
 * Secrets at rest (issuers' credentials and the like): sealed by the
 * signer with XChaCha20-Poly1305 under a 32-byte key kept in the signer's
 * key directory (secrets.key, 0600), stored by the store as opaque bytes,
 * opened only by the signer. The store, PostgreSQL and a database dump
 * never see them in the clear.
 *
 * A sealed blob is
 *
 *   "cws1" || 24-byte random nonce || ciphertext || 16-byte tag
 *
 * with the associated data "certward secret v1" (a blob from another
 * purpose or version does not open).
 */
#ifndef CERTWARD_SECRETBOX_H
#define CERTWARD_SECRETBOX_H

#include <stddef.h>
#include <stdint.h>

#define SECRETBOX_KEY_BYTES 32
#define SECRETBOX_OVERHEAD (4 + 24 + 16)
#define SECRETBOX_MAX_PLAIN 32768

/* Reads `name` in the directory dir_fd (exactly 32 bytes, a regular file
 * owned by us with mode 0600), or creates it with fresh random bytes when
 * it does not exist. Returns 0, or -1 with why filled. */
int secretbox_key_load(int dir_fd, const char *name, uint8_t key[SECRETBOX_KEY_BYTES], char *why,
		       size_t why_len);

/* Seals len bytes (at most SECRETBOX_MAX_PLAIN) into out, which has room
 * for len + SECRETBOX_OVERHEAD; returns the sealed length or -1. */
long secretbox_seal(const uint8_t key[SECRETBOX_KEY_BYTES], const uint8_t *in, size_t len, uint8_t *out,
		    size_t cap);

/* Opens a sealed blob into out (room for len - SECRETBOX_OVERHEAD);
 * returns the plain length, or -1 when it is malformed, was sealed under
 * another key, or was changed. */
long secretbox_open(const uint8_t key[SECRETBOX_KEY_BYTES], const uint8_t *in, size_t len, uint8_t *out,
		    size_t cap);

#endif

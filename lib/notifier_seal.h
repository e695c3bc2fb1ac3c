/*
 * Notification channel secrets (SMTP passwords, webhook URLs and HMAC keys,
 * API keys), sealed by the api to certward-notifier's public key with HPKE
 * (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * ChaCha20-Poly1305) and opened only by certward-notifier, which holds the
 * private key. The api, the store and PostgreSQL only ever see the blob.
 *
 * A sealed blob is
 *
 *   "cwn" 0x01 || enc (32 bytes, the sender's ephemeral X25519 key)
 *             || ciphertext || 16-byte tag
 *
 * The HPKE info string is "certward notifier channel secrets v1" || 0x00 ||
 * the channel id, and the 4-byte header is the AEAD's associated data: a
 * blob opens only for the channel it was sealed for, under the version it
 * names, with the private key of the public key it was sealed to.
 *
 * The notifier's key id (notifier_keys.id) is the lowercase hex SHA-256 of
 * its 32-byte public key.
 */
#ifndef CERTWARD_NOTIFIER_SEAL_H
#define CERTWARD_NOTIFIER_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define NOTIFIER_SEAL_KEY_BYTES 32 /* both the public and the private key */
#define NOTIFIER_SEAL_KEY_ID_LEN 64 /* hex digits, without the NUL */
#define NOTIFIER_SEAL_HEADER_BYTES 4
#define NOTIFIER_SEAL_ENC_BYTES 32
#define NOTIFIER_SEAL_TAG_BYTES 16
#define NOTIFIER_SEAL_OVERHEAD (NOTIFIER_SEAL_HEADER_BYTES + NOTIFIER_SEAL_ENC_BYTES + NOTIFIER_SEAL_TAG_BYTES)
/* The largest secrets object sealed, and so the largest blob opened. */
#define NOTIFIER_SEAL_MAX_PLAIN 16384
#define NOTIFIER_SEAL_MAX_BLOB (NOTIFIER_SEAL_MAX_PLAIN + NOTIFIER_SEAL_OVERHEAD)
/* A channel id (cw_valid_id: at most 128 characters). */
#define NOTIFIER_SEAL_MAX_CHANNEL_ID 128

/* A fresh key pair. Returns 0, or -1 (nothing written to priv then). */
int notifier_seal_keygen(uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], uint8_t priv[NOTIFIER_SEAL_KEY_BYTES]);

/* The public key of a private key. Returns 0, or -1 when priv is not a
 * usable X25519 private key. */
int notifier_seal_public_key(const uint8_t priv[NOTIFIER_SEAL_KEY_BYTES], uint8_t pub[NOTIFIER_SEAL_KEY_BYTES]);

/* The key id of a public key: 64 lowercase hex digits and a NUL. */
void notifier_seal_key_id(const uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], char out[NOTIFIER_SEAL_KEY_ID_LEN + 1]);

/* Reads the private key file `name` in dir_fd (32 bytes, a regular file of
 * ours with mode 0600), or creates it with a fresh key when it does not
 * exist, and derives the public key. Returns 0, or -1 with why filled. */
int notifier_seal_key_load(int dir_fd, const char *name, uint8_t priv[NOTIFIER_SEAL_KEY_BYTES],
			   uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], char *why, size_t why_len);

/* Seals len bytes (at most NOTIFIER_SEAL_MAX_PLAIN) for the channel
 * channel_id (1 to NOTIFIER_SEAL_MAX_CHANNEL_ID characters) to pub, into
 * out, which has room for len + NOTIFIER_SEAL_OVERHEAD. Returns the blob's
 * length, or -1 (bad arguments, too long, no room, an unusable public key).
 * The caller wipes its plaintext. */
long notifier_seal(const uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], const char *channel_id, const uint8_t *in,
		   size_t len, uint8_t *out, size_t cap);

/* Opens a blob sealed for channel_id with priv into out (room for
 * len - NOTIFIER_SEAL_OVERHEAD). Returns the plaintext's length, or -1
 * when the blob is malformed, oversize, of another version, for another
 * channel, to another key, or changed; out is wiped then. The caller
 * wipes the plaintext once it is done with it. */
long notifier_seal_open(const uint8_t priv[NOTIFIER_SEAL_KEY_BYTES], const char *channel_id, const uint8_t *in,
			size_t len, uint8_t *out, size_t cap);

/* Wipes every string member of a JSON object of secrets in jansson's own
 * buffers (before it is sealed, or after it was opened and used); NULL or
 * a non-object does nothing. */
void notifier_seal_wipe_json(json_t *obj);

#endif

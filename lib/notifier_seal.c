/* See notifier_seal.h. */
#include "notifier_seal.h"

#include <openssl/hpke.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "secretbox.h"
#include "util.h"

static const uint8_t header[NOTIFIER_SEAL_HEADER_BYTES] = {'c', 'w', 'n', 0x01};
static const char purpose[] = "certward notifier channel secrets v1";

_Static_assert(SECRETBOX_KEY_BYTES == NOTIFIER_SEAL_KEY_BYTES, "a key file holds one X25519 private key");

/* info = purpose || 0x00 || channel id; 0, or -1 for a bad channel id. */
static int make_info(const char *channel_id, uint8_t *info, size_t *info_len)
{
	size_t id_len;

	if (!channel_id)
		return -1;
	id_len = strnlen(channel_id, NOTIFIER_SEAL_MAX_CHANNEL_ID + 1);
	if (id_len == 0 || id_len > NOTIFIER_SEAL_MAX_CHANNEL_ID)
		return -1;
	memcpy(info, purpose, sizeof purpose); /* with its NUL, the separator */
	memcpy(info + sizeof purpose, channel_id, id_len);
	*info_len = sizeof purpose + id_len;
	return 0;
}

int notifier_seal_keygen(uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], uint8_t priv[NOTIFIER_SEAL_KEY_BYTES])
{
	EVP_HPKE_KEY key;
	size_t pub_len = 0, priv_len = 0;
	int ok;

	EVP_HPKE_KEY_zero(&key);
	ok = EVP_HPKE_KEY_generate(&key, EVP_hpke_x25519_hkdf_sha256()) &&
	     EVP_HPKE_KEY_public_key(&key, pub, &pub_len, NOTIFIER_SEAL_KEY_BYTES) &&
	     pub_len == NOTIFIER_SEAL_KEY_BYTES &&
	     EVP_HPKE_KEY_private_key(&key, priv, &priv_len, NOTIFIER_SEAL_KEY_BYTES) &&
	     priv_len == NOTIFIER_SEAL_KEY_BYTES;
	EVP_HPKE_KEY_cleanup(&key);
	if (!ok)
		OPENSSL_cleanse(priv, NOTIFIER_SEAL_KEY_BYTES);
	return ok ? 0 : -1;
}

int notifier_seal_public_key(const uint8_t priv[NOTIFIER_SEAL_KEY_BYTES], uint8_t pub[NOTIFIER_SEAL_KEY_BYTES])
{
	EVP_HPKE_KEY key;
	size_t pub_len = 0;
	int ok;

	EVP_HPKE_KEY_zero(&key);
	ok = EVP_HPKE_KEY_init(&key, EVP_hpke_x25519_hkdf_sha256(), priv, NOTIFIER_SEAL_KEY_BYTES) &&
	     EVP_HPKE_KEY_public_key(&key, pub, &pub_len, NOTIFIER_SEAL_KEY_BYTES) &&
	     pub_len == NOTIFIER_SEAL_KEY_BYTES;
	EVP_HPKE_KEY_cleanup(&key);
	return ok ? 0 : -1;
}

void notifier_seal_key_id(const uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], char out[NOTIFIER_SEAL_KEY_ID_LEN + 1])
{
	uint8_t digest[SHA256_DIGEST_LENGTH];

	SHA256(pub, NOTIFIER_SEAL_KEY_BYTES, digest);
	hex_encode(digest, sizeof digest, out);
}

int notifier_seal_key_load(int dir_fd, const char *name, uint8_t priv[NOTIFIER_SEAL_KEY_BYTES],
			   uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], char *why, size_t why_len)
{
	/* An X25519 private key is any 32 random bytes (clamped when used):
	 * the secrets key file's rules and creation serve as they are. */
	if (secretbox_key_load(dir_fd, name, priv, why, why_len) != 0)
		return -1;
	if (notifier_seal_public_key(priv, pub) != 0) {
		snprintf(why, why_len, "%s does not hold a usable X25519 private key", name);
		OPENSSL_cleanse(priv, NOTIFIER_SEAL_KEY_BYTES);
		return -1;
	}
	return 0;
}

long notifier_seal(const uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], const char *channel_id, const uint8_t *in,
		   size_t len, uint8_t *out, size_t cap)
{
	uint8_t info[sizeof purpose + NOTIFIER_SEAL_MAX_CHANNEL_ID];
	size_t info_len, enc_len = 0, ct_len = 0;
	EVP_HPKE_CTX ctx;
	int ok;

	if (!pub || !out || (!in && len) || len > NOTIFIER_SEAL_MAX_PLAIN || cap < len + NOTIFIER_SEAL_OVERHEAD ||
	    make_info(channel_id, info, &info_len) != 0)
		return -1;
	memcpy(out, header, sizeof header);
	EVP_HPKE_CTX_zero(&ctx);
	ok = EVP_HPKE_CTX_setup_sender(&ctx, out + sizeof header, &enc_len, NOTIFIER_SEAL_ENC_BYTES,
				       EVP_hpke_x25519_hkdf_sha256(), EVP_hpke_hkdf_sha256(),
				       EVP_hpke_chacha20_poly1305(), pub, NOTIFIER_SEAL_KEY_BYTES, info, info_len) &&
	     enc_len == NOTIFIER_SEAL_ENC_BYTES &&
	     EVP_HPKE_CTX_seal(&ctx, out + sizeof header + NOTIFIER_SEAL_ENC_BYTES, &ct_len,
			       cap - sizeof header - NOTIFIER_SEAL_ENC_BYTES, in, len, header, sizeof header) &&
	     ct_len == len + NOTIFIER_SEAL_TAG_BYTES;
	EVP_HPKE_CTX_cleanup(&ctx);
	return ok ? (long)(sizeof header + NOTIFIER_SEAL_ENC_BYTES + ct_len) : -1;
}

long notifier_seal_open(const uint8_t priv[NOTIFIER_SEAL_KEY_BYTES], const char *channel_id, const uint8_t *in,
			size_t len, uint8_t *out, size_t cap)
{
	uint8_t info[sizeof purpose + NOTIFIER_SEAL_MAX_CHANNEL_ID];
	size_t info_len, pt_len = 0;
	EVP_HPKE_KEY key;
	EVP_HPKE_CTX ctx;
	int ok;

	if (!priv || !in || !out || len < NOTIFIER_SEAL_OVERHEAD || len > NOTIFIER_SEAL_MAX_BLOB ||
	    cap < len - NOTIFIER_SEAL_OVERHEAD || memcmp(in, header, sizeof header) != 0 ||
	    make_info(channel_id, info, &info_len) != 0)
		return -1;
	EVP_HPKE_KEY_zero(&key);
	EVP_HPKE_CTX_zero(&ctx);
	ok = EVP_HPKE_KEY_init(&key, EVP_hpke_x25519_hkdf_sha256(), priv, NOTIFIER_SEAL_KEY_BYTES) &&
	     EVP_HPKE_CTX_setup_recipient(&ctx, &key, EVP_hpke_hkdf_sha256(), EVP_hpke_chacha20_poly1305(),
					  in + sizeof header, NOTIFIER_SEAL_ENC_BYTES, info, info_len) &&
	     EVP_HPKE_CTX_open(&ctx, out, &pt_len, cap, in + sizeof header + NOTIFIER_SEAL_ENC_BYTES,
			       len - sizeof header - NOTIFIER_SEAL_ENC_BYTES, header, sizeof header) &&
	     pt_len == len - NOTIFIER_SEAL_OVERHEAD;
	EVP_HPKE_CTX_cleanup(&ctx);
	EVP_HPKE_KEY_cleanup(&key);
	if (!ok) {
		OPENSSL_cleanse(out, cap < len ? cap : len);
		return -1;
	}
	return (long)pt_len;
}

void notifier_seal_wipe_json(json_t *obj)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* See acme.h. */
#include "acme.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/base64.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca.h"
#include "log.h"
#include "pki.h"
#include "secrets.h"
#include "validate.h"

/* The JWS algorithms of account keys, and the keys made for them. RS256:
 * RSA-3072, an account key lives as long as the issuer. */
static const struct {
	const char *name;
	enum pki_alg key;
} algs[] = {
	{"ES256", PKI_ECDSA_P256},
	{"ES384", PKI_ECDSA_P384},
	{"RS256", PKI_RSA_3072},
};
#define NALGS (sizeof algs / sizeof algs[0])

/* the longest base64url member eab_hmac_key we take (CAs hand out 32 to 64 bytes) */
#define EAB_KEY_B64_MAX 1024

struct account {
	char issuer_id[65];
	EVP_PKEY *key;
	size_t alg; /* index into algs */
	char jwk[ACME_JWK_MAX];
	size_t jwk_len;
	char thumbprint[44];
	uint64_t used; /* when last used, to drop the least recent */
};

struct acme_keys {
	char dir[1100]; /* key_dir/acme */
	char *passphrase;
	struct account *accounts[ACME_KEYS_MAX];
	size_t n;
	uint64_t clock;
};

/* Base64url without padding (RFC 7515 2) of in into out, which holds at
 * least 4 * ((len + 2) / 3) + 1 bytes; the length written. */
static size_t b64url(const uint8_t *in, size_t len, char *out)
{
	size_t n = EVP_EncodeBlock((uint8_t *)out, in, len);

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return n;
}

/* Base64url (padding tolerated) of in[0..len) into out (cap bytes): its
 * length, or -1 when it is not base64url or does not fit. */
static long b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	char *std;
	size_t n = len, o;
	long rc = -1;

	while (n > 0 && in[n - 1] == '=' && len - n < 2)
		n--;
	if (n % 4 == 1 || !(std = malloc(n + 4)))
		return -1;
	for (o = 0; o < n; o++) {
		char c = in[o];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			goto out;
		std[o] = c;
	}
	while (o % 4)
		std[o++] = '=';
	{
		size_t got;

		if (EVP_DecodeBase64(out, &got, cap, (const uint8_t *)std, o))
			rc = (long)got;
	}
out:
	OPENSSL_cleanse(std, n + 4);
	free(std);
	return rc;
}

static void account_free(struct account *a)
{
	if (!a)
		return;
	EVP_PKEY_free(a->key);
	free(a);
}

struct acme_keys *acme_keys_open(const struct cfg *section, const char *key_dir)
{
	struct acme_keys *k = calloc(1, sizeof *k);
	int bad;

	if (!k) {
		log_error("ACME account keys: out of memory");
		return NULL;
	}
	snprintf(k->dir, sizeof k->dir, "%s/acme", key_dir);
	/* read now, while the file can be read: keys are made and loaded later */
	k->passphrase = ca_passphrase(section, &bad);
	if (bad) {
		free(k);
		return NULL;
	}
	return k;
}

void acme_keys_free(struct acme_keys *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		account_free(k->accounts[i]);
	ca_passphrase_free(k->passphrase);
	free(k);
}

/* The JWS algorithm of a key (an index into algs), or -1. */
static int alg_of_key(EVP_PKEY *key)
{
	if (EVP_PKEY_id(key) == EVP_PKEY_RSA)
		return EVP_PKEY_bits(key) >= 2048 && EVP_PKEY_bits(key) <= 4096 ? 2 : -1;
	if (EVP_PKEY_id(key) == EVP_PKEY_EC) {
		int nid = EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key)));

		return nid == NID_X9_62_prime256v1 ? 0 : nid == NID_secp384r1 ? 1 : -1;
	}
	return -1;
}

/* The public JWK of a's key in RFC 7638's member order (EC: crv, kty, x, y;
 * RSA: e, kty, n), and its thumbprint. 0 or -1. */
static int make_jwk(struct account *a)
{
	uint8_t bin[1 + 2 * 66], digest[SHA256_DIGEST_LENGTH];
	char x[100], y[100];
	int n;

	if (EVP_PKEY_id(a->key) == EVP_PKEY_EC) {
		const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(a->key);
		size_t len = EC_POINT_point2oct(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec),
						POINT_CONVERSION_UNCOMPRESSED, bin, sizeof bin, NULL);
		size_t w = (len - 1) / 2;

		if (len < 3 || bin[0] != 4)
			return -1;
		b64url(bin + 1, w, x);
		b64url(bin + 1 + w, w, y);
		n = snprintf(a->jwk, sizeof a->jwk, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
			     a->alg == 0 ? "P-256" : "P-384", x, y);
	} else {
		const RSA *rsa = EVP_PKEY_get0_RSA(a->key);
		uint8_t nb[512], eb[16];
		char n64[700], e64[24];
		size_t nlen = BN_num_bytes(RSA_get0_n(rsa)), elen = BN_num_bytes(RSA_get0_e(rsa));

		/* unsigned big-endian without leading zeros (RFC 7518 6.3.1) */
		if (nlen > sizeof nb || elen > sizeof eb)
			return -1;
		BN_bn2bin(RSA_get0_n(rsa), nb);
		BN_bn2bin(RSA_get0_e(rsa), eb);
		b64url(nb, nlen, n64);
		b64url(eb, elen, e64);
		n = snprintf(a->jwk, sizeof a->jwk, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e64, n64);
	}
	if (n < 0 || (size_t)n >= sizeof a->jwk)
		return -1;
	a->jwk_len = (size_t)n;
	SHA256((const uint8_t *)a->jwk, a->jwk_len, digest);
	b64url(digest, sizeof digest, a->thumbprint);
	return 0;
}

/* key (taken over) as issuer_id's account in memory, the least recently
 * used one dropped when they are ACME_KEYS_MAX. NULL when out of memory
 * (key freed). */
static struct account *keep(struct acme_keys *k, const char *issuer_id, EVP_PKEY *key, int alg)
{
	struct account *a = calloc(1, sizeof *a);

	if (!a) {
		EVP_PKEY_free(key);
		return NULL;
	}
	snprintf(a->issuer_id, sizeof a->issuer_id, "%s", issuer_id);
	a->key = key;
	a->alg = (size_t)alg;
	if (make_jwk(a) != 0) {
		ERR_clear_error();
		account_free(a);
		return NULL;
	}
	if (k->n == ACME_KEYS_MAX) {
		size_t oldest = 0;

		for (size_t i = 1; i < k->n; i++)
			if (k->accounts[i]->used < k->accounts[oldest]->used)
				oldest = i;
		account_free(k->accounts[oldest]);
		k->accounts[oldest] = k->accounts[--k->n];
	}
	k->accounts[k->n++] = a;
	return a;
}

/* why from fmt, BoringSSL's error queue cleared; returns rc */
static int refuse(char *why, size_t whylen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int refuse(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return rc;
}

/* issuer_id's account: in memory, else read from its file. NULL with *rc
 * 0 when it has no key file, else -1 or -2 with why. */
static struct account *account_of(struct acme_keys *k, const char *issuer_id, int *rc, char *why, size_t whylen)
{
	char path[1200];
	EVP_PKEY *key;
	struct account *a;
	int alg;

	*rc = -1;
	if (!valid_resource_id(issuer_id, 64)) {
		refuse(why, whylen, -1, "issuer_id: not a valid id");
		return NULL;
	}
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->accounts[i]->issuer_id, issuer_id) == 0) {
			k->accounts[i]->used = ++k->clock;
			return k->accounts[i];
		}
	snprintf(path, sizeof path, "%s/%s.key", k->dir, issuer_id);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		*rc = 0;
		return NULL;
	}
	*rc = -2;
	if (!(key = pki_key_load(path, k->passphrase, "an ACME account key"))) {
		refuse(why, whylen, -2, "the ACME account key of issuer %s cannot be read (the signer's log says why)",
		       issuer_id);
		return NULL;
	}
	if ((alg = alg_of_key(key)) < 0) {
		EVP_PKEY_free(key);
		refuse(why, whylen, -2, "the ACME account key of issuer %s is of no ACME algorithm", issuer_id);
		return NULL;
	}
	if (!(a = keep(k, issuer_id, key, alg))) {
		refuse(why, whylen, -2, "out of memory");
		return NULL;
	}
	a->used = ++k->clock;
	*rc = 0;
	return a;
}

int acme_account_get(struct acme_keys *k, const char *issuer_id, const char *alg, struct acme_account *out,
		     char *why, size_t whylen)
{
	struct account *a;
	size_t want;
	int rc;
	char path[1200];
	EVP_PKEY *key;

	for (want = 0; want < NALGS && strcmp(algs[want].name, alg) != 0; want++)
		;
	if (want == NALGS)
		return refuse(why, whylen, -1, "alg: one of ES256, ES384, RS256");
	if (!(a = account_of(k, issuer_id, &rc, why, whylen)) && rc != 0)
		return rc;
	if (!a) {
		/* mkdirat: the seccomp filter allows it, not mkdir */
		if (mkdirat(AT_FDCWD, k->dir, 0700) != 0 && errno != EEXIST)
			return refuse(why, whylen, -2, "cannot create %s", k->dir);
		snprintf(path, sizeof path, "%s/%s.key", k->dir, issuer_id);
		if (!(key = pki_key_generate(algs[want].key)))
			return refuse(why, whylen, -2, "cannot make an ACME account key");
		if (pki_key_save(key, path, k->passphrase) != 0) {
			EVP_PKEY_free(key);
			return refuse(why, whylen, -2, "cannot write the ACME account key of issuer %s", issuer_id);
		}
		if (!(a = keep(k, issuer_id, key, (int)want)))
			return refuse(why, whylen, -2, "out of memory");
		a->used = ++k->clock;
		{
			char kv[200];

			snprintf(kv, sizeof kv, "issuer_id=%s alg=%s thumbprint=%s", issuer_id, algs[want].name,
				 a->thumbprint);
			log_event(LOG_INFO, NULL, kv, "made an ACME account key");
		}
	} else if (a->alg != want) {
		return refuse(why, whylen, -1, "the account key is %s", algs[a->alg].name);
	}
	out->jwk = a->jwk;
	out->jwk_len = a->jwk_len;
	out->thumbprint = a->thumbprint;
	return 0;
}

/* in is "<protected>.<payload>", both base64url, whose protected header
 * names alg: the signer signs JWS objects of that algorithm, nothing else.
 * 0 or -1 with why. */
static int check_signing_input(const uint8_t *in, size_t len, const char *alg, char *why, size_t whylen)
{
	const uint8_t *dot = len ? memchr(in, '.', len) : NULL;
	uint8_t *header;
	long n;
	json_t *j;
	const char *named;
	int rc = -1;

	if (!dot || dot == in)
		return refuse(why, whylen, -1, "signing_input: not <protected>.<payload>");
	for (const uint8_t *p = dot + 1; p < in + len; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_'))
			return refuse(why, whylen, -1, "signing_input: the payload is not base64url");
	/* room for what EVP_DecodeBase64 wants of the padded text */
	if (!(header = malloc((size_t)(dot - in) + 3)))
		return refuse(why, whylen, -1, "out of memory");
	n = b64url_decode((const char *)in, (size_t)(dot - in), header, (size_t)(dot - in) + 3);
	j = n < 0 ? NULL : json_loadb((const char *)header, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	free(header);
	named = json_string_value(json_object_get(j, "alg"));
	if (!json_is_object(j))
		refuse(why, whylen, -1, "signing_input: the protected header is not a base64url JSON object");
	else if (!named || strcmp(named, alg) != 0)
		refuse(why, whylen, -1, "signing_input: the protected header's alg is not %s", alg);
	else
		rc = 0;
	json_decref(j);
	return rc;
}

long acme_jws_sign(struct acme_keys *k, const char *issuer_id, const uint8_t *in, size_t len, uint8_t *sig,
		   char *why, size_t whylen)
{
	struct account *a;
	EVP_MD_CTX *ctx;
	uint8_t der[ACME_SIG_MAX];
	size_t der_len = sizeof der;
	int rc, ok;

	if (!(a = account_of(k, issuer_id, &rc, why, whylen))) {
		if (rc != 0)
			return rc;
		return refuse(why, whylen, -1, "no account key for issuer %s (ACME_ACCOUNT_GET makes it)", issuer_id);
	}
	if (check_signing_input(in, len, algs[a->alg].name, why, whylen) != 0)
		return -1;
	if (!(ctx = EVP_MD_CTX_new()))
		return refuse(why, whylen, -2, "out of memory");
	ok = EVP_DigestSignInit(ctx, NULL, a->alg == 1 ? EVP_sha384() : EVP_sha256(), NULL, a->key) &&
	     EVP_DigestSign(ctx, der, &der_len, in, len);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return refuse(why, whylen, -2, "the ACME account key of issuer %s did not sign", issuer_id);
	if (a->alg == 2) {
		memcpy(sig, der, der_len);
		return (long)der_len;
	}
	{
		/* RFC 7518 3.4: R and S as fixed-width big-endian integers, not DER */
		ECDSA_SIG *es = ECDSA_SIG_from_bytes(der, der_len);
		const BIGNUM *r, *s;
		size_t w = a->alg == 0 ? 32 : 48;

		if (!es)
			return refuse(why, whylen, -2, "the ACME account key of issuer %s did not sign", issuer_id);
		ECDSA_SIG_get0(es, &r, &s);
		ok = BN_bn2bin_padded(sig, w, r) && BN_bn2bin_padded(sig + w, w, s);
		ECDSA_SIG_free(es);
		if (!ok)
			return refuse(why, whylen, -2, "the ACME account key of issuer %s did not sign", issuer_id);
		return (long)(2 * w);
	}
}

long acme_eab_sign(const uint8_t *sealed, size_t sealed_len, const uint8_t *in, size_t len, uint8_t *mac,
		   char *why, size_t whylen)
{
	char b64[EAB_KEY_B64_MAX + 1];
	uint8_t key[EAB_KEY_B64_MAX];
	unsigned mac_len = 0;
	long n, klen;

	if (check_signing_input(in, len, "HS256", why, whylen) != 0)
		return -1;
	n = secrets_member(sealed, sealed_len, "eab_hmac_key", b64, sizeof b64, why, whylen);
	if (n < 0)
		return -1;
	if (n == 0)
		return refuse(why, whylen, -1, "the issuer has no eab_hmac_key");
	klen = b64url_decode(b64, (size_t)n, key, sizeof key);
	OPENSSL_cleanse(b64, sizeof b64);
	if (klen <= 0) {
		OPENSSL_cleanse(key, sizeof key);
		return refuse(why, whylen, -1, "the issuer's eab_hmac_key is not base64url");
	}
	if (!HMAC(EVP_sha256(), key, (size_t)klen, in, len, mac, &mac_len))
		mac_len = 0;
	OPENSSL_cleanse(key, sizeof key);
	if (mac_len != SHA256_DIGEST_LENGTH)
		return refuse(why, whylen, -2, "HMAC-SHA256 failed");
	return (long)mac_len;
}

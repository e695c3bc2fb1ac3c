/* See acme.h. */
#include "acme.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "lib/acme.h" /* base64url */
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

/* a key with its public JWK and thumbprint */
struct acct_key {
	EVP_PKEY *key; /* NULL: none */
	size_t alg;    /* index into algs */
	char jwk[ACME_JWK_MAX];
	size_t jwk_len;
	char thumbprint[44];
};

struct account {
	char issuer_id[65];
	struct acct_key cur;  /* the account key */
	struct acct_key next; /* a rollover's pending key (<issuer_id>.key.next) */
	bool next_read;       /* next is what the disk has */
	uint64_t used;        /* when last used, to drop the least recent */
};

struct acme_keys {
	char dir[1100]; /* key_dir/acme */
	char *passphrase;
	struct account *accounts[ACME_KEYS_MAX];
	size_t n;
	uint64_t clock;
};

/* Base64url (lib/acme.h; up to two '=' of padding tolerated) of
 * in[0..len) into out (cap bytes): its length, or -1 when it is not
 * base64url or does not fit. */
static long b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = len, got;

	while (n > 0 && in[n - 1] == '=' && len - n < 2)
		n--;
	return acme_b64url_decode(in, n, out, cap, &got) == 0 ? (long)got : -1;
}

static void key_clear(struct acct_key *x)
{
	EVP_PKEY_free(x->key);
	memset(x, 0, sizeof *x);
}

static void account_free(struct account *a)
{
	if (!a)
		return;
	EVP_PKEY_free(a->cur.key);
	EVP_PKEY_free(a->next.key);
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

/* The public JWK of x's key in RFC 7638's member order (EC: crv, kty, x, y;
 * RSA: e, kty, n), and its thumbprint. 0 or -1. */
static int make_jwk(struct acct_key *k)
{
	uint8_t bin[1 + 2 * 66], digest[SHA256_DIGEST_LENGTH];
	char x[100], y[100];
	int n;

	if (EVP_PKEY_id(k->key) == EVP_PKEY_EC) {
		const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k->key);
		size_t len = EC_POINT_point2oct(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec),
						POINT_CONVERSION_UNCOMPRESSED, bin, sizeof bin, NULL);
		size_t w = (len - 1) / 2;

		if (len < 3 || bin[0] != 4)
			return -1;
		acme_b64url_encode(bin + 1, w, x);
		acme_b64url_encode(bin + 1 + w, w, y);
		n = snprintf(k->jwk, sizeof k->jwk, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
			     k->alg == 0 ? "P-256" : "P-384", x, y);
	} else {
		const RSA *rsa = EVP_PKEY_get0_RSA(k->key);
		uint8_t nb[512], eb[16];
		char n64[700], e64[24];
		size_t nlen = BN_num_bytes(RSA_get0_n(rsa)), elen = BN_num_bytes(RSA_get0_e(rsa));

		/* unsigned big-endian without leading zeros (RFC 7518 6.3.1) */
		if (nlen > sizeof nb || elen > sizeof eb)
			return -1;
		BN_bn2bin(RSA_get0_n(rsa), nb);
		BN_bn2bin(RSA_get0_e(rsa), eb);
		acme_b64url_encode(nb, nlen, n64);
		acme_b64url_encode(eb, elen, e64);
		n = snprintf(k->jwk, sizeof k->jwk, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e64, n64);
	}
	if (n < 0 || (size_t)n >= sizeof k->jwk)
		return -1;
	k->jwk_len = (size_t)n;
	SHA256((const uint8_t *)k->jwk, k->jwk_len, digest);
	acme_b64url_encode(digest, sizeof digest, k->thumbprint);
	return 0;
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

/* key (taken over, of algs[alg]) into *x with its JWK: 0, or -1 (key freed) */
static int key_set(struct acct_key *x, EVP_PKEY *key, size_t alg)
{
	x->key = key;
	x->alg = alg;
	if (make_jwk(x) == 0)
		return 0;
	ERR_clear_error();
	key_clear(x);
	return -1;
}

/* key_dir/acme/<issuer_id>.key<suffix> */
static void key_path(const struct acme_keys *k, const char *issuer_id, const char *suffix, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s.key%s", k->dir, issuer_id, suffix);
}

/* The directory's entries to disk: a rename in it is durable once this
 * returns 0. */
static int sync_dir(const struct acme_keys *k)
{
	int fd = open(k->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* The key in path into *x: 0, or -2 with why. */
static int key_load(struct acme_keys *k, const char *path, const char *issuer_id, bool pending, struct acct_key *x,
		    char *why, size_t whylen)
{
	const char *what = pending ? "the pending ACME account key" : "the ACME account key";
	EVP_PKEY *key = pki_key_load(path, k->passphrase, pending ? "a pending ACME account key" : "an ACME account key");
	int alg;

	if (!key)
		return refuse(why, whylen, -2, "%s of issuer %s cannot be read (the signer's log says why)", what,
			      issuer_id);
	if ((alg = alg_of_key(key)) < 0) {
		EVP_PKEY_free(key);
		return refuse(why, whylen, -2, "%s of issuer %s is of no ACME algorithm", what, issuer_id);
	}
	if (key_set(x, key, (size_t)alg) != 0)
		return refuse(why, whylen, -2, "%s of issuer %s has no JWK", what, issuer_id);
	return 0;
}

/* cur (taken over) as issuer_id's account in memory, the least recently
 * used one dropped when they are ACME_KEYS_MAX. NULL when out of memory
 * (cur's key freed). */
static struct account *keep(struct acme_keys *k, const char *issuer_id, struct acct_key *cur)
{
	struct account *a = calloc(1, sizeof *a);

	if (!a) {
		key_clear(cur);
		return NULL;
	}
	snprintf(a->issuer_id, sizeof a->issuer_id, "%s", issuer_id);
	a->cur = *cur;
	cur->key = NULL;
	if (k->n == ACME_KEYS_MAX) {
		size_t oldest = 0;

		for (size_t i = 1; i < k->n; i++)
			if (k->accounts[i]->used < k->accounts[oldest]->used)
				oldest = i;
		account_free(k->accounts[oldest]);
		k->accounts[oldest] = k->accounts[--k->n];
	}
	k->accounts[k->n++] = a;
	a->used = ++k->clock;
	return a;
}

/* issuer_id's account dropped from memory (its file renamed away) */
static void forget(struct acme_keys *k, const char *issuer_id)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->accounts[i]->issuer_id, issuer_id) == 0) {
			account_free(k->accounts[i]);
			k->accounts[i] = k->accounts[--k->n];
			return;
		}
}

/* issuer_id's account: in memory, else read from its file. NULL with *rc
 * 0 when it has no key file, else -1 or -2 with why. */
static struct account *account_of(struct acme_keys *k, const char *issuer_id, int *rc, char *why, size_t whylen)
{
	char path[ACME_PATH_MAX];
	struct acct_key cur = {0};
	struct account *a;

	*rc = -1;
	if (!valid_resource_id(issuer_id, 64)) {
		refuse(why, whylen, -1, "issuer_id: not a valid id");
		return NULL;
	}
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->accounts[i]->issuer_id, issuer_id) == 0) {
			k->accounts[i]->used = ++k->clock;
			*rc = 0;
			return k->accounts[i];
		}
	key_path(k, issuer_id, "", path, sizeof path);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		*rc = 0;
		return NULL;
	}
	if ((*rc = key_load(k, path, issuer_id, false, &cur, why, whylen)) != 0)
		return NULL;
	if (!(a = keep(k, issuer_id, &cur))) {
		*rc = refuse(why, whylen, -2, "out of memory");
		return NULL;
	}
	return a;
}

/* issuer_id's account, which must have a key: NULL with *rc -3 (no key),
 * -1 or -2, and why. */
static struct account *account_with_key(struct acme_keys *k, const char *issuer_id, int *rc, char *why,
					size_t whylen)
{
	struct account *a = account_of(k, issuer_id, rc, why, whylen);

	if (!a && *rc == 0)
		*rc = refuse(why, whylen, ACME_NO_KEY, "no account key for issuer %s (ACME_ACCOUNT_GET makes it)",
			     issuer_id);
	return a;
}

/* a's pending key: in memory, else read from its file. NULL with *rc 0
 * when there is none, else -2 with why. */
static struct acct_key *pending_of(struct acme_keys *k, struct account *a, int *rc, char *why, size_t whylen)
{
	char path[ACME_PATH_MAX];

	*rc = 0;
	if (a->next_read)
		return a->next.key ? &a->next : NULL;
	key_path(k, a->issuer_id, ".next", path, sizeof path);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		a->next_read = true;
		return NULL;
	}
	if ((*rc = key_load(k, path, a->issuer_id, true, &a->next, why, whylen)) != 0)
		return NULL;
	a->next_read = true;
	return &a->next;
}

static void answer(const struct acct_key *x, struct acme_pubkey *out)
{
	out->jwk = x->jwk;
	out->jwk_len = x->jwk_len;
	out->thumbprint = x->thumbprint;
}

/* an index into algs, NALGS for "" (none asked for), or -1 */
static int alg_named(const char *alg)
{
	size_t i;

	if (!*alg)
		return (int)NALGS;
	for (i = 0; i < NALGS && strcmp(algs[i].name, alg) != 0; i++)
		;
	return i < NALGS ? (int)i : -1;
}

/* a new key of algs[alg] into *x, written to path (0600, wrapped) and its
 * directory synced: 0, or -2 with why */
static int key_make(struct acme_keys *k, const char *issuer_id, size_t alg, const char *path, struct acct_key *x,
		    char *why, size_t whylen)
{
	EVP_PKEY *key;

	/* mkdirat: the seccomp filter allows it, not mkdir */
	if (mkdirat(AT_FDCWD, k->dir, 0700) != 0 && errno != EEXIST)
		return refuse(why, whylen, -2, "cannot create %s", k->dir);
	if (!(key = pki_key_generate(algs[alg].key)) || key_set(x, key, alg) != 0)
		return refuse(why, whylen, -2, "cannot make an ACME account key");
	if (pki_key_save(x->key, path, k->passphrase) != 0 || sync_dir(k) != 0) {
		key_clear(x);
		unlink(path);
		return refuse(why, whylen, -2, "cannot write the ACME account key of issuer %s", issuer_id);
	}
	return 0;
}

static void log_key(const char *issuer_id, const struct acct_key *x, const char *more, const char *msg)
{
	char kv[400];

	snprintf(kv, sizeof kv, "issuer_id=%s alg=%s thumbprint=%s%s", issuer_id, algs[x->alg].name, x->thumbprint,
		 more);
	log_event(LOG_INFO, NULL, kv, "%s", msg);
}

int acme_account_get(struct acme_keys *k, const char *issuer_id, const char *alg, struct acme_pubkey *out,
		     char *why, size_t whylen)
{
	struct account *a;
	struct acct_key made = {0};
	int want = alg_named(alg), rc;
	char path[ACME_PATH_MAX];

	if (want < 0)
		return refuse(why, whylen, -1, "alg: one of ES256, ES384, RS256");
	if (!(a = account_of(k, issuer_id, &rc, why, whylen)) && rc != 0)
		return rc;
	if (!a) {
		if (want == (int)NALGS)
			return refuse(why, whylen, ACME_NO_KEY, "no account key for issuer %s", issuer_id);
		key_path(k, issuer_id, "", path, sizeof path);
		if ((rc = key_make(k, issuer_id, (size_t)want, path, &made, why, whylen)) != 0)
			return rc;
		if (!(a = keep(k, issuer_id, &made)))
			return refuse(why, whylen, -2, "out of memory");
		log_key(issuer_id, &a->cur, "", "made an ACME account key");
	} else if (want != (int)NALGS && a->cur.alg != (size_t)want) {
		return refuse(why, whylen, -1, "the account key is %s", algs[a->cur.alg].name);
	}
	answer(&a->cur, out);
	return 0;
}

/* in is "<protected>.<payload>", both base64url, whose protected header
 * names alg: the signer signs JWS objects of that algorithm, nothing else.
 * 0 (with the header in *header when header is not NULL) or -1 with why. */
static int check_signing_input(const uint8_t *in, size_t len, const char *alg, json_t **header, char *why,
			       size_t whylen)
{
	const uint8_t *dot = len ? memchr(in, '.', len) : NULL;
	uint8_t *text;
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
	/* the decoded text is shorter than its base64url */
	if (!(text = malloc((size_t)(dot - in) + 3)))
		return refuse(why, whylen, -1, "out of memory");
	n = b64url_decode((const char *)in, (size_t)(dot - in), text, (size_t)(dot - in) + 3);
	j = n < 0 ? NULL : json_loadb((const char *)text, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	named = json_string_value(json_object_get(j, "alg"));
	if (!json_is_object(j))
		refuse(why, whylen, -1, "signing_input: the protected header is not a base64url JSON object");
	else if (!named || strcmp(named, alg) != 0)
		refuse(why, whylen, -1, "signing_input: the protected header's alg is not %s", alg);
	else
		rc = 0;
	if (rc == 0 && header)
		*header = j;
	else
		json_decref(j);
	return rc;
}

/* The JWS signature of in with x's key into sig: its length, or -2 with why. */
static long sign_with(const struct acct_key *x, const char *issuer_id, const uint8_t *in, size_t len, uint8_t *sig,
		      char *why, size_t whylen)
{
	EVP_MD_CTX *ctx;
	uint8_t der[ACME_SIG_MAX];
	size_t der_len = sizeof der;
	int ok;

	if (!(ctx = EVP_MD_CTX_new()))
		return refuse(why, whylen, -2, "out of memory");
	ok = EVP_DigestSignInit(ctx, NULL, x->alg == 1 ? EVP_sha384() : EVP_sha256(), NULL, x->key) &&
	     EVP_DigestSign(ctx, der, &der_len, in, len);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return refuse(why, whylen, -2, "the ACME account key of issuer %s did not sign", issuer_id);
	if (x->alg == 2) {
		memcpy(sig, der, der_len);
		return (long)der_len;
	}
	{
		/* RFC 7518 3.4: R and S as fixed-width big-endian integers, not DER */
		ECDSA_SIG *es = ECDSA_SIG_from_bytes(der, der_len);
		const BIGNUM *r, *s;
		size_t w = x->alg == 0 ? 32 : 48;

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

long acme_jws_sign(struct acme_keys *k, const char *issuer_id, const uint8_t *in, size_t len, uint8_t *sig,
		   char *why, size_t whylen)
{
	struct account *a;
	int rc;

	if (!(a = account_of(k, issuer_id, &rc, why, whylen))) {
		if (rc != 0)
			return rc;
		return refuse(why, whylen, -1, "no account key for issuer %s (ACME_ACCOUNT_GET makes it)", issuer_id);
	}
	if (check_signing_input(in, len, algs[a->cur.alg].name, NULL, why, whylen) != 0)
		return -1;
	return sign_with(&a->cur, issuer_id, in, len, sig, why, whylen);
}

/* ---- key rollover (RFC 8555 7.3.5) and retirement ---- */

int acme_key_next(struct acme_keys *k, const char *issuer_id, const char *alg, struct acme_pubkey *out, char *why,
		  size_t whylen)
{
	int want = alg_named(alg), rc;
	struct account *a;
	struct acct_key *p;
	char path[ACME_PATH_MAX];

	if (want < 0)
		return refuse(why, whylen, -1, "alg: one of ES256, ES384, RS256");
	if (!(a = account_with_key(k, issuer_id, &rc, why, whylen)))
		return rc;
	p = pending_of(k, a, &rc, why, whylen);
	if (rc != 0)
		return rc;
	if (want == (int)NALGS) {
		if (!p)
			return refuse(why, whylen, 1, "no key rollover is pending for issuer %s", issuer_id);
	} else {
		if (p)
			return refuse(why, whylen, ACME_PENDING,
				      "a key rollover is pending for issuer %s (key %s): commit or abort it first",
				      issuer_id, p->thumbprint);
		key_path(k, issuer_id, ".next", path, sizeof path);
		if ((rc = key_make(k, issuer_id, (size_t)want, path, &a->next, why, whylen)) != 0)
			return rc;
		a->next_read = true;
		p = &a->next;
		log_key(issuer_id, p, "", "made a pending ACME account key (rollover)");
	}
	answer(p, out);
	return 0;
}

/* The JSON text jwk (a key's, as made here) equals v. */
static bool same_jwk(const char *jwk, json_t *v)
{
	json_t *j = json_loads(jwk, 0, NULL);
	bool same = j && v && json_equal(j, v);

	json_decref(j);
	return same;
}

/* in is the inner JWS of a keyChange (RFC 8555 7.3.5) for the rollover
 * from cur to next: protected {"alg" next's, "jwk" next's, ...}, payload
 * {"account": a string, "oldKey": cur's JWK}. 0 or -1 with why. */
static int check_key_change(const uint8_t *in, size_t len, const struct acct_key *cur, const struct acct_key *next,
			    char *why, size_t whylen)
{
	json_t *header = NULL, *payload = NULL;
	const uint8_t *dot;
	uint8_t *text;
	size_t plen;
	long n;
	int rc = -1;

	if (check_signing_input(in, len, algs[next->alg].name, &header, why, whylen) != 0)
		return -1;
	if (!same_jwk(next->jwk, json_object_get(header, "jwk"))) {
		json_decref(header);
		return refuse(why, whylen, -1, "signing_input: the protected header's jwk is not the pending key");
	}
	json_decref(header);
	dot = memchr(in, '.', len);
	plen = len - (size_t)(dot + 1 - in);
	if (!(text = malloc(plen + 3)))
		return refuse(why, whylen, -1, "out of memory");
	n = b64url_decode((const char *)dot + 1, plen, text, plen + 3);
	payload = n <= 0 ? NULL : json_loadb((const char *)text, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (!json_is_object(payload) || !json_is_string(json_object_get(payload, "account")))
		refuse(why, whylen, -1, "signing_input: the payload is not a keyChange object");
	else if (!same_jwk(cur->jwk, json_object_get(payload, "oldKey")))
		refuse(why, whylen, -1, "signing_input: the payload's oldKey is not the account key");
	else
		rc = 0;
	json_decref(payload);
	return rc;
}

long acme_jws_sign_next(struct acme_keys *k, const char *issuer_id, const uint8_t *in, size_t len, uint8_t *sig,
			char *why, size_t whylen)
{
	struct account *a;
	struct acct_key *p;
	int rc;

	if (!(a = account_with_key(k, issuer_id, &rc, why, whylen)))
		return rc;
	if (!(p = pending_of(k, a, &rc, why, whylen)))
		return rc ? rc : refuse(why, whylen, ACME_NO_KEY, "no key rollover is pending for issuer %s", issuer_id);
	if (check_key_change(in, len, &a->cur, p, why, whylen) != 0)
		return -1;
	return sign_with(p, issuer_id, in, len, sig, why, whylen);
}

int acme_key_commit(struct acme_keys *k, const char *issuer_id, const char *thumbprint, struct acme_pubkey *out,
		    char *why, size_t whylen)
{
	struct account *a;
	struct acct_key *p;
	char from[ACME_PATH_MAX], to[ACME_PATH_MAX], before[sizeof a->cur.thumbprint];
	int rc;

	if (!(a = account_with_key(k, issuer_id, &rc, why, whylen)))
		return rc;
	p = pending_of(k, a, &rc, why, whylen);
	if (rc != 0)
		return rc;
	if (!p) {
		/* committed already: an answer lost, asked again */
		if (strcmp(a->cur.thumbprint, thumbprint) == 0) {
			answer(&a->cur, out);
			return 0;
		}
		return refuse(why, whylen, ACME_NO_KEY, "no key rollover is pending for issuer %s", issuer_id);
	}
	if (strcmp(p->thumbprint, thumbprint) != 0)
		return refuse(why, whylen, -1, "the pending key of issuer %s has another thumbprint", issuer_id);
	key_path(k, issuer_id, ".next", from, sizeof from);
	key_path(k, issuer_id, "", to, sizeof to);
	if (rename(from, to) != 0)
		return refuse(why, whylen, -2, "cannot make the pending key of issuer %s its account key", issuer_id);
	memcpy(before, a->cur.thumbprint, sizeof before);
	EVP_PKEY_free(a->cur.key);
	a->cur = a->next;
	memset(&a->next, 0, sizeof a->next);
	a->next_read = true;
	{
		char more[80];

		snprintf(more, sizeof more, " previous=%s", before);
		log_key(issuer_id, &a->cur, more, "the pending ACME account key is the account key now (rollover)");
	}
	answer(&a->cur, out);
	if (sync_dir(k) != 0)
		return refuse(why, whylen, -2, "the account key of issuer %s is renamed but not synced to disk", issuer_id);
	return 0;
}

int acme_key_abort(struct acme_keys *k, const char *issuer_id, const char *thumbprint, char *why, size_t whylen)
{
	struct account *a;
	struct acct_key *p;
	char path[ACME_PATH_MAX];
	int rc;

	if (!(a = account_of(k, issuer_id, &rc, why, whylen)))
		return rc;
	if (!(p = pending_of(k, a, &rc, why, whylen)))
		return rc;
	if (strcmp(p->thumbprint, thumbprint) != 0)
		return refuse(why, whylen, -1, "the pending key of issuer %s has another thumbprint", issuer_id);
	key_path(k, issuer_id, ".next", path, sizeof path);
	if (unlink(path) != 0 && errno != ENOENT)
		return refuse(why, whylen, -2, "cannot remove the pending key of issuer %s", issuer_id);
	log_key(issuer_id, p, "", "discarded the pending ACME account key (rollover)");
	key_clear(p);
	/* a pending key back after a crash is settled like any other */
	(void)sync_dir(k);
	return 0;
}

int acme_key_retire(struct acme_keys *k, const char *issuer_id, const char *thumbprint, char *file, size_t filelen,
		    char *why, size_t whylen)
{
	struct account *a;
	char from[ACME_PATH_MAX], to[ACME_PATH_MAX], suffix[64];
	long long now = (long long)time(NULL);
	int rc;

	file[0] = '\0';
	if (!(a = account_of(k, issuer_id, &rc, why, whylen)))
		return rc; /* no key: nothing to retire */
	if (strcmp(a->cur.thumbprint, thumbprint) != 0)
		return refuse(why, whylen, -1, "the account key of issuer %s has another thumbprint", issuer_id);
	key_path(k, issuer_id, "", from, sizeof from);
	/* the signer alone writes here: a name found free stays free */
	for (unsigned i = 0;; i++) {
		if (i == 100)
			return refuse(why, whylen, -2, "no free name to retire the account key of issuer %s", issuer_id);
		if (i)
			snprintf(suffix, sizeof suffix, ".deactivated.%lld.%u", now, i);
		else
			snprintf(suffix, sizeof suffix, ".deactivated.%lld", now);
		key_path(k, issuer_id, suffix, to, sizeof to);
		if (access(to, F_OK) != 0 && errno == ENOENT)
			break;
	}
	if (rename(from, to) != 0)
		return refuse(why, whylen, -2, "cannot retire the account key of issuer %s", issuer_id);
	key_path(k, issuer_id, ".next", from, sizeof from);
	(void)unlink(from);
	snprintf(file, filelen, "%s.key%s", issuer_id, suffix);
	{
		char more[200];

		snprintf(more, sizeof more, " file=%s", file);
		log_key(issuer_id, &a->cur, more, "retired the ACME account key (account deactivated)");
	}
	forget(k, issuer_id);
	if (sync_dir(k) != 0)
		return refuse(why, whylen, -2, "the account key of issuer %s is retired but not synced to disk", issuer_id);
	return 0;
}

long acme_eab_sign(const uint8_t *sealed, size_t sealed_len, const uint8_t *in, size_t len, uint8_t *mac,
		   char *why, size_t whylen)
{
	char b64[EAB_KEY_B64_MAX + 1];
	uint8_t key[EAB_KEY_B64_MAX];
	unsigned mac_len = 0;
	long n, klen;

	if (check_signing_input(in, len, "HS256", NULL, why, whylen) != 0)
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

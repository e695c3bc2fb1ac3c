#include "keys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "fsutil.h"

int key_params_ok(enum key_alg alg, int bits)
{
	switch (alg) {
	case KEY_ECDSA: return bits == 256 || bits == 384;
	case KEY_RSA: return bits == 2048 || bits == 3072 || bits == 4096;
	case KEY_ED25519: return bits == 0 || bits == 256;
	}
	return 0;
}

int key_alg_from_name(const char *s, enum key_alg *alg)
{
	if (!s)
		return -1;
	if (strcasecmp(s, "ECDSA") == 0 || strcasecmp(s, "EC") == 0)
		*alg = KEY_ECDSA;
	else if (strcasecmp(s, "RSA") == 0)
		*alg = KEY_RSA;
	else if (strcasecmp(s, "Ed25519") == 0)
		*alg = KEY_ED25519;
	else
		return -1;
	return 0;
}

const char *key_alg_name(enum key_alg alg)
{
	switch (alg) {
	case KEY_ECDSA: return "ECDSA";
	case KEY_RSA: return "RSA";
	case KEY_ED25519: return "Ed25519";
	}
	return "?";
}

EVP_PKEY *key_generate(enum key_alg alg, int bits, char *why, size_t whylen)
{
	EVP_PKEY *pkey = NULL;

	if (!key_params_ok(alg, bits)) {
		snprintf(why, whylen, "unsupported key: %s %d", key_alg_name(alg), bits);
		return NULL;
	}
	if (alg == KEY_ECDSA) {
		EC_KEY *ec = EC_KEY_new_by_curve_name(bits == 384 ? NID_secp384r1 : NID_X9_62_prime256v1);

		pkey = EVP_PKEY_new();
		if (!ec || !pkey || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
			EC_KEY_free(ec);
			goto fail;
		}
	} else if (alg == KEY_RSA) {
		RSA *rsa = RSA_new();
		BIGNUM *e = BN_new();

		pkey = EVP_PKEY_new();
		if (!rsa || !e || !pkey || !BN_set_word(e, RSA_F4) ||
		    !RSA_generate_key_ex(rsa, bits, e, NULL) || !EVP_PKEY_assign_RSA(pkey, rsa)) {
			RSA_free(rsa);
			BN_free(e);
			goto fail;
		}
		BN_free(e);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);

		if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1) {
			EVP_PKEY_CTX_free(ctx);
			goto fail;
		}
		EVP_PKEY_CTX_free(ctx);
	}
	return pkey;
fail:
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	snprintf(why, whylen, "cannot generate a %s %d key", key_alg_name(alg), bits);
	return NULL;
}

char *key_to_pem(EVP_PKEY *key, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	const uint8_t *data;
	size_t n;
	char *out = NULL;

	if (!b)
		return NULL;
	if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) &&
	    BIO_mem_contents(b, &data, &n)) {
		out = malloc(n + 1);
		if (out) {
			memcpy(out, data, n);
			out[n] = 0;
			*len = n;
		}
		/* the BIO's buffer held the key too */
		OPENSSL_cleanse((void *)data, n);
	}
	BIO_free(b);
	ERR_clear_error();
	return out;
}

EVP_PKEY *key_from_pem(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k;

	if (!b)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	return k;
}

EVP_PKEY *key_load(const char *path)
{
	size_t len = 0;
	char *pem = read_file_max(path, 64 * 1024, &len);
	EVP_PKEY *k;

	if (!pem)
		return NULL;
	k = key_from_pem(pem, len);
	free_wiped(pem, len);
	return k;
}

int key_save(EVP_PKEY *key, const char *path, char *why, size_t whylen)
{
	size_t len = 0;
	char *pem = key_to_pem(key, &len);
	struct file_meta own = {.set = 1, .mode = 0600, .uid = geteuid(), .gid = getegid()};
	int rc;

	if (!pem) {
		snprintf(why, whylen, "cannot encode the key");
		return -1;
	}
	rc = atomic_write(path, pem, len, 0600, &own, why, whylen);
	free_wiped(pem, len);
	return rc;
}

static GENERAL_NAME *san_entry(const char *s)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	unsigned char buf[16];

	if (!gn)
		return NULL;
	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);

		if (!ip)
			goto fail;
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
	} else {
		ASN1_IA5STRING *dns = ASN1_IA5STRING_new();

		if (!dns || !ASN1_STRING_set(dns, s, (int)strlen(s))) {
			ASN1_IA5STRING_free(dns);
			goto fail;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
	}
	return gn;
fail:
	GENERAL_NAME_free(gn);
	return NULL;
}

char *csr_make(EVP_PKEY *key, const char *cn, const char *const *sans, size_t nsans, char *why,
	       size_t whylen)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	GENERAL_NAMES *gens = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	BIO *b = NULL;
	const uint8_t *data;
	size_t n;
	char *out = NULL;
	int ed = EVP_PKEY_id(key) == EVP_PKEY_ED25519;

	if (!req || !name || !X509_REQ_set_version(req, X509_REQ_VERSION_1))
		goto fail;
	if (cn && *cn &&
	    !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const uint8_t *)cn,
					(int)strlen(cn), -1, 0))
		goto fail;
	if (!X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key))
		goto fail;
	if (nsans > 0) {
		gens = GENERAL_NAMES_new();
		if (!gens)
			goto fail;
		for (size_t i = 0; i < nsans; i++) {
			GENERAL_NAME *gn = san_entry(sans[i]);

			if (!gn || !sk_GENERAL_NAME_push(gens, gn)) {
				GENERAL_NAME_free(gn);
				goto fail;
			}
		}
		if (!X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) ||
		    !X509_REQ_add_extensions(req, exts))
			goto fail;
	}
	/* Ed25519 signs the message itself: no digest */
	if (!X509_REQ_sign(req, key, ed ? NULL : EVP_sha256()))
		goto fail;
	b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_X509_REQ(b, req) || !BIO_mem_contents(b, &data, &n))
		goto fail;
	out = malloc(n + 1);
	if (!out)
		goto fail;
	memcpy(out, data, n);
	out[n] = 0;
	goto done;
fail:
	snprintf(why, whylen, "cannot make the CSR");
done:
	ERR_clear_error();
	BIO_free(b);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return out;
}

X509 *cert_from_pem(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x;

	if (!b)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	return x;
}

int cert_matches_key(X509 *cert, EVP_PKEY *key)
{
	EVP_PKEY *pub = X509_get_pubkey(cert);
	int ok = pub && EVP_PKEY_cmp(pub, key) == 1;

	EVP_PKEY_free(pub);
	ERR_clear_error();
	return ok;
}

uint8_t *cert_der(X509 *cert, size_t *len)
{
	uint8_t *der = NULL;
	int n = i2d_X509(cert, &der);

	if (n <= 0)
		return NULL;
	*len = (size_t)n;
	return der;
}

static int asn1_to_time(const ASN1_TIME *t, time_t *out)
{
	int days, secs, ok;
	time_t now = time(NULL);
	ASN1_TIME *from = ASN1_TIME_set(NULL, now);

	ok = from && t && ASN1_TIME_diff(&days, &secs, from, t);
	ASN1_TIME_free(from);
	if (!ok)
		return -1;
	*out = now + (time_t)days * 86400 + secs;
	return 0;
}

int cert_validity(X509 *cert, time_t *not_before, time_t *not_after)
{
	int rc = asn1_to_time(X509_get0_notBefore(cert), not_before) == 0 &&
			 asn1_to_time(X509_get0_notAfter(cert), not_after) == 0
		 ? 0
		 : -1;

	ERR_clear_error();
	return rc;
}

int cert_serial_hex(X509 *cert, char *out, size_t outlen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int rc = -1;

	if (hex && strlen(hex) < outlen) {
		for (size_t i = 0; hex[i]; i++)
			out[i] = (char)((hex[i] >= 'A' && hex[i] <= 'F') ? hex[i] | 0x20 : hex[i]);
		out[strlen(hex)] = 0;
		rc = 0;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	ERR_clear_error();
	return rc;
}

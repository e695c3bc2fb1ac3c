/* See keygen.h. */
#include "keygen.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki.h"
#include "secrets.h"
#include "util.h"
#include "validate.h"

#define SANS_MAX 100

int keygen_allowed(const char *profile, size_t len)
{
	json_t *j = json_loadb(profile, len, 0, NULL);
	int ok = json_is_true(json_object_get(j, "server_keygen"));

	json_decref(j);
	return ok;
}

/* "DNS:a,IP:1.2.3.4,email:x@y" from the newline list, each name checked */
static int san_text(const char *sans, size_t len, char *out, size_t cap, char *why, size_t whylen)
{
	size_t o = 0, n = 0;
	const char *p = sans, *end = sans + len;

	out[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char name[256];
		const char *kind;

		if (l == 0 || l >= sizeof name)
			return pki_refuse(why, whylen, "sans: an empty or overlong name");
		memcpy(name, p, l);
		name[l] = '\0';
		if (valid_ip_address(name))
			kind = "IP";
		else if (strchr(name, '@') && valid_email(name))
			kind = "email";
		else if (valid_dns_name(name, true))
			kind = "DNS";
		else
			return pki_refuse(why, whylen, "sans: a name that is not a DNS name, IP address or e-mail address");
		if (++n > SANS_MAX)
			return pki_refuse(why, whylen, "sans: more than 100 names");
		o += (size_t)snprintf(out + o, cap > o ? cap - o : 0, "%s%s:%s", o ? "," : "", kind, name);
		if (o >= cap)
			return pki_refuse(why, whylen, "sans: too long");
		p += l + (nl ? 1 : 0);
	}
	return 0;
}

int keygen_csr(const char *alg, const char *cn, const char *sans, size_t sans_len, EVP_PKEY **key, uint8_t **csr,
	       size_t *csr_len, char *why, size_t whylen)
{
	int a = pki_alg_parse(alg);
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX ctx;
	char text[SANS_MAX * 260];
	uint8_t *der = NULL;
	int len, rc = -1;

	*key = NULL;
	*csr = NULL;
	if (a < 0)
		return pki_refuse(why, whylen, "key_algorithm: one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, "
					 "ed25519");
	if (san_text(sans, sans_len, text, sizeof text, why, whylen) != 0)
		return -1;
	if (!*cn && !*text)
		return pki_refuse(why, whylen, "a certificate needs a common name or a subject alternative name");
	*key = pki_key_generate((enum pki_alg)a);
	req = X509_REQ_new();
	name = X509_NAME_new();
	exts = sk_X509_EXTENSION_new_null();
	if (!*key || !req || !name || !exts || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    (*cn && !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, *key))
		goto crypto;
	if (*text) {
		X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
		if (!(ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_alt_name, text)) ||
		    !sk_X509_EXTENSION_push(exts, ext))
			goto crypto;
		ext = NULL;
		if (!X509_REQ_add_extensions(req, exts))
			goto crypto;
	}
	if (!X509_REQ_sign(req, *key, pki_sign_digest(*key)) || (len = i2d_X509_REQ(req, &der)) <= 0)
		goto crypto;
	*csr = der;
	*csr_len = (size_t)len;
	rc = 0;
	goto out;
crypto:
	pki_log_error("cannot make a key and CSR");
	pki_refuse(why, whylen, "cannot make the key and CSR (see the signer's log)");
	EVP_PKEY_free(*key);
	*key = NULL;
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return rc;
}

void keygen_wipe(char *pem, size_t len)
{
	if (pem) {
		OPENSSL_cleanse(pem, len);
		free(pem);
	}
}

int keygen_export(EVP_PKEY *key, char **pem, size_t *pem_len, uint8_t *sealed, size_t cap, size_t *sealed_len,
		  char *why, size_t whylen)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *data;
	size_t n, o = 0;
	char *text = NULL;
	long s;
	int rc = -1;

	*pem = NULL;
	if (!bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) || !BIO_mem_contents(bio, &data, &n) ||
	    !(*pem = malloc(n + 1)) || !(text = malloc(2 * n + 32))) {
		pki_refuse(why, whylen, "cannot encode the key");
		goto out;
	}
	memcpy(*pem, data, n);
	(*pem)[n] = '\0';
	*pem_len = n;
	OPENSSL_cleanse((void *)data, n);
	/* {"private_key_pem": "..."} by hand, so no copy is left unwiped */
	o = (size_t)sprintf(text, "{\"private_key_pem\":\"");
	o += pem_json_escape(*pem, n, text + o);
	text[o++] = '"';
	text[o++] = '}';
	if ((s = secrets_seal(NULL, 0, (const uint8_t *)text, o, sealed, cap, why, whylen)) < 0)
		goto out;
	*sealed_len = (size_t)s;
	rc = 0;
out:
	if (rc != 0 && *pem) {
		keygen_wipe(*pem, n);
		*pem = NULL;
	}
	if (text) {
		OPENSSL_cleanse(text, o);
		free(text);
	}
	BIO_free(bio);
	return rc;
}

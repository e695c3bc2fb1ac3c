/* See x509pem.h. */
#include "x509pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

char *x509pem_from_der(const uint8_t *der, size_t len, bool req)
{
	const uint8_t *p = der;
	X509 *x = req ? NULL : d2i_X509(NULL, &p, (long)len);
	X509_REQ *r = req ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *out;
	size_t n;
	char *s = NULL;

	if ((x || r) && bio && (x ? PEM_write_bio_X509(bio, x) : PEM_write_bio_X509_REQ(bio, r)) &&
	    BIO_mem_contents(bio, &out, &n) && (s = malloc(n + 1))) {
		memcpy(s, out, n);
		s[n] = '\0';
	}
	X509_free(x);
	X509_REQ_free(r);
	BIO_free(bio);
	ERR_clear_error();
	return s;
}

int x509pem_csr_der(const char *csr_pem, uint8_t **der, size_t *len, const char **why)
{
	BIO *bio;
	X509_REQ *req = NULL;
	uint8_t *out = NULL;
	int n;

	*der = NULL;
	if (strlen(csr_pem) > X509PEM_CSR_MAX) {
		*why = "csr_pem: longer than 16384 characters";
		return -1;
	}
	bio = BIO_new_mem_buf(csr_pem, (ssize_t)strlen(csr_pem));
	if (bio)
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	n = req ? i2d_X509_REQ(req, &out) : -1;
	X509_REQ_free(req);
	ERR_clear_error();
	if (n <= 0) {
		*why = "csr_pem: not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)";
		return -1;
	}
	if (!(*der = malloc((size_t)n))) {
		OPENSSL_free(out);
		*why = NULL;
		return -2;
	}
	memcpy(*der, out, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(out);
	return 0;
}

int x509pem_signed(const uint8_t *der, size_t der_len, const uint8_t *chain, size_t chain_len,
		   char fingerprint[65], char **pem_chain)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char *pem = x509pem_from_der(der, der_len, false);
	size_t plen = pem ? strlen(pem) : 0;

	*pem_chain = pem ? malloc(plen + chain_len + 1) : NULL;
	if (!*pem_chain) {
		free(pem);
		return -1;
	}
	SHA256(der, der_len, md);
	hex_encode(md, sizeof md, fingerprint);
	/* the certificate, then the CA chain */
	memcpy(*pem_chain, pem, plen);
	if (chain_len)
		memcpy(*pem_chain + plen, chain, chain_len);
	(*pem_chain)[plen + chain_len] = '\0';
	free(pem);
	return 0;
}

int x509pem_first_der(const char *pem, uint8_t **der, size_t *len)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	uint8_t *out = NULL;
	int n = x ? i2d_X509(x, &out) : -1;

	BIO_free(bio);
	X509_free(x);
	ERR_clear_error();
	*der = NULL;
	*len = 0;
	if (n <= 0 || !(*der = malloc((size_t)n))) {
		OPENSSL_free(out);
		return -1;
	}
	memcpy(*der, out, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(out);
	return 0;
}

#include "issue.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csr_policy.h"
#include "pki.h"
#include "validate.h"

int issue_prepare(struct ca *ca, const struct issue_request *rq, X509 **out, char *why, size_t whylen)
{
	X509 *cert = NULL, *issuer = ca_cert(ca);
	X509_NAME *subject = NULL;
	struct csr_checked c;
	char url[600];
	int64_t validity, ca_left;
	int rc = -1, rsa;

	*out = NULL;
	if (!valid_resource_id(rq->issuer_id, 64))
		return pki_refuse(why, whylen, "issuer_id: not a valid id");
	if (csr_policy_check(rq->csr, rq->csr_len, rq->profile, rq->profile_len, rq->validity_seconds,
			     rq->default_seconds, &c, why, whylen) != 0)
		return -1;
	validity = c.validity;
	ca_left = pki_asn1_unix(X509_get0_notAfter(issuer)) - (int64_t)time(NULL);
	if (ca_left <= 0) {
		pki_refuse(why, whylen, "the issuing CA has expired");
		goto out;
	}
	if (validity > ca_left)
		validity = ca_left; /* never past the CA's own expiry */

	cert = X509_new();
	subject = X509_NAME_new();
	rsa = EVP_PKEY_id(c.pub) == EVP_PKEY_RSA;
	if (!cert || !subject || !X509_set_version(cert, X509_VERSION_3) || pki_set_random_serial(cert) != 0 ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(issuer)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)validity) || !X509_set_pubkey(cert, c.pub))
		goto crypto;
	if (*c.cn && !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)c.cn, -1, -1, 0))
		goto crypto;
	if (!X509_set_subject_name(cert, subject) ||
	    !pki_add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
	    !pki_add_ext(cert, issuer, NID_key_usage,
			 rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature") ||
	    !pki_add_ext(cert, issuer, NID_ext_key_usage, c.ekus) ||
	    !pki_add_ext(cert, issuer, NID_subject_key_identifier, "hash") ||
	    !pki_add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always") ||
	    /* critical when the subject is empty (RFC 5280 4.2.1.6) */
	    !X509_add1_ext_i2d(cert, NID_subject_alt_name, c.sans, *c.cn ? 0 : 1, X509V3_ADD_DEFAULT))
		goto crypto;
	/* short-lived certificates are not revoked: no CRL or OCSP pointers */
	if (validity >= CSR_SHORT_LIVED_S) {
		snprintf(url, sizeof url, "URI:%s/.well-known/pki/crl/%s", rq->base_url, rq->issuer_id);
		if (!pki_add_ext(cert, issuer, NID_crl_distribution_points, url))
			goto crypto;
		snprintf(url, sizeof url, "OCSP;URI:%s/.well-known/pki/ocsp/%s", rq->base_url, rq->issuer_id);
		if (!pki_add_ext(cert, issuer, NID_info_access, url))
			goto crypto;
	}
	*out = cert;
	cert = NULL;
	rc = 0;
	goto out;
crypto:
	pki_log_error("cannot make a certificate");
	pki_refuse(why, whylen, "cannot make the certificate (see the signer's log)");
out:
	csr_checked_free(&c);
	X509_NAME_free(subject);
	X509_free(cert);
	return rc;
}

int issue_finish(struct ca *ca, struct ledger *ledger, const char *issuer_id, X509 *cert, struct issue_result *out,
		 char *why, size_t whylen)
{
	char lwhy[300];
	uint8_t *der = NULL;
	int len = i2d_X509(cert, &der);

	memset(out, 0, sizeof *out);
	if (len <= 0) {
		pki_log_error("cannot encode a certificate");
		return pki_refuse(why, whylen, "cannot make the certificate (see the signer's log)");
	}
	/* an intermediate's name constraints, and those above it, hold */
	if (ca_check_names(ca, der, (size_t)len, why, whylen) != 0) {
		OPENSSL_free(der);
		return -1;
	}
	pki_serial_hex(cert, out->serial, sizeof out->serial);
	/* staged: the caller commits the ledger before the certificate leaves */
	if (ledger_stage(ledger, "certificate", issuer_id, out->serial, der, (size_t)len, lwhy, sizeof lwhy) != 0) {
		pki_refuse(why, whylen, lwhy);
		OPENSSL_free(der);
		return -2;
	}
	out->der = der;
	out->der_len = (size_t)len;
	out->not_before = pki_asn1_unix(X509_get0_notBefore(cert));
	out->not_after = pki_asn1_unix(X509_get0_notAfter(cert));
	return 0;
}

int issue_sign(struct ca *ca, struct ledger *ledger, const struct issue_request *rq, struct issue_result *out,
	       char *why, size_t whylen)
{
	X509 *cert;
	int rc;

	memset(out, 0, sizeof *out);
	if (issue_prepare(ca, rq, &cert, why, whylen) != 0)
		return -1;
	if (!X509_sign(cert, ca_key(ca), pki_sign_digest(ca_key(ca)))) {
		pki_log_error("cannot sign a certificate");
		X509_free(cert);
		return pki_refuse(why, whylen, "cannot sign the certificate (see the signer's log)");
	}
	rc = issue_finish(ca, ledger, rq->issuer_id, cert, out, why, whylen);
	X509_free(cert);
	return rc;
}

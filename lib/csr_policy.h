/*
 * The rules a CSR must meet under a certificate profile, checked the same
 * way by the api (before it asks for a signature, to answer 400 naming the
 * rule) and by the signer (again, so that a compromised api gets nothing the
 * profile forbids). docs/pki.md, "Issuance".
 *
 * The profile is its record as JSON (schema/resources.json,
 * certificate_profiles): allowed_key_algorithms, max_ttl_seconds,
 * allowed_ekus, required_san_patterns, spiffe_uri_pattern,
 * allow_short_lived, enabled. Missing members mean no rule beyond the
 * floors: RSA 2048, ECDSA P-256.
 */
#ifndef CERTWARD_CSR_POLICY_H
#define CERTWARD_CSR_POLICY_H

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdint.h>

#define CSR_SHORT_LIVED_S 3600 /* under this, no CRL or OCSP entries, and the profile must allow it */

struct csr_checked {
	X509_REQ *req;
	EVP_PKEY *pub;
	GENERAL_NAMES *sans; /* checked; the CN when the CSR had none */
	char cn[80];         /* UTF-8, "" when the CSR has none */
	int64_t validity;    /* seconds: as asked, else the default within max_ttl_seconds */
	char ekus[160];      /* "serverAuth,clientAuth" */
	const char *key_alg; /* "ECDSA", "RSA", "Ed25519" */
	int key_bits;
};

/* 0 with *out filled (free with csr_checked_free), or -1 with why naming
 * the rule broken ("key: ...", "subjectAltName: ...", "validity: ...",
 * "csr: ...", "profile: ..."). */
int csr_policy_check(const uint8_t *der, size_t der_len, const char *profile, size_t profile_len,
		     uint64_t validity_asked, uint64_t default_seconds, struct csr_checked *out, char *why,
		     size_t whylen);
void csr_checked_free(struct csr_checked *c);

#endif

/* Signing an end-entity certificate from a CSR under a certificate profile.
 * The api checks the same rules first; the signer checks them again, so a
 * compromised api gets nothing the profile forbids. docs/pki.md,
 * "Issuance". */
#ifndef CERTWARD_SIGNER_ISSUE_H
#define CERTWARD_SIGNER_ISSUE_H

#include <stddef.h>
#include <openssl/x509.h>
#include <stdint.h>

#include "ca.h"
#include "ledger.h"

struct issue_request {
	const uint8_t *csr; /* DER */
	size_t csr_len;
	const char *profile; /* the profile record, JSON */
	size_t profile_len;
	const char *issuer_id; /* [A-Za-z0-9._-], 1..64 */
	uint64_t validity_seconds; /* 0: default_seconds, within the profile's max_ttl_seconds */
	uint64_t default_seconds;
	const char *base_url; /* CRL and OCSP URLs live under it */
};

struct issue_result {
	uint8_t *der; /* OPENSSL_free */
	size_t der_len;
	char serial[64];
	int64_t not_before, not_after;
};

/* 0 with *out filled and its ledger line staged: the caller must commit the
 * ledger (ledger_commit) before the certificate leaves, and drop it when
 * that fails; -1 with why naming the rule broken (EINVAL-class), or -2 when
 * the line could not be staged (nothing is handed out). */
int issue_sign(struct ca *ca, struct ledger *ledger, const struct issue_request *rq, struct issue_result *out,
	       char *why, size_t whylen);

/* issue_sign in three steps, for a signature made on another thread (a key
 * on a token): the certificate built and checked, not signed (0 with *cert;
 * -1 with why); then X509_sign; then issue_finish, on the ledger's thread,
 * with issue_sign's results. */
int issue_prepare(struct ca *ca, const struct issue_request *rq, X509 **cert, char *why, size_t whylen);
int issue_finish(struct ca *ca, struct ledger *ledger, const char *issuer_id, X509 *cert, struct issue_result *out,
		 char *why, size_t whylen);

#endif

/* The CA's side of revocation: CRLs (CRL_SIGN) and OCSP responses
 * (OCSP_SIGN, signed by a responder certificate per issuer that the signer
 * makes, keeps in key_dir/ocsp and renews before it expires). Like a
 * certificate, each signed object has its ledger line staged here and
 * leaves the signer only after ledger_commit. docs/pki.md, "Revocation". */
#ifndef CERTWARD_SIGNER_REVOKE_H
#define CERTWARD_SIGNER_REVOKE_H

#include <stddef.h>
#include <stdint.h>

#include "ca.h"
#include "codec.h"
#include "config.h"
#include "ledger.h"

#define REVOKE_CRL_ENTRIES_MAX 4000000u

/* A CRL signed, its ledger line staged, not yet handed out. */
struct revoke_crl {
	char issuer_id[129];
	uint64_t crl_number;
	int64_t next_update;  /* as asked, or the CA's expiry when sooner */
	int memfd;            /* where it goes; meaningful while der is set */
	uint8_t *der;         /* OPENSSL_malloc'd */
	size_t der_len;
	uint64_t der_offset;  /* in memfd: past the entries, page-aligned */
	char sha256[65];
};

/* Checks the request and the entries in fd (a memfd; taken: closed by
 * revoke_crl_free, or here on failure), builds and signs the CRL and stages
 * its ledger line. 0; -1 with why (the request breaks a rule); -2 (the
 * ledger line could not be staged). */
int revoke_crl_sign(struct ca *ca, struct ledger *ledger, const struct ipc_crl_sign *m, int fd,
		    struct revoke_crl *out, char *why, size_t whylen);
/* After the commit: writes the DER into the memfd at der_offset. 0 or -1. */
int revoke_crl_deliver(struct revoke_crl *c, char *why, size_t whylen);
void revoke_crl_free(struct revoke_crl *c);

struct revoke_ocsp {
	uint8_t *der; /* the OCSPResponse; OPENSSL_malloc'd */
	size_t der_len;
	int64_t this_update, next_update;
};

struct responders;
/* signer.ocsp_validity, signer.ocsp_responder_validity; key_dir/ocsp is
 * made 0700. NULL on failure (logged). */
struct responders *responders_open(const struct cfg *section, const char *key_dir, struct ledger *ledger);
void responders_free(struct responders *r);
uint64_t responders_rotations(const struct responders *r);
/* Renews every responder held that is due (OCSP_RESPONDERS_RENEW): 0 or -1
 * (why) when one could not be made; *renewed and *held say how many. */
int responders_renew_due(struct responders *r, uint32_t *renewed, uint32_t *held, char *why, size_t whylen);

/* Signs the response OCSP_SIGN asks for with issuer_id's responder (made or
 * renewed first when needed) and stages its ledger line. 0; -1 with why (a
 * malformed request); -2 (ledger); -3 (the CertID names another CA than
 * signing, the CA of the issuer). */
int revoke_ocsp_sign(struct responders *r, struct ca *signing, const struct ipc_ocsp_sign *m, struct revoke_ocsp *out,
		     char *why, size_t whylen);

#endif

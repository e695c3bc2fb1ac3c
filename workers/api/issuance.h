/*
 * POST /api/v1/certificates with a "csr_pem": the certificate is signed by
 * certward's own CA as the record is created (docs/pki.md, "Issuance through
 * the API"); for an ACME issuer the record is created with the Issuance job
 * that orders it from the CA (managed_certificates.create_ordered, after
 * the same checks and one more: the CSR names exactly the record's names).
 * rest.c hands the request over once the body is checked:
 *
 *   1. the CSR (PEM) is read, the issuer must be a Local one and enabled,
 *      the profile (certificate_profile_id) is fetched, and the CSR is
 *      checked against it (lib/csr_policy.h): 400 naming the rule;
 *   2. the signer signs it (CERT_SIGN; it checks again and writes its
 *      ledger) before anything is written, so a refusal or a signer that is
 *      down leaves nothing behind and the same request can be sent again;
 *   3. the record is created with the certificate as its first version
 *      (managed_certificates.create_issued: the record Active until the
 *      certificate expires, the version, the serial registered for the
 *      issuer, the audit events of both, in one statement).
 */
#ifndef CERTWARD_API_ISSUANCE_H
#define CERTWARD_API_ISSUANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "routes.h"

/* The answer: 201 with body (the record, Active, with latest_version), or
 * a problem (status, title, detail, field). For an ACME issuer nothing is
 * signed now: 202 with body (the record Pending with job_id and
 * job_status; for a renewal {"status", "job_id", "job_status"}; for an
 * agent's job {"status": "ordered"}) once the job that orders the
 * certificate is stored (docs/acme-client.md). */
typedef void (*issuance_done_cb)(void *arg, int status, const char *title, const char *detail,
				 const char *field, const char *body, size_t len);

/* body: the checked fields (JSON) without csr_pem. With keygen_alg (not
 * NULL; csr_pem is then NULL) the signer makes the key, where the profile
 * allows it (docs/pki.md, "Server-side key generation"), and the answer
 * carries it once as private_key_pem. done runs exactly once, possibly
 * before this returns. */
void issuance_run(struct route_call *rc, const char *body, const char *csr_pem, const char *keygen_alg,
		  issuance_done_cb done, void *arg);

/* POST /api/v1/certificates/{id}/renew with a csr_pem: the record's issuer
 * (Local) signs the CSR now under the record's profile, checked as for a
 * new record, and it becomes the record's latest version (the record
 * Active until its not_after). 201 with the version; 404 for no record,
 * 409 for one revoked or archived. */
void issuance_renew(struct route_call *rc, const char *id, const char *csr_pem, issuance_done_cb done, void *arg);
/* The same for the CSR of an agent's job (taken by agents.csr_take): for
 * an ACME issuer the job goes back to the scheduler with the CSR. */
void issuance_renew_job(struct route_call *rc, const char *id, const char *csr_pem, const char *job_id,
			issuance_done_cb done, void *arg);

/* A CSR in PEM (at most 16384 characters) as DER (*der: malloc'd): 0; -1
 * with *why naming what is wrong ("csr_pem: ..."); -2 out of memory. */
int issuance_csr_der(const char *csr_pem, uint8_t **der, size_t *len, const char **why);
/* A certificate (or, with req, a CSR) from DER to PEM (malloc'd), or NULL. */
char *issuance_der_to_pem(const uint8_t *der, size_t len, bool req);

#endif

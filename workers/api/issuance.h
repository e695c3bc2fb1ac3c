/*
 * POST /api/v1/certificates with a "csr_pem": the certificate is signed by
 * certward's own CA as the record is created (docs/pki.md, "Issuance through
 * the API"). rest.c hands the request over before it creates the record:
 *
 *   1. the CSR (PEM) is read, the issuer must be a Local one and enabled,
 *      the profile (certificate_profile_id) is fetched, and the CSR is
 *      checked against it (lib/csr_policy.h): 400 naming the rule;
 *   2. the signer signs it (CERT_SIGN; it checks again and writes its
 *      ledger) before anything is written, so a refusal or a signer that is
 *      down leaves nothing behind and the same request can be sent again;
 *   3. rest.c creates the record; issuance_record then stores the version
 *      (certificates.issued: version, serial, status Active, audit event).
 */
#ifndef CERTWARD_API_ISSUANCE_H
#define CERTWARD_API_ISSUANCE_H

#include <stddef.h>

#include "routes.h"

struct issuance;

/* the certificate is signed: go on and create the record */
typedef void (*issuance_signed_cb)(struct issuance *is, void *arg);
/* a problem to answer with (the issuance is gone) */
typedef void (*issuance_fail_cb)(void *arg, int status, const char *title, const char *detail,
				 const char *field);

/* body: the checked fields (JSON) without csr_pem. Exactly one of the two
 * callbacks runs, possibly before this returns. */
void issuance_start(struct route_call *rc, const char *body, const char *csr_pem, issuance_signed_cb ok,
		    issuance_fail_cb fail, void *arg);

/* The record was created (its JSON): the version is stored, then done runs
 * with the status and the body to answer (the record as it now is), and
 * the issuance is freed. */
typedef void (*issuance_done_cb)(void *arg, int status, const char *body, size_t len);
void issuance_record(struct issuance *is, const char *created, size_t len, issuance_done_cb done, void *arg);

/* A signed certificate whose record could not be created: forget it. */
void issuance_free(struct issuance *is);

#endif

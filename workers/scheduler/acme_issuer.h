/*
 * Certificates from an outside CA over ACME (RFC 8555): an issuer of type
 * ACME (docs/acme-client.md). Each job runs on a thread of its own, as a
 * plain sequence of steps (directory, account, order, authorizations and
 * their challenges, finalize, download); the HTTPS exchanges with the CA
 * block that thread only, and what needs another process — every JWS
 * signature (the signer holds the account key), the HTTP-01 answers (the
 * store, read by the api), DNS-01 hooks (the deploy executor) — goes
 * through the event loop and back.
 */
#ifndef CERTWARD_SCHEDULER_ACME_ISSUER_H
#define CERTWARD_SCHEDULER_ACME_ISSUER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker.h"

struct acme_job {
	const char *job_id, *issuer_id;
	const char *issuer_config; /* issuers.config (JSON) */
	const char *issuer_secret; /* issuers.secret_config as hex, still sealed; NULL or "" when none */
	const char *common_name;
	const char *sans; /* newline-separated */
	size_t sans_len;
	const uint8_t *csr; /* DER */
	size_t csr_len;
};

struct acme_result {
	uint8_t *der; /* the certificate; free() */
	size_t der_len;
	char *chain_pem; /* the certificates above it, PEM; free() */
	size_t chain_len;
};

/* rc 0: got it (res filled, owned by the callee now); -1: failed for good
 * (what the CA refused, a bad configuration); -2: may work later (the CA or
 * the network, rate limits). why is the CA's text where it gave one. */
typedef void (*acme_done_cb)(void *arg, int rc, const char *why, struct acme_result *res);

int acme_init(struct worker *w);
/* Copies what it needs of job; done is called on the event loop. 0, or -1
 * when no thread could be started (done is not called). */
int acme_start(const struct acme_job *job, acme_done_cb done, void *arg);
void acme_stop(void);

/* A certificate (DER) of an ACME issuer revoked at its CA (revokeCert by
 * the issuer's account, reason as the API spells it: "keyCompromise", ...);
 * alreadyRevoked counts as done. done as for acme_start (res NULL). */
struct acme_revocation {
	const char *id, *issuer_id, *issuer_config, *issuer_secret, *reason;
	const uint8_t *der;
	size_t der_len;
};
int acme_revoke_start(const struct acme_revocation *in, acme_done_cb done, void *arg);

/* An account action asked for through the API (acme_account_actions,
 * docs/acme-client.md, "Account key rollover and deactivation"): a key
 * rollover to a new key of new_alg (RFC 8555 7.3.5), or the account's
 * deactivation (7.3.6) and its key's retirement. old_thumbprint is the
 * account key's when it was asked for. One at a time per issuer: -1 while
 * one runs. done as for acme_start (res NULL). */
struct acme_account_action {
	const char *id, *issuer_id, *issuer_config, *issuer_secret;
	bool deactivate; /* else a key rollover */
	const char *new_alg, *old_thumbprint;
};
int acme_account_start(const struct acme_account_action *in, acme_done_cb done, void *arg);

/* A certificate's renewal information (RFC 9773 4.1): the issuer's
 * directory, then an unauthenticated GET of <renewalInfo>/<cert_id> (an
 * acme_ari_cert_id). done gets rc 0 with window true (start..end, Unix
 * seconds, explanation_url or NULL), or false when the CA has no
 * renewalInfo (offered false) or none for this certificate (404); -1/-2
 * with why for anything else (the CA's problem, the network, an answer
 * that does not parse). a is never NULL: retry_after is the renewalInfo
 * answer's Retry-After in seconds (0: none). 0, or -1 when it could not
 * start (done is not called). */
struct acme_ari_check {
	const char *id; /* the certificate's */
	const char *issuer_id, *issuer_config, *cert_id;
};
struct acme_ari_answer {
	bool offered, window;
	int64_t start, end;
	const char *explanation_url;
	uint32_t retry_after;
};
typedef void (*acme_ari_cb)(void *arg, int rc, const char *why, const struct acme_ari_answer *a);
int acme_ari_start(const struct acme_ari_check *in, acme_ari_cb done, void *arg);

#endif

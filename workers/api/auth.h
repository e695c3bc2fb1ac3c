/*
 * API key authentication (docs/api.md). A request's Authorization header is
 * parsed (lib/apikey.h), the key's row is fetched from the store by its
 * public prefix, and the secret is checked here against the salted hash in
 * constant time; the store never sees a secret. Failed attempts are
 * counted per client address; past api.auth_failure_limit within
 * api.auth_failure_window the address gets 429 without a lookup. Failures
 * are logged with the reason and the key's public prefix when there is
 * one, never with what was presented.
 *
 * Each api process keeps the keys it verified (salt, hash, role; never a
 * secret) by prefix, at most AUTH_CACHE_KEYS, dropping the oldest, so a
 * known key needs no store round trip. Every AUTH_POLL_MS it asks the store
 * for the api_keys change counter (apikeys.version) and forgets every
 * cached key when it moved: a revoked key stops working here within about
 * AUTH_POLL_MS of the revocation's commit. Expiry is checked at every use.
 * When the store cannot be asked, cached keys keep working for
 * api.key_cache_grace (30 s) after the last answer, then every key needs the store
 * (503 while it cannot be asked). Unknown or refused keys are never
 * cached. last_used_at is written in batches, at most once a minute per
 * key (apikeys.touch).
 */
#ifndef CERTWARD_API_AUTH_H
#define CERTWARD_API_AUTH_H

#include <stdbool.h>

#include "config.h"
#include "worker.h"

struct auth_result {
	int status;        /* 200 authenticated; 401, 429, 503; 410 (an identity of a retired agent) */
	char role[16];     /* admin, operator, viewer, agent */
	char key_id[129];
	char agent_id[129]; /* for agent keys */
	char prefix[16];   /* the key's public prefix, for the access log */
	char identity_id[129]; /* an agent authenticated by its identity certificate: which one */
	const char *why;   /* with 401: a static text saying what is needed, or NULL */
};

typedef void (*auth_cb)(const struct auth_result *r, void *arg);
struct auth_req;

#define AUTH_CACHE_KEYS 4096
#define AUTH_POLL_MS 250
#define AUTH_TOUCH_MS 60000
#define AUTH_AUDIT_PER_SECOND 50 /* auth.failure events a second and process */

void auth_configure(const struct cfg *section);
/* Starts the change poll (a timer on w's loop); auth_stop() closes it. */
void auth_start(struct worker *w);
void auth_stop(void);

/* Calls cb exactly once (possibly before returning, then NULL is returned),
 * unless auth_cancel() is called first. */
struct auth_req *auth_check(struct worker *w, const char *authorization, const char *client,
			    const char *reqid, auth_cb cb, void *arg);
/* The same for an agent's identity certificate (fingerprint: SHA-256
 * hex of the certificate the TLS handshake verified against the agent
 * identity CA), looked up in the store at every request so a revocation or
 * a retirement counts at once: 200 with role agent (key_id and agent_id
 * the agent's id, identity_id), 401 (unknown, revoked or expired), 410
 * (the agent is retired), 429, 503. */
struct auth_req *agent_identity_check(struct worker *w, const char *fingerprint, const char *client,
				      const char *reqid, auth_cb cb, void *arg);
void auth_cancel(struct auth_req *r);

/* The per-address failure limit shared with other credentials (agent
 * enrolment tokens): whether the address is over it now, and one more
 * failure counted against it. */
bool auth_address_limited(const char *client);
void auth_address_failed(const char *client);

#endif

/* The agent's identity: the certificate and key it presents to the api
 * (mTLS), from enrolment, renewed when a third of its lifetime is left. */
#ifndef CERTWARD_AGENT_IDENTITY_H
#define CERTWARD_AGENT_IDENTITY_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "agent.h"

/* Checks an enrolment or renewal answer against KEY (its certificate must
 * be for that key) and writes identity-GEN.crt and identity-ca.pem; sets
 * st's agent_id and name. 0, or -1 with WHY (errno EIO for a local write
 * failure). */
int identity_accept(const char *state_dir, int generation, EVP_PKEY *key, const json_t *answer,
		    struct agent_state *st, char *why, size_t whylen);

/* Whether the certificate in CERT_PATH has less than a third of its
 * lifetime left at NOW (1), not (0), or cannot be read (-1). */
int identity_needs_renewal(const char *cert_path, time_t now);

/* Renews: a new key, POST /agents/{id}/identity, the new pair written, then
 * agent.json switched to it (the old pair removed). On success A's paths
 * name the new pair. 0; 1 when the api could not be reached (try later);
 * -1 with WHY when it refused or something local failed. */
int identity_renew(struct agent_api *a, const char *state_dir, struct agent_state *st, char *why,
		   size_t whylen);

/* Points A's client certificate at ST's current pair. */
void identity_use(struct agent_api *a, const char *state_dir, const struct agent_state *st);

#endif

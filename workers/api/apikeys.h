/*
 * API key management under /api/v1/apikeys (docs/api.md "API keys"); the
 * routes (handlers.c) allow admin keys only, so other roles get 403 and a
 * request without a valid key 401 before any of this runs:
 *
 *   GET    /api/v1/apikeys          list (page, per_page, role, revoked)
 *   POST   /api/v1/apikeys          create: 201, the record and its key text,
 *                                   shown this once
 *   GET    /api/v1/apikeys/{id}     one key: 200 / 404
 *   DELETE /api/v1/apikeys/{id}     revoke: 204 (also when it was revoked
 *                                   already) / 404; 409 for the last admin key
 *                                   that is not revoked
 *
 * The api makes the key (lib/apikey.h) and sends the store only its prefix,
 * salt and salted hash; the secret leaves this process once, in the 201
 * answer, and is wiped here. Records never carry salt or hash. A create or
 * revoke and its audit event (apikey.create, apikey.revoke) are one
 * statement of the store.
 */
#ifndef CERTWARD_API_APIKEYS_H
#define CERTWARD_API_APIKEYS_H

#include "routes.h"

void apikeys_list(struct route_call *c);
void apikeys_get(struct route_call *c);
void apikeys_create(struct route_call *c);
void apikeys_revoke(struct route_call *c);

/* Answers record (a JSON object, as the store built it) with one more
 * string member holding a secret shown this once (an API key, an agent
 * enrolment token); the copy made for the answer is wiped. */
void respond_with_secret(struct route_call *rc, int status, const char *record, size_t len, const char *member,
			 const char *secret);

#endif

/*
 * The api's rules for an issuer's config by the issuer's type, applied to
 * POST and PUT /api/v1/issuers after the catalogue's checks
 * (lib/resource.h) and before the secret members are sealed. Type ACME has
 * rules (docs/acme-client.md, "Issuer config"); other types take any JSON
 * object.
 */
#ifndef CERTWARD_API_ISSUER_CONFIG_H
#define CERTWARD_API_ISSUER_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

#include "resource.h"
#include "store_client.h"
#include "worker.h"

/* Whether config (a JSON object; NULL or null as {}) suits an issuer of
 * type: true, or false with err->field "config.<member>" ("config" for
 * the whole) and err->msg naming the member and the rule. Never quotes the
 * value of a secret member. */
bool issuer_config_ok(const char *type, const json_t *config, struct resource_error *err);

/*
 * The outcome of issuer_config_vet: status 0 (fine), 422 (err filled),
 * 404 (no such issuer), 503 (the store could not be asked), or 1: the
 * store's call failed, o says how (for rest_store_failed).
 */
typedef void (*issuer_config_cb)(void *arg, int status, const struct resource_error *err,
				 const struct store_outcome *o);

/*
 * Checks a create (create true) or an update of issuer id, canonical being
 * the body the catalogue let through: the type and config the issuer will
 * have. An update that sends only one of type and config takes the other
 * from the stored issuer (issuers.get) first; one that sends neither is
 * fine. then runs exactly once, maybe before this returns.
 */
void issuer_config_vet(struct worker *w, const char *id, const char *canonical, bool create, issuer_config_cb then,
		       void *arg);

#endif

/*
 * The ACME account of an issuer of type ACME (docs/acme-client.md,
 * "Account key rollover and deactivation"):
 *
 *   GET  /api/v1/issuers/{id}/acme/account                 the account and its recent actions   200
 *   POST /api/v1/issuers/{id}/acme/key-rollover            {} or {"account_key_algorithm": A}    202 (admin)
 *   POST /api/v1/issuers/{id}/acme/deactivate              {}                                    202 (admin)
 *   GET  /api/v1/issuers/{id}/acme/actions/{action_id}     one action: pending, running, done, failed
 *
 * The two POSTs only record the request (acme_account_actions.create, with
 * its audit event): the scheduler carries it out with the CA, the signer
 * making and keeping the keys, and records the outcome on the action.
 */
#include "acme_account.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "actions.h"
#include "log.h"
#include "rest.h"
#include "routes.h"
#include "store_client.h"
#include "validate.h"

enum kind { K_KEYCHANGE, K_DEACTIVATE };

static const char *const kind_names[] = {"keychange", "deactivate"};

static bool issuer_ok(struct route_call *c)
{
	if (valid_resource_id(route_param(c, "id"), 128))
		return true;
	route_problem(c, 404, "Not Found", "no such issuer", NULL);
	return false;
}

static void on_show(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	json_t *j, *account;
	const char *state;

	if (o->error) {
		rest_store_failed(c, o, false, "acme_accounts.show");
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	account = json_object_get(j, "account");
	if (state && strcmp(state, "ok") == 0 && json_is_object(account))
		route_respond_json(c, 200, json_incref(account));
	else if (state && strcmp(state, "missing") == 0)
		route_problem(c, 404, "Not Found", "no such issuer", NULL);
	else if (state && strcmp(state, "not_acme") == 0)
		route_problem(c, 404, "Not Found", "the issuer is not of type ACME: it has no ACME account", NULL);
	else if (state && strcmp(state, "none") == 0)
		route_problem(c, 404, "Not Found", "the issuer has no ACME account yet (its first order registers one)",
			      NULL);
	else {
		log_event(LOG_ERROR, c->req.reqid, NULL, "acme_accounts.show: an answer without a state");
		route_problem(c, 500, "Internal Server Error", NULL, NULL);
	}
	json_decref(j);
}

static void show(struct route_call *c)
{
	const char *p[1] = {route_param(c, "id")};

	if (!issuer_ok(c))
		return;
	if (store_call(c->w, "acme_accounts.show", p, 1, on_show, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

static void on_created(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	json_t *j, *action;
	const char *state;
	char detail[160];

	if (o->error) {
		rest_store_failed(c, o, false, "acme_account_actions.create");
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	action = json_object_get(j, "action");
	if (state && strcmp(state, "created") == 0 && json_is_object(action)) {
		route_respond_json(c, 202, json_incref(action));
	} else if (state && strcmp(state, "missing") == 0) {
		route_problem(c, 404, "Not Found", "no such issuer", NULL);
	} else if (state && strcmp(state, "not_acme") == 0) {
		route_problem(c, 422, "Unprocessable Content", "the issuer is not of type ACME", NULL);
	} else if (state && strcmp(state, "no_account") == 0) {
		route_problem(c, 409, "Conflict",
			      "the issuer has no valid ACME account (its first order registers one)", NULL);
	} else if (state && strcmp(state, "busy") == 0) {
		snprintf(detail, sizeof detail, "action %" JSON_INTEGER_FORMAT
			 " of this issuer's account is not finished yet", json_integer_value(json_object_get(j, "open")));
		route_problem(c, 409, "Conflict", detail, NULL);
	} else {
		log_event(LOG_ERROR, c->req.reqid, NULL, "acme_account_actions.create: an answer without a state");
		route_problem(c, 500, "Internal Server Error", NULL, NULL);
	}
	json_decref(j);
}

/* POST key-rollover / deactivate: the body checked, the action recorded */
static void request(struct route_call *c)
{
	static const char *const members[] = {"account_key_algorithm"};
	enum kind k = (enum kind)(size_t)c->route->arg;
	const char *p[10] = {route_param(c, "id"), kind_names[k]}, *alg = NULL;
	json_t *b, *v;

	if (!issuer_ok(c) || !(b = action_body(c, members, k == K_KEYCHANGE ? 1 : 0)))
		return;
	v = json_object_get(b, "account_key_algorithm");
	if (v && !json_is_null(v)) {
		alg = json_string_value(v);
		if (!alg || (strcmp(alg, "ES256") != 0 && strcmp(alg, "ES384") != 0 && strcmp(alg, "RS256") != 0)) {
			json_decref(b);
			route_problem(c, 400, "Bad Request", "account_key_algorithm: one of ES256, ES384, RS256",
				      "account_key_algorithm");
			return;
		}
	}
	p[2] = alg;
	if (store_call(c->w, "acme_account_actions.create", p, route_audit_params(c, p, 3), on_created, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
	json_decref(b);
}

static void on_action(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;

	if (o->error)
		rest_store_failed(c, o, false, "acme_account_actions.get");
	else if (o->status == STORE_NO_ROW)
		route_problem(c, 404, "Not Found", "no such action of this issuer", NULL);
	else
		route_respond(c, 200, "application/json", (const char *)o->json, o->json_len);
}

static void action(struct route_call *c)
{
	const char *p[2] = {route_param(c, "id"), route_param(c, "action_id")};
	size_t n = p[1] ? strspn(p[1], "0123456789") : 0;

	if (!issuer_ok(c))
		return;
	/* a bigint: 1 to 18 digits */
	if (n == 0 || n > 18 || p[1][n] != '\0') {
		route_problem(c, 404, "Not Found", "no such action of this issuer", NULL);
		return;
	}
	if (store_call(c->w, "acme_account_actions.get", p, 2, on_action, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

static const struct route acme_account_routes[] = {
	{"GET", "/api/v1/issuers/{id}/acme/account", ROLES_READ, 0, show, NULL},
	{"POST", "/api/v1/issuers/{id}/acme/key-rollover", ROLE_ADMIN, 0, request, (void *)K_KEYCHANGE},
	{"POST", "/api/v1/issuers/{id}/acme/deactivate", ROLE_ADMIN, 0, request, (void *)K_DEACTIVATE},
	{"GET", "/api/v1/issuers/{id}/acme/actions/{action_id}", ROLES_READ, 0, action, NULL},
};

void acme_account_routes_init(void)
{
	routes_add(acme_account_routes, sizeof acme_account_routes / sizeof acme_account_routes[0]);
}

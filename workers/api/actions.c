/*
 * The inventory's actions beyond create/read/update/delete (docs/api.md):
 *
 *   POST   /api/v1/certificates/{id}/renew    a Renewal job              202
 *   POST   /api/v1/certificates/{id}/revoke   {"reason": R}              200
 *   POST   /api/v1/certificates/bulk-revoke   {"reason": R, criteria}   200 (admin)
 *   POST   /api/v1/jobs/{id}/cancel                                      200
 *   POST   /api/v1/notifications/{id}/read                               200
 *   DELETE /api/v1/agents/{id}[?force=true&reason=...]  retire   200 / 204 / 409
 *   POST   /api/v1/agents/{id}/heartbeat      the agent's metadata       200 / 410
 *
 * Each is one store operation (schema/store_ops.def, "inventory actions")
 * that makes the change and its audit event in one statement and answers
 * with a state the api maps to HTTP here.
 */
#include "actions.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "issuance.h"
#include "log.h"
#include "query.h"
#include "resource.h"
#include "rest.h"
#include "routes.h"
#include "store_client.h"
#include "validate.h"

#define HEARTBEAT_ADDRESSES_MAX 32 /* agents.ip_addresses' CHECK */

enum action { A_RENEW, A_REVOKE, A_CANCEL, A_READ, A_RETIRE, A_HEARTBEAT, A_BULK_REVOKE };

static const char *const op_names[] = {"certificates.renew", "certificates.revoke", "jobs.cancel",
				       "notifications.read", "agents.retire", "agents.heartbeat",
				       "certificates.bulk_revoke"};

/* the reference's StatusResponse */
static void respond_status(struct route_call *c, int status, const char *what)
{
	route_respond_json(c, status, json_pack("{s:s}", "status", what));
}

/* A retire refused because of what still depends on the agent: the
 * problem members, and the reference's BlockedByDependenciesResponse. */
static void respond_blocked(struct route_call *c, json_t *counts)
{
	static const char detail[] = "the agent still has active targets, certificates or pending jobs: "
				     "retire with force=true and a reason to cascade";

	route_respond_json_typed(c, 409, "application/problem+json", json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:O, s:s}", "type", "about:blank", "title",
				       "Conflict", "status", 409, "detail", detail, "error",
				       "blocked_by_dependencies", "message", detail, "counts", counts,
				       "request_id", c->req.reqid));
}

static void on_store(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	enum action a = (enum action)(size_t)c->route->arg;
	json_t *j, *counts;
	const char *state;

	if (o->error) {
		rest_store_failed(c, o, false, op_names[a]);
		return;
	}
	if (a == A_BULK_REVOKE) {
		/* the reference's BulkRevokeResult, as the store built it */
		route_respond(c, 200, "application/json", (const char *)o->json, o->json_len);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	counts = json_object_get(j, "counts");
	if (!state) {
		log_event(LOG_ERROR, c->req.reqid, NULL, "%s: an answer without a state", op_names[a]);
		route_problem(c, 500, "Internal Server Error", NULL, NULL);
	} else if (strcmp(state, "missing") == 0) {
		route_problem(c, 404, "Not Found", NULL, NULL);
	} else if (a == A_RENEW) {
		const char *job = json_string_value(json_object_get(j, "job_id"));

		if (strcmp(state, "done") == 0)
			route_respond_json(c, 202, json_pack("{s:s, s:s?}", "status", "renewal triggered", "job_id", job));
		else if (strcmp(state, "busy") == 0)
			route_problem(c, 409, "Conflict", "an issuance or renewal of this certificate is under way", NULL);
		else
			route_problem(c, 409, "Conflict", "the certificate is archived or revoked", NULL);
	} else if (a == A_REVOKE) {
		if (strcmp(state, "done") == 0)
			respond_status(c, 200, "revoked");
		else
			route_problem(c, 409, "Conflict", "the certificate is revoked or archived already", NULL);
	} else if (a == A_CANCEL) {
		char detail[96];

		if (strcmp(state, "done") == 0) {
			respond_status(c, 200, "cancelled");
		} else {
			snprintf(detail, sizeof detail, "the job has finished (%s)",
				 json_string_value(json_object_get(j, "status")) ?: "?");
			route_problem(c, 409, "Conflict", detail, NULL);
		}
	} else if (a == A_READ) {
		respond_status(c, 200, "read");
	} else if (a == A_RETIRE) {
		if (strcmp(state, "already") == 0)
			route_respond(c, 204, "application/json", "", 0); /* the reference: no body */
		else if (strcmp(state, "blocked") == 0)
			respond_blocked(c, counts);
		else
			route_respond_json(c, 200, json_pack("{s:O?, s:b, s:b, s:O}", "retired_at",
						       json_object_get(j, "retired_at"), "already_retired", 0,
						       "cascade", c->data != NULL, "counts", counts));
	} else if (a == A_HEARTBEAT) {
		if (strcmp(state, "retired") == 0)
			route_problem(c, 410, "Gone", "the agent is retired: stop", NULL);
		else
			respond_status(c, 200, "ok");
	}
	json_decref(j);
}

static void call(struct route_call *c, const char **p, size_t n)
{
	enum action a = (enum action)(size_t)c->route->arg;

	if (store_call(c->w, op_names[a], p, n, on_store, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/*
 * RFC 5280 reason codes as the reference spells them (camelCase); also
 * accepted in snake_case and UPPER_CASE ("key_compromise",
 * "KEY_COMPROMISE"). Anything else is refused, never read as unspecified.
 */
static const char *revocation_reason(const char *in)
{
	static const char *const reasons[] = {"unspecified", "keyCompromise", "caCompromise", "affiliationChanged",
					      "superseded", "cessationOfOperation", "certificateHold",
					      "privilegeWithdrawn"};
	char folded[64];
	size_t n = 0;

	for (const char *s = in; *s; s++) {
		if (*s == '_')
			continue;
		if (n + 1 >= sizeof folded || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return NULL;
		folded[n++] = (char)(*s | 0x20);
	}
	folded[n] = '\0';
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (strcasecmp(folded, reasons[i]) == 0)
			return reasons[i];
	return NULL;
}

/* a JSON object body with only the named members, or none at all */
json_t *action_body(struct route_call *c, const char *const *allowed, size_t n)
{
	json_t *j;
	const char *k;
	json_t *v;

	if (!c->req.body_len)
		return json_object();
	if (!json_depth_ok((const char *)c->req.body, c->req.body_len, 4) ||
	    !(j = json_loadb((const char *)c->req.body, c->req.body_len, JSON_REJECT_DUPLICATES, NULL)) ||
	    !json_is_object(j)) {
		route_problem(c, 400, "Bad Request", "the body must be a JSON object", NULL);
		return NULL;
	}
	json_object_foreach(j, k, v) {
		size_t i;

		for (i = 0; i < n && strcmp(k, allowed[i]) != 0; i++)
			;
		if (i == n) {
			char field[64];

			snprintf(field, sizeof field, "%s", k);
			route_problem(c, 400, "Bad Request", "unknown field", field);
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

static bool id_ok(struct route_call *c)
{
	if (valid_resource_id(route_param(c, "id"), 128))
		return true;
	route_problem(c, 404, "Not Found", NULL, NULL);
	return false;
}

static void simple(struct route_call *c)
{
	const char *p[8] = {route_param(c, "id")};
	size_t n;

	if (!id_ok(c))
		return;
	n = route_audit_params(c, p, 1);
	/* certificates.renew: $8, no CSR of the job's own */
	if ((enum action)(size_t)c->route->arg == A_RENEW)
		p[n++] = NULL;
	call(c, p, n);
}

static void renewed(void *arg, int status, const char *title, const char *detail, const char *field,
		    const char *body, size_t len)
{
	struct route_call *c = arg;

	if (status == 201 || status == 202)
		route_respond(c, status, "application/json", body, len);
	else
		route_problem(c, status, title, detail, field);
}

/*
 * Renew: without a body, a Renewal job (the reference's 202); with
 * {"csr_pem": ...} and a Local issuer, signed now as a new version
 * (issuance_renew, 201 with the version); with an ACME issuer, a Renewal
 * job that orders a certificate for that CSR (202).
 */
static void renew(struct route_call *c)
{
	static const char *const members[] = {"csr_pem"};
	json_t *b, *csr;

	if (!id_ok(c))
		return;
	if (!c->req.body_len) {
		simple(c);
		return;
	}
	if (!(b = action_body(c, members, 1)))
		return;
	csr = json_object_get(b, "csr_pem");
	if (csr && !json_is_string(csr)) {
		json_decref(b);
		route_problem(c, 400, "Bad Request", "csr_pem: must be a string", "csr_pem");
		return;
	}
	if (!csr) {
		json_decref(b);
		simple(c);
		return;
	}
	issuance_renew(c, route_param(c, "id"), json_string_value(csr), renewed, c);
	json_decref(b);
}

static void revoke_certificate(struct route_call *c)
{
	static const char *const members[] = {"reason"};
	const char *p[8] = {route_param(c, "id")}, *reason = "unspecified";
	json_t *body, *r;

	if (!id_ok(c) || !(body = action_body(c, members, 1)))
		return;
	r = json_object_get(body, "reason");
	if (r && (!json_is_string(r) || !(reason = revocation_reason(json_string_value(r))))) {
		route_problem(c, 400, "Bad Request",
			      "reason: must be an RFC 5280 reason (unspecified, keyCompromise, caCompromise, "
			      "affiliationChanged, superseded, cessationOfOperation, certificateHold, "
			      "privilegeWithdrawn; also in snake_case or UPPER_CASE)", "reason");
		json_decref(body);
		return;
	}
	json_decref(body);
	p[1] = reason;
	call(c, p, route_audit_params(c, p, 2));
}

#define BULK_IDS_MAX 1000

/*
 * Bulk revocation: a reason (required) and at least one criterion; every
 * certificate matching all of them that is not revoked or archived yet is
 * revoked, in one statement with an audit event each.
 */
static void bulk_revoke(struct route_call *c)
{
	static const char *const members[] = {"reason", "profile_id", "owner_id", "agent_id", "issuer_id",
					      "team_id", "certificate_ids"};
	const char *p[8], *reason;
	json_t *body, *r, *crit, *ids, *v;
	size_t i, ncrit = 0;
	char *text;

	if (!(body = action_body(c, members, sizeof members / sizeof members[0])))
		return;
	r = json_object_get(body, "reason");
	if (!json_is_string(r) || !(reason = revocation_reason(json_string_value(r)))) {
		route_problem(c, 400, "Bad Request",
			      r ? "reason: must be an RFC 5280 reason (unspecified, keyCompromise, caCompromise, "
				  "affiliationChanged, superseded, cessationOfOperation, certificateHold, "
				  "privilegeWithdrawn; also in snake_case or UPPER_CASE)"
				: "reason: required",
			      "reason");
		json_decref(body);
		return;
	}
	crit = json_object();
	for (i = 1; i < 6; i++) {
		v = json_object_get(body, members[i]);
		if (!v)
			continue;
		if (!json_is_string(v) || !valid_resource_id(json_string_value(v), 128)) {
			route_problem(c, 400, "Bad Request", "must be an id", members[i]);
			goto out;
		}
		json_object_set(crit, members[i], v);
		ncrit++;
	}
	ids = json_object_get(body, "certificate_ids");
	if (ids) {
		if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > BULK_IDS_MAX) {
			route_problem(c, 400, "Bad Request", "certificate_ids: 1 to 1000 ids", "certificate_ids");
			goto out;
		}
		json_array_foreach(ids, i, v) {
			if (!json_is_string(v) || !valid_resource_id(json_string_value(v), 128)) {
				route_problem(c, 400, "Bad Request", "certificate_ids: each must be an id",
					      "certificate_ids");
				goto out;
			}
		}
		json_object_set(crit, "certificate_ids", ids);
		ncrit++;
	}
	if (ncrit == 0) {
		/* a guard against revoking everything by mistake */
		route_problem(c, 400, "Bad Request",
			      "at least one of profile_id, owner_id, agent_id, issuer_id, team_id and certificate_ids "
			      "is required",
			      NULL);
		goto out;
	}
	text = json_dumps(crit, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		goto out;
	}
	p[0] = reason;
	p[1] = text;
	call(c, p, route_audit_params(c, p, 2));
	free(text);
out:
	json_decref(crit);
	json_decref(body);
}

/* valid UTF-8 without control characters: a reason goes to the audit trail */
bool action_text_ok(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return j != NULL;
}

/*
 * Retiring: `force` is true only for "true" or "1" (the reference reads a
 * malformed value as false); with force a reason of 1 to 1024 characters
 * is required. Other query parameters are refused.
 */
static void retire(struct route_call *c)
{
	struct query q;
	const char *p[12] = {route_param(c, "id")}, *why, *bad, *force, *reason;
	bool forced;

	if (!id_ok(c))
		return;
	if (query_parse(&q, c->req.query, &why, &bad) != 0) {
		route_problem(c, 400, "Bad Request", why, bad);
		return;
	}
	for (size_t i = 0; i < q.n; i++) {
		if (strcmp(q.pair[i].name, "force") != 0 && strcmp(q.pair[i].name, "reason") != 0) {
			route_problem(c, 400, "Bad Request", "unknown query parameter (force, reason)", q.pair[i].name);
			return;
		}
	}
	force = query_get(&q, "force");
	reason = query_get(&q, "reason");
	if (reason && (!*reason || strlen(reason) > 4096 || !action_text_ok(reason))) {
		route_problem(c, 400, "Bad Request", "reason: 1 to 1024 characters of text", "reason");
		return;
	}
	forced = force && (strcmp(force, "true") == 0 || strcmp(force, "1") == 0);
	if (forced && !reason) {
		route_problem(c, 400, "Bad Request", "force=true needs a reason", "reason");
		return;
	}
	c->data = forced ? c : NULL; /* for the answer's "cascade" */
	p[1] = forced ? "true" : "false";
	p[2] = forced ? reason : NULL;
	call(c, p, route_audit_params(c, p, 3));
}

static void heartbeat(struct route_call *c)
{
	static const struct resource_def *body_def;
	struct resource_error err;
	const char *p[2] = {route_param(c, "id")};
	char *meta;

	if (!id_ok(c))
		return;
	if (!body_def)
		body_def = resource_by_path("/api/v1/agents/{id}/heartbeat");
	meta = c->req.body_len ? resource_check_body(body_def, (const char *)c->req.body, c->req.body_len, false, &err)
			       : strdup("{}");
	if (!meta) {
		route_problem(c, 400, "Bad Request", err.msg, err.field);
		return;
	}
	{
		json_t *m = json_loads(meta, 0, NULL);
		size_t addresses = json_array_size(json_object_get(m, "ip_addresses"));

		json_decref(m);
		if (addresses > HEARTBEAT_ADDRESSES_MAX) {
			free(meta);
			route_problem(c, 400, "Bad Request", "ip_addresses: at most 32", "ip_addresses");
			return;
		}
	}
	p[1] = meta;
	call(c, p, 2);
	free(meta);
}

static const struct route action_routes[] = {
	{"POST", "/api/v1/certificates/{id}/renew", ROLES_MANAGE, 0, renew, (void *)A_RENEW},
	{"POST", "/api/v1/certificates/{id}/revoke", ROLES_MANAGE, 0, revoke_certificate, (void *)A_REVOKE},
	{"POST", "/api/v1/certificates/bulk-revoke", ROLE_ADMIN, 0, bulk_revoke, (void *)A_BULK_REVOKE},
	{"POST", "/api/v1/jobs/{id}/cancel", ROLES_MANAGE, 0, simple, (void *)A_CANCEL},
	{"POST", "/api/v1/notifications/{id}/read", ROLES_MANAGE, 0, simple, (void *)A_READ},
	{"DELETE", "/api/v1/agents/{id}", ROLES_MANAGE, 0, retire, (void *)A_RETIRE},
	{"POST", "/api/v1/agents/{id}/heartbeat", ROLE_AGENT, ROUTE_OWN_AGENT, heartbeat, (void *)A_HEARTBEAT},
};

void actions_routes_init(void)
{
	routes_add(action_routes, sizeof action_routes / sizeof action_routes[0]);
}

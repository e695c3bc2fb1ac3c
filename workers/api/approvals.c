/*
 * Approval decisions (docs/renewal.md, "Approvals"):
 *
 *   POST /api/v1/approvals/{id}/approve   {"note": N}?     200
 *   POST /api/v1/approvals/{id}/reject    {"note": N}?     200
 *   POST /api/v1/jobs/{id}/approve        {"reason": R}?   200
 *   POST /api/v1/jobs/{id}/reject         {"reason": R}?   200
 *
 * Each is one store operation (approvals.decide) that decides a pending
 * request, moves its job on and writes the audit event, in one statement.
 * The two-person rule is the statement's: the principal who asked for the
 * job (requested_by) cannot decide it (403, audited by the statement as a
 * denied decision); a request decided already is 409, whoever asks.
 */
#include "approvals.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "actions.h"
#include "log.h"
#include "rest.h"
#include "routes.h"
#include "store_client.h"
#include "validate.h"

#define NOTE_MAX_CHARS 1024 /* approval_requests.decision_note's CHECK */

enum decision { APPROVAL_APPROVE, APPROVAL_REJECT, JOB_APPROVE, JOB_REJECT };

static bool approving(enum decision d)
{
	return d == APPROVAL_APPROVE || d == JOB_APPROVE;
}

static bool by_job(enum decision d)
{
	return d == JOB_APPROVE || d == JOB_REJECT;
}

static void on_decided(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	enum decision d = (enum decision)(size_t)c->route->arg;
	const char *action = approving(d) ? "approved" : "rejected";
	json_t *j;
	const char *state;
	char detail[160];

	if (o->error) {
		rest_store_failed(c, o, false, "approvals.decide");
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	if (!state) {
		log_event(LOG_ERROR, c->req.reqid, NULL, "approvals.decide: an answer without a state");
		route_problem(c, 500, "Internal Server Error", NULL, NULL);
	} else if (strcmp(state, "done") == 0) {
		if (by_job(d))
			route_respond_json(c, 200, json_pack("{s:s, s:O?}", "status", action, "approval_id",
							     json_object_get(j, "id")));
		else
			route_respond_json(c, 200, json_pack("{s:O?, s:s, s:s, s:O?, s:O?}", "id",
							     json_object_get(j, "id"), "decided_by", c->who.key_id,
							     "action", action, "job_id", json_object_get(j, "job_id"),
							     "job_status", json_object_get(j, "job_status")));
	} else if (strcmp(state, "self") == 0) {
		c->refusal_audited = true; /* the statement wrote the denied decision */
		route_problem(c, 403, "Forbidden",
			      "two-person integrity: the principal who requested the job cannot decide its approval",
			      NULL);
	} else if (strcmp(state, "decided") == 0) {
		snprintf(detail, sizeof detail, "the approval request is %s already",
			 json_string_value(json_object_get(j, "approval_state")) ?: "decided");
		route_problem(c, 409, "Conflict", detail, NULL);
	} else if (strcmp(state, "not_awaiting") == 0) {
		route_problem(c, 409, "Conflict", "the job has no approval request", NULL);
	} else {
		route_problem(c, 404, "Not Found", NULL, NULL);
	}
	json_decref(j);
}

/* at most NOTE_MAX_CHARS characters of text (jansson's strings are UTF-8) */
static bool note_ok(const char *s)
{
	size_t chars = 0;

	for (const char *p = s; *p; p++)
		if (((unsigned char)*p & 0xc0) != 0x80 && ++chars > NOTE_MAX_CHARS)
			return false;
	return action_text_ok(s);
}

static void decide(struct route_call *c)
{
	enum decision d = (enum decision)(size_t)c->route->arg;
	const char *member = by_job(d) ? "reason" : "note";
	const char *p[16] = {NULL}, *id = route_param(c, "id"), *note = NULL;
	char field_detail[96];
	json_t *body, *v;

	if (!valid_resource_id(id, 128)) {
		route_problem(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (!(body = action_body(c, &member, 1)))
		return;
	v = json_object_get(body, member);
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || !note_ok(json_string_value(v))) {
			snprintf(field_detail, sizeof field_detail,
				 "%s: a string of at most %d characters, without control characters", member,
				 NOTE_MAX_CHARS);
			route_problem(c, 400, "Bad Request", field_detail, member);
			json_decref(body);
			return;
		}
		if (*json_string_value(v))
			note = json_string_value(v);
	}
	p[by_job(d) ? 1 : 0] = id;
	p[2] = approving(d) ? "approved" : "rejected";
	p[3] = note;
	if (store_call(c->w, "approvals.decide", p, route_audit_params(c, p, 4), on_decided, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
	json_decref(body);
}

static const struct route approval_routes[] = {
	{"POST", "/api/v1/approvals/{id}/approve", ROLES_MANAGE, 0, decide, (void *)APPROVAL_APPROVE},
	{"POST", "/api/v1/approvals/{id}/reject", ROLES_MANAGE, 0, decide, (void *)APPROVAL_REJECT},
	{"POST", "/api/v1/jobs/{id}/approve", ROLES_MANAGE, 0, decide, (void *)JOB_APPROVE},
	{"POST", "/api/v1/jobs/{id}/reject", ROLES_MANAGE, 0, decide, (void *)JOB_REJECT},
};

void approvals_routes_init(void)
{
	routes_add(approval_routes, sizeof approval_routes / sizeof approval_routes[0]);
}

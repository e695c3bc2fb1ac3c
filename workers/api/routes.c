/* See routes.h. */
#include "routes.h"

#include <openssl/mem.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme_account.h"
#include "acme_http.h"
#include "actions.h"
#include "approvals.h"
#include "audit.h"
#include "agents.h"
#include "discovery.h"
#include "intermediates.h"
#include "log.h"
#include "notify.h"
#include "revocation.h"
#include "rest.h"
#include "util.h"
#include "validate.h"

#define ROUTES_MAX 256

static const struct route *table[ROUTES_MAX];
static size_t ntable;

int routes_add(const struct route *r, size_t n)
{
	if (ntable + n > ROUTES_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		table[ntable++] = &r[i];
	return 0;
}

void routes_init(void)
{
	if (ntable)
		return;
	handlers_routes_init();
	rest_routes_init();
	actions_routes_init();
	revocation_routes_init();
	intermediates_routes_init();
	agents_routes_init();
	discovery_routes_init();
	notify_routes_init();
	approvals_routes_init();
	acme_http_routes_init();
	acme_account_routes_init();
}

static const char *const role_names[] = {"admin", "operator", "viewer", "agent"};

size_t route_audit_params(const struct route_call *c, const char **p, size_t n)
{
	p[n++] = c->who.key_id;
	p[n++] = strcmp(c->who.role, "agent") == 0 ? "Agent" : "User";
	p[n++] = c->who.role;
	p[n++] = c->req.reqid;
	p[n++] = c->req.client;
	p[n++] = c->body_sha256;
	return n;
}

unsigned role_bit(const char *role)
{
	for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
		if (strcmp(role, role_names[i]) == 0)
			return 1u << i;
	return 0;
}

void routes_print(FILE *out)
{
	routes_init();
	for (size_t i = 0; i < ntable; i++) {
		const struct route *r = table[i];

		fprintf(out, "%s %s ", r->method, r->pattern);
		if (r->roles == ROLES_PUBLIC) {
			fputs("public", out);
		} else {
			const char *sep = "";

			for (size_t b = 0; b < sizeof role_names / sizeof role_names[0]; b++)
				if (r->roles & (1u << b)) {
					fprintf(out, "%s%s%s", sep, role_names[b],
						(1u << b) == ROLE_AGENT && (r->flags & ROUTE_OWN_AGENT) ? "(own)" : "");
					sep = ",";
				}
		}
		fputs(r->flags & ROUTE_PLAIN ? " plain\n" : "\n", out);
	}
}

/* ---- matching ---- */

/* One path segment, percent-decoded into out; false when malformed, when
 * it would hold a NUL or a '/', or when it is longer than out. */
static bool decode_segment(const char *s, size_t len, char *out, size_t cap, bool tail)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)s[i];

		if (ch == '%') {
			int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1, lo = hi < 0 ? -1 : hex_digit(s[i + 2]);

			if (lo < 0)
				return false;
			ch = hi << 4 | lo;
			if (ch == 0 || (ch == '/' && !tail))
				return false;
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return o > 0;
}

/*
 * Whether path fits pattern segment by segment. The {params}' raw text is
 * decoded into c->params when c is given; *bad is set when a parameter
 * does not decode or is too long (the route still matches: the answer is
 * then 404, after authentication, as for any id that names nothing).
 */
static bool match(const char *pattern, const char *path, struct route_call *c, bool *bad)
{
	const char *p = pattern, *s = path;
	size_t np = 0;

	while (*p && *s) {
		const char *pe = strchr(p + 1, '/'), *se = strchr(s + 1, '/');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);

		if (*p != '/' || *s != '/')
			return false;
		if (pl > 2 && p[1] == '{' && p[pl - 1] == '}') {
			/* {name*}, last: the rest of the path, slashes and all */
			bool tail = !p[pl] && p[pl - 2] == '*';

			if (tail)
				sl = strlen(s);
			if (sl < 2 || np >= ROUTE_MAX_PARAMS)
				return false;
			if (c && !decode_segment(s + 1, sl - 1, c->params[np], sizeof c->params[np], tail))
				*bad = true;
			np++;
		} else if (pl != sl || memcmp(p, s, pl) != 0) {
			return false;
		}
		p += pl;
		s += sl;
	}
	if (*p || *s)
		return false;
	if (c)
		c->nparams = np;
	return true;
}

bool route_param_name(const struct route_call *c, size_t i, char *out, size_t cap)
{
	const char *p = c->route->pattern;
	size_t len;

	for (size_t k = 0; k <= i; k++)
		if (!(p = strchr(k ? p + 1 : p, '{')))
			return false;
	len = strcspn(p + 1, "*}");
	if (i >= c->nparams || len == 0 || len >= cap)
		return false;
	memcpy(out, p + 1, len);
	out[len] = '\0';
	return true;
}

const char *route_param(const struct route_call *c, const char *name)
{
	char have[64];

	for (size_t i = 0; i < c->nparams; i++)
		if (route_param_name(c, i, have, sizeof have) && strcmp(have, name) == 0)
			return c->params[i];
	return NULL;
}

static size_t count_params(const char *pattern)
{
	size_t n = 0;

	for (; *pattern; pattern++)
		n += *pattern == '{';
	return n;
}

const char *handler_route(const char *path)
{
	const char *label = "other";
	size_t best = SIZE_MAX;

	routes_init();
	for (size_t i = 0; i < ntable; i++) {
		size_t params = count_params(table[i]->pattern);

		if (params < best && match(table[i]->pattern, path, NULL, NULL)) {
			label = table[i]->pattern;
			best = params;
		}
	}
	return label;
}

/* ---- answering ---- */

static void call_free(struct route_call *c)
{
	/* a body may have carried secrets (an issuer's credentials) */
	if (c->copy)
		OPENSSL_cleanse(c->copy, c->copy_len);
	free(c->copy);
	free(c);
}

/*
 * The audit trail's side of a refusal: a denied request (403) of any
 * method, and a change refused for any other reason (4xx, 5xx). A change
 * that succeeds wrote its own event with the change; failed
 * authentication (401, 429) is recorded by the authentication.
 */
static void record_refusal(struct route_call *c, int status)
{
	const char *m = c->route->method, *p = c->route->pattern, *id = route_param(c, "id");
	bool change = strcmp(m, "GET") != 0;
	char type[64], details[192];
	size_t n;

	if (status < 400 || status == 401 || status == 429 || !c->who.role[0] || (!change && status != 403) ||
	    c->refusal_audited)
		return;
	if (id && (c->bad_param || !valid_resource_id(id, 128)))
		id = NULL; /* not an id: not worth keeping, and maybe not text */
	/* the resource type: the first segment after /api/v1/ */
	p += strncmp(p, "/api/v1/", 8) == 0 ? 8 : 1;
	n = strcspn(p, "/");
	snprintf(type, sizeof type, "%.*s", (int)(n < sizeof type ? n : sizeof type - 1), p);
	snprintf(details, sizeof details, "{\"method\":\"%s\",\"route\":\"%s\",\"status\":%d}", m,
		 c->route->pattern, status);
	audit_record(c->w, &(struct audit_entry){
		.actor = c->who.key_id,
		.actor_type = strcmp(c->who.role, "agent") == 0 ? "Agent" : "User",
		.actor_role = c->who.role,
		.action = status == 403 ? "request.denied" : "request.failed",
		.resource_type = type,
		.resource_id = id,
		.request_id = c->req.reqid,
		.source_address = c->req.client,
		.outcome = status == 403 ? "denied" : "failure",
		.body_sha256 = c->body_sha256,
		.details = details,
	});
}

void route_respond(struct route_call *c, int status, const char *content_type, const char *body,
		   size_t len)
{
	route_respond_headers(c, status, content_type, NULL, 0, body, len);
}

void route_respond_headers(struct route_call *c, int status, const char *content_type,
			   const struct api_header *headers, size_t n_headers, const char *body, size_t len)
{
	if (c->answered) {
		log_event(LOG_ERROR, c->req.reqid, NULL, "%s %s answered twice", c->route->method,
			  c->route->pattern);
		return;
	}
	c->answered = true;
	record_refusal(c, status);
	if (!c->cancelled)
		c->respond(c->ctx, status, content_type, headers, n_headers, body, len);
	if (!c->dispatching)
		call_free(c);
}

static void respond_cb(void *arg, int status, const char *content_type, const struct api_header *headers,
		       size_t n_headers, const char *body, size_t len)
{
	route_respond_headers(arg, status, content_type, headers, n_headers, body, len);
}

void route_respond_json_typed(struct route_call *c, int status, const char *content_type, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (text)
		route_respond(c, status, content_type, text, strlen(text));
	else
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
	free(text);
	json_decref(j);
}

void route_respond_json(struct route_call *c, int status, json_t *j)
{
	route_respond_json_typed(c, status, "application/json", j);
}

void route_problem(struct route_call *c, int status, const char *title, const char *detail,
		   const char *field)
{
	respond_problem(respond_cb, c, status, title, detail, field, c->req.reqid);
}

void handler_cancel(struct route_call *c)
{
	if (!c)
		return;
	c->cancelled = true;
	if (c->auth) {
		/* its callback will not run: nothing else holds c */
		auth_cancel(c->auth);
		call_free(c);
	}
	/* else the handler's answer frees it */
}

/* ---- dispatch ---- */

static void run(struct route_call *c)
{
	c->route->fn(c);
}

#define NEED_IDENTITY "this route needs the agent's identity certificate (TLS client certificate from enrolment)"

/* Routes for agents alone: they authenticate with the identity certificate
 * from enrolment (docs/agent.md), never with an API key. */
static bool agent_only(const struct route *r)
{
	return r->roles == ROLE_AGENT && (r->flags & ROUTE_OWN_AGENT);
}

static void on_auth(const struct auth_result *res, void *arg)
{
	struct route_call *c = arg;
	const char *id;
	unsigned bit;

	c->auth = NULL;
	switch (res->status) {
	case 200: break;
	case 401:
		route_problem(c, 401, "Unauthorized", res->why ? res->why : "a valid API key is needed", NULL);
		return;
	case 410: route_problem(c, 410, "Gone", "the agent is retired: stop", NULL); return;
	case 429: route_problem(c, 429, "Too Many Requests", "too many failed authentications", NULL); return;
	default: route_problem(c, 503, "Service Unavailable", "cannot check the API key now", NULL); return;
	}
	if (agent_only(c->route) && strcmp(res->role, "agent") == 0 && !res->identity_id[0]) {
		/* an agent's API key: the agent routes take its identity certificate */
		route_problem(c, 401, "Unauthorized", NEED_IDENTITY, NULL);
		return;
	}
	c->who = *res;
	bit = role_bit(res->role);
	if (!(c->route->roles & bit) ||
	    (bit == ROLE_AGENT && (c->route->flags & ROUTE_OWN_AGENT) &&
	     (!(id = route_param(c, "id")) || strcmp(id, res->agent_id) != 0))) {
		log_event(LOG_INFO, c->req.reqid, NULL, "denied: key %s (%s) may not %s %s", res->key_id,
			  res->role, c->route->method, c->route->pattern);
		route_problem(c, 403, "Forbidden", "this key's role may not do this", NULL);
		return;
	}
	if (c->bad_param) {
		route_problem(c, 404, "Not Found", NULL, NULL);
		return;
	}
	run(c);
}

/* c->req's strings and body in one allocation */
static bool copy_request(struct route_call *c, const struct api_request *req)
{
	const char *s[] = {req->method, req->path, req->query ? req->query : "", req->client ? req->client : "",
			   req->reqid ? req->reqid : "", req->client_cert ? req->client_cert : ""};
	size_t len[6], total = req->body_len + 1;
	char *p;

	for (size_t i = 0; i < 6; i++)
		total += (len[i] = strlen(s[i])) + 1;
	if (!(p = c->copy = malloc(total)))
		return false;
	c->copy_len = total;
	for (size_t i = 0; i < 6; i++) {
		memcpy(p, s[i], len[i] + 1);
		s[i] = p;
		p += len[i] + 1;
	}
	c->req = *req;
	c->req.method = s[0];
	c->req.path = s[1];
	c->req.query = s[2];
	c->req.client = s[3];
	c->req.reqid = s[4];
	c->req.client_cert = req->client_cert ? s[5] : NULL;
	c->req.authorization = NULL; /* used once, by the authentication, never kept */
	if (req->body_len)
		memcpy(p, req->body, req->body_len);
	p[req->body_len] = '\0'; /* a NUL after the body, for parsers that want one */
	c->req.body = req->body_len ? (const uint8_t *)p : NULL;
	return true;
}

struct route_call *handle_request(struct worker *w, const struct api_request *req, respond_fn respond,
				  void *ctx)
{
	const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
	const struct route *r = NULL;
	const char *label = "other";
	bool path_known = false;
	struct route_call *c;

	routes_init();
	/* the most specific route wins: /api/v1/agents/retired over
	 * /api/v1/agents/{id} */
	for (size_t i = 0, best = SIZE_MAX, best_any = SIZE_MAX; i < ntable; i++) {
		size_t params;

		if (!match(table[i]->pattern, req->path, NULL, NULL))
			continue;
		params = count_params(table[i]->pattern);
		if (params < best_any) {
			/* the label handler_route() gives, without a second walk */
			label = table[i]->pattern;
			best_any = params;
		}
		if (req->plain && !(table[i]->flags & ROUTE_PLAIN))
			continue;
		path_known = true;
		if (strcmp(method, table[i]->method) == 0 && params < best) {
			r = table[i];
			best = params;
		}
	}
	if (req->route_label)
		*req->route_label = label;
	if (!r) {
		respond_problem(respond, ctx, path_known ? 405 : 404,
				path_known ? "Method Not Allowed" : "Not Found",
				path_known ? "method not allowed on this route" : "no such route", NULL, req->reqid);
		return NULL;
	}
	if (!(c = calloc(1, sizeof *c)) || !copy_request(c, req)) {
		free(c);
		respond_problem(respond, ctx, 503, "Service Unavailable", "out of memory", NULL, req->reqid);
		return NULL;
	}
	c->w = w;
	c->route = r;
	c->respond = respond;
	c->ctx = ctx;
	match(r->pattern, req->path, c, &c->bad_param);
	{
		uint8_t d[SHA256_DIGEST_LENGTH];

		SHA256(req->body ? req->body : (const uint8_t *)"", req->body_len, d);
		hex_encode(d, sizeof d, c->body_sha256);
	}
	c->dispatching = true;
	if (r->roles == ROLES_PUBLIC) {
		if (c->bad_param)
			route_problem(c, 404, "Not Found", NULL, NULL);
		else
			run(c);
	} else if (agent_only(r) && !req->authorization && !c->req.client_cert) {
		on_auth(&(struct auth_result){.status = 401, .why = NEED_IDENTITY}, c);
	} else {
		/* on_auth may run before the check returns */
		struct auth_req *a = !req->authorization && c->req.client_cert && (r->roles & ROLE_AGENT)
					     ? agent_identity_check(w, c->req.client_cert, c->req.client,
								    c->req.reqid, on_auth, c)
					     : auth_check(w, req->authorization, c->req.client, c->req.reqid, on_auth, c);

		if (a && !c->answered)
			c->auth = a;
	}
	c->dispatching = false;
	if (c->answered) {
		call_free(c);
		return NULL;
	}
	return c;
}

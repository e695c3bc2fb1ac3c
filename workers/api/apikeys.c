/* See apikeys.h. */
#include "apikeys.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/mem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "log.h"
#include "query.h"
#include "resource.h"
#include "store_client.h"
#include "validate.h"

enum verb { K_LIST, K_GET, K_CREATE, K_REVOKE };

static const char *const verb_names[] = {"list", "get", "create", "revoke"};

/* What a create takes, checked by lib/resource.c like any REST body
 * (unknown and duplicate members, types, lengths, formats, required).
 * The record's server-owned fields are not accepted: there is no update
 * to send a record back to. */
static const struct field_def create_fields[] = {
	{"name", FT_STRING, FF_NONE, FIELD_REQUIRED, 1, 255, NULL},
	{"role", FT_ENUM, FF_NONE, FIELD_REQUIRED, 0, 0, "admin|operator|viewer|agent"},
	{"agent_id", FT_REF, FF_NONE, 0, 0, 128, NULL},
	{"expires_at", FT_TIMESTAMP, FF_NONE, 0, 0, 0, NULL},
};
static const struct resource_def create_def = {
	"apikeys", "/api/v1/apikeys", create_fields, sizeof create_fields / sizeof create_fields[0],
	VERB_CREATE, 0, 0};
#define ROLE_FIELD (&create_fields[1])

struct apikeys_call {
	struct route_call *rc;
	enum verb verb;
	char page[12], per_page[12], revoked[8]; /* list */
	const char *role;                         /* list: the filter, or NULL */
	struct query q;                           /* list: holds role */
	json_t *fields;                           /* create: the checked body */
	struct apikey_made made;                  /* create: wiped in call_free */
};

static void call_free(struct apikeys_call *c)
{
	json_decref(c->fields);
	apikey_made_clear(&c->made);
	free(c);
}

/* answers (which frees the route call) and frees c */
static void fail(struct apikeys_call *c, int status, const char *title, const char *detail,
		 const char *field)
{
	route_problem(c->rc, status, title, detail, field);
	call_free(c);
}

void respond_with_secret(struct route_call *rc, int status, const char *record, size_t len, const char *member,
			 const char *secret)
{
	size_t cap = len + strlen(member) + strlen(secret) + 16, n = len;
	char *out;

	/* json_build_object's text ends with the object's closing brace */
	while (n > 0 && record[n - 1] != '}')
		n--;
	if (n == 0 || !(out = malloc(cap))) {
		route_problem(rc, 500, "Internal Server Error", NULL, NULL);
		return;
	}
	memcpy(out, record, n - 1);
	n = n - 1 + (size_t)snprintf(out + n - 1, cap - (n - 1), ", \"%s\" : \"%s\"}", member, secret);
	route_respond(rc, status, "application/json", out, n);
	OPENSSL_cleanse(out, cap);
	free(out);
}

/* The new record with its key text: the only time the secret is sent. */
static void answer_created(struct apikeys_call *c, const char *record, size_t len)
{
	respond_with_secret(c->rc, 201, record, len, "key", c->made.text);
}

static void on_store(const struct store_outcome *o, void *arg)
{
	struct apikeys_call *c = arg;
	const char *m = o->message, *refused;
	json_t *j;

	if (o->error) {
		if (o->error == EIO && strstr(m, "SQLSTATE 23505"))
			fail(c, 409, "Conflict", "name: an API key with this name exists already", "name");
		else if (o->error == EIO && strstr(m, "SQLSTATE 23503"))
			fail(c, 422, "Unprocessable Content", "agent_id: no such agent", "agent_id");
		else if (o->error == EIO && strstr(m, "SQLSTATE 22"))
			fail(c, 400, "Bad Request", "expires_at: not a date-time the server can store", "expires_at");
		else if (o->error == EIO && strstr(m, "SQLSTATE 23"))
			fail(c, 400, "Bad Request", "a value is out of range or not allowed", NULL);
		else if (o->error == ENOTCONN || o->error == EAGAIN || o->error == EBUSY ||
			 o->error == ETIMEDOUT || o->error == ECONNRESET)
			fail(c, 503, "Service Unavailable", "the database is unavailable", NULL);
		else {
			log_event(LOG_ERROR, c->rc->req.reqid, NULL, "apikeys.%s failed: %s", verb_names[c->verb], m);
			fail(c, 500, "Internal Server Error", NULL, NULL);
		}
		return;
	}
	if (o->status == STORE_NO_ROW) {
		fail(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (c->verb == K_LIST || c->verb == K_GET) {
		route_respond(c->rc, 200, "application/json", (const char *)o->json, o->json_len);
		call_free(c);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	refused = json_string_value(json_object_get(j, "refused"));
	if (c->verb == K_CREATE && !refused)
		answer_created(c, (const char *)o->json, o->json_len);
	else if (c->verb == K_CREATE && strcmp(refused, "expires_at") == 0)
		route_problem(c->rc, 400, "Bad Request", "expires_at: must be in the future", "expires_at");
	else if (c->verb == K_CREATE)
		route_problem(c->rc, 422, "Unprocessable Content", "agent_id: no such agent, or it is retired",
			      "agent_id");
	else if (refused && strcmp(refused, "last_admin") == 0)
		route_problem(c->rc, 409, "Conflict",
			      "this is the last admin key that is not revoked: create another admin key first", NULL);
	else /* revoked now, or already: either way it is revoked */
		route_respond(c->rc, 204, "application/json", "", 0);
	json_decref(j);
	call_free(c);
}

static void call_store(struct apikeys_call *c)
{
	const char *p[16];
	size_t n = 0;
	char op[32];

	switch (c->verb) {
	case K_LIST:
		p[n++] = c->page;
		p[n++] = c->per_page;
		p[n++] = c->role;
		p[n++] = c->revoked[0] ? c->revoked : NULL;
		break;
	case K_GET:
	case K_REVOKE: p[n++] = route_param(c->rc, "id"); break;
	case K_CREATE:
		if (!apikey_make(&c->made)) {
			log_event(LOG_ERROR, c->rc->req.reqid, NULL, "no randomness for a new API key");
			fail(c, 503, "Service Unavailable", NULL, NULL);
			return;
		}
		p[n++] = json_string_value(json_object_get(c->fields, "name"));
		p[n++] = json_string_value(json_object_get(c->fields, "role"));
		p[n++] = json_string_value(json_object_get(c->fields, "agent_id"));
		p[n++] = json_string_value(json_object_get(c->fields, "expires_at"));
		p[n++] = c->made.salt_hex;
		p[n++] = c->made.hash_hex;
		p[n++] = c->made.key.prefix;
		break;
	}
	if (c->verb == K_CREATE || c->verb == K_REVOKE)
		n = route_audit_params(c->rc, p, n); /* the audit event, written with the change */
	snprintf(op, sizeof op, "apikeys.%s", verb_names[c->verb]);
	if (store_call(c->rc->w, op, p, n, on_store, c) != 0)
		fail(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* page, per_page, role and revoked; anything else is 400 */
static bool parse_list_query(struct apikeys_call *c)
{
	struct query *q = &c->q;
	const char *why, *bad, *v;
	long page = 1, per_page = QUERY_PER_PAGE_DEFAULT;

	if (query_parse(q, c->rc->req.query, &why, &bad) != 0) {
		fail(c, 400, "Bad Request", why, bad);
		return false;
	}
	for (size_t i = 0; i < q->n; i++) {
		const char *name = q->pair[i].name;
		char detail[120];

		if (strcmp(name, "page") != 0 && strcmp(name, "per_page") != 0 && strcmp(name, "role") != 0 &&
		    strcmp(name, "revoked") != 0) {
			snprintf(detail, sizeof detail, "%.63s: unknown query parameter", name);
			fail(c, 400, "Bad Request", detail, name);
			return false;
		}
	}
	if ((v = query_get(q, "page")) && !query_int(v, 1, QUERY_PAGE_MAX, &page))
		fail(c, 400, "Bad Request", "page: must be an integer from 1", "page");
	else if ((v = query_get(q, "per_page")) && !query_int(v, 1, QUERY_PER_PAGE_MAX, &per_page))
		fail(c, 400, "Bad Request", "per_page: must be an integer from 1 to 500", "per_page");
	else if ((v = query_get(q, "role")) && !resource_enum_ok(ROLE_FIELD, v))
		fail(c, 400, "Bad Request", "role: must be admin, operator, viewer or agent", "role");
	else if ((v = query_get(q, "revoked")) && strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
		fail(c, 400, "Bad Request", "revoked: must be true or false", "revoked");
	else {
		snprintf(c->page, sizeof c->page, "%ld", page);
		snprintf(c->per_page, sizeof c->per_page, "%ld", per_page);
		c->role = query_get(q, "role");
		v = query_get(q, "revoked");
		snprintf(c->revoked, sizeof c->revoked, "%s", v ? v : "");
		return true;
	}
	return false;
}

/* The body against create_def, then what a table of fields cannot say. */
static bool check_create(struct apikeys_call *c)
{
	struct resource_error err;
	const struct api_request *req = &c->rc->req;
	char *canonical = resource_check_body(&create_def, req->body ? (const char *)req->body : "",
					      req->body_len, true, &err);
	const char *role, *agent;

	if (!canonical) {
		fail(c, 400, "Bad Request", err.msg, err.field);
		return false;
	}
	c->fields = json_loads(canonical, 0, NULL);
	free(canonical);
	if (!c->fields) {
		fail(c, 503, "Service Unavailable", "out of memory", NULL);
		return false;
	}
	role = json_string_value(json_object_get(c->fields, "role"));
	agent = json_string_value(json_object_get(c->fields, "agent_id"));
	if (strcmp(role, "agent") == 0 && !agent)
		fail(c, 400, "Bad Request", "agent_id: required for an agent key", "agent_id");
	else if (strcmp(role, "agent") != 0 && agent)
		fail(c, 400, "Bad Request", "agent_id: only an agent key belongs to an agent", "agent_id");
	else
		return true;
	return false;
}

static void handle(struct route_call *rc, enum verb verb)
{
	struct apikeys_call *c = calloc(1, sizeof *c);
	const char *id = route_param(rc, "id");

	if (!c) {
		route_problem(rc, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	c->rc = rc;
	c->verb = verb;
	if (id && !valid_resource_id(id, 128))
		fail(c, 404, "Not Found", NULL, NULL);
	else if ((verb != K_LIST || parse_list_query(c)) && (verb != K_CREATE || check_create(c)))
		call_store(c);
}

void apikeys_list(struct route_call *rc)
{
	handle(rc, K_LIST);
}

void apikeys_get(struct route_call *rc)
{
	handle(rc, K_GET);
}

void apikeys_create(struct route_call *rc)
{
	handle(rc, K_CREATE);
}

void apikeys_revoke(struct route_call *rc)
{
	handle(rc, K_REVOKE);
}

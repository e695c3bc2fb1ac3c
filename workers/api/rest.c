/* See rest.h. */
#include "rest.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "resource.h"
#include "store_client.h"
#include "validate.h"

#define PER_PAGE_DEFAULT 50
#define PER_PAGE_MAX 500
#define QUERY_MAX 4096

enum verb { V_LIST, V_GET, V_CREATE, V_UPDATE, V_DELETE };

static const char *const verb_names[] = {"list", "get", "create", "update", "delete"};

struct rest_call {
	struct worker *w;
	respond_fn respond;
	void *ctx;
	const struct resource_def *res;
	enum verb verb;
	struct auth_req *auth;
	int cancelled, in_store;
	char id[129];
	char reqid[17];
	char client[64];
	char *canonical; /* create/update: the checked fields */
	char *filters;   /* list: the filters as a JSON object, or NULL */
	char page[12], per_page[12], sort[64];
	int descending;
	char body_sha256[65];
	/* a refusal found before authentication, given after it (a client
	 * without a valid key learns nothing but 401) */
	int pending_status;
	const char *pending_title;
	char pending_detail[200], pending_field[64];
};

static void call_free(struct rest_call *c)
{
	free(c->canonical);
	free(c->filters);
	free(c);
}

static void fail(struct rest_call *c, int status, const char *title, const char *detail,
		 const char *field)
{
	if (!c->cancelled)
		respond_problem(c->respond, c->ctx, status, title, detail, field, c->reqid);
}

static void defer(struct rest_call *c, int status, const char *title, const char *detail,
		  const char *field)
{
	if (c->pending_status)
		return;
	c->pending_status = status;
	c->pending_title = title;
	snprintf(c->pending_detail, sizeof c->pending_detail, "%s", detail ? detail : title);
	snprintf(c->pending_field, sizeof c->pending_field, "%s", field ? field : "");
}

static const struct resource_def *match(const char *path, const char **rest)
{
	for (size_t i = 0; i < resource_catalogue_len; i++) {
		size_t n = strlen(resource_catalogue[i].path);

		if (strncmp(path, resource_catalogue[i].path, n) == 0 &&
		    (path[n] == '\0' || path[n] == '/')) {
			*rest = path + n;
			return &resource_catalogue[i];
		}
	}
	return NULL;
}

bool rest_route(const char *path, char *route, size_t route_len)
{
	const char *rest;
	const struct resource_def *r = match(path, &rest);

	if (!r)
		return false;
	snprintf(route, route_len, "%s%s", r->path, *rest ? "/{id}" : "");
	return true;
}

/* ---- the store's answer ---- */

static void on_store(const struct store_outcome *o, void *arg)
{
	struct rest_call *c = arg;

	if (c->cancelled) {
		call_free(c);
		return;
	}
	if (o->error) {
		const char *m = o->message;

		if (o->error == EIO && strstr(m, "SQLSTATE 23505"))
			fail(c, 409, "Conflict", "a record with this name or id exists already", NULL);
		else if (o->error == EIO && strstr(m, "SQLSTATE 23503"))
			fail(c, c->verb == V_DELETE ? 409 : 422,
			     c->verb == V_DELETE ? "Conflict" : "Unprocessable Content",
			     c->verb == V_DELETE ? "other records still refer to this one"
						 : "a referenced record does not exist", NULL);
		else if (o->error == EIO && (strstr(m, "SQLSTATE 23") || strstr(m, "SQLSTATE 22")))
			fail(c, 400, "Bad Request", "a value is out of range or not allowed", NULL);
		else if (o->error == ENOTCONN || o->error == EAGAIN || o->error == EBUSY ||
			 o->error == ETIMEDOUT || o->error == ECONNRESET)
			fail(c, 503, "Service Unavailable", "the database is unavailable", NULL);
		else {
			log_event(LOG_ERROR, c->reqid, NULL, "%s.%s failed: %s", c->res->name,
				  verb_names[c->verb], m);
			fail(c, 500, "Internal Server Error", NULL, NULL);
		}
		call_free(c);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		fail(c, 404, "Not Found", NULL, NULL);
	} else if (c->verb == V_DELETE) {
		json_t *j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
		json_int_t n = json_integer_value(json_object_get(j, "deleted"));

		json_decref(j);
		if (n > 0)
			c->respond(c->ctx, 204, "application/json", "", 0);
		else
			fail(c, 404, "Not Found", NULL, NULL);
	} else {
		c->respond(c->ctx, c->verb == V_CREATE ? 201 : 200, "application/json",
			   (const char *)o->json, o->json_len);
	}
	call_free(c);
}

static void call_store(struct rest_call *c, const struct auth_result *who)
{
	char op[96];
	const char *p[16];
	size_t n = 0;

	snprintf(op, sizeof op, "%s.%s", c->res->name, verb_names[c->verb]);
	switch (c->verb) {
	case V_LIST:
		p[n++] = c->page;
		p[n++] = c->per_page;
		p[n++] = c->sort[0] ? c->sort : NULL;
		p[n++] = c->descending ? "true" : "false";
		p[n++] = c->filters;
		break;
	case V_GET: p[n++] = c->id; break;
	case V_CREATE: p[n++] = c->canonical; break;
	case V_UPDATE:
		p[n++] = c->id;
		p[n++] = c->canonical;
		break;
	case V_DELETE: p[n++] = c->id; break;
	}
	if (c->verb == V_CREATE || c->verb == V_UPDATE || c->verb == V_DELETE) {
		/* the audit event, written with the change (schema/gen_resources.py) */
		p[n++] = who->key_id;
		p[n++] = strcmp(who->role, "agent") == 0 ? "Agent" : "User";
		p[n++] = who->role;
		p[n++] = c->reqid;
		p[n++] = c->client;
		p[n++] = c->body_sha256;
	}
	if (store_call(c->w, op, p, n, on_store, c) != 0) {
		fail(c, 503, "Service Unavailable", "the database is unavailable", NULL);
		call_free(c);
	}
}

/* Reads go to every role but agent; changes to admins (operators manage
 * certificates, jobs and targets, which come later). */
static bool allowed(const struct rest_call *c, const char *role)
{
	if (strcmp(role, "admin") == 0)
		return true;
	if (c->verb == V_LIST || c->verb == V_GET)
		return strcmp(role, "operator") == 0 || strcmp(role, "viewer") == 0;
	return false;
}

static void on_auth(const struct auth_result *res, void *arg)
{
	struct rest_call *c = arg;

	c->auth = NULL;
	switch (res->status) {
	case 200: break;
	case 401: fail(c, 401, "Unauthorized", "a valid API key is needed", NULL); call_free(c); return;
	case 429: fail(c, 429, "Too Many Requests", "too many failed authentications", NULL); call_free(c); return;
	default: fail(c, 503, "Service Unavailable", NULL, NULL); call_free(c); return;
	}
	if (!allowed(c, res->role)) {
		fail(c, 403, "Forbidden", "this key's role may not do this", NULL);
		call_free(c);
		return;
	}
	if (c->pending_status) {
		fail(c, c->pending_status, c->pending_title, c->pending_detail, c->pending_field);
		call_free(c);
		return;
	}
	c->in_store = 1;
	call_store(c, res);
}

/* ---- the request ---- */

static int unhex1(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* percent-decoding in place; '+' is a space; no NUL may result */
static bool decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%') {
			int hi = unhex1(s[1]), lo = hi < 0 ? -1 : unhex1(s[2]);

			if (lo < 0 || (hi == 0 && lo == 0))
				return false;
			*o++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*o++ = *s == '+' ? ' ' : *s;
		}
	}
	*o = '\0';
	return true;
}

static bool number(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (!*s || strlen(s) > 10)
		return false;
	v = strtol(s, &end, 10);
	if (*end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* page, per_page, sort and the resource's filters; anything else is 400 */
static bool parse_query(struct rest_call *c, const char *query)
{
	char buf[QUERY_MAX + 1], *save = NULL, *pair;
	long page = 1, per_page = PER_PAGE_DEFAULT;
	json_t *filters = json_object();

	if (strlen(query) > QUERY_MAX) {
		defer(c, 400, "Bad Request", "the query is too long", NULL);
		goto bad;
	}
	snprintf(buf, sizeof buf, "%s", query);
	for (pair = strtok_r(buf, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(pair, '='), *val;
		const struct field_def *f;

		if (!eq) {
			defer(c, 400, "Bad Request", "a query parameter without a value", NULL);
			goto bad;
		}
		*eq = '\0';
		val = eq + 1;
		if (!decode(pair) || !decode(val)) {
			defer(c, 400, "Bad Request", "a malformed percent-escape in the query", NULL);
			goto bad;
		}
		if (strcmp(pair, "page") == 0) {
			if (!number(val, 1, 1000000000, &page)) {
				defer(c, 400, "Bad Request", "page: must be an integer from 1", "page");
				goto bad;
			}
		} else if (strcmp(pair, "per_page") == 0) {
			if (!number(val, 1, PER_PAGE_MAX, &per_page)) {
				defer(c, 400, "Bad Request", "per_page: must be an integer from 1 to 500", "per_page");
				goto bad;
			}
		} else if (strcmp(pair, "sort") == 0) {
			const char *name = val[0] == '-' ? val + 1 : val;

			f = resource_field(c->res, name);
			if (!f || !(f->flags & FIELD_SORT)) {
				defer(c, 400, "Bad Request", "sort: not a sort key of this resource", "sort");
				goto bad;
			}
			snprintf(c->sort, sizeof c->sort, "%s", name);
			c->descending = val[0] == '-';
		} else if ((f = resource_field(c->res, pair)) && (f->flags & FIELD_FILTER)) {
			long n;

			if (strlen(val) > (size_t)(f->max > 0 && f->type != FT_INT ? f->max : 255) ||
			    ((f->type == FT_ID || f->type == FT_REF) && !valid_resource_id(val, (size_t)f->max)) ||
			    (f->type == FT_BOOL && strcmp(val, "true") != 0 && strcmp(val, "false") != 0) ||
			    (f->type == FT_INT && !number(val, (long)f->min, (long)f->max, &n))) {
				defer(c, 400, "Bad Request", "a filter value is malformed", f->name);
				goto bad;
			}
			json_object_set_new(filters, f->name, json_string(val));
		} else {
			char field[64];

			snprintf(field, sizeof field, "%s", pair);
			defer(c, 400, "Bad Request", "unknown query parameter", field);
			goto bad;
		}
	}
	snprintf(c->page, sizeof c->page, "%ld", page);
	snprintf(c->per_page, sizeof c->per_page, "%ld", per_page);
	c->filters = json_object_size(filters) ? json_dumps(filters, JSON_COMPACT) : NULL;
	json_decref(filters);
	return true;
bad:
	json_decref(filters);
	return false;
}

static void sha256_hex(const uint8_t *p, size_t len, char out[65])
{
	uint8_t d[SHA256_DIGEST_LENGTH];

	SHA256(p ? p : (const uint8_t *)"", len, d);
	hex_encode(d, sizeof d, out);
}

struct rest_call *rest_request(struct worker *w, const struct api_request *req, respond_fn respond,
			       void *ctx)
{
	struct rest_call *c = calloc(1, sizeof *c);
	const char *rest;
	bool item;

	if (!c) {
		respond_problem(respond, ctx, 503, "Service Unavailable", NULL, NULL, req->reqid);
		return NULL;
	}
	c->w = w;
	c->respond = respond;
	c->ctx = ctx;
	snprintf(c->reqid, sizeof c->reqid, "%s", req->reqid ? req->reqid : "");
	snprintf(c->client, sizeof c->client, "%s", req->client);
	c->res = match(req->path, &rest);
	item = *rest == '/';
	if (item) {
		snprintf(c->id, sizeof c->id, "%s", rest + 1);
		if (!decode(c->id) || !valid_resource_id(c->id, 128))
			defer(c, 404, "Not Found", NULL, NULL);
	}
	if (!item && strcmp(req->method, "GET") == 0)
		c->verb = V_LIST;
	else if (!item && strcmp(req->method, "POST") == 0)
		c->verb = V_CREATE;
	else if (item && strcmp(req->method, "GET") == 0)
		c->verb = V_GET;
	else if (item && strcmp(req->method, "PUT") == 0)
		c->verb = V_UPDATE;
	else if (item && strcmp(req->method, "DELETE") == 0)
		c->verb = V_DELETE;
	else
		defer(c, 405, "Method Not Allowed", NULL, NULL);
	if (!c->pending_status && c->verb == V_LIST)
		parse_query(c, req->query);
	if (!c->pending_status && (c->verb == V_CREATE || c->verb == V_UPDATE)) {
		struct resource_error err;

		c->canonical = resource_check_body(c->res, (const char *)req->body, req->body_len,
						   c->verb == V_CREATE, &err);
		if (!c->canonical)
			defer(c, 400, "Bad Request", err.msg, err.field);
	}
	sha256_hex(req->body, req->body_len, c->body_sha256);
	{
		/* on_auth may run (and free c) before auth_check returns */
		struct auth_req *a = auth_check(w, req->authorization, req->client, req->reqid, on_auth, c);

		if (!a)
			return NULL;
		c->auth = a;
		return c;
	}
}

void rest_cancel(struct rest_call *c)
{
	if (!c)
		return;
	c->cancelled = 1;
	if (c->auth) {
		/* on_auth will not run: nothing else holds c */
		auth_cancel(c->auth);
		call_free(c);
	}
	/* else the store's answer frees it */
}

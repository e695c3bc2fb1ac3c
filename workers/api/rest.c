/* See rest.h. */
#include "rest.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/mem.h>
#include <unistd.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "codec.h"
#include "issuance.h"
#include "issuer_config.h"
#include "log.h"
#include "query.h"
#include "util.h"
#include "resource.h"
#include "secretbox.h"
#include "routes.h"
#include "store_client.h"
#include "validate.h"


enum verb { V_LIST, V_GET, V_CREATE, V_UPDATE, V_DELETE };

static const char *const verb_names[] = {"list", "get", "create", "update", "delete"};

struct rest_call {
	struct route_call *rc;
	const struct resource_def *res;
	enum verb verb;
	const char *id;
	char *canonical; /* create/update: the checked fields */
	char *filters;   /* list: the filters as a JSON object, or NULL */
	char page[12], per_page[12], sort[64];
	int descending;
	bool unaudited; /* audit.failure_mode fail_open: the change without its event */
	/* a resource with secrets (issuers' config): the body as JSON, and
	 * the secret members on their way to the signer */
	json_t *doc, *secrets;
	const struct field_def *secrets_field, *sealed_field;
};

static void forget_secrets(struct rest_call *c)
{
	if (c->secrets) {
		const char *k;
		json_t *v;

		/* clear the values in jansson's own buffers before they are freed */
		json_object_foreach(c->secrets, k, v)
			if (json_is_string(v))
				OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
		json_decref(c->secrets);
		c->secrets = NULL;
	}
}

static void call_free(struct rest_call *c)
{
	free(c->canonical);
	free(c->filters);
	forget_secrets(c);
	json_decref(c->doc);
	free(c);
}

/* answers (which frees the route call) and frees c */
static void fail(struct rest_call *c, int status, const char *title, const char *detail,
		 const char *field)
{
	route_problem(c->rc, status, title, detail, field);
	call_free(c);
}

/* ---- the store's answer ---- */

static void call_store(struct rest_call *c);

void rest_store_failed(struct route_call *rc, const struct store_outcome *o, bool deleting, const char *what)
{
	const char *m = o->message ? o->message : "", *t = strstr(m, "(table ");
	char detail[160];

	if (o->error == EIO && strstr(m, "SQLSTATE 23505")) {
		route_problem(rc, 409, "Conflict", "a record with this name or id exists already", NULL);
	} else if (o->error == EIO && strstr(m, "SQLSTATE 23503") && deleting) {
		/* the store names the table whose rows still refer to this one */
		snprintf(detail, sizeof detail, "other records still refer to this one%s%.*s%s", t ? " (" : "",
			 t ? (int)strcspn(t + 7, ")") : 0, t ? t + 7 : "", t ? ")" : "");
		route_problem(rc, 409, "Conflict", detail, NULL);
	} else if (o->error == EIO && strstr(m, "SQLSTATE 23503")) {
		route_problem(rc, 422, "Unprocessable Content", "a referenced record does not exist", NULL);
	} else if (o->error == EIO && strstr(m, "SQLSTATE 23001")) {
		/* a trigger that keeps a value others depend on (migration 0011) */
		route_problem(rc, 409, "Conflict",
			      "the change is refused while stored records depend on the value (an issuer that has "
			      "issued certificates keeps its config.intermediate_id)",
			      NULL);
	} else if (o->error == EIO && (strstr(m, "SQLSTATE 23") || strstr(m, "SQLSTATE 22"))) {
		route_problem(rc, 400, "Bad Request", "a value is out of range or not allowed", NULL);
	} else if (o->error == ENOTCONN || o->error == EAGAIN || o->error == EBUSY || o->error == ETIMEDOUT ||
		   o->error == ECONNRESET) {
		route_problem(rc, 503, "Service Unavailable", "the database is unavailable", NULL);
	} else {
		log_event(LOG_ERROR, rc->req.reqid, NULL, "%s failed: %s", what, m);
		route_problem(rc, 500, "Internal Server Error", NULL, NULL);
	}
}

/* Whether a change failed on its audit event rather than on itself: the
 * store names the table of the failing row. */
static bool audit_failed(const struct store_outcome *o)
{
	return o->error == EIO && o->message &&
	       (strstr(o->message, "(table audit_events)") || strstr(o->message, "(table audit_chain_head)"));
}

static void refuse(struct resource_error *err, const char *field, const char *msg);

/* ---- a certificate created with a csr_pem (issuance.h) ---- */

static void issued(void *arg, int status, const char *title, const char *detail, const char *field,
		   const char *body, size_t len)
{
	struct rest_call *c = arg;

	if (status == 201 || status == 202) {
		route_respond(c->rc, status, "application/json", body, len);
		call_free(c);
		return;
	}
	fail(c, status, title, detail, field);
}

/* A create body's csr_pem, taken out (the record does not keep it; the
 * version does): *csr NULL when there is none. false: 400 in err. */
/* key_generation "server" and key_algorithm (default ecdsa-p256): the
 * signer makes the key; *keygen gets the algorithm */
static bool take_keygen(json_t *j, char **keygen, struct resource_error *err)
{
	json_t *g = json_object_get(j, "key_generation"), *a = json_object_get(j, "key_algorithm");
	char alg[20];

	if (!g && !a)
		return true;
	if (!json_is_string(g) || strcmp(json_string_value(g), "server") != 0) {
		refuse(err, "key_generation", "must be \"server\" (or left out, with a csr_pem)");
		return false;
	}
	if (a && (!json_is_string(a) || strlen(json_string_value(a)) >= sizeof alg)) {
		refuse(err, "key_algorithm", "must be ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519");
		return false;
	}
	snprintf(alg, sizeof alg, "%s", a ? json_string_value(a) : "ecdsa-p256");
	for (char *p = alg; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strcmp(alg, "ecdsa-p256") && strcmp(alg, "ecdsa-p384") && strcmp(alg, "rsa-2048") &&
	    strcmp(alg, "rsa-3072") && strcmp(alg, "rsa-4096") && strcmp(alg, "ed25519")) {
		refuse(err, "key_algorithm", "must be ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519");
		return false;
	}
	json_object_del(j, "key_generation");
	json_object_del(j, "key_algorithm");
	if (!(*keygen = strdup(alg))) {
		refuse(err, "", "out of memory");
		return false;
	}
	return true;
}

static bool take_csr(struct rest_call *c, char **stripped, char **csr, char **keygen, struct resource_error *err)
{
	const struct api_request *q = &c->rc->req;
	json_t *j, *v;

	*csr = *stripped = *keygen = NULL;
	if (strcmp(c->res->name, "managed_certificates") != 0 || c->verb != V_CREATE ||
	    !json_depth_ok((const char *)q->body, q->body_len, 16))
		return true;
	j = json_loadb((const char *)q->body, q->body_len, JSON_REJECT_DUPLICATES, NULL);
	if (!take_keygen(j, keygen, err)) {
		json_decref(j);
		return false;
	}
	v = json_object_get(j, "csr_pem");
	if (v && *keygen) {
		json_decref(j);
		free(*keygen);
		*keygen = NULL;
		refuse(err, "key_generation", "either a csr_pem or key_generation \"server\", not both");
		return false;
	}
	if (!v && *keygen) {
		*stripped = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (!*stripped) {
			free(*keygen);
			*keygen = NULL;
			refuse(err, "", "out of memory");
			return false;
		}
		return true;
	}
	if (!v) {
		json_decref(j);
		return true;
	}
	if (!json_is_string(v)) {
		json_decref(j);
		refuse(err, "csr_pem", "must be a string");
		return false;
	}
	*csr = strdup(json_string_value(v));
	json_object_del(j, "csr_pem");
	*stripped = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!*csr || !*stripped) {
		free(*csr);
		free(*stripped);
		*csr = *stripped = NULL;
		refuse(err, "", "out of memory");
		return false;
	}
	return true;
}

static void on_store(const struct store_outcome *o, void *arg)
{
	struct rest_call *c = arg;

	if (o->error && c->verb >= V_CREATE && audit_failed(o)) {
		char action[96];

		snprintf(action, sizeof action, "%s.%s", c->res->name, verb_names[c->verb]);
		audit_report_write_failure(c->rc->req.reqid, action, c->res->name, c->id, o->error, o->message);
		if (audit_fail_open() && !c->unaudited) {
			log_event(LOG_ERROR, c->rc->req.reqid, NULL,
				  "%s: making the change WITHOUT its audit event (audit.failure_mode: fail_open)",
				  action);
			c->unaudited = true;
			call_store(c);
			return;
		}
		fail(c, 503, "Service Unavailable", "the audit trail cannot be written: nothing was changed", NULL);
		return;
	}
	if (o->error) {
		char what[96];

		snprintf(what, sizeof what, "%s.%s", c->res->name, verb_names[c->verb]);
		rest_store_failed(c->rc, o, c->verb == V_DELETE, what);
		call_free(c);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		fail(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (c->verb == V_DELETE) {
		json_t *j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
		json_int_t n = json_integer_value(json_object_get(j, "deleted"));

		json_decref(j);
		if (n <= 0) {
			fail(c, 404, "Not Found", NULL, NULL);
			return;
		}
		route_respond(c->rc, 204, "application/json", "", 0);
	} else {
		route_respond(c->rc, c->verb == V_CREATE ? 201 : 200, "application/json",
			      (const char *)o->json, o->json_len);
	}
	call_free(c);
}

static void call_store(struct rest_call *c)
{
	char op[96];
	const char *p[16];
	size_t n = 0;

	snprintf(op, sizeof op, "%s.%s%s", c->res->name, verb_names[c->verb], c->unaudited ? "_unaudited" : "");
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
	if (c->verb == V_CREATE || c->verb == V_UPDATE || c->verb == V_DELETE)
		n = route_audit_params(c->rc, p, n); /* the audit event, written with the change */
	if (store_call(c->rc->w, op, p, n, on_store, c) != 0)
		fail(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* ---- the request ---- */

static void refuse(struct resource_error *err, const char *field, const char *msg)
{
	snprintf(err->field, sizeof err->field, "%s", field ? field : "");
	snprintf(err->msg, sizeof err->msg, "%s", msg);
}

/* page, per_page, sort and the resource's filters; anything else is 400 */
static bool parse_query(struct rest_call *c, const char *text, struct resource_error *err)
{
	struct query q;
	const char *why, *bad;
	long page = 1, per_page = QUERY_PER_PAGE_DEFAULT;
	json_t *filters = json_object();

	if (query_parse(&q, text, &why, &bad) != 0) {
		refuse(err, bad, why);
		goto bad;
	}
	for (size_t i = 0; i < q.n; i++) {
		const char *pair = q.pair[i].name, *val = q.pair[i].value;
		const struct field_def *f;

		if (strcmp(pair, "page") == 0) {
			if (!query_int(val, 1, QUERY_PAGE_MAX, &page)) {
				refuse(err, "page", "page: must be an integer from 1");
				goto bad;
			}
		} else if (strcmp(pair, "per_page") == 0) {
			if (!query_int(val, 1, QUERY_PER_PAGE_MAX, &per_page)) {
				refuse(err, "per_page", "per_page: must be an integer from 1 to 500");
				goto bad;
			}
		} else if (strcmp(pair, "sort") == 0) {
			const char *name = val[0] == '-' ? val + 1 : val;

			f = resource_field(c->res, name);
			if (!f || !(f->flags & FIELD_SORT)) {
				refuse(err, "sort", "sort: not a sort key of this resource");
				goto bad;
			}
			snprintf(c->sort, sizeof c->sort, "%s", name);
			c->descending = val[0] == '-';
		} else if ((f = resource_field(c->res, pair)) && (f->flags & FIELD_FILTER) &&
			   !(f->flags & FIELD_HIDDEN)) {
			long n;

			if (strlen(val) > (size_t)(f->max > 0 && f->type != FT_INT ? f->max : 255) ||
			    ((f->type == FT_ID || f->type == FT_REF) && !valid_resource_id(val, (size_t)f->max)) ||
			    (f->type == FT_BOOL && strcmp(val, "true") != 0 && strcmp(val, "false") != 0) ||
			    (f->type == FT_INT && !query_int(val, (long)f->min, (long)f->max, &n)) ||
			    (f->type == FT_ENUM && !resource_enum_ok(f, val)) ||
			    (f->type == FT_INET && !valid_ip_address(val))) {
				refuse(err, f->name, "a filter value is malformed");
				goto bad;
			}
			json_object_set_new(filters, f->name, json_string(val));
		} else {
			refuse(err, pair, "unknown query parameter");
			goto bad;
		}
	}
	/* a list under another resource: its id from the path */
	for (size_t i = 0; i < c->rc->nparams; i++) {
		char name[64];

		if (route_param_name(c->rc, i, name, sizeof name))
			json_object_set_new(filters, name, json_string(c->rc->params[i]));
	}
	snprintf(c->page, sizeof c->page, "%ld", page);
	snprintf(c->per_page, sizeof c->per_page, "%ld", per_page);
	c->filters = json_object_size(filters) ? json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(filters);
	return true;
bad:
	json_decref(filters);
	return false;
}

/* ---- secrets at rest (lib/secretbox.h): the api splits them off, the
 * signer seals them, the store keeps the blob ---- */

/* the body with the sealed blob (hex) or NULL in place: on to the store */
static void store_with_sealed(struct rest_call *c, const char *hex)
{
	json_object_set_new(c->doc, c->sealed_field->name, hex ? json_string(hex) : json_null());
	OPENSSL_cleanse(c->canonical, strlen(c->canonical)); /* it held the secrets in the clear */
	free(c->canonical);
	c->canonical = json_dumps(c->doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (!c->canonical) {
		fail(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	call_store(c);
}

static void on_sealed(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct rest_call *c = arg;
	char *hex;

	if (fd >= 0)
		close(fd);
	forget_secrets(c);
	if (status == 0 && m && m->type == IPC_T_ERROR && m->u.error.code == EINVAL) {
		char detail[200];

		snprintf(detail, sizeof detail, "%s: %.150s", c->secrets_field->name, m->u.error.message);
		fail(c, 400, "Bad Request", detail, c->secrets_field->name);
		return;
	}
	if (status != 0 || !m || m->type != IPC_T_SECRET_SEALED) {
		fail(c, 503, "Service Unavailable", "the signer cannot seal secrets now", NULL);
		return;
	}
	hex = malloc(m->u.secret_sealed.sealed.len * 2 + 1);
	if (!hex) {
		fail(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	hex_encode(m->u.secret_sealed.sealed.ptr, m->u.secret_sealed.sealed.len, hex);
	store_with_sealed(c, hex);
	free(hex);
}

static void seal(struct rest_call *c, const uint8_t *old, size_t old_len)
{
	struct ipc_msg m = {.type = IPC_T_SECRET_SEAL};
	char *text = json_dumps(c->secrets, JSON_COMPACT);
	struct ipc_channel *ch = worker_peer(c->rc->w, IPC_ROLE_SIGNER);
	int rc;

	if (!text) {
		fail(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	if (strlen(text) > SECRETBOX_MAX_PLAIN) {
		/* what the signer seals, and an IPC frame carries, is bounded */
		OPENSSL_cleanse(text, strlen(text));
		free(text);
		fail(c, 400, "Bad Request", "the secrets of config are too large (at most 32768 bytes in all)",
		     c->secrets_field->name);
		return;
	}
	m.u.secret_seal.old.ptr = old;
	m.u.secret_seal.old.len = (uint32_t)old_len;
	m.u.secret_seal.secrets.ptr = (const uint8_t *)text;
	m.u.secret_seal.secrets.len = (uint32_t)strlen(text);
	rc = ch ? ipc_request(ch, &m, -1, worker_ipc_timeout_ms(c->rc->w), on_sealed, c) : -1;
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	if (rc != 0)
		fail(c, 503, "Service Unavailable", "the signer cannot seal secrets now", NULL);
}

/* an update keeping some secrets: the blob stored now, for the signer */
static void on_old_secrets(const struct store_outcome *o, void *arg)
{
	struct rest_call *c = arg;
	json_t *j;
	const char *hex;
	uint8_t *old;
	size_t n;

	if (o->error) {
		rest_store_failed(c->rc, o, false, "issuers.secret_get");
		forget_secrets(c);
		call_free(c);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		fail(c, 404, "Not Found", NULL, NULL);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	hex = json_string_value(json_object_get(j, "sealed"));
	n = hex ? strlen(hex) / 2 : 0;
	old = malloc(n + 1);
	if (!old || (hex && hex_decode(hex, old, n) != 0)) {
		json_decref(j);
		free(old);
		fail(c, 500, "Internal Server Error", "the stored secrets are malformed", NULL);
		return;
	}
	json_decref(j);
	seal(c, old, n);
	free(old);
}

/* Create/update of a resource with a FIELD_SECRETS object: its secret
 * members go sealed into the FT_SEALED field, shown redacted. An update
 * without the object leaves both as they are. */
static void with_secrets(struct rest_call *c)
{
	struct resource_error err = {"", ""};
	json_t *obj;
	bool keeps;

	for (size_t i = 0; i < c->res->nfields; i++) {
		if (c->res->fields[i].flags & FIELD_SECRETS)
			c->secrets_field = &c->res->fields[i];
		if (c->res->fields[i].type == FT_SEALED)
			c->sealed_field = &c->res->fields[i];
	}
	c->doc = json_loads(c->canonical, 0, NULL);
	obj = c->doc ? json_object_get(c->doc, c->secrets_field->name) : NULL;
	if (!json_is_object(obj)) {
		if (!c->doc || c->verb == V_CREATE)
			store_with_sealed(c, NULL);
		else
			call_store(c); /* config not sent: secrets untouched */
		return;
	}
	if (!resource_split_secrets(c->secrets_field, obj, &c->secrets, &keeps, &err)) {
		fail(c, 400, "Bad Request", err.msg, err.field);
		return;
	}
	if (!c->secrets) {
		store_with_sealed(c, NULL);
	} else if (keeps && c->verb == V_UPDATE) {
		const char *p[1] = {c->id};
		char op[96];

		snprintf(op, sizeof op, "%s.secret_get", c->res->name);
		if (store_call(c->rc->w, op, p, 1, on_old_secrets, c) != 0) {
			forget_secrets(c);
			fail(c, 503, "Service Unavailable", "the database is unavailable", NULL);
		}
	} else {
		seal(c, NULL, 0);
	}
}

/* an issuer's config checked for its type (issuer_config.h): on to the store */
static void on_vetted(void *arg, int status, const struct resource_error *err, const struct store_outcome *o)
{
	struct rest_call *c = arg;

	if (status == 1) {
		rest_store_failed(c->rc, o, false, "issuers.get");
		call_free(c);
	} else if (status == 404 || status == 503) {
		fail(c, status, status == 404 ? "Not Found" : "Service Unavailable",
		     status == 404 ? NULL : "the database is unavailable", NULL);
	} else if (status != 0) {
		fail(c, 422, "Unprocessable Content", err->msg, err->field);
	} else if (resource_has_secrets(c->res)) {
		with_secrets(c);
	} else {
		call_store(c);
	}
}

/* One REST route: the verb follows from the method and whether the
 * pattern ends in {id}; the caller is authenticated and allowed. */
static void rest_handle(struct route_call *rc)
{
	struct rest_call *c = calloc(1, sizeof *c);
	const char *m = rc->route->method;
	struct resource_error err = {"", ""};
	bool item = route_param(rc, "id") != NULL;

	if (!c) {
		route_problem(rc, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	c->rc = rc;
	c->res = rc->route->arg;
	c->id = route_param(rc, "id");
	for (size_t i = 0; i < rc->nparams; i++) {
		if (!valid_resource_id(rc->params[i], 128)) {
			fail(c, 404, "Not Found", NULL, NULL);
			return;
		}
	}
	c->verb = !item ? (strcmp(m, "GET") == 0 ? V_LIST : V_CREATE)
		: strcmp(m, "GET") == 0 ? V_GET : strcmp(m, "PUT") == 0 ? V_UPDATE : V_DELETE;
	if (c->verb == V_LIST && !parse_query(c, rc->req.query, &err)) {
		fail(c, 400, "Bad Request", err.msg, err.field);
		return;
	}
	if (c->verb == V_CREATE || c->verb == V_UPDATE) {
		char *stripped = NULL, *csr = NULL, *keygen = NULL;

		if (!take_csr(c, &stripped, &csr, &keygen, &err)) {
			fail(c, 400, "Bad Request", err.msg, err.field);
			return;
		}
		c->canonical = resource_check_body(c->res, stripped ? stripped : (const char *)rc->req.body,
						   stripped ? strlen(stripped) : rc->req.body_len,
						   c->verb == V_CREATE, &err);
		free(stripped);
		if (!c->canonical) {
			free(csr);
			free(keygen);
			fail(c, 400, "Bad Request", err.msg, err.field);
			return;
		}
		if (csr || keygen) {
			issuance_run(rc, c->canonical, csr, keygen, issued, c);
			free(csr);
			free(keygen);
			return;
		}
		if (strcmp(c->res->name, "issuers") == 0) {
			issuer_config_vet(rc->w, c->id, c->canonical, c->verb == V_CREATE, on_vetted, c);
			return;
		}
		if (resource_has_secrets(c->res)) {
			with_secrets(c);
			return;
		}
	}
	call_store(c);
}

/* Two patterns per resource, and the routes of its verbs */
#define REST_ROUTES_MAX 160

static struct route rest_table[REST_ROUTES_MAX];
static char rest_patterns[REST_ROUTES_MAX / 2][128];

void rest_routes_init(void)
{
	static const struct {
		const char *method;
		unsigned verb;
		bool item, write;
	} verbs[] = {{"GET", VERB_LIST, false, false}, {"POST", VERB_CREATE, false, true},
		     {"GET", VERB_GET, true, false}, {"PUT", VERB_UPDATE, true, true},
		     {"DELETE", VERB_DELETE, true, true}};
	size_t n = 0;

	for (size_t i = 0; i < resource_catalogue_len && i < REST_ROUTES_MAX / 2; i++) {
		const struct resource_def *r = &resource_catalogue[i];
		char *item = rest_patterns[i];

		snprintf(item, sizeof rest_patterns[i], "%s/{id}", r->path);
		for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++) {
			if (!(r->verbs & verbs[v].verb))
				continue;
			if (n == REST_ROUTES_MAX)
				break;
			/* the catalogue's role bits are the router's ROLE_*; an agent
			 * may read only its own record, never a list */
			unsigned roles = verbs[v].write ? r->write_roles : r->read_roles;

			if (!verbs[v].item)
				roles &= ~ROLE_AGENT;
			rest_table[n++] = (struct route){verbs[v].method, verbs[v].item ? item : r->path, roles,
							 (roles & ROLE_AGENT) ? ROUTE_OWN_AGENT : 0, rest_handle, r};
		}
	}
	if (routes_add(rest_table, n) != 0)
		log_event(LOG_ERROR, NULL, NULL, "too many routes: the REST resources were not all added");
}

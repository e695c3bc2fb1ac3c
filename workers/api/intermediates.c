/*
 * Intermediate CAs of a Local issuer (docs/pki.md, "Intermediate CAs"),
 * admin only:
 *
 *   POST /api/v1/issuers/{id}/intermediates   make one (the signer makes the key)  201
 *   GET  /api/v1/issuers/{id}/intermediates   every one of the issuer, flat        200
 *   GET  /api/v1/intermediates/{id}                                                200
 *   POST /api/v1/intermediates/{id}/retire    {"confirm": bool, "note": text}     200
 *
 * A new intermediate goes below the root (self_signed mode; the issuing
 * CA in subordinate mode) or below another active intermediate of the same
 * issuer. The signer enforces RFC 5280's path length (a child's is below
 * its parent's) and name constraints (a child permits only names its
 * parents permit), and checks every certificate it signs below an
 * intermediate against the name constraints of the whole chain.
 */
#include "intermediates.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "log.h"
#include "query.h"
#include "routes.h"
#include "store_client.h"
#include "util.h"
#include "validate.h"

#define NAME_CONSTRAINTS_MAX 32
#define DEFAULT_TTL_DAYS 1825

struct make {
	struct route_call *c;
	json_t *body;
	char id[40];
	char parent[132];
	char cn[65], org[65], alg[20];
	uint64_t validity_s;
	long path_len; /* -1: none */
	char constraints[4096];
	json_t *nc; /* the API's form, stored */
};

static void make_free(struct make *m)
{
	json_decref(m->body);
	json_decref(m->nc);
	free(m);
}

static void make_fail(struct make *m, int status, const char *title, const char *detail, const char *field)
{
	route_problem(m->c, status, title, detail, field);
	make_free(m);
}

static void respond_store_json(struct route_call *c, int status, const struct store_outcome *o)
{
	route_respond(c, status, "application/json", (const char *)o->json, o->json_len);
}

/* ---- 3. the record ---- */

static void on_created(const struct store_outcome *o, void *arg)
{
	struct make *m = arg;

	if (o->error) {
		/* the CA exists in the signer (and its ledger) but has no record */
		log_event(LOG_ERROR, m->c->req.reqid, NULL, "intermediate CA %s made but not recorded: %s", m->id,
			  o->message);
		make_fail(m, 503, "Service Unavailable", "the database is unavailable", NULL);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		make_fail(m, 422, "Unprocessable Content", "the issuer is not of type Local", NULL);
		return;
	}
	respond_store_json(m->c, 201, o);
	make_free(m);
}

/* ---- 2. the signer makes it ---- */

static const char *field_of(const char *why)
{
	static const char *const fields[] = {"path_len_constraint", "name_constraints", "algorithm",
					     "subject.common_name", "parent_ca_id"};

	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (strncmp(why, fields[i], strlen(fields[i])) == 0)
			return fields[i];
	return NULL;
}

static void on_signed(int status, struct ipc_msg *r, int fd, void *arg)
{
	struct make *m = arg;
	json_t *rec;
	char *text, *cert;
	const char *end;
	const char *p[7];
	size_t n;

	if (fd >= 0)
		close(fd);
	if (status == 0 && r && r->type == IPC_T_ERROR && r->u.error.code == EINVAL) {
		make_fail(m, 400, "Bad Request", r->u.error.message, field_of(r->u.error.message));
		return;
	}
	if (status != 0 || !r || r->type != IPC_T_INTERMEDIATE_SIGNED) {
		make_fail(m, 503, "Service Unavailable",
			  status == 0 && r && r->type == IPC_T_ERROR ? r->u.error.message : "the signer is unavailable",
			  NULL);
		return;
	}
	/* the record keeps the intermediate's own certificate; the chain is in the signer */
	end = memmem(r->u.intermediate_signed.chain_pem.ptr, r->u.intermediate_signed.chain_pem.len,
		     "-----END CERTIFICATE-----", 25);
	cert = end ? strndup((const char *)r->u.intermediate_signed.chain_pem.ptr,
			     (size_t)(end + 25 - (const char *)r->u.intermediate_signed.chain_pem.ptr))
		   : NULL;
	rec = json_pack("{s:s, s:s, s:s, s:O, s:O, s:s, s:O, s:s, s:s, s:I, s:I, s:O}", "id", m->id, "issuer_id",
			route_param(m->c, "id"), "parent_ca_id", m->parent, "name", json_object_get(m->body, "name"),
			"subject",
			json_object_get(m->body, "subject") ? json_object_get(m->body, "subject") : json_object(),
			"algorithm", m->alg, "name_constraints", m->nc, "cert_pem", cert ? cert : "",
			"serial_number", r->u.intermediate_signed.serial, "not_before",
			(json_int_t)r->u.intermediate_signed.not_before, "not_after",
			(json_int_t)r->u.intermediate_signed.not_after, "metadata",
			json_object_get(m->body, "metadata") ? json_object_get(m->body, "metadata") : json_object());
	free(cert);
	if (rec && r->u.intermediate_signed.path_len != 0xffffffffu)
		json_object_set_new(rec, "path_len_constraint", json_integer(r->u.intermediate_signed.path_len));
	text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	p[0] = text;
	n = route_audit_params(m->c, p, 1);
	if (!text || store_call(m->c->w, "intermediates.create", p, n, on_created, m) != 0)
		make_fail(m, 503, "Service Unavailable", "the database is unavailable", NULL);
	free(text);
}

static void sign(struct make *m)
{
	struct ipc_msg q = {.type = IPC_T_INTERMEDIATE_SIGN};
	struct ipc_channel *ch = worker_peer(m->c->w, IPC_ROLE_SIGNER);
	uint8_t rnd[16];
	char hex[33];

	RAND_bytes(rnd, sizeof rnd);
	hex_encode(rnd, sizeof rnd, hex);
	snprintf(m->id, sizeof m->id, "ica-%s", hex);
	q.u.intermediate_sign.id = m->id;
	q.u.intermediate_sign.parent_id = m->parent;
	q.u.intermediate_sign.common_name = m->cn;
	q.u.intermediate_sign.organization = m->org;
	q.u.intermediate_sign.algorithm = m->alg;
	q.u.intermediate_sign.validity_seconds = m->validity_s;
	q.u.intermediate_sign.path_len = m->path_len < 0 ? 0xffffffffu : (uint32_t)m->path_len;
	q.u.intermediate_sign.name_constraints = m->constraints;
	if (!ch || ipc_request(ch, &q, -1, worker_ipc_timeout_ms(m->c->w), on_signed, m) != 0)
		make_fail(m, 503, "Service Unavailable", "the signer is unavailable", NULL);
}

/* ---- 1. the issuer and the parent ---- */

static void on_parent(const struct store_outcome *o, void *arg)
{
	struct make *m = arg;
	json_t *j;
	const char *type, *state;

	if (o->error) {
		make_fail(m, 503, "Service Unavailable", "the database is unavailable", NULL);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		make_fail(m, 404, "Not Found", "no such issuer", NULL);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	type = json_string_value(json_object_get(j, "issuer_type"));
	state = json_string_value(json_object_get(j, "parent_state"));
	if (!type || strcmp(type, "Local") != 0) {
		json_decref(j);
		make_fail(m, 422, "Unprocessable Content", "only an issuer of type Local has intermediate CAs", NULL);
		return;
	}
	if (m->parent[0] && !state) {
		json_decref(j);
		make_fail(m, 404, "Not Found", "parent_ca_id: no such intermediate CA of this issuer", "parent_ca_id");
		return;
	}
	if (m->parent[0] && strcmp(state, "active") != 0) {
		json_decref(j);
		make_fail(m, 409, "Conflict", "parent_ca_id: the parent CA is not active", "parent_ca_id");
		return;
	}
	json_decref(j);
	sign(m);
}

/* name_constraints: [{"kind": "permitted"|"excluded", "dns": "example.com"}] */
static bool parse_constraints(struct make *m, json_t *nc, const char **bad)
{
	size_t i, o = 0;
	json_t *e;

	m->constraints[0] = '\0';
	if (!nc)
		return (m->nc = json_array()) != NULL;
	if (!json_is_array(nc) || json_array_size(nc) > NAME_CONSTRAINTS_MAX) {
		*bad = "name_constraints: at most 32 objects {\"kind\": \"permitted\" or \"excluded\", \"dns\": name}";
		return false;
	}
	json_array_foreach(nc, i, e) {
		const char *kind = json_string_value(json_object_get(e, "kind"));
		const char *dns = json_string_value(json_object_get(e, "dns"));

		if (!json_is_object(e) || json_object_size(e) != 2 || !kind || !dns ||
		    (strcmp(kind, "permitted") != 0 && strcmp(kind, "excluded") != 0) ||
		    !valid_dns_name(*dns == '.' ? dns + 1 : dns, false)) {
			*bad = "name_constraints: each is {\"kind\": \"permitted\" or \"excluded\", \"dns\": a DNS name}";
			return false;
		}
		o += (size_t)snprintf(m->constraints + o, sizeof m->constraints - o, "%s%s;DNS:%s", o ? "," : "",
				      kind, dns);
		if (o >= sizeof m->constraints) {
			*bad = "name_constraints: too long";
			return false;
		}
	}
	m->nc = json_incref(nc);
	return true;
}

static void create(struct route_call *c)
{
	static const char *const members[] = {"name", "parent_ca_id", "root_cert_pem", "key_driver_id", "subject",
					      "algorithm", "ttl_days", "path_len_constraint", "name_constraints",
					      "ocsp_responder_url", "metadata"};
	struct make *m;
	json_t *b, *v, *subject;
	const char *name, *s, *bad = NULL, *field = NULL;
	const char *p[2];

	if (!valid_resource_id(route_param(c, "id"), 128)) {
		route_problem(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (!(b = action_body(c, members, sizeof members / sizeof members[0])))
		return;
	if (!(m = calloc(1, sizeof *m))) {
		json_decref(b);
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	m->c = c;
	m->body = b;
	m->path_len = -1;
	name = json_string_value(json_object_get(b, "name"));
	subject = json_object_get(b, "subject");
	if (!name || !*name || strlen(name) > 255 || !action_text_ok(name))
		bad = "name: required, 1 to 255 characters", field = "name";
	else if (json_object_get(b, "root_cert_pem") || json_object_get(b, "key_driver_id"))
		bad = "root_cert_pem: an outside root is configured in the signer (signer.ca_mode subordinate), "
		      "not registered through the API", field = "root_cert_pem";
	else if ((v = json_object_get(b, "parent_ca_id")) && !json_is_null(v) &&
		 (!json_is_string(v) || (*json_string_value(v) && !valid_resource_id(json_string_value(v), 64))))
		bad = "parent_ca_id: an intermediate CA id", field = "parent_ca_id";
	else if (subject && (!json_is_object(subject) ||
			     json_object_size(subject) > (size_t)!!json_object_get(subject, "common_name") +
							     !!json_object_get(subject, "organization")))
		bad = "subject: an object with common_name and organization", field = "subject";
	else if (subject && (((v = json_object_get(subject, "common_name")) &&
			      (!json_is_string(v) || !*json_string_value(v) || strlen(json_string_value(v)) > 64 ||
			       !action_text_ok(json_string_value(v)))) ||
			     ((v = json_object_get(subject, "organization")) &&
			      (!json_is_string(v) || strlen(json_string_value(v)) > 64 ||
			       !action_text_ok(json_string_value(v))))))
		bad = "subject: common_name and organization are 1 to 64 printable characters", field = "subject";
	else if ((v = json_object_get(b, "algorithm")) && (!json_is_string(v) || strlen(json_string_value(v)) > 16))
		bad = "algorithm: one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519",
		field = "algorithm";
	else if ((v = json_object_get(b, "ttl_days")) &&
		 (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 36500))
		bad = "ttl_days: an integer from 1 to 36500", field = "ttl_days";
	else if ((v = json_object_get(b, "path_len_constraint")) && !json_is_null(v) &&
		 (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 32))
		bad = "path_len_constraint: null or an integer from 0 to 32", field = "path_len_constraint";
	else if ((v = json_object_get(b, "ocsp_responder_url")) && (!json_is_string(v) || strlen(json_string_value(v)) > 1024))
		bad = "ocsp_responder_url: a URL", field = "ocsp_responder_url";
	else if ((v = json_object_get(b, "metadata")) && !json_is_object(v))
		bad = "metadata: an object", field = "metadata";
	else if (!parse_constraints(m, json_object_get(b, "name_constraints"), &bad))
		field = "name_constraints";
	if (bad) {
		make_fail(m, 400, "Bad Request", bad, field);
		return;
	}
	s = json_string_value(json_object_get(b, "parent_ca_id"));
	snprintf(m->parent, sizeof m->parent, "%s", s ? s : "");
	s = subject ? json_string_value(json_object_get(subject, "common_name")) : NULL;
	snprintf(m->cn, sizeof m->cn, "%.64s", s ? s : name);
	s = subject ? json_string_value(json_object_get(subject, "organization")) : NULL;
	snprintf(m->org, sizeof m->org, "%s", s ? s : "");
	/* "ECDSA-P256" as the reference writes it, or the signer's "ecdsa-p256" */
	s = json_string_value(json_object_get(b, "algorithm"));
	snprintf(m->alg, sizeof m->alg, "%s", s ? s : "ecdsa-p256");
	for (char *a = m->alg; *a; a++)
		*a = (char)tolower((unsigned char)*a);
	v = json_object_get(b, "ttl_days");
	m->validity_s = (uint64_t)(v ? json_integer_value(v) : DEFAULT_TTL_DAYS) * 86400;
	v = json_object_get(b, "path_len_constraint");
	if (json_is_integer(v))
		m->path_len = (long)json_integer_value(v);
	p[0] = route_param(c, "id");
	p[1] = m->parent;
	if (store_call(c->w, "intermediates.parent", p, 2, on_parent, m) != 0)
		make_fail(m, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* ---- reads ---- */


static void on_get(const struct store_outcome *o, void *arg);

static void list(struct route_call *c)
{
	struct query q;
	const char *why, *field, *p[3] = {route_param(c, "id")};
	char page[24], per_page[24];
	long pg, pp;

	if (!valid_resource_id(p[0], 128)) {
		route_problem(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (query_paging(&q, c->req.query, &pg, &pp, &why, &field) != 0) {
		route_problem(c, 400, "Bad Request", why, field);
		return;
	}
	snprintf(page, sizeof page, "%ld", pg);
	snprintf(per_page, sizeof per_page, "%ld", pp);
	p[1] = page;
	p[2] = per_page;
	if (store_call(c->w, "intermediates.list", p, 3, on_get, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

static void on_get(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;

	if (o->error)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
	else if (o->status == STORE_NO_ROW)
		route_problem(c, 404, "Not Found", "no such intermediate CA", NULL);
	else
		respond_store_json(c, 200, o);
}

static void get(struct route_call *c)
{
	const char *p[1] = {route_param(c, "id")};

	if (!valid_resource_id(p[0], 128)) {
		route_problem(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (store_call(c->w, "intermediates.get", p, 1, on_get, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* ---- retire, drain first ---- */

static void on_retired(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	json_t *j;
	const char *state;
	char detail[160];

	if (o->error) {
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	if (!state || strcmp(state, "missing") == 0) {
		route_problem(c, 404, "Not Found", "no such intermediate CA", NULL);
	} else if (strcmp(state, "children") == 0) {
		snprintf(detail, sizeof detail, "%lld intermediate CA(s) below it are not retired: retire them first",
			 (long long)json_integer_value(json_object_get(j, "children")));
		route_problem(c, 409, "Conflict", detail, NULL);
	} else if (strcmp(state, "not_retiring") == 0) {
		route_problem(c, 409, "Conflict",
			      "it is active: retire it without confirm first (it then signs nothing new), then confirm",
			      "confirm");
	} else if (strcmp(state, "already") == 0) {
		route_problem(c, 409, "Conflict", "it is retired already", NULL);
	} else {
		const char *p[1] = {route_param(c, "id")};

		/* the record as it is now */
		if (store_call(c->w, "intermediates.get", p, 1, on_get, c) != 0)
			route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
	}
	json_decref(j);
}

static void retire(struct route_call *c)
{
	static const char *const members[] = {"confirm", "note"};
	const char *p[10] = {route_param(c, "id")};
	json_t *b, *confirm, *note;
	size_t n;

	if (!valid_resource_id(p[0], 128)) {
		route_problem(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (!(b = action_body(c, members, 2)))
		return;
	confirm = json_object_get(b, "confirm");
	note = json_object_get(b, "note");
	if (confirm && !json_is_boolean(confirm)) {
		json_decref(b);
		route_problem(c, 400, "Bad Request", "confirm: true or false", "confirm");
		return;
	}
	if (note && (!json_is_string(note) || strlen(json_string_value(note)) > 1024 ||
		     !action_text_ok(json_string_value(note)))) {
		json_decref(b);
		route_problem(c, 400, "Bad Request", "note: up to 1024 printable characters", "note");
		return;
	}
	p[1] = json_is_true(confirm) ? "true" : "false";
	p[2] = note ? json_string_value(note) : NULL;
	n = route_audit_params(c, p, 3);
	if (store_call(c->w, "intermediates.retire", p, n, on_retired, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
	json_decref(b);
}

static const struct route intermediate_routes[] = {
	{"POST", "/api/v1/issuers/{id}/intermediates", ROLE_ADMIN, 0, create, NULL},
	{"GET", "/api/v1/issuers/{id}/intermediates", ROLE_ADMIN, 0, list, NULL},
	{"GET", "/api/v1/intermediates/{id}", ROLE_ADMIN, 0, get, NULL},
	{"POST", "/api/v1/intermediates/{id}/retire", ROLE_ADMIN, 0, retire, NULL},
};

void intermediates_routes_init(void)
{
	routes_add(intermediate_routes, sizeof intermediate_routes / sizeof intermediate_routes[0]);
}

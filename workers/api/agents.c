/*
 * Agents: enrolment with one-time tokens, identity certificates, and the
 * routes an agent works through (docs/agent.md):
 *
 *   POST /api/v1/agent-tokens                      a token for a named agent   201 (admin, operator)
 *   GET  /api/v1/agent-tokens                      the tokens, never a secret  200 (admin, operator)
 *   POST /api/v1/agents/enroll                     token + CSR -> identity    201 (no key)
 *   GET  /api/v1/agents/{id}/identities            the agent's identities     200 (admin, operator, viewer)
 *   POST /api/v1/agents/{id}/identities/{identity_id}/revoke                   200 (admin, operator)
 *   POST /api/v1/agents/{id}/identity              a renewed identity         201 (the agent)
 *   GET  /api/v1/agents/{id}/work                  its jobs                   200 (the agent)
 *   POST /api/v1/agents/{id}/csr                   a job's CSR, signed now    202 (the agent)
 *   GET  /api/v1/agents/{id}/certificates/{cert_id}  the newest version       200 (the agent)
 *   POST /api/v1/agents/{id}/jobs/{job_id}/status  the job's outcome          200 (the agent)
 *   POST /api/v1/agents/{id}/challenges/{token}    an HTTP-01 file in place   200 (the agent)
 *
 * A token is made like an API key (lib/apikey.h): the store keeps its salt
 * and hash, the api checks the secret. Enrolment checks the token, has the
 * signer make the identity certificate (AGENT_ID_SIGN, under the agent
 * identity CA), and only then redeems the token and records the identity
 * in one statement: a token raced by two enrolments is redeemed once, and
 * the loser's certificate, never recorded, authenticates nothing.
 */
#include "agents.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/mem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "apikey.h"
#include "apikeys.h"
#include "audit.h"
#include "auth.h"
#include "codec.h"
#include "issuance.h"
#include "log.h"
#include "query.h"
#include "routes.h"
#include "store_client.h"
#include "util.h"
#include "validate.h"

#define TOKEN_TTL_DEFAULT_S 900
#define TOKEN_TTL_MIN_S 60
#define TOKEN_TTL_MAX_S (30 * 86400)
#define JOB_ERROR_MAX 4096
#define TOKEN_REFUSED "the token is not valid: unknown, expired or used already (ask for a new one)"

static void unavailable(struct route_call *c)
{
	route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* A store call whose answer goes to cb; 503 when it cannot be sent. */
static void ask(struct route_call *c, const char *op, const char **p, size_t n, store_call_cb cb, void *arg)
{
	if (store_call(c->w, op, p, n, cb, arg) != 0)
		unavailable(c);
}

/* An answer the store built that goes out as it is (or 404 for none). */
static void on_passthrough(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;

	if (o->error)
		unavailable(c);
	else if (o->status == STORE_NO_ROW)
		route_problem(c, 404, "Not Found", NULL, NULL);
	else
		route_respond(c, 200, "application/json", (const char *)o->json, o->json_len);
}

/* The "state" of an action's answer (and the parsed answer in *j). */
static const char *state_of(const struct store_outcome *o, json_t **j)
{
	*j = o->error ? NULL : json_loadb((const char *)o->json, o->json_len, 0, NULL);
	return json_string_value(json_object_get(*j, "state"));
}

static bool id_param_ok(struct route_call *c, const char *name)
{
	if (valid_resource_id(route_param(c, name), 128))
		return true;
	route_problem(c, 404, "Not Found", NULL, NULL);
	return false;
}

/* A string member of b: required or not, at most max bytes. */
static const char *member(struct route_call *c, json_t *b, const char *name, bool required, size_t max)
{
	json_t *v = json_object_get(b, name);
	char detail[96];

	if (!v && !required)
		return NULL;
	if (json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= max &&
	    strlen(json_string_value(v)) == json_string_length(v))
		return json_string_value(v);
	snprintf(detail, sizeof detail, "%s: %s a string of 1 to %zu bytes", name, v ? "must be" : "missing:",
		 max);
	route_problem(c, 400, "Bad Request", detail, name);
	return (const char *)-1;
}
#define BAD(p) ((p) == (const char *)-1)

/* ---- tokens ---- */

struct token_call {
	struct route_call *c;
	struct apikey_made made;
};

static void on_token_made(const struct store_outcome *o, void *arg)
{
	struct token_call *t = arg;

	if (o->error == EIO && o->message && strstr(o->message, "SQLSTATE 23505"))
		route_problem(t->c, 409, "Conflict", "another agent of that name was made at the same moment: try again",
			      "name");
	else if (o->error || o->status != STORE_OK)
		unavailable(t->c);
	else
		respond_with_secret(t->c, 201, (const char *)o->json, o->json_len, "token", t->made.text);
	apikey_made_clear(&t->made);
	free(t);
}

static void token_create(struct route_call *c)
{
	static const char *const allowed[] = {"name", "ttl_seconds"};
	struct token_call *t;
	json_t *b = action_body(c, allowed, 2), *ttl;
	const char *name, *p[11];
	char ttl_text[24];
	size_t n = 0;

	if (!b)
		return;
	name = member(c, b, "name", true, 255);
	ttl = json_object_get(b, "ttl_seconds");
	if (BAD(name)) {
		json_decref(b);
		return;
	}
	if (!action_text_ok(name)) {
		route_problem(c, 400, "Bad Request", "name: printable text", "name");
		json_decref(b);
		return;
	}
	if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < TOKEN_TTL_MIN_S ||
		    json_integer_value(ttl) > TOKEN_TTL_MAX_S)) {
		route_problem(c, 400, "Bad Request", "ttl_seconds: 60 to 2592000 (30 days)", "ttl_seconds");
		json_decref(b);
		return;
	}
	snprintf(ttl_text, sizeof ttl_text, "%lld", ttl ? (long long)json_integer_value(ttl) : (long long)TOKEN_TTL_DEFAULT_S);
	if (!(t = calloc(1, sizeof *t)) || !apikey_make(&t->made)) {
		free(t);
		json_decref(b);
		route_problem(c, 503, "Service Unavailable", "no randomness or memory for a token", NULL);
		return;
	}
	t->c = c;
	p[n++] = name;
	p[n++] = ttl_text;
	p[n++] = t->made.salt_hex;
	p[n++] = t->made.hash_hex;
	p[n++] = t->made.key.prefix;
	n = route_audit_params(c, p, n);
	if (store_call(c->w, "agent_tokens.create", p, n, on_token_made, t) != 0) {
		apikey_made_clear(&t->made);
		free(t);
		unavailable(c);
	}
	json_decref(b);
}

/* A list of op with the request's paging: p[at] page, p[at+1] per_page. */
static void paged_list(struct route_call *c, const char *op, const char **p, size_t at, size_t n)
{
	struct query q;
	const char *why, *field;
	char page[24], per_page[24];
	long pg, pp;

	if (query_paging(&q, c->req.query, &pg, &pp, &why, &field) != 0) {
		route_problem(c, 400, "Bad Request", why, field);
		return;
	}
	snprintf(page, sizeof page, "%ld", pg);
	snprintf(per_page, sizeof per_page, "%ld", pp);
	p[at] = page;
	p[at + 1] = per_page;
	ask(c, op, p, n, on_passthrough, c);
}

static void token_list(struct route_call *c)
{
	const char *p[3] = {NULL, NULL, NULL};

	paged_list(c, "agent_tokens.list", p, 0, 3);
}

/* ---- enrolment and identity renewal ---- */

struct enrolment {
	struct route_call *c;
	bool renewal;
	struct apikey token;
	char token_id[129], agent_id[129], name[256];
	uint8_t *csr;
	size_t csr_len;
	char serial[65], sha256[65], not_before[24], not_after[24];
	char *cert_pem, *ca_pem;
};

static void enrolment_free(struct enrolment *e)
{
	apikey_clear(&e->token);
	free(e->csr);
	free(e->cert_pem);
	free(e->ca_pem);
	free(e);
}

/* A token refused: one answer for every reason, so a caller learns
 * nothing about which tokens exist; the reason goes to the audit trail
 * and the log, and the failure counts against the address's limit. */
static void refuse_token(struct enrolment *e, const char *reason)
{
	struct route_call *c = e->c;
	char details[128];

	snprintf(details, sizeof details, "{\"reason\": \"%s\", \"token_prefix\": \"%s\"}", reason,
		 e->token.prefix[0] ? e->token.prefix : "-");
	audit_record(c->w, &(struct audit_entry){
		.actor = e->agent_id[0] ? e->agent_id : "unknown",
		.actor_type = "Agent",
		.actor_role = "agent",
		.action = "agents.enroll",
		.resource_type = "agent_tokens",
		.resource_id = e->token_id[0] ? e->token_id : NULL,
		.request_id = c->req.reqid,
		.source_address = c->req.client,
		.outcome = "failure",
		.body_sha256 = c->body_sha256,
		.details = details,
	});
	auth_address_failed(c->req.client);
	log_event(LOG_INFO, c->req.reqid, NULL, "enrolment refused: token %s %s", e->token.prefix[0] ? e->token.prefix : "-",
		  reason);
	route_problem(c, 401, "Unauthorized", TOKEN_REFUSED, "token");
	enrolment_free(e);
}

static void give_up(struct enrolment *e, int status, const char *title, const char *detail, const char *field)
{
	route_problem(e->c, status, title, detail, field);
	enrolment_free(e);
}

/* Unix seconds (decimal text) as RFC 3339 UTC */
static void rfc3339(const char *unix_text, char out[32])
{
	time_t t = (time_t)strtoll(unix_text, NULL, 10);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		out[0] = '\0';
}

static void answer_identity(struct enrolment *e)
{
	char nb[32], na[32], *text;
	json_t *j;

	rfc3339(e->not_before, nb);
	rfc3339(e->not_after, na);
	j = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:s}", "agent_id", e->agent_id, "name",
		      e->name[0] ? e->name : NULL, "certificate_pem", e->cert_pem, "ca_pem", e->ca_pem, "serial",
		      e->serial, "not_before", nb, "not_after", na);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (text)
		route_respond(e->c, 201, "application/json", text, strlen(text));
	else
		route_problem(e->c, 503, "Service Unavailable", "out of memory", NULL);
	free(text);
	json_decref(j);
	enrolment_free(e);
}

static void on_recorded(const struct store_outcome *o, void *arg)
{
	struct enrolment *e = arg;
	json_t *j;
	const char *state = state_of(o, &j), *name = json_string_value(json_object_get(j, "name"));

	if (!state) {
		json_decref(j);
		give_up(e, 503, "Service Unavailable",
			"the identity was signed but could not be recorded: it authenticates nothing; "
			"enrol again with a new token",
			NULL);
		return;
	}
	if (name)
		snprintf(e->name, sizeof e->name, "%s", name);
	if (strcmp(state, "done") == 0)
		answer_identity(e);
	else if (e->renewal)
		give_up(e, 401, "Unauthorized", "the identity was revoked or the agent retired meanwhile", NULL);
	else
		refuse_token(e, "redeemed meanwhile");
	json_decref(j); /* state lives in j */
}

static void on_identity_signed(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct enrolment *e = arg;
	const char *p[12];
	size_t n = 0;

	if (fd >= 0)
		close(fd);
	if (status == 0 && m && m->type == IPC_T_ERROR && m->u.error.code == EINVAL) {
		char detail[360];

		snprintf(detail, sizeof detail, "csr_pem: %.300s", m->u.error.message);
		give_up(e, 400, "Bad Request", detail, "csr_pem");
		return;
	}
	if (status != 0 || !m || m->type != IPC_T_AGENT_ID_SIGNED) {
		give_up(e, 503, "Service Unavailable",
			status == 0 && m && m->type == IPC_T_ERROR && m->u.error.code == EIO
				? "the signer cannot write its ledger"
				: "the signer is unavailable",
			NULL);
		return;
	}
	snprintf(e->serial, sizeof e->serial, "%s", m->u.agent_id_signed.serial);
	snprintf(e->sha256, sizeof e->sha256, "%s", m->u.agent_id_signed.sha256);
	snprintf(e->not_before, sizeof e->not_before, "%llu", (unsigned long long)m->u.agent_id_signed.not_before);
	snprintf(e->not_after, sizeof e->not_after, "%llu", (unsigned long long)m->u.agent_id_signed.not_after);
	e->cert_pem = issuance_der_to_pem(m->u.agent_id_signed.der.ptr, m->u.agent_id_signed.der.len, false);
	e->ca_pem = strndup((const char *)m->u.agent_id_signed.ca_pem.ptr, m->u.agent_id_signed.ca_pem.len);
	if (!e->cert_pem || !e->ca_pem) {
		give_up(e, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	if (e->renewal) {
		p[n++] = e->agent_id;
		p[n++] = e->c->who.identity_id;
	} else {
		p[n++] = e->token_id;
	}
	p[n++] = e->sha256;
	p[n++] = e->serial;
	p[n++] = e->not_before;
	p[n++] = e->not_after;
	if (e->renewal) {
		n = route_audit_params(e->c, p, n);
	} else {
		/* the new agent speaks for itself in the audit trail */
		p[n++] = e->agent_id;
		p[n++] = "Agent";
		p[n++] = "agent";
		p[n++] = e->c->req.reqid;
		p[n++] = e->c->req.client;
		p[n++] = e->c->body_sha256;
	}
	if (store_call(e->c->w, e->renewal ? "agents.identity_renew" : "agents.enroll", p, n, on_recorded, e) != 0)
		give_up(e, 503, "Service Unavailable",
			"the identity was signed but the database is unavailable: it authenticates nothing; "
			"try again",
			NULL);
}

static void sign_identity(struct enrolment *e)
{
	struct ipc_msg m = {.type = IPC_T_AGENT_ID_SIGN};
	struct ipc_channel *ch = worker_peer(e->c->w, IPC_ROLE_SIGNER);

	m.u.agent_id_sign.csr.ptr = e->csr;
	m.u.agent_id_sign.csr.len = (uint32_t)e->csr_len;
	m.u.agent_id_sign.agent_id = e->agent_id;
	m.u.agent_id_sign.validity_seconds = 0;
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(e->c->w), on_identity_signed, e) != 0)
		give_up(e, 503, "Service Unavailable", "the signer is unavailable", NULL);
}

static void on_token(const struct store_outcome *o, void *arg)
{
	struct enrolment *e = arg;
	json_t *row;
	uint8_t salt[16], hash[32];
	const char *id, *agent, *name, *salt_hex, *refused;

	if (o->error) {
		give_up(e, 503, "Service Unavailable", "the database is unavailable", NULL);
		return;
	}
	if (o->status == STORE_NO_ROW || !(row = json_loadb((const char *)o->json, o->json_len, 0, NULL))) {
		refuse_token(e, "unknown");
		return;
	}
	id = json_string_value(json_object_get(row, "id"));
	agent = json_string_value(json_object_get(row, "agent_id"));
	name = json_string_value(json_object_get(row, "name"));
	salt_hex = json_string_value(json_object_get(row, "salt"));
	refused = json_string_value(json_object_get(row, "refused"));
	if (!id || !agent || !name || !salt_hex || strlen(salt_hex) != 2 * sizeof salt ||
	    hex_decode(salt_hex, salt, sizeof salt) ||
	    hex_decode(json_string_value(json_object_get(row, "token_hash")), hash, sizeof hash)) {
		json_decref(row);
		give_up(e, 503, "Service Unavailable", "malformed token record", NULL);
		return;
	}
	snprintf(e->token_id, sizeof e->token_id, "%s", id);
	snprintf(e->agent_id, sizeof e->agent_id, "%s", agent);
	snprintf(e->name, sizeof e->name, "%s", name);
	/* the secret first, so that answers do not tell valid prefixes apart */
	if (!apikey_matches(salt, sizeof salt, &e->token, hash)) {
		e->token_id[0] = e->agent_id[0] = '\0';
		refuse_token(e, "wrong secret");
	} else if (refused) {
		refuse_token(e, strcmp(refused, "used") == 0 ? "used" : strcmp(refused, "expired") == 0 ? "expired" : "agent retired");
	} else {
		apikey_clear(&e->token);
		sign_identity(e);
	}
	json_decref(row); /* refused lives in row */
}

/* The CSR member of the body as DER into e; false after answering. */
static bool take_csr(struct enrolment *e, json_t *b)
{
	const char *pem = member(e->c, b, "csr_pem", true, 16384), *why;
	int rc;

	if (BAD(pem))
		return false;
	rc = issuance_csr_der(pem, &e->csr, &e->csr_len, &why);
	if (rc == -1)
		route_problem(e->c, 400, "Bad Request", why, "csr_pem");
	else if (rc != 0)
		route_problem(e->c, 503, "Service Unavailable", "out of memory", NULL);
	return rc == 0;
}

/* An enrolment or renewal of c with the CSR of body b; NULL after answering. */
static struct enrolment *enrolment_new(struct route_call *c, json_t *b)
{
	struct enrolment *e = calloc(1, sizeof *e);

	if (!e) {
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return NULL;
	}
	e->c = c;
	if (!take_csr(e, b)) {
		enrolment_free(e);
		return NULL;
	}
	return e;
}

static void enroll(struct route_call *c)
{
	static const char *const allowed[] = {"token", "csr_pem"};
	struct enrolment *e;
	json_t *b;
	const char *token;
	bool parsed;

	if (auth_address_limited(c->req.client)) {
		route_problem(c, 429, "Too Many Requests", "too many failed authentications", NULL);
		return;
	}
	if (!(b = action_body(c, allowed, 2)))
		return;
	token = member(c, b, "token", true, APIKEY_TEXT_LEN + 64);
	if (BAD(token) || !(e = enrolment_new(c, b))) {
		json_decref(b);
		return;
	}
	parsed = apikey_parse(token, strlen(token), &e->token);
	/* jansson's copy of the secret goes with the body, wiped first (the
	 * request's own copy is wiped by the router) */
	OPENSSL_cleanse((char *)token, strlen(token));
	json_decref(b);
	if (!parsed) {
		refuse_token(e, "malformed");
		return;
	}
	{
		const char *p[1] = {e->token.prefix};

		if (store_call(c->w, "agent_tokens.lookup", p, 1, on_token, e) != 0)
			give_up(e, 503, "Service Unavailable", "the database is unavailable", NULL);
	}
}

static void identity_renew(struct route_call *c)
{
	static const char *const allowed[] = {"csr_pem"};
	struct enrolment *e;
	json_t *b;

	if (!(b = action_body(c, allowed, 1)))
		return;
	e = enrolment_new(c, b);
	json_decref(b);
	if (!e)
		return;
	e->renewal = true;
	snprintf(e->agent_id, sizeof e->agent_id, "%s", c->who.agent_id);
	sign_identity(e);
}

static void identities_list(struct route_call *c)
{
	const char *p[3] = {route_param(c, "id")};

	if (id_param_ok(c, "id"))
		paged_list(c, "agent_identities.list", p, 1, 3);
}

static void on_identity_revoked(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	json_t *j;
	const char *state = state_of(o, &j);

	if (!state)
		unavailable(c);
	else if (strcmp(state, "missing") == 0)
		route_problem(c, 404, "Not Found", "no such identity of this agent", NULL);
	else if (strcmp(state, "already") == 0)
		route_problem(c, 409, "Conflict", "the identity is revoked already", NULL);
	else
		route_respond(c, 200, "application/json", "{\"status\":\"revoked\"}", 20);
	json_decref(j);
}

static void identity_revoke(struct route_call *c)
{
	static const char *const allowed[] = {"reason"};
	const char *p[9] = {route_param(c, "id"), route_param(c, "identity_id")}, *reason;
	json_t *b;

	if (!id_param_ok(c, "id") || !id_param_ok(c, "identity_id") || !(b = action_body(c, allowed, 1)))
		return;
	reason = member(c, b, "reason", false, 255);
	if (!BAD(reason) && reason && !action_text_ok(reason)) {
		route_problem(c, 400, "Bad Request", "reason: printable text", "reason");
		reason = (const char *)-1;
	}
	if (!BAD(reason)) {
		p[2] = reason ? reason : "revoked by an operator";
		ask(c, "agent_identities.revoke", p, route_audit_params(c, p, 3), on_identity_revoked, c);
	}
	json_decref(b);
}

/* ---- work ---- */

static void work(struct route_call *c)
{
	const char *p[1] = {c->who.agent_id};

	ask(c, "agents.work", p, 1, on_passthrough, c);
}

/* A certificate version's chain split into the leaf and what is above it. */
static json_t *certificate_answer(json_t *v)
{
	const char *chain = json_string_value(json_object_get(v, "pem_chain"));
	const char *end = chain ? strstr(chain, "-----END CERTIFICATE-----") : NULL;
	size_t leaf_len;

	if (!end)
		return NULL;
	end += strlen("-----END CERTIFICATE-----");
	if (*end == '\n')
		end++;
	leaf_len = (size_t)(end - chain);
	return json_pack("{s:O, s:O, s:s%, s:s, s:O}", "certificate_id", json_object_get(v, "certificate_id"),
			 "serial", json_object_get(v, "serial"), "certificate_pem", chain, leaf_len, "chain_pem",
			 end, "not_after", json_object_get(v, "not_after"));
}

static void on_pickup(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	json_t *v;

	if (o->error) {
		unavailable(c);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		route_problem(c, 404, "Not Found", "no certificate of this agent's jobs or targets by that id", NULL);
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	route_respond_json(c, 200, certificate_answer(v));
	json_decref(v);
}

static void pickup(struct route_call *c)
{
	const char *p[2] = {c->who.agent_id, route_param(c, "cert_id")};

	if (id_param_ok(c, "cert_id"))
		ask(c, "agents.certificate", p, 2, on_pickup, c);
}

struct csr_call {
	struct route_call *c;
	char job_id[129], certificate_id[129];
	char *csr_pem;
	/* the problem to answer once the job is back to AwaitingCSR */
	int failure_status;
	char failure_title[48], failure_field[32];
	char *failure;
};

static void csr_free(struct csr_call *k)
{
	free(k->csr_pem);
	free(k->failure);
	free(k);
}

static void on_issued_pickup(const struct store_outcome *o, void *arg)
{
	struct csr_call *k = arg;
	json_t *v, *a;

	if (o->error || o->status == STORE_NO_ROW) {
		/* signed and stored: the agent picks it up later */
		route_problem(k->c, 503, "Service Unavailable",
			      "the certificate was issued but cannot be read back now: fetch it from "
			      "/api/v1/agents/{id}/certificates/{cert_id}",
			      NULL);
		csr_free(k);
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	if ((a = certificate_answer(v))) {
		json_object_set_new(a, "status", json_string("issued"));
		json_object_set_new(a, "job_id", json_string(k->job_id));
	}
	route_respond_json(k->c, 202, a);
	json_decref(v);
	csr_free(k);
}

static void on_csr_failed(const struct store_outcome *o, void *arg)
{
	struct csr_call *k = arg;
	json_t *j = o->error ? NULL : json_loadb((const char *)o->json, o->json_len, 0, NULL);
	const char *status = json_string_value(json_object_get(j, "status"));
	char detail[700];

	snprintf(detail, sizeof detail, "%s (the job is %s)", k->failure ? k->failure : "the CSR was not signed",
		 status ? status : "unchanged");
	route_problem(k->c, k->failure_status, k->failure_title, detail, k->failure_field[0] ? k->failure_field : NULL);
	json_decref(j);
	csr_free(k);
}

static void on_csr_signed(void *arg, int status, const char *title, const char *detail, const char *field,
			  const char *body, size_t len)
{
	struct csr_call *k = arg;
	const char *p[3] = {k->c->who.agent_id, k->job_id, NULL};

	(void)body;
	(void)len;
	if (status == 201) {
		p[1] = k->certificate_id;
		ask(k->c, "agents.certificate", p, 2, on_issued_pickup, k);
		return;
	}
	if (status == 202) {
		/* an ACME issuer: the scheduler orders it; the agent fetches the
		 * certificate once its job is done */
		route_respond_json(k->c, 202, json_pack("{s:s, s:s, s:s}", "status", "ordered", "job_id", k->job_id,
							"certificate_id", k->certificate_id));
		csr_free(k);
		return;
	}
	/* the job goes back to AwaitingCSR (or Failed at its last attempt);
	 * the answer is the signing's own */
	k->failure_status = status;
	snprintf(k->failure_title, sizeof k->failure_title, "%s", title ? title : "Service Unavailable");
	snprintf(k->failure_field, sizeof k->failure_field, "%s", field ? field : "");
	k->failure = strdup(detail ? detail : "the CSR was not signed");
	p[2] = k->failure ? k->failure : "the CSR was not signed";
	if (store_call(k->c->w, "agents.csr_failed", p, 3, on_csr_failed, k) != 0)
		on_csr_failed(&(struct store_outcome){.error = ENOTCONN}, k);
}

static void on_csr_taken(const struct store_outcome *o, void *arg)
{
	struct csr_call *k = arg;
	json_t *j;
	const char *state = state_of(o, &j);
	char detail[420];

	if (!state) {
		unavailable(k->c);
	} else if (strcmp(state, "done") == 0) {
		json_decref(j);
		issuance_renew_job(k->c, k->certificate_id, k->csr_pem, k->job_id, on_csr_signed, k);
		return;
	} else if (strcmp(state, "taken") == 0) {
		snprintf(detail, sizeof detail,
			 "the job is %s, not AwaitingCSR: a certificate signed for it is at "
			 "/api/v1/agents/%s/certificates/%s",
			 json_string_value(json_object_get(j, "status")), k->c->who.agent_id, k->certificate_id);
		route_problem(k->c, 409, "Conflict", detail, "job_id");
	} else {
		route_problem(k->c, 404, "Not Found", "no such job of this agent for that certificate", "job_id");
	}
	json_decref(j);
	csr_free(k);
}

static void csr(struct route_call *c)
{
	static const char *const allowed[] = {"job_id", "certificate_id", "csr_pem"};
	json_t *b = action_body(c, allowed, 3);
	const char *job, *cert, *pem, *p[3];
	struct csr_call *k;

	if (!b)
		return;
	job = member(c, b, "job_id", true, 128);
	cert = BAD(job) ? job : member(c, b, "certificate_id", true, 128);
	pem = BAD(cert) ? cert : member(c, b, "csr_pem", true, 16384);
	if (BAD(pem)) {
		json_decref(b);
		return;
	}
	if (!valid_resource_id(job, 128) || !valid_resource_id(cert, 128)) {
		route_problem(c, 404, "Not Found", "no such job of this agent for that certificate", "job_id");
		json_decref(b);
		return;
	}
	{
		/* a CSR that cannot be read costs the job no attempt */
		uint8_t *der;
		size_t der_len;
		const char *why;
		int rc = issuance_csr_der(pem, &der, &der_len, &why);

		free(der);
		if (rc != 0) {
			route_problem(c, rc == -1 ? 400 : 503, rc == -1 ? "Bad Request" : "Service Unavailable",
				      rc == -1 ? why : "out of memory", rc == -1 ? "csr_pem" : NULL);
			json_decref(b);
			return;
		}
	}
	if (!(k = calloc(1, sizeof *k)) || !(k->csr_pem = strdup(pem))) {
		free(k);
		json_decref(b);
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	k->c = c;
	snprintf(k->job_id, sizeof k->job_id, "%s", job);
	snprintf(k->certificate_id, sizeof k->certificate_id, "%s", cert);
	json_decref(b);
	p[0] = c->who.agent_id;
	p[1] = k->job_id;
	p[2] = k->certificate_id;
	if (store_call(c->w, "agents.csr_take", p, 3, on_csr_taken, k) != 0) {
		csr_free(k);
		unavailable(c);
	}
}

static void on_job_status(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	json_t *j;
	const char *state = state_of(o, &j);
	char detail[128];

	if (!state) {
		unavailable(c);
	} else if (strcmp(state, "missing") == 0) {
		route_problem(c, 404, "Not Found", "no such job of this agent", NULL);
	} else if (strcmp(state, "closed") == 0) {
		snprintf(detail, sizeof detail, "the job is %s already", json_string_value(json_object_get(j, "status")));
		route_problem(c, 409, "Conflict", detail, "status");
	} else {
		route_respond(c, 200, "application/json", "{\"status\":\"ok\"}", 15);
	}
	json_decref(j);
}

/* Text an agent reports (a command's output): valid UTF-8, newlines and
 * tabs allowed, no other control character. */
static bool report_text_ok(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') || *s == 0x7f)
			return false;
	return j != NULL;
}

static void job_status(struct route_call *c)
{
	static const char *const allowed[] = {"status", "error", "serial"};
	json_t *b;
	const char *status, *error, *serial, *p[11] = {c->who.agent_id, route_param(c, "job_id")};

	if (!id_param_ok(c, "job_id") || !(b = action_body(c, allowed, 3)))
		return;
	status = member(c, b, "status", true, 16);
	error = BAD(status) ? status : member(c, b, "error", false, JOB_ERROR_MAX);
	serial = BAD(error) ? error : member(c, b, "serial", false, 64);
	if (BAD(serial)) {
		json_decref(b);
		return;
	}
	if (strcmp(status, "Running") != 0 && strcmp(status, "Completed") != 0 && strcmp(status, "Failed") != 0)
		route_problem(c, 400, "Bad Request", "status: Running, Completed or Failed", "status");
	else if (error && !report_text_ok(error))
		route_problem(c, 400, "Bad Request", "error: UTF-8 text without control characters but newlines and tabs",
			      "error");
	else if (serial && strspn(serial, "0123456789abcdef") != strlen(serial))
		route_problem(c, 400, "Bad Request", "serial: lower-case hexadecimal", "serial");
	else {
		p[2] = status;
		p[3] = error;
		p[4] = serial;
		ask(c, "agents.job_status", p, route_audit_params(c, p, 5), on_job_status, c);
	}
	json_decref(b);
}

static void on_challenge(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	json_t *j;
	const char *state = state_of(o, &j);

	if (!state)
		unavailable(c);
	else if (strcmp(state, "done") == 0)
		route_respond(c, 200, "application/json", "{\"status\":\"ok\"}", 15);
	else
		route_problem(c, 404, "Not Found", "no live HTTP-01 challenge of this agent by that token", NULL);
	json_decref(j);
}

/* The agent's word on an HTTP-01 challenge it was to write into a target's
 * webroot: ready, or failed with why (docs/acme-client.md) */
static void challenge(struct route_call *c)
{
	static const char *const allowed[] = {"status", "error"};
	const char *token = route_param(c, "token"), *status, *error, *p[4];
	size_t n = token ? strlen(token) : 0;
	json_t *b;

	if (n == 0 || n > 128 ||
	    strspn(token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n) {
		route_problem(c, 404, "Not Found", "no live HTTP-01 challenge of this agent by that token", NULL);
		return;
	}
	if (!(b = action_body(c, allowed, 2)))
		return;
	status = member(c, b, "status", true, 16);
	error = BAD(status) ? status : member(c, b, "error", false, 1024);
	if (BAD(error)) {
		json_decref(b);
		return;
	}
	if (strcmp(status, "ready") != 0 && strcmp(status, "failed") != 0)
		route_problem(c, 400, "Bad Request", "status: ready or failed", "status");
	else if (error && !report_text_ok(error))
		route_problem(c, 400, "Bad Request", "error: UTF-8 text without control characters but newlines and tabs",
			      "error");
	else {
		p[0] = c->who.agent_id;
		p[1] = token;
		p[2] = status;
		p[3] = error ? error : (strcmp(status, "failed") == 0 ? "the agent gave no reason" : NULL);
		ask(c, "agents.challenge", p, 4, on_challenge, c);
	}
	json_decref(b);
}

static const struct route agent_routes[] = {
	{"POST", "/api/v1/agent-tokens", ROLES_MANAGE, 0, token_create, NULL},
	{"GET", "/api/v1/agent-tokens", ROLES_MANAGE, 0, token_list, NULL},
	{"POST", "/api/v1/agents/enroll", ROLES_PUBLIC, 0, enroll, NULL},
	{"GET", "/api/v1/agents/{id}/identities", ROLES_READ, 0, identities_list, NULL},
	{"POST", "/api/v1/agents/{id}/identities/{identity_id}/revoke", ROLES_MANAGE, 0, identity_revoke, NULL},
	{"POST", "/api/v1/agents/{id}/identity", ROLE_AGENT, ROUTE_OWN_AGENT, identity_renew, NULL},
	{"GET", "/api/v1/agents/{id}/work", ROLE_AGENT, ROUTE_OWN_AGENT, work, NULL},
	{"POST", "/api/v1/agents/{id}/csr", ROLE_AGENT, ROUTE_OWN_AGENT, csr, NULL},
	{"GET", "/api/v1/agents/{id}/certificates/{cert_id}", ROLE_AGENT, ROUTE_OWN_AGENT, pickup, NULL},
	{"POST", "/api/v1/agents/{id}/jobs/{job_id}/status", ROLE_AGENT, ROUTE_OWN_AGENT, job_status, NULL},
	{"POST", "/api/v1/agents/{id}/challenges/{token}", ROLE_AGENT, ROUTE_OWN_AGENT, challenge, NULL},
};

void agents_routes_init(void)
{
	routes_add(agent_routes, sizeof agent_routes / sizeof agent_routes[0]);
}

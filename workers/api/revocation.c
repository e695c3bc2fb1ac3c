/*
 * The CA's public revocation endpoints (docs/pki.md, "Revocation"), no API
 * key needed, also on the plain-HTTP listener:
 *
 *   GET  /.well-known/pki/crl/{issuer_id}              the CRL (DER)
 *   GET  /.well-known/pki/ocsp/{issuer_id}/{request}   OCSP, RFC 6960 A.1
 *   POST /.well-known/pki/ocsp/{issuer_id}             OCSP (application/ocsp-request)
 *
 * CRLs are signed ahead of time by the scheduler and kept in the store; the
 * api keeps the bytes of the ones it served (by issuer, number and SHA-256),
 * so a CRL crosses the store once per process, and concurrent requests for
 * one it does not have yet share one fetch.
 *
 * OCSP: the api parses the request (lib/ocsp.h), asks the store for the
 * serial's status and the signer for the signed response. Responses to
 * requests without a nonce are cached for half their validity. Every
 * revocation moves a number (ocsp.version) the api polls; when it moves
 * the cache is emptied, and while the number cannot be read for
 * OCSP_CONFIRM_MS no cached response is used.
 */
#include "revocation.h"

#include <jansson.h>
#include <openssl/base64.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "ocsp.h"
#include "routes.h"
#include "store_client.h"
#include "util.h"
#include "validate.h"

#define CRL_CACHE_SLOTS 16
#define CRL_CACHE_BYTES (256u << 20)
#define CRL_MAX_BYTES (256u << 20)
#define CRL_PART_BYTES 45000
#define CRL_MAX_AGE_S 300

#define OCSP_SLOTS 16384
#define OCSP_BUCKETS 32768 /* power of two */
#define OCSP_POLL_MS 250
#define OCSP_CONFIRM_MS 2000
#define OCSP_RESPONSE_MAX 8192

static struct worker *api_w;

/* Responses signed afresh per client address and second (api.ocsp_signed_per_client):
 * each costs a signature and a ledger line, so one client cannot make the
 * ledger grow without bound. A fixed table: many addresses share slots and
 * evict one another, never grow memory. */
#define SIGN_BUDGET_SLOTS 1024
static struct {
	char client[64];
	uint64_t window_ms;
	unsigned count;
} sign_budget[SIGN_BUDGET_SLOTS];
static unsigned signed_per_client = 50;

static bool sign_allowed(const char *client)
{
	uint64_t now = now_ms();
	unsigned i = str_hash32(client) % SIGN_BUDGET_SLOTS;

	if (!signed_per_client)
		return true;
	if (strcmp(sign_budget[i].client, client) != 0 || now - sign_budget[i].window_ms >= 1000) {
		snprintf(sign_budget[i].client, sizeof sign_budget[i].client, "%s", client);
		sign_budget[i].window_ms = now;
		sign_budget[i].count = 0;
	}
	return ++sign_budget[i].count <= signed_per_client;
}

void revocation_configure(const struct cfg *section)
{
	signed_per_client = (unsigned)cfg_int(section, "api", "ocsp_signed_per_client");
}

static void count(const char *name, const char *labels)
{
	metrics_add(worker_metrics(api_w), name, labels, 1);
}

/* ==== CRLs ==== */

struct crl_waiter {
	struct route_call *c;
	struct crl_waiter *next;
};

struct crl_slot {
	char issuer[65];
	uint64_t number;
	char sha256[65];
	int64_t next_update;
	uint8_t *der; /* complete when fetched == true */
	size_t len;
	bool fetched, fetching;
	size_t part, parts, got;
	struct crl_waiter *waiters; /* while fetching */
	uint64_t used_ms;
};

static struct crl_slot crl_cache[CRL_CACHE_SLOTS];

struct crl_meta {
	uint64_t number;
	char sha256[65];
	int64_t next_update;
	size_t size, parts;
};

static void crl_headers(const struct crl_slot *s, char *etag, size_t elen, char *cc, size_t clen,
			struct api_header h[2])
{
	int64_t left = s->next_update - (int64_t)time(NULL);

	snprintf(etag, elen, "\"%llu-%.16s\"", (unsigned long long)s->number, s->sha256);
	snprintf(cc, clen, "public, max-age=%lld, no-transform",
		 (long long)(left < 0 ? 0 : left < CRL_MAX_AGE_S ? left : CRL_MAX_AGE_S));
	h[0] = (struct api_header){"ETag", etag};
	h[1] = (struct api_header){"Cache-Control", cc};
}

/* If-None-Match: "*" or a list holding etag */
static bool etag_matches(const char *inm, const char *etag)
{
	if (!inm)
		return false;
	if (strcmp(inm, "*") == 0)
		return true;
	return strstr(inm, etag) != NULL;
}

static void crl_answer(struct route_call *c, const struct crl_slot *s, const char *inm)
{
	char etag[96], cc[80];
	struct api_header h[2];

	crl_headers(s, etag, sizeof etag, cc, sizeof cc, h);
	count("crl_requests_total", etag_matches(inm, etag) ? "result=\"not_modified\"" : "result=\"ok\"");
	if (etag_matches(inm, etag))
		route_respond_headers(c, 304, "application/pkix-crl", h, 2, "", 0);
	else
		route_respond_headers(c, 200, "application/pkix-crl", h, 2, (const char *)s->der, s->len);
}

static void crl_slot_drop(struct crl_slot *s)
{
	free(s->der);
	memset(s, 0, sizeof *s);
}

static void crl_fail_waiters(struct crl_slot *s, const char *why)
{
	struct crl_waiter *w = s->waiters, *next;

	log_warn("CRL %llu of issuer %s not served: %s", (unsigned long long)s->number, s->issuer, why);
	for (; w; w = next) {
		next = w->next;
		route_problem(w->c, 503, "Service Unavailable", "the CRL cannot be read now", NULL);
		free(w);
	}
	s->waiters = NULL;
	crl_slot_drop(s);
}

static size_t crl_cache_bytes(void)
{
	size_t n = 0;

	for (size_t i = 0; i < CRL_CACHE_SLOTS; i++)
		n += crl_cache[i].der ? crl_cache[i].len : 0;
	return n;
}

/* a slot for a CRL of len bytes: the issuer's own, else a free one, else
 * the least recently used one not being fetched; older CRLs go until the
 * cache stays under CRL_CACHE_BYTES */
static struct crl_slot *crl_slot_for(const char *issuer, size_t len)
{
	struct crl_slot *s = NULL;

	for (size_t i = 0; i < CRL_CACHE_SLOTS && !s; i++)
		if (strcmp(crl_cache[i].issuer, issuer) == 0 && !crl_cache[i].fetching)
			s = &crl_cache[i];
	if (s)
		crl_slot_drop(s);
	while (crl_cache_bytes() + len > CRL_CACHE_BYTES || !s) {
		struct crl_slot *lru = NULL;

		for (size_t i = 0; i < CRL_CACHE_SLOTS; i++) {
			struct crl_slot *x = &crl_cache[i];

			if (x == s || x->fetching)
				continue;
			if (!x->issuer[0] && !s) {
				lru = x;
				break;
			}
			if (x->issuer[0] && (!lru || x->used_ms < lru->used_ms))
				lru = x;
		}
		if (!lru)
			return s;
		crl_slot_drop(lru);
		if (!s)
			s = lru;
	}
	return s;
}

static void crl_fetch_part(struct crl_slot *s);

static void on_crl_part(const struct store_outcome *o, void *arg)
{
	struct crl_slot *s = arg;
	json_t *v;
	const char *b64;
	size_t n;

	if (o->error || o->status == STORE_NO_ROW) {
		crl_fail_waiters(s, o->error ? o->message : "a part is missing (a newer CRL replaced it)");
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, JSON_DECODE_ANY, NULL);
	b64 = json_string_value(v);
	if (!b64 || !EVP_DecodedLength(&n, strlen(b64)) || s->got + n > s->len + 2 ||
	    /* the buffer has 2 bytes of room: base64's length estimate counts padding */
	    !EVP_DecodeBase64(s->der + s->got, &n, s->len + 2 - s->got, (const uint8_t *)b64, strlen(b64))) {
		json_decref(v);
		crl_fail_waiters(s, "a part does not decode");
		return;
	}
	json_decref(v);
	s->got += n;
	if (++s->part < s->parts) {
		crl_fetch_part(s);
		return;
	}
	{
		uint8_t md[SHA256_DIGEST_LENGTH];
		char hex[65];
		struct crl_waiter *w = s->waiters, *next;

		SHA256(s->der, s->got, md);
		hex_encode(md, sizeof md, hex);
		if (s->got != s->len || strcmp(hex, s->sha256) != 0) {
			crl_fail_waiters(s, "the parts do not add up to the CRL's SHA-256");
			return;
		}
		s->fetched = true;
		s->fetching = false;
		s->waiters = NULL;
		s->used_ms = now_ms();
		for (; w; w = next) {
			next = w->next;
			crl_answer(w->c, s, w->c->req.if_none_match);
			free(w);
		}
	}
}

static void crl_fetch_part(struct crl_slot *s)
{
	char number[24], part[24];
	const char *p[3] = {s->issuer, number, part};

	snprintf(number, sizeof number, "%llu", (unsigned long long)s->number);
	snprintf(part, sizeof part, "%zu", s->part);
	if (store_call(api_w, "crl.part", p, 3, on_crl_part, s) != 0)
		crl_fail_waiters(s, "the store is unavailable");
}

static void on_crl_meta(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	const char *issuer = route_param(c, "issuer_id");
	struct crl_meta m = {0};
	struct crl_slot *s = NULL;
	struct crl_waiter *w;
	json_t *v;

	if (o->error) {
		route_problem(c, 503, "Service Unavailable", "the CRL cannot be read now", NULL);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		count("crl_requests_total", "result=\"missing\"");
		route_problem(c, 404, "Not Found", "no CRL for this issuer (only Local issuers have one)", NULL);
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	m.number = (uint64_t)json_integer_value(json_object_get(v, "crl_number"));
	m.next_update = (int64_t)json_integer_value(json_object_get(v, "next_update"));
	m.size = (size_t)json_integer_value(json_object_get(v, "der_size"));
	m.parts = (size_t)json_integer_value(json_object_get(v, "parts"));
	if (json_is_string(json_object_get(v, "der_sha256")))
		snprintf(m.sha256, sizeof m.sha256, "%s", json_string_value(json_object_get(v, "der_sha256")));
	json_decref(v);
	if (!m.number || !m.size || m.size > CRL_MAX_BYTES || m.parts != (m.size + CRL_PART_BYTES - 1) / CRL_PART_BYTES ||
	    strlen(m.sha256) != 64) {
		route_problem(c, 503, "Service Unavailable", "the stored CRL is not consistent", NULL);
		return;
	}
	for (size_t i = 0; i < CRL_CACHE_SLOTS; i++) {
		struct crl_slot *x = &crl_cache[i];

		if (strcmp(x->issuer, issuer) == 0 && x->number == m.number && strcmp(x->sha256, m.sha256) == 0)
			s = x;
	}
	if (s && s->fetched) {
		s->used_ms = now_ms();
		crl_answer(c, s, c->req.if_none_match);
		return;
	}
	if (!s) {
		/* not here yet: one fetch, which every request meanwhile waits for */
		s = crl_slot_for(issuer, m.size);
		if (!s || !(s->der = malloc(m.size + 2))) {
			route_problem(c, 503, "Service Unavailable", "no room for the CRL now", NULL);
			return;
		}
		snprintf(s->issuer, sizeof s->issuer, "%s", issuer);
		snprintf(s->sha256, sizeof s->sha256, "%s", m.sha256);
		s->number = m.number;
		s->next_update = m.next_update;
		s->len = m.size;
		s->parts = m.parts;
		s->fetching = true;
		count("crl_fetches_total", NULL);
		crl_fetch_part(s);
		if (!s->fetching && !s->fetched) {
			/* failed at once; the waiters list was empty */
			route_problem(c, 503, "Service Unavailable", "the CRL cannot be read now", NULL);
			return;
		}
	}
	if (!(w = calloc(1, sizeof *w))) {
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return;
	}
	w->c = c;
	w->next = s->waiters;
	s->waiters = w;
}

static void get_crl(struct route_call *c)
{
	const char *issuer = route_param(c, "issuer_id");
	const char *p[1] = {issuer};

	if (!issuer || !valid_resource_id(issuer, 64)) {
		route_problem(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (store_call(c->w, "crl.get", p, 1, on_crl_meta, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the store is unavailable", NULL);
}

/* ==== OCSP ==== */

struct ocsp_entry {
	uint8_t key[32]; /* SHA-256 of issuer_id, NUL, CertID DER */
	uint8_t *der;
	size_t len;
	uint64_t fresh_until_ms; /* half of the response's validity */
	int64_t next_update;
	bool used;
	unsigned next; /* bucket chain, index + 1 */
};

static struct {
	struct ocsp_entry slot[OCSP_SLOTS];
	unsigned bucket[OCSP_BUCKETS];
	unsigned oldest;
	int64_t version;
	bool version_known, polling;
	uint64_t confirmed_ms;
	uv_timer_t timer;
	bool timer_on;
} oc;

static unsigned *ocsp_bucket(const uint8_t key[32])
{
	uint32_t h;

	memcpy(&h, key, sizeof h);
	return &oc.bucket[h & (OCSP_BUCKETS - 1)];
}

static void ocsp_drop(struct ocsp_entry *e)
{
	unsigned idx = (unsigned)(e - oc.slot) + 1, *p = ocsp_bucket(e->key);

	while (*p && *p != idx)
		p = &oc.slot[*p - 1].next;
	if (*p)
		*p = e->next;
	free(e->der);
	memset(e, 0, sizeof *e);
}

static void ocsp_flush(void)
{
	for (size_t i = 0; i < OCSP_SLOTS; i++)
		free(oc.slot[i].der);
	memset(oc.slot, 0, sizeof oc.slot);
	memset(oc.bucket, 0, sizeof oc.bucket);
	oc.oldest = 0;
	count("ocsp_cache_flushes_total", NULL);
}

static bool ocsp_cache_usable(void)
{
	return oc.version_known && now_ms() - oc.confirmed_ms <= OCSP_CONFIRM_MS;
}

static struct ocsp_entry *ocsp_find(const uint8_t key[32])
{
	for (unsigned i = *ocsp_bucket(key); i; i = oc.slot[i - 1].next)
		if (memcmp(oc.slot[i - 1].key, key, 32) == 0)
			return &oc.slot[i - 1];
	return NULL;
}

static void ocsp_put(const uint8_t key[32], const uint8_t *der, size_t len, int64_t this_update,
		     int64_t next_update, int64_t version)
{
	struct ocsp_entry *e;
	unsigned *b;
	uint8_t *copy;
	int64_t half = (next_update - this_update) / 2;

	/* a status read before a revocation the api has heard of is not kept */
	if (!ocsp_cache_usable() || version < oc.version || half <= 0 || !(copy = malloc(len)))
		return;
	if ((e = ocsp_find(key)))
		ocsp_drop(e);
	e = &oc.slot[oc.oldest];
	oc.oldest = (oc.oldest + 1) % OCSP_SLOTS;
	if (e->used)
		ocsp_drop(e);
	memcpy(e->key, key, 32);
	memcpy(copy, der, len);
	e->der = copy;
	e->len = len;
	e->next_update = next_update;
	e->fresh_until_ms = now_ms() + (uint64_t)half * 1000;
	e->used = true;
	b = ocsp_bucket(key);
	e->next = *b;
	*b = (unsigned)(e - oc.slot) + 1;
}

static void on_ocsp_version(const struct store_outcome *o, void *arg)
{
	json_t *v;

	oc.polling = false;
	if (o->error)
		return; /* confirmed_ms ages: past OCSP_CONFIRM_MS the cache is not used */
	v = json_loadb((const char *)o->json, o->json_len, JSON_DECODE_ANY, NULL);
	if (json_is_integer(v)) {
		int64_t n = json_integer_value(v);

		if (oc.version_known && n != oc.version)
			ocsp_flush();
		oc.version = n;
		oc.version_known = true;
		oc.confirmed_ms = now_ms();
	}
	json_decref(v);
}

static void on_ocsp_tick(uv_timer_t *t)
{
	if (!oc.polling && store_call(api_w, "ocsp.version", NULL, 0, on_ocsp_version, NULL) == 0)
		oc.polling = true;
}

/* One OCSP exchange in flight. */
struct ocsp_call {
	struct route_call *c;
	uint8_t req[OCSP_REQUEST_MAX];
	size_t req_len;
	struct ocsp_request r; /* points into req */
	uint8_t key[32];
	int64_t version;
	bool get;
	char intermediate[65];
};

static void ocsp_send(struct route_call *c, const uint8_t *der, size_t len, int64_t next_update, bool get,
		      const char *result)
{
	char cc[96];
	struct api_header h[1] = {{"Cache-Control", cc}};
	int64_t left = next_update - (int64_t)time(NULL);

	count("ocsp_requests_total", result);
	/* RFC 5019 6.2: GET answers are cacheable up to nextUpdate */
	if (get && next_update && left > 0)
		snprintf(cc, sizeof cc, "max-age=%lld, public, no-transform, must-revalidate", (long long)left);
	else
		snprintf(cc, sizeof cc, "no-cache, no-store");
	route_respond_headers(c, 200, "application/ocsp-response", h, 1, (const char *)der, len);
}

static void ocsp_error(struct route_call *c, int status, const char *result)
{
	uint8_t out[16];
	size_t n = ocsp_error_response(status, out);

	ocsp_send(c, out, n, 0, false, result);
}

static void on_ocsp_signed(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct ocsp_call *oc_call = arg;
	struct route_call *c = oc_call->c;

	if (fd >= 0)
		close(fd);
	if (status == 0 && m && m->type == IPC_T_ERROR && m->u.error.code == EACCES) {
		ocsp_error(c, OCSP_RESP_UNAUTHORIZED, "result=\"unauthorized\"");
	} else if (status != 0 || !m || m->type != IPC_T_OCSP_SIGNED) {
		log_event(LOG_WARN, c->req.reqid, NULL, "OCSP response not signed: %s",
			  status == 0 && m && m->type == IPC_T_ERROR ? m->u.error.message : "the signer is unavailable");
		ocsp_error(c, OCSP_RESP_TRY_LATER, "result=\"try_later\"");
	} else {
		if (!oc_call->r.has_nonce)
			ocsp_put(oc_call->key, m->u.ocsp_signed.response.ptr, m->u.ocsp_signed.response.len,
				 (int64_t)m->u.ocsp_signed.this_update, (int64_t)m->u.ocsp_signed.next_update,
				 oc_call->version);
		ocsp_send(c, m->u.ocsp_signed.response.ptr, m->u.ocsp_signed.response.len,
			  (int64_t)m->u.ocsp_signed.next_update, oc_call->get, "result=\"signed\"");
	}
	free(oc_call);
}

static void on_ocsp_status(const struct store_outcome *o, void *arg)
{
	struct ocsp_call *q = arg;
	struct route_call *c = q->c;
	struct ipc_msg m = {.type = IPC_T_OCSP_SIGN};
	struct ipc_channel *ch;
	const char *st;
	json_t *v;

	if (o->error) {
		free(q);
		ocsp_error(c, OCSP_RESP_TRY_LATER, "result=\"try_later\"");
		return;
	}
	if (o->status == STORE_NO_ROW) {
		/* not an issuer whose CA this server is */
		free(q);
		ocsp_error(c, OCSP_RESP_UNAUTHORIZED, "result=\"unauthorized\"");
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	st = json_string_value(json_object_get(v, "status"));
	q->version = (int64_t)json_integer_value(json_object_get(v, "version"));
	m.u.ocsp_sign.issuer_id = route_param(c, "issuer_id");
	m.u.ocsp_sign.certid.ptr = q->r.id.der;
	m.u.ocsp_sign.certid.len = (uint32_t)q->r.id.der_len;
	m.u.ocsp_sign.status = !st ? OCSP_STATUS_UNKNOWN
			       : strcmp(st, "good") == 0 ? OCSP_STATUS_GOOD
			       : strcmp(st, "revoked") == 0 ? OCSP_STATUS_REVOKED : OCSP_STATUS_UNKNOWN;
	m.u.ocsp_sign.revoked_at = (uint64_t)json_integer_value(json_object_get(v, "revoked_at"));
	m.u.ocsp_sign.reason = json_is_integer(json_object_get(v, "reason"))
				       ? (uint32_t)json_integer_value(json_object_get(v, "reason"))
				       : 0xffffffffu;
	/* RFC 5280 5.3.1: unspecified is said by leaving the reason out */
	if (m.u.ocsp_sign.reason == 0)
		m.u.ocsp_sign.reason = 0xffffffffu;
	m.u.ocsp_sign.nonce.ptr = q->r.has_nonce ? q->r.nonce : (const uint8_t *)"";
	m.u.ocsp_sign.nonce.len = q->r.has_nonce ? (uint32_t)q->r.nonce_len : 0;
	snprintf(q->intermediate, sizeof q->intermediate, "%s",
		 json_is_string(json_object_get(v, "intermediate_id")) ? json_string_value(json_object_get(v, "intermediate_id")) : "");
	m.u.ocsp_sign.intermediate_id = q->intermediate;
	json_decref(v);
	ch = worker_peer(c->w, IPC_ROLE_SIGNER);
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(c->w), on_ocsp_signed, q) != 0) {
		free(q);
		ocsp_error(c, OCSP_RESP_TRY_LATER, "result=\"try_later\"");
	}
}

static void ocsp_handle(struct route_call *c, const uint8_t *der, size_t len, bool get)
{
	const char *issuer = route_param(c, "issuer_id");
	struct ocsp_call *q;
	struct ocsp_entry *e;
	char why[200], serial[2 * OCSP_SERIAL_MAX + 1];
	const char *p[2] = {issuer, serial};
	const uint8_t *sp;
	size_t sl;

	if (!issuer || !valid_resource_id(issuer, 64)) {
		ocsp_error(c, OCSP_RESP_UNAUTHORIZED, "result=\"unauthorized\"");
		return;
	}
	if (!(q = calloc(1, sizeof *q))) {
		ocsp_error(c, OCSP_RESP_TRY_LATER, "result=\"try_later\"");
		return;
	}
	q->c = c;
	q->get = get;
	if (len > sizeof q->req)
		snprintf(why, sizeof why, "larger than %d bytes", OCSP_REQUEST_MAX);
	else if (len)
		memcpy(q->req, der, q->req_len = len);
	if (len > sizeof q->req || ocsp_request_parse(q->req, q->req_len, &q->r, why, sizeof why) != 0) {
		log_event(LOG_INFO, c->req.reqid, NULL, "malformed OCSP request: %s", why);
		free(q);
		ocsp_error(c, OCSP_RESP_MALFORMED_REQUEST, "result=\"malformed\"");
		return;
	}
	{
		SHA256_CTX h;

		SHA256_Init(&h);
		SHA256_Update(&h, issuer, strlen(issuer) + 1);
		SHA256_Update(&h, q->r.id.der, q->r.id.der_len);
		SHA256_Final(q->key, &h);
	}
	if (!q->r.has_nonce && ocsp_cache_usable() && (e = ocsp_find(q->key)) && now_ms() < e->fresh_until_ms) {
		count("ocsp_cache_hits_total", NULL);
		ocsp_send(c, e->der, e->len, e->next_update, get, "result=\"cached\"");
		free(q);
		return;
	}
	count("ocsp_cache_misses_total", NULL);
	if (!sign_allowed(c->req.client)) {
		free(q);
		ocsp_error(c, OCSP_RESP_TRY_LATER, "result=\"limited\"");
		return;
	}
	for (sp = q->r.id.serial, sl = q->r.id.serial_len; sl > 1 && *sp == 0; sp++, sl--)
		;
	hex_encode(sp, sl, serial);
	if (store_call(c->w, "ocsp.status", p, 2, on_ocsp_status, q) != 0) {
		free(q);
		ocsp_error(c, OCSP_RESP_TRY_LATER, "result=\"try_later\"");
	}
}

static void post_ocsp(struct route_call *c)
{
	const char *ct = c->req.content_type;

	if (!ct || strncasecmp(ct, "application/ocsp-request", 24) != 0 || (ct[24] && ct[24] != ';' && ct[24] != ' ')) {
		route_problem(c, 415, "Unsupported Media Type", "Content-Type must be application/ocsp-request", NULL);
		return;
	}
	ocsp_handle(c, c->req.body, c->req.body_len, false);
}

static void get_ocsp(struct route_call *c)
{
	const char *b64 = route_param(c, "request");
	uint8_t der[OCSP_REQUEST_MAX];
	size_t n = 0;

	/* the path parameter arrives percent-decoded: plain base64 (RFC 6960 A.1) */
	if (!b64 || !EVP_DecodeBase64(der, &n, sizeof der, (const uint8_t *)b64, strlen(b64))) {
		ocsp_error(c, OCSP_RESP_MALFORMED_REQUEST, "result=\"malformed\"");
		return;
	}
	ocsp_handle(c, der, n, true);
}

static const struct route revocation_routes[] = {
	{"GET", "/.well-known/pki/crl/{issuer_id}", ROLES_PUBLIC, ROUTE_PLAIN, get_crl, NULL},
	{"GET", "/.well-known/pki/ocsp/{issuer_id}/{request*}", ROLES_PUBLIC, ROUTE_PLAIN, get_ocsp, NULL},
	{"POST", "/.well-known/pki/ocsp/{issuer_id}", ROLES_PUBLIC, ROUTE_PLAIN, post_ocsp, NULL},
};

void revocation_routes_init(void)
{
	routes_add(revocation_routes, sizeof revocation_routes / sizeof revocation_routes[0]);
}

void revocation_start(struct worker *w)
{
	api_w = w;
	if (oc.timer_on)
		return;
	uv_timer_init(worker_loop(w), &oc.timer);
	uv_unref((uv_handle_t *)&oc.timer);
	uv_timer_start(&oc.timer, on_ocsp_tick, 0, OCSP_POLL_MS);
	oc.timer_on = true;
}

void revocation_stop(void)
{
	if (oc.timer_on) {
		uv_timer_stop(&oc.timer);
		uv_close((uv_handle_t *)&oc.timer, NULL);
		oc.timer_on = false;
	}
	ocsp_flush();
	for (size_t i = 0; i < CRL_CACHE_SLOTS; i++)
		if (!crl_cache[i].fetching)
			crl_slot_drop(&crl_cache[i]);
}

#include "acme_issuer.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/mem.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "acme.h"
#include "codec.h"
#include "dns.h"
#include "https_client.h"
#include "log.h"
#include "store_client.h"
#include "util.h"
#include "x509pem.h"

#define POLL_DEFAULT_S 2
#define AUTHZ_WAIT_S 300  /* how long a challenge may stay pending */
#define ORDER_WAIT_S 300  /* how long the CA may stay processing */
/* the largest answer kept: a store result (STORE_RESULT's json) */
#define REPLY_MAX (4u * 1024 * 1024)
/* a badNonce is answered with a fresh nonce: sent again that many times */
#define BAD_NONCE_TRIES 10
/* account actions (acme_account_start) running at once */
#define ACCOUNT_RUNS_MAX 16

/* ---- the event loop's side: calls made for job threads ---- */

enum call_kind { CALL_SIGNER, CALL_DEPLOY, CALL_STORE, CALL_DONE };

struct call {
	enum call_kind kind;
	struct ipc_msg msg;            /* CALL_SIGNER, CALL_DEPLOY */
	const char *op;                /* CALL_STORE */
	const char *const *params;
	size_t nparams;
	/* the answer */
	bool done;
	int failed;                    /* 0, or an errno-like code (also the IPC ERROR's) */
	char text[600];                /* ERROR's message, the store's message */
	uint8_t *blob;                 /* the answer's main bytes (or the store's JSON); free() */
	size_t blob_len;
	char str[128];
	uint32_t u32;
	/* CALL_DONE */
	struct job *job;
	struct call *next;
};

static struct {
	struct worker *w;
	uv_async_t async;
	bool async_on;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* an answer came, or stopping */
	struct call *head, **tail;
	volatile bool stopping;
	uint64_t started, succeeded, failed;
	/* issuers whose account an account action of this process is working
	 * on (under mu): other runs leave its pending key alone */
	char account_busy[ACCOUNT_RUNS_MAX][132];
} A = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

struct job {
	/* inputs, copied */
	char job_id[132], issuer_id[132];
	json_t *cfg;
	char *secret_hex;
	char **names;
	size_t nnames;
	uint8_t *csr;
	size_t csr_len;
	acme_done_cb done;
	void *arg;
	/* a revocation (acme_revoke_start) rather than an order */
	bool revoke;
	int reason;
	/* an account action (acme_account_start) rather than an order */
	enum { ACCOUNT_NONE, ACCOUNT_KEYCHANGE, ACCOUNT_DEACTIVATE } account_action;
	char new_alg[8];
	char old_thumbprint[ACME_THUMBPRINT_LEN + 1];
	bool holds_account; /* in A.account_busy */
	bool deactivated;   /* the account was found deactivated, its key retired */
	/* a renewal information check (acme_ari_start) rather than an order */
	char ari_cert_id[ACME_CERT_ID_MAX];
	acme_ari_cb ari_done;
	struct acme_ari_answer ari;
	struct acme_renewal_info ri;
	/* the outcome */
	int rc;
	char why[600];
	struct acme_result res;
	/* the conversation */
	struct http_client hc;
	char ua[64];
	struct acme_directory dir;
	bool have_dir;
	char nonce[ACME_NONCE_MAX + 1];
	char alg[8];
	char *jwk;
	char thumbprint[ACME_THUMBPRINT_LEN + 1];
	char kid[ACME_URL_MAX + 1];
	char location[ACME_URL_MAX + 1]; /* of the last response */
	uint32_t retry_after;            /* of the last response; 0 when absent */
	struct acme_links links;         /* of the last response */
	/* what to undo when the order is over */
	char *tokens[ACME_IDENTIFIERS_MAX];
	size_t ntokens;
	char *dns_names[ACME_IDENTIFIERS_MAX], *dns_values[ACME_IDENTIFIERS_MAX];
	size_t ndns;
};

static void call_free(struct call *c)
{
	if (!c)
		return;
	free(c->blob);
	free(c);
}

static void answer(struct call *c)
{
	pthread_mutex_lock(&A.mu);
	c->done = true;
	pthread_cond_broadcast(&A.cv);
	pthread_mutex_unlock(&A.mu);
}

static void keep_blob(struct call *c, const uint8_t *p, size_t len)
{
	if (len > REPLY_MAX) {
		c->failed = EMSGSIZE;
		snprintf(c->text, sizeof c->text, "an answer larger than %u bytes", REPLY_MAX);
		return;
	}
	c->blob = malloc(len + 1);
	if (c->blob) {
		memcpy(c->blob, p, len);
		c->blob[len] = '\0';
		c->blob_len = len;
	} else {
		c->failed = ENOMEM;
	}
}

static void on_ipc_reply(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct call *c = arg;

	if (fd >= 0)
		close(fd);
	if (status != 0 || !m) {
		c->failed = ETIMEDOUT;
		snprintf(c->text, sizeof c->text, "no answer");
	} else if (m->type == IPC_T_ERROR) {
		c->failed = m->u.error.code ? (int)m->u.error.code : EIO;
		snprintf(c->text, sizeof c->text, "%s", m->u.error.message);
	} else if (m->type == IPC_T_ACME_ACCOUNT) {
		keep_blob(c, m->u.acme_account.jwk.ptr, m->u.acme_account.jwk.len);
		snprintf(c->str, sizeof c->str, "%s", m->u.acme_account.thumbprint);
	} else if (m->type == IPC_T_ACME_JWS_SIGNATURE) {
		keep_blob(c, m->u.acme_jws_signature.signature.ptr, m->u.acme_jws_signature.signature.len);
	} else if (m->type == IPC_T_ACME_EAB_SIGNATURE) {
		keep_blob(c, m->u.acme_eab_signature.signature.ptr, m->u.acme_eab_signature.signature.len);
	} else if (m->type == IPC_T_ACME_KEY_DONE) {
		snprintf(c->str, sizeof c->str, "%s", m->u.acme_key_done.file);
	} else if (m->type == IPC_T_DNS_HOOK_DONE) {
		c->u32 = m->u.dns_hook_done.exit_status;
		keep_blob(c, m->u.dns_hook_done.output.ptr, m->u.dns_hook_done.output.len);
	} else {
		c->failed = EPROTO;
		snprintf(c->text, sizeof c->text, "an unexpected answer");
	}
	answer(c);
}

static void on_store_reply(const struct store_outcome *o, void *arg)
{
	struct call *c = arg;

	if (o->error) {
		c->failed = o->error;
		snprintf(c->text, sizeof c->text, "%s", o->message);
	} else {
		keep_blob(c, o->json, o->json_len);
	}
	answer(c);
}

static void job_finish(struct job *j);

static void on_async(uv_async_t *h)
{
	struct call *c;

	(void)h;
	for (;;) {
		pthread_mutex_lock(&A.mu);
		c = A.head;
		if (c) {
			A.head = c->next;
			if (!A.head)
				A.tail = &A.head;
		}
		pthread_mutex_unlock(&A.mu);
		if (!c)
			return;
		if (c->kind == CALL_DONE) {
			job_finish(c->job);
			call_free(c);
			continue;
		}
		if (c->kind == CALL_STORE) {
			int rc = store_call(A.w, c->op, c->params, c->nparams, on_store_reply, c);

			if (rc != 0) {
				c->failed = -rc > 0 ? -rc : EIO;
				snprintf(c->text, sizeof c->text, "the store is unavailable");
				answer(c);
			}
			continue;
		}
		{
			struct ipc_channel *ch =
				worker_peer(A.w, c->kind == CALL_SIGNER ? IPC_ROLE_SIGNER : IPC_ROLE_DEPLOY);
			/* a hook may take its whole timeout: wait longer for it */
			uint32_t timeout = c->kind == CALL_DEPLOY ? 180000 : worker_ipc_timeout_ms(A.w);

			if (!ch || ipc_request(ch, &c->msg, -1, timeout, on_ipc_reply, c) != 0) {
				c->failed = EAGAIN;
				snprintf(c->text, sizeof c->text, "certward-%s is unavailable",
					 c->kind == CALL_SIGNER ? "signer" : "deploy");
				answer(c);
			}
		}
	}
}

/* From a job's thread: c handed to the loop, and waited for. */
static int bridge(struct call *c)
{
	pthread_mutex_lock(&A.mu);
	if (A.stopping) {
		pthread_mutex_unlock(&A.mu);
		c->failed = ECANCELED;
		snprintf(c->text, sizeof c->text, "the scheduler is stopping");
		return -1;
	}
	c->next = NULL;
	*A.tail = c;
	A.tail = &c->next;
	pthread_mutex_unlock(&A.mu);
	uv_async_send(&A.async);
	pthread_mutex_lock(&A.mu);
	while (!c->done && !A.stopping)
		pthread_cond_wait(&A.cv, &A.mu);
	if (!c->done) {
		/* stopping: the loop may still answer; the call is left to it */
		pthread_mutex_unlock(&A.mu);
		return -2;
	}
	pthread_mutex_unlock(&A.mu);
	return c->failed ? -1 : 0;
}

/* ---- a job's thread ---- */

static int fail(struct job *j, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct job *j, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->why, sizeof j->why, fmt, ap);
	va_end(ap);
	j->rc = rc;
	return rc;
}

static const char *cfg_s(const struct job *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j->cfg, key));

	return v ? v : "";
}

static bool stopping(void)
{
	return A.stopping;
}

static void sleep_s(uint32_t s)
{
	for (uint32_t i = 0; i < s * 10 && !stopping(); i++) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
}

/* One HTTP exchange with the CA; the nonce, Location, Retry-After and Link
 * of the answer kept. 0 with *r; -2 (transport: may work later). */
static int exchange(struct job *j, const char *method, const char *url, const char *body, struct http_response *r)
{
	char err[400], v[ACME_URL_MAX + 1], origin[ACME_URL_MAX + 1];
	const char *path = strncmp(url, "https://", 8) == 0 ? strchr(url + 8, '/') : NULL;
	enum http_err e;

	/* the client takes the origin and the path apart */
	snprintf(origin, sizeof origin, "%.*s", path ? (int)(path - url) : (int)strlen(url), url);
	j->hc.url = origin;
	e = http_request(&j->hc, method, path ? path : "/", body, body ? strlen(body) : 0, r, err, sizeof err);
	if (e != HTTP_OK)
		return fail(j, -2, "%s %s: %s", method, url, err);
	if (http_header(r, "Replay-Nonce", 0, v, sizeof v) == 0 && acme_nonce_ok(v))
		snprintf(j->nonce, sizeof j->nonce, "%.*s", ACME_NONCE_MAX, v);
	j->location[0] = '\0';
	if (http_header(r, "Location", 0, v, sizeof v) == 0 && acme_url_ok(v))
		snprintf(j->location, sizeof j->location, "%s", v);
	j->retry_after = 0;
	if (http_header(r, "Retry-After", 0, v, sizeof v) == 0)
		(void)acme_retry_after(v, (int64_t)time(NULL), &j->retry_after);
	acme_links_free(&j->links);
	memset(&j->links, 0, sizeof j->links);
	for (size_t i = 0; i < 16 && http_header(r, "Link", i, v, sizeof v) == 0; i++)
		(void)acme_links_add(&j->links, v, url, err, sizeof err);
	return 0;
}

/* A problem document in r, as the job's failure: transient kinds (and 5xx)
 * may work later. */
static int problem(struct job *j, const char *what, struct http_response *r)
{
	struct acme_problem p;
	char err[200];
	int rc;

	if (acme_parse_problem(r->body ? r->body : "", r->body_len, &p, err, sizeof err) != 0)
		return fail(j, r->status >= 500 || r->status == 429 ? -2 : -1, "%s: the CA answered %d", what,
			    r->status);
	rc = acme_error_transient(p.kind) || r->status >= 500 ? -2 : -1;
	if (p.nsub)
		fail(j, rc, "%s: %s: %s (%s: %s)", what, p.type, p.detail, p.sub[0].has_identifier ?
			 p.sub[0].identifier.value : "", p.sub[0].detail);
	else
		fail(j, rc, "%s: %s: %s", what, p.type, p.detail);
	acme_problem_free(&p);
	return rc;
}

static int get_nonce(struct job *j)
{
	struct http_response r = {0};
	int rc;

	if (j->nonce[0])
		return 0;
	rc = exchange(j, "HEAD", j->dir.new_nonce, NULL, &r);
	http_response_free(&r);
	if (rc != 0)
		return rc;
	return j->nonce[0] ? 0 : fail(j, -2, "the CA's newNonce gave no Replay-Nonce");
}

/* A signature on signing_input by the signer: of the account key, or
 * (next) of a rollover's pending key. */
static int jws_sign(struct job *j, bool next, const char *input, uint8_t *sig, size_t *siglen)
{
	struct call *c = calloc(1, sizeof *c);
	int rc;

	if (!c)
		return fail(j, -2, "out of memory");
	c->kind = CALL_SIGNER;
	if (next) {
		c->msg.type = IPC_T_ACME_JWS_SIGN_NEXT;
		c->msg.u.acme_jws_sign_next.issuer_id = j->issuer_id;
		c->msg.u.acme_jws_sign_next.signing_input.ptr = (const uint8_t *)input;
		c->msg.u.acme_jws_sign_next.signing_input.len = (uint32_t)strlen(input);
	} else {
		c->msg.type = IPC_T_ACME_JWS_SIGN;
		c->msg.u.acme_jws_sign.issuer_id = j->issuer_id;
		c->msg.u.acme_jws_sign.signing_input.ptr = (const uint8_t *)input;
		c->msg.u.acme_jws_sign.signing_input.len = (uint32_t)strlen(input);
	}
	rc = bridge(c);
	if (rc == -2)
		return fail(j, -2, "the scheduler is stopping");
	if (rc != 0 || c->blob_len > *siglen)
		rc = fail(j, -2, "the signer did not sign: %s", rc ? c->text : "signature too long");
	else {
		memcpy(sig, c->blob, c->blob_len);
		*siglen = c->blob_len;
	}
	call_free(c);
	return rc;
}

/* A signed POST (payload NULL: POST-as-GET) by kid, or by jwk when there is
 * no account yet; a badNonce answered once more with the new nonce. 0 with
 * *r (any status: the caller looks); -1/-2 set. */
static int post(struct job *j, const char *url, const char *payload, bool by_jwk, struct http_response *r)
{
	for (int attempt = 0; attempt < BAD_NONCE_TRIES; attempt++) {
		struct acme_jws jws = {0};
		uint8_t sig[600];
		size_t siglen = sizeof sig;
		char err[300], *body;
		int rc;

		if (get_nonce(j) != 0)
			return j->rc;
		if (acme_jws_request(&jws, j->alg, by_jwk ? j->jwk : NULL, by_jwk ? NULL : j->kid, j->nonce, url,
				     payload, err, sizeof err) != 0)
			return fail(j, -1, "a request to %s: %s", url, err);
		j->nonce[0] = '\0'; /* used */
		if (jws_sign(j, false, jws.signing_input, sig, &siglen) != 0) {
			acme_jws_free(&jws);
			return j->rc;
		}
		body = acme_jws_finish(&jws, sig, siglen, err, sizeof err);
		acme_jws_free(&jws);
		if (!body)
			return fail(j, -2, "a request to %s: %s", url, err);
		memset(r, 0, sizeof *r);
		rc = exchange(j, "POST", url, body, r);
		free(body);
		if (rc != 0)
			return rc;
		if (r->status == 400 && r->body) {
			struct acme_problem p;

			if (acme_parse_problem(r->body, r->body_len, &p, err, sizeof err) == 0) {
				bool bad_nonce = p.kind == ACME_ERR_BAD_NONCE;

				acme_problem_free(&p);
				if (bad_nonce && attempt < BAD_NONCE_TRIES - 1) {
					http_response_free(r);
					continue;
				}
			}
		}
		return 0;
	}
	return fail(j, -2, "the CA refused %d nonces in a row", BAD_NONCE_TRIES);
}

static int directory(struct job *j)
{
	struct http_response r = {0};
	char err[300];
	int rc = exchange(j, "GET", cfg_s(j, "directory_url"), NULL, &r);

	if (rc == 0 && r.status != 200)
		rc = fail(j, -2, "the ACME directory %s answered %d", cfg_s(j, "directory_url"), r.status);
	if (rc == 0 && acme_parse_directory(r.body ? r.body : "", r.body_len, &j->dir, err, sizeof err) != 0)
		rc = fail(j, -1, "the ACME directory %s: %s", cfg_s(j, "directory_url"), err);
	if (rc == 0)
		j->have_dir = true;
	http_response_free(&r);
	return rc;
}

/* The JWS algorithm of a public JWK from the signer, or NULL. */
static const char *jwk_alg(const char *jwk)
{
	json_t *j = json_loads(jwk, 0, NULL);
	const char *kty = json_string_value(json_object_get(j, "kty"));
	const char *crv = json_string_value(json_object_get(j, "crv"));
	const char *alg = NULL;

	if (kty && strcmp(kty, "RSA") == 0)
		alg = "RS256";
	else if (kty && strcmp(kty, "EC") == 0 && crv)
		alg = strcmp(crv, "P-256") == 0 ? "ES256" : strcmp(crv, "P-384") == 0 ? "ES384" : NULL;
	json_decref(j);
	return alg;
}

/* The key of the signer's ACME_ACCOUNT answer c as the job's account key:
 * its JWK, thumbprint and algorithm. */
static int use_key(struct job *j, const struct call *c)
{
	char *jwk = c->blob ? strndup((const char *)c->blob, c->blob_len) : NULL;
	const char *alg = jwk ? jwk_alg(jwk) : NULL;

	if (!alg) {
		free(jwk);
		return fail(j, -2, "the ACME account key: %s", jwk ? "a JWK of no JWS algorithm" : "out of memory");
	}
	free(j->jwk);
	j->jwk = jwk;
	snprintf(j->alg, sizeof j->alg, "%s", alg);
	snprintf(j->thumbprint, sizeof j->thumbprint, "%.*s", ACME_THUMBPRINT_LEN, c->str);
	return 0;
}

/* A signer call for the job: 0 with c's answer, or -1/-2 set (EINVAL and
 * EEXIST refusals for good) saying what; ENOENT answered as 1 when absent
 * is not a failure there. */
static int signer_ask(struct job *j, struct call *c, const char *what, bool absent_ok)
{
	int rc = bridge(c);

	if (rc == -2)
		return fail(j, -2, "the scheduler is stopping");
	if (rc == 0)
		return 0;
	if (c->failed == ENOENT && absent_ok)
		return 1;
	return fail(j, c->failed == EINVAL || c->failed == EEXIST || c->failed == ENOENT ? -1 : -2, "%s: %s", what,
		    c->text);
}

/* the account key's public JWK from the signer (made there the first time;
 * an account action takes the key there is, whatever its algorithm) */
static int account_key(struct job *j)
{
	struct call *c = calloc(1, sizeof *c);
	const char *alg = cfg_s(j, "account_key_algorithm");
	int rc;

	snprintf(j->alg, sizeof j->alg, "%s", *alg ? alg : "ES256");
	if (!c)
		return fail(j, -2, "out of memory");
	c->kind = CALL_SIGNER;
	c->msg.type = IPC_T_ACME_ACCOUNT_GET;
	c->msg.u.acme_account_get.issuer_id = j->issuer_id;
	c->msg.u.acme_account_get.alg = j->account_action ? "" : j->alg;
	rc = signer_ask(j, c, "the ACME account key", false);
	if (rc == 0)
		rc = use_key(j, c);
	call_free(c);
	return rc;
}

static int store(struct job *j, const char *op, const char *const *params, size_t n, json_t **out)
{
	struct call *c = calloc(1, sizeof *c);
	int rc;

	if (out)
		*out = NULL;
	if (!c)
		return fail(j, -2, "out of memory");
	c->kind = CALL_STORE;
	c->op = op;
	c->params = params;
	c->nparams = n;
	rc = bridge(c);
	if (rc != 0)
		rc = fail(j, -2, "%s: %s", op, c->text);
	else if (out && c->blob_len)
		*out = json_loadb((const char *)c->blob, c->blob_len, 0, NULL);
	call_free(c);
	return rc;
}

/* The EAB object for newAccount (RFC 8555 7.3.4), its HMAC by the signer. */
static char *eab(struct job *j)
{
	struct acme_jws jws = {0};
	struct call *c;
	char err[300], *out = NULL;
	size_t hexlen = j->secret_hex ? strlen(j->secret_hex) : 0;
	uint8_t *sealed;

	if (!hexlen) {
		fail(j, -1, "eab_key_id is set but the issuer has no eab_hmac_key secret");
		return NULL;
	}
	if (acme_jws_eab(&jws, cfg_s(j, "eab_key_id"), j->dir.new_account, j->jwk, err, sizeof err) != 0) {
		fail(j, -1, "external account binding: %s", err);
		return NULL;
	}
	c = calloc(1, sizeof *c);
	sealed = malloc(hexlen / 2 + 1);
	if (!c || !sealed || hexlen % 2 || hex_decode(j->secret_hex, sealed, hexlen / 2) != 0) {
		fail(j, -2, "the issuer's sealed secrets cannot be read");
		goto out;
	}
	c->kind = CALL_SIGNER;
	c->msg.type = IPC_T_ACME_EAB_SIGN;
	c->msg.u.acme_eab_sign.sealed.ptr = sealed;
	c->msg.u.acme_eab_sign.sealed.len = (uint32_t)(hexlen / 2);
	c->msg.u.acme_eab_sign.signing_input.ptr = (const uint8_t *)jws.signing_input;
	c->msg.u.acme_eab_sign.signing_input.len = (uint32_t)strlen(jws.signing_input);
	if (bridge(c) != 0)
		fail(j, c->failed == EINVAL ? -1 : -2, "external account binding: %s", c->text);
	else if (!(out = acme_jws_finish(&jws, c->blob, c->blob_len, err, sizeof err)))
		fail(j, -2, "external account binding: %s", err);
out:
	free(sealed);
	call_free(c);
	acme_jws_free(&jws);
	return out;
}

/* ---- the account key: a rollover's pending key, retirement ---- */

/* Whether an account action of this process is working on the issuer's
 * account now. */
static bool account_busy(const char *issuer_id)
{
	bool busy = false;

	pthread_mutex_lock(&A.mu);
	for (size_t i = 0; i < ACCOUNT_RUNS_MAX && !busy; i++)
		busy = strcmp(A.account_busy[i], issuer_id) == 0;
	pthread_mutex_unlock(&A.mu);
	return busy;
}

/* On the loop: the issuer's account taken for an account action; false
 * when one runs already or they are ACCOUNT_RUNS_MAX. */
static bool account_take(const char *issuer_id)
{
	size_t free_slot = ACCOUNT_RUNS_MAX;

	if (!*issuer_id || strlen(issuer_id) >= sizeof A.account_busy[0] || account_busy(issuer_id))
		return false;
	pthread_mutex_lock(&A.mu);
	for (size_t i = 0; i < ACCOUNT_RUNS_MAX && free_slot == ACCOUNT_RUNS_MAX; i++)
		if (!A.account_busy[i][0])
			free_slot = i;
	if (free_slot < ACCOUNT_RUNS_MAX)
		snprintf(A.account_busy[free_slot], sizeof A.account_busy[free_slot], "%s", issuer_id);
	pthread_mutex_unlock(&A.mu);
	return free_slot < ACCOUNT_RUNS_MAX;
}

static void account_release(const char *issuer_id)
{
	pthread_mutex_lock(&A.mu);
	for (size_t i = 0; i < ACCOUNT_RUNS_MAX; i++)
		if (strcmp(A.account_busy[i], issuer_id) == 0)
			A.account_busy[i][0] = '\0';
	pthread_mutex_unlock(&A.mu);
}

/* A rollover message (ACME_KEY_NEXT, _COMMIT, _ABORT, _RETIRE) about
 * thumbprint (or alg, for ACME_KEY_NEXT) to the signer; *out the call with
 * its answer when not NULL (the caller frees it). 0, 1 (ENOENT and
 * absent_ok), or -1/-2 set. */
static int key_call(struct job *j, enum ipc_type type, const char *arg, bool absent_ok, struct call **out)
{
	static const char *const what[] = {"a new ACME account key", "the new ACME account key",
					   "discarding the new ACME account key", "retiring the ACME account key"};
	struct call *c = calloc(1, sizeof *c);
	size_t w = type == IPC_T_ACME_KEY_NEXT	   ? 0
		   : type == IPC_T_ACME_KEY_COMMIT ? 1
		   : type == IPC_T_ACME_KEY_ABORT  ? 2
						   : 3;
	int rc;

	if (out)
		*out = NULL;
	if (!c)
		return fail(j, -2, "out of memory");
	c->kind = CALL_SIGNER;
	c->msg.type = type;
	if (type == IPC_T_ACME_KEY_NEXT) {
		c->msg.u.acme_key_next.issuer_id = j->issuer_id;
		c->msg.u.acme_key_next.alg = arg;
	} else if (type == IPC_T_ACME_KEY_COMMIT) {
		c->msg.u.acme_key_commit.issuer_id = j->issuer_id;
		c->msg.u.acme_key_commit.thumbprint = arg;
	} else if (type == IPC_T_ACME_KEY_ABORT) {
		c->msg.u.acme_key_abort.issuer_id = j->issuer_id;
		c->msg.u.acme_key_abort.thumbprint = arg;
	} else {
		c->msg.u.acme_key_retire.issuer_id = j->issuer_id;
		c->msg.u.acme_key_retire.thumbprint = arg;
	}
	rc = signer_ask(j, c, what[w], absent_ok);
	if (rc == 0 && out)
		*out = c;
	else
		call_free(c);
	return rc;
}

/* The pending key of that thumbprint made the account key: the job's from
 * now on, and the account's record (acme_accounts.rolled). */
static int commit_key(struct job *j, const char *thumbprint)
{
	char before[ACME_THUMBPRINT_LEN + 1];
	const char *p[4] = {j->issuer_id, j->thumbprint, j->alg, before};
	struct call *c;
	int rc;

	memcpy(before, j->thumbprint, sizeof before);
	if (key_call(j, IPC_T_ACME_KEY_COMMIT, thumbprint, false, &c) != 0)
		return j->rc;
	rc = use_key(j, c);
	call_free(c);
	if (rc != 0)
		return rc;
	log_event(LOG_INFO, NULL, NULL, "ACME issuer %s: the account key is %s (%s) now, was %s", j->issuer_id,
		  j->thumbprint, j->alg, before);
	return store(j, "acme_accounts.rolled", p, 4, NULL);
}

/* Whether the CA knows the job's account key: newAccount with
 * onlyReturnExisting (RFC 8555 7.3.1). 1 (its account URL kept), 0
 * (accountDoesNotExist), or -1/-2 set. */
static int key_known(struct job *j)
{
	struct http_response r = {0};
	struct acme_problem p;
	char *payload, err[300];
	int rc;

	if (!(payload = acme_payload_new_account(NULL, 0, false, true, NULL, err, sizeof err)))
		return fail(j, -1, "newAccount: %s", err);
	rc = post(j, j->dir.new_account, payload, true, &r);
	free(payload);
	if (rc != 0)
		return rc;
	if (r.status == 200 && j->location[0]) {
		snprintf(j->kid, sizeof j->kid, "%s", j->location);
		rc = 1;
	} else if (r.status == 200) {
		rc = fail(j, -2, "newAccount: the CA gave no account URL");
	} else {
		bool unknown = false;

		if (r.body && acme_parse_problem(r.body, r.body_len, &p, err, sizeof err) == 0) {
			unknown = p.kind == ACME_ERR_ACCOUNT_DOES_NOT_EXIST;
			acme_problem_free(&p);
		}
		rc = unknown ? 0 : problem(j, "newAccount (onlyReturnExisting)", &r);
	}
	http_response_free(&r);
	return rc;
}

/*
 * A rollover's pending key left by a run that ended between the CA's
 * answer and the commit (a crash, the signer away): made the account key
 * when the CA knows the account key no more (it took the new one), removed
 * when it still does (it never saw the change). A pending key that an
 * account action of this process is working with is that run's to settle.
 */
static int settle(struct job *j)
{
	char next[ACME_THUMBPRINT_LEN + 1];
	struct call *c;
	int rc;

	if (j->account_action == ACCOUNT_NONE && account_busy(j->issuer_id))
		return 0;
	if ((rc = key_call(j, IPC_T_ACME_KEY_NEXT, "", true, &c)) != 0)
		return rc == 1 ? 0 : rc;
	snprintf(next, sizeof next, "%.*s", ACME_THUMBPRINT_LEN, c->str);
	call_free(c);
	if ((rc = key_known(j)) < 0)
		return rc;
	if (rc == 1) {
		log_warn("ACME issuer %s: a new account key the CA never took (%s) is discarded", j->issuer_id, next);
		return key_call(j, IPC_T_ACME_KEY_ABORT, next, false, NULL);
	}
	log_warn("ACME issuer %s: the CA knows the account key no more: its new key %s, pending, is the account key "
		 "now", j->issuer_id, next);
	return commit_key(j, next);
}

/* The account key retired in the signer (its account deactivated): the
 * issuer's next order makes a new one. */
static int retire_key(struct job *j)
{
	struct call *c;

	if (key_call(j, IPC_T_ACME_KEY_RETIRE, j->thumbprint, false, &c) != 0)
		return j->rc;
	log_event(LOG_INFO, NULL, NULL, "ACME issuer %s: the account key %s is retired (%s)", j->issuer_id,
		  j->thumbprint, *c->str ? c->str : "it was gone");
	call_free(c);
	return 0;
}

/* The account URL (kid): remembered in acme_accounts for this key, else
 * registered (newAccount answers 200 for a key it knows, 201 for a new one).
 * A rollover's pending key is settled first; a key whose account the CA
 * deactivated is retired and a new one made. An account action registers
 * nothing: it asks for the account of the key (onlyReturnExisting). */
static int account(struct job *j)
{
	const char *p[5] = {j->issuer_id};
	json_t *known = NULL;
	struct http_response r = {0};
	const char *email = cfg_s(j, "contact_email");
	bool only_existing = j->account_action != ACCOUNT_NONE;
	char *payload, *binding = NULL, err[300];
	int rc;

	if (settle(j) != 0)
		return j->rc;
	if (store(j, "acme_accounts.get", p, 1, &known) != 0)
		return j->rc;
	{
		const char *url = json_string_value(json_object_get(known, "account_url"));
		const char *tp = json_string_value(json_object_get(known, "key_thumbprint"));
		const char *st = json_string_value(json_object_get(known, "status"));
		bool this_key = url && tp && st && strcmp(tp, j->thumbprint) == 0 && strlen(url) <= ACME_URL_MAX;

		if (this_key && strcmp(st, "valid") == 0) {
			snprintf(j->kid, sizeof j->kid, "%s", url);
			json_decref(known);
			return 0;
		}
		json_decref(known);
		/* a deactivation whose run ended before the key was retired */
		if (this_key && strcmp(st, "deactivated") == 0) {
			if (retire_key(j) != 0)
				return j->rc;
			if (only_existing) {
				j->deactivated = true;
				return 0;
			}
			if (account_key(j) != 0)
				return j->rc;
		}
	}
	if (!only_existing && *cfg_s(j, "eab_key_id") && !(binding = eab(j)))
		return j->rc;
	if (!only_existing && !*cfg_s(j, "eab_key_id") && j->dir.external_account_required) {
		return fail(j, -1, "the CA requires an external account binding: set eab_key_id and the secret "
				   "eab_hmac_key on the issuer");
	}
	payload = acme_payload_new_account(*email ? &email : NULL, *email ? 1 : 0, true, only_existing, binding, err,
					   sizeof err);
	free(binding);
	if (!payload)
		return fail(j, -1, "newAccount: %s", err);
	rc = post(j, j->dir.new_account, payload, true, &r);
	free(payload);
	if (rc != 0)
		return rc;
	if (r.status != 200 && r.status != 201) {
		rc = problem(j, "newAccount", &r);
		http_response_free(&r);
		return rc;
	}
	http_response_free(&r);
	if (!j->location[0])
		return fail(j, -2, "newAccount: the CA gave no account URL");
	snprintf(j->kid, sizeof j->kid, "%s", j->location);
	{
		json_t *contact = *email ? json_pack("[s+]", "mailto:", email) : NULL;
		char *cj = contact ? json_dumps(contact, JSON_COMPACT) : NULL;
		const char *q[5] = {j->issuer_id, j->kid, j->thumbprint, "valid", cj};

		json_decref(contact);
		rc = store(j, "acme_accounts.put", q, 5, NULL);
		free(cj);
		if (rc != 0)
			log_warn("ACME issuer %s: the account %s could not be remembered: %s", j->issuer_id, j->kid,
				 j->why);
		j->rc = 0;
	}
	log_event(LOG_INFO, NULL, NULL, "ACME issuer %s: account %s", j->issuer_id, j->kid);
	return 0;
}

/* ---- account actions ---- */

/*
 * Key rollover (RFC 8555 7.3.5): a new key made pending in the signer, the
 * keyChange's inner JWS signed by it, the outer by the account key; on the
 * CA's 200 the pending key becomes the account key, on a refusal it is
 * removed. Without an answer (the network) it stays pending, for the next
 * run of the issuer to settle. An account key other than the one the
 * action was asked for means a run before this one got as far as the
 * commit: done.
 */
static int key_change(struct job *j)
{
	struct acme_jws inner = {0};
	struct http_response r = {0};
	char next[ACME_THUMBPRINT_LEN + 1], *body = NULL, err[300], why[sizeof j->why];
	struct call *c;
	uint8_t sig[600];
	size_t siglen = sizeof sig;
	int rc;

	if (j->deactivated)
		return fail(j, -1, "the account is deactivated: there is no account key to roll over");
	if (strcmp(j->thumbprint, j->old_thumbprint) != 0) {
		const char *p[4] = {j->issuer_id, j->thumbprint, j->alg, j->old_thumbprint};

		return store(j, "acme_accounts.rolled", p, 4, NULL);
	}
	if (key_call(j, IPC_T_ACME_KEY_NEXT, j->new_alg, false, &c) != 0)
		return j->rc;
	snprintf(next, sizeof next, "%.*s", ACME_THUMBPRINT_LEN, c->str);
	rc = acme_jws_key_change(&inner, j->new_alg, (const char *)c->blob, j->dir.key_change, j->kid, j->jwk, err,
				 sizeof err);
	call_free(c);
	if (rc != 0) {
		fail(j, -1, "keyChange: %s", err);
		goto refused;
	}
	if (jws_sign(j, true, inner.signing_input, sig, &siglen) != 0)
		goto refused;
	if (!(body = acme_jws_finish(&inner, sig, siglen, err, sizeof err))) {
		fail(j, -2, "keyChange: %s", err);
		goto refused;
	}
	if ((rc = post(j, j->dir.key_change, body, false, &r)) != 0)
		goto out;
	if (r.status != 200) {
		rc = problem(j, "keyChange", &r);
		/* a server error may come after the change: settled by the next run */
		if (r.status < 500)
			goto refused;
		goto out;
	}
	rc = commit_key(j, next);
	goto out;
refused:
	rc = j->rc;
	memcpy(why, j->why, sizeof why);
	if (key_call(j, IPC_T_ACME_KEY_ABORT, next, false, NULL) != 0)
		log_warn("ACME issuer %s: %s", j->issuer_id, j->why);
	j->rc = rc;
	memcpy(j->why, why, sizeof why);
out:
	http_response_free(&r);
	acme_jws_free(&inner);
	free(body);
	return rc;
}

/*
 * Deactivation (RFC 8555 7.3.6): {"status": "deactivated"} to the account
 * URL; then the account recorded deactivated and its key retired, so the
 * issuer's next order registers a new account with a new key. A CA
 * answering unauthorized deactivated the account before (an earlier run
 * ended before it could record it: RFC 8555 7.3.6 has a deactivated
 * account's requests refused so).
 */
static int deactivate(struct job *j)
{
	const char *p[2] = {j->issuer_id, j->thumbprint};
	struct http_response r = {0};
	struct acme_account acct;
	struct acme_problem pr;
	char *payload, err[300];
	int rc;

	if (j->deactivated)
		return 0;
	if (!(payload = acme_payload_deactivate()))
		return fail(j, -2, "out of memory");
	rc = post(j, j->kid, payload, false, &r);
	free(payload);
	if (rc != 0)
		return rc;
	if (r.status == 200) {
		if (acme_parse_account(r.body ? r.body : "", r.body_len, &acct, err, sizeof err) != 0) {
			rc = fail(j, -2, "the deactivated account: %s", err);
		} else {
			if (acct.status != ACME_STATUS_DEACTIVATED)
				rc = fail(j, -2, "the CA answered the deactivation with an account that is %s",
					  acme_status_name(acct.status));
			acme_account_free(&acct);
		}
	} else if ((r.status == 401 || r.status == 403) && r.body &&
		   acme_parse_problem(r.body, r.body_len, &pr, err, sizeof err) == 0) {
		if (pr.kind == ACME_ERR_UNAUTHORIZED)
			log_warn("ACME issuer %s: the CA refuses the account %s (%s): deactivated before", j->issuer_id,
				 j->kid, pr.detail);
		else
			rc = problem(j, "deactivation", &r);
		acme_problem_free(&pr);
	} else {
		rc = problem(j, "deactivation", &r);
	}
	http_response_free(&r);
	if (rc != 0)
		return rc;
	if (store(j, "acme_accounts.deactivated", p, 2, NULL) != 0)
		return j->rc;
	log_event(LOG_INFO, NULL, NULL, "ACME issuer %s: account %s deactivated", j->issuer_id, j->kid);
	return retire_key(j);
}

/* POST-as-GET url into *r with status 200; -1/-2 set. */
static int fetch(struct job *j, const char *what, const char *url, struct http_response *r)
{
	int rc = post(j, url, NULL, false, r);

	if (rc == 0 && r->status != 200) {
		rc = problem(j, what, r);
		http_response_free(r);
	}
	return rc;
}

/* ---- challenges ---- */

static int hook(struct job *j, const char *action, const char *name, const char *value)
{
	struct call *c = calloc(1, sizeof *c);
	int rc;

	if (!c)
		return fail(j, -2, "out of memory");
	c->kind = CALL_DEPLOY;
	c->msg.type = IPC_T_DNS_HOOK_RUN;
	c->msg.u.dns_hook_run.hook = cfg_s(j, "dns_hook");
	c->msg.u.dns_hook_run.action = action;
	c->msg.u.dns_hook_run.record_name = name;
	c->msg.u.dns_hook_run.value = value;
	rc = bridge(c);
	if (rc != 0)
		rc = fail(j, c->failed == EINVAL ? -1 : -2, "DNS hook %s %s %s: %s", cfg_s(j, "dns_hook"), action,
			  name, c->text);
	else if (c->u32 != 0)
		rc = fail(j, -2, "DNS hook %s %s %s exited %u: %.300s", cfg_s(j, "dns_hook"), action, name,
			  (unsigned)c->u32, c->blob ? (const char *)c->blob : "");
	call_free(c);
	return rc;
}

/* every configured resolver answers the TXT value, or the timeout passed */
/* Whether every one of the issuer's dns_resolvers (there is at least one)
 * answers the TXT record name with value now; err the last failure. */
static bool seen_everywhere(struct job *j, const char *name, const char *value, char *err, size_t errlen)
{
	json_t *resolvers = json_object_get(j->cfg, "dns_resolvers"), *v;
	size_t seen = 0, i;

	json_array_foreach(resolvers, i, v) {
		struct dns_txt_result res;
		const char *server = json_string_value(v);

		if (!server || dns_txt_query(server, name, 2000, &res, err, errlen) != 0)
			continue;
		for (size_t k = 0; k < res.count; k++)
			if (res.lengths[k] == strlen(value) && memcmp(res.records[k], value, res.lengths[k]) == 0) {
				seen++;
				break;
			}
		dns_txt_result_free(&res);
	}
	return json_array_size(resolvers) > 0 && seen == json_array_size(resolvers);
}

static int propagated(struct job *j, const char *name, const char *value)
{
	json_int_t limit = json_integer_value(json_object_get(j->cfg, "dns_propagation_timeout_seconds"));
	time_t until = time(NULL) + (limit > 0 && limit <= 3600 ? limit : 120);
	char err[300] = "";

	if (!json_array_size(json_object_get(j->cfg, "dns_resolvers")))
		return 0;
	while (!stopping()) {
		if (seen_everywhere(j, name, value, err, sizeof err))
			return 0;
		if (time(NULL) >= until)
			return fail(j, -2, "the TXT record %s did not reach every resolver within %lld s%s%s", name,
				    (long long)(limit > 0 ? limit : 120), *err ? ": " : "", err);
		sleep_s(2);
	}
	return fail(j, -2, "the scheduler is stopping");
}

/* how long an agent has to put an HTTP-01 answer into its webroot: a few
 * of its polls (agent.yml poll_interval, 30s by default) */
#define AGENT_HTTP01_WAIT_S 300

/*
 * The HTTP-01 challenge token (put for the api) handed to the agent of the
 * certificate's target with an ACME webroot, when there is one: it writes
 * the answer there for the web server of the names, and the CA is told to
 * look only once the agent says it is in place (docs/acme-client.md).
 */
static int on_agent_host(struct job *j, const char *token, const char *id)
{
	const char *p[2] = {token, j->job_id};
	json_t *a = NULL;
	char agent[132];

	if (store(j, "acme_challenges.to_agent", p, 2, &a) != 0)
		return j->rc;
	snprintf(agent, sizeof agent, "%s", json_string_value(json_object_get(a, "agent_id")) ?: "");
	json_decref(a);
	if (!agent[0])
		return 0;
	log_event(LOG_INFO, NULL, NULL, "job %s: http-01 for %s handed to agent %s", j->job_id, id, agent);
	for (int waited = 0; waited < AGENT_HTTP01_WAIT_S && !stopping(); waited++) {
		const char *state;

		if (store(j, "acme_challenges.state", p, 1, &a) != 0)
			return j->rc;
		state = json_string_value(json_object_get(a, "state"));
		if (!state) {
			json_decref(a);
			return fail(j, -2, "the http-01 challenge for %s is gone before agent %s wrote it", id, agent);
		}
		if (strcmp(state, "ready") == 0) {
			json_decref(a);
			return 0;
		}
		if (strcmp(state, "failed") == 0) {
			fail(j, -2, "agent %s could not write the http-01 answer for %s: %.300s", agent, id,
			     json_string_value(json_object_get(a, "error")) ?: "no reason given");
			json_decref(a);
			return j->rc;
		}
		json_decref(a);
		sleep_s(1);
	}
	return fail(j, -2, "agent %s did not write the http-01 answer for %s within %d s", agent, id,
		    AGENT_HTTP01_WAIT_S);
}

/*
 * dns-persist-01 (draft-ietf-acme-dns-persist): the record
 * _validation-persist.<id> names the CA (its first issuer domain name) and
 * this account; it stays in place for later orders, so it is published
 * only when the resolvers do not answer it already, and never cleaned up.
 */
static int present_persist(struct job *j, const struct acme_challenge *ch, const char *id, bool wildcard)
{
	char name[300], value[ACME_URL_MAX + 320], err[300] = "";

	snprintf(name, sizeof name, "_validation-persist.%.253s.", id);
	if (ch->nissuer_domain_names == 0 ||
	    acme_dns_persist_value(ch->issuer_domain_names[0], j->kid, wildcard, value, sizeof value) != 0)
		return fail(j, -1, "the CA's dns-persist-01 challenge for %s names no usable issuer domain", id);
	if (!*cfg_s(j, "dns_hook"))
		return fail(j, -1, "a dns-persist-01 challenge for %s needs the issuer's dns_hook", id);
	if (seen_everywhere(j, name, value, err, sizeof err)) {
		log_event(LOG_INFO, NULL, NULL, "job %s: %s is in place already", j->job_id, name);
		return 0;
	}
	if (hook(j, "present", name, value) != 0)
		return j->rc;
	return propagated(j, name, value);
}

/* Readies the answer to ch of the authorization of identifier id. */
static int present(struct job *j, const struct acme_challenge *ch, const char *id, bool wildcard)
{
	char ka[ACME_KEYAUTH_MAX], ttl[16];

	if (strcmp(ch->type, "dns-persist-01") == 0)
		return present_persist(j, ch, id, wildcard);
	if (acme_key_authorization(ch->token ? ch->token : "", j->thumbprint, ka) != 0)
		return fail(j, -1, "the CA's %s challenge for %s has an unusable token", ch->type, id);
	if (strcmp(ch->type, "http-01") == 0) {
		const char *p[4] = {ch->token, ka, j->issuer_id, ttl};

		snprintf(ttl, sizeof ttl, "%d", 3600);
		if (store(j, "acme_challenges.put", p, 4, NULL) != 0)
			return j->rc;
		if (j->ntokens < ACME_IDENTIFIERS_MAX)
			j->tokens[j->ntokens++] = strdup(ch->token);
		return on_agent_host(j, ch->token, id);
	}
	{
		char txt[ACME_THUMBPRINT_LEN + 1], name[300];

		acme_dns01_txt(ka, txt);
		snprintf(name, sizeof name, "_acme-challenge.%.253s.", id);
		if (!*cfg_s(j, "dns_hook"))
			return fail(j, -1, "a dns-01 challenge for %s needs the issuer's dns_hook", id);
		if (hook(j, "present", name, txt) != 0)
			return j->rc;
		if (j->ndns < ACME_IDENTIFIERS_MAX) {
			j->dns_names[j->ndns] = strdup(name);
			j->dns_values[j->ndns++] = strdup(txt);
		}
		return propagated(j, name, txt);
	}
}

static void cleanup(struct job *j)
{
	int rc = j->rc;
	char why[sizeof j->why];

	memcpy(why, j->why, sizeof why);
	for (size_t i = 0; i < j->ntokens; i++) {
		const char *p[1] = {j->tokens[i]};

		if (j->tokens[i])
			(void)store(j, "acme_challenges.delete", p, 1, NULL);
		free(j->tokens[i]);
	}
	j->ntokens = 0;
	for (size_t i = 0; i < j->ndns; i++) {
		if (j->dns_names[i] && j->dns_values[i] && hook(j, "cleanup", j->dns_names[i], j->dns_values[i]) != 0)
			log_warn("ACME issuer %s: %s", j->issuer_id, j->why);
		free(j->dns_names[i]);
		free(j->dns_values[i]);
	}
	j->ndns = 0;
	/* a failed cleanup is logged; the job's outcome stays what it was */
	j->rc = rc;
	memcpy(j->why, why, sizeof why);
}

/* The authorization at url, fetched and parsed into *a. */
static int get_authz(struct job *j, const char *url, struct acme_authz *a)
{
	struct http_response r = {0};
	char err[300];
	int rc = fetch(j, "authorization", url, &r);

	if (rc != 0)
		return rc;
	rc = acme_parse_authz(r.body ? r.body : "", r.body_len, a, err, sizeof err);
	http_response_free(&r);
	return rc == 0 ? 0 : fail(j, -2, "authorization %s: %s", url, err);
}

/* One authorization to valid: its challenge chosen, readied, answered, and
 * the authorization polled. */
static int authorize(struct job *j, const char *url)
{
	struct http_response r = {0};
	struct acme_authz a;
	const struct acme_challenge *ch = NULL;
	const char *want = cfg_s(j, "challenge_type");
	char id[300];
	time_t until;
	int rc;

	if ((rc = get_authz(j, url, &a)) != 0)
		return rc;
	if (a.status == ACME_STATUS_VALID) {
		acme_authz_free(&a);
		return 0;
	}
	snprintf(id, sizeof id, "%s", a.identifier.value);
	if (a.status != ACME_STATUS_PENDING) {
		acme_authz_free(&a);
		return fail(j, -1, "the authorization for %s is %s", id, acme_status_name(a.status));
	}
	/* dns-persist-01 where the CA offers it (with an issuer domain name),
	 * else dns-01; a wildcard is proved in DNS only */
	if (!*want)
		want = "http-01";
	if (strcmp(want, "dns-persist-01") == 0 &&
	    (!(ch = acme_authz_challenge(&a, want)) || ch->nissuer_domain_names == 0))
		want = "dns-01";
	if (a.wildcard && strcmp(want, "http-01") == 0)
		want = "dns-01";
	ch = acme_authz_challenge(&a, want);
	if (!ch) {
		acme_authz_free(&a);
		return fail(j, -1, "the CA offers no %s challenge for %s", want, id);
	}
	{
		char curl[ACME_URL_MAX + 1];

		snprintf(curl, sizeof curl, "%s", ch->url);
		if (present(j, ch, id, a.wildcard) != 0) {
			acme_authz_free(&a);
			return j->rc;
		}
		acme_authz_free(&a);
		/* "{}": the answer is ready */
		if ((rc = post(j, curl, "{}", false, &r)) != 0)
			return rc;
		if (r.status != 200) {
			rc = problem(j, "challenge", &r);
			http_response_free(&r);
			return rc;
		}
		http_response_free(&r);
	}
	until = time(NULL) + AUTHZ_WAIT_S;
	for (;;) {
		sleep_s(j->retry_after ? j->retry_after : POLL_DEFAULT_S);
		if (stopping())
			return fail(j, -2, "the scheduler is stopping");
		if ((rc = get_authz(j, url, &a)) != 0)
			return rc;
		if (a.status == ACME_STATUS_VALID) {
			acme_authz_free(&a);
			return 0;
		}
		if (a.status != ACME_STATUS_PENDING) {
			const struct acme_challenge *c = acme_authz_challenge(&a, want);

			if (c && c->has_error)
				fail(j, -1, "%s for %s: %s: %s", want, id, c->error.type, c->error.detail);
			else
				fail(j, -1, "the authorization for %s became %s", id, acme_status_name(a.status));
			acme_authz_free(&a);
			return -1;
		}
		acme_authz_free(&a);
		if (time(NULL) >= until)
			return fail(j, -2, "the authorization for %s stayed pending for %d s", id, AUTHZ_WAIT_S);
	}
}

/* ---- the order ---- */

static int order_poll(struct job *j, const char *url, struct acme_order *o, enum acme_status until_not)
{
	struct http_response r = {0};
	char err[300];
	time_t until = time(NULL) + ORDER_WAIT_S;
	int rc;

	while (o->status == until_not) {
		if (time(NULL) >= until)
			return fail(j, -2, "the order stayed %s for %d s", acme_status_name(until_not), ORDER_WAIT_S);
		sleep_s(j->retry_after ? j->retry_after : POLL_DEFAULT_S);
		if (stopping())
			return fail(j, -2, "the scheduler is stopping");
		if ((rc = fetch(j, "order", url, &r)) != 0)
			return rc;
		acme_order_free(o);
		rc = acme_parse_order(r.body ? r.body : "", r.body_len, o, err, sizeof err);
		http_response_free(&r);
		if (rc != 0) {
			memset(o, 0, sizeof *o);
			return fail(j, -2, "order %s: %s", url, err);
		}
	}
	return 0;
}

/* The certificate and its chain (an alternate one when preferred_chain
 * names its top issuer). */
static int download(struct job *j, const char *url)
{
	struct http_response r = {0};
	struct acme_chain chains[1 + ACME_ALTERNATES_MAX];
	char *alts[ACME_ALTERNATES_MAX];
	size_t n = 0, nalt = 0, pick;
	char err[300];
	int rc;

	memset(chains, 0, sizeof chains);
	if ((rc = fetch(j, "certificate", url, &r)) != 0)
		return rc;
	rc = acme_parse_pem_chain(r.body ? r.body : "", r.body_len, &chains[0], err, sizeof err);
	http_response_free(&r);
	if (rc != 0)
		return fail(j, -1, "the certificate from %s: %s", url, err);
	n = 1;
	for (size_t i = 0; i < j->links.nalternate; i++)
		alts[nalt++] = strdup(j->links.alternate[i]);
	if (*cfg_s(j, "preferred_chain")) {
		for (size_t i = 0; i < nalt; i++) {
			if (!alts[i] || fetch(j, "alternate chain", alts[i], &r) != 0)
				continue;
			if (acme_parse_pem_chain(r.body ? r.body : "", r.body_len, &chains[n], err, sizeof err) == 0)
				n++;
			http_response_free(&r);
		}
		j->rc = 0;
	}
	for (size_t i = 0; i < nalt; i++)
		free(alts[i]);
	pick = acme_chain_choose(chains, n, cfg_s(j, "preferred_chain"));
	j->res.der = malloc(chains[pick].der_len[0]);
	if (j->res.der) {
		memcpy(j->res.der, chains[pick].der[0], chains[pick].der_len[0]);
		j->res.der_len = chains[pick].der_len[0];
	}
	{
		struct strbuf pem;

		strbuf_init(&pem, 8192);
		for (size_t k = 1; k < chains[pick].n; k++) {
			char *one = x509pem_from_der(chains[pick].der[k], chains[pick].der_len[k], false);

			if (one)
				strbuf_printf(&pem, "%s", one);
			free(one);
		}
		j->res.chain_pem = pem.p ? pem.p : strdup("");
		j->res.chain_len = pem.len;
	}
	for (size_t i = 0; i < n; i++)
		acme_chain_free(&chains[i]);
	if (!j->res.der || !j->res.chain_pem)
		return fail(j, -2, "out of memory");
	return 0;
}

/* The CertID of the certificate an order replaces (RFC 9773 5) into out,
 * "" when there is none: the newest version of the job's certificate, when
 * this issuer issued it. Without it the order is an order all the same. */
static void replaced(struct job *j, char out[ACME_CERT_ID_MAX])
{
	const char *p[1] = {j->job_id};
	json_t *v = NULL;
	const char *pem;
	uint8_t *der = NULL;
	size_t len = 0;
	char err[200];

	out[0] = '\0';
	if (store(j, "acme_ari.replaces", p, 1, &v) != 0) {
		log_warn("ACME issuer %s: job %s: %s (ordered without replaces)", j->issuer_id, j->job_id, j->why);
		j->rc = 0;
		return;
	}
	pem = json_string_value(json_object_get(v, "pem_chain"));
	if (pem && x509pem_first_der(pem, &der, &len) == 0 && acme_ari_cert_id(der, len, out, err, sizeof err) != 0)
		out[0] = '\0';
	free(der);
	json_decref(v);
}

/* Whether the CA refused a newOrder for its replaces (r its answer). */
static bool replaces_refused(const struct http_response *r)
{
	struct acme_problem p;
	char err[200];
	bool yes;

	if (!r->body || acme_parse_problem(r->body, r->body_len, &p, err, sizeof err) != 0)
		return false;
	yes = acme_problem_about_replaces(&p);
	acme_problem_free(&p);
	return yes;
}

static int new_order(struct job *j, const char *replaces, struct http_response *r)
{
	const char *profile = cfg_s(j, "profile");
	char err[300], *payload;
	int rc;

	payload = acme_payload_new_order((const char *const *)j->names, j->nnames, *profile ? profile : NULL,
					 *replaces ? replaces : NULL, err, sizeof err);
	if (!payload)
		return fail(j, -1, "newOrder: %s", err);
	rc = post(j, j->dir.new_order, payload, false, r);
	free(payload);
	return rc;
}

static int order(struct job *j)
{
	struct http_response r = {0};
	struct acme_order o;
	char *payload, err[300], url[ACME_URL_MAX + 1], fin[ACME_URL_MAX + 1], replaces[ACME_CERT_ID_MAX] = "";
	const char *profile = cfg_s(j, "profile");
	int rc;

	if (*profile && !acme_directory_profile(&j->dir, profile))
		return fail(j, -1, "the CA offers no profile \"%s\"", profile);
	if (j->dir.renewal_info)
		replaced(j, replaces);
	if (*replaces)
		log_info("ACME issuer %s: job %s orders the replacement of %s", j->issuer_id, j->job_id, replaces);
	rc = new_order(j, replaces, &r);
	if (rc == 0 && r.status != 201 && *replaces && replaces_refused(&r)) {
		log_info("ACME issuer %s: job %s: the CA refused replaces %s: ordered again without it", j->issuer_id,
			 j->job_id, replaces);
		http_response_free(&r);
		rc = new_order(j, "", &r);
	}
	if (rc != 0)
		return rc;
	if (r.status != 201) {
		rc = problem(j, "newOrder", &r);
		http_response_free(&r);
		return rc;
	}
	if (!j->location[0]) {
		http_response_free(&r);
		return fail(j, -2, "newOrder: the CA gave no order URL");
	}
	snprintf(url, sizeof url, "%s", j->location);
	rc = acme_parse_order(r.body ? r.body : "", r.body_len, &o, err, sizeof err);
	http_response_free(&r);
	if (rc != 0)
		return fail(j, -2, "the new order: %s", err);
	for (size_t i = 0; i < o.nauthorizations && o.status == ACME_STATUS_PENDING; i++) {
		char a[ACME_URL_MAX + 1];

		snprintf(a, sizeof a, "%s", o.authorizations[i]);
		if (authorize(j, a) != 0) {
			acme_order_free(&o);
			return j->rc;
		}
	}
	/* every authorization valid: the order turns ready */
	if (o.status == ACME_STATUS_PENDING && order_poll(j, url, &o, ACME_STATUS_PENDING) != 0) {
		acme_order_free(&o);
		return j->rc;
	}
	if (o.status != ACME_STATUS_READY && o.status != ACME_STATUS_VALID) {
		rc = o.has_error ? fail(j, -1, "the order is %s: %s: %s", acme_status_name(o.status), o.error.type,
					o.error.detail)
				 : fail(j, -1, "the order is %s", acme_status_name(o.status));
		acme_order_free(&o);
		return rc;
	}
	if (o.status == ACME_STATUS_READY) {
		snprintf(fin, sizeof fin, "%s", o.finalize);
		payload = acme_payload_finalize(j->csr, j->csr_len, err, sizeof err);
		if (!payload) {
			acme_order_free(&o);
			return fail(j, -1, "finalize: %s", err);
		}
		rc = post(j, fin, payload, false, &r);
		free(payload);
		if (rc == 0 && r.status != 200)
			rc = problem(j, "finalize", &r);
		if (rc == 0) {
			acme_order_free(&o);
			if (acme_parse_order(r.body ? r.body : "", r.body_len, &o, err, sizeof err) != 0) {
				memset(&o, 0, sizeof o);
				rc = fail(j, -2, "the finalized order: %s", err);
			}
		}
		http_response_free(&r);
		if (rc != 0) {
			acme_order_free(&o);
			return rc;
		}
		if ((o.status == ACME_STATUS_PROCESSING || o.status == ACME_STATUS_READY) &&
		    order_poll(j, url, &o, o.status) != 0) {
			acme_order_free(&o);
			return j->rc;
		}
	}
	if (o.status != ACME_STATUS_VALID || !o.certificate) {
		rc = o.has_error ? fail(j, -1, "the order is %s: %s: %s", acme_status_name(o.status), o.error.type,
					o.error.detail)
				 : fail(j, -1, "the order is %s without a certificate", acme_status_name(o.status));
		acme_order_free(&o);
		return rc;
	}
	snprintf(url, sizeof url, "%s", o.certificate);
	acme_order_free(&o);
	return download(j, url);
}

/* revokeCert for the certificate in j->csr (its DER), by the account */
static int revoke_cert(struct job *j)
{
	struct http_response r = {0};
	char *payload, err[300];
	int rc;

	payload = acme_payload_revoke(j->csr, j->csr_len, j->reason, err, sizeof err);
	if (!payload)
		return fail(j, -1, "revokeCert: %s", err);
	rc = post(j, j->dir.revoke_cert, payload, false, &r);
	free(payload);
	if (rc != 0)
		return rc;
	if (r.status != 200) {
		struct acme_problem p;

		/* revoked before (by us, or by the CA): what was asked is so */
		if (r.body && acme_parse_problem(r.body, r.body_len, &p, err, sizeof err) == 0) {
			bool already = p.kind == ACME_ERR_ALREADY_REVOKED;

			acme_problem_free(&p);
			if (already) {
				http_response_free(&r);
				return 0;
			}
		}
		rc = problem(j, "revokeCert", &r);
	}
	http_response_free(&r);
	return rc;
}

/* RFC 9773 4.1: GET <renewalInfo>/<CertID>, unauthenticated. No
 * renewalInfo in the directory, or a 404: j->ari.window stays false. */
static int renewal_info(struct job *j)
{
	struct http_response r = {0};
	char url[ACME_URL_MAX + ACME_CERT_ID_MAX + 2], err[300];
	size_t n;
	int rc;

	if (!j->dir.renewal_info)
		return 0;
	j->ari.offered = true;
	n = strlen(j->dir.renewal_info);
	if (n && j->dir.renewal_info[n - 1] == '/')
		n--;
	snprintf(url, sizeof url, "%.*s/%s", (int)n, j->dir.renewal_info, j->ari_cert_id);
	j->retry_after = 0;
	rc = exchange(j, "GET", url, NULL, &r);
	j->ari.retry_after = j->retry_after;
	if (rc == 0 && r.status == 200) {
		if (acme_parse_renewal_info(r.body ? r.body : "", r.body_len, &j->ri, err, sizeof err) == 0) {
			j->ari.window = true;
			j->ari.start = j->ri.start;
			j->ari.end = j->ri.end;
			j->ari.explanation_url = j->ri.explanation_url;
		} else {
			rc = fail(j, -2, "%s: %s", url, err);
		}
	} else if (rc == 0 && r.status != 404) {
		rc = problem(j, url, &r);
	}
	http_response_free(&r);
	return rc;
}

static void *job_thread(void *arg)
{
	struct job *j = arg;
	struct call *c;

	if (*j->ari_cert_id)
		(void)(directory(j) == 0 && renewal_info(j) == 0);
	else if (directory(j) == 0 && account_key(j) == 0 && account(j) == 0)
		(void)(j->revoke ? revoke_cert(j)
		       : j->account_action == ACCOUNT_KEYCHANGE ? key_change(j)
		       : j->account_action == ACCOUNT_DEACTIVATE ? deactivate(j)
		       : order(j));
	cleanup(j);
	c = calloc(1, sizeof *c);
	if (!c || stopping()) {
		/* nothing to tell: the scheduler is going away */
		free(c);
		return NULL;
	}
	c->kind = CALL_DONE;
	c->job = j;
	pthread_mutex_lock(&A.mu);
	c->next = NULL;
	*A.tail = c;
	A.tail = &c->next;
	pthread_mutex_unlock(&A.mu);
	uv_async_send(&A.async);
	return NULL;
}

static void job_free(struct job *j)
{
	json_decref(j->cfg);
	if (j->secret_hex) {
		OPENSSL_cleanse(j->secret_hex, strlen(j->secret_hex));
		free(j->secret_hex);
	}
	for (size_t i = 0; i < j->nnames; i++)
		free(j->names[i]);
	free(j->names);
	free(j->csr);
	free(j->jwk);
	if (j->have_dir)
		acme_directory_free(&j->dir);
	acme_links_free(&j->links);
	acme_renewal_info_free(&j->ri);
	if (j->holds_account)
		account_release(j->issuer_id);
	free(j->res.der);
	free(j->res.chain_pem);
	free(j);
}

/* on the loop: the outcome to the job's owner */
static void job_finish(struct job *j)
{
	if (j->ari_done) {
		j->ari_done(j->arg, j->rc, j->why, &j->ari);
	} else if (j->rc == 0) {
		struct acme_result res = j->res;

		A.succeeded++;
		memset(&j->res, 0, sizeof j->res);
		j->done(j->arg, 0, "", &res);
	} else {
		A.failed++;
		j->done(j->arg, j->rc, j->why, NULL);
	}
	job_free(j);
}

/* the order's identifiers: the common name and the SANs, each once */
static int names(struct job *j, const struct acme_job *in)
{
	char *all = malloc(strlen(in->common_name) + in->sans_len + 2), *save = NULL, *t;

	j->names = calloc(ACME_IDENTIFIERS_MAX, sizeof *j->names);
	if (!all || !j->names) {
		free(all);
		return -1;
	}
	snprintf(all, strlen(in->common_name) + 2, "%s\n", in->common_name);
	memcpy(all + strlen(all), in->sans, in->sans_len);
	all[strlen(in->common_name) + 1 + in->sans_len] = '\0';
	for (t = strtok_r(all, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		bool dup = false;

		for (size_t i = 0; i < j->nnames; i++)
			dup = dup || strcasecmp(j->names[i], t) == 0;
		if (dup || !*t)
			continue;
		if (j->nnames == ACME_IDENTIFIERS_MAX) {
			free(all);
			return -1;
		}
		j->names[j->nnames++] = strdup(t);
	}
	free(all);
	return j->nnames ? 0 : -1;
}

/* A job made from in, not started yet (job_run); NULL when out of memory or
 * in has no names. */
static struct job *job_new(const struct acme_job *in, acme_done_cb done, void *arg)
{
	struct job *j = calloc(1, sizeof *j);
	json_error_t je;

	if (!j)
		return NULL;
	snprintf(j->job_id, sizeof j->job_id, "%s", in->job_id);
	snprintf(j->issuer_id, sizeof j->issuer_id, "%s", in->issuer_id);
	j->done = done;
	j->arg = arg;
	j->cfg = json_loads(in->issuer_config ? in->issuer_config : "{}", 0, &je);
	j->secret_hex = in->issuer_secret && *in->issuer_secret ? strdup(in->issuer_secret) : NULL;
	j->csr = malloc(in->csr_len ? in->csr_len : 1);
	if (!j->cfg || !json_is_object(j->cfg) || !j->csr || names(j, in) != 0) {
		job_free(j);
		return NULL;
	}
	memcpy(j->csr, in->csr, in->csr_len);
	j->csr_len = in->csr_len;
	snprintf(j->ua, sizeof j->ua, "certward-acme");
	j->hc = (struct http_client){
		.cacert_pem = cfg_s(j, "trust_anchors_pem"),
		.content_type = "application/jose+json",
		.user_agent = j->ua,
		.no_hints = 1,
		.timeout_s = 30,
		.max_body = 1024 * 1024,
	};
	return j;
}

/* j on a thread of its own; freed when it could not start */
static int job_run(struct job *j)
{
	pthread_attr_t at;
	pthread_t th;

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &at, job_thread, j) != 0) {
		pthread_attr_destroy(&at);
		job_free(j);
		return -1;
	}
	pthread_attr_destroy(&at);
	A.started++;
	return 0;
}

static int start(const struct acme_job *in, acme_done_cb done, void *arg, bool revoking, int reason)
{
	struct job *j = job_new(in, done, arg);

	if (!j)
		return -1;
	j->revoke = revoking;
	j->reason = reason;
	return job_run(j);
}

int acme_start(const struct acme_job *in, acme_done_cb done, void *arg)
{
	return start(in, done, arg, false, 0);
}

static const char *const reasons[] = {"unspecified", "keyCompromise", "caCompromise", "affiliationChanged",
				      "superseded", "cessationOfOperation", "certificateHold", NULL,
				      "removeFromCRL", "privilegeWithdrawn", "aACompromise"};

int acme_revoke_start(const struct acme_revocation *in, acme_done_cb done, void *arg)
{
	struct acme_job job = {
		.job_id = in->id,
		.issuer_id = in->issuer_id,
		.issuer_config = in->issuer_config,
		.issuer_secret = in->issuer_secret,
		.common_name = "revocation",
		.sans = "",
		.csr = in->der,
		.csr_len = in->der_len,
	};
	int reason = 0;

	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i] && strcmp(reasons[i], in->reason) == 0)
			reason = (int)i;
	return start(&job, done, arg, true, reason);
}

int acme_ari_start(const struct acme_ari_check *in, acme_ari_cb done, void *arg)
{
	struct acme_job job = {
		.job_id = in->id,
		.issuer_id = in->issuer_id,
		.issuer_config = in->issuer_config,
		.common_name = "renewal-info",
		.sans = "",
		.csr = (const uint8_t *)"",
	};
	struct job *j;

	if (!in->cert_id || !acme_ari_cert_id_ok(in->cert_id) || !(j = job_new(&job, NULL, arg)))
		return -1;
	snprintf(j->ari_cert_id, sizeof j->ari_cert_id, "%s", in->cert_id);
	j->ari_done = done;
	return job_run(j);
}

int acme_account_start(const struct acme_account_action *in, acme_done_cb done, void *arg)
{
	struct acme_job job = {
		.job_id = in->id,
		.issuer_id = in->issuer_id,
		.issuer_config = in->issuer_config,
		.issuer_secret = in->issuer_secret,
		.common_name = "account",
		.sans = "",
		.csr = (const uint8_t *)"",
	};
	struct job *j;

	if (!in->old_thumbprint || strlen(in->old_thumbprint) != ACME_THUMBPRINT_LEN ||
	    (!in->deactivate && (!in->new_alg || !*in->new_alg || strlen(in->new_alg) >= sizeof j->new_alg)))
		return -1;
	/* one run at a time on an issuer's account */
	if (!account_take(in->issuer_id))
		return -1;
	if (!(j = job_new(&job, done, arg))) {
		account_release(in->issuer_id);
		return -1;
	}
	j->holds_account = true;
	j->account_action = in->deactivate ? ACCOUNT_DEACTIVATE : ACCOUNT_KEYCHANGE;
	snprintf(j->new_alg, sizeof j->new_alg, "%s", in->deactivate ? "" : in->new_alg);
	snprintf(j->old_thumbprint, sizeof j->old_thumbprint, "%s", in->old_thumbprint);
	return job_run(j);
}

int acme_init(struct worker *w)
{
	A.w = w;
	A.tail = &A.head;
	if (uv_async_init(worker_loop(w), &A.async, on_async) != 0)
		return -1;
	A.async_on = true;
	return 0;
}

void acme_stop(void)
{
	pthread_mutex_lock(&A.mu);
	A.stopping = true;
	pthread_cond_broadcast(&A.cv);
	pthread_mutex_unlock(&A.mu);
	if (A.async_on) {
		uv_close((uv_handle_t *)&A.async, NULL);
		A.async_on = false;
	}
}

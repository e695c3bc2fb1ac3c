/* See jobs.h. */
#include "jobs.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <ctype.h>
#include <openssl/bn.h>
#include <openssl/mem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme_issuer.h"
#include "backoff.h"
#include "codec.h"
#include "csr_policy.h"
#include "log.h"
#include "loops.h"
#include "store_client.h"
#include "x509pem.h"

/* One job this scheduler runs, from its claim to its recorded outcome. */
struct run {
	char id[132], certificate_id[132], issuer_id[132], intermediate_id[68];
	char key_alg[12], key_size[12];
	char keygen_alg[20]; /* "" : the stored CSR is signed again */
	char *profile;       /* the certificate profile's record (JSON), "{}" without one */
	char *csr_pem;       /* the CSR of the version recorded */
	uint8_t *csr_der;
	size_t csr_len;
	char *common_name, *sans; /* for a new key: names newline-separated */
	size_t sans_len;
	/* the signed certificate */
	char serial[68], not_before[24], not_after[24], fingerprint[65];
	char *pem_chain;
	char *sealed_hex; /* the key the signer made, sealed; NULL when the client keeps its key */
	/* the job's own CSR (an ACME order for a client's or an agent's key),
	 * and whether the signer made its key (the sealed key stays in the
	 * database): the targets' agents keep neither key */
	bool job_csr, job_key;
	/* a record the store could not take just now (busy, restarting) is
	 * sent again: signing again would put a second signature in the ledger */
	struct backoff again;
	uv_timer_t timer;
	bool timer_on;
};

/* what the record of a signed certificate waits for before it gives up:
 * about two minutes of a store restarting (each try at most 5 s apart), so
 * a signature in the ledger is not thrown away for a short outage */
#define RECORD_TRIES 30
#define RECORD_DELAY_FIRST_MS 100
#define RECORD_DELAY_MAX_MS 5000

static struct {
	struct worker *w;
	struct loop *dispatch, *timeouts;
	char claimer[128]; /* jobs.claimed_by: this node's scheduler */
	unsigned concurrency, inflight;
	char job_timeout_s[24], agent_job_timeout_s[24];
	bool stopping;
	uint64_t claimed, handed, completed, retried, failed, lost;
} J;

static void run_free(struct run *r);

static void on_timer_closed(uv_handle_t *h)
{
	run_free(h->data);
}

static void run_free(struct run *r)
{
	if (r->timer_on) {
		/* freed by on_timer_closed */
		r->timer_on = false;
		uv_close((uv_handle_t *)&r->timer, on_timer_closed);
		return;
	}
	free(r->profile);
	free(r->csr_pem);
	free(r->csr_der);
	free(r->common_name);
	free(r->sans);
	free(r->pem_chain);
	free(r->sealed_hex);
	free(r);
}

/* The run is over (its outcome recorded, or left to the timeout loop):
 * room for the next claim. */
static void run_finish(struct run *r)
{
	run_free(r);
	J.inflight--;
	if (!J.stopping)
		loop_kick(J.dispatch);
}

/* ---- outcomes ---- */

static void on_failed(const struct store_outcome *o, void *arg)
{
	struct run *r = arg;
	json_t *j = o->error ? NULL : json_loadb((const char *)o->json, o->json_len, 0, NULL);
	const char *status = json_string_value(json_object_get(j, "status"));
	const char *when = json_string_value(json_object_get(j, "scheduled_at"));

	if (o->error)
		log_warn("job %s: its failure could not be recorded (%s): the timeout loop takes it back", r->id,
			 o->message && *o->message ? o->message : "store unavailable");
	else if (!status)
		J.lost++;
	else if (strcmp(status, "Failed") == 0)
		J.failed++;
	else {
		J.retried++;
		log_info("job %s: %s, retried at %s", r->id, status, when ? when : "?");
	}
	json_decref(j);
	run_finish(r);
}

/* The job failed; retried (after its backoff) when retryable and attempts
 * are left, else Failed for good: migration 0018 decides. */
static void run_fail(struct run *r, bool retryable, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void run_fail(struct run *r, bool retryable, const char *fmt, ...)
{
	char why[600];
	const char *p[4] = {r->id, J.claimer, why, retryable ? "true" : "false"};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	log_event(LOG_WARN, NULL, NULL, "job %s (certificate %s) failed: %s", r->id, r->certificate_id, why);
	if (store_call(J.w, "jobs.fail", p, 4, on_failed, r) != 0) {
		log_warn("job %s: its failure could not be recorded: the timeout loop takes it back", r->id);
		run_finish(r);
	}
}

static void record(struct run *r);

static void on_record_again(uv_timer_t *t)
{
	record(t->data);
}

/* The store could not take the record just now: again after a while
 * (true), or not (false: the job fails). A store that went away before
 * answering (ECONNRESET) may have committed it: jobs.renewed sent again
 * then answers done without recording twice. */
static bool record_later(struct run *r, int error)
{
	if (J.stopping || r->again.consecutive >= RECORD_TRIES ||
	    (error != EBUSY && error != ETIMEDOUT && error != ENOTCONN && error != EAGAIN && error != ECONNRESET))
		return false;
	if (!r->timer_on) {
		backoff_init(&r->again, RECORD_DELAY_FIRST_MS, RECORD_DELAY_MAX_MS, UINT64_MAX);
		uv_timer_init(worker_loop(J.w), &r->timer);
		r->timer.data = r;
		r->timer_on = true;
	}
	uv_timer_start(&r->timer, on_record_again, backoff_on_exit(&r->again, 0), 0);
	return true;
}

static void on_recorded(const struct store_outcome *o, void *arg)
{
	struct run *r = arg;
	json_t *j;
	const char *state;

	if (o->error && record_later(r, o->error))
		return;
	if (o->error) {
		/* signed (in the ledger) but not recorded: another attempt makes another */
		run_fail(r, true, "the certificate was signed (serial %s) but could not be recorded: %s", r->serial,
			 o->message && *o->message ? o->message : "store unavailable");
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	state = json_string_value(json_object_get(j, "state"));
	if (state && strcmp(state, "done") == 0) {
		J.completed++;
		log_info("job %s: certificate %s renewed, serial %s, %s key, %" JSON_INTEGER_FORMAT
			 " deployment job(s)", r->id, r->certificate_id, r->serial, r->sealed_hex ? "new" : "same",
			 json_integer_value(json_object_get(j, "deployment_jobs")));
	} else {
		J.lost++;
		log_warn("job %s: no longer this scheduler's (cancelled or timed out): serial %s not recorded", r->id,
			 r->serial);
	}
	json_decref(j);
	run_finish(r);
}

static void record(struct run *r)
{
	const char *p[13] = {
		r->id,		 J.claimer,	r->issuer_id, r->serial,  r->not_before, r->not_after, r->fingerprint,
		r->pem_chain, r->csr_pem, r->key_alg, r->key_size, r->sealed_hex,
		/* a key the signer made, or one of a CSR given to the job, is one no
		 * agent keeps for the targets: they get nothing (an agent that sent
		 * the CSR fetches the certificate itself) */
		r->sealed_hex || r->job_csr || r->job_key ? "false" : "true",
	};

	int rc = store_call(J.w, "jobs.renewed", p, 13, on_recorded, r);

	if (rc != 0 && !record_later(r, -rc))
		run_fail(r, true, "the certificate was signed (serial %s) but could not be recorded: store unavailable",
			 r->serial);
}

/* ---- the signer's signature ---- */

/* KEYGEN_SIGNED: the CSR made and the key sealed (the scheduler never gets
 * it in clear) */
static int take_key(struct run *r, const struct ipc_keygen_signed *k)
{
	if (k->key_pem.len)
		OPENSSL_cleanse((void *)k->key_pem.ptr, k->key_pem.len);
	free(r->csr_pem);
	r->csr_pem = x509pem_from_der(k->csr.ptr, k->csr.len, true);
	r->sealed_hex = malloc(2 * (size_t)k->sealed_key.len + 1);
	if (!r->csr_pem || !r->sealed_hex || !k->sealed_key.len)
		return -1;
	hex_encode(k->sealed_key.ptr, k->sealed_key.len, r->sealed_hex);
	return 0;
}

static void on_signed(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct run *r = arg;
	bool keygen = status == 0 && m && m->type == IPC_T_KEYGEN_SIGNED;
	const struct ipc_bytes *der, *chain;
	uint64_t not_before, not_after;

	if (fd >= 0)
		close(fd);
	if (status == 0 && m && m->type == IPC_T_ERROR) {
		run_fail(r, true, "%s: %.400s",
			 m->u.error.code == EINVAL ? "the signer refused"
			 : m->u.error.code == EIO ? "the signer cannot write its ledger"
						  : "the signer failed",
			 m->u.error.message);
		return;
	}
	if (!keygen && (status != 0 || !m || m->type != IPC_T_CERT_SIGNED)) {
		run_fail(r, true, "the signer is unavailable");
		return;
	}
	if (keygen && take_key(r, &m->u.keygen_signed) != 0) {
		run_fail(r, true, "the signer's answer could not be read (out of memory)");
		return;
	}
	der = keygen ? &m->u.keygen_signed.der : &m->u.cert_signed.der;
	chain = keygen ? &m->u.keygen_signed.chain_pem : &m->u.cert_signed.chain_pem;
	not_before = keygen ? m->u.keygen_signed.not_before : m->u.cert_signed.not_before;
	not_after = keygen ? m->u.keygen_signed.not_after : m->u.cert_signed.not_after;
	snprintf(r->serial, sizeof r->serial, "%s", keygen ? m->u.keygen_signed.serial : m->u.cert_signed.serial);
	snprintf(r->not_before, sizeof r->not_before, "%" PRIu64, not_before);
	snprintf(r->not_after, sizeof r->not_after, "%" PRIu64, not_after);
	if (x509pem_signed(der->ptr, der->len, chain->ptr, chain->len, r->fingerprint, &r->pem_chain) != 0) {
		run_fail(r, true, "the signed certificate (serial %s) could not be read", r->serial);
		return;
	}
	record(r);
}

static void sign(struct run *r)
{
	struct ipc_msg m = {.type = r->keygen_alg[0] ? IPC_T_KEYGEN_SIGN : IPC_T_CERT_SIGN};
	struct ipc_channel *ch = worker_peer(J.w, IPC_ROLE_SIGNER);

	if (r->keygen_alg[0]) {
		m.u.keygen_sign.profile.ptr = (const uint8_t *)r->profile;
		m.u.keygen_sign.profile.len = (uint32_t)strlen(r->profile);
		m.u.keygen_sign.issuer_id = r->issuer_id;
		m.u.keygen_sign.intermediate_id = r->intermediate_id;
		m.u.keygen_sign.common_name = r->common_name;
		m.u.keygen_sign.sans.ptr = (const uint8_t *)r->sans;
		m.u.keygen_sign.sans.len = (uint32_t)r->sans_len;
		m.u.keygen_sign.key_algorithm = r->keygen_alg;
	} else {
		m.u.cert_sign.csr.ptr = r->csr_der;
		m.u.cert_sign.csr.len = (uint32_t)r->csr_len;
		m.u.cert_sign.profile.ptr = (const uint8_t *)r->profile;
		m.u.cert_sign.profile.len = (uint32_t)strlen(r->profile);
		m.u.cert_sign.issuer_id = r->issuer_id;
		m.u.cert_sign.intermediate_id = r->intermediate_id;
	}
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(J.w), on_signed, r) != 0)
		run_fail(r, true, "the signer is unavailable");
}

/* ---- a certificate from an ACME CA (acme_issuer.c) ---- */

/* an ASN1_TIME as Unix seconds (0 when it cannot be read) */
static int64_t unix_of(const ASN1_TIME *t)
{
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int days = 0, secs = 0;
	int ok = epoch && ASN1_TIME_diff(&days, &secs, epoch, t);

	ASN1_TIME_free(epoch);
	return ok ? (int64_t)days * 86400 + secs : 0;
}

static void on_acme(void *arg, int rc, const char *why, struct acme_result *res)
{
	struct run *r = arg;
	const uint8_t *p;
	X509 *x;

	if (rc != 0) {
		run_fail(r, rc == -2, "%s", why);
		return;
	}
	p = res->der;
	x = d2i_X509(NULL, &p, (long)res->der_len);
	if (!x || x509pem_signed(res->der, res->der_len, (const uint8_t *)res->chain_pem, res->chain_len,
				 r->fingerprint, &r->pem_chain) != 0) {
		X509_free(x);
		free(res->der);
		free(res->chain_pem);
		run_fail(r, true, "the CA's certificate could not be read");
		return;
	}
	{
		const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		int64_t nb = unix_of(X509_get0_notBefore(x)), na = unix_of(X509_get0_notAfter(x));

		for (char *q = hex; q && *q; q++)
			*q = (char)tolower((unsigned char)*q);
		snprintf(r->serial, sizeof r->serial, "%s", hex ? hex : "");
		OPENSSL_free(hex);
		BN_free(bn);
		snprintf(r->not_before, sizeof r->not_before, "%" PRId64, nb);
		snprintf(r->not_after, sizeof r->not_after, "%" PRId64, na);
	}
	X509_free(x);
	free(res->der);
	free(res->chain_pem);
	record(r);
}

/* the CA chooses the lifetime: the profile's rules on validity are checked
 * for the usual 90 days of a public CA (within the profile's max_ttl_seconds) */
#define ACME_VALIDITY_ASSUMED_S (90 * 86400)

static void acme_run(struct run *r, json_t *o)
{
	struct csr_checked c;
	char why[300];
	struct acme_job job = {
		.job_id = r->id,
		.issuer_id = r->issuer_id,
		.common_name = r->common_name,
		.sans = r->sans,
		.sans_len = r->sans_len,
		.csr = r->csr_der,
		.csr_len = r->csr_len,
		.issuer_secret = json_string_value(json_object_get(o, "issuer_secret")),
	};
	char *config;

	/* the CA does not know the profile: the CSR is held to it here, as the
	 * signer holds the CSRs it signs (and the version's key is named) */
	if (csr_policy_check(r->csr_der, r->csr_len, r->profile, strlen(r->profile), 0, ACME_VALIDITY_ASSUMED_S, &c,
			     why, sizeof why) != 0) {
		run_fail(r, false, "the CSR breaks the certificate profile: %s", why);
		return;
	}
	snprintf(r->key_alg, sizeof r->key_alg, "%s", c.key_alg);
	snprintf(r->key_size, sizeof r->key_size, "%d", c.key_bits);
	csr_checked_free(&c);
	config = json_dumps(json_object_get(o, "issuer_config"), JSON_COMPACT);
	job.issuer_config = config;
	if (!config || acme_start(&job, on_acme, r) != 0)
		run_fail(r, true, "the ACME client could not start (out of memory or threads)");
	free(config);
}

/* KEYGEN_CSR_MADE: the new key sealed, its CSR; then the order */
struct key_wait {
	struct run *r;
	json_t *o;
};

static void on_key_made(int status, struct ipc_msg *m, int fd, void *arg)
{
	struct key_wait *k = arg;
	struct run *r = k->r;
	json_t *o = k->o;
	const struct ipc_keygen_csr_made *made;

	free(k);
	if (fd >= 0)
		close(fd);
	if (status == 0 && m && m->type == IPC_T_ERROR) {
		run_fail(r, m->u.error.code != EINVAL, "the signer refused to make the key: %.400s", m->u.error.message);
	} else if (status != 0 || !m || m->type != IPC_T_KEYGEN_CSR_MADE) {
		run_fail(r, true, "the signer is unavailable");
	} else {
		made = &m->u.keygen_csr_made;
		if (made->key_pem.len)
			OPENSSL_cleanse((void *)made->key_pem.ptr, made->key_pem.len);
		r->csr_pem = x509pem_from_der(made->csr.ptr, made->csr.len, true);
		r->csr_der = malloc(made->csr.len ? made->csr.len : 1);
		r->sealed_hex = malloc(2 * (size_t)made->sealed_key.len + 1);
		if (!r->csr_pem || !r->csr_der || !r->sealed_hex || !made->sealed_key.len) {
			run_fail(r, true, "the signer's answer could not be read (out of memory)");
		} else {
			memcpy(r->csr_der, made->csr.ptr, made->csr.len);
			r->csr_len = made->csr.len;
			hex_encode(made->sealed_key.ptr, made->sealed_key.len, r->sealed_hex);
			acme_run(r, o);
		}
	}
	json_decref(o);
}

static void acme_key(struct run *r, json_t *o)
{
	struct ipc_msg m = {.type = IPC_T_KEYGEN_CSR};
	struct ipc_channel *ch = worker_peer(J.w, IPC_ROLE_SIGNER);
	struct key_wait *k = malloc(sizeof *k);

	if (!k) {
		run_fail(r, true, "out of memory");
		return;
	}
	k->r = r;
	k->o = json_incref(o);
	m.u.keygen_csr.profile.ptr = (const uint8_t *)r->profile;
	m.u.keygen_csr.profile.len = (uint32_t)strlen(r->profile);
	m.u.keygen_csr.common_name = r->common_name;
	m.u.keygen_csr.sans.ptr = (const uint8_t *)r->sans;
	m.u.keygen_csr.sans.len = (uint32_t)r->sans_len;
	m.u.keygen_csr.key_algorithm = r->keygen_alg;
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(J.w), on_key_made, k) != 0) {
		json_decref(o);
		free(k);
		run_fail(r, true, "the signer is unavailable");
	}
}

/* ---- a claimed job ---- */

/* The signer's name for a key like the current one ("ecdsa-p256"). */
static void keygen_name(const char *alg, int bits, char *out, size_t cap)
{
	if (alg && strcmp(alg, "RSA") == 0)
		snprintf(out, cap, "rsa-%d", bits >= 4096 ? 4096 : bits >= 3072 ? 3072 : 2048);
	else if (alg && strcmp(alg, "Ed25519") == 0)
		snprintf(out, cap, "ed25519");
	else
		snprintf(out, cap, "%s", bits == 384 ? "ecdsa-p384" : "ecdsa-p256");
}

static char *names_of(json_t *sans, size_t *len)
{
	char *out = NULL;
	FILE *f = open_memstream(&out, len);
	json_t *v;
	size_t i;

	if (!f)
		return NULL;
	json_array_foreach(sans, i, v)
		if (json_is_string(v))
			fprintf(f, "%s%s", i ? "\n" : "", json_string_value(v));
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

#define STR(o, k) (json_string_value(json_object_get((o), (k))) ? json_string_value(json_object_get((o), (k))) : "")

static void run_start(json_t *o)
{
	struct run *r = calloc(1, sizeof *r);
	json_t *profile = json_object_get(o, "profile");
	const char *csr = json_string_value(json_object_get(o, "csr_pem"));
	const char *type = STR(o, "issuer_type"), *ica = json_string_value(json_object_get(o, "intermediate_state"));
	const char *alg = json_string_value(json_object_get(o, "key_algorithm")), *why = NULL;
	int bits = (int)json_integer_value(json_object_get(o, "key_size"));

	if (!r) {
		log_error("job %s: out of memory: the timeout loop takes it back", STR(o, "id"));
		return;
	}
	J.inflight++;
	J.claimed++;
	snprintf(r->id, sizeof r->id, "%s", STR(o, "id"));
	snprintf(r->certificate_id, sizeof r->certificate_id, "%s", STR(o, "certificate_id"));
	snprintf(r->issuer_id, sizeof r->issuer_id, "%s", STR(o, "issuer_id"));
	snprintf(r->intermediate_id, sizeof r->intermediate_id, "%s", STR(o, "intermediate_id"));
	snprintf(r->key_alg, sizeof r->key_alg, "%s", alg ? alg : "");
	snprintf(r->key_size, sizeof r->key_size, "%d", bits);
	r->profile = json_is_object(profile) ? json_dumps(profile, JSON_COMPACT) : strdup("{}");
	r->common_name = strdup(STR(o, "common_name"));
	r->sans = names_of(json_object_get(o, "sans"), &r->sans_len);
	if (!r->profile || !r->common_name || !r->sans) {
		run_fail(r, true, "out of memory");
		return;
	}
	if (json_is_true(json_object_get(o, "closed"))) {
		run_fail(r, false, "the certificate is revoked or archived: it is not renewed");
		return;
	}
	if (strcmp(type, "Local") != 0 && strcmp(type, "ACME") != 0) {
		run_fail(r, false,
			 "issuer %s is of type %s: certward issues only from its own CA (Local) and from ACME CAs so far",
			 r->issuer_id, type);
		return;
	}
	if (!json_is_true(json_object_get(o, "issuer_enabled"))) {
		run_fail(r, true, "issuer %s is disabled", r->issuer_id);
		return;
	}
	if (r->intermediate_id[0] && (!ica || strcmp(ica, "active") != 0)) {
		run_fail(r, true, "the issuer's intermediate CA %s is %s: it signs nothing new", r->intermediate_id,
			 ica ? ica : "missing");
		return;
	}
	if (strcmp(type, "ACME") == 0) {
		const char *why2 = NULL;
		int rc2;

		r->job_csr = json_is_true(json_object_get(o, "job_csr"));
		r->job_key = json_is_true(json_object_get(o, "job_key"));
		if (json_is_true(json_object_get(o, "server_key"))) {
			/* the signer made the current key: it makes the next one and
			 * its CSR, for the CA to sign */
			keygen_name(alg, bits, r->keygen_alg, sizeof r->keygen_alg);
			acme_key(r, o);
			return;
		}
		/* the CA signs the CSR of the key the agent or the client keeps */
		if (!csr) {
			run_fail(r, false, "an ACME issuer signs a CSR: this certificate has none to order with");
			return;
		}
		rc2 = x509pem_csr_der(csr, &r->csr_der, &r->csr_len, &why2);
		if (rc2 != 0 || !(r->csr_pem = strdup(csr))) {
			run_fail(r, rc2 == -1 ? false : true, "the stored CSR: %s", rc2 == -1 ? why2 : "out of memory");
			return;
		}
		acme_run(r, o);
		return;
	}
	if (json_is_true(json_object_get(o, "server_key"))) {
		/* the signer made the current key: it makes the next one */
		keygen_name(alg, bits, r->keygen_alg, sizeof r->keygen_alg);
	} else if (!csr) {
		run_fail(r, false, "the certificate has no version with a CSR or a key made by the signer to renew from");
		return;
	} else {
		int rc = x509pem_csr_der(csr, &r->csr_der, &r->csr_len, &why);

		if (rc != 0 || !(r->csr_pem = strdup(csr))) {
			run_fail(r, rc == -1 ? false : true, "the stored CSR: %s", rc == -1 ? why : "out of memory");
			return;
		}
	}
	sign(r);
}

/* ---- the loops ---- */

static void on_claimed(const struct store_outcome *o, void *arg)
{
	json_t *j, *v;
	size_t i, n;
	json_int_t handed;

	(void)arg;
	if (o->error) {
		loop_done(J.dispatch, 0, NULL, o->message && *o->message ? o->message : "store unavailable");
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	n = json_array_size(json_object_get(j, "jobs"));
	handed = json_integer_value(json_object_get(j, "handed"));
	J.handed += (uint64_t)handed;
	json_array_foreach(json_object_get(j, "jobs"), i, v)
		run_start(v);
	json_decref(j);
	loop_done(J.dispatch, n + (uint64_t)handed, "job(s) claimed", NULL);
}

/* Claims what this node has room for. */
static void dispatch(struct loop *l, void *arg)
{
	char limit[12];
	const char *p[2] = {J.claimer, limit};

	(void)arg;
	if (J.stopping || J.inflight >= J.concurrency) {
		loop_done(l, 0, NULL, NULL);
		return;
	}
	snprintf(limit, sizeof limit, "%u", J.concurrency - J.inflight);
	if (store_call(J.w, "jobs.claim", p, 2, on_claimed, NULL) != 0)
		loop_done(l, 0, NULL, "the store is unavailable");
}

static void on_timed_out(const struct store_outcome *o, void *arg)
{
	json_t *j;

	(void)arg;
	if (o->error) {
		loop_done(J.timeouts, 0, NULL, o->message && *o->message ? o->message : "store unavailable");
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	loop_done(J.timeouts, (uint64_t)json_integer_value(json_object_get(j, "timed_out")), "job(s) timed out", NULL);
	json_decref(j);
}

static void check_timeouts(struct loop *l, void *arg)
{
	const char *p[2] = {J.job_timeout_s, J.agent_job_timeout_s};

	(void)arg;
	if (store_call(J.w, "jobs.timeouts", p, 2, on_timed_out, NULL) != 0)
		loop_done(l, 0, NULL, "the store is unavailable");
}

int jobs_start(struct worker *w, const struct cfg *section)
{
	static const struct loop_def dispatch_def = {
		.name = "job_dispatch",
		.interval_key = "dispatch_interval",
		.leader_only = false, /* every node claims: SKIP LOCKED */
		.run = dispatch,
	};
	static const struct loop_def timeouts_def = {
		.name = "job_timeouts",
		.interval_key = "job_timeout_check",
		.leader_only = true,
		.run = check_timeouts,
	};
	char host[64] = "";

	J.w = w;
	J.concurrency = (unsigned)cfg_int(section, "scheduler", "job_concurrency");
	if (J.concurrency == 0)
		J.concurrency = 1;
	snprintf(J.job_timeout_s, sizeof J.job_timeout_s, "%" PRIu64,
		 cfg_duration_ms(section, "scheduler", "job_timeout") / 1000);
	snprintf(J.agent_job_timeout_s, sizeof J.agent_job_timeout_s, "%" PRIu64,
		 cfg_duration_ms(section, "scheduler", "agent_job_timeout") / 1000);
	if (gethostname(host, sizeof host - 1) != 0 || !host[0])
		snprintf(host, sizeof host, "scheduler");
	/* the node and process that claims: two nodes on one host differ by pid */
	snprintf(J.claimer, sizeof J.claimer, "%.64s/%ld", host, (long)getpid());
	J.dispatch = loop_register(&dispatch_def);
	J.timeouts = loop_register(&timeouts_def);
	if (!J.dispatch || !J.timeouts) {
		log_error("out of memory registering the job loops");
		return -1;
	}
	if (acme_init(w) != 0) {
		log_error("cannot start the ACME client's channel to the event loop");
		return -1;
	}
	return 0;
}

void jobs_metrics(struct strbuf *out)
{
	strbuf_printf(out, "scheduler_jobs_running %u\n", J.inflight);
	strbuf_printf(out, "scheduler_jobs_claimed_total %" PRIu64 "\n", J.claimed);
	strbuf_printf(out, "scheduler_jobs_handed_to_agents_total %" PRIu64 "\n", J.handed);
	strbuf_printf(out, "scheduler_jobs_completed_total %" PRIu64 "\n", J.completed);
	strbuf_printf(out, "scheduler_jobs_retried_total %" PRIu64 "\n", J.retried);
	strbuf_printf(out, "scheduler_jobs_failed_total %" PRIu64 "\n", J.failed);
	strbuf_printf(out, "scheduler_jobs_lost_total %" PRIu64 "\n", J.lost);
}

void jobs_stop(void)
{
	/* runs in flight end when their channels close (their requests fail) */
	J.stopping = true;
	acme_stop();
}

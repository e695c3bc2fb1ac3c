#include "jobs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "build_config.h"
#include "deploy.h"
#include "fsutil.h"
#include "keys.h"
#include "runner.h"
#include "log.h"
#include "util.h"

/* ---- the api's availability ---------------------------------------------- */

void agent_api_failed(struct agent_ctx *ctx)
{
	uint64_t delay = backoff_on_exit(&ctx->backoff, 0);
	uint32_t r = 0;

	/* full delay halved plus a random half: agents that lost the api
	 * together do not come back together */
	RAND_bytes((uint8_t *)&r, sizeof r);
	delay = delay / 2 + (delay / 2 ? r % (delay / 2 + 1) : 0);
	ctx->retry_at = now_ms() + delay;
	log_event(LOG_INFO, NULL, NULL, "api unreachable: next attempt in %llums",
		  (unsigned long long)delay);
}

void agent_api_succeeded(struct agent_ctx *ctx)
{
	if (ctx->backoff.consecutive)
		backoff_init(&ctx->backoff, ctx->backoff.initial_ms, ctx->backoff.max_ms,
			     ctx->backoff.stable_after_ms);
	ctx->retry_at = 0;
}

int agent_api_paused(const struct agent_ctx *ctx)
{
	return ctx->retry_at && now_ms() < ctx->retry_at;
}

/* ---- helpers ------------------------------------------------------------- */

static void crash_hook(enum job_phase p)
{
#if CERTWARD_TEST_HOOKS
	const char *at = getenv("CERTWARD_AGENT_CRASH_AT");

	if (at && strcmp(at, job_phase_name(p)) == 0) {
		log_event(LOG_WARN, NULL, NULL, "test hook: killed after journalling %s",
			  job_phase_name(p));
		raise(SIGKILL);
	}
#else
	(void)p;
#endif
}

static int set_phase(struct journal *j, enum job_phase p)
{
	char why[512];

	if (journal_set_phase(j, p, why, sizeof why) != 0) {
		log_event(LOG_ERROR, NULL, NULL, "job %s: cannot journal %s: %s", j->job.id,
			  job_phase_name(p), why);
		return -1;
	}
	log_event(LOG_DEBUG, NULL, NULL, "job %s: %s", j->job.id, job_phase_name(p));
	crash_hook(p);
	return 0;
}

/* The job's outcome, journalled as deployed: what gets reported. */
static int set_result(struct journal *j, int ok, const char *text)
{
	size_t n = strlen(text);

	while (n > 0 && text[n - 1] == '\n')
		n--;
	if (n > JOURNAL_ERROR_MAX)
		n = JOURNAL_ERROR_MAX;
	memcpy(j->result_error, text, n);
	j->result_error[n] = 0;
	text_sanitize(j->result_error);
	j->result_ok = ok;
	return set_phase(j, PHASE_DEPLOYED);
}

static int file_exists(const struct journal *j, const char *name)
{
	char path[PATH_MAX + 32];

	journal_file(j, name, path, sizeof path);
	return access(path, F_OK) == 0;
}

/* A call the job depends on: 0 with *r for an answer the caller handles,
 * -1 when the api is unreachable or answers 5xx (retry later). */
static int job_call(struct agent_ctx *ctx, struct journal *j, const char *method, const char *path,
		    const char *body, size_t len, struct http_response *r)
{
	char why[512];
	enum api_outcome o = api_call(&ctx->api, method, path, body, len, r, why, sizeof why);

	if (o == API_ANSWERED && r->status < 500) {
		agent_api_succeeded(ctx);
		return 0;
	}
	if (o == API_ANSWERED) {
		char problem[512];

		api_problem(r, problem, sizeof problem);
		log_event(LOG_WARN, NULL, NULL, "job %s: %s %s: %s", j->job.id, method, path, problem);
		http_response_free(r);
	} else {
		log_event(LOG_WARN, NULL, NULL, "job %s: %s %s: %s", j->job.id, method, path, why);
	}
	agent_api_failed(ctx);
	return -1;
}

/* The certificate and chain of an answer, for the job's key: written to
 * the job directory and to the key store (state_dir/certs/<id>/). 0, or -1
 * when the certificate is not for KEY (WHY). */
static int keep_certificate(struct agent_ctx *ctx, struct journal *j, const json_t *answer,
			    EVP_PKEY *key, char *why, size_t whylen)
{
	const char *leaf = json_string_value(json_object_get(answer, "certificate_pem"));
	const char *chain = json_string_value(json_object_get(answer, "chain_pem"));
	char path[PATH_MAX + 64], store[PATH_MAX];
	X509 *x;
	int ok;

	if (!leaf) {
		snprintf(why, whylen, "the answer has no certificate_pem");
		return -1;
	}
	x = cert_from_pem(leaf, strlen(leaf));
	ok = x && cert_matches_key(x, key);
	if (ok && cert_serial_hex(x, j->serial, sizeof j->serial) != 0)
		j->serial[0] = 0;
	X509_free(x);
	if (!ok) {
		snprintf(why, whylen, "the certificate is not for the key made for this job");
		return -1;
	}
	journal_file(j, "chain.pem", path, sizeof path);
	if (atomic_write(path, chain ? chain : "", chain ? strlen(chain) : 0, 0644, NULL, why, whylen) != 0)
		return -1;
	journal_file(j, "cert.pem", path, sizeof path);
	if (atomic_write(path, leaf, strlen(leaf), 0644, NULL, why, whylen) != 0)
		return -1;
	/* the key store: a later Deployment job of this certificate finds its
	 * key here */
	snprintf(store, sizeof store, "%s/certs/%s", ctx->cfg.state_dir, j->job.certificate_id);
	if (mkdir_p(store, 0700) == 0) {
		char w[256];

		snprintf(path, sizeof path, "%s/key.pem", store);
		if (key_save(key, path, w, sizeof w) == 0) {
			snprintf(path, sizeof path, "%s/chain.pem", store);
			(void)atomic_write(path, chain ? chain : "", chain ? strlen(chain) : 0, 0644, NULL, w,
					   sizeof w);
			snprintf(path, sizeof path, "%s/cert.pem", store);
			(void)atomic_write(path, leaf, strlen(leaf), 0644, NULL, w, sizeof w);
		}
	}
	return 0;
}

static EVP_PKEY *job_key(struct journal *j)
{
	char path[PATH_MAX + 32];

	journal_file(j, "key.pem", path, sizeof path);
	return key_load(path);
}

/* ---- the steps ----------------------------------------------------------- */

enum step { STEP_NEXT, STEP_WAIT, STEP_STUCK };

static enum step send_csr(struct agent_ctx *ctx, struct journal *j, EVP_PKEY *key, int may_recover);

/* Whether a 202 to a CSR says the certificate is being ordered (an ACME
 * issuer) rather than carrying it. */
static int ordered_answer(const struct http_response *r)
{
	json_t *a = api_json(r);
	const char *st = json_string_value(json_object_get(a, "status"));
	int yes = st && strcmp(st, "ordered") == 0;

	json_decref(a);
	return yes;
}

/* GET the certificate signed for an earlier CSR whose answer was lost. */
static enum step recover_certificate(struct agent_ctx *ctx, struct journal *j, EVP_PKEY *key,
				     const struct work_job *listed, int may_resend)
{
	char path[512], why[512];
	struct http_response r = {0};
	json_t *answer = NULL;
	enum step s = STEP_STUCK;
	int awaiting = listed && strcmp(listed->status, "AwaitingCSR") == 0;

	snprintf(path, sizeof path, "/api/v1/agents/%s/certificates/%s", ctx->st.agent_id,
		 j->job.certificate_id);
	if (job_call(ctx, j, "GET", path, NULL, 0, &r) != 0)
		return STEP_WAIT;
	if (r.status == 200) {
		answer = api_json(&r);
		if (keep_certificate(ctx, j, answer, key, why, sizeof why) == 0) {
			log_event(LOG_INFO, NULL, NULL, "job %s: certificate %s recovered (serial %s)",
				  j->job.id, j->job.certificate_id, j->serial);
			s = set_phase(j, PHASE_RECEIVED) == 0 ? STEP_NEXT : STEP_STUCK;
			goto out;
		}
	} else {
		api_problem(&r, why, sizeof why);
	}
	{
		char marker[PATH_MAX + 32];

		journal_file(j, "ordered", marker, sizeof marker);
		if (access(marker, F_OK) == 0) {
			if (listed && !awaiting) {
				/* the CA's order is under way (Pending or Running) */
				s = STEP_WAIT;
				goto out;
			}
			if (awaiting) {
				/* the order failed and the job waits for a new CSR */
				(void)unlink(marker);
				log_event(LOG_INFO, NULL, NULL, "job %s: the order failed; a new CSR is sent", j->job.id);
				s = send_csr(ctx, j, key, 0);
				goto out;
			}
			snprintf(why, sizeof why, "the CA's order ended without a certificate for this key");
		}
	}
	if (awaiting && may_resend) {
		log_event(LOG_INFO, NULL, NULL, "job %s: no certificate for the kept key (%s): CSR sent again",
			  j->job.id, why);
		s = send_csr(ctx, j, key, 0);
		goto out;
	}
	{
		char msg[768];

		snprintf(msg, sizeof msg, "no certificate for the key kept for this job: %s", why);
		s = set_result(j, 0, msg) == 0 ? STEP_NEXT : STEP_STUCK;
	}
out:
	json_decref(answer);
	http_response_free(&r);
	return s;
}

static enum step send_csr(struct agent_ctx *ctx, struct journal *j, EVP_PKEY *key, int may_recover)
{
	char why[512], path[256];
	const char *cn = j->job.common_name[0] ? j->job.common_name : NULL;
	char *csr = csr_make(key, cn, (const char *const *)j->job.sans, j->job.nsans, why, sizeof why);
	struct http_response r = {0};
	json_t *body = NULL, *answer = NULL;
	char *text = NULL;
	enum step s = STEP_STUCK;

	if (!csr) {
		log_event(LOG_ERROR, NULL, NULL, "job %s: %s", j->job.id, why);
		return set_result(j, 0, why) == 0 ? STEP_NEXT : STEP_STUCK;
	}
	body = json_pack("{s:s, s:s, s:s}", "job_id", j->job.id, "certificate_id",
			 j->job.certificate_id, "csr_pem", csr);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text)
		goto out;
	if (j->phase != PHASE_CSR_SENT && set_phase(j, PHASE_CSR_SENT) != 0)
		goto out;
	snprintf(path, sizeof path, "/api/v1/agents/%s/csr", ctx->st.agent_id);
	if (job_call(ctx, j, "POST", path, text, strlen(text), &r) != 0) {
		s = STEP_WAIT;
		goto out;
	}
	if (r.status == 202 && ordered_answer(&r)) {
		char path2[PATH_MAX + 32];

		/* an ACME issuer: the CA signs later; the certificate is fetched
		 * once the job is done (recover_certificate) */
		journal_file(j, "ordered", path2, sizeof path2);
		if (atomic_write(path2, "", 0, 0600, NULL, why, sizeof why) != 0) {
			log_event(LOG_ERROR, NULL, NULL, "job %s: %s", j->job.id, why);
			goto out;
		}
		log_event(LOG_INFO, NULL, NULL, "job %s: CSR accepted; the certificate is being ordered from the CA",
			  j->job.id);
		s = STEP_WAIT;
		goto out;
	}
	if (r.status == 202 || r.status == 200 || r.status == 201) {
		answer = api_json(&r);
		if (keep_certificate(ctx, j, answer, key, why, sizeof why) != 0) {
			log_event(LOG_ERROR, NULL, NULL, "job %s: %s", j->job.id, why);
			s = set_result(j, 0, why) == 0 ? STEP_NEXT : STEP_STUCK;
			goto out;
		}
		log_event(LOG_INFO, NULL, NULL, "job %s: certificate %s issued (serial %s)", j->job.id,
			  j->job.certificate_id, j->serial);
		s = set_phase(j, PHASE_RECEIVED) == 0 ? STEP_NEXT : STEP_STUCK;
		goto out;
	}
	if (r.status == 409 && may_recover) {
		/* signed already: our earlier CSR's answer was lost */
		http_response_free(&r);
		s = recover_certificate(ctx, j, key, NULL, 0);
		goto out;
	}
	{
		char problem[768], msg[1024];

		api_problem(&r, problem, sizeof problem);
		snprintf(msg, sizeof msg, "CSR refused: %s", problem);
		log_event(LOG_WARN, NULL, NULL, "job %s: %s", j->job.id, msg);
		if (r.status == 401 || r.status == 403) {
			/* our identity, not the job: keep it */
			s = STEP_WAIT;
			goto out;
		}
		s = set_result(j, 0, msg) == 0 ? STEP_NEXT : STEP_STUCK;
	}
out:
	free(csr);
	free(text);
	json_decref(body);
	json_decref(answer);
	http_response_free(&r);
	return s;
}

/* A Deployment job: no new key; the certificate's current version and the
 * key this agent keeps for it. */
static enum step fetch_for_deployment(struct agent_ctx *ctx, struct journal *j)
{
	char path[PATH_MAX + 64], why[512];
	struct http_response r = {0};
	json_t *answer = NULL;
	EVP_PKEY *key;
	enum step s = STEP_STUCK;

	snprintf(path, sizeof path, "%s/certs/%s/key.pem", ctx->cfg.state_dir, j->job.certificate_id);
	key = key_load(path);
	if (!key)
		return set_result(j, 0, "this agent keeps no key for the certificate") == 0 ? STEP_NEXT
											 : STEP_STUCK;
	snprintf(path, sizeof path, "/api/v1/agents/%s/certificates/%s", ctx->st.agent_id,
		 j->job.certificate_id);
	if (job_call(ctx, j, "GET", path, NULL, 0, &r) != 0) {
		EVP_PKEY_free(key);
		return STEP_WAIT;
	}
	if (r.status != 200) {
		char problem[512], msg[768];

		api_problem(&r, problem, sizeof problem);
		snprintf(msg, sizeof msg, "cannot fetch the certificate: %s", problem);
		s = set_result(j, 0, msg) == 0 ? STEP_NEXT : STEP_STUCK;
		goto out;
	}
	answer = api_json(&r);
	journal_file(j, "key.pem", path, sizeof path);
	if (key_save(key, path, why, sizeof why) != 0) {
		log_event(LOG_ERROR, NULL, NULL, "job %s: %s", j->job.id, why);
		goto out;
	}
	if (keep_certificate(ctx, j, answer, key, why, sizeof why) != 0) {
		s = set_result(j, 0, why) == 0 ? STEP_NEXT : STEP_STUCK;
		goto out;
	}
	s = set_phase(j, PHASE_RECEIVED) == 0 ? STEP_NEXT : STEP_STUCK;
out:
	json_decref(answer);
	http_response_free(&r);
	EVP_PKEY_free(key);
	return s;
}

static enum step start(struct agent_ctx *ctx, struct journal *j, const struct work_job *listed)
{
	char path[PATH_MAX + 32], why[512];
	EVP_PKEY *key;
	enum step s;

	if (strcmp(j->job.type, "Deployment") == 0)
		return fetch_for_deployment(ctx, j);
	journal_file(j, "key.pem", path, sizeof path);
	key = key_load(path);
	if (!key) {
		key = key_generate(j->job.key_alg, j->job.key_bits, why, sizeof why);
		if (!key)
			return set_result(j, 0, why) == 0 ? STEP_NEXT : STEP_STUCK;
		/* on disk before the CSR leaves: a lost answer can be matched */
		if (key_save(key, path, why, sizeof why) != 0) {
			log_event(LOG_ERROR, NULL, NULL, "job %s: %s", j->job.id, why);
			EVP_PKEY_free(key);
			return STEP_STUCK;
		}
	}
	(void)listed;
	s = send_csr(ctx, j, key, 1);
	EVP_PKEY_free(key);
	return s;
}

static enum step recover(struct agent_ctx *ctx, struct journal *j, const struct work_job *listed)
{
	EVP_PKEY *key = job_key(j);
	enum step s;

	if (!key)
		return start(ctx, j, listed);
	s = recover_certificate(ctx, j, key, listed, 1);
	EVP_PKEY_free(key);
	return s;
}

static enum step deploy(struct agent_ctx *ctx, struct journal *j)
{
	struct strbuf out;
	int rc;

	if (!j->serial[0]) {
		char path[PATH_MAX + 32];
		size_t len = 0;
		char *pem;
		X509 *x;

		journal_file(j, "cert.pem", path, sizeof path);
		pem = read_file_max(path, 1u << 20, &len);
		x = pem ? cert_from_pem(pem, len) : NULL;
		if (!x || cert_serial_hex(x, j->serial, sizeof j->serial) != 0)
			j->serial[0] = 0;
		X509_free(x);
		free(pem);
	}
	if (j->phase != PHASE_DEPLOYING && set_phase(j, PHASE_DEPLOYING) != 0)
		return STEP_STUCK;
	strbuf_init(&out, JOURNAL_ERROR_MAX);
	rc = deploy_job(&ctx->cfg, j, &out);
	if (rc < 0) {
		log_event(LOG_ERROR, NULL, NULL, "job %s: %s", j->job.id, out.p ? out.p : "deploy failed");
		rc = set_result(j, 0, out.p ? out.p : "deploy failed");
	} else {
		log_event(rc ? LOG_INFO : LOG_WARN, NULL, NULL, "job %s: deploy %s", j->job.id,
			  rc ? "completed" : "failed");
		rc = set_result(j, rc, out.p ? out.p : "");
	}
	strbuf_free(&out);
	return rc == 0 ? STEP_NEXT : STEP_STUCK;
}

/* Crashed mid-deploy: the files as they were, the targets reloaded, then
 * the deploy from the start. */
static enum step restore_then_deploy(struct agent_ctx *ctx, struct journal *j)
{
	char why[512];
	struct deploy_target *t = NULL;
	size_t n = 0;
	int idx[WORK_MAX_TARGETS];
	int k = backup_targets(j->dir, idx, WORK_MAX_TARGETS);

	if (restore_backups(j->dir, -1, why, sizeof why) != 0)
		log_event(LOG_ERROR, NULL, NULL, "job %s: restoring the files of an interrupted deploy: %s",
			  j->job.id, why);
	else
		log_event(LOG_INFO, NULL, NULL, "job %s: files of an interrupted deploy restored", j->job.id);
	if (deploy_resolve(&ctx->cfg, &j->job, &t, &n, why, sizeof why) == 0) {
		for (int i = 0; i < k; i++) {
			struct run_result *r;

			if (idx[i] < 0 || (size_t)idx[i] >= n || !t[idx[i]].reload)
				continue;
			r = malloc(sizeof *r);
			if (r && run_command(t[idx[i]].reload, t[idx[i]].command_timeout_ms, r) != 0)
				log_event(LOG_WARN, NULL, NULL, "job %s: target %s: reload after restore failed",
					  j->job.id, t[idx[i]].name);
			free(r);
		}
		deploy_targets_free(t, n);
	}
	return deploy(ctx, j);
}

static enum step report(struct agent_ctx *ctx, struct journal *j)
{
	char path[512];
	struct http_response r = {0};
	json_t *body = json_pack("{s:s, s:s}", "status", j->result_ok ? "Completed" : "Failed", "error",
				 j->result_error);
	char *text;
	enum step s = STEP_WAIT;

	if (body && j->result_ok && j->serial[0])
		json_object_set_new(body, "serial", json_string(j->serial));
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return STEP_STUCK;
	snprintf(path, sizeof path, "/api/v1/agents/%s/jobs/%s/status", ctx->st.agent_id, j->job.id);
	if (job_call(ctx, j, "POST", path, text, strlen(text), &r) != 0) {
		free(text);
		return STEP_WAIT;
	}
	free(text);
	if (r.status == 200 || r.status == 201 || r.status == 204 || r.status == 409 || r.status == 404) {
		log_event(LOG_INFO, NULL, NULL, "job %s: %s %s", j->job.id,
			  j->result_ok ? "Completed" : "Failed",
			  r.status == 409 ? "(already reported)" : r.status == 404 ? "(job gone)" : "reported");
		s = set_phase(j, PHASE_REPORTED) == 0 ? STEP_NEXT : STEP_STUCK;
	} else {
		char problem[512];

		api_problem(&r, problem, sizeof problem);
		log_event(LOG_WARN, NULL, NULL, "job %s: report refused: %s", j->job.id, problem);
	}
	http_response_free(&r);
	return s;
}

static enum step forget(struct journal *j)
{
	if (remove_tree_wiped(j->dir) != 0) {
		log_event(LOG_WARN, NULL, NULL, "job %s: cannot remove %s: %s", j->job.id, j->dir,
			  strerror(errno));
		return STEP_STUCK;
	}
	return STEP_NEXT;
}

enum job_progress job_advance(struct agent_ctx *ctx, struct journal *j, const struct work_job *listed)
{
	for (int guard = 0; guard < 16; guard++) {
		enum resume_action a =
			journal_resume_action(j->phase, file_exists(j, "key.pem"), file_exists(j, "cert.pem"));
		enum step s;

		if (a == RESUME_FORGET)
			return forget(j) == STEP_NEXT ? JOB_DONE : JOB_STUCK;
		/* a signal: the current step is finished, the next waits for
		 * the next start */
		if (agent_stop)
			return JOB_WAITING;
		if (agent_api_paused(ctx) && a != RESUME_DEPLOY && a != RESUME_RESTORE_DEPLOY)
			return JOB_WAITING;
		if (a == RESUME_DEPLOY && j->phase == PHASE_CSR_SENT && set_phase(j, PHASE_RECEIVED) != 0)
			return JOB_STUCK;
		switch (a) {
		case RESUME_START: s = start(ctx, j, listed); break;
		case RESUME_RECOVER_CERT: s = recover(ctx, j, listed); break;
		case RESUME_DEPLOY: s = deploy(ctx, j); break;
		case RESUME_RESTORE_DEPLOY: s = restore_then_deploy(ctx, j); break;
		case RESUME_REPORT: s = report(ctx, j); break;
		default: s = STEP_STUCK; break;
		}
		if (s == STEP_WAIT)
			return JOB_WAITING;
		if (s == STEP_STUCK)
			return JOB_STUCK;
	}
	return JOB_STUCK;
}

enum job_progress job_accept(struct agent_ctx *ctx, const struct work_job *w)
{
	struct journal j;
	char why[512];
	enum job_progress p;

	if (journal_create(ctx->cfg.state_dir, w, &j, why, sizeof why) != 0) {
		log_event(LOG_ERROR, NULL, NULL, "job %s: cannot journal it: %s", w->id, why);
		return JOB_STUCK;
	}
	log_event(LOG_INFO, NULL, NULL, "job %s: accepted (%s of %s, %s %d, %zu targets)", w->id, w->type,
		  w->certificate_id, key_alg_name(w->key_alg), w->key_bits, w->ntargets);
	p = job_advance(ctx, &j, w);
	journal_free(&j);
	return p;
}

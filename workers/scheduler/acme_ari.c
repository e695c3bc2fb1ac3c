/* See acme_ari.h. */
#include "acme_ari.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme.h"
#include "acme_issuer.h"
#include "log.h"
#include "loops.h"
#include "store_client.h"
#include "x509pem.h"

#define CLAIM_MAX "8"

static struct {
	struct worker *w;
	struct loop *loop;
	unsigned inflight;
	uint64_t windows, none, failed;
} X;

/* one certificate asked about */
struct one {
	char id[132], serial[68], cert_id[ACME_CERT_ID_MAX];
	unsigned failures; /* failed checks in a row before this one */
	int64_t start, end;
	char *explanation_url;
};

static void one_free(struct one *x)
{
	free(x->explanation_url);
	free(x);
}

static void utc(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "%" PRId64, t);
}

static void on_finished(const struct store_outcome *o, void *arg)
{
	struct one *x = arg;
	json_t *j = o->error ? NULL : json_loadb((const char *)o->json, o->json_len, 0, NULL);

	if (o->error) {
		log_warn("certificate %s: its renewal information could not be recorded: %s", x->id, o->message);
	} else if (json_is_true(json_object_get(j, "changed"))) {
		const char *at = json_string_value(json_object_get(j, "renew_at"));
		char s[32], e[32];

		utc(x->start, s);
		utc(x->end, e);
		if (x->end > x->start)
			log_info("certificate %s (serial %s): renewal at %s, in the window %s to %s its ACME CA "
				 "suggests%s%s", x->id, x->serial, at ? at : "?", s, e,
				 x->explanation_url ? "; explanation: " : "",
				 x->explanation_url ? x->explanation_url : "");
		else
			log_info("certificate %s (serial %s): renewal at %s, the renewal policy's time (no window from its "
				 "ACME CA)", x->id, x->serial, at ? at : "?");
	}
	json_decref(j);
	one_free(x);
	/* the next batch at once: there may be more due */
	if (--X.inflight == 0)
		loop_kick(X.loop);
}

/* outcome window (renew_at picked in x's window), none or error (why) */
static void finish(struct one *x, const char *outcome, int64_t renew_at, uint32_t retry, const char *why)
{
	char start[24], end[24], at[24], next[16];
	bool window = strcmp(outcome, "window") == 0;
	const char *p[10] = {x->id,
			     x->serial,
			     outcome,
			     x->cert_id[0] ? x->cert_id : NULL,
			     window ? start : NULL,
			     window ? end : NULL,
			     window ? at : NULL,
			     window ? x->explanation_url : NULL,
			     next,
			     why};

	snprintf(start, sizeof start, "%" PRId64, x->start);
	snprintf(end, sizeof end, "%" PRId64, x->end);
	snprintf(at, sizeof at, "%" PRId64, renew_at);
	snprintf(next, sizeof next, "%" PRIu32, retry);
	if (store_call(X.w, "acme_ari.finish", p, 10, on_finished, x) != 0) {
		log_warn("certificate %s: the store is unavailable; its renewal information is asked for again in 10 "
			 "minutes", x->id);
		one_free(x);
		X.inflight--;
	}
}

static void on_checked(void *arg, int rc, const char *why, const struct acme_ari_answer *a)
{
	struct one *x = arg;

	if (rc == 0 && a->window) {
		struct acme_renewal_info ri = {.start = a->start, .end = a->end};
		uint64_t random = 0;

		X.windows++;
		x->start = a->start;
		x->end = a->end;
		x->explanation_url = a->explanation_url ? strdup(a->explanation_url) : NULL;
		RAND_bytes((uint8_t *)&random, sizeof random);
		finish(x, "window", acme_ari_renew_at(&ri, (int64_t)time(NULL), random), acme_ari_retry(a->retry_after, 0),
		       NULL);
	} else if (rc == 0) {
		/* the renewal policy's time: said once, at debug level */
		X.none++;
		log_debug("certificate %s: %s; the renewal policy's time applies", x->id,
			  a->offered ? "its ACME CA has no renewal information for it" : "its ACME CA offers no renewalInfo");
		finish(x, "none", 0, a->offered ? acme_ari_retry(a->retry_after, 0) : ACME_ARI_RETRY_MAX, NULL);
	} else {
		uint32_t retry = acme_ari_retry(a->retry_after, x->failures + 1);

		X.failed++;
		log_warn("certificate %s: renewal information from its ACME CA: %s (the renewal time stays; asked again "
			 "in %" PRIu32 " s)", x->id, why, retry);
		finish(x, "error", 0, retry, why);
	}
}

static void on_claimed(const struct store_outcome *o, void *arg)
{
	struct loop *l = arg;
	json_t *j, *v;
	size_t i, n = 0;

	if (o->error) {
		loop_done(l, 0, NULL, o->message);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	json_array_foreach(json_object_get(j, "certificates"), i, v) {
		const char *pem = json_string_value(json_object_get(v, "pem_chain"));
		char *config = json_dumps(json_object_get(v, "issuer_config"), JSON_COMPACT);
		struct one *x = calloc(1, sizeof *x);
		uint8_t *der = NULL;
		size_t der_len = 0;
		char err[200] = "not a certificate";
		struct acme_ari_check rq;

		if (!x || !config) {
			free(x);
			free(config);
			continue;
		}
		snprintf(x->id, sizeof x->id, "%s", json_string_value(json_object_get(v, "certificate_id")) ?: "");
		snprintf(x->serial, sizeof x->serial, "%s", json_string_value(json_object_get(v, "serial")) ?: "");
		x->failures = (unsigned)json_integer_value(json_object_get(v, "failures"));
		X.inflight++;
		n++;
		if (!pem || x509pem_first_der(pem, &der, &der_len) != 0 ||
		    acme_ari_cert_id(der, der_len, x->cert_id, err, sizeof err) != 0) {
			/* no CertID (no authority key identifier): nothing to ask */
			x->cert_id[0] = '\0';
			log_debug("certificate %s: no ARI CertID (%s); the renewal policy's time applies", x->id, err);
			free(der);
			free(config);
			finish(x, "none", 0, ACME_ARI_RETRY_MAX, NULL);
			continue;
		}
		free(der);
		rq = (struct acme_ari_check){
			.id = x->id,
			.issuer_id = json_string_value(json_object_get(v, "issuer_id")),
			.issuer_config = config,
			.cert_id = x->cert_id,
		};
		if (acme_ari_start(&rq, on_checked, x) != 0)
			finish(x, "error", 0, acme_ari_retry(0, x->failures + 1), "the ACME client could not start");
		free(config);
	}
	json_decref(j);
	loop_done(l, n, "renewal information check(s) started", NULL);
}

static void run(struct loop *l, void *arg)
{
	const char *p[1] = {CLAIM_MAX};

	(void)arg;
	/* one batch at a time: the next claim once these are recorded */
	if (X.inflight) {
		loop_done(l, 0, NULL, NULL);
		return;
	}
	if (store_call(X.w, "acme_ari.claim", p, 1, on_claimed, l) != 0)
		loop_done(l, 0, NULL, "the store is unavailable");
}

int acme_ari_loop_start(struct worker *w, const struct cfg *section)
{
	static const struct loop_def def = {
		.name = "acme_ari",
		.interval_key = "acme_ari_interval",
		.leader_only = false, /* every node claims: SKIP LOCKED */
		.run = run,
	};

	(void)section;
	X.w = w;
	X.loop = loop_register(&def);
	if (!X.loop) {
		log_error("out of memory registering the ACME renewal information loop");
		return -1;
	}
	return 0;
}

void acme_ari_metrics(struct strbuf *out)
{
	strbuf_printf(out, "scheduler_acme_ari_windows_total %" PRIu64 "\n", X.windows);
	strbuf_printf(out, "scheduler_acme_ari_none_total %" PRIu64 "\n", X.none);
	strbuf_printf(out, "scheduler_acme_ari_failed_total %" PRIu64 "\n", X.failed);
}

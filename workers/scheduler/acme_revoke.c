#include "acme_revoke.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_issuer.h"
#include "log.h"
#include "loops.h"
#include "store_client.h"
#include "x509pem.h"

#define CLAIM_MAX "8"
#define TRIES_MAX 10

static struct {
	struct worker *w;
	struct loop *loop;
	unsigned inflight;
	uint64_t done, failed, retried;
} R;

struct one {
	char id[32], serial[130];
};

static void on_finished(const struct store_outcome *o, void *arg)
{
	struct one *x = arg;

	if (o->error)
		log_warn("ACME revocation %s (serial %s): the outcome could not be recorded: %s", x->id, x->serial,
			 o->message);
	free(x);
	if (--R.inflight == 0)
		loop_kick(R.loop);
}

static void finish(struct one *x, const char *status, const char *error, int retry_s)
{
	char retry[16];
	const char *p[4] = {x->id, status, error, retry};

	snprintf(retry, sizeof retry, "%d", retry_s);
	if (store_call(R.w, "acme_revocations.finish", p, 4, on_finished, x) != 0) {
		log_warn("ACME revocation %s: the store is unavailable; taken again in 10 minutes", x->id);
		free(x);
		R.inflight--;
	}
}

static void on_revoked(void *arg, int rc, const char *why, struct acme_result *res)
{
	struct one *x = arg;
	int attempts = atoi(x->id + strlen(x->id) + 1);

	(void)res;
	if (rc == 0) {
		R.done++;
		log_event(LOG_INFO, NULL, NULL, "revoked serial %s at the ACME CA", x->serial);
		finish(x, "done", NULL, 0);
	} else if (rc == -2 && attempts < TRIES_MAX) {
		int delay = 60 << (attempts < 6 ? attempts - 1 : 5);

		R.retried++;
		log_warn("revoking serial %s at the ACME CA: %s (tried again in %d s)", x->serial, why,
			 delay > 3600 ? 3600 : delay);
		finish(x, "pending", why, delay > 3600 ? 3600 : delay);
	} else {
		R.failed++;
		log_event(LOG_ERROR, NULL, NULL, "revoking serial %s at the ACME CA failed: %s", x->serial, why);
		finish(x, "failed", why, 0);
	}
}

static void on_claimed(const struct store_outcome *o, void *arg)
{
	struct loop *l = arg;
	json_t *j, *list, *v;
	size_t i, n = 0;

	if (o->error) {
		loop_done(l, 0, NULL, o->message);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	list = json_object_get(j, "revocations");
	json_array_foreach(list, i, v) {
		const char *pem = json_string_value(json_object_get(v, "pem_chain"));
		char *config = json_dumps(json_object_get(v, "issuer_config"), JSON_COMPACT);
		struct one *x = calloc(1, sizeof *x + 16);
		uint8_t *der = NULL;
		size_t der_len = 0;
		struct acme_revocation rq;

		if (!x || !config) {
			free(x);
			free(config);
			continue;
		}
		snprintf(x->id, sizeof x->id, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(v, "id")));
		/* the attempt number rides after the id's NUL */
		snprintf(x->id + strlen(x->id) + 1, sizeof x->id - strlen(x->id) - 1, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(json_object_get(v, "attempts")));
		snprintf(x->serial, sizeof x->serial, "%s", json_string_value(json_object_get(v, "serial")) ?: "");
		R.inflight++;
		n++;
		if (!pem || x509pem_first_der(pem, &der, &der_len) != 0) {
			free(config);
			R.failed++;
			finish(x, "failed", "the certificate of this serial is not in the inventory", 0);
			continue;
		}
		rq = (struct acme_revocation){
			.id = x->id,
			.issuer_id = json_string_value(json_object_get(v, "issuer_id")),
			.issuer_config = config,
			.issuer_secret = json_string_value(json_object_get(v, "issuer_secret")),
			.reason = json_string_value(json_object_get(v, "reason")) ?: "unspecified",
			.der = der,
			.der_len = der_len,
		};
		if (acme_revoke_start(&rq, on_revoked, x) != 0)
			finish(x, "pending", "the ACME client could not start", 60);
		free(der);
		free(config);
	}
	json_decref(j);
	loop_done(l, n, "revocations sent to ACME CAs", NULL);
}

static void run(struct loop *l, void *arg)
{
	const char *p[1] = {CLAIM_MAX};

	(void)arg;
	/* one batch at a time: the next claim once these are recorded */
	if (R.inflight) {
		loop_done(l, 0, NULL, NULL);
		return;
	}
	if (store_call(R.w, "acme_revocations.claim", p, 1, on_claimed, l) != 0)
		loop_done(l, 0, NULL, "the store is unavailable");
}

int acme_revoke_loop_start(struct worker *w, const struct cfg *section)
{
	static const struct loop_def def = {
		.name = "acme_revocations",
		.interval_key = "acme_revocation_interval",
		.leader_only = false, /* every node claims: SKIP LOCKED */
		.run = run,
	};

	(void)section;
	R.w = w;
	R.loop = loop_register(&def);
	if (!R.loop) {
		log_error("out of memory registering the ACME revocation loop");
		return -1;
	}
	return 0;
}

void acme_revoke_metrics(struct strbuf *out)
{
	strbuf_printf(out, "scheduler_acme_revocations_done_total %" PRIu64 "\n", R.done);
	strbuf_printf(out, "scheduler_acme_revocations_failed_total %" PRIu64 "\n", R.failed);
	strbuf_printf(out, "scheduler_acme_revocations_retried_total %" PRIu64 "\n", R.retried);
}

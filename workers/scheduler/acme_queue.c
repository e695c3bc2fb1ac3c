/* See acme_queue.h. */
#include "acme_queue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loops.h"
#include "store_client.h"

#define CLAIM_MAX "8"
#define TRIES_MAX 10

struct acme_queue {
	const struct acme_queue_def *def;
	struct worker *w;
	struct loop *loop;
	unsigned inflight;
	uint64_t done, failed, retried;
};

/* one claimed row */
struct one {
	struct acme_queue *q;
	char id[32];
	json_int_t attempts;
	char what[300];
};

const char *acme_row_str(json_t *row, const char *key, const char *otherwise)
{
	const char *s = json_string_value(json_object_get(row, key));

	return s ? s : otherwise;
}

const char *acme_row_id(json_t *row, char *out, size_t cap)
{
	snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(row, "id")));
	return out;
}

static void on_finished(const struct store_outcome *o, void *arg)
{
	struct one *x = arg;
	struct acme_queue *q = x->q;

	if (o->error)
		log_warn("%s: the outcome could not be recorded: %s", x->what, o->message);
	free(x);
	if (--q->inflight == 0)
		loop_kick(q->loop);
}

static void finish(struct one *x, const char *status, const char *error, int retry_s)
{
	struct acme_queue *q = x->q;
	char retry[16];
	const char *p[4] = {x->id, status, error, retry};

	snprintf(retry, sizeof retry, "%d", retry_s);
	if (store_call(q->w, q->def->finish_op, p, 4, on_finished, x) != 0) {
		log_warn("%s: the store is unavailable; taken again in 10 minutes", x->what);
		free(x);
		q->inflight--;
	}
}

static void on_run(void *arg, int rc, const char *why, struct acme_result *res)
{
	struct one *x = arg;
	struct acme_queue *q = x->q;

	(void)res;
	if (rc == 0) {
		q->done++;
		log_event(LOG_INFO, NULL, NULL, "%s: done", x->what);
		finish(x, "done", NULL, 0);
	} else if (rc == -2 && x->attempts < TRIES_MAX) {
		int delay = 60 << (x->attempts >= 1 && x->attempts < 6 ? x->attempts - 1 : 5);

		if (delay > 3600)
			delay = 3600;
		q->retried++;
		log_warn("%s: %s (tried again in %d s)", x->what, why, delay);
		finish(x, "pending", why, delay);
	} else {
		q->failed++;
		log_event(LOG_ERROR, NULL, NULL, "%s failed: %s", x->what, why);
		finish(x, "failed", why, 0);
	}
}

static void on_claimed(const struct store_outcome *o, void *arg)
{
	struct acme_queue *q = arg;
	json_t *j, *v;
	size_t i, n = 0;

	if (o->error) {
		loop_done(q->loop, 0, NULL, o->message);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	json_array_foreach(json_object_get(j, q->def->list), i, v) {
		struct one *x = calloc(1, sizeof *x);
		const char *refused = NULL;

		if (!x)
			continue;
		x->q = q;
		acme_row_id(v, x->id, sizeof x->id);
		x->attempts = json_integer_value(json_object_get(v, "attempts"));
		q->def->describe(v, x->what, sizeof x->what);
		q->inflight++;
		n++;
		if (q->def->start(v, on_run, x, &refused) == 0)
			continue;
		if (refused) {
			q->failed++;
			log_event(LOG_ERROR, NULL, NULL, "%s failed: %s", x->what, refused);
			finish(x, "failed", refused, 0);
		} else {
			finish(x, "pending", "the ACME client could not start", 60);
		}
	}
	json_decref(j);
	loop_done(q->loop, n, q->def->did, NULL);
}

static void run(struct loop *l, void *arg)
{
	struct acme_queue *q = arg;
	const char *p[1] = {CLAIM_MAX};

	/* one batch at a time: the next claim once these are recorded */
	if (q->inflight) {
		loop_done(l, 0, NULL, NULL);
		return;
	}
	if (store_call(q->w, q->def->claim_op, p, 1, on_claimed, q) != 0)
		loop_done(l, 0, NULL, "the store is unavailable");
}

struct acme_queue *acme_queue_start(struct worker *w, const struct acme_queue_def *def)
{
	struct acme_queue *q = calloc(1, sizeof *q);
	struct loop_def ld = {
		.name = def->loop,
		.interval_key = def->interval_key,
		.leader_only = false, /* every node claims: SKIP LOCKED */
		.run = run,
		.arg = q,
	};

	if (q) {
		q->def = def;
		q->w = w;
		q->loop = loop_register(&ld);
	}
	if (!q || !q->loop) {
		free(q);
		log_error("out of memory registering the %s loop", def->loop);
		return NULL;
	}
	return q;
}

void acme_queue_metrics(const struct acme_queue *q, struct strbuf *out)
{
	if (!q)
		return;
	strbuf_printf(out, "%s_done_total %" PRIu64 "\n", q->def->metric, q->done);
	strbuf_printf(out, "%s_failed_total %" PRIu64 "\n", q->def->metric, q->failed);
	strbuf_printf(out, "%s_retried_total %" PRIu64 "\n", q->def->metric, q->retried);
}

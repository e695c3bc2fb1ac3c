/* See renewal.h. */
#include "renewal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "loops.h"
#include "store_client.h"

/* A loop that is one store operation taking a batch size: what it did is
 * the sum of the numbers in the operation's answer. */
struct op_loop {
	struct loop_def def;
	const char *op;
	const char *what;
	const char *count_key; /* the number that counts, or NULL: their sum */
	struct loop *loop;
	struct worker *w;
	char batch[24];
};

static void op_loop_run(struct loop *l, void *arg);

static struct op_loop op_loops[] = {
	{.def = {.name = "renewal_scan", .interval_key = "renewal_scan_interval", .leader_only = true},
	 .op = "scheduler.renewal_scan", .what = "renewal job(s) created", .count_key = "jobs"},
	{.def = {.name = "expiry_marking", .interval_key = "expiry_marking_interval", .leader_only = true},
	 .op = "scheduler.expiry_marking", .what = "certificate status change(s)"},
	{.def = {.name = "expiry_notify", .interval_key = "expiry_notify_interval", .leader_only = true},
	 .op = "scheduler.expiry_notify", .what = "expiry notification(s) recorded"},
};

#define NLOOPS (sizeof op_loops / sizeof op_loops[0])

static void on_op_done(const struct store_outcome *o, void *arg)
{
	struct op_loop *ol = arg;
	json_t *v, *n;
	const char *k;
	uint64_t did = 0;
	char parts[160] = "", what[256];
	size_t len = 0;

	if (o->error) {
		loop_done(ol->loop, 0, NULL, o->message && *o->message ? o->message : "the store is unavailable");
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	if (!json_is_object(v)) {
		json_decref(v);
		loop_done(ol->loop, 0, NULL, "unexpected answer from the store");
		return;
	}
	/* "renewal job(s) created (jobs 3, awaiting_csr 1)" */
	json_object_foreach(v, k, n) {
		if (!json_is_integer(n) || json_integer_value(n) < 0)
			continue;
		if (!ol->count_key || strcmp(k, ol->count_key) == 0)
			did += (uint64_t)json_integer_value(n);
		if (len < sizeof parts)
			len += (size_t)snprintf(parts + len, sizeof parts - len, "%s%s %lld", len ? ", " : "", k,
						(long long)json_integer_value(n));
	}
	json_decref(v);
	snprintf(what, sizeof what, "%s (%s)", ol->what, parts);
	loop_done(ol->loop, did, what, NULL);
}

static void op_loop_run(struct loop *l, void *arg)
{
	struct op_loop *ol = arg;
	const char *p[1] = {ol->batch};

	if (store_call(ol->w, ol->op, p, 1, on_op_done, ol) != 0)
		loop_done(l, 0, NULL, "the store is unavailable");
}

int renewal_loops_register(struct worker *w, const struct cfg *section)
{
	uint64_t batch = (uint64_t)cfg_int(section, "scheduler", "renewal_batch");

	for (size_t i = 0; i < NLOOPS; i++) {
		struct op_loop *ol = &op_loops[i];

		ol->w = w;
		snprintf(ol->batch, sizeof ol->batch, "%llu", (unsigned long long)batch);
		ol->def.run = op_loop_run;
		ol->def.arg = ol;
		ol->loop = loop_register(&ol->def);
		if (!ol->loop)
			return -1;
	}
	return 0;
}

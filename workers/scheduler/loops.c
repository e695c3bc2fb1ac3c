/* See loops.h. */
#include "loops.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_client.h"
#include "util.h"

struct loop {
	struct loop_def def;
	struct loop *next;
	uv_timer_t timer;
	bool timer_on;
	uint64_t interval_ms;
	bool running;   /* a run is in progress: loop_done() not called yet */
	bool kicked;    /* loop_kick() during a run: run again when it ends */
	uint64_t t0_ms; /* start of the run in progress */
	uint64_t runs, errors, did, last_did, last_ms;
};

static struct {
	struct worker *w;
	const struct cfg *section;
	struct loop *loops;
	bool started;
	bool leader;
	/* the leader check: scheduler.leader every scheduler.leader_check */
	uv_timer_t check;
	bool check_on, checking;
	char why_not[160]; /* why the last check did not lead, logged once */
} L;

static void loop_run_now(struct loop *l)
{
	if (l->running || !L.started)
		return;
	if (l->def.leader_only && !L.leader)
		return;
	l->running = true;
	l->kicked = false;
	l->t0_ms = now_ms();
	l->def.run(l, l->def.arg);
}

static void on_timer(uv_timer_t *t)
{
	loop_run_now(t->data);
}

#define AT_INTERVAL UINT64_MAX

/* (Re)starts the loop's timer: first run after first_ms (AT_INTERVAL: one
 * interval), then every interval. */
static void loop_arm(struct loop *l, uint64_t first_ms)
{
	if (!L.started)
		return;
	if (!l->timer_on) {
		l->interval_ms = cfg_duration_ms(L.section, "scheduler", l->def.interval_key);
		if (l->interval_ms == 0)
			l->interval_ms = 1000;
		uv_timer_init(worker_loop(L.w), &l->timer);
		l->timer.data = l;
		l->timer_on = true;
	}
	uv_timer_start(&l->timer, on_timer, first_ms == AT_INTERVAL ? l->interval_ms : first_ms, l->interval_ms);
}

struct loop *loop_register(const struct loop_def *def)
{
	struct loop *l;

	if (!def || !def->name || !def->interval_key || !def->run)
		return NULL;
	l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->def = *def;
	l->next = L.loops;
	L.loops = l;
	loop_arm(l, AT_INTERVAL);
	return l;
}

void loop_done(struct loop *l, uint64_t did, const char *what, const char *error)
{
	struct metrics *m;
	char labels[METRICS_LABELS_MAX];
	uint64_t ms;

	if (!l || !l->running)
		return;
	l->running = false;
	ms = now_ms() - l->t0_ms;
	l->runs++;
	l->did += did;
	l->last_did = did;
	l->last_ms = ms;
	if (L.w) {
		m = worker_metrics(L.w);
		metrics_labels(labels, sizeof labels, "loop", l->def.name, NULL);
		metrics_add(m, "scheduler_loop_runs_total", labels, 1);
		metrics_observe(m, "scheduler_loop_duration_seconds", labels, (double)ms / 1000.0);
		if (did)
			metrics_add(m, "scheduler_loop_items_total", labels, (double)did);
		if (error)
			metrics_add(m, "scheduler_loop_errors_total", labels, 1);
	}
	if (error) {
		l->errors++;
		log_warn("loop %s failed after %" PRIu64 " ms: %s", l->def.name, ms, error);
	} else if (did) {
		log_info("loop %s: %" PRIu64 " %s in %" PRIu64 " ms", l->def.name, did, what ? what : "done", ms);
	}
	if (l->kicked)
		loop_arm(l, 0);
}

void loop_kick(struct loop *l)
{
	if (!l)
		return;
	if (l->running) {
		l->kicked = true;
		return;
	}
	loop_arm(l, 0);
}

static void loops_set_leader(bool leader)
{
	if (leader == L.leader)
		return;
	L.leader = leader;
	if (L.w)
		metrics_add(worker_metrics(L.w), "scheduler_leader_changes_total", NULL, 1);
	if (leader) {
		log_info("this node now holds the scheduler lock: leader-only loops run here");
		for (struct loop *l = L.loops; l; l = l->next)
			if (l->def.leader_only)
				loop_arm(l, 0);
	} else {
		log_warn("this node no longer holds the scheduler lock: leader-only loops stop here");
	}
}

static void leader_refused(const char *why)
{
	if (strcmp(L.why_not, why) != 0)
		log_warn("the scheduler lock cannot be checked: %s", why);
	snprintf(L.why_not, sizeof L.why_not, "%s", why);
	loops_set_leader(false);
}

static void on_leader(const struct store_outcome *o, void *arg)
{
	json_t *v;
	bool leader;

	(void)arg;
	L.checking = false;
	if (!L.started)
		return;
	if (o->error) {
		/* the lock's connection is gone, or the store: the lock may be
		 * another node's by now */
		leader_refused(o->message && *o->message ? o->message : "the store is unavailable");
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	leader = json_is_true(json_object_get(v, "leader"));
	json_decref(v);
	L.why_not[0] = '\0';
	loops_set_leader(leader);
}

static void on_check(uv_timer_t *t)
{
	int rc;

	(void)t;
	if (L.checking)
		return;
	rc = store_call(L.w, "scheduler.leader", NULL, 0, on_leader, NULL);
	if (rc == 0)
		L.checking = true;
	else
		leader_refused("the store is unavailable");
}

int loops_start(struct worker *w, const struct cfg *section)
{
	uint64_t every = cfg_duration_ms(section, "scheduler", "leader_check");

	L.w = w;
	L.section = section;
	L.started = true;
	for (struct loop *l = L.loops; l; l = l->next)
		loop_arm(l, AT_INTERVAL);
	/* leader-only loops wait for the first answer */
	uv_timer_init(worker_loop(w), &L.check);
	L.check_on = true;
	uv_timer_start(&L.check, on_check, 0, every ? every : 1000);
	return 0;
}

bool loops_leader(void)
{
	return L.leader;
}

void loops_metrics(struct strbuf *out)
{
	strbuf_printf(out, "scheduler_leader %d\n", L.leader ? 1 : 0);
	for (struct loop *l = L.loops; l; l = l->next) {
		strbuf_printf(out, "scheduler_loop_running{loop=\"%s\"} %d\n", l->def.name, l->running ? 1 : 0);
		strbuf_printf(out, "scheduler_loop_last_items{loop=\"%s\"} %" PRIu64 "\n", l->def.name, l->last_did);
	}
}

void loops_stop(void)
{
	L.started = false;
	if (L.check_on) {
		uv_timer_stop(&L.check);
		uv_close((uv_handle_t *)&L.check, NULL);
		L.check_on = false;
	}
	for (struct loop *l = L.loops; l; l = l->next) {
		if (l->timer_on) {
			uv_timer_stop(&l->timer);
			uv_close((uv_handle_t *)&l->timer, NULL);
			l->timer_on = false;
		}
	}
	/* the loops stay allocated: a run's store callback may still end it */
}

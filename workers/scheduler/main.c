/* certward-scheduler: periodic loops and the job state machine. */
#include <stdbool.h>
#include <stdio.h>

#include "codec.h"
#include "crl.h"
#include "harden.h"
#include "log.h"
#include "store_client.h"
#include "worker.h"

struct scheduler {
	struct worker *w;
	uv_timer_t tick;
	uint64_t ticks;
	char offline_after_s[24]; /* scheduler.agent_offline_after, in seconds */
	bool sweeping;            /* one liveness sweep at a time */
	uint64_t agents_marked_offline;
};

static struct scheduler sched;

static void on_swept(const struct store_outcome *o, void *arg)
{
	(void)arg;
	sched.sweeping = false;
	if (o->error) {
		log_warn("agent liveness sweep failed: %s", o->message ? o->message : "store unavailable");
		return;
	}
	if (o->rows > 0) {
		sched.agents_marked_offline += o->rows;
		log_info("%llu agent(s) marked Offline: no heartbeat for %s s", (unsigned long long)o->rows,
			 sched.offline_after_s);
	}
}

/* Agents that missed their heartbeats become Offline (every node sweeps;
 * the statement is idempotent). */
static void sweep_agents(void)
{
	const char *p[1] = {sched.offline_after_s};

	if (sched.sweeping)
		return;
	sched.sweeping = store_call(sched.w, "agents.mark_offline", p, 1, on_swept, NULL) == 0;
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
	sched.ticks++;
	sweep_agents();
}

static int scheduler_init(struct worker *w, const struct cfg *section)
{
	uint64_t every = cfg_duration_ms(section, "scheduler", "tick");

	sched.w = w;
	snprintf(sched.offline_after_s, sizeof sched.offline_after_s, "%llu",
		 (unsigned long long)(cfg_duration_ms(section, "scheduler", "agent_offline_after") / 1000));

	uv_timer_init(worker_loop(w), &sched.tick);
	uv_timer_start(&sched.tick, on_tick, every, every);
	crl_loop_start(w, section);
	return 0;
}

static void scheduler_metrics(struct worker *w, struct strbuf *out)
{
	strbuf_printf(out, "scheduler_ticks_total %llu\n", (unsigned long long)sched.ticks);
	strbuf_printf(out, "scheduler_agents_marked_offline_total %llu\n",
		      (unsigned long long)sched.agents_marked_offline);
	crl_loop_metrics(out);
}

static void scheduler_stop(struct worker *w)
{
	uv_timer_stop(&sched.tick);
	uv_close((uv_handle_t *)&sched.tick, NULL);
	crl_loop_stop();
}

static const struct worker_ops ops = {
	.role = IPC_ROLE_SCHEDULER,
	.summary = "certward-scheduler: renewal loops, job dispatch and remote issuers.",
	.harden = HARDEN_NET_CLIENT,
	.init = scheduler_init,
	.metrics = scheduler_metrics,
	.stop = scheduler_stop,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}

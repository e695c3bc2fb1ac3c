/* certward-scheduler: periodic loops and the job state machine. */
#include "codec.h"
#include "crl.h"
#include "harden.h"
#include "log.h"
#include "worker.h"

struct scheduler {
	uv_timer_t tick;
	uint64_t ticks;
};

static struct scheduler sched;

static void on_tick(uv_timer_t *t)
{
	sched.ticks++;
}

static int scheduler_init(struct worker *w, const struct cfg *section)
{
	uint64_t every = cfg_duration_ms(section, "scheduler", "tick");

	uv_timer_init(worker_loop(w), &sched.tick);
	uv_timer_start(&sched.tick, on_tick, every, every);
	crl_loop_start(w, section);
	return 0;
}

static void scheduler_metrics(struct worker *w, struct strbuf *out)
{
	strbuf_printf(out, "scheduler_ticks_total %llu\n", (unsigned long long)sched.ticks);
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

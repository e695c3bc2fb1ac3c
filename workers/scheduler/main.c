/* certward-scheduler: periodic loops and the job state machine. */
#include <stdbool.h>
#include <stdio.h>

#include "codec.h"
#include "crl.h"
#include "harden.h"
#include "acme_account.h"
#include "acme_revoke.h"
#include "acme_ari.h"
#include "jobs.h"
#include "log.h"
#include "loops.h"
#include "ocsp_rotation.h"
#include "renewal.h"
#include "store_client.h"
#include "test_hooks.h"
#include "worker.h"

struct scheduler {
	struct worker *w;
	char offline_after_s[24]; /* scheduler.agent_offline_after, in seconds */
	struct loop *agent_offline;
};

static struct scheduler sched;

static void on_swept(const struct store_outcome *o, void *arg)
{
	(void)arg;
	if (o->error) {
		loop_done(sched.agent_offline, 0, NULL, o->message && *o->message ? o->message : "store unavailable");
		return;
	}
	loop_done(sched.agent_offline, o->rows, "agent(s) marked Offline", NULL);
}

/* Agents that missed their heartbeats for scheduler.agent_offline_after
 * become Offline. */
static void sweep_agents(struct loop *l, void *arg)
{
	const char *p[1] = {sched.offline_after_s};

	(void)arg;
	if (store_call(sched.w, "agents.mark_offline", p, 1, on_swept, NULL) != 0)
		loop_done(l, 0, NULL, "the store is unavailable");
}

static int scheduler_init(struct worker *w, const struct cfg *section)
{
	static const struct loop_def agent_offline = {
		.name = "agent_offline",
		.interval_key = "tick",
		.leader_only = true,
		.run = sweep_agents,
	};

	sched.w = w;
	snprintf(sched.offline_after_s, sizeof sched.offline_after_s, "%llu",
		 (unsigned long long)(cfg_duration_ms(section, "scheduler", "agent_offline_after") / 1000));

	sched.agent_offline = loop_register(&agent_offline);
	if (!sched.agent_offline || renewal_loops_register(w, section) != 0 || crl_loop_start(w, section) != 0 ||
	    ocsp_rotation_start(w) != 0) {
		log_error("scheduler loops: out of memory");
		return -1;
	}
	if (jobs_start(w, section) != 0 || acme_revoke_loop_start(w, section) != 0 ||
	    acme_account_loop_start(w, section) != 0 ||
	    acme_ari_loop_start(w, section) != 0)
		return -1;
	if (loops_start(w, section) != 0)
		return -1;
	return 0;
}

static void scheduler_metrics(struct worker *w, struct strbuf *out)
{
	(void)w;
	loops_metrics(out);
	jobs_metrics(out);
	acme_revoke_metrics(out);
	acme_account_metrics(out);
	acme_ari_metrics(out);
	crl_loop_metrics(out);
}

static void scheduler_stop(struct worker *w)
{
	(void)w;
	jobs_stop();
	loops_stop();
	crl_loop_stop();
}

static const struct worker_ops ops = {
	.role = IPC_ROLE_SCHEDULER,
	.summary = "certward-scheduler: renewal loops, job dispatch and remote issuers.",
	.harden = HARDEN_NET_CLIENT,
	.init = scheduler_init,
	.metrics = scheduler_metrics,
	.stop = scheduler_stop,
#if CERTWARD_TEST_HOOKS
	.test_hook = scheduler_test_hook,
#endif
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}

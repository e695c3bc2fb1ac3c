/* certward-deploy: the deploy executor (agentless targets, hooks). */
#include <errno.h>
#include <unistd.h>

#include "codec.h"
#include "dns_hooks.h"
#include "harden.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

static int deploy_init(struct worker *w, const struct cfg *section)
{
	/* counters present from the start, so a scrape sees 0 rather than nothing */
	metrics_add(worker_metrics(w), "dns_hooks_run_total", NULL, 0);
	metrics_add(worker_metrics(w), "dns_hooks_failed_total", NULL, 0);
	metrics_add(worker_metrics(w), "dns_hooks_refused_total", NULL, 0);
	return dns_hooks_init(w, section);
}

static void deploy_on_message(struct worker *w, struct ipc_channel *from, struct ipc_msg *m, int fd)
{
	if (fd >= 0)
		close(fd);
	if (m->type == IPC_T_DNS_HOOK_RUN && ipc_channel_peer_role(from) == IPC_ROLE_SCHEDULER) {
		dns_hooks_on_run(w, from, m);
		return;
	}
	log_warn("unexpected message type %u from %s", m->type, ipc_channel_peer(from));
	if (!(m->flags & IPC_F_REPLY))
		ipc_reply_error(from, m, ENOTSUP, "certward-deploy does not handle this message");
}

static void deploy_metrics(struct worker *w, struct strbuf *out)
{
	(void)w;
	dns_hooks_metrics(out);
}

static void deploy_peer_closed(struct worker *w, struct ipc_channel *ch)
{
	(void)w;
	dns_hooks_peer_closed(ch);
}

static void deploy_stop(struct worker *w)
{
	(void)w;
	dns_hooks_stop();
}

static const struct worker_ops ops = {
	.role = IPC_ROLE_DEPLOY,
	.summary = "certward-deploy: deploys certificates to agentless targets and runs deploy and DNS hooks.",
	.harden = HARDEN_NET_CLIENT | HARDEN_EXEC,
	.init = deploy_init,
	.on_message = deploy_on_message,
	.metrics = deploy_metrics,
	.peer_closed = deploy_peer_closed,
	.stop = deploy_stop,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}

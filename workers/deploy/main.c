/* certward-deploy: the deploy executor (agentless targets, hooks). */
#include "codec.h"
#include "harden.h"
#include "worker.h"

static const struct worker_ops ops = {
	.role = IPC_ROLE_DEPLOY,
	.summary = "certward-deploy: deploys certificates to agentless targets and runs deploy hooks.",
	.harden = HARDEN_NET_CLIENT | HARDEN_EXEC,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}

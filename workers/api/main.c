/* certward-api: the network-facing front end. It holds no private key and no
 * database credentials; it reaches the store, the signer and the scheduler
 * only through its IPC channels. */
#include "codec.h"
#include "harden.h"
#include "worker.h"

static const struct worker_ops ops = {
	.role = IPC_ROLE_API,
	.summary = "certward-api: HTTPS front end of certward (REST API and protocol endpoints).",
	.harden = HARDEN_NET_ACCEPT,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}

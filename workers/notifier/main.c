/* certward-notifier: e-mail, webhook and chat notifications. */
#include "codec.h"
#include "harden.h"
#include "worker.h"

static const struct worker_ops ops = {
	.role = IPC_ROLE_NOTIFIER,
	.summary = "certward-notifier: sends notifications (e-mail, webhooks, chat, paging).",
	.harden = HARDEN_NET_CLIENT,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}

/* See ocsp_rotation.h. */
#include "ocsp_rotation.h"

#include "codec.h"
#include "loops.h"

static struct {
	struct worker *w;
	struct loop *loop;
} rot;

static void on_renewed(int status, struct ipc_msg *m, int fd, void *arg)
{
	(void)fd;
	(void)arg;
	if (status != 0 || !m || m->type != IPC_T_OCSP_RESPONDERS_RENEWED) {
		loop_done(rot.loop, 0, NULL,
			  status == 0 && m && m->type == IPC_T_ERROR ? m->u.error.message : "the signer is unavailable");
		return;
	}
	loop_done(rot.loop, m->u.ocsp_responders_renewed.renewed, "OCSP responder certificate(s) renewed", NULL);
}

static void rotate(struct loop *l, void *arg)
{
	struct ipc_msg m = {.type = IPC_T_OCSP_RESPONDERS_RENEW};
	struct ipc_channel *ch = worker_peer(rot.w, IPC_ROLE_SIGNER);

	(void)arg;
	if (!ch || ipc_request(ch, &m, -1, worker_ipc_timeout_ms(rot.w), on_renewed, NULL) != 0)
		loop_done(l, 0, NULL, "the signer is unavailable");
}

int ocsp_rotation_start(struct worker *w)
{
	/* every node: each node's signer holds its own responders */
	static const struct loop_def def = {
		.name = "ocsp_rotation",
		.interval_key = "ocsp_rotation_interval",
		.leader_only = false,
		.run = rotate,
	};

	rot.w = w;
	rot.loop = loop_register(&def);
	return rot.loop ? 0 : -1;
}

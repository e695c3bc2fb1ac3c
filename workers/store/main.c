/* certward-store: the only process that talks to PostgreSQL. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "codec.h"
#include "harden.h"
#include "log.h"
#include "pool.h"
#include "worker.h"

static int store_init(struct worker *w, const struct cfg *section)
{
	struct pg_pool *p = pg_pool_start(worker_loop(w), cfg_str(section, "store", "dsn"),
					  (unsigned)cfg_int(section, "store", "pool_size"),
					  cfg_duration_ms(section, "store", "connect_timeout"));

	if (!p) {
		log_error("cannot start the postgresql pool");
		return -1;
	}
	worker_set_data(w, p);
	return 0;
}

static void store_metrics(struct worker *w, struct strbuf *out)
{
	pg_pool_metrics(worker_data(w), out);
}

static void store_message(struct worker *w, struct ipc_channel *from, struct ipc_msg *m, int fd)
{
	struct ipc_msg r = {.type = IPC_T_STORE_HEALTH};

	if (fd >= 0)
		close(fd);
	if (m->type != IPC_T_STORE_HEALTH_GET) {
		ipc_reply_error(from, m, ENOTSUP, "the store does not handle this message");
		return;
	}
	r.u.store_health.connections_up = pg_pool_connected(worker_data(w));
	r.u.store_health.pool_size = (uint32_t)pg_pool_size(worker_data(w));
	ipc_reply(from, m, &r);
}

static void store_stop(struct worker *w)
{
	pg_pool_stop(worker_data(w));
	worker_set_data(w, NULL);
}

static const struct worker_ops ops = {
	.role = IPC_ROLE_STORE,
	.summary = "certward-store: the PostgreSQL gateway of certward (the only process holding database credentials).",
	.harden = HARDEN_NET_CLIENT,
	.init = store_init,
	.on_message = store_message,
	.metrics = store_metrics,
	.stop = store_stop,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}

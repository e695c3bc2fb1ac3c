/*
 * The life of a certward worker process, shared by every worker executable:
 *
 *   exec by the master with fds described in CERTWARD_WORKER_FDS
 *   -> close every other inherited fd
 *   -> read its CONFIG section on the control channel
 *   -> ops->init (open files, listeners, connections it needs)
 *   -> harden (no_new_privs, seccomp allow-list)
 *   -> READY, then serve until SHUTDOWN, SIGTERM or the master goes away.
 *
 * The runtime answers PING, PEER_PING, PEER_UP, METRICS_GET and SHUTDOWN
 * itself and passes every other message to ops->on_message.
 */
#ifndef CERTWARD_WORKER_H
#define CERTWARD_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "channel.h"
#include "config.h"
#include "util.h"

struct worker;

struct worker_ops {
	unsigned role;        /* IPC_ROLE_* */
	const char *summary;  /* one line for --help */
	unsigned harden;      /* HARDEN_* flags */
	/* After configuration, before hardening. Return 0 or -1 (after logging). */
	int (*init)(struct worker *w, const struct cfg *section);
	/* A message the runtime does not handle itself (may be NULL). */
	void (*on_message)(struct worker *w, struct ipc_channel *from, struct ipc_msg *m, int fd);
	/* Append snapshot lines (lib/metrics.h format) for figures kept outside
	 * the registry, such as gauges read at snapshot time (may be NULL). */
	void (*metrics)(struct worker *w, struct strbuf *out);
	/* A peer's channel closed and is about to be freed: forget every
	 * reference to it (may be NULL). */
	void (*peer_closed)(struct worker *w, struct ipc_channel *ch);
	/* Graceful stop: close what init opened (may be NULL). */
	void (*stop)(struct worker *w);
	/* Builds with -Dtest_hooks=true: a TEST_HOOK the runtime does not know
	 * (may be NULL). Returns 0 or a negative errno, with what was done in msg;
	 * -ENOENT when hook is not one of its own. */
	int (*test_hook)(struct worker *w, const char *hook, const char *arg, char *msg, size_t msglen);
};

int worker_main(int argc, char **argv, const struct worker_ops *ops);

uv_loop_t *worker_loop(struct worker *w);
const char *worker_name(const struct worker *w);
/* The current channel to a wired peer by role, or NULL while it restarts. */
struct ipc_channel *worker_peer(struct worker *w, unsigned role);
/* The channel to the master, or NULL while stopping. */
struct ipc_channel *worker_control(struct worker *w);
void *worker_data(struct worker *w);
/* This worker's metrics registry (lib/metrics.h), written into every snapshot. */
struct metrics *worker_metrics(struct worker *w);
void worker_set_data(struct worker *w, void *data);
/* Deadline for requests this worker makes (master.ipc_timeout). */
uint64_t worker_ipc_timeout_ms(const struct worker *w);

#endif

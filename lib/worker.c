#include "worker.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "build_config.h"
#include "dns_hook_test.h"
#include "harden.h"
#include "log.h"
#include "metrics.h"
#include "store_client.h"

#define MAX_PEERS 72 /* 64 api instances + the other workers */

struct peer {
	char name[32];
	unsigned role;
	int inherited_fd; /* until the loop opens the channel */
	bool had_channel; /* to tell a first channel from a replacement */
	struct ipc_channel *ch;
};

struct worker {
	const struct worker_ops *ops;
	uv_loop_t loop;
	char name[32];
	unsigned instance;
	struct ipc_channel *control;
	struct peer peers[MAX_PEERS];
	size_t npeers;
	struct cfg *cfg;
	int configured;
	int stopping;
	int exit_code;
	uint64_t ipc_timeout_ms;
	uint64_t started_ms;
	uint64_t pings, peer_changes, peer_losses;
	struct metrics *metrics;
	uv_signal_t sigterm;
	uv_prepare_t log_flusher;
	void *data;
};

struct metrics *worker_metrics(struct worker *w)
{
	return w->metrics;
}

/* Every request this worker makes, by peer and outcome (lib/metrics.h). */
static void observe_ipc(const struct ipc_channel *ch, int status, uint64_t duration_us, void *arg)
{
	struct worker *w = arg;
	char labels[METRICS_LABELS_MAX];
	const char *result = status == 0		? "ok"
			     : status == -EPROTO	? "error"
			     : status == -ETIMEDOUT	? "timeout"
							: "closed";

	metrics_add(w->metrics, "ipc_requests_total",
		    metrics_labels(labels, sizeof labels, "peer", ipc_channel_peer(ch), "result", result,
				   NULL),
		    1);
	metrics_observe(w->metrics, "ipc_request_duration_seconds",
			metrics_labels(labels, sizeof labels, "peer", ipc_channel_peer(ch), NULL),
			(double)duration_us / 1e6);
}

uv_loop_t *worker_loop(struct worker *w)
{
	return &w->loop;
}

const char *worker_name(const struct worker *w)
{
	return w->name;
}

void *worker_data(struct worker *w)
{
	return w->data;
}

void worker_set_data(struct worker *w, void *data)
{
	w->data = data;
}

uint64_t worker_ipc_timeout_ms(const struct worker *w)
{
	return w->ipc_timeout_ms;
}

struct ipc_channel *worker_peer(struct worker *w, unsigned role)
{
	for (size_t i = 0; i < w->npeers; i++)
		if (w->peers[i].role == role && w->peers[i].ch)
			return w->peers[i].ch;
	return NULL;
}

struct ipc_channel *worker_control(struct worker *w)
{
	return w->control;
}

static struct peer *peer_by_name(struct worker *w, const char *name)
{
	for (size_t i = 0; i < w->npeers; i++)
		if (strcmp(w->peers[i].name, name) == 0)
			return &w->peers[i];
	return NULL;
}

static void worker_stop(struct worker *w, int code)
{
	if (w->stopping)
		return;
	w->stopping = 1;
	w->exit_code = code;
	if (w->ops->stop && w->configured)
		w->ops->stop(w);
	for (size_t i = 0; i < w->npeers; i++) {
		if (w->peers[i].ch) {
			ipc_channel_close(w->peers[i].ch);
			w->peers[i].ch = NULL;
		}
	}
	if (w->control) {
		ipc_channel_close(w->control);
		w->control = NULL;
	}
	uv_signal_stop(&w->sigterm);
	uv_close((uv_handle_t *)&w->sigterm, NULL);
	uv_prepare_stop(&w->log_flusher);
	uv_close((uv_handle_t *)&w->log_flusher, NULL);
}

/* Runs before the loop waits for I/O: the log lines of this iteration (one
 * per request on a busy api) leave in one write. */
static void flush_logs(uv_prepare_t *h)
{
	log_flush();
}

/* ---- messages on peer channels ---- */

static void answer_ping(struct worker *w, struct ipc_channel *ch, struct ipc_msg *m)
{
	struct ipc_msg r = {.type = IPC_T_PONG};

	w->pings++;
	r.u.pong.nonce = m->u.ping.nonce;
	r.u.pong.pid = (uint32_t)getpid();
	r.u.pong.name = w->name;
	ipc_reply(ch, m, &r);
}

static void on_peer_msg(struct ipc_channel *ch, struct ipc_msg *m, int fd, void *ud)
{
	struct worker *w = ud;

	if (m->type == IPC_T_PING) {
		answer_ping(w, ch, m);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (w->ops->on_message && w->configured) {
		w->ops->on_message(w, ch, m, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	ipc_reply_error(ch, m, ENOTSUP, "message not handled by this worker");
}

static void on_peer_close(struct ipc_channel *ch, int reason, void *ud)
{
	struct worker *w = ud;

	if (w->ops->peer_closed)
		w->ops->peer_closed(w, ch);
	for (size_t i = 0; i < w->npeers; i++) {
		if (w->peers[i].ch != ch)
			continue;
		w->peers[i].ch = NULL;
		if (w->stopping)
			continue;
		w->peer_losses++;
		if (ipc_is_protocol_error(reason)) {
			struct ipc_msg f = {.type = IPC_T_PEER_FAULT};

			/* the peer is not trustworthy any more: have the master restart it */
			f.u.peer_fault.peer = w->peers[i].name;
			f.u.peer_fault.reason = ipc_strerror(reason);
			if (w->control)
				ipc_send(w->control, &f, -1);
		} else {
			log_event(LOG_WARN, NULL, NULL,
				  "channel to %s closed (%s); a new one comes when it restarts",
				  w->peers[i].name, reason == -EPIPE || !reason ? "peer went away" :
				  strerror(-reason));
		}
	}
}

/* ---- control channel ---- */

struct peer_ping_ctx {
	struct worker *w;
	uint64_t req_id;
	uint64_t t0;
	char peer[32];
};

static void reply_to_master(struct worker *w, uint64_t req_id, struct ipc_msg *r)
{
	struct ipc_msg req = {.id = req_id};

	if (w->control)
		ipc_reply(w->control, &req, r);
}

static void on_peer_pong(int status, struct ipc_msg *reply, int fd, void *arg)
{
	struct peer_ping_ctx *c = arg;
	struct ipc_msg r = {0};
	char msg[128];

	if (fd >= 0)
		close(fd);
	if (status == 0 && reply->type == IPC_T_PONG) {
		r.type = IPC_T_PEER_PONG;
		r.u.peer_pong.peer = c->peer;
		r.u.peer_pong.peer_pid = reply->u.pong.pid;
		r.u.peer_pong.rtt_us = now_us() - c->t0;
	} else {
		snprintf(msg, sizeof msg, "ping of %s failed: %s", c->peer,
			 status ? strerror(-status) : "unexpected reply");
		r.type = IPC_T_ERROR;
		r.u.error.code = (uint32_t)(status ? -status : EPROTO);
		r.u.error.message = msg;
	}
	reply_to_master(c->w, c->req_id, &r);
	free(c);
}

static void handle_peer_ping(struct worker *w, struct ipc_msg *m)
{
	struct peer *p = peer_by_name(w, m->u.peer_ping.peer);
	struct peer_ping_ctx *c;
	struct ipc_msg ping = {.type = IPC_T_PING};
	int rc;

	if (!p) {
		ipc_reply_error(w->control, m, ENOENT, "no such peer on this worker");
		return;
	}
	if (!p->ch) {
		ipc_reply_error(w->control, m, ENOTCONN, "peer channel is down");
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		ipc_reply_error(w->control, m, ENOMEM, "out of memory");
		return;
	}
	c->w = w;
	c->req_id = m->id;
	c->t0 = now_us();
	snprintf(c->peer, sizeof c->peer, "%s", p->name);
	ping.u.ping.nonce = c->t0;
	rc = ipc_request(p->ch, &ping, -1, w->ipc_timeout_ms, on_peer_pong, c);
	if (rc != 0) {
		free(c);
		ipc_reply_error(w->control, m, -rc, "cannot send to peer");
	}
}

static void handle_peer_up(struct worker *w, struct ipc_msg *m, int fd)
{
	struct peer *p = peer_by_name(w, m->u.peer_up.peer);

	/* a worker added later (another api instance after a reload) */
	if (!p && fd >= 0 && m->u.peer_up.role > IPC_ROLE_MASTER && m->u.peer_up.role < IPC_ROLE_CLI &&
	    w->npeers < MAX_PEERS) {
		p = &w->peers[w->npeers++];
		snprintf(p->name, sizeof p->name, "%s", m->u.peer_up.peer);
		p->role = m->u.peer_up.role;
		p->inherited_fd = -1;
		p->had_channel = false;
		p->ch = NULL;
	}
	if (!p || fd < 0) {
		if (fd >= 0)
			close(fd);
		log_error("PEER_UP for unknown peer %s", m->u.peer_up.peer);
		return;
	}
	if (p->ch)
		ipc_channel_close(p->ch); /* its on_close clears p->ch */
	p->ch = ipc_channel_open(&w->loop, fd, p->role, p->name, on_peer_msg, on_peer_close, w);
	if (!p->ch) {
		close(fd);
		log_error("cannot open the new channel to %s", p->name);
		return;
	}
	if (p->had_channel) {
		w->peer_changes++;
		log_info("channel to %s re-established", p->name);
	} else {
		log_debug("channel to %s up", p->name);
	}
	p->had_channel = true;
}

static void handle_metrics(struct worker *w, struct ipc_msg *m)
{
	struct strbuf b;
	struct ipc_msg r = {.type = IPC_T_METRICS};

	strbuf_init(&b, 262144);
	strbuf_printf(&b, "uptime_seconds %llu\n",
		      (unsigned long long)((now_ms() - w->started_ms) / 1000));
	strbuf_printf(&b, "pings_answered_total %llu\n", (unsigned long long)w->pings);
	strbuf_printf(&b, "peer_channels_lost_total %llu\n", (unsigned long long)w->peer_losses);
	strbuf_printf(&b, "peer_channels_replaced_total %llu\n", (unsigned long long)w->peer_changes);
	if (w->ops->metrics)
		w->ops->metrics(w, &b);
	metrics_write(w->metrics, &b);
	r.u.metrics.text.ptr = (const uint8_t *)(b.p ? b.p : "");
	r.u.metrics.text.len = (uint32_t)b.len;
	ipc_reply(w->control, m, &r);
	strbuf_free(&b);
}

static void handle_test_hook(struct worker *w, struct ipc_msg *m)
{
#if CERTWARD_TEST_HOOKS
	const char *hook = m->u.test_hook.hook, *arg = m->u.test_hook.arg;
	char msg[128];
	int rc = -1;

	log_warn("test hook: %s %s", hook, arg);
	if (strcmp(hook, "bad-frame") == 0) {
		struct peer *p = peer_by_name(w, arg);
		/* a PING header announcing far more than a PING may carry */
		static const uint8_t frame[IPC_HEADER_LEN] = {0, 1, 0, 0, 0, IPC_T_PING, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

		if (!p || !p->ch) {
			ipc_reply_error(w->control, m, ENOENT, "no such peer, or its channel is down");
			return;
		}
		rc = ipc_send_raw(p->ch, frame, sizeof frame);
		snprintf(msg, sizeof msg, "bad frame sent to %s (%d)", arg, rc);
		ipc_reply_error(w->control, m, 0, msg);
		return;
	}
	if (strcmp(hook, "store-call") == 0) {
		/* arg "OP" or "OP:P1,P2": call the store, log the outcome when it comes */
		rc = store_call_test_hook(w, arg, msg, sizeof msg);
		ipc_reply_error(w->control, m, -rc, msg);
		return;
	}
	if (strcmp(hook, "dns-hook") == 0) {
		rc = dns_hook_test_hook(w, arg, msg, sizeof msg);
		ipc_reply_error(w->control, m, -rc, msg);
		return;
	}
	if (w->ops->test_hook && strcmp(hook, "syscall") != 0 &&
	    (rc = w->ops->test_hook(w, hook, arg, msg, sizeof msg)) != -ENOENT) {
		ipc_reply_error(w->control, m, -rc, msg);
		return;
	}
	if (strcmp(hook, "syscall") != 0) {
		ipc_reply_error(w->control, m, EINVAL, "test hooks: syscall, bad-frame, store-call, dns-hook");
		return;
	}
	if (strcmp(arg, "socket") == 0) {
		rc = socket(AF_INET, SOCK_STREAM, 0);
		if (rc >= 0)
			close(rc);
	} else if (strcmp(arg, "execve") == 0) {
		char *const argv[] = {(char *)"/bin/true", NULL};
		rc = execve("/bin/true", argv, argv + 1);
	} else {
		ipc_reply_error(w->control, m, EINVAL, "test hook syscall knows: socket, execve");
		return;
	}
	/* still alive: the filter let it through */
	snprintf(msg, sizeof msg, "syscall %s was allowed (returned %d)", arg, rc);
	ipc_reply_error(w->control, m, 0, msg);
#else
	ipc_reply_error(w->control, m, ENOTSUP, "this build has no test hooks");
#endif
}

static int configure(struct worker *w, struct ipc_msg *m)
{
	struct cfg_error err;
	char buf[512];

	if (strcmp(m->u.config.name, w->name) != 0) {
		log_error("CONFIG for %s received by %s", m->u.config.name, w->name);
		return -1;
	}
	w->instance = m->u.config.instance;
	w->ipc_timeout_ms = m->u.config.ipc_timeout_ms ? m->u.config.ipc_timeout_ms : 5000;
	if (cfg_section_parse(ipc_role_name(w->ops->role), (const char *)m->u.config.section.ptr,
			      m->u.config.section.len, &w->cfg, &err) != 0) {
		cfg_error_format(&err, buf, sizeof buf);
		log_error("bad configuration from the master: %s", buf);
		return -1;
	}
	if (w->ops->init && w->ops->init(w, w->cfg) != 0)
		return -1;
	w->configured = 1;
	if (harden_apply(w->name, w->ops->harden, buf, sizeof buf) != 0) {
		log_error("%s", buf);
		return -1;
	}
	return 0;
}

static void on_control_msg(struct ipc_channel *ch, struct ipc_msg *m, int fd, void *ud)
{
	struct worker *w = ud;

	if (m->type != IPC_T_PEER_UP && fd >= 0) {
		close(fd);
		fd = -1;
	}
	if (!w->configured && m->type != IPC_T_CONFIG && m->type != IPC_T_PEER_UP) {
		ipc_reply_error(ch, m, EAGAIN, "worker not configured yet");
		if (fd >= 0)
			close(fd);
		return;
	}
	switch (m->type) {
	case IPC_T_CONFIG: {
		struct ipc_msg r = {.type = IPC_T_READY};

		if (w->configured) {
			log_error("second CONFIG ignored");
			return;
		}
		if (configure(w, m) != 0) {
			worker_stop(w, 2);
			return;
		}
		r.u.ready.pid = (uint32_t)getpid();
		ipc_send(ch, &r, -1);
		log_info("ready");
		return;
	}
	case IPC_T_PING:
		answer_ping(w, ch, m);
		return;
	case IPC_T_PEER_PING:
		handle_peer_ping(w, m);
		return;
	case IPC_T_PEER_UP:
		handle_peer_up(w, m, fd);
		return;
	case IPC_T_METRICS_GET:
		handle_metrics(w, m);
		return;
	case IPC_T_SHUTDOWN:
		log_info("shutdown requested by the master");
		worker_stop(w, 0);
		return;
	case IPC_T_TEST_HOOK:
		handle_test_hook(w, m);
		return;
	default:
		on_peer_msg(ch, m, fd, ud);
	}
}

static void on_control_close(struct ipc_channel *ch, int reason, void *ud)
{
	struct worker *w = ud;

	if (w->control == ch)
		w->control = NULL;
	if (!w->stopping) {
		log_warn("control channel to the master closed; exiting");
		worker_stop(w, 1);
	}
}

static void on_sigterm(uv_signal_t *s, int signum)
{
	struct worker *w = s->data;

	log_info("SIGTERM received, stopping");
	worker_stop(w, 0);
}

/* CERTWARD_WORKER_FDS="control=3,store=4,api.1=5" */
static int parse_fds(struct worker *w, const char *spec, int *control_fd)
{
	char buf[2048];
	char *save = NULL, *tok;

	*control_fd = -1;
	if (!spec || strlen(spec) >= sizeof buf)
		return -1;
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *end, base[32];
		long fd;
		int role;

		if (!eq)
			return -1;
		*eq = '\0';
		/* "-": a peer that is not up yet; its channel arrives with PEER_UP */
		if (strcmp(eq + 1, "-") == 0)
			fd = -1;
		else if ((fd = strtol(eq + 1, &end, 10)) < 3 || fd > 1023 || *end)
			return -1;
		if (strlen(tok) >= sizeof base || !*tok)
			return -1;
		if (strcmp(tok, "control") == 0) {
			*control_fd = (int)fd;
			continue;
		}
		snprintf(base, sizeof base, "%s", tok);
		base[strcspn(base, ".")] = '\0'; /* "api.1" is an api */
		role = ipc_role_by_name(base);
		if (role <= IPC_ROLE_MASTER || role >= IPC_ROLE_CLI || w->npeers >= MAX_PEERS)
			return -1;
		snprintf(w->peers[w->npeers].name, sizeof w->peers[0].name, "%s", tok);
		w->peers[w->npeers].role = (unsigned)role;
		w->peers[w->npeers].inherited_fd = (int)fd;
		w->npeers++;
	}
	return *control_fd >= 0 ? 0 : -1;
}

static void usage(const struct worker_ops *ops, FILE *out)
{
	fprintf(out,
		"usage: %s [--version] [--help]\n"
		"%s\n"
		"This program is a certward worker: certwardd starts it with its channels\n"
		"and configuration. It is not meant to be run by hand.\n",
		ipc_role_executable(ops->role), ops->summary);
}

int worker_main(int argc, char **argv, const struct worker_ops *ops)
{
	static const struct option longopts[] = {
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct worker *w;
	const char *name;
	int control_fd, opt, code;
	int keep[MAX_PEERS + 1];
	size_t nkeep = 0;

	while ((opt = getopt_long(argc, argv, "Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'V':
			printf("%s %s\n", ipc_role_executable(ops->role), CERTWARD_VERSION);
			return 0;
		case 'h':
			usage(ops, stdout);
			return 0;
		default:
			usage(ops, stderr);
			return 64;
		}
	}
	if (optind != argc) {
		usage(ops, stderr);
		return 64;
	}
	/*
	 * IPC frames and HTTP bodies of tens of KiB come and go at every
	 * request. glibc's defaults hand freed memory at the top of the heap
	 * back to the kernel past 128 KiB (and serve larger blocks with their
	 * own mappings), so under load each frame touched fresh pages: page
	 * faults were a third of the store's time answering cached lists
	 * (docs/architecture.md, "Start-up of a worker"). Keep up to 16 MiB
	 * free for reuse; blocks up to 8 MiB (a frame is at most about 4) come
	 * from the heap.
	 */
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);

	w = calloc(1, sizeof *w);
	if (!w)
		return 1;
	w->ops = ops;
	name = getenv("CERTWARD_WORKER_NAME");
	snprintf(w->name, sizeof w->name, "%s", name && *name ? name : ipc_role_name(ops->role));
	log_init(w->name);
	if (parse_fds(w, getenv("CERTWARD_WORKER_FDS"), &control_fd) != 0) {
		log_error("missing or malformed CERTWARD_WORKER_FDS: %s must be started by certwardd",
			  ipc_role_executable(ops->role));
		free(w);
		return 64;
	}
	/* the master is our only way to the world: die with it */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);

	keep[nkeep++] = control_fd;
	for (size_t i = 0; i < w->npeers; i++)
		if (w->peers[i].inherited_fd >= 0)
			keep[nkeep++] = w->peers[i].inherited_fd;
	close_fds_except(keep, nkeep);

	w->started_ms = now_ms();
	w->metrics = metrics_new();
	ipc_set_request_observer(observe_ipc, w);
	uv_loop_init(&w->loop);
	uv_signal_init(&w->loop, &w->sigterm);
	w->sigterm.data = w;
	uv_signal_start(&w->sigterm, on_sigterm, SIGTERM);
	uv_prepare_init(&w->loop, &w->log_flusher);
	uv_prepare_start(&w->log_flusher, flush_logs);
	uv_unref((uv_handle_t *)&w->log_flusher);
	log_set_buffered(1);
	w->control = ipc_channel_open(&w->loop, control_fd, IPC_ROLE_MASTER, "master",
				      on_control_msg, on_control_close, w);
	for (size_t i = 0; i < w->npeers; i++) {
		if (w->peers[i].inherited_fd < 0)
			continue;
		w->peers[i].had_channel = true;
		w->peers[i].ch = ipc_channel_open(&w->loop, w->peers[i].inherited_fd, w->peers[i].role, w->peers[i].name,
						  on_peer_msg, on_peer_close, w);
	}
	if (!w->control) {
		log_error("cannot open the control channel");
		worker_stop(w, 1);
	}

	uv_run(&w->loop, UV_RUN_DEFAULT);
	/* drain close callbacks */
	uv_run(&w->loop, UV_RUN_NOWAIT);
	if (uv_loop_close(&w->loop) != 0)
		log_debug("loop closed with handles still open");
	log_set_buffered(0);
	code = w->exit_code;
	cfg_free(w->cfg);
	metrics_free(w->metrics);
	free(w);
	return code;
}

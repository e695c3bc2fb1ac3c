/*
 * The control socket: `certward ctl` talks to the master here, with the same
 * framing and codec as the workers. The socket is created mode 0600 and a
 * peer must also have our uid (or be root) by SO_PEERCRED.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "util.h"

#define MAX_CLIENTS 16

static char socket_path[108];
static unsigned nclients;
static struct client *clients[MAX_CLIENTS];

/* A CLI connection; outlives its channel while forwarded requests are out. */
struct client {
	struct ipc_channel *ch;
	unsigned refs;
};

struct forward {
	struct client *c;
	uint64_t req_id;
	uint16_t kind; /* the CTL_* type being answered */
	char worker[32];
	char peer[32];
	uint64_t t0;
};

static void free_handle(uv_handle_t *h)
{
	free(h);
}

static void client_unref(struct client *c)
{
	if (--c->refs == 0)
		free(c);
}

static void reply_text(struct client *c, uint64_t id, const char *text, size_t len)
{
	struct ipc_msg req = {.id = id};
	struct ipc_msg r = {.type = IPC_T_CTL_OK};

	if (!c->ch)
		return;
	r.u.ctl_ok.text.ptr = (const uint8_t *)text;
	r.u.ctl_ok.text.len = (uint32_t)len;
	ipc_reply(c->ch, &req, &r);
}

static void reply_err(struct client *c, uint64_t id, int code, const char *text)
{
	struct ipc_msg req = {.id = id};

	if (c->ch)
		ipc_reply_error(c->ch, &req, code, text);
}

static void status_table(struct strbuf *b)
{
	strbuf_printf(b, "%-12s %8s %-10s %8s %10s  %s\n", "WORKER", "PID", "STATE", "RESTARTS",
		      "UPTIME", "LAST EXIT");
	for (size_t i = 0; i < M.nslots; i++) {
		const struct slot *s = &M.slots[i];
		char up[32] = "-", pid[16] = "-";

		if (s->retired)
			continue;
		if (s->pid) {
			format_duration(up, sizeof up, now_ms() - s->started_ms);
			snprintf(pid, sizeof pid, "%d", (int)s->pid);
		}
		strbuf_printf(b, "%-12s %8s %-10s %8u %10s  %s\n", s->name, pid,
			      slot_state_name(s), s->restarts, up, s->last_exit);
	}
}

static void on_forward_reply(int status, struct ipc_msg *r, int fd, void *arg)
{
	struct forward *f = arg;
	char text[512];

	if (fd >= 0)
		close(fd);
	if (status != 0) {
		snprintf(text, sizeof text, "%s: %s", f->worker,
			 status == -ECONNRESET ? "worker went away before answering" :
			 strerror(-status));
		reply_err(f->c, f->req_id, -status, text);
	} else if (r->type == IPC_T_ERROR) {
		snprintf(text, sizeof text, "%s: %s", f->worker, r->u.error.message);
		reply_err(f->c, f->req_id, (int)r->u.error.code, text);
	} else if (r->type == IPC_T_PONG) {
		int n = snprintf(text, sizeof text, "%s: pong from pid %u in %llu us\n", f->worker,
				 r->u.pong.pid, (unsigned long long)(now_us() - f->t0));
		reply_text(f->c, f->req_id, text, (size_t)n);
	} else if (r->type == IPC_T_PEER_PONG) {
		int n = snprintf(text, sizeof text, "%s -> %s: pong from pid %u in %llu us\n",
				 f->worker, r->u.peer_pong.peer, r->u.peer_pong.peer_pid,
				 (unsigned long long)r->u.peer_pong.rtt_us);
		reply_text(f->c, f->req_id, text, (size_t)n);
	} else if (r->type == IPC_T_METRICS) {
		reply_text(f->c, f->req_id, (const char *)r->u.metrics.text.ptr, r->u.metrics.text.len);
	} else {
		reply_err(f->c, f->req_id, EPROTO, "unexpected reply from the worker");
	}
	client_unref(f->c);
	free(f);
}

/* Send `m` to worker `name` and answer the CLI request when it replies. */
static void forward(struct client *c, const struct ipc_msg *req, const char *name,
		    struct ipc_msg *m)
{
	struct slot *s = slot_by_name(name);
	struct forward *f;
	int rc;

	if (!s) {
		reply_err(c, req->id, ENOENT, "no such worker (see certward ctl status)");
		return;
	}
	if (!s->control || s->state != SLOT_RUNNING) {
		reply_err(c, req->id, ENOTCONN, "worker is not running");
		return;
	}
	f = calloc(1, sizeof *f);
	if (!f) {
		reply_err(c, req->id, ENOMEM, "out of memory");
		return;
	}
	f->c = c;
	f->req_id = req->id;
	f->kind = req->type;
	f->t0 = now_us();
	snprintf(f->worker, sizeof f->worker, "%s", name);
	c->refs++;
	rc = ipc_request(s->control, m, -1, cfg_duration_ms(M.cfg, "master", "ipc_timeout"),
			 on_forward_reply, f);
	if (rc != 0) {
		reply_err(c, req->id, -rc, "cannot reach the worker");
		client_unref(c);
		free(f);
	}
}

static void on_client_msg(struct ipc_channel *ch, struct ipc_msg *m, int fd, void *ud)
{
	struct client *c = ud;
	struct ipc_msg w = {0};
	char text[2048];

	if (fd >= 0)
		close(fd);
	switch (m->type) {
	case IPC_T_CTL_STATUS: {
		struct strbuf b;

		strbuf_init(&b, 65536);
		status_table(&b);
		reply_text(c, m->id, b.p ? b.p : "", b.len);
		strbuf_free(&b);
		return;
	}
	case IPC_T_CTL_RESTART: {
		struct slot *s = slot_by_name(m->u.ctl_restart.worker);
		int n;

		if (!s) {
			reply_err(c, m->id, ENOENT, "no such worker (see certward ctl status)");
			return;
		}
		log_info("restart of %s requested on the control socket", s->name);
		if (slot_restart(s) != 0 && s->state != SLOT_STARTING) {
			reply_err(c, m->id, EAGAIN, "restart not possible now");
			return;
		}
		n = snprintf(text, sizeof text, "restarting %s\n", s->name);
		reply_text(c, m->id, text, (size_t)n);
		return;
	}
	case IPC_T_CTL_RELOAD: {
		size_t n;

		if (supervisor_reload(text, sizeof text - 1) != 0) {
			reply_err(c, m->id, EINVAL, text);
			return;
		}
		n = strlen(text);
		text[n++] = '\n';
		reply_text(c, m->id, text, n);
		return;
	}
	case IPC_T_CTL_PING:
		if (m->u.ctl_ping.peer[0]) {
			w.type = IPC_T_PEER_PING;
			w.u.peer_ping.peer = m->u.ctl_ping.peer;
		} else {
			w.type = IPC_T_PING;
			w.u.ping.nonce = now_us();
		}
		forward(c, m, m->u.ctl_ping.worker, &w);
		return;
	case IPC_T_CTL_METRICS:
		w.type = IPC_T_METRICS_GET;
		forward(c, m, m->u.ctl_metrics.worker, &w);
		return;
	case IPC_T_CTL_TEST_HOOK:
		w.type = IPC_T_TEST_HOOK;
		w.u.test_hook.hook = m->u.ctl_test_hook.hook;
		w.u.test_hook.arg = m->u.ctl_test_hook.arg;
		forward(c, m, m->u.ctl_test_hook.worker, &w);
		return;
	default:
		reply_err(c, m->id, ENOTSUP, "not a control request");
	}
}

static void on_client_close(struct ipc_channel *ch, int reason, void *ud)
{
	struct client *c = ud;

	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] == c)
			clients[i] = NULL;
	c->ch = NULL;
	nclients--;
	client_unref(c);
}


static void on_connection(uv_stream_t *server, int status)
{
	uv_pipe_t *tmp;
	uv_os_fd_t raw;
	struct ucred cred;
	socklen_t clen = sizeof cred;
	struct client *c;
	int fd;

	if (status != 0)
		return;
	tmp = malloc(sizeof *tmp);
	if (!tmp)
		return;
	uv_pipe_init(M.loop, tmp, 0);
	if (uv_accept(server, (uv_stream_t *)tmp) != 0 || uv_fileno((uv_handle_t *)tmp, &raw) != 0) {
		uv_close((uv_handle_t *)tmp, free_handle);
		return;
	}
	fd = dup(raw);
	uv_close((uv_handle_t *)tmp, free_handle);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn("control socket: refused a connection from uid %d", (int)cred.uid);
		close(fd);
		return;
	}
	if (nclients >= MAX_CLIENTS) {
		log_warn("control socket: too many clients");
		close(fd);
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->refs = 1;
	c->ch = ipc_channel_open(M.loop, fd, IPC_ROLE_CLI, "cli", on_client_msg, on_client_close, c);
	if (!c->ch) {
		free(c);
		return;
	}
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		if (!clients[i]) {
			clients[i] = c;
			break;
		}
	}
	nclients++;
}

int control_open(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int probe;
	mode_t old;
	int rc;

	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return -1;
	}
	/* a socket that still answers belongs to a running certwardd */
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
		close(probe);
		snprintf(err, errlen, "%s is in use: is another certwardd running?", path);
		return -1;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	uv_pipe_init(M.loop, &M.control_server, 0);
	old = umask(0177);
	rc = uv_pipe_bind(&M.control_server, path);
	umask(old);
	if (rc == 0)
		rc = chmod(path, 0600) == 0 ? 0 : uv_translate_sys_error(errno);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&M.control_server, 8, on_connection);
	if (rc != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&M.control_server, NULL);
		return -1;
	}
	snprintf(socket_path, sizeof socket_path, "%s", path);
	M.control_open = true;
	return 0;
}

void control_close(void)
{
	if (!M.control_open)
		return;
	M.control_open = false;
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] && clients[i]->ch)
			ipc_channel_close(clients[i]->ch);
	uv_close((uv_handle_t *)&M.control_server, NULL);
	unlink(socket_path);
}

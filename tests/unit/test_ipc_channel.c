/* The libuv channel: requests, replies, deadlines, peer loss, fd passing and
 * protocol errors, over a real socketpair. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"

struct side {
	struct ipc_channel *ch;
	int closed;
	int close_reason;
	int got_type;
	int got_fd;
	int answer; /* reply to PINGs */
};

struct reply_seen {
	int called;
	int status;
	uint64_t nonce;
};

static uv_loop_t loop;

static void on_msg(struct ipc_channel *ch, struct ipc_msg *m, int fd, void *ud)
{
	struct side *s = ud;

	s->got_type = m->type;
	s->got_fd = fd;
	if (m->type == IPC_T_PING && s->answer) {
		struct ipc_msg r = {.type = IPC_T_PONG};

		r.u.pong.nonce = m->u.ping.nonce + 1;
		r.u.pong.pid = 1;
		r.u.pong.name = "peer";
		ipc_reply(ch, m, &r);
	}
}

static void on_close(struct ipc_channel *ch, int reason, void *ud)
{
	struct side *s = ud;

	s->closed = 1;
	s->close_reason = reason;
	s->ch = NULL;
}

static void on_reply(int status, struct ipc_msg *reply, int fd, void *arg)
{
	struct reply_seen *r = arg;

	r->called++;
	r->status = status;
	if (reply && reply->type == IPC_T_PONG)
		r->nonce = reply->u.pong.nonce;
}

/* master (role MASTER) on a[0], worker (role API) on a[1] */
static void pair(struct side *master, struct side *worker, int *raw_worker_fd)
{
	int sp[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	master->got_fd = -1;
	if (worker)
		worker->got_fd = -1;
	master->ch = ipc_channel_open(&loop, sp[0], IPC_ROLE_API, "api", on_msg, on_close, master);
	cr_assert_not_null(master->ch);
	if (raw_worker_fd) {
		*raw_worker_fd = sp[1];
		return;
	}
	worker->ch = ipc_channel_open(&loop, sp[1], IPC_ROLE_MASTER, "master", on_msg, on_close, worker);
	cr_assert_not_null(worker->ch);
}

static void run_until(int *flag)
{
	for (int i = 0; i < 2000 && !*flag; i++)
		uv_run(&loop, UV_RUN_ONCE);
}

static void setup(void)
{
	uv_loop_init(&loop);
}

static void teardown(void)
{
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
}

TestSuite(channel, .init = setup, .fini = teardown);

Test(channel, request_and_reply)
{
	struct side m = {0}, w = {.answer = 1};
	struct reply_seen r = {0};
	struct ipc_msg ping = {.type = IPC_T_PING};

	pair(&m, &w, NULL);
	ping.u.ping.nonce = 41;
	cr_assert_eq(ipc_request(m.ch, &ping, -1, 5000, on_reply, &r), 0);
	run_until(&r.called);
	cr_assert_eq(r.called, 1);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.nonce, 42);
	ipc_channel_close(m.ch);
	run_until(&w.closed);
	cr_assert_eq(w.close_reason, -EPIPE, "the worker sees the master go away");
}

Test(channel, deadline_expires)
{
	struct side m = {0}, w = {.answer = 0};
	struct reply_seen r = {0};
	struct ipc_msg ping = {.type = IPC_T_PING};

	pair(&m, &w, NULL);
	cr_assert_eq(ipc_request(m.ch, &ping, -1, 30, on_reply, &r), 0);
	run_until(&r.called);
	cr_assert_eq(r.status, -ETIMEDOUT);
	ipc_channel_close(m.ch);
	ipc_channel_close(w.ch);
	run_until(&w.closed);
}

Test(channel, peer_death_fails_pending_requests)
{
	struct side m = {0}, w = {.answer = 0};
	struct reply_seen r1 = {0}, r2 = {0};
	struct ipc_msg ping = {.type = IPC_T_PING};

	pair(&m, &w, NULL);
	cr_assert_eq(ipc_request(m.ch, &ping, -1, 60000, on_reply, &r1), 0);
	cr_assert_eq(ipc_request(m.ch, &ping, -1, 60000, on_reply, &r2), 0);
	run_until(&w.got_type);
	ipc_channel_close(w.ch); /* the worker dies with two requests unanswered */
	run_until(&r2.called);
	cr_assert_eq(r1.status, -ECONNRESET);
	cr_assert_eq(r2.status, -ECONNRESET);
	cr_assert(m.closed);
}

Test(channel, passes_a_descriptor)
{
	struct side m = {0}, w = {0};
	struct ipc_msg up = {.type = IPC_T_PEER_UP};
	int p[2];
	char buf[8] = {0};

	pair(&m, &w, NULL);
	cr_assert_eq(pipe(p), 0);
	up.u.peer_up.peer = "store";
	up.u.peer_up.role = IPC_ROLE_STORE;
	/* master -> worker: the worker's channel expects the master's role */
	cr_assert_eq(ipc_send(m.ch, &up, p[0]), 0);
	run_until(&w.got_type);
	cr_assert_eq(w.got_type, IPC_T_PEER_UP);
	cr_assert_geq(w.got_fd, 3);
	cr_assert_eq(write(p[1], "hi", 2), 2);
	cr_assert_eq(read(w.got_fd, buf, sizeof buf), 2, "the received fd is the pipe");
	cr_assert_str_eq(buf, "hi");
	close(w.got_fd);
	close(p[1]);
	ipc_channel_close(m.ch);
	ipc_channel_close(w.ch);
	run_until(&w.closed);
}

Test(channel, oversize_frame_drops_the_channel)
{
	struct side m = {0};
	int raw;
	/* PING announcing 64 KiB: more than a PING may carry */
	static const uint8_t frame[16] = {0, 1, 0, 0, 0, IPC_T_PING, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

	pair(&m, NULL, &raw);
	cr_assert_eq(write(raw, frame, sizeof frame), (ssize_t)sizeof frame);
	run_until(&m.closed);
	cr_assert_eq(m.close_reason, IPC_E_OVERSIZE);
	close(raw);
}

Test(channel, forbidden_sender_drops_the_channel)
{
	struct side m = {0};
	struct ipc_msg cfg = {.type = IPC_T_CONFIG};
	uint8_t *f;
	size_t len;
	int raw;

	pair(&m, NULL, &raw);
	/* a worker may not hand out configuration */
	cfg.u.config.name = "api";
	cr_assert_eq(ipc_encode(&cfg, &f, &len), IPC_OK);
	cr_assert_eq(write(raw, f, len), (ssize_t)len);
	free(f);
	run_until(&m.closed);
	cr_assert_eq(m.close_reason, IPC_E_SENDER);
	close(raw);
}

Test(channel, frames_split_across_reads)
{
	struct side m = {0};
	struct ipc_msg ready = {.type = IPC_T_READY};
	uint8_t *f;
	size_t len;
	int raw;

	pair(&m, NULL, &raw);
	ready.u.ready.pid = 7;
	cr_assert_eq(ipc_encode(&ready, &f, &len), IPC_OK);
	for (size_t i = 0; i < len; i++) {
		cr_assert_eq(write(raw, f + i, 1), 1);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	run_until(&m.got_type);
	cr_assert_eq(m.got_type, IPC_T_READY);
	free(f);
	close(raw);
	run_until(&m.closed);
}

/*
 * IPC round trips: certward's channel (codec + libuv pipe, request/reply with
 * deadlines) against a peer doing the same exchange with bare write/read of
 * fixed 24-byte messages on a socketpair, both ends in the same thread.
 * Prints requests per second for both and their ratio.
 *
 *   build/bench/ipc_roundtrip [count]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "util.h"

static uv_loop_t loop;
static long remaining, done;
static struct ipc_channel *client;

static void on_server_msg(struct ipc_channel *ch, struct ipc_msg *m, int fd, void *ud)
{
	struct ipc_msg r = {.type = IPC_T_PONG};

	r.u.pong.nonce = m->u.ping.nonce;
	r.u.pong.pid = 1;
	r.u.pong.name = "bench";
	ipc_reply(ch, m, &r);
}

static void send_one(void);

static void on_reply(int status, struct ipc_msg *reply, int fd, void *arg)
{
	if (status != 0) {
		fprintf(stderr, "request failed: %d\n", status);
		exit(1);
	}
	done++;
	if (--remaining > 0)
		send_one();
	else
		uv_stop(&loop);
}

static void send_one(void)
{
	struct ipc_msg m = {.type = IPC_T_PING};

	m.u.ping.nonce = (uint64_t)remaining;
	if (ipc_request(client, &m, -1, 5000, on_reply, NULL) != 0) {
		fprintf(stderr, "cannot send\n");
		exit(1);
	}
}

static double bench_channel(long count)
{
	int sp[2];
	uint64_t t0;
	struct ipc_channel *server;

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
	uv_loop_init(&loop);
	/* the server side answers PINGs as a worker does to the master */
	server = ipc_channel_open(&loop, sp[1], IPC_ROLE_MASTER, "master", on_server_msg, NULL, NULL);
	client = ipc_channel_open(&loop, sp[0], IPC_ROLE_API, "api", NULL, NULL, NULL);
	remaining = count;
	done = 0;
	t0 = now_us();
	send_one();
	uv_run(&loop, UV_RUN_DEFAULT);
	t0 = now_us() - t0;
	ipc_channel_close(client);
	ipc_channel_close(server);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return (double)done / ((double)t0 / 1e6);
}

/* The same exchange with nothing but syscalls: both ends in one thread,
 * as the channel benchmark has both ends in one loop. */
static double bench_bare(long count)
{
	int sp[2];
	char buf[24] = {0};
	uint64_t t0;

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
	t0 = now_us();
	for (long i = 0; i < count; i++) {
		if (write(sp[0], buf, sizeof buf) != (ssize_t)sizeof buf ||
		    read(sp[1], buf, sizeof buf) != (ssize_t)sizeof buf ||
		    write(sp[1], buf, sizeof buf) != (ssize_t)sizeof buf ||
		    read(sp[0], buf, sizeof buf) != (ssize_t)sizeof buf)
			exit(1);
	}
	t0 = now_us() - t0;
	close(sp[0]);
	close(sp[1]);
	return (double)count / ((double)t0 / 1e6);
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 200000;
	double ch, bare;

	if (count <= 0)
		count = 200000;
	ch = bench_channel(count);
	bare = bench_bare(count);
	printf("ipc round trips: %ld each\n", count);
	printf("  certward channel (codec + libuv, one process, one loop): %10.0f req/s\n", ch);
	printf("  bare socketpair write/read, same thread, no codec:       %10.0f req/s\n", bare);
	printf("  ratio channel/bare: %.2f\n", ch / bare);
	return 0;
}

#include "pool.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 5000

struct pg_conn {
	struct pg_pool *pool;
	unsigned index;
	PGconn *conn;
	uv_poll_t poll;
	int poll_active;
	uv_timer_t timer; /* connect deadline, or delay before the next attempt */
	int up;
	uint64_t retry_ms;
};

struct pg_pool {
	uv_loop_t *loop;
	char *dsn;
	unsigned size;
	uint64_t connect_timeout_ms;
	unsigned connected;
	uint64_t connects, failures, lost;
	int stopping;
	unsigned open_handles;
	struct pg_conn conns[];
};

static void conn_start(struct pg_conn *c);

static void handle_closed(uv_handle_t *h)
{
	struct pg_conn *c = h->data;
	struct pg_pool *p = c->pool;

	if (--p->open_handles == 0 && p->stopping) {
		free(p->dsn);
		free(p);
	}
}

static void conn_drop(struct pg_conn *c)
{
	if (c->poll_active) {
		uv_poll_stop(&c->poll);
		uv_close((uv_handle_t *)&c->poll, handle_closed);
		c->poll_active = 0;
	}
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	if (c->up) {
		c->up = 0;
		c->pool->connected--;
	}
}

/* A failed attempt or a lost connection: try again after a growing delay. */
static void on_retry(uv_timer_t *t)
{
	conn_start(t->data);
}

static void conn_fail(struct pg_conn *c, const char *why)
{
	char kv[64];
	const char *detail = c->conn ? PQerrorMessage(c->conn) : "";
	char first[256];

	/* libpq's message names host and database but never the password */
	snprintf(first, sizeof first, "%s", detail);
	first[strcspn(first, "\n")] = '\0';
	snprintf(kv, sizeof kv, "conn=%u retry_ms=%llu", c->index, (unsigned long long)c->retry_ms);
	log_event(LOG_WARN, NULL, kv, "postgresql %s: %s", why, first);
	c->pool->failures++;
	conn_drop(c);
	if (c->pool->stopping)
		return;
	uv_timer_start(&c->timer, on_retry, c->retry_ms, 0);
	c->retry_ms = c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2;
}

static void on_deadline(uv_timer_t *t)
{
	conn_fail(t->data, "connection attempt timed out");
}

static void watch(struct pg_conn *c, int events);

static void on_io(uv_poll_t *h, int status, int events)
{
	struct pg_conn *c = h->data;

	if (c->up) {
		/* idle connection: input means a notice, or the server went away */
		if (!PQconsumeInput(c->conn) || PQstatus(c->conn) == CONNECTION_BAD) {
			c->pool->lost++;
			conn_fail(c, "connection lost");
			return;
		}
		while (PQisBusy(c->conn) == 0) {
			PGresult *r = PQgetResult(c->conn);
			if (!r)
				break;
			PQclear(r);
		}
		return;
	}
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		watch(c, UV_READABLE);
		break;
	case PGRES_POLLING_WRITING:
		watch(c, UV_WRITABLE);
		break;
	case PGRES_POLLING_OK:
		uv_timer_stop(&c->timer);
		c->up = 1;
		c->retry_ms = RETRY_MIN_MS;
		c->pool->connected++;
		c->pool->connects++;
		watch(c, UV_READABLE);
		if (c->pool->connected == c->pool->size)
			log_info("connected to postgresql (%u connections, server %d)",
				 c->pool->size, PQserverVersion(c->conn));
		break;
	default:
		conn_fail(c, "connection failed");
	}
}

static void watch(struct pg_conn *c, int events)
{
	int fd = PQsocket(c->conn);

	if (!c->poll_active) {
		if (fd < 0 || uv_poll_init(c->pool->loop, &c->poll, fd) != 0) {
			conn_fail(c, "no socket");
			return;
		}
		c->poll.data = c;
		c->poll_active = 1;
		c->pool->open_handles++;
	}
	uv_poll_start(&c->poll, events, on_io);
}

static void conn_start(struct pg_conn *c)
{
	c->conn = PQconnectStart(c->pool->dsn);
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
		conn_fail(c, "connection failed");
		return;
	}
	PQsetnonblocking(c->conn, 1);
	uv_timer_start(&c->timer, on_deadline, c->pool->connect_timeout_ms, 0);
	/* libpq wants to be polled for writing first */
	watch(c, UV_WRITABLE);
}

struct pg_pool *pg_pool_start(uv_loop_t *loop, const char *dsn, unsigned size,
			      uint64_t connect_timeout_ms)
{
	struct pg_pool *p = calloc(1, sizeof *p + size * sizeof p->conns[0]);

	if (!p)
		return NULL;
	p->dsn = strdup(dsn);
	if (!p->dsn) {
		free(p);
		return NULL;
	}
	p->loop = loop;
	p->size = size;
	p->connect_timeout_ms = connect_timeout_ms;
	for (unsigned i = 0; i < size; i++) {
		struct pg_conn *c = &p->conns[i];

		c->pool = p;
		c->index = i;
		c->retry_ms = RETRY_MIN_MS;
		uv_timer_init(loop, &c->timer);
		c->timer.data = c;
		p->open_handles++;
	}
	for (unsigned i = 0; i < size; i++)
		conn_start(&p->conns[i]);
	return p;
}

void pg_pool_stop(struct pg_pool *p)
{
	if (!p)
		return;
	p->stopping = 1;
	for (unsigned i = 0; i < p->size; i++) {
		struct pg_conn *c = &p->conns[i];

		conn_drop(c);
		uv_timer_stop(&c->timer);
		uv_close((uv_handle_t *)&c->timer, handle_closed);
	}
	/* the connection string holds credentials: wipe it before freeing */
	explicit_bzero(p->dsn, strlen(p->dsn));
}

unsigned pg_pool_connected(const struct pg_pool *p)
{
	return p ? p->connected : 0;
}

unsigned pg_pool_size(const struct pg_pool *p)
{
	return p ? p->size : 0;
}

void pg_pool_metrics(const struct pg_pool *p, struct strbuf *out)
{
	strbuf_printf(out, "pg_pool_size %u\n", p->size);
	strbuf_printf(out, "pg_connections_up %u\n", p->connected);
	strbuf_printf(out, "pg_connects_total %llu\n", (unsigned long long)p->connects);
	strbuf_printf(out, "pg_connect_failures_total %llu\n", (unsigned long long)p->failures);
	strbuf_printf(out, "pg_connections_lost_total %llu\n", (unsigned long long)p->lost);
}

#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 5000

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_IDLE, CONN_LEASED };

struct pg_conn {
	struct pg_pool *pool;
	unsigned index;
	int listener; /* the LISTEN connection (the last one), never leased */
	PGconn *conn;
	enum conn_state state;
	uv_poll_t poll;
	int poll_active;
	int poll_events; /* what poll watches for now */
	uv_timer_t timer; /* connect deadline, or delay before the next attempt */
	uint64_t retry_ms;
	struct pg_lease *lease;
	/* the statement in flight on a leased connection */
	pg_result_cb q_cb;
	void *q_arg;
	PGresult *q_res;
	int q_flushing;
	/* a named statement being prepared, to run once that succeeded */
	int q_preparing;
	unsigned q_stmt;
	int q_nparams;
	const char *const *q_params;
	/* the named statements this session has prepared (a bit each) */
	uint64_t prepared[PG_NAMED_MAX / 64];
};

struct pg_lease {
	struct pg_conn *c; /* NULL once the connection broke */
};

struct waiter {
	pg_lease_cb cb;
	void *arg;
	uint64_t deadline_ms;
	struct waiter *next;
};

struct pg_pool {
	uv_loop_t *loop;
	char *dsn;
	unsigned size;
	uint64_t connect_timeout_ms;
	unsigned max_queued;
	uint64_t queue_timeout_ms;
	char *listen;
	void (*on_notify)(const char *payload, void *arg);
	void *notify_arg;
	char kv[24]; /* "pool=NAME" for a named pool's log lines, or "" */
	int listening;
	unsigned nconns;    /* size, plus the listener when there is one */
	unsigned connected; /* idle + leased (the listener not counted) */
	int unreachable;    /* nothing up and the last attempt failed */
	struct waiter *qhead, *qtail;
	unsigned queued;
	uv_timer_t qtimer;
	uint64_t connects, failures, lost, prepares;
	uint32_t stmt_prepares[PG_NAMED_MAX]; /* per named statement, for pg_pool_prepared */
	char last_error[256];
	int stopping;
	unsigned open_handles;
	struct pg_conn conns[];
};

static void conn_start(struct pg_conn *c);
static void watch(struct pg_conn *c, int events);
static void dispatch(struct pg_pool *p);
static void flush(struct pg_conn *c);
static void listen_start(struct pg_conn *c);

static void pool_handle_closed(struct pg_pool *p)
{
	if (--p->open_handles == 0 && p->stopping) {
		free(p->dsn);
		free(p->listen);
		free(p);
	}
}

static void queue_timer_closed(uv_handle_t *h)
{
	pool_handle_closed(h->data);
}

static void conn_handle_closed(uv_handle_t *h)
{
	struct pg_conn *c = h->data;

	pool_handle_closed(c->pool);
}

/* Notices (e.g. "relation already exists, skipping") would land on stderr. */
static void ignore_notice(void *arg, const char *message)
{
}

static void conn_drop(struct pg_conn *c)
{
	if (c->poll_active) {
		uv_poll_stop(&c->poll);
		uv_close((uv_handle_t *)&c->poll, conn_handle_closed);
		c->poll_active = 0;
		c->poll_events = 0;
	}
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	if ((c->state == CONN_IDLE || c->state == CONN_LEASED) && !c->listener)
		c->pool->connected--;
	if (c->listener && c->pool->listening) {
		c->pool->listening = 0;
		c->pool->on_notify(NULL, c->pool->notify_arg);
	}
	c->state = CONN_DOWN;
	/* prepared statements live as long as their session */
	memset(c->prepared, 0, sizeof c->prepared);
}

/* Cuts the lease and forgets the statement in flight (whose callback the
 * caller still holds and runs last), then closes the connection. */
static void conn_reset(struct pg_conn *c)
{
	if (c->lease)
		c->lease->c = NULL;
	c->lease = NULL;
	c->q_cb = NULL;
	c->q_preparing = 0;
	if (c->q_res) {
		PQclear(c->q_res);
		c->q_res = NULL;
	}
	conn_drop(c);
}

static unsigned count_state(const struct pg_pool *p, enum conn_state st)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->size; i++)
		n += p->conns[i].state == st;
	return n;
}

/* ---- the queue of requests waiting for a connection ---- */

static struct waiter *queue_pop(struct pg_pool *p)
{
	struct waiter *q = p->qhead;

	if (q) {
		p->qhead = q->next;
		if (!p->qhead)
			p->qtail = NULL;
		p->queued--;
	}
	if (!p->qhead)
		uv_timer_stop(&p->qtimer);
	return q;
}

/* Fails every waiting request; their callbacks may queue new ones, which
 * are not failed by this call. */
static void queue_fail(struct pg_pool *p, const char *err)
{
	unsigned n = p->queued;

	while (n-- > 0) {
		struct waiter *q = queue_pop(p);

		q->cb(NULL, err, q->arg);
		free(q);
	}
}

static void on_queue_timer(uv_timer_t *t)
{
	struct pg_pool *p = t->data;
	uint64_t now = now_ms();
	char err[128];

	snprintf(err, sizeof err, "database %s: no connection free within %llu ms",
		 p->connected ? "busy" : "unavailable", (unsigned long long)p->queue_timeout_ms);
	while (p->qhead && p->qhead->deadline_ms <= now) {
		struct waiter *q = queue_pop(p);

		q->cb(NULL, err, q->arg);
		free(q);
	}
	if (p->qhead)
		uv_timer_start(&p->qtimer, on_queue_timer, p->qhead->deadline_ms - now, 0);
}

/* ---- connections ---- */

static void on_retry(uv_timer_t *t)
{
	conn_start(t->data);
}

/* A failed attempt or a lost connection: the statement in flight fails, the
 * lease is cut, and the connection is tried again after a growing delay. */
static void conn_fail(struct pg_conn *c, const char *why)
{
	struct pg_pool *p = c->pool;
	pg_result_cb cb = c->q_cb;
	void *arg = c->q_arg;
	char kv[96], err[320];

	/* libpq's message names host and database but never the password */
	snprintf(p->last_error, sizeof p->last_error, "%s", c->conn ? PQerrorMessage(c->conn) : "");
	p->last_error[strcspn(p->last_error, "\n")] = '\0';
	snprintf(kv, sizeof kv, "%s%sconn=%u retry_ms=%llu", p->kv, *p->kv ? " " : "", c->index,
		 (unsigned long long)c->retry_ms);
	log_event(LOG_WARN, NULL, kv, "postgresql %s: %s", why, p->last_error);
	if (c->state == CONN_IDLE || c->state == CONN_LEASED)
		p->lost++;
	else
		p->failures++;
	conn_reset(c);
	if (!p->stopping) {
		uv_timer_start(&c->timer, on_retry, c->retry_ms, 0);
		c->retry_ms = c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2;
	}
	snprintf(err, sizeof err, "database unavailable: %s%s%s", why, *p->last_error ? ": " : "",
		 p->last_error);
	if (p->connected == 0 && !p->stopping && !c->listener) {
		if (!p->unreachable)
			log_event(LOG_WARN, NULL, *p->kv ? p->kv : NULL,
				  "postgresql unreachable: calls fail at once until a connection is back");
		p->unreachable = 1;
		queue_fail(p, err);
	}
	if (cb)
		cb(NULL, err, arg);
}

static void on_deadline(uv_timer_t *t)
{
	conn_fail(t->data, "connection attempt timed out");
}

static void connect_poll(struct pg_conn *c)
{
	struct pg_pool *p = c->pool;

	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		watch(c, UV_READABLE);
		return;
	case PGRES_POLLING_WRITING:
		watch(c, UV_WRITABLE);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		conn_fail(c, "connection failed");
		return;
	}
	uv_timer_stop(&c->timer);
	c->state = CONN_IDLE;
	c->retry_ms = RETRY_MIN_MS;
	if (c->listener) {
		listen_start(c);
		return;
	}
	p->connected++;
	p->connects++;
	watch(c, UV_READABLE);
	if (p->unreachable) {
		p->unreachable = 0;
		log_event(LOG_INFO, NULL, *p->kv ? p->kv : NULL, "postgresql reachable again");
	}
	if (p->connected == p->size)
		log_event(LOG_INFO, NULL, *p->kv ? p->kv : NULL, "connected to postgresql (%u connections, server %d)",
			  p->size, PQserverVersion(c->conn));
	dispatch(p);
}

/* ---- the listening connection ---- */

static void listen_done(PGresult *res, const char *err, void *arg)
{
	struct pg_conn *c = arg;

	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		if (res)
			conn_fail(c, "LISTEN failed");
		return;
	}
	c->pool->listening = 1;
	c->pool->on_notify(NULL, c->pool->notify_arg);
}

static void listen_start(struct pg_conn *c)
{
	char sql[96];

	snprintf(sql, sizeof sql, "LISTEN %s", c->pool->listen);
	if (!PQsendQuery(c->conn, sql)) {
		conn_fail(c, "cannot send LISTEN");
		return;
	}
	c->q_cb = listen_done;
	c->q_arg = c;
	flush(c);
}

static void deliver_notifications(struct pg_conn *c)
{
	PGnotify *n;

	while ((n = PQnotifies(c->conn))) {
		if (c->pool->listening)
			c->pool->on_notify(n->extra, c->pool->notify_arg);
		PQfreemem(n);
	}
}

static const char *stmt_name(char *buf, size_t len, unsigned stmt)
{
	snprintf(buf, len, "cw%u", stmt);
	return buf;
}

static int is_prepared(const struct pg_conn *c, unsigned stmt)
{
	return (c->prepared[stmt / 64] >> (stmt % 64)) & 1;
}

/* The statement just prepared: now run it. */
static void send_prepared(struct pg_conn *c)
{
	char name[16];

	if (!PQsendQueryPrepared(c->conn, stmt_name(name, sizeof name, c->q_stmt), c->q_nparams,
				 c->q_params, NULL, NULL, 0)) {
		conn_fail(c, "cannot send a statement");
		return;
	}
	flush(c);
}

/* Results of the statement in flight, once all have arrived. */
static void collect(struct pg_conn *c)
{
	while (!PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);

		if (!r) {
			PGresult *res = c->q_res;
			pg_result_cb cb = c->q_cb;

			c->q_res = NULL;
			if (c->q_preparing) {
				c->q_preparing = 0;
				if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
					PQclear(res);
					c->prepared[c->q_stmt / 64] |= 1ull << (c->q_stmt % 64);
					c->pool->prepares++;
					c->pool->stmt_prepares[c->q_stmt]++;
					send_prepared(c);
					return;
				}
				/* otherwise the failed preparation answers for the statement */
			}
			c->q_cb = NULL;
			/* the callback may send the next statement, or release */
			cb(res, NULL, c->q_arg);
			PQclear(res);
			return;
		}
		/* keep the first error, else the last result */
		if (!c->q_res) {
			c->q_res = r;
		} else if (PQresultStatus(c->q_res) == PGRES_FATAL_ERROR) {
			PQclear(r);
		} else {
			PQclear(c->q_res);
			c->q_res = r;
		}
	}
}

static void flush(struct pg_conn *c)
{
	switch (PQflush(c->conn)) {
	case 0:
		c->q_flushing = 0;
		watch(c, UV_READABLE);
		break;
	case 1:
		c->q_flushing = 1;
		watch(c, UV_READABLE | UV_WRITABLE);
		break;
	default:
		conn_fail(c, "connection lost");
	}
}

static void on_io(uv_poll_t *h, int status, int events)
{
	struct pg_conn *c = h->data;

	if (c->state == CONN_CONNECTING) {
		connect_poll(c);
		return;
	}
	if (status < 0) {
		conn_fail(c, "connection lost");
		return;
	}
	if ((events & UV_WRITABLE) && c->q_flushing) {
		flush(c);
		if (!c->conn)
			return;
	}
	if (!(events & UV_READABLE))
		return;
	if (!PQconsumeInput(c->conn)) {
		conn_fail(c, "connection lost");
		return;
	}
	if (c->listener) {
		if (c->q_cb)
			collect(c);
		if (c->conn)
			deliver_notifications(c);
	} else if (c->q_cb) {
		collect(c);
		return;
	}
	if (!c->conn)
		return;
	/* nothing asked: a notice, a notification, or the server is going away */
	while (!PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);

		if (!r)
			break;
		PQclear(r);
	}
	if (PQstatus(c->conn) == CONNECTION_BAD)
		conn_fail(c, "connection lost");
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
	/* libuv's uv_poll_start takes the descriptor out of epoll and puts it
	 * back (two system calls): only when the events change */
	if (c->poll_events == events)
		return;
	uv_poll_start(&c->poll, events, on_io);
	c->poll_events = events;
}

static void conn_start(struct pg_conn *c)
{
	c->conn = PQconnectStart(c->pool->dsn);
	c->state = CONN_CONNECTING;
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
		conn_fail(c, "connection failed");
		return;
	}
	PQsetNoticeProcessor(c->conn, ignore_notice, NULL);
	PQsetnonblocking(c->conn, 1);
	uv_timer_start(&c->timer, on_deadline, c->pool->connect_timeout_ms, 0);
	/* libpq wants to be polled for writing first */
	watch(c, UV_WRITABLE);
}

/* ---- leases ---- */

static struct pg_conn *idle_conn(struct pg_pool *p)
{
	for (unsigned i = 0; i < p->size; i++)
		if (p->conns[i].state == CONN_IDLE)
			return &p->conns[i];
	return NULL;
}

static void lease_give(struct pg_conn *c, pg_lease_cb cb, void *arg)
{
	struct pg_lease *l = malloc(sizeof *l);

	if (!l) {
		cb(NULL, "out of memory", arg);
		return;
	}
	l->c = c;
	c->lease = l;
	c->state = CONN_LEASED;
	cb(l, NULL, arg);
}

static void dispatch(struct pg_pool *p)
{
	struct pg_conn *c;

	while (p->qhead && (c = idle_conn(p))) {
		struct waiter *q = queue_pop(p);

		lease_give(c, q->cb, q->arg);
		free(q);
	}
}

int pg_pool_acquire(struct pg_pool *p, pg_lease_cb cb, void *arg)
{
	struct pg_conn *c = p->stopping ? NULL : idle_conn(p);
	struct waiter *q;

	if (c) {
		lease_give(c, cb, arg);
		return 0;
	}
	if (p->stopping || (p->connected == 0 &&
			    (p->unreachable || count_state(p, CONN_CONNECTING) == 0)))
		return -ENOTCONN;
	if (p->queued >= p->max_queued)
		return -EBUSY;
	q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	q->cb = cb;
	q->arg = arg;
	q->deadline_ms = now_ms() + p->queue_timeout_ms;
	if (p->qtail)
		p->qtail->next = q;
	else
		p->qhead = q;
	p->qtail = q;
	if (p->queued++ == 0)
		uv_timer_start(&p->qtimer, on_queue_timer, p->queue_timeout_ms, 0);
	return 0;
}

/* stmt: a named statement's number, or -1; nparams -1: a script */
static int lease_send(struct pg_lease *l, int stmt, const char *sql, int nparams,
		      const char *const *params, pg_result_cb cb, void *arg)
{
	struct pg_conn *c = l->c;
	char name[16];
	int ok;

	if (!c)
		return -ENOTCONN;
	if (c->q_cb)
		return -EBUSY;
	if (nparams < 0) {
		ok = PQsendQuery(c->conn, sql);
	} else if (stmt < 0) {
		ok = PQsendQueryParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	} else if (is_prepared(c, (unsigned)stmt)) {
		ok = PQsendQueryPrepared(c->conn, stmt_name(name, sizeof name, (unsigned)stmt), nparams,
					 params, NULL, NULL, 0);
	} else {
		/* parameter types inferred as PQsendQueryParams does */
		ok = PQsendPrepare(c->conn, stmt_name(name, sizeof name, (unsigned)stmt), sql, nparams, NULL);
		c->q_preparing = ok;
		c->q_stmt = (unsigned)stmt;
		c->q_nparams = nparams;
		c->q_params = params;
	}
	if (!ok) {
		conn_fail(c, "cannot send a statement");
		return -ENOTCONN;
	}
	c->q_cb = cb;
	c->q_arg = arg;
	flush(c);
	return 0;
}

int pg_lease_query(struct pg_lease *l, const char *sql, int nparams, const char *const *params,
		   pg_result_cb cb, void *arg)
{
	return lease_send(l, -1, sql, nparams < 0 ? 0 : nparams, params, cb, arg);
}

int pg_lease_query_named(struct pg_lease *l, unsigned stmt, const char *sql, int nparams,
			 const char *const *params, pg_result_cb cb, void *arg)
{
	return lease_send(l, stmt < PG_NAMED_MAX ? (int)stmt : -1, sql, nparams < 0 ? 0 : nparams, params,
			  cb, arg);
}

int pg_lease_script(struct pg_lease *l, const char *sql, pg_result_cb cb, void *arg)
{
	return lease_send(l, -1, sql, -1, NULL, cb, arg);
}

void pg_lease_release(struct pg_lease *l)
{
	struct pg_conn *c = l->c;

	free(l);
	if (!c)
		return;
	c->lease = NULL;
	/* never hand on a connection with a statement or a transaction open */
	if (c->q_cb || PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
		c->q_cb = NULL;
		conn_fail(c, "released while busy; reconnecting");
		return;
	}
	c->state = CONN_IDLE;
	dispatch(c->pool);
}

/* ---- the pool ---- */

struct pg_pool *pg_pool_start(uv_loop_t *loop, const struct pg_pool_options *o)
{
	unsigned n = o->size + (o->listen != NULL);
	struct pg_pool *p = calloc(1, sizeof *p + n * sizeof p->conns[0]);

	if (!p)
		return NULL;
	p->dsn = strdup(o->dsn);
	p->listen = o->listen ? strdup(o->listen) : NULL;
	if (!p->dsn || (o->listen && !p->listen)) {
		free(p->dsn);
		free(p->listen);
		free(p);
		return NULL;
	}
	p->on_notify = o->on_notify;
	p->notify_arg = o->notify_arg;
	if (o->name)
		snprintf(p->kv, sizeof p->kv, "pool=%s", o->name);
	p->nconns = n;
	p->loop = loop;
	p->size = o->size;
	p->connect_timeout_ms = o->connect_timeout_ms;
	p->max_queued = o->max_queued;
	p->queue_timeout_ms = o->queue_timeout_ms;
	uv_timer_init(loop, &p->qtimer);
	p->qtimer.data = p;
	p->open_handles++;
	for (unsigned i = 0; i < n; i++) {
		struct pg_conn *c = &p->conns[i];

		c->pool = p;
		c->index = i;
		c->listener = i == o->size;
		c->retry_ms = RETRY_MIN_MS;
		uv_timer_init(loop, &c->timer);
		c->timer.data = c;
		p->open_handles++;
	}
	for (unsigned i = 0; i < n; i++)
		conn_start(&p->conns[i]);
	return p;
}

void pg_pool_stop(struct pg_pool *p)
{
	if (!p || p->stopping)
		return;
	p->stopping = 1;
	queue_fail(p, "store stopping");
	p->listening = 0;
	for (unsigned i = 0; i < p->nconns; i++) {
		struct pg_conn *c = &p->conns[i];
		pg_result_cb cb = c->q_cb;

		conn_reset(c);
		uv_timer_stop(&c->timer);
		uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
		if (cb)
			cb(NULL, "store stopping", c->q_arg);
	}
	uv_timer_stop(&p->qtimer);
	uv_close((uv_handle_t *)&p->qtimer, queue_timer_closed);
	/* the connection string holds credentials: wipe it before freeing */
	explicit_bzero(p->dsn, strlen(p->dsn));
}

void pg_pool_stats(const struct pg_pool *p, struct pg_pool_stats *s)
{
	s->size = p->size;
	s->idle = count_state(p, CONN_IDLE);
	s->busy = count_state(p, CONN_LEASED);
	s->down = p->size - s->idle - s->busy;
	s->queued = p->queued;
}

unsigned pg_pool_connected(const struct pg_pool *p)
{
	return p ? p->connected : 0;
}

int pg_pool_listening(const struct pg_pool *p)
{
	return p && p->listening;
}

unsigned pg_pool_size(const struct pg_pool *p)
{
	return p ? p->size : 0;
}

const char *pg_pool_last_error(const struct pg_pool *p)
{
	return p->last_error;
}

unsigned pg_pool_prepared(const struct pg_pool *p, unsigned stmt)
{
	return stmt < PG_NAMED_MAX ? p->stmt_prepares[stmt] : 0;
}

void pg_pool_metrics(const struct pg_pool *p, struct strbuf *out)
{
	struct pg_pool_stats s;

	pg_pool_stats(p, &s);
	strbuf_printf(out, "pg_pool_size %u\n", p->size);
	strbuf_printf(out, "pg_connections_up %u\n", p->connected);
	if (p->listen)
		strbuf_printf(out, "pg_listening %d\n", p->listening);
	strbuf_printf(out, "pg_connects_total %llu\n", (unsigned long long)p->connects);
	strbuf_printf(out, "pg_connect_failures_total %llu\n", (unsigned long long)p->failures);
	strbuf_printf(out, "pg_connections_lost_total %llu\n", (unsigned long long)p->lost);
	strbuf_printf(out, "pg_statements_prepared_total %llu\n", (unsigned long long)p->prepares);
	strbuf_printf(out, "store_pool_connections{state=\"idle\"} %u\n", s.idle);
	strbuf_printf(out, "store_pool_connections{state=\"busy\"} %u\n", s.busy);
	strbuf_printf(out, "store_pool_connections{state=\"down\"} %u\n", s.down);
	strbuf_printf(out, "store_pool_queued %u\n", s.queued);
}

void pg_result_describe(const PGresult *res, char *buf, size_t len)
{
	const char *state, *primary, *table;

	if (!res) {
		snprintf(buf, len, "no result");
		return;
	}
	if (PQresultStatus(res) != PGRES_FATAL_ERROR) {
		snprintf(buf, len, "unexpected result %s", PQresStatus(PQresultStatus(res)));
		return;
	}
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
	/* the table tells a caller which part of a statement failed (the
	 * api: a change, or its audit event) */
	snprintf(buf, len, "SQLSTATE %s: %s%s%s%s", state ? state : "?????", primary ? primary : "error",
		 table ? " (table " : "", table ? table : "", table ? ")" : "");
}

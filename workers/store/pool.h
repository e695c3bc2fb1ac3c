/*
 * A fixed-size set of non-blocking libpq connections driven by libuv.
 *
 * A connection is down (waiting to retry, with a delay doubling from 250 ms to
 * 5 s), connecting, idle or leased. A client leases one connection with
 * pg_pool_acquire, runs statements on it one after the other and releases it.
 * When no connection is idle the request waits in a bounded FIFO queue for at
 * most queue_timeout. While PostgreSQL is unreachable (no connection up and
 * the last attempt failed) acquiring fails at once: callers get a clear
 * "database unavailable" instead of a hang, and the pool keeps reconnecting
 * in the background.
 */
#ifndef CERTWARD_STORE_POOL_H
#define CERTWARD_STORE_POOL_H

#include <libpq-fe.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"

struct pg_pool;
struct pg_lease;

struct pg_pool_options {
	const char *dsn; /* copied, never logged, wiped at stop */
	unsigned size;
	uint64_t connect_timeout_ms;
	unsigned max_queued;       /* requests waiting for a connection */
	uint64_t queue_timeout_ms; /* longest wait in the queue */
	/*
	 * When listen is set (a channel name: lower case letters and '_'), one
	 * more connection, never leased, LISTENs on it and on_notify gets each
	 * notification's payload. It gets NULL whenever that connection comes
	 * up (listening from now on) or goes down (notifications may be lost
	 * until it is back): anything may have changed meanwhile.
	 */
	const char *listen;
	void (*on_notify)(const char *payload, void *arg);
	void *notify_arg;
	/* a word for its log lines (pool=NAME), or NULL: the main pool */
	const char *name;
};

struct pg_pool *pg_pool_start(uv_loop_t *loop, const struct pg_pool_options *o);
/* Fails every waiting request and statement in flight, closes the
 * connections and frees the pool once its handles are closed. */
void pg_pool_stop(struct pg_pool *p);

/*
 * lease is NULL when none could be had in time (err says why: unavailable,
 * queue wait over, stopping). Called exactly once, possibly before
 * pg_pool_acquire returns.
 */
typedef void (*pg_lease_cb)(struct pg_lease *lease, const char *err, void *arg);
/* 0 (cb will run), -ENOTCONN (database unavailable now) or -EBUSY (queue
 * full): then cb does not run. */
int pg_pool_acquire(struct pg_pool *p, pg_lease_cb cb, void *arg);

/*
 * res is the statement's result (released after the callback returns; for a
 * script, the first failed statement's result, else the last one), or NULL
 * when the connection broke (err says how; the lease is then useless, but
 * still has to be released).
 */
typedef void (*pg_result_cb)(PGresult *res, const char *err, void *arg);
/* One statement with parameters bound as text ($1..$n; NULL entries are SQL
 * NULL). 0: cb runs exactly once, possibly before this returns (when the
 * connection breaks at once); -ENOTCONN or -EBUSY: cb does not run. */
int pg_lease_query(struct pg_lease *l, const char *sql, int nparams, const char *const *params,
		   pg_result_cb cb, void *arg);
/*
 * The same for a statement the caller runs often under a fixed number STMT
 * (below PG_NAMED_MAX; larger ones run like pg_lease_query): prepared once
 * per connection (named "cw<STMT>") the first time it runs there, then only
 * executed, so PostgreSQL parses it once per session and keeps a generic plan
 * where that costs no more than planning for the values each time. SQL must
 * be the same text whenever STMT is; params must stay valid until cb runs.
 */
#define PG_NAMED_MAX 1024
int pg_lease_query_named(struct pg_lease *l, unsigned stmt, const char *sql, int nparams,
			 const char *const *params, pg_result_cb cb, void *arg);
/* How often STMT was prepared, on all connections together. */
unsigned pg_pool_prepared(const struct pg_pool *p, unsigned stmt);
/* A script of statements without parameters (simple query protocol). */
int pg_lease_script(struct pg_lease *l, const char *sql, pg_result_cb cb, void *arg);
/* Gives the connection back (or forgets a broken one). Not while a statement runs. */
void pg_lease_release(struct pg_lease *l);

struct pg_pool_stats {
	unsigned size, idle, busy, down, queued;
};
void pg_pool_stats(const struct pg_pool *p, struct pg_pool_stats *s);
unsigned pg_pool_connected(const struct pg_pool *p);
/* 1 while the listening connection is up and its LISTEN took effect */
int pg_pool_listening(const struct pg_pool *p);
unsigned pg_pool_size(const struct pg_pool *p);
/* First line of the last connection error ("" if none); libpq names host and
 * database there, never the password. */
const char *pg_pool_last_error(const struct pg_pool *p);
void pg_pool_metrics(const struct pg_pool *p, struct strbuf *out);

/* "SQLSTATE 23505: duplicate key value violates unique constraint ..." */
void pg_result_describe(const PGresult *res, char *buf, size_t len);

#endif

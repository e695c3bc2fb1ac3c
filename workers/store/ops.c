/* Named store operations (schema/store_ops.def): checks, execution, replies, metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "cache.h"
#include "store.h"
#include "store_wire.h"
#include "util.h"

enum op_result { OP_ROW, OP_VALUE, OP_NONE, OP_LIST };

struct store_op {
	const char *name;
	uint32_t callers;
	int nparams;
	enum op_result result;
	const char *sql;
	bool read;          /* STORE_READ: changes nothing */
	const char *tables; /* STORE_READ: what a cached result reads, or NULL: not cached;
			     * STORE_WRITE: what it writes */
};

static const struct store_op store_ops[] = {
#define R(role) (1u << IPC_ROLE_##role)
#define STORE_OP(name, callers, nparams, result, sql) {name, callers, nparams, OP_##result, sql, false, NULL},
#define STORE_READ(name, callers, nparams, result, tables, sql) \
	{name, callers, nparams, OP_##result, sql, true, tables},
#define STORE_WRITE(name, callers, nparams, result, tables, sql) \
	{name, callers, nparams, OP_##result, sql, false, tables},
#include "store_ops.def"
#undef STORE_WRITE
#undef STORE_READ
#undef STORE_OP
#undef R
};

#define NOPS (sizeof store_ops / sizeof store_ops[0])

/* runs on the store's lock connection (store.h lock_pool), never batched */
#define LEADER_OP "scheduler.leader"

/* the cache's table masks of the operations: what a read reads (0: not
 * cached), what a write writes (0: everything) */
static uint64_t op_tables[NOPS];

/* a list's total is kept under the list's number with one of these bits
 * (no filters / filters) and the filters as the key */
#define CACHE_TOTAL_NULL 0x10000u
#define CACHE_TOTAL 0x20000u

/* One call between its arrival and its reply. */
struct call {
	struct store *s;
	struct caller *caller;
	uint64_t req_id;
	const struct store_op *op;
	struct store_params params;
	struct pg_lease *lease;
	uint64_t t0_us;
	uint64_t stamp; /* the cache's, when the call arrived */
	uint8_t *key;   /* a cached read's: its parameters as sent */
	size_t klen;
	char total[24]; /* a list's total known beforehand ($nparams+1) */
	bool alone;     /* not to be batched (again) */
	/* a batched call's answer (its json in held), sent once its batch committed */
	struct ipc_msg reply;
	uint8_t *held;
};

static const struct store_op *op_by_name(const char *name)
{
	for (size_t i = 0; i < NOPS; i++)
		if (strcmp(store_ops[i].name, name) == 0)
			return &store_ops[i];
	return NULL;
}

/* outcome: ok, error (the statement failed), refused, unavailable */
static void record(struct store *s, const char *op, const char *outcome, uint64_t t0_us)
{
	char labels[METRICS_LABELS_MAX];
	struct metrics *m = worker_metrics(s->w);

	metrics_add(m, "store_operations_total",
		    metrics_labels(labels, sizeof labels, "op", op, "result", outcome, NULL), 1);
	metrics_observe(m, "store_operation_duration_seconds",
			metrics_labels(labels, sizeof labels, "op", op, NULL),
			(double)(now_us() - t0_us) / 1e6);
}

/* op="..." caller=ROLE peer=NAME: the operation's name came from the peer, so
 * it is quoted; parameter values are never logged. */
static const char *call_kv(char *buf, size_t len, const char *op, const struct ipc_channel *from)
{
	size_t n = (size_t)snprintf(buf, len, "op=");

	if (n < len)
		n += log_quote(buf + n, len - n, op, strlen(op));
	if (n < len)
		snprintf(buf + n, len - n, " caller=%s peer=%s",
			 ipc_role_name(ipc_channel_peer_role(from)), ipc_channel_peer(from));
	return buf;
}

static void refuse(struct store *s, struct ipc_channel *from, const struct ipc_msg *m, uint64_t t0_us,
		   const char *op_label, const char *outcome, int code, const char *why)
{
	char kv[256];

	if (strcmp(outcome, "refused") == 0)
		log_event(LOG_WARN, NULL, call_kv(kv, sizeof kv, m->u.store_call.op, from),
			  "store operation refused: %s", why);
	ipc_reply_error(from, m, code, why);
	record(s, op_label, outcome, t0_us);
}

static void call_free(struct call *c)
{
	/* a write (or what may have been one) is over: its caller's next read
	 * must see it, whatever PostgreSQL's notification says and whenever */
	if (!c->op->read && op_tables[c->op - store_ops])
		cache_changed_tables(c->s->cache, op_tables[c->op - store_ops]);
	else if (!c->op->read)
		cache_changed_all(c->s->cache);
	free(c->key);
	free(c->held);
	if (c->lease)
		pg_lease_release(c->lease);
	caller_release(&c->s->callers, c->caller);
	store_params_free(&c->params);
	free(c);
}

static void answer(struct call *c, struct ipc_msg *r)
{
	struct ipc_channel *ch = caller_channel(c->caller);
	struct ipc_msg req = {.id = c->req_id};

	if (ch && ipc_reply(ch, &req, r) != 0)
		log_warn("cannot send the result of %s to %s", c->op->name, ipc_channel_peer(ch));
}

static void fail(struct call *c, const char *outcome, int code, const char *why)
{
	struct ipc_msg r = {.type = IPC_T_ERROR};

	r.u.error.code = (uint32_t)code;
	r.u.error.message = why;
	answer(c, &r);
	record(c->s, c->op->name, outcome, c->t0_us);
	call_free(c);
}

/* A list's total: key and flavour from its filters ($5, or NULL). */
static uint32_t total_key(const struct call *c, const void **key, size_t *klen)
{
	const char *f = c->params.v[c->op->nparams - 1];

	*key = f ? f : "";
	*klen = f ? strlen(f) : 0;
	return (uint32_t)(c->op - store_ops) | (f ? CACHE_TOTAL : CACHE_TOTAL_NULL);
}

/* What a cached read answered, kept for the next call with the same
 * parameters (a list: also its total, for the same filters). */
static void remember(struct call *c, PGresult *res, const struct ipc_msg *r)
{
	uint64_t tables = op_tables[c->op - store_ops];
	const void *key;
	size_t klen;
	uint32_t op;

	if (!c->op->read || !tables)
		return;
	/* a list's total also serves the other pages and sort orders */
	if (c->op->result == OP_LIST && r->u.store_result.status == STORE_OK && !c->params.v[c->op->nparams] &&
	    !PQgetisnull(res, 0, 1)) {
		op = total_key(c, &key, &klen);
		cache_put(c->s->cache, op, key, klen, tables, c->stamp, "", 0,
			  strtoll(PQgetvalue(res, 0, 1), NULL, 10));
	}
	if (c->key)
		cache_put(c->s->cache, (uint32_t)(c->op - store_ops), c->key, c->klen, tables, c->stamp,
			  r->u.store_result.json.ptr, r->u.store_result.json.len, r->u.store_result.status);
}

/* A cached read answered from memory: true when it was. */
static bool answer_cached(struct store *s, struct ipc_channel *from, const struct ipc_msg *m,
			  const struct store_op *op, uint64_t t0)
{
	struct ipc_msg r = {.type = IPC_T_STORE_RESULT};
	const void *val;
	size_t vlen;
	int64_t status;

	if (!cache_get(s->cache, (uint32_t)(op - store_ops), m->u.store_call.params.ptr,
		       m->u.store_call.params.len, &val, &vlen, &status))
		return false;
	r.u.store_result.status = (uint32_t)status;
	r.u.store_result.rows = status == STORE_NO_ROW ? 0 : 1;
	r.u.store_result.json.ptr = val;
	r.u.store_result.json.len = (uint32_t)vlen;
	if (ipc_reply(from, m, &r) != 0)
		log_warn("cannot send the result of %s to %s", op->name, ipc_channel_peer(from));
	record(s, op->name, "ok", t0);
	return true;
}

/* The answer a statement's result makes (r then points into res): 0, or
 * an errno with why filled (EIO: the statement failed). */
static int result_answer(const struct call *c, PGresult *res, struct ipc_msg *r, char *why, size_t len)
{
	int rows;

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_result_describe(res, why, len);
		return EIO;
	}
	rows = PQntuples(res);
	if (c->op->result == OP_NONE) {
		r->u.store_result.rows = strtoull(PQcmdTuples(res), NULL, 10);
	} else if (rows == 0 && (c->op->result == OP_ROW || c->op->result == OP_LIST)) {
		r->u.store_result.status = STORE_NO_ROW;
		r->u.store_result.json.ptr = (const uint8_t *)"null";
		r->u.store_result.json.len = 4;
	} else if (rows != 1 || PQnfields(res) != 1 + (c->op->result == OP_LIST)) {
		snprintf(why, len, "operation %s returned %d rows of %d columns, not one json value",
			 c->op->name, rows, PQnfields(res));
		log_error("%s", why);
		return EPROTO;
	} else if ((size_t)PQgetlength(res, 0, 0) > STORE_RESULT_BYTES) {
		snprintf(why, len, "result of %s is %d bytes, more than the limit of %u",
			 c->op->name, PQgetlength(res, 0, 0), STORE_RESULT_BYTES);
		return EMSGSIZE;
	} else {
		r->u.store_result.rows = (uint64_t)rows;
		if (PQgetisnull(res, 0, 0)) {
			r->u.store_result.json.ptr = (const uint8_t *)"null";
			r->u.store_result.json.len = 4;
		} else {
			r->u.store_result.json.ptr = (const uint8_t *)PQgetvalue(res, 0, 0);
			r->u.store_result.json.len = (uint32_t)PQgetlength(res, 0, 0);
		}
	}
	return 0;
}

static void on_result(PGresult *res, const char *err, void *arg)
{
	struct call *c = arg;
	struct ipc_msg r = {.type = IPC_T_STORE_RESULT};
	char why[400], kv[256];
	int code;

	if (!res) {
		fail(c, "unavailable", ENOTCONN, err);
		return;
	}
	code = result_answer(c, res, &r, why, sizeof why);
	if (code == EIO) {
		struct ipc_channel *ch = caller_channel(c->caller);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* the server's message may quote a parameter: only the SQLSTATE is logged */
		if (ch)
			call_kv(kv, sizeof kv, c->op->name, ch);
		log_event(LOG_WARN, NULL, ch ? kv : NULL, "store operation failed: SQLSTATE %s",
			  state ? state : "?");
	}
	if (code) {
		fail(c, "error", code, why);
		return;
	}
	remember(c, res, &r);
	answer(c, &r);
	record(c->s, c->op->name, "ok", c->t0_us);
	call_free(c);
}

/* c's statement on lease, prepared once per connection under the
 * operation's number */
static int send_statement(struct pg_lease *lease, const struct call *c, pg_result_cb cb, void *arg)
{
	return pg_lease_query_named(lease, (unsigned)(c->op - store_ops), c->op->sql,
				    (int)c->params.n + (c->op->result == OP_LIST), c->params.v, cb, arg);
}

static void on_lease(struct pg_lease *lease, const char *err, void *arg)
{
	struct call *c = arg;

	if (!lease) {
		fail(c, "unavailable", ENOTCONN, err);
		return;
	}
	c->lease = lease;
	if (send_statement(lease, c, on_result, c) != 0)
		fail(c, "unavailable", ENOTCONN, "database unavailable: connection lost");
}

static void unavailable(const struct store *s, char *why, size_t len)
{
	snprintf(why, len, "database unavailable%s%s", *pg_pool_last_error(s->pool) ? ": " : "",
		 pg_pool_last_error(s->pool));
}

/* Why the schema keeps operations back, as an errno and a message. */
static int schema_refusal(const struct store *s, char *why, size_t len)
{
	if (s->schema == SCHEMA_UNKNOWN) {
		unavailable(s, why, len);
		return ENOTCONN;
	}
	snprintf(why, len, "database schema not ready: %s", s->schema_why);
	return EAGAIN;
}

/* A call whose lease could not be asked for: rc from pg_pool_acquire. */
static void not_leased(struct call *c, int rc)
{
	char why[400];

	if (rc == -EBUSY) {
		fail(c, "unavailable", EBUSY, "store busy: too many calls waiting for a database connection");
	} else {
		unavailable(c->s, why, sizeof why);
		fail(c, "unavailable", ENOTCONN, why);
	}
}

/* ---- batches ----
 *
 * Calls of a batched operation that arrive while every connection is busy
 * wait for the next one together (one place in the pool's queue) and are
 * then written in one transaction: BEGIN, each call's statement, COMMIT.
 * Under load that is one commit and one WAL flush for many issuances, and
 * the audit chain's row lock taken once; with a connection free a call
 * runs alone at once, as any other. No call is answered before its
 * batch's COMMIT succeeded. When one statement fails the transaction is
 * rolled back and every call of the batch runs again alone, so that the
 * failing one gets its own error and the others are written.
 *
 * Batched: single-statement writes whose effects are all inside the
 * transaction (no advisory lock, no NOTIFY of their own) and that are sent
 * many at a time under load.
 */
static const char *const batched_names[] = {
	"managed_certificates.create_issued",
	"certificates.issued",
	"audit.record",
};
static bool op_batched[NOPS];

#define BATCH_MAX 64

struct batch {
	struct store *s;
	const struct store_op *op;
	struct pg_lease *lease;
	size_t n, done; /* calls; statements that ran */
	struct call *calls[BATCH_MAX];
};

/* per operation, the batch waiting for a connection that calls still join */
static struct batch *forming[NOPS];

static void start_call(struct call *c);
static void on_batch_stmt(PGresult *res, const char *err, void *arg);

static void batch_count(const struct batch *b, const char *name, double v)
{
	char labels[METRICS_LABELS_MAX];

	metrics_add(worker_metrics(b->s->w), name, metrics_labels(labels, sizeof labels, "op", b->op->name, NULL), v);
}

static void batch_free(struct batch *b)
{
	if (b->lease)
		pg_lease_release(b->lease);
	free(b);
}

/* The connection broke (or none came): every call fails as it would alone. */
static void batch_lost(struct batch *b, const char *err)
{
	for (size_t i = 0; i < b->n; i++)
		fail(b->calls[i], "unavailable", ENOTCONN, err ? err : "database unavailable: connection lost");
	batch_free(b);
}

/* Nothing of the batch was written: each call again, alone. */
static void batch_split(struct batch *b)
{
	size_t n = b->n;
	struct call *calls[BATCH_MAX];

	if (b->done < n)
		log_info("a batch of %zu %s calls was rolled back: call %zu failed; each runs again alone", n,
			 b->op->name, b->done + 1);
	else
		log_info("a batch of %zu %s calls was not committed; each runs again alone", n, b->op->name);
	batch_count(b, "store_batch_splits_total", 1);
	memcpy(calls, b->calls, n * sizeof calls[0]);
	batch_free(b); /* its connection first: one of them may take it */
	for (size_t i = 0; i < n; i++) {
		free(calls[i]->held);
		calls[i]->held = NULL;
		calls[i]->alone = true;
		start_call(calls[i]);
	}
}

static void batch_send(struct batch *b)
{
	if (send_statement(b->lease, b->calls[b->done], on_batch_stmt, b) != 0)
		batch_lost(b, NULL);
}

static void on_batch_rollback(PGresult *res, const char *err, void *arg)
{
	struct batch *b = arg;

	if (!res) {
		/* the connection is gone, and the transaction with it */
		pg_lease_release(b->lease);
		b->lease = NULL;
	} else if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* the pool drops a connection released inside a transaction */
		log_warn("ROLLBACK of a batch failed: SQLSTATE %s", state ? state : "?");
	}
	(void)err;
	batch_split(b);
}

static void on_batch_commit(PGresult *res, const char *err, void *arg)
{
	struct batch *b = arg;
	size_t n = b->n;
	struct call *calls[BATCH_MAX];

	if (!res) {
		batch_lost(b, err);
		return;
	}
	/* a transaction that failed answers COMMIT with ROLLBACK */
	if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		batch_split(b);
		return;
	}
	batch_count(b, "store_batches_total", 1);
	batch_count(b, "store_batched_calls_total", (double)n);
	memcpy(calls, b->calls, n * sizeof calls[0]);
	batch_free(b);
	for (size_t i = 0; i < n; i++) {
		answer(calls[i], &calls[i]->reply);
		record(calls[i]->s, calls[i]->op->name, "ok", calls[i]->t0_us);
		call_free(calls[i]);
	}
}

static void on_batch_stmt(PGresult *res, const char *err, void *arg)
{
	struct batch *b = arg;
	struct call *c = b->calls[b->done];
	struct ipc_msg *r = &c->reply;
	char why[400];

	if (!res) {
		batch_lost(b, err);
		return;
	}
	*r = (struct ipc_msg){.type = IPC_T_STORE_RESULT};
	if (result_answer(c, res, r, why, sizeof why) != 0 ||
	    !(c->held = malloc(r->u.store_result.json.len ? r->u.store_result.json.len : 1))) {
		if (pg_lease_script(b->lease, "ROLLBACK", on_batch_rollback, b) != 0)
			on_batch_rollback(NULL, NULL, b);
		return;
	}
	/* the answer outlives res */
	memcpy(c->held, r->u.store_result.json.ptr, r->u.store_result.json.len);
	r->u.store_result.json.ptr = c->held;
	if (++b->done < b->n)
		batch_send(b);
	else if (pg_lease_script(b->lease, "COMMIT", on_batch_commit, b) != 0)
		batch_lost(b, NULL);
}

static void on_batch_begin(PGresult *res, const char *err, void *arg)
{
	struct batch *b = arg;

	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		batch_lost(b, err);
		return;
	}
	batch_send(b);
}

static void on_batch_lease(struct pg_lease *lease, const char *err, void *arg)
{
	struct batch *b = arg;
	size_t i = (size_t)(b->op - store_ops);

	if (forming[i] == b)
		forming[i] = NULL; /* later calls form the next one */
	if (!lease) {
		batch_lost(b, err);
		return;
	}
	if (b->n == 1) {
		struct call *c = b->calls[0];

		free(b);
		on_lease(lease, NULL, c);
		return;
	}
	b->lease = lease;
	if (pg_lease_script(lease, "BEGIN", on_batch_begin, b) != 0)
		batch_lost(b, NULL);
}

/* A call with its parameters checked: to PostgreSQL, alone or in a batch. */
static void start_call(struct call *c)
{
	struct store *s = c->s;
	size_t i = (size_t)(c->op - store_ops);
	unsigned max = s->batch_max < BATCH_MAX ? s->batch_max : BATCH_MAX;
	struct batch *b;
	int rc;

	if (op_batched[i] && !c->alone && max > 1) {
		if ((b = forming[i]) && b->n < max) {
			b->calls[b->n++] = c;
			return;
		}
		if ((b = calloc(1, sizeof *b))) {
			b->s = s;
			b->op = c->op;
			b->calls[b->n++] = c;
			forming[i] = b;
			/* with a connection idle, on_batch_lease runs now, for this call alone */
			rc = pg_pool_acquire(s->pool, on_batch_lease, b);
			if (rc != 0) {
				if (forming[i] == b)
					forming[i] = NULL;
				free(b);
				not_leased(c, rc);
			}
			return;
		}
	}
	rc = pg_pool_acquire(strcmp(c->op->name, LEADER_OP) == 0 ? s->lock_pool : s->pool, on_lease, c);
	if (rc != 0)
		not_leased(c, rc);
}

void store_call_handle(struct store *s, struct ipc_channel *from, struct ipc_msg *m)
{
	const struct store_op *op = op_by_name(m->u.store_call.op);
	unsigned role = ipc_channel_peer_role(from);
	struct store_params params;
	struct call *c;
	uint64_t t0 = now_us();
	char why[400];
	int rc;

	if (!op) {
		refuse(s, from, m, t0, "unknown", "refused", ENOENT, "unknown operation");
		return;
	}
	if (!(op->callers & (1u << role))) {
		snprintf(why, sizeof why, "%s may not call %s", ipc_role_name(role), op->name);
		refuse(s, from, m, t0, op->name, "refused", EPERM, why);
		return;
	}
	rc = store_params_decode(m->u.store_call.params.ptr, m->u.store_call.params.len, &params);
	if (rc != 0) {
		refuse(s, from, m, t0, op->name, "refused", rc == -ENOMEM ? ENOMEM : EINVAL,
		       rc == -ENOMEM ? "out of memory" : "malformed parameters");
		return;
	}
	if ((int)params.n != op->nparams) {
		snprintf(why, sizeof why, "%s takes %d parameter%s, got %zu", op->name, op->nparams,
			 op->nparams == 1 ? "" : "s", params.n);
		store_params_free(&params);
		refuse(s, from, m, t0, op->name, "refused", EINVAL, why);
		return;
	}
	if (s->schema != SCHEMA_READY) {
		store_params_free(&params);
		rc = schema_refusal(s, why, sizeof why);
		refuse(s, from, m, t0, op->name, "unavailable", rc, why);
		return;
	}
	if (op->read && op_tables[op - store_ops] && answer_cached(s, from, m, op, t0)) {
		store_params_free(&params);
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c || !(c->caller = caller_hold(&s->callers, from))) {
		free(c);
		store_params_free(&params);
		refuse(s, from, m, t0, op->name, "error", ENOMEM, "cannot track the call");
		return;
	}
	c->s = s;
	c->req_id = m->id;
	c->op = op;
	c->params = params;
	c->t0_us = t0;
	c->stamp = cache_stamp(s->cache);
	if (op->result == OP_LIST) {
		/* the statement's last parameter: the total, when known */
		const void *key, *val;
		size_t klen, vlen;
		int64_t total;
		uint32_t k = total_key(c, &key, &klen);

		c->params.v[op->nparams] = NULL;
		if (op->read && op_tables[op - store_ops] && cache_get(s->cache, k, key, klen, &val, &vlen, &total)) {
			snprintf(c->total, sizeof c->total, "%lld", (long long)total);
			c->params.v[op->nparams] = c->total;
		}
	}
	if (op->read && op_tables[op - store_ops] && cache_enabled(s->cache) &&
		   (c->key = malloc(m->u.store_call.params.len ? m->u.store_call.params.len : 1))) {
		memcpy(c->key, m->u.store_call.params.ptr, m->u.store_call.params.len);
		c->klen = m->u.store_call.params.len;
	}
	start_call(c);
}

void store_ops_metrics(const struct store *s, struct strbuf *out)
{
	for (size_t i = 0; i < NOPS; i++) {
		unsigned n = pg_pool_prepared(s->pool, (unsigned)i);

		if (n)
			strbuf_printf(out, "store_statements_prepared_total{op=\"%s\"} %u\n", store_ops[i].name, n);
	}
}

void store_ops_cache_init(struct store *s)
{
	for (size_t k = 0; k < sizeof batched_names / sizeof batched_names[0]; k++) {
		const struct store_op *op = op_by_name(batched_names[k]);

		/* a batched operation is a write answered by one row */
		if (op && !op->read && op->result != OP_LIST)
			op_batched[op - store_ops] = true;
		else
			log_warn("operation %s is not batched: not a write in the catalogue", batched_names[k]);
	}
	for (size_t i = 0; i < NOPS; i++)
		if (store_ops[i].tables && !(op_tables[i] = cache_tables(s->cache, store_ops[i].tables)))
			log_warn("operation %s is not cached: more than %d tables", store_ops[i].name,
				 CACHE_TABLES_MAX);
}

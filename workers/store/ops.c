/* Named store operations (schema/store_ops.def): checks, execution, replies, metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_wire.h"
#include "util.h"

enum op_result { OP_ROW, OP_VALUE, OP_NONE };

struct store_op {
	const char *name;
	uint32_t callers;
	int nparams;
	enum op_result result;
	const char *sql;
};

static const struct store_op store_ops[] = {
#define R(role) (1u << IPC_ROLE_##role)
#define STORE_OP(name, callers, nparams, result, sql) {name, callers, nparams, OP_##result, sql},
#include "store_ops.def"
#undef STORE_OP
#undef R
};

#define NOPS (sizeof store_ops / sizeof store_ops[0])

/* One call between its arrival and its reply. */
struct call {
	struct store *s;
	struct caller *caller;
	uint64_t req_id;
	const struct store_op *op;
	struct store_params params;
	struct pg_lease *lease;
	uint64_t t0_us;
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

static void on_result(PGresult *res, const char *err, void *arg)
{
	struct call *c = arg;
	struct ipc_msg r = {.type = IPC_T_STORE_RESULT};
	int rows;
	char why[400], kv[256];

	if (!res) {
		fail(c, "unavailable", ENOTCONN, err);
		return;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
		struct ipc_channel *ch = caller_channel(c->caller);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* the server's message may quote a parameter: only the SQLSTATE is logged */
		if (ch)
			call_kv(kv, sizeof kv, c->op->name, ch);
		log_event(LOG_WARN, NULL, ch ? kv : NULL, "store operation failed: SQLSTATE %s",
			  state ? state : "?");
		pg_result_describe(res, why, sizeof why);
		fail(c, "error", EIO, why);
		return;
	}
	rows = PQntuples(res);
	if (c->op->result == OP_NONE) {
		r.u.store_result.rows = strtoull(PQcmdTuples(res), NULL, 10);
	} else if (rows == 0 && c->op->result == OP_ROW) {
		r.u.store_result.status = STORE_NO_ROW;
		r.u.store_result.json.ptr = (const uint8_t *)"null";
		r.u.store_result.json.len = 4;
	} else if (rows != 1 || PQnfields(res) != 1) {
		snprintf(why, sizeof why, "operation %s returned %d rows of %d columns, not one json value",
			 c->op->name, rows, PQnfields(res));
		log_error("%s", why);
		fail(c, "error", EPROTO, why);
		return;
	} else if ((size_t)PQgetlength(res, 0, 0) > STORE_RESULT_BYTES) {
		snprintf(why, sizeof why, "result of %s is %d bytes, more than the limit of %u",
			 c->op->name, PQgetlength(res, 0, 0), STORE_RESULT_BYTES);
		fail(c, "error", EMSGSIZE, why);
		return;
	} else {
		r.u.store_result.rows = (uint64_t)rows;
		if (PQgetisnull(res, 0, 0)) {
			r.u.store_result.json.ptr = (const uint8_t *)"null";
			r.u.store_result.json.len = 4;
		} else {
			r.u.store_result.json.ptr = (const uint8_t *)PQgetvalue(res, 0, 0);
			r.u.store_result.json.len = (uint32_t)PQgetlength(res, 0, 0);
		}
	}
	answer(c, &r);
	record(c->s, c->op->name, "ok", c->t0_us);
	call_free(c);
}

static void on_lease(struct pg_lease *lease, const char *err, void *arg)
{
	struct call *c = arg;

	if (!lease) {
		fail(c, "unavailable", ENOTCONN, err);
		return;
	}
	c->lease = lease;
	/* prepared once per connection, under the operation's number */
	if (pg_lease_query_named(lease, (unsigned)(c->op - store_ops), c->op->sql, (int)c->params.n,
				 c->params.v, on_result, c) != 0)
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
	rc = pg_pool_acquire(s->pool, on_lease, c);
	if (rc == -EBUSY) {
		fail(c, "unavailable", EBUSY, "store busy: too many calls waiting for a database connection");
	} else if (rc != 0) {
		unavailable(s, why, sizeof why);
		fail(c, "unavailable", ENOTCONN, why);
	}
}

#include "migrate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migrations.h"
#include "util.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define LOCK_ARGS "(" STR(MIGRATE_LOCK_KEY1) ", " STR(MIGRATE_LOCK_KEY2) ")"

static const char sql_trylock[] = "SELECT pg_try_advisory_lock" LOCK_ARGS;
static const char sql_lock[] = "SELECT pg_advisory_lock" LOCK_ARGS;
static const char sql_unlock[] = "SELECT pg_advisory_unlock" LOCK_ARGS;
static const char sql_create[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	"version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
	"applied_at timestamptz NOT NULL DEFAULT now())";
static const char sql_read[] =
	"SELECT version, name, checksum, "
	"to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
	"FROM schema_migrations ORDER BY version";
static const char sql_record[] =
	"INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";

struct migrate_run {
	struct pg_pool *pool;
	enum migrate_mode mode;
	migrate_done_cb done;
	void *arg;
	struct pg_lease *lease;
	bool locked, in_tx, created, applied_round;
	size_t current;   /* index in migrations[] being applied */
	uint64_t t0;
	struct migrate_report rep;
};

static void read_records(struct migrate_run *r);
static void apply_next(struct migrate_run *r);

const char *migration_state_name(enum migration_state s)
{
	switch (s) {
	case MIGRATION_PENDING: return "pending";
	case MIGRATION_APPLIED: return "applied";
	case MIGRATION_CHANGED: return "CHANGED";
	case MIGRATION_UNKNOWN: return "unknown-to-this-binary";
	}
	return "?";
}

/* ---- ending a run: roll back, unlock, release, report ---- */

static void report(struct migrate_run *r)
{
	if (r->lease)
		pg_lease_release(r->lease);
	r->done(&r->rep, r->arg);
	free(r->rep.rows);
	free(r);
}

static void on_unlocked(PGresult *res, const char *err, void *arg)
{
	report(arg);
}

static void unlock_and_report(struct migrate_run *r)
{
	if (r->locked) {
		r->locked = false;
		if (pg_lease_query(r->lease, sql_unlock, 0, NULL, on_unlocked, r) == 0)
			return;
	}
	report(r);
}

static void on_rolled_back(PGresult *res, const char *err, void *arg)
{
	unlock_and_report(arg);
}

static void finish(struct migrate_run *r, enum migrate_outcome outcome, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void finish(struct migrate_run *r, enum migrate_outcome outcome, const char *fmt, ...)
{
	va_list ap;

	r->rep.outcome = outcome;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(r->rep.message, sizeof r->rep.message, fmt, ap);
		va_end(ap);
	}
	if (r->in_tx) {
		r->in_tx = false;
		if (pg_lease_script(r->lease, "ROLLBACK", on_rolled_back, r) == 0)
			return;
	}
	unlock_and_report(r);
}

/* A statement's outcome: true when it succeeded; else the run is finished. */
static bool succeeded(struct migrate_run *r, PGresult *res, const char *err, const char *what)
{
	char why[400];

	if (!res) {
		r->in_tx = r->locked = false; /* both went with the connection */
		finish(r, MIGRATE_UNAVAILABLE, "%s", err ? err : "database unavailable");
		return false;
	}
	/* a migration of comments alone is applied as nothing */
	if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ||
	    PQresultStatus(res) == PGRES_EMPTY_QUERY)
		return true;
	pg_result_describe(res, why, sizeof why);
	finish(r, MIGRATE_FAILED, "%s failed: %s", what, why);
	return false;
}

static bool sent(struct migrate_run *r, int rc)
{
	if (rc == 0)
		return true;
	r->in_tx = r->locked = false;
	finish(r, MIGRATE_UNAVAILABLE, "database unavailable: connection lost");
	return false;
}

/* ---- checking what the database records ---- */

static struct migration_row *row_for(struct migrate_run *r, int version)
{
	for (size_t i = 0; i < r->rep.nrows; i++)
		if (r->rep.rows[i].version == version)
			return &r->rep.rows[i];
	return NULL;
}

static int compare_rows(const void *a, const void *b)
{
	const struct migration_row *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* Fills rows from the embedded table and the records (res NULL: no table). */
static int compare(struct migrate_run *r, PGresult *res)
{
	struct migrate_report *rep = &r->rep;
	int n = res ? PQntuples(res) : 0;

	free(rep->rows);
	rep->rows = calloc(migrations_count + (size_t)n + 1, sizeof *rep->rows);
	if (!rep->rows)
		return -ENOMEM;
	rep->nrows = migrations_count;
	rep->applied = rep->pending = rep->changed = rep->unknown = 0;
	for (size_t i = 0; i < migrations_count; i++) {
		rep->rows[i].version = migrations[i].version;
		snprintf(rep->rows[i].name, sizeof rep->rows[i].name, "%s", migrations[i].name);
		rep->rows[i].state = MIGRATION_PENDING;
	}
	for (int t = 0; t < n; t++) {
		long version = strtol(PQgetvalue(res, t, 0), NULL, 10);
		struct migration_row *row = row_for(r, (int)version);
		const char *sha = PQgetvalue(res, t, 2);

		if (!row || version < 1 || (size_t)version > migrations_count) {
			row = &rep->rows[rep->nrows++];
			row->version = (int)version;
			snprintf(row->name, sizeof row->name, "%s", PQgetvalue(res, t, 1));
			row->state = MIGRATION_UNKNOWN;
		} else {
			row->state = strcmp(sha, migrations[version - 1].sha256) == 0 ? MIGRATION_APPLIED
										   : MIGRATION_CHANGED;
		}
		snprintf(row->recorded_sha256, sizeof row->recorded_sha256, "%s", sha);
		snprintf(row->applied_at, sizeof row->applied_at, "%s", PQgetvalue(res, t, 3));
	}
	qsort(rep->rows, rep->nrows, sizeof *rep->rows, compare_rows);
	for (size_t i = 0; i < rep->nrows; i++) {
		switch (rep->rows[i].state) {
		case MIGRATION_PENDING: rep->pending++; break;
		case MIGRATION_APPLIED: rep->applied++; break;
		case MIGRATION_CHANGED: rep->changed++; break;
		case MIGRATION_UNKNOWN: rep->unknown++; break;
		}
	}
	return 0;
}

/* Stops the run when the records contradict this binary. */
static bool consistent(struct migrate_run *r)
{
	for (size_t i = 0; i < r->rep.nrows; i++) {
		const struct migration_row *row = &r->rep.rows[i];

		if (row->state == MIGRATION_CHANGED) {
			finish(r, MIGRATE_INCONSISTENT,
			       "migration %04d_%s was changed after it was applied: the database "
			       "records checksum %.12s..., this binary has %.12s...; put the original "
			       "file back (docs/operations.md, \"A changed migration\")",
			       row->version, row->name, row->recorded_sha256,
			       migrations[row->version - 1].sha256);
			return false;
		}
		if (row->state == MIGRATION_UNKNOWN) {
			finish(r, MIGRATE_INCONSISTENT,
			       "the database records migration %04d_%s, which this binary does not "
			       "know: it was migrated by a newer certward; run that version or a newer one",
			       row->version, row->name);
			return false;
		}
	}
	return true;
}

static void on_created(PGresult *res, const char *err, void *arg)
{
	struct migrate_run *r = arg;

	if (!succeeded(r, res, err, "creating schema_migrations"))
		return;
	r->created = true;
	read_records(r);
}

static void on_read(PGresult *res, const char *err, void *arg)
{
	struct migrate_run *r = arg;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	bool missing = state && strcmp(state, "42P01") == 0; /* undefined_table */

	if (missing && r->mode == MIGRATE_APPLY && !r->created) {
		sent(r, pg_lease_query(r->lease, sql_create, 0, NULL, on_created, r));
		return;
	}
	if (!missing && !succeeded(r, res, err, "reading schema_migrations"))
		return;
	if (compare(r, missing ? NULL : res) != 0) {
		finish(r, MIGRATE_FAILED, "out of memory");
		return;
	}
	if (!consistent(r))
		return;
	if (r->mode == MIGRATE_CHECK || r->rep.pending == 0) {
		finish(r, MIGRATE_DONE, NULL);
		return;
	}
	if (r->applied_round) {
		finish(r, MIGRATE_FAILED, "%u migrations still pending after applying them",
		       r->rep.pending);
		return;
	}
	r->applied_round = true;
	r->current = 0;
	apply_next(r);
}

static void read_records(struct migrate_run *r)
{
	sent(r, pg_lease_query(r->lease, sql_read, 0, NULL, on_read, r));
}

/* ---- applying: BEGIN, the file, its record, COMMIT; one migration at a time ---- */

static void on_committed(PGresult *res, const char *err, void *arg)
{
	struct migrate_run *r = arg;
	const struct migration *m = &migrations[r->current];
	char kv[96];

	r->in_tx = false;
	if (!succeeded(r, res, err, "COMMIT"))
		return;
	r->rep.applied_now++;
	snprintf(kv, sizeof kv, "version=%d name=%s ms=%llu", m->version, m->name,
		 (unsigned long long)(now_ms() - r->t0));
	log_event(LOG_INFO, NULL, kv, "applied migration %04d_%s", m->version, m->name);
	r->current++;
	apply_next(r);
}

static void on_recorded(PGresult *res, const char *err, void *arg)
{
	struct migrate_run *r = arg;
	char what[96];

	snprintf(what, sizeof what, "recording migration %04d_%s", migrations[r->current].version,
		 migrations[r->current].name);
	if (succeeded(r, res, err, what))
		sent(r, pg_lease_script(r->lease, "COMMIT", on_committed, r));
}

static void on_applied(PGresult *res, const char *err, void *arg)
{
	struct migrate_run *r = arg;
	const struct migration *m = &migrations[r->current];
	char version[16], what[96];
	const char *params[3] = {version, m->name, m->sha256};

	snprintf(what, sizeof what, "migration %04d_%s (nothing of it was applied)", m->version,
		 m->name);
	if (!succeeded(r, res, err, what))
		return;
	snprintf(version, sizeof version, "%d", m->version);
	sent(r, pg_lease_query(r->lease, sql_record, 3, params, on_recorded, r));
}

static void on_begun(PGresult *res, const char *err, void *arg)
{
	struct migrate_run *r = arg;

	if (succeeded(r, res, err, "BEGIN"))
		sent(r, pg_lease_script(r->lease, migrations[r->current].sql, on_applied, r));
}

static void apply_next(struct migrate_run *r)
{
	while (r->current < migrations_count &&
	       row_for(r, migrations[r->current].version)->state != MIGRATION_PENDING)
		r->current++;
	if (r->current == migrations_count) {
		/* read the records again: the report shows what is there now */
		read_records(r);
		return;
	}
	log_info("applying migration %04d_%s", migrations[r->current].version,
		 migrations[r->current].name);
	r->t0 = now_ms();
	r->in_tx = true;
	sent(r, pg_lease_script(r->lease, "BEGIN", on_begun, r));
}

/* ---- starting: a connection, then the lock ---- */

static void on_locked(PGresult *res, const char *err, void *arg)
{
	struct migrate_run *r = arg;

	if (!succeeded(r, res, err, "taking the migration lock"))
		return;
	r->locked = true;
	read_records(r);
}

static void on_trylock(PGresult *res, const char *err, void *arg)
{
	struct migrate_run *r = arg;

	if (!succeeded(r, res, err, "taking the migration lock"))
		return;
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		r->locked = true;
		read_records(r);
		return;
	}
	log_info("waiting for the migration lock: another certward node or certwardd migrate "
		 "is applying migrations");
	sent(r, pg_lease_query(r->lease, sql_lock, 0, NULL, on_locked, r));
}

static void on_lease(struct pg_lease *lease, const char *err, void *arg)
{
	struct migrate_run *r = arg;

	if (!lease) {
		finish(r, MIGRATE_UNAVAILABLE, "%s", err);
		return;
	}
	r->lease = lease;
	if (r->mode == MIGRATE_APPLY)
		sent(r, pg_lease_query(lease, sql_trylock, 0, NULL, on_trylock, r));
	else
		read_records(r);
}

void migrate_start(struct pg_pool *p, enum migrate_mode mode, migrate_done_cb done, void *arg)
{
	struct migrate_run *r = calloc(1, sizeof *r);
	struct migrate_report oom = {.outcome = MIGRATE_FAILED};
	int rc;

	if (!r) {
		snprintf(oom.message, sizeof oom.message, "out of memory");
		done(&oom, arg);
		return;
	}
	r->pool = p;
	r->mode = mode;
	r->done = done;
	r->arg = arg;
	rc = pg_pool_acquire(p, on_lease, r);
	if (rc != 0)
		finish(r, MIGRATE_UNAVAILABLE, "database unavailable%s%s",
		       *pg_pool_last_error(p) ? ": " : "", pg_pool_last_error(p));
}

/*
 * The migration runner: brings the database schema up to the migrations
 * compiled into this binary (migrations.h), asynchronously on one leased pool
 * connection, so the store keeps answering while it runs or waits.
 *
 * APPLY: pg_advisory_lock(MIGRATE_LOCK_KEY1, MIGRATE_LOCK_KEY2) for the whole
 * run, so that several nodes starting at once apply each migration exactly
 * once; create schema_migrations if missing; check what is recorded; apply
 * each pending migration in its own transaction together with its row
 * (version, name, sha256 of the file, applied_at); unlock.
 * CHECK: read and compare only; changes nothing, takes no lock.
 *
 * Either stops without changing anything when the database records a
 * checksum other than the embedded one (the file was edited after it was
 * applied) or a version this binary does not know (a newer certward migrated
 * it).
 */
#ifndef CERTWARD_STORE_MIGRATE_H
#define CERTWARD_STORE_MIGRATE_H

#include <stddef.h>

#include "pool.h"

/* The advisory lock of a migration run: "cert" as a big-endian int4, and 1. */
#define MIGRATE_LOCK_KEY1 1667592820
#define MIGRATE_LOCK_KEY2 1

enum migrate_mode { MIGRATE_APPLY, MIGRATE_CHECK };

enum migrate_outcome {
	MIGRATE_DONE,         /* consistent; with APPLY, nothing pending any more */
	MIGRATE_UNAVAILABLE,  /* no connection, or it broke: try again later */
	MIGRATE_INCONSISTENT, /* a CHANGED checksum or an unknown version */
	MIGRATE_FAILED,       /* a statement failed (e.g. a migration's SQL) */
};

enum migration_state { MIGRATION_PENDING, MIGRATION_APPLIED, MIGRATION_CHANGED, MIGRATION_UNKNOWN };

struct migration_row {
	int version;
	char name[64];
	enum migration_state state;
	char applied_at[32];        /* "2026-11-25T11:40:00Z", or "" */
	char recorded_sha256[65];   /* as recorded, or "" */
};

struct migrate_report {
	enum migrate_outcome outcome;
	char message[640];          /* what went wrong, for a log line or the operator */
	unsigned applied_now;       /* by this run */
	unsigned applied, pending, changed, unknown;
	struct migration_row *rows; /* known migrations and unknown recorded ones, by version */
	size_t nrows;               /* 0 when the records could not be read */
};

typedef void (*migrate_done_cb)(const struct migrate_report *r, void *arg);

/* Starts a run; done is called exactly once (possibly before this returns),
 * and the report is valid only during that call. */
void migrate_start(struct pg_pool *p, enum migrate_mode mode, migrate_done_cb done, void *arg);

const char *migration_state_name(enum migration_state s);

#endif

/* The store operation catalogue (schema/store_ops.def) keeps its promises:
 * unique well-formed names, callers only among the workers wired to the
 * store, and SQL whose placeholders are exactly $1..$nparams. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "store_wire.h"

struct op {
	const char *name;
	unsigned callers;
	int nparams;
	const char *result;
	const char *sql;
	const char *tables; /* STORE_READ: NULL or the tables its cached result comes from */
	int read;
};

static const struct op ops[] = {
#define R(role) (1u << IPC_ROLE_##role)
#define STORE_OP(name, callers, nparams, result, sql) {name, callers, nparams, #result, sql, NULL, 0},
#define STORE_READ(name, callers, nparams, result, tables, sql) {name, callers, nparams, #result, sql, tables, 1},
#define STORE_WRITE(name, callers, nparams, result, tables, sql) {name, callers, nparams, #result, sql, tables, 0},
#include "store_ops.def"
#undef STORE_WRITE
#undef STORE_READ
#undef STORE_OP
#undef R
};

#define NOPS (sizeof ops / sizeof ops[0])

Test(store_ops, names)
{
	for (size_t i = 0; i < NOPS; i++) {
		const char *n = ops[i].name, *dot = strchr(n, '.');

		cr_assert(strlen(n) <= STORE_OP_NAME_MAX, "%s: name too long", n);
		cr_assert(dot && dot != n && dot[1], "%s: not noun.verb", n);
		for (const char *c = n; *c; c++)
			cr_assert(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '.' || *c == '_',
				  "%s: character %c", n, *c);
		for (size_t j = 0; j < i; j++)
			cr_assert(strcmp(ops[j].name, n) != 0, "%s declared twice", n);
	}
}

/* the master reaches the store over its control channel */
Test(store_ops, callers_are_wired_workers)
{
	const unsigned wired = 1u << IPC_ROLE_API | 1u << IPC_ROLE_SCHEDULER | 1u << IPC_ROLE_DEPLOY |
			       1u << IPC_ROLE_NOTIFIER | 1u << IPC_ROLE_MASTER;
	unsigned somebody_refused = 0;

	for (size_t i = 0; i < NOPS; i++) {
		cr_assert(ops[i].callers != 0, "%s: nobody may call it", ops[i].name);
		cr_assert((ops[i].callers & ~wired) == 0, "%s: a caller not wired to the store", ops[i].name);
		if (strcmp(ops[i].name, "apikeys.bootstrap") == 0)
			cr_assert(ops[i].callers == 1u << IPC_ROLE_MASTER, "only the master bootstraps keys");
		somebody_refused |= wired & ~ops[i].callers;
	}
	/* the permission check is real: some wired worker is refused something */
	cr_assert(somebody_refused != 0);
	/* every caller may send STORE_CALL at all */
	for (unsigned r = 0; r < IPC_ROLE_COUNT; r++)
		if (wired & 1u << r)
			cr_assert(ipc_sender_allowed(IPC_T_STORE_CALL, r));
}

Test(store_ops, placeholders_match_nparams)
{
	for (size_t i = 0; i < NOPS; i++) {
		int highest = 0;
		unsigned seen = 0;

		cr_assert(ops[i].nparams >= 0 && ops[i].nparams <= STORE_PARAMS_MAX, "%s", ops[i].name);
		cr_assert(strchr(ops[i].sql, ';') == NULL, "%s: one statement only", ops[i].name);
		for (const char *p = ops[i].sql; (p = strchr(p, '$')); p++) {
			int n = atoi(p + 1);

			cr_assert(n >= 1 && n <= STORE_PARAMS_MAX, "%s: bad placeholder", ops[i].name);
			seen |= 1u << n;
			if (n > highest)
				highest = n;
		}
		/* a LIST takes the total the store knows as one parameter more */
		cr_assert_eq(highest, ops[i].nparams + (strcmp(ops[i].result, "LIST") == 0),
			     "%s: uses $%d, declares %d parameters", ops[i].name, highest, ops[i].nparams);
		cr_assert_eq(seen, ((1u << (highest + 1)) - 1) & ~1u, "%s: a placeholder is skipped",
			     ops[i].name);
		cr_assert(strcmp(ops[i].result, "NONE") == 0 || strstr(ops[i].sql, "json") != NULL,
			  "%s: results are JSON built by PostgreSQL", ops[i].name);
	}
}

/* What the store may cache: only reads, only of named tables, never a
 * secret; lists are reads with their total in a second column. */
Test(store_ops, cached_reads)
{
	unsigned cached = 0;

	for (size_t i = 0; i < NOPS; i++) {
		const char *r = ops[i].result, *sql = ops[i].sql;

		if (strcmp(r, "LIST") == 0)
			cr_assert(ops[i].read && ops[i].tables, "%s: a list is a cached read", ops[i].name);
		if (!ops[i].read) {
			/* a write naming its tables names every table its SQL inserts into or updates */
			if (ops[i].tables) {
				for (const char *p = sql; (p = strstr(p, "INSERT INTO ")); p++) {
					char t[64] = "";

					cr_assert_eq(sscanf(p + 12, "%63[a-z_]", t), 1, "%s", ops[i].name);
					cr_assert(strstr(ops[i].tables, t), "%s writes %s, not in its tables", ops[i].name, t);
				}
				for (const char *p = sql; (p = strstr(p, "UPDATE ")); p++) {
					char t[64] = "";

					if (sscanf(p + 7, "%63[a-z_]", t) == 1 && strcmp(t, "SET") != 0 && t[0])
						cr_assert(strstr(ops[i].tables, t), "%s updates %s, not in its tables",
							  ops[i].name, t);
				}
				/* liveness (heartbeats, the Offline sweep), the scheduler's
				 * claims on jobs and certward-notifier's routing and delivery
				 * bookkeeping are not in the audit trail (docs/api.md); every
				 * other change is */
				if (strcmp(ops[i].name, "agents.heartbeat") != 0 &&
				    strcmp(ops[i].name, "agents.mark_offline") != 0 && strcmp(ops[i].name, "jobs.claim") != 0 &&
				    strncmp(ops[i].name, "notifier.", 9) != 0)
					cr_assert(strstr(ops[i].tables, "audit_events"), "%s: its audit event", ops[i].name);
				cr_assert(!strstr(sql, "DELETE FROM") || strstr(ops[i].name, "update"),
					  "%s deletes: it must count as writing everything", ops[i].name);
			}
			continue;
		}
		cr_assert(strncmp(sql, "SELECT ", 7) == 0, "%s: a read is a plain SELECT", ops[i].name);
		cr_assert(!strstr(sql, "INSERT ") && !strstr(sql, "UPDATE ") && !strstr(sql, "DELETE ") &&
				  !strstr(sql, "FOR UPDATE"),
			  "%s: a read changes nothing", ops[i].name);
		if (!ops[i].tables)
			continue;
		cached++;
		cr_assert(strstr(ops[i].name, "secret") == NULL && strstr(sql, "secret_config") == NULL,
			  "%s: secrets are never cached", ops[i].name);
		cr_assert(strlen(ops[i].tables) > 0 && ops[i].tables[0] != ' ', "%s: tables", ops[i].name);
		for (const char *t = ops[i].tables; *t; t++)
			cr_assert(islower((unsigned char)*t) || *t == '_' || *t == ' ' || isdigit((unsigned char)*t),
				  "%s: tables %s", ops[i].name, ops[i].tables);
	}
	cr_assert_gt(cached, 20, "the resources' lists and gets are cached reads");
}

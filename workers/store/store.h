/* certward-store internals shared by main.c and ops.c. */
#ifndef CERTWARD_STORE_STORE_H
#define CERTWARD_STORE_STORE_H

#include <stdbool.h>
#include <uv.h>

#include "callers.h"
#include "channel.h"
#include "pool.h"
#include "worker.h"

enum schema_state {
	SCHEMA_UNKNOWN,   /* not checked yet: PostgreSQL not reached so far */
	SCHEMA_MIGRATING, /* a migration run is going on */
	SCHEMA_PENDING,   /* migrations pending and store.migrate_on_start is false */
	SCHEMA_READY,     /* every embedded migration applied: operations are served */
};

struct store {
	struct worker *w;
	struct pg_pool *pool;
	/* one connection for the scheduler lock alone (scheduler.leader): the
	 * session advisory lock lives as long as this connection */
	struct pg_pool *lock_pool;
	struct callers callers;
	struct store_cache *cache; /* read results (cache.h) */
	enum schema_state schema;
	char schema_why[256]; /* why operations are refused while not READY */
	unsigned batch_max; /* store.batch_max: calls written in one transaction */
	bool migrate_on_start;
	bool stopping;
	bool migrations_known;
	unsigned migrations_applied, migrations_pending;
	uv_timer_t schema_timer; /* the next migration run or check */
	uint64_t schema_retry_ms;
	bool warned_unavailable, warned_pending;
};

/* ops.c: a STORE_CALL from a wired worker. */
void store_call_handle(struct store *s, struct ipc_channel *from, struct ipc_msg *m);
/* ops.c: how often each operation's statement was prepared (the pool's
 * connections prepare their own copies) */
struct strbuf;
void store_ops_metrics(const struct store *s, struct strbuf *out);
/* ops.c: the cache's table masks of the cached reads, once at start. */
void store_ops_cache_init(struct store *s);

/* migrate_cli.c: certward-store --migrate[=status], run by certwardd migrate. */
int migrate_cli(const char *mode);

#endif

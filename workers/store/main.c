/* certward-store: the only process that talks to PostgreSQL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "harden.h"
#include "log.h"
#include "migrate.h"
#include "cache.h"
#include "store.h"

#define SCHEMA_RETRY_MIN_MS 250
#define SCHEMA_RETRY_MAX_MS 5000
#define SCHEMA_RECHECK_MS 5000

/* Exit status when the database cannot be brought to this binary's schema:
 * the master restarts the store with backoff and reports the crash loop. */
#define EXIT_SCHEMA 65

static struct store S;

static void schema_run(uv_timer_t *t);

static void schema_again(uint64_t delay_ms)
{
	uv_timer_start(&S.schema_timer, schema_run, delay_ms, 0);
}

static void on_schema(const struct migrate_report *r, void *arg)
{
	if (S.stopping)
		return;
	switch (r->outcome) {
	case MIGRATE_DONE:
		S.migrations_known = true;
		S.migrations_applied = r->applied;
		S.migrations_pending = r->pending;
		S.schema_retry_ms = SCHEMA_RETRY_MIN_MS;
		S.warned_unavailable = false;
		if (r->pending == 0) {
			S.schema = SCHEMA_READY;
			log_info("database schema is current: %u migration%s applied (%u by this start)",
				 r->applied, r->applied == 1 ? "" : "s", r->applied_now);
			return;
		}
		/* only a check (store.migrate_on_start false) leaves migrations pending */
		S.schema = SCHEMA_PENDING;
		snprintf(S.schema_why, sizeof S.schema_why,
			 "%u migration%s pending and store.migrate_on_start is false: run certwardd migrate",
			 r->pending, r->pending == 1 ? "" : "s");
		if (!S.warned_pending)
			log_warn("%s; operations are refused until then", S.schema_why);
		S.warned_pending = true;
		schema_again(SCHEMA_RECHECK_MS);
		return;
	case MIGRATE_UNAVAILABLE:
		if (S.schema == SCHEMA_MIGRATING)
			S.schema = SCHEMA_UNKNOWN;
		log_event(S.warned_unavailable ? LOG_DEBUG : LOG_WARN, NULL, NULL,
			  "%s the database schema: %s; trying again in %llu ms",
			  S.migrate_on_start ? "cannot migrate" : "cannot check", r->message,
			  (unsigned long long)S.schema_retry_ms);
		S.warned_unavailable = true;
		schema_again(S.schema_retry_ms);
		S.schema_retry_ms = S.schema_retry_ms * 2 > SCHEMA_RETRY_MAX_MS ? SCHEMA_RETRY_MAX_MS
										: S.schema_retry_ms * 2;
		return;
	case MIGRATE_INCONSISTENT:
	case MIGRATE_FAILED:
		log_error("cannot bring the database schema up to date, stopping: %s", r->message);
		exit(EXIT_SCHEMA);
	}
}

static void schema_run(uv_timer_t *t)
{
	if (S.migrate_on_start) {
		S.schema = SCHEMA_MIGRATING;
		snprintf(S.schema_why, sizeof S.schema_why, "migrations are being applied");
	}
	migrate_start(S.pool, S.migrate_on_start ? MIGRATE_APPLY : MIGRATE_CHECK, on_schema, NULL);
}

/* NOTIFY certward_changes (migrations/0007_change_notify.sql), or NULL:
 * the listening connection came up or went down. */
static void on_change(const char *table, void *arg)
{
	if (table) {
		cache_changed(S.cache, table);
		return;
	}
	cache_set_enabled(S.cache, pg_pool_listening(S.pool));
	log_info("read cache %s", cache_enabled(S.cache) ? "on: PostgreSQL announces changes"
							 : "off until changes can be heard again");
}

static int store_init(struct worker *w, const struct cfg *section)
{
	uint64_t cache_bytes = cfg_size(section, "store", "cache_bytes");
	struct pg_pool_options o = {
		.dsn = cfg_str(section, "store", "dsn"),
		.size = (unsigned)cfg_int(section, "store", "pool_size"),
		.connect_timeout_ms = cfg_duration_ms(section, "store", "connect_timeout"),
		.max_queued = (unsigned)cfg_int(section, "store", "max_queued"),
		.queue_timeout_ms = cfg_duration_ms(section, "store", "queue_timeout"),
		.listen = cache_bytes ? "certward_changes" : NULL,
		.on_notify = on_change,
	};

	S.w = w;
	S.batch_max = (unsigned)cfg_int(section, "store", "batch_max");
	S.cache = cache_new((size_t)cache_bytes);
	if (!S.cache) {
		log_error("cannot allocate the read cache");
		return -1;
	}
	store_ops_cache_init(&S);
	S.migrate_on_start = cfg_bool(section, "store", "migrate_on_start");
	S.pool = pg_pool_start(worker_loop(w), &o);
	o.size = 1;
	o.max_queued = 4;
	o.listen = NULL;
	o.on_notify = NULL;
	o.name = "lock";
	S.lock_pool = S.pool ? pg_pool_start(worker_loop(w), &o) : NULL;
	if (!S.pool || !S.lock_pool) {
		log_error("cannot start the postgresql pool");
		return -1;
	}
	callers_init(&S.callers);
	uv_timer_init(worker_loop(w), &S.schema_timer);
	S.schema_retry_ms = SCHEMA_RETRY_MIN_MS;
	/* the first run starts from the loop, after READY: the store answers
	 * STORE_HEALTH (and refuses operations) while it waits for PostgreSQL */
	schema_again(0);
	worker_set_data(w, &S);
	return 0;
}

static void store_metrics(struct worker *w, struct strbuf *out)
{
	pg_pool_metrics(S.pool, out);
	store_ops_metrics(&S, out);
	cache_metrics(S.cache, out);
	if (S.migrations_known) {
		strbuf_printf(out, "store_migrations_applied %u\n", S.migrations_applied);
		strbuf_printf(out, "store_migrations_pending %u\n", S.migrations_pending);
	}
}

static void store_message(struct worker *w, struct ipc_channel *from, struct ipc_msg *m, int fd)
{
	struct ipc_msg r = {.type = IPC_T_STORE_HEALTH};

	if (fd >= 0)
		close(fd);
	switch (m->type) {
	case IPC_T_STORE_CALL:
		store_call_handle(&S, from, m);
		return;
	case IPC_T_STORE_HEALTH_GET:
		r.u.store_health.connections_up = pg_pool_connected(S.pool);
		r.u.store_health.pool_size = (uint32_t)pg_pool_size(S.pool);
		r.u.store_health.schema_ready = S.schema == SCHEMA_READY;
		ipc_reply(from, m, &r);
		return;
	default:
		ipc_reply_error(from, m, ENOTSUP, "the store does not handle this message");
	}
}

static void store_peer_closed(struct worker *w, struct ipc_channel *ch)
{
	callers_forget(&S.callers, ch);
}

static void store_stop(struct worker *w)
{
	S.stopping = true;
	uv_timer_stop(&S.schema_timer);
	uv_close((uv_handle_t *)&S.schema_timer, NULL);
	/* fails the calls in flight: their callers get an answer, not a timeout */
	pg_pool_stop(S.pool);
	S.pool = NULL;
	pg_pool_stop(S.lock_pool);
	S.lock_pool = NULL;
	cache_free(S.cache);
	S.cache = NULL;
	callers_close(&S.callers);
	worker_set_data(w, NULL);
}

static const struct worker_ops ops = {
	.role = IPC_ROLE_STORE,
	.summary = "certward-store: the PostgreSQL gateway of certward (the only process holding database credentials).\n"
		   "certwardd migrate runs it as certward-store --migrate[=status] with its configuration on stdin.",
	.harden = HARDEN_NET_CLIENT,
	.init = store_init,
	.on_message = store_message,
	.metrics = store_metrics,
	.peer_closed = store_peer_closed,
	.stop = store_stop,
};

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--migrate") == 0 || strcmp(argv[1], "--migrate=status") == 0))
		return migrate_cli(argv[1]);
	return worker_main(argc, argv, &ops);
}

/*
 * certward-store --migrate[=status]: the one-shot mode behind
 * `certwardd migrate`. The master runs it as the store's user with the store's
 * configuration section on stdin (the CONFIG encoding), so the connection
 * string never appears on a command line or in the environment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "harden.h"
#include "log.h"
#include "migrate.h"
#include "migrations.h"
#include "store.h"

#define SECTION_MAX 65536

/* exit statuses (sysexits.h) */
#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 64
#define EXIT_INCONSISTENT 65
#define EXIT_UNAVAILABLE 69
#define EXIT_CONFIG 78

struct cli {
	bool status;
	int code;
	struct pg_pool *pool;
};

static const char *checksum_state(const struct migration_row *row)
{
	switch (row->state) {
	case MIGRATION_PENDING: return "-";
	case MIGRATION_APPLIED: return "ok";
	case MIGRATION_CHANGED: return "CHANGED";
	case MIGRATION_UNKNOWN: return "unknown-to-this-binary";
	}
	return "?";
}

static void print_status(const struct migrate_report *r)
{
	printf("%-7s  %-24s  %-7s  %-20s  %s\n", "VERSION", "NAME", "STATE", "APPLIED AT",
	       "CHECKSUM");
	for (size_t i = 0; i < r->nrows; i++) {
		const struct migration_row *row = &r->rows[i];

		printf("%04d     %-24s  %-7s  %-20s  %s\n", row->version, row->name,
		       row->state == MIGRATION_PENDING ? "pending" : "applied",
		       *row->applied_at ? row->applied_at : "-", checksum_state(row));
	}
	printf("%zu migrations known to this binary: %u applied, %u pending, %u changed; "
	       "%u recorded but unknown to this binary\n",
	       migrations_count, r->applied + r->changed, r->pending, r->changed, r->unknown);
}

static void on_done(const struct migrate_report *r, void *arg)
{
	struct cli *cli = arg;

	if (cli->status && r->nrows)
		print_status(r);
	switch (r->outcome) {
	case MIGRATE_DONE:
		cli->code = EXIT_OK;
		if (!cli->status && r->applied_now)
			printf("applied %u migration%s; all %u are applied\n", r->applied_now,
			       r->applied_now == 1 ? "" : "s", r->applied);
		else if (!cli->status)
			printf("nothing to apply: all %u migrations are applied\n", r->applied);
		break;
	case MIGRATE_UNAVAILABLE:
		cli->code = EXIT_UNAVAILABLE;
		break;
	case MIGRATE_INCONSISTENT:
		cli->code = EXIT_INCONSISTENT;
		break;
	case MIGRATE_FAILED:
		cli->code = EXIT_FAILED;
		break;
	}
	if (r->outcome != MIGRATE_DONE)
		fprintf(stderr, "certwardd migrate: %s\n", r->message);
	fflush(stdout);
	pg_pool_stop(cli->pool);
}

/* The section as the master sends it in CONFIG; at most SECTION_MAX bytes. */
static char *read_section(size_t *len)
{
	char *buf = malloc(SECTION_MAX + 1);
	size_t n = 0;

	if (!buf)
		return NULL;
	for (;;) {
		ssize_t k = read(STDIN_FILENO, buf + n, SECTION_MAX + 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 || (k == 0 && n == 0) || n + (size_t)k > SECTION_MAX) {
			explicit_bzero(buf, n);
			free(buf);
			return NULL;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*len = n;
	return buf;
}

int migrate_cli(const char *mode)
{
	struct cli cli = {.status = strcmp(mode, "--migrate=status") == 0, .code = EXIT_FAILED};
	struct pg_pool_options o = {.size = 1, .max_queued = 1};
	struct cfg *cfg = NULL;
	struct cfg_error err;
	char msg[512];
	size_t len = 0;
	char *text;
	uv_loop_t loop;

	log_init("migrate");
	if (cli.status)
		log_set_level(LOG_WARN);
	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "certward-store %s is run by certwardd migrate; use that\n", mode);
		return EXIT_USAGE;
	}
	text = read_section(&len);
	if (!text) {
		fprintf(stderr, "certwardd migrate: no store configuration on stdin (at most %d bytes)\n",
			SECTION_MAX);
		return EXIT_CONFIG;
	}
	if (cfg_section_parse("store", text, len, &cfg, &err) != 0) {
		cfg_error_format(&err, msg, sizeof msg);
		fprintf(stderr, "certwardd migrate: bad store configuration: %s\n", msg);
		explicit_bzero(text, len);
		free(text);
		return EXIT_CONFIG;
	}
	explicit_bzero(text, len);
	free(text);
	o.dsn = cfg_str(cfg, "store", "dsn");
	o.connect_timeout_ms = cfg_duration_ms(cfg, "store", "connect_timeout");
	/* one attempt: wait for it, then report what went wrong */
	o.queue_timeout_ms = o.connect_timeout_ms + 1000;
	if (harden_apply("migrate", HARDEN_NET_CLIENT, msg, sizeof msg) != 0) {
		fprintf(stderr, "certwardd migrate: %s\n", msg);
		cfg_free(cfg);
		return EXIT_FAILED;
	}
	uv_loop_init(&loop);
	cli.pool = pg_pool_start(&loop, &o);
	cfg_free(cfg);
	if (!cli.pool) {
		fprintf(stderr, "certwardd migrate: out of memory\n");
		uv_loop_close(&loop);
		return EXIT_FAILED;
	}
	migrate_start(cli.pool, cli.status ? MIGRATE_CHECK : MIGRATE_APPLY, on_done, &cli);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return cli.code;
}

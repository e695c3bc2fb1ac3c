#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[] = "/tmp/certward-cfgtest-XXXXXX";
static char path[256];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/certward.yml", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* Loads text; on failure returns the formatted error (static buffer). */
static const char *load(const char *text, char *const *env, struct cfg **out)
{
	static char line[600];
	struct cfg_error err;

	write_file(text);
	if (cfg_load(path, env, out, &err) == 0)
		return NULL;
	cfg_error_format(&err, line, sizeof line);
	return line;
}

static void expect_error(const char *text, const char *where, const char *key, const char *what)
{
	struct cfg *cfg = NULL;
	const char *e = load(text, NULL, &cfg);
	char loc[300];

	cr_assert_not_null(e, "accepted: %s", text);
	snprintf(loc, sizeof loc, "%s%s", path, where);
	cr_assert(strstr(e, loc) == e, "error %s does not start with %s", e, loc);
	cr_assert(strstr(e, key), "error %s does not name %s", e, key);
	cr_assert(strstr(e, what), "error %s does not say %s", e, what);
	cr_assert(!strchr(e, '\n'), "one line");
}

Test(config, every_type_and_defaults)
{
	struct cfg *cfg;
	const char *e = load("master:\n"
			     "  log_dir: /var/log/cw\n"
			     "  restart_backoff_initial: 250ms\n"
			     "  stop_timeout: 2m\n"
			     "api:\n"
			     "  listen: \"[::1]:8443\"\n"
			     "  processes: 3\n"
			     "store:\n"
			     "  dsn: 'host=/run/pg dbname=cw'\n"
			     "deploy:\n",
			     NULL, &cfg);

	cr_assert_null(e, "%s", e);
	cr_assert_str_eq(cfg_str(cfg, "master", "log_dir"), "/var/log/cw");
	cr_assert_eq(cfg_duration_ms(cfg, "master", "restart_backoff_initial"), 250);
	cr_assert_eq(cfg_duration_ms(cfg, "master", "stop_timeout"), 120000);
	cr_assert_str_eq(cfg_str(cfg, "api", "listen"), "[::1]:8443");
	cr_assert_eq(cfg_int(cfg, "api", "processes"), 3);
	cr_assert_str_eq(cfg_str(cfg, "store", "dsn"), "host=/run/pg dbname=cw");
	/* defaults */
	cr_assert_eq(cfg_int(cfg, "store", "pool_size"), 4);
	cr_assert_eq(cfg_duration_ms(cfg, "master", "restart_backoff_max"), 30000);
	cr_assert_str_eq(cfg_str(cfg, "master", "user"), "certward");
	cr_assert(cfg_is_set(cfg, "api", "processes"));
	cr_assert_not(cfg_is_set(cfg, "store", "pool_size"));
	cfg_free(cfg);
}

Test(config, environment_overrides_the_file)
{
	struct cfg *cfg;
	char *env[] = {"CERTWARD_STORE_POOL_SIZE=9", "CERTWARD_MASTER_LOG_DIR=/elsewhere",
		       "CERTWARD_BUILD_DIR=/not/config", "PATH=/bin", NULL};
	const char *e = load("store:\n  dsn: x\n  pool_size: 2\n", env, &cfg);

	cr_assert_null(e, "%s", e);
	cr_assert_eq(cfg_int(cfg, "store", "pool_size"), 9);
	cr_assert_str_eq(cfg_str(cfg, "master", "log_dir"), "/elsewhere");
	cfg_free(cfg);
}

Test(config, environment_can_supply_a_required_value)
{
	struct cfg *cfg;
	char *env[] = {"CERTWARD_STORE_DSN=dbname=x", NULL};

	cr_assert_null(load("", env, &cfg));
	cr_assert_str_eq(cfg_str(cfg, "store", "dsn"), "dbname=x");
	cfg_free(cfg);
}

Test(config, bad_environment)
{
	struct cfg *cfg;
	char *typo[] = {"CERTWARD_STORE_DNS=x", NULL};
	char *bad[] = {"CERTWARD_STORE_POOL_SIZE=lots", NULL};
	const char *e;

	e = load("store:\n  dsn: x\n", typo, &cfg);
	cr_assert(e && strstr(e, "environment") && strstr(e, "CERTWARD_STORE_DNS"), "%s", e);
	e = load("store:\n  dsn: x\n", bad, &cfg);
	cr_assert(e && strstr(e, "store.pool_size") && !strstr(e, "lots"), "%s", e);
}

Test(config, rejections_name_file_line_and_key)
{
	expect_error("store:\n  dsn: x\n  colour: blue\n", ":3:", "store.colour", "unknown key");
	expect_error("store:\n  dsn: x\nweather:\n  a: 1\n", ":3:", "weather", "unknown section");
	expect_error("store:\n  dsn: x\n  pool_size: many\n", ":3:", "store.pool_size", "integer");
	expect_error("store:\n  dsn: x\n  pool_size: 65\n", ":3:", "store.pool_size", "[1, 64]");
	expect_error("store:\n  dsn: x\n  pool_size: 2\n  pool_size: 3\n", ":4:", "store.pool_size",
		     "duplicate");
	expect_error("store:\n  dsn: x\nstore:\n  pool_size: 3\n", ":3:", "store", "duplicate section");
	expect_error("store:\n  dsn: [a, b]\n", ":2:", "store.dsn", "single value");
	expect_error("store:\n  dsn: x\nmaster:\n  stop_timeout: 10\n", ":4:", "master.stop_timeout",
		     "duration");
	expect_error("store:\n  dsn: x\nmaster:\n  stop_timeout: 10y\n", ":4:",
		     "master.stop_timeout", "duration");
	expect_error("store:\n  dsn: x\napi:\n  listen: localhost\n", ":4:", "api.listen", "host:port");
	expect_error("store:\n  dsn: x\napi:\n  listen: \"h:70000\"\n", ":4:", "api.listen", "host:port");
	expect_error("master:\n  log_dir: /x\n", "", "store.dsn", "missing required value");
	expect_error("store:\n  dsn:\n", "", "store.dsn", "missing required value");
	expect_error("- a\n- b\n", ":1:", "", "mapping");
	expect_error("store: &a\n  dsn: x\nmaster: *a\n", ":1:", "", "anchors");
	expect_error("store:\n  dsn: !!str x\n", ":2:", "store.dsn", "tags");
	expect_error("store:\n  dsn: x\n---\nstore:\n  dsn: y\n", ":3:", "", "more than one");
	expect_error("store:\n  dsn: x\n   bad indent: [\n", "", "", "YAML syntax error");
	expect_error("store: 5\n", ":1:", "store", "mapping");
}

Test(config, secrets_never_echoed)
{
	struct cfg *cfg;
	const char *e;
	char big[1200];

	e = load("store:\n  dsn: [password=hunter2]\n", NULL, &cfg);
	cr_assert(e && !strstr(e, "hunter2"), "%s", e);
	memset(big, 'p', sizeof big - 1);
	big[sizeof big - 1] = 0;
	{
		char text[1300];

		snprintf(text, sizeof text, "store:\n  dsn: %s\n", big);
		e = load(text, NULL, &cfg);
		cr_assert(e && strstr(e, "store.dsn") && !strstr(e, "ppppp"), "%s", e);
	}
}

Test(config, missing_and_oversize_files)
{
	struct cfg *cfg;
	struct cfg_error err;
	char line[600];
	FILE *f;

	cr_assert_neq(cfg_load("/nonexistent/certward.yml", NULL, &cfg, &err), 0);
	cfg_error_format(&err, line, sizeof line);
	cr_assert(strstr(line, "/nonexistent/certward.yml") && strstr(line, "No such file"), "%s", line);

	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("store:\n  dsn: x\n", f);
	for (int i = 0; i < 120000; i++)
		fputs("# padding\n", f);
	fclose(f);
	cr_assert_neq(cfg_load(path, NULL, &cfg, &err), 0);
	cfg_error_format(&err, line, sizeof line);
	cr_assert(strstr(line, "larger than"), "%s", line);
}

Test(config, section_round_trip)
{
	struct cfg *cfg, *back;
	struct cfg_error err;
	char *a, *b;
	size_t alen, blen;

	cr_assert_null(load("store:\n  dsn: 'host=/x user=y'\n  pool_size: 7\n", NULL, &cfg));
	cr_assert_eq(cfg_section_serialize(cfg, "store", &a, &alen), 0);
	cr_assert(strstr(a, "dsn=host=/x user=y\n") && strstr(a, "pool_size=7\n") &&
		  strstr(a, "connect_timeout=5000ms\n"), "%s", a);
	cr_assert_eq(cfg_section_parse("store", a, alen, &back, &err), 0, "%s", err.msg);
	cr_assert_eq(cfg_int(back, "store", "pool_size"), 7);
	cr_assert_str_eq(cfg_str(back, "store", "dsn"), "host=/x user=y");
	cr_assert_eq(cfg_section_serialize(back, "store", &b, &blen), 0);
	cr_assert_eq(alen, blen);
	cr_assert_arr_eq(a, b, alen, "serialization is canonical");
	free(a);
	free(b);
	cfg_free(back);
	cfg_free(cfg);
}

/* every section of a default configuration reaches its worker intact,
 * including optional values left unset (an empty address) */
Test(config, default_sections_round_trip)
{
	static const char *const sections[] = {"master", "api", "store", "signer"};
	struct cfg *cfg, *back;
	struct cfg_error err;
	char *a;
	size_t alen;

	cr_assert_null(load("store:\n  dsn: 'host=/x'\n", NULL, &cfg));
	cr_assert_str_eq(cfg_str(cfg, "api", "plain_listen"), "");
	for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
		cr_assert_eq(cfg_section_serialize(cfg, sections[i], &a, &alen), 0);
		cr_assert_eq(cfg_section_parse(sections[i], a, alen, &back, &err), 0, "%s: %s",
			     sections[i], err.msg);
		cfg_free(back);
		free(a);
	}
	cfg_free(cfg);
	cfg = NULL;
	cr_assert_not_null(load("store:\n  dsn: x\napi:\n  plain_listen: 'nonsense'\n", NULL, &cfg),
			   "a malformed address is still refused");
}

Test(config, section_parse_is_strict)
{
	struct cfg *cfg;
	struct cfg_error err;
	char *big;
	const char *bad[] = {
		"dsn=x\nnope=1\n",       /* unknown key */
		"dsn=x\npool_size\n",    /* malformed line */
		"dsn=x\npool_size=0\n",  /* out of range */
		"dsn=x\ndsn=y\n",        /* duplicate */
		"dsn=x",                 /* no final newline */
		"pool_size=2\n",         /* required dsn missing */
		"=x\n",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_neq(cfg_section_parse("store", bad[i], strlen(bad[i]), &cfg, &err), 0,
			      "accepted %s", bad[i]);
	cr_assert_neq(cfg_section_parse("nosuch", "", 0, &cfg, &err), 0);
	big = malloc(70000);
	memset(big, '\n', 70000);
	cr_assert_neq(cfg_section_parse("api", big, 70000, &cfg, &err), 0);
	cr_assert(strstr(err.msg, "larger than"), "%s", err.msg);
	free(big);
}

Test(config, units_and_bounds)
{
	struct cfg *cfg;

	cr_assert_null(load("store:\n  dsn: x\nmaster:\n  restart_backoff_max: 1h\n"
			    "  restart_stable_after: 1d\n  ipc_timeout: 10ms\n", NULL, &cfg));
	cr_assert_eq(cfg_duration_ms(cfg, "master", "restart_backoff_max"), 3600000);
	cr_assert_eq(cfg_duration_ms(cfg, "master", "restart_stable_after"), 86400000);
	cr_assert_eq(cfg_duration_ms(cfg, "master", "ipc_timeout"), 10);
	cfg_free(cfg);
	expect_error("store:\n  dsn: x\nmaster:\n  ipc_timeout: 9ms\n", ":4:", "master.ipc_timeout",
		     "between");
	expect_error("store:\n  dsn: x\nmaster:\n  ipc_timeout: 99999999999999999999s\n", ":4:",
		     "master.ipc_timeout", "duration");
}

/* an enumerated value: only the listed words, the first by default; the
 * error lists the words and never echoes what was given */
Test(config, enum_values)
{
	struct cfg *cfg = NULL;
	char *env[] = {(char *)"CERTWARD_AUDIT_FAILURE_MODE=fail_open", NULL};

	cr_assert_null(load("store:\n  dsn: x\n", NULL, &cfg));
	cr_assert_str_eq(cfg_str(cfg, "audit", "failure_mode"), "fail_closed");
	cfg_free(cfg);
	cr_assert_null(load("store:\n  dsn: x\naudit:\n  failure_mode: fail_open\n", NULL, &cfg));
	cr_assert_str_eq(cfg_str(cfg, "audit", "failure_mode"), "fail_open");
	cfg_free(cfg);
	cr_assert_null(load("store:\n  dsn: x\n", env, &cfg));
	cr_assert_str_eq(cfg_str(cfg, "audit", "failure_mode"), "fail_open");
	cfg_free(cfg);
	expect_error("store:\n  dsn: x\naudit:\n  failure_mode: fail_openly\n", ":4: ",
		     "audit.failure_mode", "expected one of: fail_closed, fail_open");
	expect_error("store:\n  dsn: x\naudit:\n  failure_mode: FAIL_OPEN\n", ":4: ",
		     "audit.failure_mode", "expected one of");
	expect_error("store:\n  dsn: x\naudit:\n  failure_mode:\n", ":4: ",
		     "audit.failure_mode", "missing value");
	expect_error("store:\n  dsn: x\naudit:\n  mode: fail_open\n", ":4: ", "audit.mode",
		     "unknown key");
}

static int parse_text(const char *section, const char *text, struct cfg **out,
		      struct cfg_error *err)
{
	return cfg_section_parse(section, text, strlen(text), out, err);
}

/* the api's section text carries the audit section's keys, qualified; no
 * other worker gets them */
Test(config, shared_section_travels_with_the_api)
{
	struct cfg *cfg, *back;
	struct cfg_error err;
	char *a;
	size_t alen;

	cr_assert_null(load("store:\n  dsn: x\naudit:\n  failure_mode: fail_open\n", NULL, &cfg));
	cr_assert_eq(cfg_section_serialize(cfg, "api", &a, &alen), 0);
	cr_assert(strstr(a, "\naudit.failure_mode=fail_open\n"), "%s", a);
	cr_assert_eq(cfg_section_parse("api", a, alen, &back, &err), 0, "%s", err.msg);
	cr_assert_str_eq(cfg_str(back, "audit", "failure_mode"), "fail_open");
	cfg_free(back);
	free(a);
	cr_assert_eq(cfg_section_serialize(cfg, "store", &a, &alen), 0);
	cr_assert_null(strstr(a, "audit."), "%s", a);
	cr_assert_neq(parse_text("store", "dsn=x\naudit.failure_mode=fail_open\n", &back, &err), 0,
		      "the store does not read audit");
	free(a);
	cfg_free(cfg);
	cr_assert_neq(parse_text("api", "audit.failure_mode=maybe\n", &back, &err), 0);
	cr_assert(strstr(err.key, "audit.failure_mode"), "%s", err.key);
	cr_assert_neq(parse_text("api", "audit.nope=1\n", &back, &err), 0);
	cr_assert_neq(parse_text("api", "audit.failure_mode=fail_open\naudit.failure_mode=fail_open\n",
			    &back, &err), 0, "duplicate");
	cr_assert_neq(parse_text("api", ".failure_mode=fail_open\n", &back, &err), 0);
}

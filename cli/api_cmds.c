#include "api_cmds.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "cli.h"
#include "output.h"

struct opts {
	struct cli_common c;
	const char *data; /* --data */
	char *pos[4];	  /* positional arguments after the command */
	int npos;
};

void api_cmd_usage(FILE *out)
{
	fprintf(out,
		"  status                      readiness of each component (GET /ready);\n"
		"                              exit 0 when ready, 1 when not\n"
		"  health                      liveness of the api (GET /health)\n"
		"  version                     the CLI's version, and the server's when it tells\n"
		"  api METHOD PATH [--data JSON|@FILE|@-]\n"
		"                              any REST call (GET, POST, PUT, DELETE); prints the\n"
		"                              JSON answer, exits 1 on HTTP status >= 400\n");
}

/* Parses options anywhere after the command; positionals go to o->pos. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof *o);
	cli_common_init(&o->c);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		char name[64];
		int rc;

		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (o->npos == (int)(sizeof o->pos / sizeof o->pos[0]))
				return cli_usage_error(NULL, "too many arguments at '%s'", a);
			o->pos[o->npos++] = argv[i];
			continue;
		}
		if ((rc = cli_option_name(a, name)) != 0 || (rc = cli_option_value(argc, argv, &i, &v)) != 0)
			return rc;
		if (cli_common_option(&o->c, name, v, &rc)) {
			if (rc != 0)
				return rc;
			continue;
		}
		if (strcmp(name, "data") != 0)
			return cli_usage_error(NULL, "unknown option '%s'", a);
		o->data = v;
	}
	return 0;
}

static int cmd_status(const struct opts *o)
{
	static const char *const cols[] = {"component", "state"};
	struct http_response r;
	struct table t;
	json_t *j, *items, *it;
	size_t i;
	int rc = cli_request(&o->c, "GET", "/ready", NULL, 0, &r);

	if (rc != 0)
		return rc;
	if (r.status != 200 && r.status != 503) {
		rc = cli_answer_error(&r);
		http_response_free(&r);
		return rc;
	}
	if (o->c.format == FMT_JSON) {
		cli_print_body(&r);
	} else {
		j = cli_answer_json(&r);
		if (!j) {
			http_response_free(&r);
			return EXIT_PROTOCOL;
		}
		items = json_object_get(j, "not_ready");
		if (r.status == 200 && json_array_size(items) == 0)
			items = json_pack("[{s:s,s:s},{s:s,s:s}]", "component", "workers", "state", "running",
					  "component", "postgresql", "state", "connected");
		else
			json_incref(items);
		printf("status: %s\n", r.status == 200 ? "ready" : "not ready");
		table_init(&t, cols, 2);
		json_array_foreach(items, i, it) table_add(&t, it);
		table_print(&t, stdout);
		table_free(&t);
		json_decref(items);
		json_decref(j);
	}
	rc = r.status == 200 ? 0 : EXIT_ANSWER;
	http_response_free(&r);
	return rc;
}

static int cmd_health(const struct opts *o)
{
	struct http_response r;
	int rc = cli_request(&o->c, "GET", "/health", NULL, 0, &r);

	if (rc != 0)
		return rc;
	if (o->c.format == FMT_JSON) {
		cli_print_body(&r);
	} else if (r.status == 200) {
		json_t *j = json_loadb(r.body, r.body_len, 0, NULL), *s = json_object_get(j, "status");
		char *text = s ? out_text(s, 0) : NULL;

		printf("health: %s\n", text ? text : "ok");
		free(text);
		json_decref(j);
	}
	if (r.status != 200 && o->c.format != FMT_JSON)
		cli_answer_error(&r);
	rc = r.status == 200 ? 0 : EXIT_ANSWER;
	http_response_free(&r);
	return rc;
}

static int cmd_version(const struct opts *o)
{
	struct http_response r;
	char err[512];
	enum http_err e = http_request(&o->c.http, "GET", "/api/v1/version", NULL, 0, &r, err,
				       sizeof err);
	json_t *j = NULL, *sv = NULL;

	if (e == HTTP_OK && r.status == 200) {
		j = json_loadb(r.body, r.body_len, 0, NULL);
		sv = json_object_get(j, "version");
	}
	if (o->c.format == FMT_JSON) {
		json_t *out = json_pack("{s:s}", "cli", CERTWARD_VERSION);

		if (j && json_is_object(j))
			json_object_set(out, "server", j);
		json_dumpf(out, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(out);
	} else {
		char *text = json_is_string(sv) ? out_text(sv, 0) : NULL;

		printf("cli:    certward %s\n", CERTWARD_VERSION);
		if (text)
			printf("server: certward %s\n", text);
		else if (e == HTTP_OK && r.status == 404)
			printf("server: unknown (this server has no /api/v1/version yet)\n");
		else if (e == HTTP_OK)
			printf("server: unknown (HTTP %d)\n", r.status);
		else
			printf("server: unreachable\n");
		free(text);
	}
	if (e != HTTP_OK)
		fprintf(stderr, "certward: %s\n", err);
	json_decref(j);
	if (e == HTTP_OK)
		http_response_free(&r);
	return 0;
}

static int cmd_api(const struct opts *o)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
	static const char hint[] = "certward api --help";
	struct http_response r;
	const char *method;
	char *body = NULL;
	size_t body_len = 0, i;
	int rc;

	if (o->npos != 2)
		return cli_usage_error(hint, "api takes METHOD PATH");
	method = o->pos[0];
	for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (strcmp(method, methods[i]) == 0)
			break;
	if (i == sizeof methods / sizeof methods[0])
		return cli_usage_error(hint, "unknown method '%s' (GET, POST, PUT or DELETE)", method);
	if (o->pos[1][0] != '/')
		return cli_usage_error(hint, "the path must start with / (got '%s')", o->pos[1]);
	if (o->data && !(body = cli_load_data(o->data, 0, &body_len, NULL, &rc)))
		return rc;
	rc = cli_request(&o->c, method, o->pos[1], body, body_len, &r);
	free(body);
	if (rc != 0)
		return rc;
	if (r.status >= 400) {
		if (o->c.format == FMT_JSON)
			cli_print_body(&r);
		rc = cli_answer_error(&r);
	} else {
		cli_print_body(&r);
	}
	http_response_free(&r);
	return rc;
}

int api_cmd_run(int argc, char **argv)
{
	struct opts o;
	int rc, (*fn)(const struct opts *);
	int want_pos = 0;

	if (strcmp(argv[0], "status") == 0)
		fn = cmd_status;
	else if (strcmp(argv[0], "health") == 0)
		fn = cmd_health;
	else if (strcmp(argv[0], "version") == 0)
		fn = cmd_version;
	else if (strcmp(argv[0], "api") == 0)
		fn = cmd_api, want_pos = -1;
	else
		return -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: certward %s [OPTIONS]\n\n", argv[0]);
			api_cmd_usage(stdout);
			printf("\noptions:\n");
			cli_common_usage(stdout);
			return 0;
		}
	}
	rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (want_pos == 0 && (o.npos > 0 || o.data))
		return cli_usage_error(NULL, "'%s' takes no arguments besides options", argv[0]);
	return fn(&o);
}

int api_cmd_client_options(int argc, char **argv, struct http_client *http)
{
	struct opts o;
	int rc = parse_opts(argc, argv, &o);

	if (rc != 0)
		return rc;
	if (o.npos > 0 || o.data)
		return cli_usage_error(NULL, "'%s' takes no arguments besides options", argv[0]);
	*http = o.c.http;
	return 0;
}

void api_cmd_print_http_error(const struct http_response *r)
{
	cli_answer_error(r);
}

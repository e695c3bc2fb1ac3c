#include "api_cmds.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "http_client.h"

#define DEFAULT_SERVER_URL "https://127.0.0.1:8443"

enum format { FMT_TABLE, FMT_JSON };

struct opts {
	struct http_client http;
	enum format format;
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
		"                              JSON answer, exits 1 on HTTP status >= 400\n"
		"\n"
		"options of the REST commands (after the command):\n"
		"  --server URL      the api, default $CERTWARD_SERVER_URL, else " DEFAULT_SERVER_URL "\n"
		"  --cacert FILE     PEM file to verify the server with, usually\n"
		"                    <state_dir>/tls/api.crt; default the system store\n"
		"                    " HTTP_SYSTEM_CA_FILE "\n"
		"  --api-key KEY     API key; prefer $CERTWARD_API_KEY: a key on the command\n"
		"                    line is visible to every user in ps\n"
		"  --format table|json  output, default table (api always prints JSON)\n"
		"  --timeout SECONDS connect and answer timeout, default %d\n",
		HTTP_DEFAULT_TIMEOUT_S);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "certward: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see certward --help)\n");
	va_end(ap);
	return 64;
}

/* Parses options anywhere after the command; positionals go to o->pos. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	const char *env;

	memset(o, 0, sizeof *o);
	env = getenv("CERTWARD_SERVER_URL");
	o->http.url = env && *env ? env : DEFAULT_SERVER_URL;
	o->http.api_key = getenv("CERTWARD_API_KEY");
	o->http.timeout_s = HTTP_DEFAULT_TIMEOUT_S;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (o->npos == (int)(sizeof o->pos / sizeof o->pos[0]))
				return usage_error("too many arguments at '%s'", a);
			o->pos[o->npos++] = argv[i];
			continue;
		}
		if (strcmp(a, "--server") && strcmp(a, "--api-key") && strcmp(a, "--cacert") &&
		    strcmp(a, "--format") && strcmp(a, "--timeout") && strcmp(a, "--data"))
			return usage_error("unknown option '%s'", a);
		if (!v)
			return usage_error("option %s needs a value", a);
		i++;
		if (strcmp(a, "--server") == 0) {
			o->http.url = v;
		} else if (strcmp(a, "--api-key") == 0) {
			o->http.api_key = v;
		} else if (strcmp(a, "--cacert") == 0) {
			o->http.cacert = v;
		} else if (strcmp(a, "--data") == 0) {
			o->data = v;
		} else if (strcmp(a, "--format") == 0) {
			if (strcmp(v, "table") == 0)
				o->format = FMT_TABLE;
			else if (strcmp(v, "json") == 0)
				o->format = FMT_JSON;
			else
				return usage_error("--format is table or json, not '%s'", v);
		} else {
			char *end;
			long t;

			errno = 0;
			t = strtol(v, &end, 10);
			if (errno || *end || end == v || t < 1 || t > 3600)
				return usage_error("--timeout takes 1 to 3600 seconds, not '%s'", v);
			o->http.timeout_s = (int)t;
		}
	}
	return 0;
}

static int exit_for(enum http_err e)
{
	switch (e) {
	case HTTP_OK:
		return 0;
	case HTTP_E_USAGE:
		return 64;
	case HTTP_E_PROTOCOL:
		return 76;
	case HTTP_E_RESOURCE:
		return 71;
	default:
		return 69;
	}
}

/* One request; on a transport failure prints the reason and returns the
 * exit status, else 0 with *r filled. */
static int request(const struct opts *o, const char *method, const char *path, const char *body,
		   size_t body_len, struct http_response *r)
{
	char err[512];
	enum http_err e = http_request(&o->http, method, path, body, body_len, r, err, sizeof err);

	if (e != HTTP_OK)
		fprintf(stderr, "certward: %s\n", err);
	return exit_for(e);
}

static void print_body(const struct http_response *r)
{
	fwrite(r->body, 1, r->body_len, stdout);
	if (r->body_len && r->body[r->body_len - 1] != '\n')
		putchar('\n');
}

/* The one-line reason of an error answer: problem+json's detail or title,
 * or the reference's error member, else the status line. */
static void print_http_error(const struct http_response *r)
{
	static const char *const keys[] = {"detail", "error", "title"};
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	const char *why = NULL;

	for (size_t i = 0; j && !why && i < sizeof keys / sizeof keys[0]; i++) {
		const char *s = json_string_value(json_object_get(j, keys[i]));

		if (s && *s)
			why = s;
	}
	if (why) {
		/* one line, whatever the server sent */
		fprintf(stderr, "certward: HTTP %d: ", r->status);
		for (const char *p = why; *p; p++)
			fputc((unsigned char)*p < 0x20 ? ' ' : *p, stderr);
		fputc('\n', stderr);
	} else {
		fprintf(stderr, "certward: HTTP %d\n", r->status);
	}
	json_decref(j);
}

static json_t *body_json(const struct http_response *r)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);

	if (!j)
		fprintf(stderr, "certward: the server's answer (HTTP %d) is not JSON\n", r->status);
	return j;
}

static int cmd_status(const struct opts *o)
{
	struct http_response r;
	json_t *j, *items, *it;
	size_t i;
	int rc = request(o, "GET", "/ready", NULL, 0, &r);

	if (rc != 0)
		return rc;
	if (r.status != 200 && r.status != 503) {
		print_http_error(&r);
		http_response_free(&r);
		return 1;
	}
	if (o->format == FMT_JSON) {
		print_body(&r);
	} else {
		j = body_json(&r);
		if (!j) {
			http_response_free(&r);
			return 76;
		}
		items = json_object_get(j, "not_ready");
		printf("status: %s\n", r.status == 200 ? "ready" : "not ready");
		if (json_array_size(items) > 0) {
			printf("%-24s %s\n", "COMPONENT", "STATE");
			json_array_foreach(items, i, it)
			{
				const char *c = json_string_value(json_object_get(it, "component"));
				const char *s = json_string_value(json_object_get(it, "state"));

				printf("%-24s %s\n", c ? c : "?", s ? s : "?");
			}
		} else if (r.status == 200) {
			printf("%-24s %s\n%-24s %s\n%-24s %s\n", "COMPONENT", "STATE", "workers",
			       "running", "postgresql", "connected");
		}
		json_decref(j);
	}
	rc = r.status == 200 ? 0 : 1;
	http_response_free(&r);
	return rc;
}

static int cmd_health(const struct opts *o)
{
	struct http_response r;
	int rc = request(o, "GET", "/health", NULL, 0, &r);

	if (rc != 0)
		return rc;
	if (o->format == FMT_JSON) {
		print_body(&r);
	} else if (r.status == 200) {
		json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
		const char *s = json_string_value(json_object_get(j, "status"));

		printf("health: %s\n", s ? s : "ok");
		json_decref(j);
	}
	if (r.status != 200 && o->format != FMT_JSON)
		print_http_error(&r);
	rc = r.status == 200 ? 0 : 1;
	http_response_free(&r);
	return rc;
}

static int cmd_version(const struct opts *o)
{
	struct http_response r;
	char err[512];
	enum http_err e = http_request(&o->http, "GET", "/api/v1/version", NULL, 0, &r, err,
				       sizeof err);
	const char *sv = NULL;
	json_t *j = NULL;

	if (e == HTTP_OK && r.status == 200) {
		j = json_loadb(r.body, r.body_len, 0, NULL);
		sv = json_string_value(json_object_get(j, "version"));
	}
	if (o->format == FMT_JSON) {
		json_t *out = json_pack("{s:s}", "cli", CERTWARD_VERSION);

		if (j && json_is_object(j))
			json_object_set(out, "server", j);
		json_dumpf(out, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(out);
	} else {
		printf("cli:    certward %s\n", CERTWARD_VERSION);
		if (sv)
			printf("server: certward %s\n", sv);
		else if (e == HTTP_OK && r.status == 404)
			printf("server: unknown (this server has no /api/v1/version yet)\n");
		else if (e == HTTP_OK)
			printf("server: unknown (HTTP %d)\n", r.status);
		else
			printf("server: unreachable\n");
	}
	if (e != HTTP_OK)
		fprintf(stderr, "certward: %s\n", err);
	json_decref(j);
	if (e == HTTP_OK)
		http_response_free(&r);
	return 0;
}

/* --data: JSON text, @FILE or @- (stdin), bounded like a response body. */
static char *load_data(const char *spec, size_t *len)
{
	FILE *f;
	char *buf;
	size_t n = 0, cap = 65536;

	if (spec[0] != '@') {
		*len = strlen(spec);
		return strdup(spec);
	}
	f = strcmp(spec, "@-") == 0 ? stdin : fopen(spec + 1, "rb");
	if (!f) {
		fprintf(stderr, "certward: cannot read %s: %s\n", spec + 1, strerror(errno));
		return NULL;
	}
	buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);

		n += r;
		if (n < cap)
			break;
		if (cap >= HTTP_MAX_BODY) {
			fprintf(stderr, "certward: %s is larger than %u bytes\n", spec + 1,
				HTTP_MAX_BODY);
			free(buf);
			buf = NULL;
			break;
		}
		char *nb = realloc(buf, cap * 2);

		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	if (buf && ferror(f)) {
		fprintf(stderr, "certward: cannot read %s\n", spec + 1);
		free(buf);
		buf = NULL;
	}
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
}

static int cmd_api(const struct opts *o)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
	struct http_response r;
	const char *method;
	char *body = NULL;
	size_t body_len = 0, i;
	int rc;

	if (o->npos != 2)
		return usage_error("%s", "usage: certward api GET|POST|PUT|DELETE PATH [--data JSON|@FILE]");
	method = o->pos[0];
	for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (strcmp(method, methods[i]) == 0)
			break;
	if (i == sizeof methods / sizeof methods[0])
		return usage_error("unknown method '%s' (GET, POST, PUT or DELETE)", method);
	if (o->pos[1][0] != '/')
		return usage_error("the path must start with / (got '%s')", o->pos[1]);
	if (o->data) {
		json_error_t je;
		json_t *j;

		body = load_data(o->data, &body_len);
		if (!body)
			return 66;
		j = json_loadb(body, body_len, 0, &je);
		if (!j) {
			fprintf(stderr, "certward: --data is not JSON: %s (line %d)\n", je.text,
				je.line);
			free(body);
			return 65;
		}
		json_decref(j);
	}
	rc = request(o, method, o->pos[1], body, body_len, &r);
	free(body);
	if (rc != 0)
		return rc;
	if (r.status >= 400) {
		if (o->format == FMT_JSON)
			print_body(&r);
		print_http_error(&r);
		rc = 1;
	} else {
		print_body(&r);
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
	rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (want_pos == 0 && (o.npos > 0 || o.data))
		return usage_error("'%s' takes no arguments besides options", argv[0]);
	return fn(&o);
}

int api_cmd_client_options(int argc, char **argv, struct http_client *http)
{
	struct opts o;
	int rc = parse_opts(argc, argv, &o);

	if (rc != 0)
		return rc;
	if (o.npos > 0 || o.data)
		return usage_error("'%s' takes no arguments besides options", argv[0]);
	*http = o.http;
	return 0;
}

void api_cmd_print_http_error(const struct http_response *r)
{
	print_http_error(r);
}

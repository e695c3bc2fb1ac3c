/* See cli.h. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

void cli_common_init(struct cli_common *c)
{
	const char *env = getenv("CERTWARD_SERVER_URL");

	memset(c, 0, sizeof *c);
	c->http.url = env && *env ? env : DEFAULT_SERVER_URL;
	c->http.api_key = getenv("CERTWARD_API_KEY");
	c->http.timeout_s = HTTP_DEFAULT_TIMEOUT_S;
	c->format = FMT_TABLE;
}

void cli_common_usage(FILE *out)
{
	fprintf(out,
		"  --server URL      the api, default $CERTWARD_SERVER_URL, else " DEFAULT_SERVER_URL "\n"
		"  --cacert FILE     PEM file to verify the server with, usually\n"
		"                    <state_dir>/tls/api.crt; default the system store\n"
		"                    " HTTP_SYSTEM_CA_FILE "\n"
		"  --api-key KEY     API key; prefer $CERTWARD_API_KEY: a key on the command\n"
		"                    line is visible to every user in ps\n"
		"  --format table|json  output, default table\n"
		"  --timeout SECONDS connect and answer timeout, default %d\n",
		HTTP_DEFAULT_TIMEOUT_S);
}

int cli_usage_error(const char *hint, const char *fmt, ...)
{
	va_list ap;
	struct strbuf b;

	/* the arguments may come from the command line: escaped like the
	 * server's strings, so that the line stays one line */
	strbuf_init(&b, 1024);
	va_start(ap, fmt);
	{
		char msg[1024];

		vsnprintf(msg, sizeof msg, fmt, ap);
		out_escape(&b, msg, strlen(msg));
	}
	va_end(ap);
	fprintf(stderr, "certward: %s (see %s)\n", b.p ? b.p : "", hint ? hint : "certward --help");
	strbuf_free(&b);
	return EXIT_USAGE;
}

int cli_option_name(const char *arg, char name[64])
{
	size_t n;

	if (strncmp(arg, "--", 2) != 0 || (n = strcspn(arg + 2, "=")) == 0 || n >= 64)
		return cli_usage_error(NULL, "unknown option '%.80s'", arg);
	memcpy(name, arg + 2, n);
	name[n] = '\0';
	return 0;
}

int cli_option_value(int argc, char **argv, int *i, const char **value)
{
	const char *eq = strchr(argv[*i], '=');

	if (eq) {
		*value = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc)
		return cli_usage_error(NULL, "option %.80s needs a value", argv[*i]);
	*value = argv[++*i];
	return 0;
}

int cli_common_option(struct cli_common *c, const char *name, const char *value, int *rc)
{
	*rc = 0;
	if (strcmp(name, "server") == 0) {
		c->http.url = value;
	} else if (strcmp(name, "api-key") == 0) {
		c->http.api_key = value;
	} else if (strcmp(name, "cacert") == 0) {
		c->http.cacert = value;
	} else if (strcmp(name, "format") == 0) {
		if (strcmp(value, "table") == 0)
			c->format = FMT_TABLE;
		else if (strcmp(value, "json") == 0)
			c->format = FMT_JSON;
		else
			*rc = cli_usage_error(NULL, "--format is table or json, not '%s'", value);
	} else if (strcmp(name, "timeout") == 0) {
		char *end;
		long t;

		errno = 0;
		t = strtol(value, &end, 10);
		if (errno || *end || end == value || t < 1 || t > 3600)
			*rc = cli_usage_error(NULL, "--timeout takes 1 to 3600 seconds, not '%s'", value);
		else
			c->http.timeout_s = (int)t;
	} else {
		return 0;
	}
	return 1;
}

static int exit_for(enum http_err e)
{
	switch (e) {
	case HTTP_OK: return 0;
	case HTTP_E_USAGE: return EXIT_USAGE;
	case HTTP_E_PROTOCOL: return EXIT_PROTOCOL;
	case HTTP_E_RESOURCE: return EXIT_OSERR;
	default: return EXIT_UNAVAILABLE;
	}
}

int cli_request(const struct cli_common *c, const char *method, const char *path, const char *body,
		size_t body_len, struct http_response *r)
{
	char err[512];
	enum http_err e = http_request(&c->http, method, path, body, body_len, r, err, sizeof err);

	if (e != HTTP_OK)
		fprintf(stderr, "certward: %s\n", err);
	return exit_for(e);
}

static const char *reason_phrase(int status)
{
	static const struct {
		int status;
		const char *text;
	} phrases[] = {
		{400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
		{405, "Method Not Allowed"}, {409, "Conflict"}, {410, "Gone"},
		{413, "Content Too Large"}, {414, "URI Too Long"}, {422, "Unprocessable Content"},
		{429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
		{500, "Internal Server Error"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
		{504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
		if (phrases[i].status == status)
			return phrases[i].text;
	return "Error";
}

static const char *member(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s && *s ? s : NULL;
}

int cli_answer_error(const struct http_response *r)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	const char *title = member(j, "title"), *why = member(j, "detail"), *field = member(j, "field");
	struct strbuf b;

	if (!title)
		title = reason_phrase(r->status);
	if (!why)
		why = member(j, "message");
	if (!why)
		why = member(j, "error");
	strbuf_init(&b, 2048);
	strbuf_printf(&b, "%d ", r->status);
	out_escape(&b, title, strlen(title));
	if (why && strcmp(why, title) != 0) {
		strbuf_printf(&b, ": ");
		out_escape(&b, why, strlen(why));
	}
	if (field) {
		strbuf_printf(&b, " (field ");
		out_escape(&b, field, strlen(field));
		strbuf_printf(&b, ")");
	}
	{
		/* what blocks it, as the reference counts it (an agent's retire) */
		const char *k;
		json_t *n;
		int first = 1;

		json_object_foreach(json_object_get(j, "counts"), k, n) {
			if (!json_is_integer(n))
				continue;
			strbuf_printf(&b, "%s", first ? " (" : ", ");
			out_escape(&b, k, strlen(k));
			strbuf_printf(&b, " %" JSON_INTEGER_FORMAT, json_integer_value(n));
			first = 0;
		}
		if (!first)
			strbuf_printf(&b, ")");
	}
	fprintf(stderr, "certward: %s\n", b.p ? b.p : "");
	strbuf_free(&b);
	json_decref(j);
	return EXIT_ANSWER;
}

json_t *cli_answer_json(const struct http_response *r)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);

	if (!j)
		fprintf(stderr, "certward: the server's answer (HTTP %d) is not JSON\n", r->status);
	return j;
}

void cli_print_body(const struct http_response *r)
{
	fwrite(r->body, 1, r->body_len, stdout);
	if (r->body_len && r->body[r->body_len - 1] != '\n')
		putchar('\n');
}

/* The bytes of --data, bounded like a response body. */
static char *read_data(const char *spec, size_t *len, int *rc)
{
	FILE *f;
	char *buf;
	size_t n = 0, cap = 65536;

	if (spec[0] != '@') {
		*len = strlen(spec);
		buf = strdup(spec);
		*rc = buf ? 0 : EXIT_OSERR;
		return buf;
	}
	*rc = EXIT_NOINPUT;
	f = strcmp(spec, "@-") == 0 ? stdin : fopen(spec + 1, "rb");
	if (!f) {
		fprintf(stderr, "certward: cannot read %s: %s\n", spec + 1, strerror(errno));
		return NULL;
	}
	if (!(buf = malloc(cap))) {
		fprintf(stderr, "certward: out of memory\n");
		*rc = EXIT_OSERR;
	}
	while (buf) {
		n += fread(buf + n, 1, cap - 1 - n, f);
		if (n > HTTP_MAX_BODY) {
			fprintf(stderr, "certward: %s is larger than %u bytes\n", spec + 1, HTTP_MAX_BODY);
			free(buf);
			buf = NULL;
			break;
		}
		if (n < cap - 1)
			break; /* the end, or an error */
		char *nb = realloc(buf, cap * 2);

		if (!nb) {
			free(buf);
			buf = NULL;
			*rc = EXIT_OSERR;
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
	if (buf) {
		buf[n] = '\0';
		*rc = 0;
	}
	*len = n;
	return buf;
}

char *cli_load_data(const char *spec, int want_object, size_t *len, json_t **json, int *rc)
{
	json_error_t je;
	char *text = read_data(spec, len, rc);
	json_t *j;

	if (!text)
		return NULL;
	j = json_loadb(text, *len, JSON_REJECT_DUPLICATES, &je);
	if (!j || (want_object && !json_is_object(j))) {
		if (j)
			cli_usage_error(NULL, "--data must be a JSON object");
		else
			cli_usage_error(NULL, "--data is not JSON: %s (line %d)", je.text, je.line);
		json_decref(j);
		free(text);
		*rc = EXIT_USAGE;
		return NULL;
	}
	if (json)
		*json = j;
	else
		json_decref(j);
	return text;
}

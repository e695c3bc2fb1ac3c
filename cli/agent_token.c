/* certward agents token create --name NAME [--ttl 15m] [--out FILE]
 * certward agents token list [--page N] [--per-page N]
 *
 * create asks POST /api/v1/agent-tokens for a one-time token naming the
 * host identity and prints it once: to FILE (made 0600, never replaced)
 * with --out, else on stdout, the token alone on its line, so that
 * `certward agents token create --name h --out h.token` and
 * `certward-agent enroll --token-file h.token` fit together. The rest of
 * the record (id, agent, expiry) goes to stderr. */
#include "agent_token.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/mem.h>

#include "cli.h"
#include "output.h"

#define TTL_MAX_S (30 * 86400)

void agent_token_usage(FILE *out)
{
	fprintf(out,
		"  agents token create --name NAME [--ttl 15m] [--out FILE]\n"
		"                              a one-time enrolment token for certward-agent (admin,\n"
		"                              operator): shown once, on stdout or in FILE (0600)\n"
		"  agents token list [--page N] [--per-page N]\n"
		"                              the tokens (never their secrets), newest first\n");
}

int agent_token_ttl(const char *text, int64_t *seconds)
{
	char *end;
	long long v;
	int64_t unit = 1;

	errno = 0;
	if (!text[0] || text[0] < '0' || text[0] > '9')
		return -1;
	v = strtoll(text, &end, 10);
	if (errno || v <= 0 || v > TTL_MAX_S)
		return -1;
	if (strcmp(end, "m") == 0)
		unit = 60;
	else if (strcmp(end, "h") == 0)
		unit = 3600;
	else if (strcmp(end, "d") == 0)
		unit = 86400;
	else if (strcmp(end, "s") != 0 && end[0])
		return -1;
	if (v > TTL_MAX_S / unit)
		return -1;
	*seconds = (int64_t)v * unit;
	return 0;
}

/* The token into a new file of mode 0600 (an existing file is an error:
 * a token is never written over something else). */
static int write_token(const char *path, const char *token)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	size_t len = strlen(token);
	int ok;

	if (fd < 0) {
		fprintf(stderr, "certward: %s: %s\n", path, strerror(errno));
		return EXIT_NOINPUT;
	}
	ok = write(fd, token, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	if (close(fd) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, "certward: %s: cannot write the token: %s\n", path, strerror(errno));
		unlink(path);
		return EXIT_NOINPUT;
	}
	return 0;
}

static int create(struct cli_common *common, const char *name, int64_t ttl, const char *out)
{
	json_t *body = json_pack("{s:s, s:I}", "name", name, "ttl_seconds", (json_int_t)ttl), *rec;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct http_response r;
	const char *token;
	int rc;

	json_decref(body);
	if (!text)
		return EXIT_OSERR;
	rc = cli_request(common, "POST", "/api/v1/agent-tokens", text, strlen(text), &r);
	free(text);
	if (rc)
		return rc;
	if (r.status != 201) {
		rc = cli_answer_error(&r);
		http_response_free(&r);
		return rc;
	}
	rec = cli_answer_json(&r);
	token = json_string_value(json_object_get(rec, "token"));
	if (!token) {
		fprintf(stderr, "certward: the answer has no token\n");
		rc = EXIT_PROTOCOL;
	} else if (common->format == FMT_JSON && !out) {
		cli_print_body(&r);
	} else {
		rc = out ? write_token(out, token) : 0;
		if (!rc && !out)
			printf("%s\n", token);
		if (!rc)
			fprintf(stderr, "token %s for agent %s (%s), valid until %s, once%s%s\n",
				json_string_value(json_object_get(rec, "id")),
				json_string_value(json_object_get(rec, "agent_id")),
				json_string_value(json_object_get(rec, "name")),
				json_string_value(json_object_get(rec, "expires_at")), out ? "; written to " : "",
				out ? out : "");
	}
	json_decref(rec);
	OPENSSL_cleanse(r.body, r.body_len);
	http_response_free(&r);
	return rc;
}

static int list(struct cli_common *common, const char *page, const char *per_page)
{
	char path[128];
	struct http_response r;
	int rc;

	page = page ? page : "1";
	per_page = per_page ? per_page : "50";
	if (!page[0] || !per_page[0] || strlen(page) > 9 || strlen(per_page) > 9 ||
	    strspn(page, "0123456789") != strlen(page) || strspn(per_page, "0123456789") != strlen(per_page))
		return cli_usage_error("certward --help", "agents token list: --page and --per-page are numbers");
	snprintf(path, sizeof path, "/api/v1/agent-tokens?page=%s&per_page=%s", page, per_page);
	if ((rc = cli_request(common, "GET", path, NULL, 0, &r)))
		return rc;
	if (r.status != 200)
		rc = cli_answer_error(&r);
	else
		cli_print_body(&r);
	http_response_free(&r);
	return rc;
}

int agent_token_main(int argc, char **argv)
{
	struct cli_common common;
	const char *verb = argc > 1 ? argv[1] : "", *name = NULL, *ttl_text = "15m", *out = NULL, *page = NULL, *per_page = NULL;
	int64_t ttl;
	int rc;

	cli_common_init(&common);
	if (strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0)
		return cli_usage_error("certward --help", "agents token: create or list");
	for (int i = 2; i < argc; i++) {
		char opt[64];
		const char *value;

		if ((rc = cli_option_name(argv[i], opt)) || (rc = cli_option_value(argc, argv, &i, &value)))
			return rc;
		if (cli_common_option(&common, opt, value, &rc)) {
			if (rc)
				return rc;
		} else if (strcmp(opt, "name") == 0 && verb[0] == 'c') {
			name = value;
		} else if (strcmp(opt, "ttl") == 0 && verb[0] == 'c') {
			ttl_text = value;
		} else if (strcmp(opt, "out") == 0 && verb[0] == 'c') {
			out = value;
		} else if (strcmp(opt, "page") == 0 && verb[0] == 'l') {
			page = value;
		} else if (strcmp(opt, "per-page") == 0 && verb[0] == 'l') {
			per_page = value;
		} else {
			return cli_usage_error("certward --help", "agents token %s: unknown option --%s", verb, opt);
		}
	}
	if (verb[0] == 'l')
		return list(&common, page, per_page);
	if (!name || !name[0])
		return cli_usage_error("certward --help", "agents token create: --name NAME is required");
	if (agent_token_ttl(ttl_text, &ttl) != 0 || ttl < 60)
		return cli_usage_error("certward --help",
				       "agents token create: --ttl: a duration of 1m to 30d, e.g. 15m, 2h, 900s");
	return create(&common, name, ttl, out);
}

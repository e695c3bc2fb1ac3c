/* What the CLI's REST commands share: the options every one of them takes,
 * one request with its failure line, the one line that tells an error
 * answer, --data, and the exit statuses (docs/operations.md, "CLI"). */
#ifndef CERTWARD_CLI_CLI_H
#define CERTWARD_CLI_CLI_H

#include <jansson.h>
#include <stdio.h>

#include "https_client.h"

#define DEFAULT_SERVER_URL "https://127.0.0.1:8443"

/* Exit statuses. */
#define EXIT_ANSWER 1	     /* the server answered with an error (HTTP status >= 400) */
#define EXIT_USAGE 2	     /* a bad command line: unknown option, missing value, bad --data */
#define EXIT_NOINPUT 66	     /* a --data @FILE that cannot be read */
#define EXIT_UNAVAILABLE 69  /* cannot connect, certificate not trusted, timed out */
#define EXIT_OSERR 71	     /* out of memory */
#define EXIT_PROTOCOL 76     /* a malformed answer */

enum format { FMT_TABLE, FMT_JSON };

/* The options of every REST command. */
struct cli_common {
	struct http_client http;
	enum format format;
};

/* Defaults from the environment: CERTWARD_SERVER_URL, CERTWARD_API_KEY. */
void cli_common_init(struct cli_common *c);

/* The name of the option arg, "--name" or "--name=value", without the
 * dashes and the value, into name: 0, or EXIT_USAGE after saying why. */
int cli_option_name(const char *arg, char name[64]);
/* The value of the option at argv[*i]: after its '=', else the next
 * argument (then *i moves past it). 0, or EXIT_USAGE after saying why. */
int cli_option_value(int argc, char **argv, int *i, const char **value);
/* Whether --name is one of the common options: then sets it from value
 * (0, or EXIT_USAGE after saying why) through *rc and returns 1. */
int cli_common_option(struct cli_common *c, const char *name, const char *value, int *rc);
/* The common options' lines of --help. */
void cli_common_usage(FILE *out);

/* "certward: <what> (see HINT)" on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *hint, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One request; on a transport failure prints the reason and returns its
 * exit status, else 0 with *r filled. */
int cli_request(const struct cli_common *c, const char *method, const char *path, const char *body,
		size_t body_len, struct http_response *r);

/* One line on stderr for an error answer: "certward: 409 Conflict: <detail>
 * (field name)" from problem+json's title, detail and field (or the
 * reference's message and error), control characters escaped. Returns
 * EXIT_ANSWER. */
int cli_answer_error(const struct http_response *r);

/* The answer's body parsed, or NULL after saying it is not JSON. */
json_t *cli_answer_json(const struct http_response *r);

/* The answer's body as it came, with a final newline. */
void cli_print_body(const struct http_response *r);

/* --data: JSON text, @FILE or @- (stdin), at most HTTP_MAX_BODY bytes,
 * checked to be JSON (an object when want_object). The text (malloc'd,
 * NUL-terminated) with *len, and *json the parsed value when json is not
 * NULL; or NULL after saying why, with *rc the exit status. */
char *cli_load_data(const char *spec, int want_object, size_t *len, json_t **json, int *rc);

#endif

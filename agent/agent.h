/* certward-agent's commands and what they share: the exit statuses, the
 * enrolment state in state_dir, and calls to the api. */
#ifndef CERTWARD_AGENT_AGENT_H
#define CERTWARD_AGENT_AGENT_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>

#include <jansson.h>

#include "agent_config.h"
#include "https_client.h"

/* Exit statuses (sysexits.h values; docs/agent.md). */
#define AGENT_EXIT_OK 0
#define AGENT_EXIT_USAGE 64	  /* bad command line */
#define AGENT_EXIT_DATAERR 65	  /* a malformed answer from the api */
#define AGENT_EXIT_UNAVAILABLE 69 /* cannot reach the api (connect, TLS, timeout, 5xx) */
#define AGENT_EXIT_SOFTWARE 70	  /* out of memory, key generation failed */
#define AGENT_EXIT_CANTCREAT 73	  /* already enrolled */
#define AGENT_EXIT_IOERR 74	  /* local files: state_dir, token file, keys */
#define AGENT_EXIT_NOPERM 77	  /* the api refused (enrolment token, identity) */
#define AGENT_EXIT_CONFIG 78	  /* agent.yml is invalid */

#define AGENT_ID_MAX 128
#define AGENT_TOKEN_MAX 1024
#define AGENT_USER_AGENT "certward-agent/" CERTWARD_VERSION

/* state_dir/agent.json: who this agent is, and which identity pair is in
 * use (identity-N.key/.crt); rewritten atomically to switch pairs. */
struct agent_state {
	char agent_id[AGENT_ID_MAX + 1];
	char name[256];
	char server[1025];
	int generation;
};

int state_load(const char *state_dir, struct agent_state *s, char *why, size_t whylen);
int state_save(const char *state_dir, const struct agent_state *s, char *why, size_t whylen);
void identity_paths(const char *state_dir, int generation, char *key, char *cert, size_t len);

/* A connection setup to the api (mTLS once enrolled). */
struct agent_api {
	struct http_client http;
	char cert_path[PATH_MAX];
	char key_path[PATH_MAX];
	char agent_id[AGENT_ID_MAX + 1];
};

enum api_outcome {
	API_ANSWERED,	/* an HTTP answer, in *r (any status) */
	API_UNREACHABLE, /* connect, TLS, timeout: retry later */
	API_BROKEN,	/* malformed answer, local setup (WHY says) */
};

/* One call; BODY is a JSON text or NULL. WHY on a failure (never a key or
 * a token). */
enum api_outcome api_call(const struct agent_api *a, const char *method, const char *path,
			  const char *body, size_t body_len, struct http_response *r, char *why,
			  size_t whylen);
/* "401 Unauthorized: <detail> (field x)" of an error answer, printable
 * ASCII/UTF-8 only, into OUT. */
void api_problem(const struct http_response *r, char *out, size_t outlen);
/* The answer's body as a JSON object, or NULL. */
json_t *api_json(const struct http_response *r);

/* Replaces bytes that are not UTF-8, and control characters other than
 * newline and tab, with '?': text safe for JSON and one log line. */
void text_sanitize(char *s);

/* "--name value" or "--name=value" at argv[*i]: the value (moving *i past
 * it), "" after saying a value is missing, or NULL when it is not --name. */
const char *agent_option(int argc, char **argv, int *i, const char *name);

/* The commands. */
int agent_enroll(int argc, char **argv);
int agent_run(int argc, char **argv);

/* Set by SIGTERM/SIGINT: finish the current step, then exit 0. */
extern volatile sig_atomic_t agent_stop;

#endif

/* certward-agent enroll: a one-time token and a CSR for a key made here
 * buy the agent its identity certificate (the contract's enrolment). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/mem.h>

#include "agent.h"
#include "build_config.h"
#include "fsutil.h"
#include "identity.h"
#include "keys.h"
#include "log.h"
#include "util.h"
#include "work.h"

static void enroll_usage(FILE *out)
{
	fprintf(out, "usage: certward-agent enroll --server URL --token-file FILE [--cacert PEM]\n"
		     "                             [--state-dir DIR] [--config agent.yml]\n");
}

/* "--name value" or "--name=value": the value, or NULL after saying why. */
const char *agent_option(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != 0)
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "certward-agent: %s needs a value\n", name);
		return "";
	}
	return argv[++*i];
}

/* The token: one line of [A-Za-z0-9_.-], at most AGENT_TOKEN_MAX bytes.
 * The file's content is wiped once copied. */
static int read_token(const char *path, char token[AGENT_TOKEN_MAX + 1])
{
	size_t len = 0, n;
	char *text = read_file_max(path, AGENT_TOKEN_MAX + 2, &len);

	if (!text) {
		fprintf(stderr, "certward-agent: cannot read the token file %s: %s\n", path,
			errno == EFBIG ? "too large for a token" : strerror(errno));
		return -1;
	}
	n = len;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	if (n == 0 || n > AGENT_TOKEN_MAX ||
	    strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n) {
		/* what is wrong, never the text */
		fprintf(stderr, "certward-agent: the token file %s does not hold one token\n", path);
		free_wiped(text, len);
		return -1;
	}
	memcpy(token, text, n);
	token[n] = 0;
	free_wiped(text, len);
	return 0;
}

static int exit_for_answer(int status)
{
	return status >= 500 ? AGENT_EXIT_UNAVAILABLE : AGENT_EXIT_NOPERM;
}

int agent_enroll(int argc, char **argv)
{
	const char *server = NULL, *token_file = NULL, *cacert = NULL, *state_dir = NULL,
		   *config = NULL;
	struct agent_config cfg;
	struct agent_state st;
	struct agent_api api;
	char why[1024], token[AGENT_TOKEN_MAX + 1], keypath[PATH_MAX], certpath[PATH_MAX], cwd[PATH_MAX], abs_state[3100];
	char *csr = NULL, *body = NULL, hostname[256] = "";
	size_t body_len = 0, body_cap = 0;
	EVP_PKEY *key = NULL;
	struct http_response r = {0};
	json_t *answer = NULL;
	int rc = AGENT_EXIT_SOFTWARE, key_written = 0;

	keypath[0] = 0;
	for (int i = 1; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			enroll_usage(stdout);
			return 0;
		}
		if ((v = agent_option(argc, argv, &i, "--server")))
			server = v;
		else if ((v = agent_option(argc, argv, &i, "--token-file")))
			token_file = v;
		else if ((v = agent_option(argc, argv, &i, "--cacert")))
			cacert = v;
		else if ((v = agent_option(argc, argv, &i, "--state-dir")))
			state_dir = v;
		else if ((v = agent_option(argc, argv, &i, "--config")))
			config = v;
		else {
			fprintf(stderr, "certward-agent: enroll: unknown argument %s\n", argv[i]);
			enroll_usage(stderr);
			return AGENT_EXIT_USAGE;
		}
		if (!*v) {
			enroll_usage(stderr);
			return AGENT_EXIT_USAGE;
		}
	}
	if (!token_file) {
		fprintf(stderr, "certward-agent: enroll needs --token-file\n");
		enroll_usage(stderr);
		return AGENT_EXIT_USAGE;
	}
	if (config ? agent_config_load(config, &cfg, why, sizeof why) != 0
		   : agent_config_defaults(&cfg) != 0) {
		fprintf(stderr, "certward-agent: %s\n", config ? why : "out of memory");
		return config ? AGENT_EXIT_CONFIG : AGENT_EXIT_SOFTWARE;
	}
	if (!server)
		server = cfg.server;
	if (!cacert)
		cacert = cfg.cacert;
	if (!state_dir)
		state_dir = cfg.state_dir;
	if (state_dir[0] != '/') {
		/* a relative --state-dir is the shell's: made absolute here, as
		 * agent.json and the run command need it from anywhere */
		if (!getcwd(cwd, sizeof cwd) ||
		    snprintf(abs_state, sizeof abs_state, "%s/%s", cwd, state_dir) >= (int)sizeof abs_state) {
			fprintf(stderr, "certward-agent: --state-dir: cannot make it absolute\n");
			rc = AGENT_EXIT_USAGE;
			goto out;
		}
		state_dir = abs_state;
	}
	if (strlen(state_dir) > 3000) {
		fprintf(stderr, "certward-agent: --state-dir is longer than 3000 bytes\n");
		rc = AGENT_EXIT_USAGE;
		goto out;
	}
	if (state_load(state_dir, &st, why, sizeof why) == 0) {
		fprintf(stderr, "certward-agent: already enrolled as %s (remove %s/agent.json to enrol again)\n",
			st.agent_id, state_dir);
		rc = AGENT_EXIT_CANTCREAT;
		goto out;
	}
	if (mkdir_p(state_dir, 0700) != 0) {
		fprintf(stderr, "certward-agent: cannot create %s: %s\n", state_dir, strerror(errno));
		rc = AGENT_EXIT_IOERR;
		goto out;
	}
	if (read_token(token_file, token) != 0) {
		rc = AGENT_EXIT_IOERR;
		goto out;
	}
	key = key_generate(KEY_ECDSA, 256, why, sizeof why);
	if (!key) {
		fprintf(stderr, "certward-agent: %s\n", why);
		goto out;
	}
	/* the key is on disk before it is used: an answer lost after this
	 * point can still be matched to it */
	identity_paths(state_dir, 1, keypath, certpath, sizeof keypath);
	if (key_save(key, keypath, why, sizeof why) != 0) {
		fprintf(stderr, "certward-agent: %s\n", why);
		rc = AGENT_EXIT_IOERR;
		goto out;
	}
	key_written = 1;
	gethostname(hostname, sizeof hostname - 1);
	csr = csr_make(key, hostname[0] ? hostname : "certward-agent", NULL, 0, why, sizeof why);
	if (!csr) {
		fprintf(stderr, "certward-agent: %s\n", why);
		goto out;
	}
	/* the body is built by hand into one buffer that is wiped after:
	 * the token is checked to need no escaping, the PEM needs its newlines
	 * escaped only */
	body_cap = strlen(token) + 2 * strlen(csr) + 64;
	body = malloc(body_cap);
	if (!body)
		goto out;
	body_len = (size_t)snprintf(body, body_cap, "{\"token\":\"%s\",\"csr_pem\":\"", token);
	body_len += pem_json_escape(csr, strlen(csr), body + body_len);
	memcpy(body + body_len, "\"}", 3);
	body_len += 2;
	OPENSSL_cleanse(token, sizeof token);

	memset(&api, 0, sizeof api);
	api.http.url = server;
	api.http.cacert = cacert;
	api.http.user_agent = AGENT_USER_AGENT;
	switch (api_call(&api, "POST", "/api/v1/agents/enroll", body, body_len, &r, why, sizeof why)) {
	case API_ANSWERED: break;
	case API_UNREACHABLE:
		fprintf(stderr, "certward-agent: %s\n", why);
		rc = AGENT_EXIT_UNAVAILABLE;
		goto out;
	case API_BROKEN:
		fprintf(stderr, "certward-agent: %s\n", why);
		rc = AGENT_EXIT_DATAERR;
		goto out;
	}
	if (r.status != 201) {
		char problem[1024];

		api_problem(&r, problem, sizeof problem);
		fprintf(stderr, "certward-agent: enrolment refused: %s\n", problem);
		rc = exit_for_answer(r.status);
		goto out;
	}
	answer = api_json(&r);
	memset(&st, 0, sizeof st);
	snprintf(st.server, sizeof st.server, "%s", server);
	st.generation = 1;
	if (identity_accept(state_dir, 1, key, answer, &st, why, sizeof why) != 0) {
		fprintf(stderr, "certward-agent: %s\n", why);
		rc = errno == EIO ? AGENT_EXIT_IOERR : AGENT_EXIT_DATAERR;
		goto out;
	}
	if (state_save(state_dir, &st, why, sizeof why) != 0) {
		fprintf(stderr, "certward-agent: %s\n", why);
		rc = AGENT_EXIT_IOERR;
		goto out;
	}
	printf("%s\n", st.agent_id);
	rc = 0;
out:
	if (rc != 0 && key_written) {
		/* a key no certificate will ever be issued for */
		(void)unlink_wiped(keypath);
	}
	OPENSSL_cleanse(token, sizeof token);
	free_wiped(body, body_cap);
	free(csr);
	EVP_PKEY_free(key);
	json_decref(answer);
	http_response_free(&r);
	agent_config_free(&cfg);
	return rc;
}

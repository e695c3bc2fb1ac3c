/* Calls to the api and the enrolment state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "build_config.h"
#include "fsutil.h"
#include "work.h"

volatile sig_atomic_t agent_stop;

void identity_paths(const char *state_dir, int generation, char *key, char *cert, size_t len)
{
	snprintf(key, len, "%s/identity-%d.key", state_dir, generation);
	snprintf(cert, len, "%s/identity-%d.crt", state_dir, generation);
}

int state_load(const char *state_dir, struct agent_state *s, char *why, size_t whylen)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *o;
	const char *id, *name, *server;
	json_int_t gen;

	memset(s, 0, sizeof *s);
	snprintf(path, sizeof path, "%s/agent.json", state_dir);
	o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		if (access(path, F_OK) != 0)
			snprintf(why, whylen, "%s: not enrolled (run certward-agent enroll first)", path);
		else
			snprintf(why, whylen, "%s: %s", path, jerr.text);
		return -1;
	}
	id = json_string_value(json_object_get(o, "agent_id"));
	name = json_string_value(json_object_get(o, "name"));
	server = json_string_value(json_object_get(o, "server"));
	gen = json_integer_value(json_object_get(o, "identity_generation"));
	if (!work_id_ok(id) || !server || strlen(server) >= sizeof s->server || gen < 1 ||
	    gen > 1000000) {
		snprintf(why, whylen, "%s: malformed", path);
		json_decref(o);
		return -1;
	}
	snprintf(s->agent_id, sizeof s->agent_id, "%s", id);
	snprintf(s->name, sizeof s->name, "%s", name ? name : "");
	snprintf(s->server, sizeof s->server, "%s", server);
	s->generation = (int)gen;
	json_decref(o);
	return 0;
}

int state_save(const char *state_dir, const struct agent_state *s, char *why, size_t whylen)
{
	char path[PATH_MAX];
	json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "agent_id", s->agent_id, "name", s->name,
			      "server", s->server, "identity_generation", s->generation);
	int rc;

	snprintf(path, sizeof path, "%s/agent.json", state_dir);
	rc = atomic_write_json(path, o, why, whylen);
	json_decref(o);
	return rc;
}

enum api_outcome api_call(const struct agent_api *a, const char *method, const char *path,
			  const char *body, size_t body_len, struct http_response *r, char *why,
			  size_t whylen)
{
	enum http_err e = http_request(&a->http, method, path, body, body_len, r, why, whylen);

	switch (e) {
	case HTTP_OK: return API_ANSWERED;
	case HTTP_E_CONNECT:
	case HTTP_E_TLS:
	case HTTP_E_TIMEOUT: return API_UNREACHABLE;
	default: return API_BROKEN;
	}
}

void text_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t need = 0;

		if (*p < 0x80) {
			if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
				*p = '?';
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
			need = 1;
		else if ((*p & 0xf0) == 0xe0)
			need = 2;
		else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
			need = 3;
		if (need) {
			size_t k;

			for (k = 1; k <= need && (p[k] & 0xc0) == 0x80; k++)
				;
			/* overlongs and surrogates are rare enough to pass whole
			 * sequences through only when the first continuation
			 * byte is in range */
			if (k > need && !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0) &&
			    !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90)) {
				p += need + 1;
				continue;
			}
		}
		*p++ = '?';
	}
}

json_t *api_json(const struct http_response *r)
{
	json_t *j;

	if (!r->body || r->body_len == 0)
		return NULL;
	j = json_loadb(r->body, r->body_len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

void api_problem(const struct http_response *r, char *out, size_t outlen)
{
	json_t *j = api_json(r);
	const char *title = json_string_value(json_object_get(j, "title"));
	const char *detail = json_string_value(json_object_get(j, "detail"));
	const char *field = json_string_value(json_object_get(j, "field"));
	int n;

	n = snprintf(out, outlen, "%d %.80s", r->status, title ? title : "error");
	if (detail && n >= 0 && (size_t)n < outlen)
		n += snprintf(out + n, outlen - (size_t)n, ": %.600s", detail);
	if (field && n >= 0 && (size_t)n < outlen)
		snprintf(out + n, outlen - (size_t)n, " (field %.64s)", field);
	json_decref(j);
	text_sanitize(out);
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

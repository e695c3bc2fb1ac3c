#include "identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "fsutil.h"
#include "keys.h"
#include "log.h"
#include "util.h"
#include "work.h"

int identity_accept(const char *state_dir, int generation, EVP_PKEY *key, const json_t *answer,
		    struct agent_state *st, char *why, size_t whylen)
{
	const char *id = json_string_value(json_object_get(answer, "agent_id"));
	const char *name = json_string_value(json_object_get(answer, "name"));
	const char *cert = json_string_value(json_object_get(answer, "certificate_pem"));
	const char *ca = json_string_value(json_object_get(answer, "ca_pem"));
	char keypath[PATH_MAX], certpath[PATH_MAX], capath[PATH_MAX];
	X509 *x;
	int ok;

	errno = 0;
	if (!work_id_ok(id) || !cert) {
		snprintf(why, whylen, "the api's answer lacks agent_id or certificate_pem");
		return -1;
	}
	if (st->agent_id[0] && strcmp(st->agent_id, id) != 0) {
		snprintf(why, whylen, "the api answered for agent %s, not %s", id, st->agent_id);
		return -1;
	}
	x = cert_from_pem(cert, strlen(cert));
	ok = x && cert_matches_key(x, key);
	X509_free(x);
	if (!ok) {
		snprintf(why, whylen, "the identity certificate in the answer is not for the key made here");
		return -1;
	}
	identity_paths(state_dir, generation, keypath, certpath, sizeof keypath);
	snprintf(capath, sizeof capath, "%s/identity-ca.pem", state_dir);
	if (atomic_write(certpath, cert, strlen(cert), 0644, NULL, why, whylen) != 0 ||
	    (ca && *ca && atomic_write(capath, ca, strlen(ca), 0644, NULL, why, whylen) != 0)) {
		errno = EIO;
		return -1;
	}
	snprintf(st->agent_id, sizeof st->agent_id, "%s", id);
	if (name)
		snprintf(st->name, sizeof st->name, "%s", name);
	return 0;
}

int identity_needs_renewal(const char *cert_path, time_t now)
{
	size_t len = 0;
	char *pem = read_file_max(cert_path, 1u << 20, &len);
	X509 *x = pem ? cert_from_pem(pem, len) : NULL;
	time_t nb, na;
	int rc = -1;

	if (x && cert_validity(x, &nb, &na) == 0)
		rc = na <= nb || (na - now) * 3 < (na - nb);
	X509_free(x);
	free(pem);
	return rc;
}

void identity_use(struct agent_api *a, const char *state_dir, const struct agent_state *st)
{
	identity_paths(state_dir, st->generation, a->key_path, a->cert_path, sizeof a->key_path);
	a->http.client_cert = a->cert_path;
	a->http.client_key = a->key_path;
	snprintf(a->agent_id, sizeof a->agent_id, "%s", st->agent_id);
}

int identity_renew(struct agent_api *a, const char *state_dir, struct agent_state *st, char *why,
		   size_t whylen)
{
	int gen = st->generation + 1, rc = -1;
	char keypath[PATH_MAX], certpath[PATH_MAX], oldkey[PATH_MAX], oldcert[PATH_MAX];
	char path[256], *csr = NULL, *body = NULL;
	EVP_PKEY *key = key_generate(KEY_ECDSA, 256, why, whylen);
	struct http_response r = {0};
	json_t *answer = NULL;
	struct agent_state next = *st;

	if (!key)
		return -1;
	identity_paths(state_dir, gen, keypath, certpath, sizeof keypath);
	if (key_save(key, keypath, why, whylen) != 0)
		goto out;
	csr = csr_make(key, st->agent_id, NULL, 0, why, whylen);
	if (!csr)
		goto out;
	body = malloc(2 * strlen(csr) + 32);
	if (!body) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	{
		size_t n = (size_t)sprintf(body, "{\"csr_pem\":\"");

		n += pem_json_escape(csr, strlen(csr), body + n);
		memcpy(body + n, "\"}", 3);
	}
	snprintf(path, sizeof path, "/api/v1/agents/%s/identity", st->agent_id);
	switch (api_call(a, "POST", path, body, strlen(body), &r, why, whylen)) {
	case API_ANSWERED: break;
	case API_UNREACHABLE: rc = 1; goto out;
	case API_BROKEN: goto out;
	}
	if (r.status != 201 && r.status != 200) {
		char problem[768];

		api_problem(&r, problem, sizeof problem);
		snprintf(why, whylen, "identity renewal refused: %s", problem);
		if (r.status >= 500)
			rc = 1;
		goto out;
	}
	answer = api_json(&r);
	next.generation = gen;
	if (identity_accept(state_dir, gen, key, answer, &next, why, whylen) != 0)
		goto out;
	/* the switch: agent.json names the new pair only once both files
	 * are on disk */
	if (state_save(state_dir, &next, why, whylen) != 0)
		goto out;
	identity_paths(state_dir, st->generation, oldkey, oldcert, sizeof oldkey);
	*st = next;
	identity_use(a, state_dir, st);
	(void)unlink_wiped(oldkey);
	(void)unlink(oldcert);
	rc = 0;
out:
	if (rc != 0) {
		(void)unlink_wiped(keypath);
		(void)unlink(certpath);
	}
	free(csr);
	free(body);
	json_decref(answer);
	http_response_free(&r);
	EVP_PKEY_free(key);
	return rc;
}

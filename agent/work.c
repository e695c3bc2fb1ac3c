#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

int work_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > WORK_ID_MAX || s[0] == '.')
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* Copies member KEY (a string of at most CAP-1 bytes) into OUT; a missing
 * or null member leaves OUT empty when OPTIONAL. */
static int copy_member(const json_t *o, const char *key, char *out, size_t cap, int optional,
		       char *why, size_t whylen)
{
	const json_t *v = json_object_get(o, key);
	const char *s;
	size_t n;

	out[0] = 0;
	if (!v || json_is_null(v)) {
		if (optional)
			return 0;
		snprintf(why, whylen, "%s: missing", key);
		return -1;
	}
	s = json_string_value(v);
	if (!s) {
		snprintf(why, whylen, "%s: not a string", key);
		return -1;
	}
	n = json_string_length(v);
	if (n >= cap || strlen(s) != n || !printable(s)) {
		snprintf(why, whylen, "%s: too long or not printable", key);
		return -1;
	}
	memcpy(out, s, n + 1);
	return 0;
}

static int dup_member(const json_t *o, const char *key, size_t max, char **out, char *why,
		      size_t whylen)
{
	const json_t *v = json_object_get(o, key);
	const char *s;

	if (!v || json_is_null(v))
		return 0;
	s = json_string_value(v);
	if (!s || json_string_length(v) > max || strlen(s) != json_string_length(v) || !printable(s) || !*s) {
		snprintf(why, whylen, "config.%s: not a string of 1..%zu printable bytes", key, max);
		return -1;
	}
	free(*out);
	*out = strdup(s);
	if (!*out) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

static int target_from_json(const json_t *o, struct work_target *t, char *why, size_t whylen)
{
	const json_t *cfg, *verify;

	if (!json_is_object(o)) {
		snprintf(why, whylen, "targets: an entry is not an object");
		return -1;
	}
	if (copy_member(o, "id", t->id, sizeof t->id, 0, why, whylen) != 0 ||
	    copy_member(o, "name", t->name, sizeof t->name, 1, why, whylen) != 0 ||
	    copy_member(o, "type", t->type, sizeof t->type, 1, why, whylen) != 0)
		return -1;
	if (!work_id_ok(t->id)) {
		snprintf(why, whylen, "targets: malformed id");
		return -1;
	}
	cfg = json_object_get(o, "config");
	if (!cfg || json_is_null(cfg))
		return 0;
	if (!json_is_object(cfg)) {
		snprintf(why, whylen, "targets: config is not an object");
		return -1;
	}
	/* paths and the verify endpoint only: commands are agent.yml's */
	if (dup_member(cfg, "cert_path", WORK_PATH_MAX, &t->cert_path, why, whylen) != 0 ||
	    dup_member(cfg, "key_path", WORK_PATH_MAX, &t->key_path, why, whylen) != 0 ||
	    dup_member(cfg, "chain_path", WORK_PATH_MAX, &t->chain_path, why, whylen) != 0 ||
	    dup_member(cfg, "pem_path", WORK_PATH_MAX, &t->pem_path, why, whylen) != 0 ||
	    dup_member(cfg, "verify_address", WORK_ADDR_MAX, &t->verify_address, why, whylen) != 0 ||
	    dup_member(cfg, "server_name", WORK_NAME_MAX, &t->verify_server_name, why, whylen) != 0)
		return -1;
	verify = json_object_get(cfg, "verify");
	if (json_is_object(verify) &&
	    (dup_member(verify, "address", WORK_ADDR_MAX, &t->verify_address, why, whylen) != 0 ||
	     dup_member(verify, "server_name", WORK_NAME_MAX, &t->verify_server_name, why, whylen) != 0))
		return -1;
	return 0;
}

static void target_free(struct work_target *t)
{
	free(t->cert_path);
	free(t->key_path);
	free(t->chain_path);
	free(t->pem_path);
	free(t->verify_address);
	free(t->verify_server_name);
	memset(t, 0, sizeof *t);
}

void work_job_free(struct work_job *j)
{
	for (size_t i = 0; i < j->nsans; i++)
		free(j->sans[i]);
	free(j->sans);
	for (size_t i = 0; i < j->ntargets; i++)
		target_free(&j->targets[i]);
	memset(j, 0, sizeof *j);
}

static int has_target(const struct work_job *j, const char *id)
{
	for (size_t i = 0; i < j->ntargets; i++)
		if (strcmp(j->targets[i].id, id) == 0)
			return 1;
	return 0;
}

int work_job_from_json(const json_t *item, struct work_job *j, char *why, size_t whylen)
{
	const json_t *sans, *targets, *alg, *bits;
	size_t i;
	const json_t *v;

	memset(j, 0, sizeof *j);
	if (!json_is_object(item)) {
		snprintf(why, whylen, "a job is not an object");
		return -1;
	}
	if (copy_member(item, "id", j->id, sizeof j->id, 0, why, whylen) != 0 ||
	    copy_member(item, "type", j->type, sizeof j->type, 0, why, whylen) != 0 ||
	    copy_member(item, "status", j->status, sizeof j->status, 0, why, whylen) != 0 ||
	    copy_member(item, "certificate_id", j->certificate_id, sizeof j->certificate_id, 0, why,
			whylen) != 0 ||
	    copy_member(item, "common_name", j->common_name, sizeof j->common_name, 1, why, whylen) != 0)
		goto fail;
	if (!work_id_ok(j->id) || !work_id_ok(j->certificate_id)) {
		snprintf(why, whylen, "malformed job or certificate id");
		goto fail;
	}
	alg = json_object_get(item, "key_algorithm");
	bits = json_object_get(item, "key_size");
	j->key_alg = KEY_ECDSA;
	j->key_bits = 256;
	if (alg && !json_is_null(alg) && key_alg_from_name(json_string_value(alg), &j->key_alg) != 0) {
		snprintf(why, whylen, "key_algorithm: not ECDSA, RSA or Ed25519");
		goto fail;
	}
	if (bits && !json_is_null(bits)) {
		if (!json_is_integer(bits) || json_integer_value(bits) < 0 ||
		    json_integer_value(bits) > 16384) {
			snprintf(why, whylen, "key_size: not a key size");
			goto fail;
		}
		j->key_bits = (int)json_integer_value(bits);
	} else {
		j->key_bits = j->key_alg == KEY_RSA ? 2048 : j->key_alg == KEY_ED25519 ? 0 : 256;
	}
	if (j->key_alg == KEY_ED25519 && j->key_bits == 256)
		j->key_bits = 0;
	if (j->key_alg == KEY_ECDSA && j->key_bits == 0)
		j->key_bits = 256;
	if (j->key_alg == KEY_RSA && j->key_bits == 0)
		j->key_bits = 2048;
	if (!key_params_ok(j->key_alg, j->key_bits)) {
		snprintf(why, whylen, "key %s %d is not one the agent makes", key_alg_name(j->key_alg),
			 j->key_bits);
		goto fail;
	}
	sans = json_object_get(item, "sans");
	if (sans && !json_is_null(sans)) {
		if (!json_is_array(sans) || json_array_size(sans) > WORK_MAX_SANS) {
			snprintf(why, whylen, "sans: not a list of at most %d names", WORK_MAX_SANS);
			goto fail;
		}
		j->sans = calloc(json_array_size(sans) + 1, sizeof *j->sans);
		if (!j->sans) {
			snprintf(why, whylen, "out of memory");
			goto fail;
		}
		json_array_foreach (sans, i, v) {
			const char *s = json_string_value(v);

			if (!s || json_string_length(v) == 0 || json_string_length(v) > WORK_NAME_MAX ||
			    strlen(s) != json_string_length(v) || !printable(s)) {
				snprintf(why, whylen, "sans: an entry is not a name");
				goto fail;
			}
			j->sans[j->nsans] = strdup(s);
			if (!j->sans[j->nsans]) {
				snprintf(why, whylen, "out of memory");
				goto fail;
			}
			j->nsans++;
		}
	}
	targets = json_object_get(item, "targets");
	if (targets && !json_is_null(targets)) {
		if (!json_is_array(targets) || json_array_size(targets) > WORK_MAX_TARGETS) {
			snprintf(why, whylen, "targets: not a list of at most %d targets", WORK_MAX_TARGETS);
			goto fail;
		}
		json_array_foreach (targets, i, v) {
			if (target_from_json(v, &j->targets[j->ntargets], why, whylen) != 0) {
				target_free(&j->targets[j->ntargets]);
				goto fail;
			}
			if (has_target(j, j->targets[j->ntargets].id)) {
				target_free(&j->targets[j->ntargets]);
				continue;
			}
			j->ntargets++;
		}
	}
	/* a reference API client sends only the first target, flat */
	v = json_object_get(item, "target_id");
	if (json_is_string(v) && j->ntargets == 0) {
		json_t *one = json_pack("{s:O, s:O?, s:O?}", "id", v, "type",
					json_object_get(item, "target_type"), "config",
					json_object_get(item, "target_config"));
		int rc = one ? target_from_json(one, &j->targets[0], why, whylen) : -1;

		json_decref(one);
		if (rc != 0) {
			target_free(&j->targets[0]);
			if (!one)
				snprintf(why, whylen, "out of memory");
			goto fail;
		}
		j->ntargets = 1;
	}
	return 0;
fail:
	work_job_free(j);
	return -1;
}

static int set_str(json_t *o, const char *key, const char *s)
{
	return s ? json_object_set_new(o, key, json_string(s)) : 0;
}

json_t *work_job_to_json(const struct work_job *j)
{
	json_t *o = json_object(), *sans = json_array(), *targets = json_array();
	int bad = !o || !sans || !targets;

	if (bad)
		goto fail;
	bad |= set_str(o, "id", j->id) | set_str(o, "type", j->type) | set_str(o, "status", j->status) |
	       set_str(o, "certificate_id", j->certificate_id) |
	       set_str(o, "common_name", j->common_name) |
	       set_str(o, "key_algorithm", key_alg_name(j->key_alg)) |
	       json_object_set_new(o, "key_size", json_integer(j->key_bits));
	for (size_t i = 0; i < j->nsans; i++)
		bad |= json_array_append_new(sans, json_string(j->sans[i]));
	for (size_t i = 0; i < j->ntargets; i++) {
		const struct work_target *t = &j->targets[i];
		json_t *cfg = json_object(), *to = json_object();

		if (!cfg || !to) {
			json_decref(cfg);
			json_decref(to);
			goto fail;
		}
		bad |= set_str(cfg, "cert_path", t->cert_path) | set_str(cfg, "key_path", t->key_path) |
		       set_str(cfg, "chain_path", t->chain_path) | set_str(cfg, "pem_path", t->pem_path) |
		       set_str(cfg, "verify_address", t->verify_address) |
		       set_str(cfg, "server_name", t->verify_server_name);
		bad |= set_str(to, "id", t->id) | set_str(to, "name", t->name) |
		       set_str(to, "type", t->type) | json_object_set_new(to, "config", cfg);
		bad |= json_array_append_new(targets, to);
	}
	bad |= json_object_set(o, "sans", sans) | json_object_set(o, "targets", targets);
	if (bad)
		goto fail;
	json_decref(sans);
	json_decref(targets);
	return o;
fail:
	json_decref(o);
	json_decref(sans);
	json_decref(targets);
	return NULL;
}

/* base64url characters only, 1..max of them */
static int b64url_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int challenge_from_json(const json_t *o, struct work_challenge *c, char *why, size_t whylen)
{
	const char *dot;

	memset(c, 0, sizeof *c);
	if (!json_is_object(o)) {
		snprintf(why, whylen, "challenges: an entry is not an object");
		return -1;
	}
	if (copy_member(o, "token", c->token, sizeof c->token, 0, why, whylen) != 0 ||
	    copy_member(o, "key_authorization", c->key_authorization, sizeof c->key_authorization, 0, why,
			whylen) != 0 ||
	    copy_member(o, "target_id", c->target_id, sizeof c->target_id, 0, why, whylen) != 0 ||
	    copy_member(o, "target_name", c->target_name, sizeof c->target_name, 1, why, whylen) != 0 ||
	    copy_member(o, "state", c->state, sizeof c->state, 0, why, whylen) != 0)
		return -1;
	/* <token>.<43 base64url characters> (RFC 8555 8.1), the token a file name */
	dot = strchr(c->key_authorization, '.');
	if (!b64url_ok(c->token, WORK_TOKEN_MAX) || !dot || (size_t)(dot - c->key_authorization) != strlen(c->token) ||
	    strncmp(c->key_authorization, c->token, strlen(c->token)) != 0 || strlen(dot + 1) != 43 ||
	    !b64url_ok(dot + 1, 43) || !work_id_ok(c->target_id)) {
		snprintf(why, whylen, "challenges: a malformed token, key authorization or target id");
		return -1;
	}
	if (dup_member(o, "webroot", WORK_PATH_MAX, &c->webroot, why, whylen) != 0)
		return -1;
	return 0;
}

/* The challenges list (optional) into out */
static int challenges_parse(const json_t *list, struct work_list *out, char *why, size_t whylen)
{
	size_t i;
	const json_t *item;

	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > WORK_MAX_CHALLENGES) {
		snprintf(why, whylen, "the work answer's challenges are not a list of at most %d", WORK_MAX_CHALLENGES);
		return -1;
	}
	out->challenges = calloc(json_array_size(list) + 1, sizeof *out->challenges);
	if (!out->challenges) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	json_array_foreach (list, i, item) {
		char cwhy[256];

		if (challenge_from_json(item, &out->challenges[out->nchallenges], cwhy, sizeof cwhy) != 0) {
			free(out->challenges[out->nchallenges].webroot);
			if (out->skipped++ == 0)
				snprintf(out->skipped_why, sizeof out->skipped_why, "%s", cwhy);
			continue;
		}
		out->nchallenges++;
	}
	return 0;
}

int work_parse(const char *body, size_t len, struct work_list *out, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *root, *jobs, *item;
	size_t i;

	memset(out, 0, sizeof *out);
	if (len > 16u * 1024u * 1024u || !json_depth_ok(body, len, 16)) {
		snprintf(why, whylen, "the work answer is too large or too deeply nested");
		return -1;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(why, whylen, "the work answer is not JSON: %.100s", jerr.text);
		return -1;
	}
	jobs = json_object_get(root, "jobs");
	if (!json_is_array(jobs)) {
		snprintf(why, whylen, "the work answer has no jobs list");
		json_decref(root);
		return -1;
	}
	if (json_array_size(jobs) > WORK_MAX_JOBS) {
		snprintf(why, whylen, "the work answer has more than %d jobs", WORK_MAX_JOBS);
		json_decref(root);
		return -1;
	}
	out->jobs = calloc(json_array_size(jobs) + 1, sizeof *out->jobs);
	if (!out->jobs) {
		snprintf(why, whylen, "out of memory");
		json_decref(root);
		return -1;
	}
	json_array_foreach (jobs, i, item) {
		char jwhy[256];

		if (work_job_from_json(item, &out->jobs[out->njobs], jwhy, sizeof jwhy) != 0) {
			if (out->skipped++ == 0)
				snprintf(out->skipped_why, sizeof out->skipped_why, "%s", jwhy);
			continue;
		}
		out->njobs++;
	}
	if (challenges_parse(json_object_get(root, "challenges"), out, why, whylen) != 0) {
		json_decref(root);
		work_list_free(out);
		return -1;
	}
	json_decref(root);
	return 0;
}

void work_list_free(struct work_list *l)
{
	for (size_t i = 0; i < l->njobs; i++)
		work_job_free(&l->jobs[i]);
	free(l->jobs);
	for (size_t i = 0; i < l->nchallenges; i++)
		free(l->challenges[i].webroot);
	free(l->challenges);
	memset(l, 0, sizeof *l);
}

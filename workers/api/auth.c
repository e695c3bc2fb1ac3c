/* See auth.h. */
#include "auth.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apikey.h"
#include "log.h"
#include "store_client.h"
#include "util.h"

#define LIMITER_SLOTS 1024

/* failures per client address, in a fixed table: a busy or hostile
 * population of addresses evicts older entries, never grows memory */
struct failures {
	char client[64];
	uint64_t window_start_ms;
	unsigned count;
};

static struct failures limiter[LIMITER_SLOTS];
static unsigned failure_limit = 10;
static uint64_t failure_window_ms = 60000;

struct auth_req {
	struct apikey key;
	char client[64];
	char reqid[17];
	auth_cb cb;
	void *arg;
	int cancelled;
};

void auth_configure(const struct cfg *section)
{
	failure_limit = (unsigned)cfg_int(section, "api", "auth_failure_limit");
	failure_window_ms = cfg_duration_ms(section, "api", "auth_failure_window");
}

static struct failures *slot_of(const char *client)
{
	uint32_t h = 2166136261u;

	for (const char *p = client; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &limiter[h % LIMITER_SLOTS];
}

static bool limited(const char *client)
{
	struct failures *f = slot_of(client);

	return strcmp(f->client, client) == 0 && now_ms() - f->window_start_ms < failure_window_ms &&
	       f->count >= failure_limit;
}

static void count_failure(const char *client)
{
	struct failures *f = slot_of(client);
	uint64_t now = now_ms();

	if (strcmp(f->client, client) != 0 || now - f->window_start_ms >= failure_window_ms) {
		snprintf(f->client, sizeof f->client, "%s", client);
		f->window_start_ms = now;
		f->count = 0;
	}
	f->count++;
}

static void fail(struct auth_req *r, struct auth_result *res, int status, const char *reason)
{
	char kv[160];

	res->status = status;
	if (status == 401)
		count_failure(r->client);
	snprintf(kv, sizeof kv, "client=%s key=%s reason=%s", r->client,
		 res->prefix[0] ? res->prefix : "-", reason);
	log_event(status == 503 ? LOG_WARN : LOG_INFO, r->reqid[0] ? r->reqid : NULL, kv,
		  "authentication failed");
}

static void finish(struct auth_req *r, const struct auth_result *res)
{
	if (!r->cancelled)
		r->cb(res, r->arg);
	apikey_clear(&r->key);
	free(r);
}

static void on_key(const struct store_outcome *o, void *arg)
{
	struct auth_req *r = arg;
	struct auth_result res = {0};
	json_t *row = NULL;
	uint8_t salt[64], hash[32];
	const char *salt_hex, *role, *id, *agent;
	size_t salt_len;

	snprintf(res.prefix, sizeof res.prefix, "%s", r->key.prefix);
	if (o->error) {
		fail(r, &res, 503, "store unavailable");
		goto out;
	}
	if (o->status == STORE_NO_ROW || !(row = json_loadb((const char *)o->json, o->json_len, 0, NULL))) {
		fail(r, &res, 401, "unknown key");
		goto out;
	}
	salt_hex = json_string_value(json_object_get(row, "salt"));
	role = json_string_value(json_object_get(row, "role"));
	id = json_string_value(json_object_get(row, "id"));
	agent = json_string_value(json_object_get(row, "agent_id"));
	salt_len = salt_hex ? strlen(salt_hex) / 2 : 0;
	if (!role || !id || salt_len == 0 || salt_len > sizeof salt || hex_decode(salt_hex, salt, salt_len) ||
	    hex_decode(json_string_value(json_object_get(row, "key_hash")), hash, sizeof hash)) {
		fail(r, &res, 503, "malformed key record");
		goto out;
	}
	/* the secret first, so that answers do not tell valid prefixes apart */
	if (!apikey_matches(salt, salt_len, &r->key, hash)) {
		fail(r, &res, 401, "wrong secret");
		goto out;
	}
	if (json_is_true(json_object_get(row, "revoked"))) {
		fail(r, &res, 401, "revoked key");
		goto out;
	}
	if (json_is_true(json_object_get(row, "expired"))) {
		fail(r, &res, 401, "expired key");
		goto out;
	}
	res.status = 200;
	snprintf(res.role, sizeof res.role, "%s", role);
	snprintf(res.key_id, sizeof res.key_id, "%s", id);
	snprintf(res.agent_id, sizeof res.agent_id, "%s", agent ? agent : "");
out:
	json_decref(row);
	finish(r, &res);
}

struct auth_req *auth_check(struct worker *w, const char *authorization, const char *client,
			    const char *reqid, auth_cb cb, void *arg)
{
	struct auth_req *r = calloc(1, sizeof *r);
	struct auth_result res = {0};
	const char *token;
	const char *params[1];
	int rc;

	if (!r) {
		res.status = 503;
		cb(&res, arg);
		return NULL;
	}
	r->cb = cb;
	r->arg = arg;
	snprintf(r->client, sizeof r->client, "%s", client);
	snprintf(r->reqid, sizeof r->reqid, "%s", reqid ? reqid : "");
	if (limited(client)) {
		fail(r, &res, 429, "too many failures from this address");
		finish(r, &res);
		return NULL;
	}
	if (!authorization) {
		fail(r, &res, 401, "no credentials");
		finish(r, &res);
		return NULL;
	}
	/* "Bearer" is case-insensitive (RFC 9110 11.1), one space */
	token = strncasecmp(authorization, "Bearer ", 7) == 0 ? authorization + 7 : NULL;
	if (!token || !apikey_parse(token, strlen(token), &r->key)) {
		fail(r, &res, 401, "malformed credentials");
		finish(r, &res);
		return NULL;
	}
	params[0] = r->key.prefix;
	rc = store_call(w, "apikeys.lookup", params, 1, on_key, r);
	if (rc != 0) {
		snprintf(res.prefix, sizeof res.prefix, "%s", r->key.prefix);
		fail(r, &res, 503, "store unavailable");
		finish(r, &res);
		return NULL;
	}
	return r;
}

void auth_cancel(struct auth_req *r)
{
	if (r)
		r->cancelled = 1;
}

/* See auth.h. */
#include "auth.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apikey.h"
#include "audit.h"
#include "log.h"
#include "metrics.h"
#include "store_client.h"
#include "util.h"

#define LIMITER_SLOTS 1024
#define CACHE_BUCKETS 8192 /* power of two, twice AUTH_CACHE_KEYS */
#define TOUCH_BATCH 256    /* ids per apikeys.touch: 256 * 131 bytes stays under a call's 64 KiB */

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
static uint64_t cache_grace_ms = 30000; /* api.key_cache_grace */

/* A key this process verified: what the store holds, never the secret. */
struct cached_key {
	char prefix[APIKEY_PREFIX_LEN + 1]; /* "" while the slot is free */
	uint8_t salt[64];
	size_t salt_len;
	uint8_t hash[32];
	char role[16];
	char key_id[129];
	char agent_id[129];
	bool expires;
	uint64_t expires_at_ms; /* on now_ms()'s clock */
	uint64_t touched_ms;    /* when last_used_at was last asked for; 0 never */
	unsigned next;          /* the next entry of its bucket, index + 1; 0 ends */
};

static struct {
	struct worker *w;
	struct cached_key slot[AUTH_CACHE_KEYS];
	unsigned bucket[CACHE_BUCKETS]; /* first entry, index + 1; 0 empty */
	unsigned oldest;                /* slots are taken in turn: the next one holds the oldest */
	unsigned used;
	int64_t version;                /* of api_keys, as last seen */
	bool version_known;
	uint64_t confirmed_ms;          /* when the store last told it */
	bool stale_logged;
	bool polling, touching, timer_on;
	uv_timer_t timer;
	char touch[TOUCH_BATCH][129];   /* key ids whose last_used_at is due */
	size_t ntouch;
} cache;

struct auth_req {
	struct worker *w;
	struct apikey key;
	char client[64];
	char reqid[17];
	uint64_t asked_ms;
	auth_cb cb;
	void *arg;
	int cancelled;
};

void auth_configure(const struct cfg *section)
{
	failure_limit = (unsigned)cfg_int(section, "api", "auth_failure_limit");
	failure_window_ms = cfg_duration_ms(section, "api", "auth_failure_window");
	cache_grace_ms = cfg_duration_ms(section, "api", "key_cache_grace");
}

static void count(const char *name, double v)
{
	metrics_add(worker_metrics(cache.w), name, NULL, v);
}

/* ---- the key cache ---- */

static unsigned *bucket_of(const char *prefix)
{
	return &cache.bucket[str_hash32(prefix) & (CACHE_BUCKETS - 1)];
}

static struct cached_key *cache_find(const char *prefix)
{
	for (unsigned i = *bucket_of(prefix); i; i = cache.slot[i - 1].next)
		if (strcmp(cache.slot[i - 1].prefix, prefix) == 0)
			return &cache.slot[i - 1];
	return NULL;
}

static void cache_drop(struct cached_key *e)
{
	unsigned idx = (unsigned)(e - cache.slot) + 1, *p = bucket_of(e->prefix);

	while (*p && *p != idx)
		p = &cache.slot[*p - 1].next;
	if (*p)
		*p = e->next;
	memset(e, 0, sizeof *e);
	cache.used--;
}

static void cache_gauge(void)
{
	metrics_set(worker_metrics(cache.w), "api_key_cache_entries", NULL, cache.used);
}

static void cache_flush(void)
{
	memset(cache.slot, 0, sizeof cache.slot);
	memset(cache.bucket, 0, sizeof cache.bucket);
	cache.used = cache.oldest = 0;
	count("api_key_cache_flushes_total", 1);
	cache_gauge();
}

/* Whether cached keys may be used: the store told the version lately. */
static bool cache_trusted(void)
{
	if (!cache.version_known)
		return false;
	if (now_ms() - cache.confirmed_ms <= cache_grace_ms)
		return true;
	if (!cache.stale_logged) {
		cache.stale_logged = true;
		log_warn("API key changes unknown for %llu ms (api.key_cache_grace): cached keys are no longer "
			 "used until the store answers", (unsigned long long)cache_grace_ms);
	}
	return false;
}

static void version_seen(int64_t v)
{
	if (cache.version_known && v != cache.version) {
		cache_flush();
		log_debug("API keys changed (version %lld): cache emptied", (long long)v);
	}
	if (cache.stale_logged)
		log_info("the store answers again: cached API keys are used again");
	cache.version = v;
	cache.version_known = true;
	metrics_set(worker_metrics(cache.w), "api_key_cache_version", NULL, (double)v);
	cache.confirmed_ms = now_ms();
	cache.stale_logged = false;
}

static struct cached_key *cache_put(const char *prefix, const uint8_t *salt, size_t salt_len,
				    const uint8_t hash[32], const char *role, const char *id,
				    const char *agent, bool expires, uint64_t expires_at_ms)
{
	struct cached_key *e = cache_find(prefix);

	if (!e) {
		unsigned *b = bucket_of(prefix);

		e = &cache.slot[cache.oldest];
		cache.oldest = (cache.oldest + 1) % AUTH_CACHE_KEYS;
		if (e->prefix[0]) {
			cache_drop(e);
			count("api_key_cache_evictions_total", 1);
		}
		snprintf(e->prefix, sizeof e->prefix, "%s", prefix);
		e->next = *b;
		*b = (unsigned)(e - cache.slot) + 1;
		cache.used++;
		cache_gauge();
	}
	memcpy(e->salt, salt, salt_len);
	e->salt_len = salt_len;
	memcpy(e->hash, hash, 32);
	snprintf(e->role, sizeof e->role, "%s", role);
	snprintf(e->key_id, sizeof e->key_id, "%s", id);
	snprintf(e->agent_id, sizeof e->agent_id, "%s", agent);
	e->expires = expires;
	e->expires_at_ms = expires_at_ms;
	return e;
}

/* ---- last_used_at, in batches ---- */

static void touch_queue(const char *key_id)
{
	for (size_t i = 0; i < cache.ntouch; i++)
		if (strcmp(cache.touch[i], key_id) == 0)
			return;
	if (cache.ntouch < TOUCH_BATCH)
		snprintf(cache.touch[cache.ntouch++], sizeof cache.touch[0], "%s", key_id);
}

/* A cached key is queued at most once a minute. */
static void touch_due(struct cached_key *e)
{
	uint64_t now = now_ms();

	if (e->touched_ms && now - e->touched_ms < AUTH_TOUCH_MS)
		return;
	e->touched_ms = now;
	touch_queue(e->key_id);
}

static void on_touched(const struct store_outcome *o, void *arg)
{
	cache.touching = false;
	if (o->error)
		log_debug("last_used_at not recorded: %s", o->message);
}

static void touch_send(void)
{
	json_t *ids;
	char *text;
	const char *p[1];

	if (cache.touching || cache.ntouch == 0 || !(ids = json_array()))
		return;
	for (size_t i = 0; i < cache.ntouch; i++)
		json_array_append_new(ids, json_string(cache.touch[i]));
	text = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	p[0] = text;
	if (text && store_call(cache.w, "apikeys.touch", p, 1, on_touched, NULL) == 0) {
		cache.touching = true;
		cache.ntouch = 0;
	}
	free(text);
}

/* ---- the change poll ---- */

static void on_version(const struct store_outcome *o, void *arg)
{
	json_t *v;

	cache.polling = false;
	if (o->error)
		return; /* confirmed_ms ages: past api.key_cache_grace the cache is not used */
	v = json_loadb((const char *)o->json, o->json_len, JSON_DECODE_ANY, NULL);
	if (json_is_integer(v))
		version_seen(json_integer_value(v));
	json_decref(v);
}

static void flush_suppressed(void);

static void on_tick(uv_timer_t *t)
{
	flush_suppressed();
	if (!cache.polling && store_call(cache.w, "apikeys.version", NULL, 0, on_version, NULL) == 0)
		cache.polling = true;
	touch_send();
}

void auth_start(struct worker *w)
{
	cache.w = w;
	if (cache.timer_on)
		return;
	uv_timer_init(worker_loop(w), &cache.timer);
	uv_unref((uv_handle_t *)&cache.timer);
	uv_timer_start(&cache.timer, on_tick, AUTH_POLL_MS, AUTH_POLL_MS);
	cache.timer_on = true;
	cache_gauge();
}

void auth_stop(void)
{
	if (!cache.timer_on)
		return;
	uv_timer_stop(&cache.timer);
	uv_close((uv_handle_t *)&cache.timer, NULL);
	cache.timer_on = false;
}

/* ---- failures ---- */

static struct failures *slot_of(const char *client)
{
	return &limiter[str_hash32(client) % LIMITER_SLOTS];
}

static bool limited(const char *client)
{
	struct failures *f = slot_of(client);

	return strcmp(f->client, client) == 0 && now_ms() - f->window_start_ms < failure_window_ms &&
	       f->count >= failure_limit;
}

/* Counts a failure; true when this one makes the address limited. */
static bool count_failure(const char *client)
{
	struct failures *f = slot_of(client);
	uint64_t now = now_ms();

	if (strcmp(f->client, client) != 0 || now - f->window_start_ms >= failure_window_ms) {
		snprintf(f->client, sizeof f->client, "%s", client);
		f->window_start_ms = now;
		f->count = 0;
	}
	return ++f->count == failure_limit;
}

/* An audit event of a refused authentication: the key's public prefix
 * when the header parsed, never anything of the secret. */
static void audit_refusal(struct auth_req *r, const struct auth_result *res, const char *action,
			  const char *outcome, const char *details)
{
	struct audit_entry e = {
		.actor = res->prefix[0] ? res->prefix : "anonymous",
		.actor_type = "User",
		.action = action,
		.resource_type = "api_keys",
		.request_id = r->reqid[0] ? r->reqid : NULL,
		.source_address = r->client[0] ? r->client : NULL,
		.outcome = outcome,
		.details = details,
	};

	audit_record(r->w, &e);
}

/*
 * Failed authentications are recorded one by one up to
 * AUTH_AUDIT_PER_SECOND a second in each api process; past that (many
 * addresses failing at once, each under its own limit) they are counted,
 * and one auth.failures_suppressed event with the count follows when the
 * second is over, so a flood cannot turn into a flood of database writes.
 */
static struct {
	uint64_t window_start_ms;
	unsigned recorded, suppressed;
} failure_audit;

static void flush_suppressed(void)
{
	char details[96];
	struct audit_entry e = {
		.actor = "anonymous",
		.actor_type = "User",
		.action = "auth.failures_suppressed",
		.resource_type = "api_keys",
		.outcome = "failure",
		.details = details,
	};

	if (!failure_audit.suppressed || now_ms() - failure_audit.window_start_ms < 1000)
		return;
	snprintf(details, sizeof details, "{\"suppressed\": %u, \"window_ms\": 1000}", failure_audit.suppressed);
	log_event(LOG_WARN, NULL, NULL, "%u failed authentications in one second were not recorded one by one",
		  failure_audit.suppressed);
	if (cache.w)
		audit_record(cache.w, &e);
	failure_audit.suppressed = 0;
}

static bool failure_audit_budget(void)
{
	uint64_t now = now_ms();

	if (now - failure_audit.window_start_ms >= 1000) {
		flush_suppressed();
		failure_audit.window_start_ms = now;
		failure_audit.recorded = 0;
	}
	if (failure_audit.recorded >= AUTH_AUDIT_PER_SECOND) {
		failure_audit.suppressed++;
		return false;
	}
	failure_audit.recorded++;
	return true;
}

static void fail(struct auth_req *r, struct auth_result *res, int status, const char *reason)
{
	char kv[160], details[96];

	res->status = status;
	snprintf(kv, sizeof kv, "client=%s key=%s reason=%s", r->client,
		 res->prefix[0] ? res->prefix : "-", reason);
	log_event(status == 503 ? LOG_WARN : LOG_INFO, r->reqid[0] ? r->reqid : NULL, kv,
		  "authentication failed");
	if (status != 401)
		return; /* 429: recorded once, when the limit was reached; 503: nothing was refused */
	snprintf(details, sizeof details, "{\"reason\": \"%s\"}", reason);
	if (failure_audit_budget())
		audit_refusal(r, res, "auth.failure", "failure", details);
	if (count_failure(r->client)) {
		snprintf(details, sizeof details, "{\"failures\": %u, \"window_ms\": %llu}", failure_limit,
			 (unsigned long long)failure_window_ms);
		audit_refusal(r, res, "auth.rate_limited", "denied", details);
	}
}

static void finish(struct auth_req *r, const struct auth_result *res)
{
	if (!r->cancelled)
		r->cb(res, r->arg);
	apikey_clear(&r->key);
	free(r);
}

static void accept_key(struct auth_result *res, const char *role, const char *id, const char *agent)
{
	res->status = 200;
	snprintf(res->role, sizeof res->role, "%s", role);
	snprintf(res->key_id, sizeof res->key_id, "%s", id);
	snprintf(res->agent_id, sizeof res->agent_id, "%s", agent ? agent : "");
}

/* A request whose key is cached: no store round trip. */
static void check_cached(struct auth_req *r, const struct cached_key *e, struct auth_result *res)
{
	snprintf(res->prefix, sizeof res->prefix, "%s", r->key.prefix);
	/* the secret first, as for a looked-up key */
	if (!apikey_matches(e->salt, e->salt_len, &r->key, e->hash))
		fail(r, res, 401, "wrong secret");
	else if (e->expires && now_ms() >= e->expires_at_ms)
		fail(r, res, 401, "expired key");
	else
		accept_key(res, e->role, e->key_id, e->agent_id);
}

/* The looked-up row, or NULL after failing r: 503 when the store could not
 * answer, 401 (unknown) when it found nothing. */
static json_t *looked_up(struct auth_req *r, struct auth_result *res, const struct store_outcome *o,
			 const char *unknown)
{
	json_t *row;

	if (o->error) {
		fail(r, res, 503, "store unavailable");
		return NULL;
	}
	if (o->status == STORE_NO_ROW || !(row = json_loadb((const char *)o->json, o->json_len, 0, NULL))) {
		fail(r, res, 401, unknown);
		return NULL;
	}
	return row;
}

static void on_key(const struct store_outcome *o, void *arg)
{
	struct auth_req *r = arg;
	struct auth_result res = {0};
	json_t *row = NULL, *expires_in, *version;
	uint8_t salt[64], hash[32];
	const char *salt_hex, *role, *id, *agent;
	size_t salt_len;

	snprintf(res.prefix, sizeof res.prefix, "%s", r->key.prefix);
	if (!(row = looked_up(r, &res, o, "unknown key")))
		goto out;
	salt_hex = json_string_value(json_object_get(row, "salt"));
	role = json_string_value(json_object_get(row, "role"));
	id = json_string_value(json_object_get(row, "id"));
	agent = json_string_value(json_object_get(row, "agent_id"));
	expires_in = json_object_get(row, "expires_in_ms");
	version = json_object_get(row, "version");
	salt_len = salt_hex ? strlen(salt_hex) / 2 : 0;
	if (!role || !id || salt_len == 0 || salt_len > sizeof salt || hex_decode(salt_hex, salt, salt_len) ||
	    hex_decode(json_string_value(json_object_get(row, "key_hash")), hash, sizeof hash) ||
	    (!json_is_null(expires_in) && !json_is_integer(expires_in))) {
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
	if (json_is_integer(expires_in) && json_integer_value(expires_in) <= 0) {
		fail(r, &res, 401, "expired key");
		goto out;
	}
	accept_key(&res, role, id, agent);
	/* Cached only when the row is as new as the last poll: an answer read
	 * before a change that the poll has seen since must not outlive it. The
	 * expiry counts from when the store was asked, which is no later than
	 * the database's now(). */
	if (json_is_integer(version) && cache.version_known && json_integer_value(version) == cache.version) {
		struct cached_key *e;

		cache.confirmed_ms = now_ms();
		e = cache_put(r->key.prefix, salt, salt_len, hash, role, id, agent ? agent : "",
			      json_is_integer(expires_in),
			      r->asked_ms + (uint64_t)json_integer_value(expires_in));
		touch_due(e);
	} else {
		/* not cached (a change is being polled): queued, once per batch */
		touch_queue(id);
	}
out:
	json_decref(row);
	finish(r, &res);
}

/* A check of a request from client; NULL when it is answered already
 * (503 out of memory, 429 an address over its failure limit). */
static struct auth_req *auth_req_new(struct worker *w, const char *client, const char *reqid, auth_cb cb,
				     void *arg)
{
	struct auth_req *r = calloc(1, sizeof *r);
	struct auth_result res = {0};

	if (!r) {
		res.status = 503;
		cb(&res, arg);
		return NULL;
	}
	r->w = w;
	r->cb = cb;
	r->arg = arg;
	snprintf(r->client, sizeof r->client, "%s", client);
	snprintf(r->reqid, sizeof r->reqid, "%s", reqid ? reqid : "");
	if (limited(client)) {
		fail(r, &res, 429, "too many failures from this address");
		finish(r, &res);
		return NULL;
	}
	return r;
}

struct auth_req *auth_check(struct worker *w, const char *authorization, const char *client,
			    const char *reqid, auth_cb cb, void *arg)
{
	struct auth_req *r = auth_req_new(w, client, reqid, cb, arg);
	struct auth_result res = {0};
	struct cached_key *e;
	const char *token;
	const char *params[1];
	int rc;

	if (!r)
		return NULL;
	cache.w = w;
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
	if (cache_trusted() && (e = cache_find(r->key.prefix))) {
		count("api_key_cache_hits_total", 1);
		check_cached(r, e, &res);
		if (res.status == 200)
			touch_due(e);
		finish(r, &res);
		return NULL;
	}
	count("api_key_cache_misses_total", 1);
	params[0] = r->key.prefix;
	r->asked_ms = now_ms();
	rc = store_call(w, "apikeys.lookup", params, 1, on_key, r);
	if (rc != 0) {
		snprintf(res.prefix, sizeof res.prefix, "%s", r->key.prefix);
		fail(r, &res, 503, "store unavailable");
		finish(r, &res);
		return NULL;
	}
	return r;
}

bool auth_address_limited(const char *client)
{
	return limited(client);
}

void auth_address_failed(const char *client)
{
	count_failure(client);
}

/* ---- agents' identity certificates ---- */

static void on_identity(const struct store_outcome *o, void *arg)
{
	struct auth_req *r = arg;
	struct auth_result res = {.why = "the client certificate is not a valid agent identity"};
	json_t *row = NULL;
	const char *id, *agent, *refused;

	if (!(row = looked_up(r, &res, o, "unknown identity")))
		goto out;
	id = json_string_value(json_object_get(row, "id"));
	agent = json_string_value(json_object_get(row, "agent_id"));
	refused = json_string_value(json_object_get(row, "refused"));
	snprintf(res.prefix, sizeof res.prefix, "%s", "identity");
	if (!id || !agent) {
		fail(r, &res, 503, "malformed identity record");
	} else if (refused && strcmp(refused, "retired") == 0) {
		/* the agent must learn it is retired: a 410 on its routes */
		accept_key(&res, "agent", agent, agent);
		res.status = 410;
	} else if (refused) {
		char reason[48];

		snprintf(reason, sizeof reason, "%s identity", refused);
		fail(r, &res, 401, reason);
	} else {
		accept_key(&res, "agent", agent, agent);
		snprintf(res.identity_id, sizeof res.identity_id, "%s", id);
	}
out:
	json_decref(row);
	finish(r, &res);
}

struct auth_req *agent_identity_check(struct worker *w, const char *fingerprint, const char *client,
				      const char *reqid, auth_cb cb, void *arg)
{
	struct auth_req *r = auth_req_new(w, client, reqid, cb, arg);
	struct auth_result res = {0};
	const char *params[1] = {fingerprint};

	if (!r)
		return NULL;
	count("api_agent_identity_lookups_total", 1);
	if (store_call(w, "agent_identities.lookup", params, 1, on_identity, r) != 0) {
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

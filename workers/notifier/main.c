/* certward-notifier: e-mail, webhook, chat and paging notifications.
 *
 * Every `poll` it routes new events into deliveries (notifier.route), reads
 * the enabled channels (notifier.channels) and, for each channel, claims
 * due deliveries one at a time on up to channel_concurrency lanes
 * (notifier.claim, FOR UPDATE SKIP LOCKED with a lease), sends each on
 * libuv's thread pool and reports the outcome (notifier.sent /
 * notifier.failed). A lane claims its next delivery once the last outcome
 * is stored, so a channel that hangs holds only its own lanes. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/mem.h>
#include <openssl/rand.h>

#include "channel.h"
#include "codec.h"
#include "harden.h"
#include "log.h"
#include "metrics.h"
#include "notifier_seal.h"
#include "store_client.h"
#include "util.h"
#include "worker.h"

/* A channel as last read from the store, with the configuration its
 * deliveries use (shared with the threads sending on it). */
struct chan {
	struct chan *next;
	char id[129];
	int row_version;
	struct channel_cfg *cfg; /* NULL: not usable (why logged once) */
	unsigned busy;		 /* lanes claiming or sending */
	bool seen, digesting;
};

struct sending {
	uv_work_t work;
	struct chan *ch;
	struct channel_cfg *cfg;
	json_t *d;
	char id[129], token[33];
	int attempt, rc;
	char err[1024];
};

struct config_channel {
	const char *key; /* the certward.yml prefix: email, webhook, ... */
	enum channel_type type;
	struct channel_cfg cfg; /* secrets from the configuration */
	json_t *shown;		/* its row's config */
	json_t *secrets;	/* its secret members */
	bool present;
};

static struct notifier {
	struct worker *w;
	uv_timer_t tick;
	unsigned max_concurrent, lanes, route_batch, max_attempts;
	char lease_s[24], retry_base_s[24], retry_max_s[24], max_attempts_s[16], route_batch_s[16];
	char digest_time[8];
	char cacert[1025];
	int timeout_s;
	size_t max_body;
	struct chan *chans;
	unsigned inflight;
	bool routing, listing, synced, syncing, published, publishing, depth_asked, digest_all, request_asked;
	uint64_t ticks;
	uint8_t priv[NOTIFIER_SEAL_KEY_BYTES], pub[NOTIFIER_SEAL_KEY_BYTES];
	char key_id[NOTIFIER_SEAL_KEY_ID_LEN + 1];
	bool have_key;
	struct config_channel config[CH_NTYPES];
} N = {
	.config = {{"email", CH_EMAIL, {0}, NULL, NULL, false},	{"webhook", CH_WEBHOOK, {0}, NULL, NULL, false},
		   {"slack", CH_SLACK, {0}, NULL, NULL, false},	{"teams", CH_TEAMS, {0}, NULL, NULL, false},
		   {"pagerduty", CH_PAGERDUTY, {0}, NULL, NULL, false},
		   {"opsgenie", CH_OPSGENIE, {0}, NULL, NULL, false}},
};

static void pump(void);

static void count(const char *what, enum channel_type t)
{
	char labels[64];

	metrics_add(worker_metrics(N.w), what, metrics_labels(labels, sizeof labels, "channel", channel_type_name(t), NULL),
		    1);
}

/* ---- channels of certward.yml ------------------------------------------- */

static const char *cfg_key(const struct cfg *sec, const char *prefix, const char *name)
{
	char key[64];

	snprintf(key, sizeof key, "%s_%s", prefix, name);
	return cfg_str(sec, "notifier", key);
}

static bool cfg_flag(const struct cfg *sec, const char *prefix, const char *name)
{
	char key[64];

	snprintf(key, sizeof key, "%s_%s", prefix, name);
	return cfg_bool(sec, "notifier", key);
}

/* A comma-separated list into a JSON array of trimmed, non-empty items. */
static json_t *split_list(const char *s)
{
	json_t *a = json_array();

	while (s && *s) {
		size_t n = strcspn(s, ",");
		const char *b = s, *e = s + n;

		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b)
			json_array_append_new(a, json_stringn(b, (size_t)(e - b)));
		s += n + (s[n] == ',');
	}
	return a;
}

static const char *const event_types[] = {"ExpirationWarning", "CertificateExpired", "RenewalSuccess",
					  "RenewalFailure", "DeploymentSuccess", "DeploymentFailure",
					  "PolicyViolation", "Revocation", "ApprovalRequested", "AgentOffline"};

static int config_channels_load(const struct cfg *sec)
{
	for (int i = 0; i < CH_NTYPES; i++) {
		struct config_channel *cc = &N.config[i];
		const char *p = cc->key;
		json_t *shown = json_object(), *secrets = json_object(), *events;
		char why[200], name[64];
		size_t k;
		json_t *v;

		if (cc->type == CH_EMAIL)
			cc->present = *cfg_key(sec, p, "host") != 0;
		else if (cc->type == CH_PAGERDUTY)
			cc->present = *cfg_key(sec, p, "routing_key") != 0;
		else if (cc->type == CH_OPSGENIE)
			cc->present = *cfg_key(sec, p, "api_key") != 0;
		else
			cc->present = *cfg_key(sec, p, "url") != 0;
		if (!cc->present) {
			json_decref(shown);
			json_decref(secrets);
			continue;
		}
		events = split_list(cfg_key(sec, p, "events"));
		json_array_foreach(events, k, v) {
			bool known = false;

			for (size_t j = 0; j < sizeof event_types / sizeof event_types[0]; j++)
				known = known || strcmp(json_string_value(v), event_types[j]) == 0;
			if (!known) {
				log_error("notifier.%s_events: unknown event type \"%.64s\"", p, json_string_value(v));
				json_decref(events);
				json_decref(shown);
				json_decref(secrets);
				return -1;
			}
		}
		json_object_set_new(shown, "events", events);
		json_object_set_new(shown, "min_severity", json_string(cfg_key(sec, p, "min_severity")));
		json_object_set_new(shown, "digest", json_boolean(cfg_flag(sec, p, "digest")));
		if (cc->type == CH_EMAIL) {
			char key[64];

			snprintf(key, sizeof key, "%s_port", p);
			json_object_set_new(shown, "host", json_string(cfg_key(sec, p, "host")));
			json_object_set_new(shown, "port", json_integer(cfg_int(sec, "notifier", key)));
			json_object_set_new(shown, "tls", json_string(cfg_key(sec, p, "tls")));
			json_object_set_new(shown, "from", json_string(cfg_key(sec, p, "from")));
			json_object_set_new(shown, "to", split_list(cfg_key(sec, p, "to")));
			if (*cfg_key(sec, p, "user"))
				json_object_set_new(shown, "username", json_string(cfg_key(sec, p, "user")));
			json_object_set_new(secrets, "password", json_string(cfg_key(sec, p, "password")));
		} else if (cc->type == CH_PAGERDUTY || cc->type == CH_OPSGENIE) {
			json_object_set_new(shown, "api_url", json_string(cfg_key(sec, p, "url")));
			json_object_set_new(secrets, cc->type == CH_PAGERDUTY ? "routing_key" : "api_key",
					    json_string(cfg_key(sec, p, cc->type == CH_PAGERDUTY ? "routing_key"
												  : "api_key")));
		} else {
			json_object_set_new(secrets, "url", json_string(cfg_key(sec, p, "url")));
			if (cc->type == CH_WEBHOOK)
				json_object_set_new(secrets, "hmac_key", json_string(cfg_key(sec, p, "hmac_key")));
		}
		cc->cfg.type = cc->type;
		snprintf(name, sizeof name, "config-%s", p);
		snprintf(cc->cfg.name, sizeof cc->cfg.name, "%s", name);
		if (channel_cfg_fill(&cc->cfg, shown, secrets, why, sizeof why) != 0) {
			log_error("notifier.%s_*: %s", p, why);
			json_decref(shown);
			json_decref(secrets);
			return -1;
		}
		channel_cfg_clear(&cc->cfg); /* checked; each listing builds its own */
		cc->shown = shown;
		cc->secrets = secrets;
	}
	return 0;
}

/* ---- the store: key, configuration, channels ----------------------------- */

static void on_published(const struct store_outcome *o, void *arg)
{
	(void)arg;
	N.publishing = false;
	if (o->error) {
		log_warn("publishing the notifier's key failed: %s", o->message);
		return;
	}
	N.published = true;
	log_info("notifier key published key_id=%s", N.key_id);
}

static void on_synced(const struct store_outcome *o, void *arg)
{
	json_t *v;

	(void)arg;
	N.syncing = false;
	if (o->error) {
		log_warn("keeping certward.yml's channels in step failed: %s", o->message);
		return;
	}
	N.synced = true;
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	if (json_array_size(json_object_get(v, "refused")) > 0)
		log_error("certward.yml's channel %s: the name is taken by a channel made through the API; it is not used",
			  json_string_value(json_array_get(json_object_get(v, "refused"), 0)));
	log_info("certward.yml channels in step: %lld kept, %lld disabled",
		 (long long)json_integer_value(json_object_get(v, "synced")),
		 (long long)json_integer_value(json_object_get(v, "disabled")));
	json_decref(v);
}

static void sync_config(void)
{
	json_t *a = json_array();
	char *text;
	const char *p[1];

	for (int i = 0; i < CH_NTYPES; i++)
		if (N.config[i].present)
			json_array_append_new(a, json_pack("{s:s, s:s, s:O}", "name", N.config[i].cfg.name, "type",
							   channel_type_name(N.config[i].type), "config",
							   N.config[i].shown));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (!text)
		return;
	p[0] = text;
	N.syncing = store_call(N.w, "notifier.sync_config", p, 1, on_synced, NULL) == 0;
	free(text);
}

static void publish_key(void)
{
	char pub_hex[NOTIFIER_SEAL_KEY_BYTES * 2 + 1];
	const char *p[2] = {N.key_id, pub_hex};

	hex_encode(N.pub, sizeof N.pub, pub_hex);
	N.publishing = store_call(N.w, "notifier.publish_key", p, 2, on_published, NULL) == 0;
}

static void chcfg_free(struct channel_cfg *c)
{
	if (c) {
		channel_cfg_clear(c);
		free(c);
	}
}

/* The opened secrets freed with their values wiped in jansson's buffers. */
static void secrets_free(json_t *secrets)
{
	notifier_seal_wipe_json(secrets);
	json_decref(secrets);
}

/* The configuration a listed channel is delivered with, or NULL (why logged). */
static struct channel_cfg *channel_from_row(const json_t *row)
{
	const char *id = json_string_value(json_object_get(row, "id"));
	const char *name = json_string_value(json_object_get(row, "name"));
	const char *source = json_string_value(json_object_get(row, "source"));
	const char *sealed = json_string_value(json_object_get(row, "sealed"));
	const char *key_id = json_string_value(json_object_get(row, "key_id"));
	int type = channel_type_of(json_string_value(json_object_get(row, "type")) ?: "");
	struct channel_cfg *c;
	json_t *secrets = NULL;
	char why[200] = "";

	if (!id || !name || !source || type < 0)
		return NULL;
	if (strcmp(source, "config") == 0) {
		for (int i = 0; i < CH_NTYPES; i++)
			if (N.config[i].present && strcmp(N.config[i].cfg.name, name) == 0) {
				c = calloc(1, sizeof *c);
				if (!c)
					return NULL;
				c->type = N.config[i].type;
				if (channel_cfg_fill(c, N.config[i].shown, N.config[i].secrets, why, sizeof why) != 0) {
					log_warn("channel %.255s is not usable: %s", name, why);
					chcfg_free(c);
					return NULL;
				}
				goto done;
			}
		return NULL; /* another node's configuration */
	}
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->type = (enum channel_type)type;
	if (sealed && *sealed) {
		size_t blen = strlen(sealed) / 2;
		uint8_t *blob = malloc(blen + 1), *plain = malloc(blen + 1);
		long n = -1;

		if (!N.have_key || !key_id || strcmp(key_id, N.key_id) != 0)
			snprintf(why, sizeof why, "its secrets are sealed to another key (%.16s...)", key_id ? key_id : "?");
		else if (blob && plain && blen <= NOTIFIER_SEAL_MAX_BLOB && hex_decode(sealed, blob, blen) == 0)
			n = notifier_seal_open(N.priv, id, blob, blen, plain, blen);
		if (n >= 0) {
			secrets = json_loadb((const char *)plain, (size_t)n, 0, NULL);
			OPENSSL_cleanse(plain, (size_t)n);
		}
		if (!secrets && !*why)
			snprintf(why, sizeof why, "its secrets cannot be opened");
		free(blob);
		free(plain);
	}
	if (*why || channel_cfg_fill(c, json_object_get(row, "config"), secrets, why, sizeof why) != 0) {
		log_warn("channel %.128s (%.255s) is not usable: %s", id, name, why);
		secrets_free(secrets);
		chcfg_free(c);
		return NULL;
	}
	secrets_free(secrets);
done:
	snprintf(c->id, sizeof c->id, "%s", id);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->cacert = N.cacert;
	c->timeout_s = N.timeout_s;
	c->max_body = N.max_body;
	return c;
}

/* A channel's configuration is freed once no sending uses it. */
static struct channel_cfg **retired;
static size_t n_retired;

static void retire(struct channel_cfg *c)
{
	struct channel_cfg **r;

	if (!c)
		return;
	r = realloc(retired, (n_retired + 1) * sizeof *r);
	if (!r) {
		/* leak rather than free a configuration a thread may be using */
		return;
	}
	retired = r;
	retired[n_retired++] = c;
}

static void retired_sweep(void)
{
	if (N.inflight)
		return;
	for (size_t i = 0; i < n_retired; i++)
		chcfg_free(retired[i]);
	n_retired = 0;
}

static void on_channels(const struct store_outcome *o, void *arg)
{
	json_t *rows, *row;
	size_t i;
	struct chan **pp;

	(void)arg;
	N.listing = false;
	if (o->error) {
		log_warn("reading the channels failed: %s", o->message);
		return;
	}
	rows = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	for (struct chan *c = N.chans; c; c = c->next)
		c->seen = false;
	json_array_foreach(rows, i, row) {
		const char *id = json_string_value(json_object_get(row, "id"));
		int version = (int)json_integer_value(json_object_get(row, "row_version"));
		struct chan *c;

		if (!id || strlen(id) >= sizeof c->id)
			continue;
		for (c = N.chans; c && strcmp(c->id, id) != 0; c = c->next)
			;
		if (!c) {
			c = calloc(1, sizeof *c);
			if (!c)
				continue;
			snprintf(c->id, sizeof c->id, "%s", id);
			c->row_version = -1;
			c->next = N.chans;
			N.chans = c;
		}
		c->seen = true;
		if (c->row_version != version) {
			retire(c->cfg);
			c->cfg = channel_from_row(row);
			c->row_version = version;
		}
	}
	json_decref(rows);
	for (pp = &N.chans; *pp;) {
		struct chan *c = *pp;

		if (!c->seen && c->busy == 0 && !c->digesting) {
			*pp = c->next;
			retire(c->cfg);
			free(c);
		} else {
			pp = &c->next;
		}
	}
	retired_sweep();
	pump();
}

/* ---- routing and the queue ---------------------------------------------- */

static void on_routed(const struct store_outcome *o, void *arg)
{
	json_t *v;
	long long events, made;

	(void)arg;
	N.routing = false;
	if (o->error) {
		log_warn("routing events failed: %s", o->message);
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	events = json_integer_value(json_object_get(v, "events"));
	made = json_integer_value(json_object_get(v, "deliveries"));
	json_decref(v);
	if (events > 0) {
		metrics_add(worker_metrics(N.w), "notifier_events_routed_total", NULL, (double)events);
		log_info("events routed events=%lld deliveries=%lld", events, made);
		pump();
	}
}

static void lane_done(struct chan *c)
{
	c->busy--;
	N.inflight--;
	retired_sweep();
}

static void on_outcome(const struct store_outcome *o, void *arg)
{
	struct sending *s = arg;
	struct chan *c = s->ch;
	enum channel_type t = s->cfg ? s->cfg->type : CH_WEBHOOK;
	json_t *v = o->error ? NULL : json_loadb((const char *)o->json, o->json_len, 0, NULL);

	if (o->error) {
		log_warn("recording the outcome of notification %s failed: %s", s->id, o->message);
	} else if (s->rc == 0) {
		if (json_integer_value(json_object_get(v, "sent")) == 1) {
			count("notifier_deliveries_sent_total", t);
			log_info("notification sent id=%s channel=%s type=%s attempt=%d", s->id, c->id,
				 channel_type_name(t), s->attempt);
		} else {
			log_warn("notification %s was sent after its lease ran out", s->id);
		}
	} else if (!json_is_object(v)) {
		log_warn("notification %s failed after its lease ran out: %s", s->id, s->err);
	} else {
		const char *status = json_string_value(json_object_get(v, "status"));
		bool dead = status && strcmp(status, "dead") == 0;

		count(dead ? "notifier_deliveries_dead_total" : "notifier_deliveries_failed_total", t);
		log_event(dead ? LOG_ERROR : LOG_WARN, NULL, NULL,
			  "notification %s id=%s channel=%s type=%s attempt=%d error=\"%s\"", dead ? "dead" : "failed",
			  s->id, c->id, channel_type_name(t), s->attempt, s->err);
	}
	json_decref(v);
	json_decref(s->d);
	OPENSSL_cleanse(s->err, sizeof s->err);
	free(s);
	lane_done(c);
	pump();
}

static void send_work(uv_work_t *req)
{
	struct sending *s = (struct sending *)req;

	if (!s->cfg) {
		snprintf(s->err, sizeof s->err, "the channel is not usable (see the notifier's log)");
		s->rc = -1;
		return;
	}
	s->rc = channel_deliver(s->cfg, s->d, s->err, sizeof s->err);
}

static void send_done(uv_work_t *req, int status)
{
	struct sending *s = (struct sending *)req;
	struct chan *c = s->ch;
	int rc;

	if (status != 0 && s->rc == 0) {
		s->rc = -1;
		snprintf(s->err, sizeof s->err, "cancelled");
	}
	if (s->rc == 0) {
		const char *p[2] = {s->id, s->token};

		rc = store_call(N.w, "notifier.sent", p, 2, on_outcome, s);
	} else {
		const char *p[6] = {s->id, s->token, s->err, N.retry_base_s, N.retry_max_s, N.max_attempts_s};

		rc = store_call(N.w, "notifier.failed", p, 6, on_outcome, s);
	}
	if (rc != 0) {
		/* its lease runs out and it is claimed again */
		log_warn("cannot record the outcome of notification %s now: %s", s->id, strerror(-rc));
		json_decref(s->d);
		free(s);
		lane_done(c);
	}
}

static void on_claimed(const struct store_outcome *o, void *arg)
{
	struct sending *s = arg;
	struct chan *c = s->ch;
	const char *id;

	/* a row claimed for a channel that became unusable meanwhile fails
	 * now (send_work), rather than waiting out its lease */
	if (o->error || o->status == STORE_NO_ROW) {
		if (o->error)
			log_warn("claiming a delivery of channel %s failed: %s", c->id, o->message);
		free(s);
		lane_done(c);
		return;
	}
	s->d = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	id = json_string_value(json_object_get(s->d, "id"));
	if (!id || strlen(id) >= sizeof s->id) {
		json_decref(s->d);
		free(s);
		lane_done(c);
		return;
	}
	snprintf(s->id, sizeof s->id, "%s", id);
	s->cfg = c->cfg;
	s->attempt = (int)json_integer_value(json_object_get(s->d, "attempt"));
	uv_queue_work(worker_loop(N.w), &s->work, send_work, send_done);
}

static void claim(struct chan *c)
{
	struct sending *s = calloc(1, sizeof *s);
	uint8_t raw[16];
	const char *p[3];

	if (!s)
		return;
	s->ch = c;
	RAND_bytes(raw, sizeof raw);
	hex_encode(raw, sizeof raw, s->token);
	p[0] = c->id;
	p[1] = N.lease_s;
	p[2] = s->token;
	c->busy++;
	N.inflight++;
	if (store_call(N.w, "notifier.claim", p, 3, on_claimed, s) != 0) {
		free(s);
		lane_done(c);
	}
}

static void pump(void)
{
	if (!N.synced)
		return;
	for (struct chan *c = N.chans; c; c = c->next)
		while (c->seen && c->cfg && c->busy < N.lanes && N.inflight < N.max_concurrent) {
			unsigned before = c->busy;

			claim(c);
			if (c->busy == before)
				break;
		}
}

/* ---- digests and depth -------------------------------------------------- */

static void on_digest(const struct store_outcome *o, void *arg)
{
	struct chan *c = arg;
	json_t *v;

	c->digesting = false;
	if (o->error) {
		log_warn("making the digest of channel %s failed: %s", c->id, o->message);
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	if (json_integer_value(json_object_get(v, "digests")) > 0) {
		log_info("digest made channel=%s digests=%lld notifications=%lld", c->id,
			 (long long)json_integer_value(json_object_get(v, "digests")),
			 (long long)json_integer_value(json_object_get(v, "held")));
		pump();
	}
	json_decref(v);
}

static void digests(bool now)
{
	for (struct chan *c = N.chans; c; c = c->next) {
		const char *p[3] = {c->id, N.digest_time, now ? "true" : "false"};

		if (!c->seen || c->digesting)
			continue;
		c->digesting = store_call(N.w, "notifier.digest", p, 3, on_digest, c) == 0;
	}
}

static void on_digest_taken(const struct store_outcome *o, void *arg)
{
	(void)arg;
	if (o->error)
		log_warn("taking the digest request failed: %s", o->message);
}

/* POST /api/v1/digest/send leaves its request in a setting: every
 * channel's digest is made at the next poll, and the request taken. */
static void on_digest_request(const struct store_outcome *o, void *arg)
{
	json_t *v;
	const char *p[1];

	(void)arg;
	N.request_asked = false;
	if (o->error || o->status == STORE_NO_ROW)
		return;
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	p[0] = json_string_value(json_object_get(v, "value"));
	if (p[0]) {
		log_info("digests requested at %.40s", p[0]);
		N.digest_all = true;
		store_call(N.w, "notifier.digest_take", p, 1, on_digest_taken, NULL);
	}
	json_decref(v);
}

static void on_depth(const struct store_outcome *o, void *arg)
{
	json_t *v;

	(void)arg;
	N.depth_asked = false;
	if (o->error)
		return;
	v = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	for (int t = 0; t < CH_NTYPES; t++) {
		char labels[64];

		metrics_set(worker_metrics(N.w), "notifier_queue_depth",
			    metrics_labels(labels, sizeof labels, "channel", channel_type_name(t), NULL),
			    (double)json_integer_value(json_object_get(v, channel_type_name(t))));
	}
	json_decref(v);
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
	N.ticks++;
	if (!N.published && !N.publishing && N.have_key)
		publish_key();
	if (!N.synced) {
		if (!N.syncing)
			sync_config();
		return;
	}
	if (!N.routing) {
		const char *p[1] = {N.route_batch_s};

		N.routing = store_call(N.w, "notifier.route", p, 1, on_routed, NULL) == 0;
	}
	if (!N.listing)
		N.listing = store_call(N.w, "notifier.channels", NULL, 0, on_channels, NULL) == 0;
	if (!N.depth_asked)
		N.depth_asked = store_call(N.w, "notifier.depth", NULL, 0, on_depth, NULL) == 0;
	if (!N.request_asked && N.ticks % 5 == 0) {
		const char *p[1] = {"notifier.digest_requested_at"};

		N.request_asked = store_call(N.w, "settings.get", p, 1, on_digest_request, NULL) == 0;
	}
	/* a digest is due at most once a day: asking every 30 polls is plenty */
	if (N.digest_all || N.ticks % 30 == 0) {
		digests(N.digest_all);
		N.digest_all = false;
	}
	pump();
}

/* ---- the worker --------------------------------------------------------- */

static void seconds(char *out, size_t len, uint64_t ms)
{
	snprintf(out, len, "%llu.%03llu", (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
}

static int load_key(const char *path)
{
	char dir[1100], why[256];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash || slash == path || (size_t)(slash - path) >= sizeof dir) {
		log_error("notifier.key_file %s: an absolute path is needed", path);
		return -1;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_error("notifier.key_file: cannot open the directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (notifier_seal_key_load(fd, slash + 1, N.priv, N.pub, why, sizeof why) != 0) {
		close(fd);
		log_error("notifier.key_file %s: %s", path, why);
		return -1;
	}
	close(fd);
	notifier_seal_key_id(N.pub, N.key_id);
	N.have_key = true;
	return 0;
}

static int notifier_init(struct worker *w, const struct cfg *sec)
{
	uint64_t poll = cfg_duration_ms(sec, "notifier", "poll");
	const char *dt = cfg_str(sec, "notifier", "digest_time");
	unsigned hh, mm;
	char tail;

	N.w = w;
	N.max_concurrent = (unsigned)cfg_int(sec, "notifier", "max_concurrent");
	N.lanes = (unsigned)cfg_int(sec, "notifier", "channel_concurrency");
	N.route_batch = (unsigned)cfg_int(sec, "notifier", "route_batch");
	N.max_attempts = (unsigned)cfg_int(sec, "notifier", "max_attempts");
	snprintf(N.route_batch_s, sizeof N.route_batch_s, "%u", N.route_batch);
	snprintf(N.max_attempts_s, sizeof N.max_attempts_s, "%u", N.max_attempts);
	seconds(N.lease_s, sizeof N.lease_s, cfg_duration_ms(sec, "notifier", "lease"));
	seconds(N.retry_base_s, sizeof N.retry_base_s, cfg_duration_ms(sec, "notifier", "retry_base"));
	seconds(N.retry_max_s, sizeof N.retry_max_s, cfg_duration_ms(sec, "notifier", "retry_max"));
	N.timeout_s = (int)((cfg_duration_ms(sec, "notifier", "timeout") + 999) / 1000);
	N.max_body = (size_t)cfg_size(sec, "notifier", "response_max");
	snprintf(N.cacert, sizeof N.cacert, "%s", cfg_str(sec, "notifier", "ca_file"));
	if (cfg_duration_ms(sec, "notifier", "lease") <= cfg_duration_ms(sec, "notifier", "timeout") +
								cfg_duration_ms(sec, "notifier", "poll")) {
		/* a delivery still under way when its lease ran out would be sent again by another lane */
		log_error("notifier.lease must be longer than notifier.timeout + notifier.poll");
		return -1;
	}
	if (sscanf(dt, "%2u:%2u%c", &hh, &mm, &tail) != 2 || hh > 23 || mm > 59) {
		log_error("notifier.digest_time \"%s\": want HH:MM", dt);
		return -1;
	}
	snprintf(N.digest_time, sizeof N.digest_time, "%02u:%02u", hh, mm);
	if (*N.cacert && access(N.cacert, R_OK) != 0) {
		log_error("notifier.ca_file %s: %s", N.cacert, strerror(errno));
		return -1;
	}
	if (config_channels_load(sec) != 0)
		return -1;
	{
		/* each delivery blocks a thread of libuv's pool for as long as it
		 * takes: room for every delivery allowed at once (the pool reads
		 * its size when it is first used, after this) */
		char n[16];

		snprintf(n, sizeof n, "%u", N.max_concurrent);
		setenv("UV_THREADPOOL_SIZE", n, 1);
	}
	if (*cfg_str(sec, "notifier", "key_file") && load_key(cfg_str(sec, "notifier", "key_file")) != 0)
		return -1;
	uv_timer_init(worker_loop(w), &N.tick);
	uv_timer_start(&N.tick, on_tick, 50, poll);
	log_info("notifier ready poll_ms=%llu channels_in_config=%d", (unsigned long long)poll,
		 N.config[0].present + N.config[1].present + N.config[2].present + N.config[3].present +
			 N.config[4].present + N.config[5].present);
	return 0;
}

static void notifier_metrics(struct worker *w, struct strbuf *out)
{
	(void)w;
	strbuf_printf(out, "notifier_deliveries_in_flight %u\n", N.inflight);
}

static void notifier_stop(struct worker *w)
{
	(void)w;
	uv_timer_stop(&N.tick);
	uv_close((uv_handle_t *)&N.tick, NULL);
	OPENSSL_cleanse(N.priv, sizeof N.priv);
}

#if CERTWARD_TEST_HOOKS
static int notifier_test_hook(struct worker *w, const char *hook, const char *arg, char *msg, size_t msglen)
{
	(void)w;
	(void)arg;
	if (strcmp(hook, "digest-now") != 0)
		return -ENOENT;
	N.digest_all = true;
	snprintf(msg, msglen, "the digests of every channel are made at the next poll");
	return 0;
}
#endif

static const struct worker_ops ops = {
	.role = IPC_ROLE_NOTIFIER,
	.summary = "certward-notifier: sends notifications (e-mail, webhooks, chat, paging).",
	.harden = HARDEN_NET_CLIENT,
	.init = notifier_init,
	.metrics = notifier_metrics,
	.stop = notifier_stop,
#if CERTWARD_TEST_HOOKS
	.test_hook = notifier_test_hook,
#endif
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &ops);
}

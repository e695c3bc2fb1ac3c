/*
 * The api's side of notifications (docs/api.md "Notification channels and
 * rules", docs/notifications.md):
 *
 *   POST   /api/v1/notification-channels              201 (admin)
 *   PUT    /api/v1/notification-channels/{id}         200 / 409 (admin)
 *   DELETE /api/v1/notification-channels/{id}         204 / 409 (admin)
 *   POST   /api/v1/notifications/{id}/requeue         200 / 409
 *   GET    /api/v1/digest/preview                     200 text/html
 *   POST   /api/v1/digest/send                        200 / 409
 *
 * Channels are listed and read through the generated REST routes
 * (schema/resources.json). A channel's config mixes what may be shown
 * with its secret members; the api checks both against the type's table
 * below, seals the secret members (one JSON object) with lib/notifier_seal
 * to the newest key certward-notifier published, bound to the channel's
 * id, and stores the config with each secret member set shown as
 * "********". The api can seal but never open a blob: an update either
 * keeps the stored secrets (no secret member sent, or only "********") or
 * replaces them all.
 */
#include "notify.h"

#include <jansson.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actions.h"
#include "log.h"
#include "notifier_seal.h"
#include "resource.h"
#include "rest.h"
#include "routes.h"
#include "store_client.h"
#include "util.h"
#include "validate.h"

#define SECRETS_TEXT_MAX 8192 /* the secret members, as JSON text */
#define CONFIG_TEXT_MAX 16384
#define RECIPIENTS_MAX 100
#define URL_MAX 2048

enum kind { K_TEXT, K_HOST, K_PORT, K_TLS, K_EMAIL, K_EMAILS, K_URL };

#define M_REQUIRED 1u
#define M_SECRET 2u

struct member {
	const char *name;
	enum kind kind;
	unsigned flags;
	size_t min, max; /* K_TEXT: length in bytes */
};

struct channel_type {
	const char *name;
	const struct member *members;
	size_t n;
};

static const struct member email_members[] = {
	{"host", K_HOST, M_REQUIRED, 0, 0},
	{"port", K_PORT, 0, 0, 0},
	{"tls", K_TLS, 0, 0, 0},
	{"from", K_EMAIL, M_REQUIRED, 0, 0},
	{"to", K_EMAILS, M_REQUIRED, 0, 0},
	{"username", K_TEXT, 0, 1, 255},
	{"password", K_TEXT, M_SECRET, 1, 1024},
};
static const struct member webhook_members[] = {
	{"url", K_URL, M_REQUIRED | M_SECRET, 0, 0},
	{"hmac_key", K_TEXT, M_SECRET, 16, 1024},
};
static const struct member incoming_webhook_members[] = {
	{"webhook_url", K_URL, M_REQUIRED | M_SECRET, 0, 0},
};
static const struct member pagerduty_members[] = {
	{"api_url", K_URL, 0, 0, 0},
	{"routing_key", K_TEXT, M_REQUIRED | M_SECRET, 1, 128},
};
static const struct member opsgenie_members[] = {
	{"api_url", K_URL, 0, 0, 0},
	{"api_key", K_TEXT, M_REQUIRED | M_SECRET, 1, 256},
};

#define TYPE(name, m) {name, m, sizeof m / sizeof m[0]}
static const struct channel_type channel_types[] = {
	TYPE("Email", email_members),
	TYPE("Webhook", webhook_members),
	TYPE("Slack", incoming_webhook_members),
	TYPE("Teams", incoming_webhook_members),
	TYPE("PagerDuty", pagerduty_members),
	TYPE("OpsGenie", opsgenie_members),
};

static const struct channel_type *type_by_name(const char *s)
{
	for (size_t i = 0; s && i < sizeof channel_types / sizeof channel_types[0]; i++)
		if (strcmp(channel_types[i].name, s) == 0)
			return &channel_types[i];
	return NULL;
}

static const struct member *member_of(const struct channel_type *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->members[i].name, name) == 0)
			return &t->members[i];
	return NULL;
}

/* NULL when v is a good value of m, else what is wrong (never the value) */
static const char *member_problem(const struct member *m, json_t *v)
{
	const char *s = json_string_value(v);

	switch (m->kind) {
	case K_TEXT:
		if (!s || json_string_length(v) < m->min || json_string_length(v) > m->max || !action_text_ok(s) ||
		    strlen(s) != json_string_length(v))
			return m->min > 1 ? "must be a string of 16 to 1024 characters without control characters"
					  : "must be a non-empty string without control characters, within its bound";
		return NULL;
	case K_HOST:
		return s && strlen(s) <= 253 && (valid_dns_name(s, false) || valid_ip_address(s))
			       ? NULL
			       : "must be a DNS name or an IP address";
	case K_PORT:
		return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 65535
			       ? NULL
			       : "must be an integer from 1 to 65535";
	case K_TLS:
		return s && (!strcmp(s, "starttls") || !strcmp(s, "implicit") || !strcmp(s, "none"))
			       ? NULL
			       : "must be starttls, implicit or none";
	case K_EMAIL:
		return s && strlen(s) <= 254 && valid_email(s) ? NULL : "must be an e-mail address";
	case K_EMAILS: {
		size_t i;
		json_t *e;

		if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > RECIPIENTS_MAX)
			return "must be a list of 1 to 100 e-mail addresses";
		json_array_foreach(v, i, e) {
			const char *a = json_string_value(e);

			if (!a || strlen(a) > 254 || !valid_email(a))
				return "must be a list of 1 to 100 e-mail addresses";
		}
		return NULL;
	}
	case K_URL:
		return s && valid_https_url(s, URL_MAX) ? NULL
					    : "must be an https URL (https://host[:port]/path, at most 2048 characters)";
	}
	return "is not allowed";
}

struct config_check {
	json_t *shown;   /* what the row's config holds: secrets as "********" */
	json_t *secrets; /* the secret members sent, or NULL: keep the stored ones */
	char field[64], msg[200];
};

static bool config_refuse(struct config_check *cc, const char *member, const char *msg)
{
	snprintf(cc->field, sizeof cc->field, "config%s%.50s", member ? "." : "", member ? member : "");
	snprintf(cc->msg, sizeof cc->msg, "%s: %s", cc->field, msg);
	return false;
}

/*
 * A channel's config of type t, against its stored config `old` (an
 * update; NULL on create). Secret members given are all the secrets
 * (replacing the stored ones), or none, or only "********" (keeping the
 * stored ones). false: cc->field/msg say why, in words that never repeat
 * a value.
 */
static bool check_config(const struct channel_type *t, json_t *config, json_t *old, struct config_check *cc)
{
	const char *k, *bad;
	json_t *v;
	bool markers = false, keep;

	cc->shown = json_object();
	cc->secrets = NULL;
	if (!json_is_object(config))
		return config_refuse(cc, NULL, "must be an object");
	json_object_foreach(config, k, v) {
		const struct member *m = member_of(t, k);
		char msg[96];

		if (!m) {
			snprintf(msg, sizeof msg, "not a member of a %s channel's config", t->name);
			return config_refuse(cc, k, msg);
		}
		if ((m->flags & M_SECRET) && json_is_string(v) && strcmp(json_string_value(v), RESOURCE_REDACTED) == 0) {
			markers = true;
			continue;
		}
		if ((bad = member_problem(m, v)))
			return config_refuse(cc, k, bad);
		if (m->flags & M_SECRET) {
			if (!cc->secrets)
				cc->secrets = json_object();
			json_object_set(cc->secrets, k, v);
		} else {
			json_object_set(cc->shown, k, v);
		}
	}
	if (markers && cc->secrets)
		return config_refuse(cc, NULL,
				     "stored secrets cannot be kept while others change: give every secret again "
				     "(\"********\" only keeps them all)");
	if (markers && !old)
		return config_refuse(cc, NULL, "\"********\" stands for a stored secret: a new channel has none");
	keep = old && !cc->secrets;
	for (size_t i = 0; i < t->n; i++) {
		const struct member *m = &t->members[i];
		bool set = (m->flags & M_SECRET) ? (keep ? json_object_get(old, m->name) != NULL
						     : json_object_get(cc->secrets, m->name) != NULL)
						  : json_object_get(cc->shown, m->name) != NULL;

		if ((m->flags & M_REQUIRED) && !set)
			return config_refuse(cc, m->name, (m->flags & M_SECRET) && old
								  ? "required: a change of secrets gives all of them"
								  : "required");
		if ((m->flags & M_SECRET) && set)
			json_object_set_new(cc->shown, m->name, json_string(RESOURCE_REDACTED));
	}
	if (json_object_get(cc->shown, "password") && !json_object_get(cc->shown, "username"))
		return config_refuse(cc, "username", "required with a password");
	if (json_object_get(cc->shown, "username") && json_is_string(json_object_get(cc->shown, "tls")) &&
	    strcmp(json_string_value(json_object_get(cc->shown, "tls")), "none") == 0)
		return config_refuse(cc, "tls", "starttls or implicit when a username is given: AUTH sends the "
						"password, never in clear");
	return true;
}

static void config_check_free(struct config_check *cc)
{
	json_decref(cc->shown);
	json_decref(cc->secrets); /* its strings are the body's, wiped with it */
	cc->shown = cc->secrets = NULL;
}

/* ---- channels: create, update, delete ---- */

struct channel_call {
	struct route_call *rc;
	json_t *body; /* the request (its config holds secrets: wiped when freed) */
	const struct channel_type *type;
	char id[NOTIFIER_SEAL_MAX_CHANNEL_ID + 1];
	char row_version[24];
	char key_id[NOTIFIER_SEAL_KEY_ID_LEN + 1];
	struct config_check cc;
	bool create, config_sent;
};

static void channel_call_free(struct channel_call *cc)
{
	json_t *config = json_object_get(cc->body, "config");

	if (json_is_object(config))
		notifier_seal_wipe_json(config);
	config_check_free(&cc->cc);
	json_decref(cc->body);
	free(cc);
}

static void channel_fail(struct channel_call *cc, int status, const char *title, const char *detail,
			 const char *field)
{
	route_problem(cc->rc, status, title, detail, field);
	channel_call_free(cc);
}

static void on_channel_written(const struct store_outcome *o, void *arg)
{
	struct channel_call *cc = arg;

	if (o->error) {
		rest_store_failed(cc->rc, o, false,
				  cc->create ? "notification_channels.create" : "notification_channels.update");
		channel_call_free(cc);
	} else if (o->status == STORE_NO_ROW) {
		channel_fail(cc, 409, "Conflict", "the channel changed meanwhile: read it again and retry", NULL);
	} else {
		route_respond(cc->rc, cc->create ? 201 : 200, "application/json", (const char *)o->json, o->json_len);
		channel_call_free(cc);
	}
}

static const char *bool_param(json_t *v)
{
	return json_is_boolean(v) ? (json_is_true(v) ? "true" : "false") : NULL;
}

/* the write itself; sealed_hex NULL for no secrets (create) or keeping them */
static void channel_write(struct channel_call *cc, const char *sealed_hex)
{
	const char *p[16];
	json_t *name = json_object_get(cc->body, "name");
	char *config = cc->config_sent ? json_dumps(cc->cc.shown, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	size_t n = 0;

	if (cc->config_sent && (!config || strlen(config) > CONFIG_TEXT_MAX)) {
		free(config);
		channel_fail(cc, 400, "Bad Request", "config: too large (at most 16384 bytes)", "config");
		return;
	}
	if (cc->create) {
		p[n++] = cc->id;
		p[n++] = json_string_value(name);
		p[n++] = cc->type->name;
		p[n++] = config;
		p[n++] = sealed_hex;
		p[n++] = sealed_hex ? cc->key_id : NULL;
		p[n++] = bool_param(json_object_get(cc->body, "enabled"));
	} else {
		p[n++] = cc->id;
		p[n++] = cc->row_version;
		p[n++] = json_string_value(name);
		p[n++] = config;
		p[n++] = bool_param(json_object_get(cc->body, "enabled"));
		p[n++] = cc->cc.secrets ? "replace" : "keep";
		p[n++] = sealed_hex;
		p[n++] = sealed_hex ? cc->key_id : NULL;
	}
	n = route_audit_params(cc->rc, p, n);
	if (store_call(cc->rc->w, cc->create ? "notification_channels.create" : "notification_channels.update", p, n,
		       on_channel_written, cc) != 0)
		channel_fail(cc, 503, "Service Unavailable", "the database is unavailable", NULL);
	free(config);
}

/* the notifier's newest key: the secrets sealed to it, for this channel */
static void on_key(const struct store_outcome *o, void *arg)
{
	struct channel_call *cc = arg;
	uint8_t pub[NOTIFIER_SEAL_KEY_BYTES], blob[SECRETS_TEXT_MAX + NOTIFIER_SEAL_OVERHEAD];
	char hex[2 * sizeof blob + 1];
	json_t *j;
	const char *id, *key;
	char *text;
	long n;

	if (o->error) {
		rest_store_failed(cc->rc, o, false, "notifier_keys.newest");
		channel_call_free(cc);
		return;
	}
	j = o->status == STORE_NO_ROW ? NULL : json_loadb((const char *)o->json, o->json_len, 0, NULL);
	id = json_string_value(json_object_get(j, "id"));
	key = json_string_value(json_object_get(j, "public_key"));
	if (!id || !key || strlen(id) != NOTIFIER_SEAL_KEY_ID_LEN ||
	    hex_decode(key, pub, sizeof pub) != 0) {
		json_decref(j);
		channel_fail(cc, 503, "Service Unavailable",
			     "no certward-notifier has published its key yet, so channel secrets cannot be sealed: "
			     "start certward-notifier and retry",
			     NULL);
		return;
	}
	snprintf(cc->key_id, sizeof cc->key_id, "%s", id);
	json_decref(j);
	text = json_dumps(cc->cc.secrets, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text || strlen(text) > SECRETS_TEXT_MAX) {
		if (text)
			OPENSSL_cleanse(text, strlen(text));
		free(text);
		channel_fail(cc, 400, "Bad Request", "config: the secrets are too large (at most 8192 bytes in all)",
			     "config");
		return;
	}
	n = notifier_seal(pub, cc->id, (const uint8_t *)text, strlen(text), blob, sizeof blob);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	if (n < 0) {
		log_event(LOG_ERROR, cc->rc->req.reqid, NULL, "cannot seal channel secrets to notifier key %s",
			  cc->key_id);
		channel_fail(cc, 503, "Service Unavailable", "the notifier's published key is unusable", NULL);
		return;
	}
	hex_encode(blob, (size_t)n, hex);
	channel_write(cc, hex);
}

/* sealed and written, or written keeping what is stored */
static void channel_store(struct channel_call *cc)
{
	if (!cc->cc.secrets) {
		channel_write(cc, NULL);
		return;
	}
	if (store_call(cc->rc->w, "notifier_keys.newest", NULL, 0, on_key, cc) != 0)
		channel_fail(cc, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* name, type, enabled (and id on create) of the body; false: answered 400 */
static bool channel_fields_ok(struct channel_call *cc)
{
	json_t *name = json_object_get(cc->body, "name"), *type = json_object_get(cc->body, "type");
	json_t *enabled = json_object_get(cc->body, "enabled"), *id = json_object_get(cc->body, "id");

	if ((name || cc->create) &&
	    (!json_is_string(name) || json_string_length(name) < 1 || json_string_length(name) > 255 ||
	     !action_text_ok(json_string_value(name)))) {
		channel_fail(cc, 400, "Bad Request", "name: must be a string of 1 to 255 characters", "name");
		return false;
	}
	if ((type || cc->create) && !type_by_name(json_string_value(type))) {
		channel_fail(cc, 400, "Bad Request",
			     "type: must be Email, Webhook, Slack, Teams, PagerDuty or OpsGenie", "type");
		return false;
	}
	if (enabled && !json_is_boolean(enabled)) {
		channel_fail(cc, 400, "Bad Request", "enabled: must be true or false", "enabled");
		return false;
	}
	if (id && (!json_is_string(id) || !valid_resource_id(json_string_value(id), NOTIFIER_SEAL_MAX_CHANNEL_ID))) {
		channel_fail(cc, 400, "Bad Request", "id: must be 1 to 128 letters, digits, '.', '_' or '-'", "id");
		return false;
	}
	cc->type = type_by_name(json_string_value(type));
	cc->config_sent = json_object_get(cc->body, "config") != NULL;
	return true;
}

static struct channel_call *channel_call_new(struct route_call *c, bool create)
{
	static const char *const create_members[] = {"id", "name", "type", "config", "enabled"};
	static const char *const update_members[] = {"name", "type", "config", "enabled"};
	struct channel_call *cc;
	json_t *body = create ? action_body(c, create_members, 5) : action_body(c, update_members, 4);

	if (!body)
		return NULL;
	if (!(cc = calloc(1, sizeof *cc))) {
		json_t *config = json_object_get(body, "config");

		if (json_is_object(config))
			notifier_seal_wipe_json(config);
		json_decref(body);
		route_problem(c, 503, "Service Unavailable", "out of memory", NULL);
		return NULL;
	}
	cc->rc = c;
	cc->body = body;
	cc->create = create;
	return channel_fields_ok(cc) ? cc : NULL;
}

static void channel_create(struct route_call *c)
{
	struct channel_call *cc = channel_call_new(c, true);
	json_t *id, *config;

	if (!cc)
		return;
	id = json_object_get(cc->body, "id");
	if (id) {
		snprintf(cc->id, sizeof cc->id, "%s", json_string_value(id));
	} else {
		/* the id is chosen here, as cw_new_id would: the secrets are bound to it */
		uint8_t r[16];
		char hex[33];

		RAND_bytes(r, sizeof r);
		hex_encode(r, sizeof r, hex);
		snprintf(cc->id, sizeof cc->id, "nch-%s", hex);
	}
	config = json_object_get(cc->body, "config");
	if (!config) {
		config = json_object();
		json_object_set_new(cc->body, "config", config);
	}
	cc->config_sent = true;
	if (!check_config(cc->type, config, NULL, &cc->cc)) {
		channel_fail(cc, 400, "Bad Request", cc->cc.msg, cc->cc.field);
		return;
	}
	channel_store(cc);
}

static void on_current(const struct store_outcome *o, void *arg)
{
	struct channel_call *cc = arg;
	json_t *j, *old;
	const struct channel_type *stored;

	if (o->error) {
		rest_store_failed(cc->rc, o, false, "notification_channels.current");
		channel_call_free(cc);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		channel_fail(cc, 404, "Not Found", NULL, NULL);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	old = json_object_get(j, "config");
	stored = type_by_name(json_string_value(json_object_get(j, "type")));
	snprintf(cc->row_version, sizeof cc->row_version, "%lld",
		 (long long)json_integer_value(json_object_get(j, "row_version")));
	if (strcmp(json_string_value(json_object_get(j, "source")) ?: "", "api") != 0) {
		json_decref(j);
		channel_fail(cc, 409, "Conflict",
			     "the channel comes from certward.yml (source config): change it there, not through the API",
			     NULL);
		return;
	}
	if (!stored || (cc->type && cc->type != stored)) {
		json_decref(j);
		channel_fail(cc, 400, "Bad Request", "type: a channel's type cannot change (make a new channel)", "type");
		return;
	}
	cc->type = stored;
	if (cc->config_sent && !check_config(stored, json_object_get(cc->body, "config"), old, &cc->cc)) {
		json_decref(j);
		channel_fail(cc, 400, "Bad Request", cc->cc.msg, cc->cc.field);
		return;
	}
	json_decref(j);
	channel_store(cc);
}

static void channel_update(struct route_call *c)
{
	struct channel_call *cc;
	const char *p[1];

	if (!valid_resource_id(route_param(c, "id"), NOTIFIER_SEAL_MAX_CHANNEL_ID)) {
		route_problem(c, 404, "Not Found", NULL, NULL);
		return;
	}
	if (!(cc = channel_call_new(c, false)))
		return;
	snprintf(cc->id, sizeof cc->id, "%s", route_param(c, "id"));
	p[0] = cc->id;
	if (store_call(c->w, "notification_channels.current", p, 1, on_current, cc) != 0)
		channel_fail(cc, 503, "Service Unavailable", "the database is unavailable", NULL);
}

/* ---- the one-statement actions: delete, requeue, digest ---- */

enum action { A_DELETE, A_REQUEUE, A_PREVIEW, A_SEND };

static const char *const action_ops[] = {"notification_channels.delete", "notifications.requeue",
					 "digest.preview", "digest.request"};

static void on_action(const struct store_outcome *o, void *arg)
{
	struct route_call *c = arg;
	enum action a = (enum action)(size_t)c->route->arg;
	json_t *j;
	const char *state;

	if (o->error) {
		rest_store_failed(c, o, a == A_DELETE, action_ops[a]);
		return;
	}
	j = json_loadb((const char *)o->json, o->json_len, JSON_DECODE_ANY, NULL);
	state = json_string_value(json_object_get(j, "state"));
	if (a == A_PREVIEW) {
		if (json_is_string(j))
			route_respond(c, 200, "text/html; charset=utf-8", json_string_value(j), json_string_length(j));
		else
			route_problem(c, 500, "Internal Server Error", NULL, NULL);
	} else if (a == A_SEND) {
		const char *at = json_string_value(json_object_get(j, "requested_at"));

		if (at)
			route_respond_json(c, 200, json_pack("{s:s, s:s, s:s}", "status", "requested", "message",
							     "certward-notifier sends the pending digests at its next pass",
							     "requested_at", at));
		else
			route_problem(c, 409, "Conflict", "no enabled notification rule collects a digest (digest: true)",
				      NULL);
	} else if (!state) {
		log_event(LOG_ERROR, c->req.reqid, NULL, "%s: an answer without a state", action_ops[a]);
		route_problem(c, 500, "Internal Server Error", NULL, NULL);
	} else if (strcmp(state, "missing") == 0) {
		route_problem(c, 404, "Not Found", NULL, NULL);
	} else if (a == A_DELETE) {
		if (strcmp(state, "done") == 0)
			route_respond(c, 204, "application/json", "", 0);
		else
			route_problem(c, 409, "Conflict",
				      "the channel comes from certward.yml (source config): remove it there", NULL);
	} else if (strcmp(state, "done") == 0) {
		route_respond_json(c, 200, json_pack("{s:s}", "status", "requeued"));
	} else {
		char detail[96];

		snprintf(detail, sizeof detail, "only a dead notification can be requeued (this one is %.20s)",
			 json_string_value(json_object_get(j, "status")) ?: "?");
		route_problem(c, 409, "Conflict", detail, NULL);
	}
	json_decref(j);
}

static void action(struct route_call *c)
{
	enum action a = (enum action)(size_t)c->route->arg;
	const char *p[8];
	size_t n = 0;

	if (a == A_DELETE || a == A_REQUEUE) {
		if (!valid_resource_id(route_param(c, "id"), 128)) {
			route_problem(c, 404, "Not Found", NULL, NULL);
			return;
		}
		p[n++] = route_param(c, "id");
	}
	if (c->req.query && c->req.query[0]) {
		route_problem(c, 400, "Bad Request", "this route takes no query parameters", NULL);
		return;
	}
	if (a != A_PREVIEW)
		n = route_audit_params(c, p, n);
	if (store_call(c->w, action_ops[a], n ? p : NULL, n, on_action, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the database is unavailable", NULL);
}

static const struct route notify_routes[] = {
	{"POST", "/api/v1/notification-channels", ROLE_ADMIN, 0, channel_create, NULL},
	{"PUT", "/api/v1/notification-channels/{id}", ROLE_ADMIN, 0, channel_update, NULL},
	{"DELETE", "/api/v1/notification-channels/{id}", ROLE_ADMIN, 0, action, (void *)A_DELETE},
	{"POST", "/api/v1/notifications/{id}/requeue", ROLES_MANAGE, 0, action, (void *)A_REQUEUE},
	{"GET", "/api/v1/digest/preview", ROLES_READ, 0, action, (void *)A_PREVIEW},
	{"POST", "/api/v1/digest/send", ROLES_MANAGE, 0, action, (void *)A_SEND},
};

void notify_routes_init(void)
{
	routes_add(notify_routes, sizeof notify_routes / sizeof notify_routes[0]);
}

#include "channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/mem.h>
#include <openssl/rand.h>

#include "format.h"
#include "https_client.h"
#include "validate.h"
#include "util.h"

static const char *const type_names[CH_NTYPES] = {"Email", "Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie"};

const char *channel_type_name(enum channel_type t)
{
	return (unsigned)t < CH_NTYPES ? type_names[t] : "?";
}

int channel_type_of(const char *name)
{
	for (int i = 0; i < CH_NTYPES; i++)
		if (strcmp(type_names[i], name) == 0)
			return i;
	return -1;
}

static void wipe_free(char **p)
{
	if (*p) {
		OPENSSL_cleanse(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void channel_cfg_clear(struct channel_cfg *c)
{
	char **all[] = {&c->host, &c->user, &c->password, &c->from, &c->helo,
			&c->url, &c->hmac_key, &c->routing_key, &c->api_key};

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		wipe_free(all[i]);
}

/* A member of secrets, else of config; "********" (a secret shown) is no value. */
static int take(char **dst, const json_t *config, const json_t *secrets, const char *key)
{
	const char *v = json_string_value(json_object_get(secrets, key));

	if (!v)
		v = json_string_value(json_object_get(config, key));
	if (!v || !*v || strcmp(v, "********") == 0)
		return 0;
	wipe_free(dst);
	*dst = strdup(v);
	return *dst ? 0 : -1;
}

int channel_cfg_fill(struct channel_cfg *c, const json_t *config, const json_t *secrets, char *why,
		     size_t whylen)
{
	const json_t *port = json_object_get(config, "port");
	const char *tls = json_string_value(json_object_get(config, "tls"));

	if (take(&c->host, config, secrets, "host") || take(&c->from, config, secrets, "from") ||
	    take(&c->user, config, secrets, "username") || take(&c->password, config, secrets, "password") ||
	    take(&c->url, config, secrets, "url") || take(&c->url, config, secrets, "webhook_url") ||
	    take(&c->url, config, secrets, "api_url") || take(&c->hmac_key, config, secrets, "hmac_key") ||
	    take(&c->routing_key, config, secrets, "routing_key") || take(&c->api_key, config, secrets, "api_key")) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (json_is_integer(port) && json_integer_value(port) > 0 && json_integer_value(port) < 65536)
		c->port = (unsigned)json_integer_value(port);
	if (tls)
		c->tls = strcmp(tls, "implicit") == 0 ? SMTP_IMPLICIT : strcmp(tls, "none") == 0 ? SMTP_PLAIN : SMTP_STARTTLS;
	switch (c->type) {
	case CH_EMAIL:
		if (!c->host || !c->from || !mail_address_ok(c->from)) {
			snprintf(why, whylen, "an e-mail channel needs host and a valid from");
			return -1;
		}
		if (!c->port)
			c->port = c->tls == SMTP_IMPLICIT ? 465 : 587;
		break;
	case CH_PAGERDUTY:
		if (!c->url && !(c->url = strdup("https://events.pagerduty.com/v2/enqueue")))
			return -1;
		if (!c->routing_key) {
			snprintf(why, whylen, "a PagerDuty channel needs routing_key");
			return -1;
		}
		break;
	case CH_OPSGENIE:
		if (!c->url && !(c->url = strdup("https://api.opsgenie.com/v2/alerts")))
			return -1;
		if (!c->api_key) {
			snprintf(why, whylen, "an OpsGenie channel needs api_key");
			return -1;
		}
		break;
	default:
		break;
	}
	if (c->type != CH_EMAIL && (!c->url || !valid_https_url(c->url, 2048))) {
		snprintf(why, whylen, "a %s channel needs an https URL (https://host[:port]/path, no user info)",
			 channel_type_name(c->type));
		return -1;
	}
	return 0;
}

/* Whether text holds one of c's secrets, or a part of its URL past the
 * host (where tokens live). */
static bool echoes_secret(const struct channel_cfg *c, const char *text)
{
	const char *const secrets[] = {c->hmac_key, c->routing_key, c->api_key, c->password};
	const char *path = c->url ? strpbrk(c->url + 8, "/?#") : NULL;

	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
		if (secrets[i] && *secrets[i] && strstr(text, secrets[i]))
			return true;
	/* 8 characters of the path are enough to give a token away */
	for (; path && strlen(path) >= 8; path++)
		if (memmem(text, strlen(text), path, 8))
			return true;
	return false;
}

/* POSTs body to c->url with the extra header lines given. */
static int post(const struct channel_cfg *c, const char *body, const char *const *headers, char *err,
		size_t errlen)
{
	const char *rest = c->url + 8, *path;
	size_t host_len = strcspn(rest, "/?#");
	char origin[300], why[512], fixed_path[2100];
	struct http_client hc = {0};
	struct http_response resp;
	int rc = -1;

	if (host_len + 8 >= sizeof origin || rest[host_len] == '#') {
		snprintf(err, errlen, "the channel's URL is malformed");
		return -1;
	}
	memcpy(origin, c->url, host_len + 8);
	origin[host_len + 8] = 0;
	path = rest + host_len;
	if (*path != '/') {
		snprintf(fixed_path, sizeof fixed_path, "/%s", path);
		path = fixed_path;
	}
	hc.url = origin;
	hc.cacert = c->cacert;
	hc.timeout_s = c->timeout_s;
	hc.user_agent = "certward-notifier";
	hc.headers = headers;
	hc.max_body = c->max_body;
	hc.no_hints = 1;
	switch (http_request(&hc, "POST", path, body, strlen(body), &resp, why, sizeof why)) {
	case HTTP_OK:
		break;
	case HTTP_E_USAGE:
		/* the client's words may quote the URL, which may hold a token */
		snprintf(err, errlen, "the channel's URL is malformed");
		return -1;
	default:
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (resp.status / 100 == 2) {
		rc = 0;
	} else {
		char excerpt[121];
		size_t n = 0;

		for (size_t i = 0; i < resp.body_len && n + 1 < sizeof excerpt; i++)
			excerpt[n++] = (unsigned char)resp.body[i] < 0x20 || (unsigned char)resp.body[i] >= 0x7f
					       ? ' '
					       : resp.body[i];
		excerpt[n] = 0;
		/* a receiver that echoes the request would echo a key it carries */
		if (echoes_secret(c, excerpt))
			snprintf(excerpt, sizeof excerpt, "(the answer is not kept: it repeats a secret of the channel)");
		snprintf(err, errlen, "HTTP %d from %s%s%s", resp.status, origin + 8, n ? ": " : "", excerpt);
	}
	http_response_free(&resp);
	return rc;
}

static int deliver_email(const struct channel_cfg *c, const json_t *d, char *err, size_t errlen)
{
	struct smtp_server srv = {.host = c->host, .port = c->port, .tls = c->tls, .cacert = c->cacert,
				  .user = c->user, .password = c->password, .helo = c->helo,
				  .timeout_s = c->timeout_s};
	const char *to = json_string_value(json_object_get(d, "recipient"));
	const char *subject = json_string_value(json_object_get(d, "subject"));
	const char *body = json_string_value(json_object_get(d, "message"));
	const char *id = json_string_value(json_object_get(d, "id"));
	uint8_t nonce[8];
	char nonce_hex[17], *msg;
	size_t len = 0;
	int rc;

	if (!srv.helo)
		srv.helo = strrchr(c->from, '@') + 1;
	RAND_bytes(nonce, sizeof nonce);
	hex_encode(nonce, sizeof nonce, nonce_hex);
	msg = mail_build(c->from, to ? to : "", subject ? subject : "certward", body ? body : "", id ? id : "x",
			 nonce_hex, time(NULL), &len);
	if (!msg) {
		snprintf(err, errlen, "cannot build the message (a bad recipient address, or too large)");
		return -1;
	}
	rc = smtp_send(&srv, c->from, to, msg, len, err, errlen);
	free(msg);
	return rc;
}

int channel_deliver(const struct channel_cfg *c, const json_t *d, char *err, size_t errlen)
{
	char *body = NULL, sig[72], sig_h[100], ts_h[64], id_h[200], auth[300];
	const char *headers[4] = {NULL};
	int rc;

	switch (c->type) {
	case CH_EMAIL:
		return deliver_email(c, d, err, errlen);
	case CH_WEBHOOK:
		body = payload_webhook(d);
		if (body) {
			long long ts = (long long)time(NULL);

			snprintf(ts_h, sizeof ts_h, "X-Certward-Timestamp: %lld", ts);
			snprintf(id_h, sizeof id_h, "X-Certward-Delivery: %.128s",
				 json_string_value(json_object_get(d, "id")) ? json_string_value(json_object_get(d, "id")) : "");
			headers[0] = ts_h;
			headers[1] = id_h;
			if (c->hmac_key) {
				webhook_signature(c->hmac_key, strlen(c->hmac_key), ts, body, strlen(body), sig);
				snprintf(sig_h, sizeof sig_h, "X-Certward-Signature: %s", sig);
				headers[2] = sig_h;
			}
		}
		break;
	case CH_SLACK:
		body = payload_slack(d);
		break;
	case CH_TEAMS:
		body = payload_teams(d);
		break;
	case CH_PAGERDUTY:
		body = payload_pagerduty(d, c->routing_key);
		break;
	case CH_OPSGENIE:
		body = payload_opsgenie(d);
		snprintf(auth, sizeof auth, "Authorization: GenieKey %s", c->api_key);
		headers[0] = auth;
		break;
	default:
		break;
	}
	if (!body) {
		snprintf(err, errlen, "cannot build the payload");
		return -1;
	}
	rc = post(c, body, headers, err, errlen);
	OPENSSL_cleanse(auth, sizeof auth);
	OPENSSL_cleanse(body, strlen(body));
	free(body);
	return rc;
}

/*
 * A notification channel as certward-notifier delivers to it: its type,
 * where it sends and the credentials it sends with (from certward.yml, or
 * opened from the sealed secrets of a channel made through the API).
 * channel_deliver() is blocking and runs on a thread of its own.
 */
#ifndef CERTWARD_NOTIFIER_CHANNEL_H
#define CERTWARD_NOTIFIER_CHANNEL_H

#include <jansson.h>
#include <stddef.h>

#include "smtp.h"

enum channel_type { CH_EMAIL, CH_WEBHOOK, CH_SLACK, CH_TEAMS, CH_PAGERDUTY, CH_OPSGENIE, CH_NTYPES };

struct channel_cfg {
	enum channel_type type;
	char id[129], name[256];
	/* e-mail */
	char *host, *user, *password, *from, *helo;
	unsigned port;
	enum smtp_tls tls;
	/* HTTPS: url is the whole endpoint (it may hold a token) */
	char *url, *hmac_key, *routing_key, *api_key;
	/* every channel */
	const char *cacert;
	int timeout_s;
	size_t max_body;
};

/* "Email", "Webhook", ... and back; -1 for an unknown name. */
const char *channel_type_name(enum channel_type t);
int channel_type_of(const char *name);

/* Fills the fields of c from a JSON object of the API's member names
 * (host, port, tls, from, username, password, url, hmac_key, webhook_url,
 * api_url, routing_key, api_key): config (shown) and then secrets. Returns
 * 0, or -1 with why (never a secret's value). */
int channel_cfg_fill(struct channel_cfg *c, const json_t *config, const json_t *secrets, char *why,
		     size_t whylen);
/* Wipes the secrets and frees every string. */
void channel_cfg_clear(struct channel_cfg *c);

/* Sends delivery d (a notifier.claim object) on c: 0 when the receiver
 * accepted it, else -1 with why in err (no secret: neither the URL's path
 * nor a credential). */
int channel_deliver(const struct channel_cfg *c, const json_t *d, char *err, size_t errlen);

#endif

/*
 * The ACME HTTP-01 responder (RFC 8555 section 8.3):
 *
 *   GET /.well-known/acme-challenge/{token}   200 text/plain: the key authorization
 *
 * A CA validating an ACME issuer's order fetches it without credentials,
 * over plain HTTP (api.plain_listen, port 80 in front) or HTTPS. The
 * scheduler puts the challenge (acme_challenges.put) before it asks the CA
 * to validate; this route answers with its key authorization, the body and
 * nothing else, while the challenge has not expired. A token outside the
 * base64url alphabet or longer than 128 characters is 404 without asking
 * the store; an unknown or expired one 404; the store out of reach 503.
 * Nothing is kept here: every request asks the store (which does not cache
 * this read either), and the answer says no-store.
 */
#include "acme_http.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "routes.h"
#include "store_client.h"

#define TOKEN_MAX 128			   /* acme_challenges.token's CHECK */
#define KEY_AUTHORIZATION_MAX (TOKEN_MAX + 1 + 43) /* token "." thumbprint */

static bool valid_token(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");

	return n >= 1 && n <= TOKEN_MAX && s[n] == '\0';
}

static void not_found(struct route_call *c)
{
	route_problem(c, 404, "Not Found", "no such challenge", NULL);
}

static void on_challenge(const struct store_outcome *o, void *arg)
{
	static const struct api_header h[] = {{"Cache-Control", "no-store"}};
	struct route_call *c = arg;
	json_t *v;
	const char *ka;
	size_t len;

	if (o->error) {
		route_problem(c, 503, "Service Unavailable", "the challenge cannot be read now", NULL);
		return;
	}
	if (o->status == STORE_NO_ROW) {
		not_found(c);
		return;
	}
	v = json_loadb((const char *)o->json, o->json_len, JSON_DECODE_ANY, NULL);
	ka = json_string_value(v);
	len = ka ? strlen(ka) : 0;
	if (!ka || len < 3 || len > KEY_AUTHORIZATION_MAX)
		route_problem(c, 503, "Service Unavailable", "the stored challenge is not consistent", NULL);
	else
		route_respond_headers(c, 200, "text/plain", h, 1, ka, len);
	json_decref(v);
}

static void get_challenge(struct route_call *c)
{
	const char *token = route_param(c, "token");
	const char *p[1] = {token};

	if (!token || !valid_token(token)) {
		not_found(c);
		return;
	}
	if (store_call(c->w, "acme_challenges.get", p, 1, on_challenge, c) != 0)
		route_problem(c, 503, "Service Unavailable", "the store is unavailable", NULL);
}

static const struct route acme_http_routes[] = {
	{"GET", "/.well-known/acme-challenge/{token}", ROLES_PUBLIC, ROUTE_PLAIN, get_challenge, NULL},
};

void acme_http_routes_init(void)
{
	routes_add(acme_http_routes, sizeof acme_http_routes / sizeof acme_http_routes[0]);
}

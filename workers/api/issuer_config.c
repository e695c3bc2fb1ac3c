/* See issuer_config.h. */
#include "issuer_config.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "dns.h"
#include "validate.h"

/* bytes of trust_anchors_pem: the whole config travels in one store call
 * (STORE_PARAMS_BYTES, 64 KiB with the other parameters) */
#define TRUST_ANCHORS_MAX (32 * 1024)
#define RESOLVERS_MAX 8
#define PROPAGATION_MAX_S 3600

static bool refuse(struct resource_error *err, const char *member, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool refuse(struct resource_error *err, const char *member, const char *fmt, ...)
{
	char msg[sizeof err->msg - 80];
	/* a member's name cut to 56 bytes, at a UTF-8 character's start */
	int n = member ? (int)strnlen(member, 57) : 0;
	va_list ap;

	if (n > 56)
		for (n = 56; n > 0 && ((unsigned char)member[n] & 0xc0) == 0x80; n--)
			;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(err->field, sizeof err->field, "config%s%.*s", member ? "." : "", n, member ? member : "");
	snprintf(err->msg, sizeof err->msg, "config%s%.*s: %s", member ? "." : "", n, member ? member : "", msg);
	return false;
}

/* every byte in [lo, hi], 1..max of them, no NUL inside */
static bool text_ok(const json_t *v, size_t max, unsigned char lo, unsigned char hi)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!s || n == 0 || n > max || strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < lo || (unsigned char)s[i] > hi)
			return false;
	return true;
}

static bool in_list(const char *s, const char *const *values)
{
	for (size_t i = 0; s && values[i]; i++)
		if (strcmp(s, values[i]) == 0)
			return true;
	return false;
}

/* the member, or NULL when absent or null (not set) */
static const json_t *given(const json_t *cfg, const char *name)
{
	const json_t *v = json_object_get(cfg, name);

	return json_is_null(v) ? NULL : v;
}

/* at least one PEM certificate that BoringSSL parses */
static bool pem_certificates(const json_t *v)
{
	BIO *bio;
	X509 *x;
	int n = 0;

	if (!text_ok(v, TRUST_ANCHORS_MAX, 0x01, 0xff))
		return false;
	bio = BIO_new_mem_buf(json_string_value(v), (int)json_string_length(v));
	while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		n++;
		X509_free(x);
	}
	BIO_free(bio);
	ERR_clear_error();
	return n > 0;
}

static bool resolvers_ok(const json_t *v, struct resource_error *err)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) > RESOLVERS_MAX)
		return refuse(err, "dns_resolvers", "must be an array of at most %d \"address:port\" strings",
			      RESOLVERS_MAX);
	json_array_foreach(v, i, e) {
		if (!text_ok(e, 64, 0x21, 0x7e) || strspn(json_string_value(e), "0123456789abcdefABCDEF.:[]") !=
		    json_string_length(e) || !dns_server_valid(json_string_value(e)))
			return refuse(err, "dns_resolvers", "element %zu: must be \"IPv4:port\" or \"[IPv6]:port\" "
				      "(a literal address, a port 1-65535)", i);
	}
	return true;
}

static bool acme_config_ok(const json_t *cfg, struct resource_error *err)
{
	static const char *const known[] = {
		"directory_url", "contact_email", "challenge_type", "profile", "account_key_algorithm",
		"trust_anchors_pem", "preferred_chain", "dns_hook", "dns_resolvers",
		"dns_propagation_timeout_seconds", "eab_key_id", "eab_hmac_key", NULL};
	static const char *const challenges[] = {"http-01", "dns-01", "dns-persist-01", NULL};
	static const char *const algs[] = {"ES256", "ES384", "RS256", NULL};
	const json_t *v;
	const char *k;
	json_t *m;

	json_object_foreach((json_t *)cfg, k, m) {
		if (!in_list(k, known))
			return refuse(err, k, "not a setting of an ACME issuer (directory_url, contact_email, "
				      "challenge_type, profile, account_key_algorithm, trust_anchors_pem, "
				      "preferred_chain, dns_hook, dns_resolvers, dns_propagation_timeout_seconds, "
				      "eab_key_id, eab_hmac_key)");
	}
#define SET(name) ((v = given(cfg, name)) != NULL)
	if (!SET("directory_url"))
		return refuse(err, "directory_url", "required: the CA's ACME directory URL");
	if (!text_ok(v, ACME_URL_MAX, 0x21, 0x7e) || strncmp(json_string_value(v), "https://", 8) != 0 ||
	    !valid_https_url(json_string_value(v), ACME_URL_MAX))
		return refuse(err, "directory_url", "must be an https:// URL of at most %d bytes, without user info",
			      ACME_URL_MAX);
	if (SET("contact_email") && (!json_is_string(v) || !valid_email(json_string_value(v))))
		return refuse(err, "contact_email", "must be an e-mail address");
	if (SET("challenge_type") && !in_list(json_string_value(v), challenges))
		return refuse(err, "challenge_type", "must be http-01, dns-01 or dns-persist-01");
	if (SET("account_key_algorithm") && !in_list(json_string_value(v), algs))
		return refuse(err, "account_key_algorithm", "must be ES256, ES384 or RS256");
	if (SET("profile") && !text_ok(v, 64, 0x21, 0x7e))
		return refuse(err, "profile", "must be 1 to 64 printable ASCII characters without spaces");
	if (SET("trust_anchors_pem") && !pem_certificates(v))
		return refuse(err, "trust_anchors_pem", "must hold at least one PEM certificate that parses, in at "
			      "most %d bytes", TRUST_ANCHORS_MAX);
	if (SET("preferred_chain") && (!text_ok(v, 255, 0x20, 0xff) || strchr(json_string_value(v), 0x7f)))
		return refuse(err, "preferred_chain", "must be an issuer common name of 1 to 255 bytes without "
			      "control characters");
	if (SET("dns_hook") && (!text_ok(v, 64, 0x21, 0x7e) ||
				strspn(json_string_value(v), "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
					json_string_length(v)))
		return refuse(err, "dns_hook", "must be a hook name of 1 to 64 of a-z, 0-9, '_' and '-'");
	if (SET("dns_resolvers") && !resolvers_ok(v, err))
		return false;
	if (SET("dns_propagation_timeout_seconds") &&
	    (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > PROPAGATION_MAX_S))
		return refuse(err, "dns_propagation_timeout_seconds", "must be an integer from 1 to %d",
			      PROPAGATION_MAX_S);
	if (SET("eab_key_id") && !text_ok(v, 255, 0x21, 0x7e))
		return refuse(err, "eab_key_id", "must be 1 to 255 printable ASCII characters without spaces");
	if (SET("eab_hmac_key") && (!json_is_string(v) || json_string_length(v) == 0))
		return refuse(err, "eab_hmac_key", "must be the CA's HMAC key (base64url text)");
	if (!given(cfg, "eab_key_id") != !given(cfg, "eab_hmac_key"))
		return refuse(err, given(cfg, "eab_key_id") ? "eab_hmac_key" : "eab_key_id",
			      "eab_key_id and eab_hmac_key go together (external account binding)");
	if (in_list(json_string_value(json_object_get(cfg, "challenge_type")), challenges + 1) && !SET("dns_hook"))
		return refuse(err, "dns_hook", "required with challenge_type %s: the hook that publishes the TXT "
			      "record", json_string_value(json_object_get(cfg, "challenge_type")));
#undef SET
	return true;
}

bool issuer_config_ok(const char *type, const json_t *config, struct resource_error *err)
{
	json_t *empty = NULL;
	bool ok;

	memset(err, 0, sizeof *err);
	if (!type || strcmp(type, "ACME") != 0)
		return true;
	if (!config || json_is_null(config))
		config = empty = json_object();
	if (!json_is_object(config))
		return refuse(err, NULL, "must be a JSON object");
	ok = acme_config_ok(config, err);
	json_decref(empty);
	return ok;
}

/* ---- an update: what the issuer will be ---- */

struct vet {
	json_t *body;
	issuer_config_cb then;
	void *arg;
};

static void vet_done(struct vet *v, const json_t *type, const json_t *config)
{
	struct resource_error err;
	bool ok = issuer_config_ok(json_string_value(type), config, &err);

	v->then(v->arg, ok ? 0 : 422, &err, NULL);
	json_decref(v->body);
	free(v);
}

static void on_stored(const struct store_outcome *o, void *arg)
{
	struct vet *v = arg;
	struct resource_error err = {"", ""};
	json_t *stored, *type, *config;

	if (o->error || o->status == STORE_NO_ROW) {
		v->then(v->arg, o->error ? 1 : 404, &err, o);
		json_decref(v->body);
		free(v);
		return;
	}
	stored = json_loadb((const char *)o->json, o->json_len, 0, NULL);
	type = json_object_get(v->body, "type");
	config = json_object_get(v->body, "config");
	vet_done(v, type ? type : json_object_get(stored, "type"), config ? config : json_object_get(stored, "config"));
	json_decref(stored);
}

void issuer_config_vet(struct worker *w, const char *id, const char *canonical, bool create, issuer_config_cb then,
		       void *arg)
{
	struct resource_error err = {"", ""};
	struct vet *v = calloc(1, sizeof *v);
	json_t *type, *config;
	const char *p[1] = {id};

	if (!v || !(v->body = json_loads(canonical, 0, NULL))) {
		free(v);
		then(arg, 503, &err, NULL);
		return;
	}
	v->then = then;
	v->arg = arg;
	type = json_object_get(v->body, "type");
	config = json_object_get(v->body, "config");
	/* a create has both (config's default is {}); an update sending
	 * neither leaves them as they are; a type other than ACME has no rules */
	if (create || (type && config) || (!type && !config) ||
	    (type && !config && strcmp(json_string_value(type) ? json_string_value(type) : "", "ACME") != 0)) {
		vet_done(v, type, config);
		return;
	}
	if (!id || store_call(w, "issuers.get", p, 1, on_stored, v) != 0) {
		json_decref(v->body);
		free(v);
		then(arg, 503, &err, NULL);
	}
}

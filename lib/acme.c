/* See acme.h. */
#include "acme.h"

#include <jansson.h>
#include <openssl/base64.h>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "validate.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* where a member is, for error messages ("order: identifiers[2]"); a path
 * longer than the buffer is cut */
#define AT_MAX 160
__attribute__((format(printf, 2, 3))) static void at_path(char at[AT_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(at, AT_MAX, fmt, ap);
	va_end(ap);
}

/* ---- base64url ---- */

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t acme_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t acme_b64url_encode(const uint8_t *p, size_t n, char *out)
{
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (n - i == 1) {
		out[o++] = b64url_alphabet[p[i] >> 2];
		out[o++] = b64url_alphabet[(p[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];

		out[o++] = b64url_alphabet[v >> 10 & 63];
		out[o++] = b64url_alphabet[v >> 4 & 63];
		out[o++] = b64url_alphabet[(v & 15) << 2];
	}
	out[o] = '\0';
	return o;
}

char *acme_b64url(const uint8_t *p, size_t n)
{
	char *s = malloc(acme_b64url_len(n) + 1);

	if (s)
		acme_b64url_encode(p, n, s);
	return s;
}

int acme_b64url_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t o = 0, need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1 || need > cap)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* bits past the last byte must be zero: one text per value */
		return -1;
	*out_len = o;
	return 0;
}

bool acme_b64url_chars(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || b64url_value((unsigned char)s[n]) < 0)
			return false;
	return n > 0;
}

bool acme_nonce_ok(const char *s)
{
	return s && acme_b64url_chars(s, ACME_NONCE_MAX);
}

bool acme_url_ok(const char *s)
{
	return s && valid_https_url(s, ACME_URL_MAX);
}

/* printable ASCII, 1..max bytes */
static bool printable(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || (unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
			return false;
	return n > 0;
}

/* ---- JSON helpers ---- */

static json_t *load_object(const char *what, const char *body, size_t len, size_t depth, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j;

	if (!body || len > ACME_JSON_MAX) {
		fail(err, errlen, "%s: larger than %u bytes", what, ACME_JSON_MAX);
		return NULL;
	}
	if (!json_depth_ok(body, len, (unsigned)depth)) {
		fail(err, errlen, "%s: nested deeper than %zu levels", what, depth);
		return NULL;
	}
	/* the parser's message would quote the CA's bytes: line and column only */
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		fail(err, errlen, "%s: not JSON (line %d, column %d)", what, je.line, je.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		fail(err, errlen, "%s: not a JSON object", what);
		return NULL;
	}
	return j;
}

/* A string member of at most max bytes: 1 with *out, 0 when absent and not
 * required, -1 with err. */
/* The member key, or NULL with *r 0 (absent) or -1 (absent but required,
 * with err). */
static json_t *member(json_t *o, const char *key, bool required, int *r, const char *what, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*r = !v && required ? fail(err, errlen, "%s: %s missing", what, key) : 0;
	return v;
}

static int get_str(json_t *o, const char *key, bool required, size_t max, const char **out, const char *what,
		   char *err, size_t errlen)
{
	int r;
	json_t *v = member(o, key, required, &r, what, err, errlen);

	*out = NULL;
	if (!v)
		return r;
	if (!json_is_string(v))
		return fail(err, errlen, "%s: %s not a string", what, key);
	if (json_string_length(v) > max)
		return fail(err, errlen, "%s: %s longer than %zu bytes", what, key, max);
	*out = json_string_value(v);
	return 1;
}

static int get_url(json_t *o, const char *key, bool required, const char **out, const char *what, char *err,
		   size_t errlen)
{
	int r = get_str(o, key, required, ACME_URL_MAX, out, what, err, errlen);

	if (r == 1 && !acme_url_ok(*out))
		return fail(err, errlen, "%s: %s not an https URL", what, key);
	return r;
}

/* printable ASCII text, for URIs that need not be https (a data: terms of service) */
static int get_uri(json_t *o, const char *key, const char **out, const char *what, char *err, size_t errlen)
{
	int r = get_str(o, key, false, ACME_URL_MAX, out, what, err, errlen);

	if (r == 1 && !printable(*out, ACME_URL_MAX))
		return fail(err, errlen, "%s: %s not a URI", what, key);
	return r;
}

static int get_time(json_t *o, const char *key, int64_t *out, const char *what, char *err, size_t errlen)
{
	const char *s;
	int r = get_str(o, key, false, 64, &s, what, err, errlen);

	*out = 0;
	if (r == 1 && acme_rfc3339_time(s, out) != 0)
		return fail(err, errlen, "%s: %s not an RFC 3339 date-time", what, key);
	return r;
}

/* An array member of at most max elements: its size, -1 with err (absent
 * and required, not an array, too long); 0 when absent. */
static long get_array(json_t *o, const char *key, bool required, size_t max, json_t **out, const char *what,
		      char *err, size_t errlen)
{
	int r;
	json_t *v = member(o, key, required, &r, what, err, errlen);

	*out = v;
	if (!v)
		return r;
	if (!json_is_array(v))
		return fail(err, errlen, "%s: %s not an array", what, key);
	if (json_array_size(v) > max)
		return fail(err, errlen, "%s: %s has more than %zu elements", what, key, max);
	return (long)json_array_size(v);
}

/* The elements of an array member (absent and not required: none), each
 * parsed by fn(element, &(*arr)[i], "what: key[i]") into *arr (to free,
 * with *count elements begun even when -1 is returned): 0, or -1 with err. */
typedef int (*element_fn)(json_t *e, void *out, const char *at, char *err, size_t errlen);
static int get_elements(json_t *o, const char *key, bool required, size_t max, size_t size, element_fn fn,
			void **arr, size_t *count, const char *what, char *err, size_t errlen)
{
	json_t *a;
	long n = get_array(o, key, required, max, &a, what, err, errlen);
	char at[AT_MAX];

	*arr = NULL;
	*count = 0;
	if (n <= 0)
		return (int)n;
	if (!(*arr = calloc((size_t)n, size)))
		return fail(err, errlen, "%s: out of memory", what);
	for (size_t i = 0; i < (size_t)n; i++) {
		at_path(at, "%s: %s[%zu]", what, key, i);
		*count = i + 1;
		if (fn(json_array_get(a, i), (char *)*arr + i * size, at, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* text for a log line: at most ACME_DETAIL_MAX bytes cut on a UTF-8
 * boundary, control characters as '?'; stored back into the document */
static const char *sanitized(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	char *copy;

	if (n > ACME_DETAIL_MAX) {
		n = ACME_DETAIL_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	copy = malloc(n + 1);
	if (!copy)
		return NULL;
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	copy[n] = '\0';
	if (json_object_set_new(o, key, json_string(copy)) != 0) {
		free(copy);
		return NULL;
	}
	free(copy);
	return json_string_value(json_object_get(o, key));
}

/* ---- JWK ---- */

/* a base64url member decoding to min..max bytes, first byte non-zero when
 * no_lead_zero (RFC 7518's minimal integers) */
static int jwk_coord(json_t *jwk, const char *key, size_t min, size_t max, bool no_lead_zero, char *err,
		     size_t errlen)
{
	uint8_t buf[1024];
	const char *s;
	size_t n;

	if (get_str(jwk, key, true, 2048, &s, "jwk", err, errlen) != 1)
		return -1;
	if (acme_b64url_decode(s, strlen(s), buf, sizeof buf, &n) != 0)
		return fail(err, errlen, "jwk: %s not base64url", key);
	if (n < min || n > max || (no_lead_zero && buf[0] == 0))
		return fail(err, errlen, "jwk: %s has the wrong size", key);
	return 0;
}

/* A public JWK of a kind the account keys use: the parsed object, or NULL
 * with err. */
static json_t *jwk_load(const char *jwk, size_t len, char *err, size_t errlen)
{
	static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
	json_t *j = load_object("jwk", jwk, len, 2, err, errlen);
	const char *kty, *crv;

	if (!j)
		return NULL;
	for (size_t i = 0; i < sizeof private_members / sizeof private_members[0]; i++)
		if (json_object_get(j, private_members[i])) {
			fail(err, errlen, "jwk: has the private member %s", private_members[i]);
			goto bad;
		}
	if (get_str(j, "kty", true, 8, &kty, "jwk", err, errlen) != 1)
		goto bad;
	if (strcmp(kty, "EC") == 0) {
		size_t size;

		if (get_str(j, "crv", true, 8, &crv, "jwk", err, errlen) != 1)
			goto bad;
		if (strcmp(crv, "P-256") == 0)
			size = 32;
		else if (strcmp(crv, "P-384") == 0)
			size = 48;
		else {
			fail(err, errlen, "jwk: crv not P-256 or P-384");
			goto bad;
		}
		if (jwk_coord(j, "x", size, size, false, err, errlen) || jwk_coord(j, "y", size, size, false, err, errlen))
			goto bad;
	} else if (strcmp(kty, "RSA") == 0) {
		if (jwk_coord(j, "n", 256, 1024, true, err, errlen) || jwk_coord(j, "e", 1, 8, true, err, errlen))
			goto bad;
	} else {
		fail(err, errlen, "jwk: kty not EC or RSA");
		goto bad;
	}
	return j;
bad:
	json_decref(j);
	return NULL;
}

static void sha256_b64url(const void *p, size_t n, char out[ACME_THUMBPRINT_LEN + 1])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256(p, n, md);
	acme_b64url_encode(md, sizeof md, out);
}

int acme_jwk_thumbprint(const char *jwk, size_t len, char out[ACME_THUMBPRINT_LEN + 1], char *err, size_t errlen)
{
	json_t *j = jwk_load(jwk, len, err, errlen);
	char *canon;
	int n;

	if (!j)
		return -1;
	/* RFC 7638 3.2: the required members in lexicographic order, no
	 * whitespace; every value is base64url or a fixed name, nothing to escape */
	if (strcmp(json_string_value(json_object_get(j, "kty")), "EC") == 0)
		n = asprintf(&canon, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
			     json_string_value(json_object_get(j, "crv")), json_string_value(json_object_get(j, "x")),
			     json_string_value(json_object_get(j, "y")));
	else
		n = asprintf(&canon, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
			     json_string_value(json_object_get(j, "e")), json_string_value(json_object_get(j, "n")));
	json_decref(j);
	if (n < 0)
		return fail(err, errlen, "jwk: out of memory");
	sha256_b64url(canon, (size_t)n, out);
	free(canon);
	return 0;
}

int acme_key_authorization(const char *token, const char *thumbprint, char out[ACME_KEYAUTH_MAX])
{
	if (!token || !thumbprint || !acme_b64url_chars(token, ACME_TOKEN_MAX) ||
	    strlen(thumbprint) != ACME_THUMBPRINT_LEN || !acme_b64url_chars(thumbprint, ACME_THUMBPRINT_LEN))
		return -1;
	snprintf(out, ACME_KEYAUTH_MAX, "%s.%s", token, thumbprint);
	return 0;
}

void acme_dns01_txt(const char *key_authorization, char out[ACME_THUMBPRINT_LEN + 1])
{
	sha256_b64url(key_authorization, strlen(key_authorization), out);
}

int acme_dns_persist_value(const char *issuer_domain, const char *account_url, bool wildcard, char *out,
			   size_t cap)
{
	size_t n = issuer_domain ? strlen(issuer_domain) : 0;
	int len;

	/* a DNS name: letters, digits, hyphens and dots, no empty label */
	if (n == 0 || n > 253 || issuer_domain[0] == '.' || issuer_domain[n - 1] == '.' ||
	    strstr(issuer_domain, "..") ||
	    strspn(issuer_domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n ||
	    !account_url || !acme_url_ok(account_url) || strpbrk(account_url, "; \"\\"))
		return -1;
	len = snprintf(out, cap, "%s; accounturi=%s%s", issuer_domain, account_url, wildcard ? "; policy=wildcard" : "");
	return len < 0 || (size_t)len >= cap ? -1 : 0;
}

/* ---- JWS ---- */

static bool alg_ok(const char *alg)
{
	return alg && (strcmp(alg, "ES256") == 0 || strcmp(alg, "ES384") == 0 || strcmp(alg, "RS256") == 0 ||
		       strcmp(alg, "HS256") == 0);
}

void acme_jws_free(struct acme_jws *j)
{
	free(j->protected_b64);
	free(j->payload_b64);
	free(j->signing_input);
	memset(j, 0, sizeof *j);
}

int acme_jws_from_parts(struct acme_jws *j, const char *alg, const char *protected_json, const uint8_t *payload,
			size_t payload_len, char *err, size_t errlen)
{
	json_t *hdr;
	const char *halg;
	size_t pl, yl;

	memset(j, 0, sizeof *j);
	if (!alg_ok(alg))
		return fail(err, errlen, "jws: alg not ES256, ES384, RS256 or HS256");
	hdr = load_object("jws: protected header", protected_json, strlen(protected_json), 4, err, errlen);
	if (!hdr)
		return -1;
	if (get_str(hdr, "alg", true, 8, &halg, "jws: protected header", err, errlen) != 1 || strcmp(halg, alg) != 0) {
		json_decref(hdr);
		return fail(err, errlen, "jws: protected header's alg is not %s", alg);
	}
	json_decref(hdr);
	snprintf(j->alg, sizeof j->alg, "%s", alg);
	pl = strlen(protected_json);
	j->protected_b64 = acme_b64url((const uint8_t *)protected_json, pl);
	j->payload_b64 = acme_b64url(payload, payload_len);
	if (!j->protected_b64 || !j->payload_b64)
		goto oom;
	pl = strlen(j->protected_b64);
	yl = strlen(j->payload_b64);
	j->signing_input = malloc(pl + 1 + yl + 1);
	if (!j->signing_input)
		goto oom;
	memcpy(j->signing_input, j->protected_b64, pl);
	j->signing_input[pl] = '.';
	memcpy(j->signing_input + pl + 1, j->payload_b64, yl + 1);
	return 0;
oom:
	acme_jws_free(j);
	return fail(err, errlen, "jws: out of memory");
}

/* the header (stolen) and payload text as a JWS */
static int jws_make(struct acme_jws *j, const char *alg, json_t *hdr, const char *payload, size_t payload_len,
		    char *err, size_t errlen)
{
	char *text = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
	int r;

	json_decref(hdr);
	if (!text) {
		memset(j, 0, sizeof *j);
		return fail(err, errlen, "jws: out of memory");
	}
	r = acme_jws_from_parts(j, alg, text, (const uint8_t *)payload, payload_len, err, errlen);
	free(text);
	return r;
}

int acme_jws_request(struct acme_jws *j, const char *alg, const char *jwk, const char *kid, const char *nonce,
		     const char *url, const char *payload, char *err, size_t errlen)
{
	json_t *hdr, *key = NULL;

	memset(j, 0, sizeof *j);
	if (!alg_ok(alg) || strcmp(alg, "HS256") == 0)
		return fail(err, errlen, "jws: alg not ES256, ES384 or RS256");
	if (!jwk == !kid)
		return fail(err, errlen, "jws: needs either a jwk or a kid");
	if (kid && !acme_url_ok(kid))
		return fail(err, errlen, "jws: kid not an https URL");
	if (!acme_nonce_ok(nonce))
		return fail(err, errlen, "jws: nonce not base64url");
	if (!acme_url_ok(url))
		return fail(err, errlen, "jws: url not an https URL");
	if (payload) {
		json_t *p = load_object("jws: payload", payload, strlen(payload), ACME_JSON_DEPTH, err, errlen);

		if (!p)
			return -1;
		json_decref(p);
	}
	if (jwk && !(key = jwk_load(jwk, strlen(jwk), err, errlen)))
		return -1;
	hdr = json_object();
	if (!hdr || json_object_set_new(hdr, "alg", json_string(alg)) ||
	    (key ? json_object_set_new(hdr, "jwk", key) : json_object_set_new(hdr, "kid", json_string(kid))) ||
	    json_object_set_new(hdr, "nonce", json_string(nonce)) || json_object_set_new(hdr, "url", json_string(url))) {
		json_decref(hdr);
		return fail(err, errlen, "jws: out of memory");
	}
	return jws_make(j, alg, hdr, payload ? payload : "", payload ? strlen(payload) : 0, err, errlen);
}

/* a JWK as compact JSON text (to free), NULL with err */
static char *jwk_text(const char *jwk, char *err, size_t errlen)
{
	json_t *j = jwk_load(jwk, strlen(jwk), err, errlen);
	char *s;

	if (!j)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		fail(err, errlen, "jwk: out of memory");
	return s;
}

int acme_jws_eab(struct acme_jws *j, const char *eab_kid, const char *new_account_url, const char *account_jwk,
		 char *err, size_t errlen)
{
	char *payload;
	json_t *hdr;
	int r;

	memset(j, 0, sizeof *j);
	if (!eab_kid || !printable(eab_kid, 256))
		return fail(err, errlen, "eab: kid not 1..256 printable characters");
	if (!acme_url_ok(new_account_url))
		return fail(err, errlen, "eab: url not an https URL");
	if (!account_jwk || !(payload = jwk_text(account_jwk, err, errlen)))
		return -1;
	hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", eab_kid, "url", new_account_url);
	r = jws_make(j, "HS256", hdr, payload, strlen(payload), err, errlen);
	free(payload);
	return r;
}

int acme_jws_key_change(struct acme_jws *j, const char *new_alg, const char *new_jwk, const char *key_change_url,
			const char *account_url, const char *old_jwk, char *err, size_t errlen)
{
	json_t *hdr, *newkey, *oldkey, *payload;
	char *text;
	int r;

	memset(j, 0, sizeof *j);
	if (!alg_ok(new_alg) || strcmp(new_alg, "HS256") == 0)
		return fail(err, errlen, "keyChange: alg not ES256, ES384 or RS256");
	if (!acme_url_ok(key_change_url) || !acme_url_ok(account_url))
		return fail(err, errlen, "keyChange: url or account not an https URL");
	if (!new_jwk || !old_jwk)
		return fail(err, errlen, "keyChange: needs both keys");
	if (!(newkey = jwk_load(new_jwk, strlen(new_jwk), err, errlen)))
		return -1;
	if (!(oldkey = jwk_load(old_jwk, strlen(old_jwk), err, errlen))) {
		json_decref(newkey);
		return -1;
	}
	payload = json_pack("{s:s, s:o}", "account", account_url, "oldKey", oldkey);
	text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	json_decref(payload);
	hdr = json_pack("{s:s, s:o, s:s}", "alg", new_alg, "jwk", newkey, "url", key_change_url);
	if (!text) {
		json_decref(hdr);
		return fail(err, errlen, "keyChange: out of memory");
	}
	r = jws_make(j, new_alg, hdr, text, strlen(text), err, errlen);
	free(text);
	return r;
}

char *acme_jws_finish(const struct acme_jws *j, const uint8_t *sig, size_t sig_len, char *err, size_t errlen)
{
	size_t lo, hi;
	char *s, *out;
	json_t *o;

	if (!j->signing_input) {
		fail(err, errlen, "jws: nothing to sign");
		return NULL;
	}
	if (strcmp(j->alg, "ES256") == 0)
		lo = hi = 64;
	else if (strcmp(j->alg, "ES384") == 0)
		lo = hi = 96;
	else if (strcmp(j->alg, "HS256") == 0)
		lo = hi = 32;
	else
		lo = 256, hi = 1024;
	if (!sig || sig_len < lo || sig_len > hi) {
		fail(err, errlen, "jws: a %s signature of %zu bytes", j->alg, sig_len);
		return NULL;
	}
	if (!(s = acme_b64url(sig, sig_len))) {
		fail(err, errlen, "jws: out of memory");
		return NULL;
	}
	o = json_pack("{s:s, s:s, s:s}", "protected", j->protected_b64, "payload", j->payload_b64, "signature", s);
	free(s);
	out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!out)
		fail(err, errlen, "jws: out of memory");
	return out;
}

/* ---- status, identifiers, problems ---- */

static const char *const status_names[] = {
	[ACME_STATUS_UNKNOWN] = "unknown", [ACME_STATUS_PENDING] = "pending",
	[ACME_STATUS_READY] = "ready",	   [ACME_STATUS_PROCESSING] = "processing",
	[ACME_STATUS_VALID] = "valid",	   [ACME_STATUS_INVALID] = "invalid",
	[ACME_STATUS_DEACTIVATED] = "deactivated", [ACME_STATUS_EXPIRED] = "expired",
	[ACME_STATUS_REVOKED] = "revoked",
};

const char *acme_status_name(enum acme_status s)
{
	return (size_t)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "unknown";
}

#define S(x) (1u << ACME_STATUS_##x)

/* the status member, one of those in allowed (a mask of S()) */
static int get_status(json_t *o, unsigned allowed, enum acme_status *out, const char *what, char *err, size_t errlen)
{
	const char *s;

	if (get_str(o, "status", true, 16, &s, what, err, errlen) != 1)
		return -1;
	for (unsigned i = 1; i < sizeof status_names / sizeof status_names[0]; i++)
		if ((allowed & (1u << i)) && strcmp(s, status_names[i]) == 0) {
			*out = (enum acme_status)i;
			return 0;
		}
	return fail(err, errlen, "%s: status not one an object of its kind has", what);
}

static int parse_identifier(json_t *o, bool allow_wildcard, struct acme_identifier *id, const char *what, char *err,
			    size_t errlen)
{
	if (!json_is_object(o))
		return fail(err, errlen, "%s not an object", what);
	if (get_str(o, "type", true, 8, &id->type, what, err, errlen) != 1 ||
	    get_str(o, "value", true, 253, &id->value, what, err, errlen) != 1)
		return -1;
	if (strcmp(id->type, "dns") == 0) {
		if (!valid_dns_name(id->value, allow_wildcard))
			return fail(err, errlen, "%s: value not a DNS name", what);
	} else if (strcmp(id->type, "ip") == 0) {
		if (!valid_ip_address(id->value))
			return fail(err, errlen, "%s: value not an IP address", what);
	} else
		return fail(err, errlen, "%s: type not dns or ip", what);
	return 0;
}

static int identifier_elem(json_t *e, void *out, const char *at, char *err, size_t errlen)
{
	return parse_identifier(e, true, out, at, err, errlen);
}

static int url_elem(json_t *e, void *out, const char *at, char *err, size_t errlen)
{
	const char *u = json_string_value(e);

	if (!u || !acme_url_ok(u))
		return fail(err, errlen, "%s: not an https URL", at);
	*(const char **)out = u;
	return 0;
}

static const char *const error_names[] = {
	[ACME_ERR_ACCOUNT_DOES_NOT_EXIST] = "accountDoesNotExist",
	[ACME_ERR_ALREADY_REPLACED] = "alreadyReplaced",
	[ACME_ERR_ALREADY_REVOKED] = "alreadyRevoked",
	[ACME_ERR_BAD_CSR] = "badCSR",
	[ACME_ERR_BAD_NONCE] = "badNonce",
	[ACME_ERR_BAD_PUBLIC_KEY] = "badPublicKey",
	[ACME_ERR_BAD_REVOCATION_REASON] = "badRevocationReason",
	[ACME_ERR_BAD_SIGNATURE_ALGORITHM] = "badSignatureAlgorithm",
	[ACME_ERR_CAA] = "caa",
	[ACME_ERR_COMPOUND] = "compound",
	[ACME_ERR_CONNECTION] = "connection",
	[ACME_ERR_DNS] = "dns",
	[ACME_ERR_EXTERNAL_ACCOUNT_REQUIRED] = "externalAccountRequired",
	[ACME_ERR_INCORRECT_RESPONSE] = "incorrectResponse",
	[ACME_ERR_INVALID_CONTACT] = "invalidContact",
	[ACME_ERR_INVALID_PROFILE] = "invalidProfile",
	[ACME_ERR_MALFORMED] = "malformed",
	[ACME_ERR_ORDER_NOT_READY] = "orderNotReady",
	[ACME_ERR_RATE_LIMITED] = "rateLimited",
	[ACME_ERR_REJECTED_IDENTIFIER] = "rejectedIdentifier",
	[ACME_ERR_SERVER_INTERNAL] = "serverInternal",
	[ACME_ERR_TLS] = "tls",
	[ACME_ERR_UNAUTHORIZED] = "unauthorized",
	[ACME_ERR_UNSUPPORTED_CONTACT] = "unsupportedContact",
	[ACME_ERR_UNSUPPORTED_IDENTIFIER] = "unsupportedIdentifier",
	[ACME_ERR_USER_ACTION_REQUIRED] = "userActionRequired",
};

enum acme_error acme_error_of(const char *type)
{
	static const char prefix[] = "urn:ietf:params:acme:error:";

	if (!type || strncmp(type, prefix, sizeof prefix - 1) != 0)
		return ACME_ERR_OTHER;
	type += sizeof prefix - 1;
	for (size_t i = 1; i < sizeof error_names / sizeof error_names[0]; i++)
		if (strcmp(type, error_names[i]) == 0)
			return (enum acme_error)i;
	return ACME_ERR_OTHER;
}

bool acme_error_transient(enum acme_error e)
{
	return e == ACME_ERR_BAD_NONCE || e == ACME_ERR_RATE_LIMITED || e == ACME_ERR_SERVER_INTERNAL ||
	       e == ACME_ERR_CONNECTION || e == ACME_ERR_DNS || e == ACME_ERR_TLS;
}

/* a problem type or detail member: 1 with *out, 0 absent, -1 */
static int problem_text(json_t *o, const char *key, const char **out, const char *what, char *err, size_t errlen)
{
	const char *s;
	int r = get_str(o, key, false, ACME_JSON_MAX, &s, what, err, errlen);

	*out = r == 1 ? sanitized(o, key) : NULL;
	if (r == 1 && !*out)
		return fail(err, errlen, "%s: out of memory", what);
	return r;
}

/* type (a URI; "about:blank" when absent and not required), its kind, and
 * detail ("" when absent): what a problem and a subproblem share */
static int problem_head(json_t *o, bool type_required, const char **type, enum acme_error *kind,
			const char **detail, const char *what, char *err, size_t errlen)
{
	if (!json_is_object(o))
		return fail(err, errlen, "%s not an object", what);
	if (get_str(o, "type", type_required, 256, type, what, err, errlen) < 0)
		return -1;
	if (*type && !printable(*type, 256))
		return fail(err, errlen, "%s: type not a URI", what);
	if (!*type)
		*type = "about:blank";
	*kind = acme_error_of(*type);
	if (problem_text(o, "detail", detail, what, err, errlen) < 0)
		return -1;
	if (!*detail)
		*detail = "";
	return 0;
}

static int subproblem_elem(json_t *e, void *out, const char *at, char *err, size_t errlen)
{
	struct acme_subproblem *s = out;
	json_t *id;
	char idat[AT_MAX];

	if (problem_head(e, true, &s->type, &s->kind, &s->detail, at, err, errlen) != 0)
		return -1;
	if ((id = json_object_get(e, "identifier"))) {
		at_path(idat, "%s: identifier", at);
		if (parse_identifier(id, true, &s->identifier, idat, err, errlen) != 0)
			return -1;
		s->has_identifier = true;
	}
	return 0;
}

static int problem_from(json_t *o, struct acme_problem *p, const char *what, char *err, size_t errlen)
{
	json_t *v;

	memset(p, 0, sizeof *p);
	if (problem_head(o, false, &p->type, &p->kind, &p->detail, what, err, errlen) != 0)
		return -1;
	if ((v = json_object_get(o, "status"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 100 || json_integer_value(v) > 599)
			return fail(err, errlen, "%s: status not an HTTP status", what);
		p->status = (int)json_integer_value(v);
	}
	if (get_elements(o, "subproblems", false, ACME_SUBPROBLEMS_MAX, sizeof *p->sub, subproblem_elem,
			 (void **)&p->sub, &p->nsub, what, err, errlen) != 0) {
		free(p->sub);
		p->sub = NULL;
		p->nsub = 0;
		return -1;
	}
	return 0;
}

int acme_parse_problem(const char *body, size_t len, struct acme_problem *p, char *err, size_t errlen)
{
	json_t *j = load_object("problem", body, len, ACME_JSON_DEPTH, err, errlen);

	memset(p, 0, sizeof *p);
	if (!j)
		return -1;
	if (problem_from(j, p, "problem", err, errlen) != 0) {
		json_decref(j);
		memset(p, 0, sizeof *p);
		return -1;
	}
	p->doc_ = j;
	return 0;
}

void acme_problem_free(struct acme_problem *p)
{
	free(p->sub);
	json_decref(p->doc_);
	memset(p, 0, sizeof *p);
}

/* an optional "error" member */
static int error_member(json_t *o, bool *has, struct acme_problem *p, const char *what, char *err, size_t errlen)
{
	json_t *e = json_object_get(o, "error");
	char at[AT_MAX];

	*has = false;
	memset(p, 0, sizeof *p);
	if (!e)
		return 0;
	at_path(at, "%s: error", what);
	if (problem_from(e, p, at, err, errlen) != 0)
		return -1;
	*has = true;
	return 0;
}

/* ---- directory and account ---- */

static bool profile_name_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= 64 || !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
				 (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '_' || s[n] == '.'))
			return false;
	return n > 0;
}

int acme_parse_directory(const char *body, size_t len, struct acme_directory *d, char *err, size_t errlen)
{
	static const char W[] = "directory";
	json_t *j = load_object(W, body, len, ACME_JSON_DEPTH, err, errlen), *meta, *v;

	memset(d, 0, sizeof *d);
	if (!j)
		return -1;
	if (get_url(j, "newNonce", true, &d->new_nonce, W, err, errlen) < 0 ||
	    get_url(j, "newAccount", true, &d->new_account, W, err, errlen) < 0 ||
	    get_url(j, "newOrder", true, &d->new_order, W, err, errlen) < 0 ||
	    get_url(j, "revokeCert", true, &d->revoke_cert, W, err, errlen) < 0 ||
	    get_url(j, "keyChange", true, &d->key_change, W, err, errlen) < 0 ||
	    get_url(j, "renewalInfo", false, &d->renewal_info, W, err, errlen) < 0)
		goto bad;
	if ((meta = json_object_get(j, "meta"))) {
		static const char M[] = "directory: meta";
		json_t *profiles;

		if (!json_is_object(meta)) {
			fail(err, errlen, "%s not an object", M);
			goto bad;
		}
		if (get_uri(meta, "termsOfService", &d->terms_of_service, M, err, errlen) < 0 ||
		    get_uri(meta, "website", &d->website, M, err, errlen) < 0)
			goto bad;
		if ((v = json_object_get(meta, "externalAccountRequired"))) {
			if (!json_is_boolean(v)) {
				fail(err, errlen, "%s: externalAccountRequired not a boolean", M);
				goto bad;
			}
			d->external_account_required = json_is_true(v);
		}
		if ((profiles = json_object_get(meta, "profiles"))) {
			const char *name;
			size_t i = 0;

			if (!json_is_object(profiles)) {
				fail(err, errlen, "%s: profiles not an object", M);
				goto bad;
			}
			if (json_object_size(profiles) > ACME_PROFILES_MAX) {
				fail(err, errlen, "%s: more than %d profiles", M, ACME_PROFILES_MAX);
				goto bad;
			}
			if (json_object_size(profiles) &&
			    !(d->profiles = calloc(json_object_size(profiles), sizeof *d->profiles))) {
				fail(err, errlen, "%s: out of memory", M);
				goto bad;
			}
			json_object_foreach(profiles, name, v) {
				if (!profile_name_ok(name)) {
					fail(err, errlen, "%s: profiles: a name not 1..64 of [A-Za-z0-9._-]", M);
					goto bad;
				}
				if (!json_is_string(v)) {
					fail(err, errlen, "%s: profiles: a description not a string", M);
					goto bad;
				}
				d->profiles[i].name = name;
				/* replacing the value of a member the loop is on keeps its place */
				if (!(d->profiles[i++].description = sanitized(profiles, name))) {
					fail(err, errlen, "%s: out of memory", M);
					goto bad;
				}
			}
			d->nprofiles = i;
		}
	}
	d->doc_ = j;
	return 0;
bad:
	free(d->profiles);
	json_decref(j);
	memset(d, 0, sizeof *d);
	return -1;
}

void acme_directory_free(struct acme_directory *d)
{
	free(d->profiles);
	json_decref(d->doc_);
	memset(d, 0, sizeof *d);
}

const struct acme_profile *acme_directory_profile(const struct acme_directory *d, const char *name)
{
	for (size_t i = 0; name && i < d->nprofiles; i++)
		if (strcmp(d->profiles[i].name, name) == 0)
			return &d->profiles[i];
	return NULL;
}

int acme_parse_account(const char *body, size_t len, struct acme_account *a, char *err, size_t errlen)
{
	json_t *j = load_object("account", body, len, ACME_JSON_DEPTH, err, errlen);

	memset(a, 0, sizeof *a);
	if (!j)
		return -1;
	if (get_status(j, S(VALID) | S(DEACTIVATED) | S(REVOKED), &a->status, "account", err, errlen) != 0 ||
	    get_url(j, "orders", false, &a->orders, "account", err, errlen) < 0) {
		json_decref(j);
		memset(a, 0, sizeof *a);
		return -1;
	}
	a->doc_ = j;
	return 0;
}

void acme_account_free(struct acme_account *a)
{
	json_decref(a->doc_);
	memset(a, 0, sizeof *a);
}

/* ---- order ---- */

void acme_order_free(struct acme_order *o)
{
	free(o->identifiers);
	free(o->authorizations);
	free(o->error.sub);
	json_decref(o->doc_);
	memset(o, 0, sizeof *o);
}

int acme_parse_order(const char *body, size_t len, struct acme_order *o, char *err, size_t errlen)
{
	static const char W[] = "order";
	json_t *j = load_object(W, body, len, ACME_JSON_DEPTH, err, errlen);

	memset(o, 0, sizeof *o);
	if (!j)
		return -1;
	o->doc_ = j;
	if (get_status(j, S(PENDING) | S(READY) | S(PROCESSING) | S(VALID) | S(INVALID), &o->status, W, err,
		       errlen) != 0 ||
	    get_time(j, "expires", &o->expires, W, err, errlen) < 0 ||
	    get_url(j, "finalize", true, &o->finalize, W, err, errlen) < 0 ||
	    get_url(j, "certificate", false, &o->certificate, W, err, errlen) < 0 ||
	    error_member(j, &o->has_error, &o->error, W, err, errlen) != 0)
		goto bad;
	if (o->status == ACME_STATUS_VALID && !o->certificate) {
		fail(err, errlen, "order: valid without a certificate URL");
		goto bad;
	}
	if (get_elements(j, "identifiers", true, ACME_IDENTIFIERS_MAX, sizeof *o->identifiers, identifier_elem,
			 (void **)&o->identifiers, &o->nidentifiers, W, err, errlen) != 0 ||
	    get_elements(j, "authorizations", true, ACME_IDENTIFIERS_MAX, sizeof *o->authorizations, url_elem,
			 (void **)&o->authorizations, &o->nauthorizations, W, err, errlen) != 0)
		goto bad;
	if (o->nidentifiers == 0) {
		fail(err, errlen, "order: identifiers empty");
		goto bad;
	}
	if (o->nauthorizations == 0 && o->status == ACME_STATUS_PENDING) {
		fail(err, errlen, "order: pending without authorizations");
		goto bad;
	}
	return 0;
bad:
	acme_order_free(o);
	return -1;
}

/* ---- authorization and challenges ---- */

static bool challenge_type_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= 64 || !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
			return false;
	return n > 0;
}

static void challenge_free(struct acme_challenge *c)
{
	free(c->error.sub);
	json_decref(c->doc_);
	memset(c, 0, sizeof *c);
}

static int challenge_from(json_t *o, struct acme_challenge *c, const char *what, char *err, size_t errlen)
{
	json_t *names;

	memset(c, 0, sizeof *c);
	if (!json_is_object(o))
		return fail(err, errlen, "%s not an object", what);
	if (get_str(o, "type", true, 64, &c->type, what, err, errlen) != 1)
		return -1;
	if (!challenge_type_ok(c->type))
		return fail(err, errlen, "%s: type not 1..64 of [a-z0-9-]", what);
	if (get_url(o, "url", true, &c->url, what, err, errlen) < 0 ||
	    get_status(o, S(PENDING) | S(PROCESSING) | S(VALID) | S(INVALID), &c->status, what, err, errlen) != 0)
		return -1;
	bool token_needed = strcmp(c->type, "http-01") == 0 || strcmp(c->type, "dns-01") == 0 ||
			    strcmp(c->type, "tls-alpn-01") == 0;
	if (get_str(o, "token", token_needed, ACME_TOKEN_MAX, &c->token, what, err, errlen) < 0)
		return -1;
	if (c->token && !acme_b64url_chars(c->token, ACME_TOKEN_MAX))
		return fail(err, errlen, "%s: token not base64url", what);
	if (error_member(o, &c->has_error, &c->error, what, err, errlen) != 0)
		return -1;
	c->raw = o;
	names = json_object_get(o, "issuer-domain-names");
	if (strcmp(c->type, "dns-persist-01") == 0 && json_is_array(names) &&
	    json_array_size(names) <= ACME_ISSUER_DOMAINS_MAX) {
		size_t i;

		for (i = 0; i < json_array_size(names); i++) {
			const char *s = json_string_value(json_array_get(names, i));

			if (!s || !valid_dns_name(s, false))
				break;
			c->issuer_domain_names[i] = s;
		}
		if (i == json_array_size(names))
			c->nissuer_domain_names = i;
		else
			memset(c->issuer_domain_names, 0, sizeof c->issuer_domain_names);
	}
	return 0;
}

static int challenge_elem(json_t *e, void *out, const char *at, char *err, size_t errlen)
{
	return challenge_from(e, out, at, err, errlen);
}

int acme_parse_challenge(const char *body, size_t len, struct acme_challenge *c, char *err, size_t errlen)
{
	json_t *j = load_object("challenge", body, len, ACME_JSON_DEPTH, err, errlen);

	memset(c, 0, sizeof *c);
	if (!j)
		return -1;
	if (challenge_from(j, c, "challenge", err, errlen) != 0) {
		free(c->error.sub);
		memset(c, 0, sizeof *c);
		json_decref(j);
		return -1;
	}
	c->doc_ = j;
	return 0;
}

void acme_challenge_free(struct acme_challenge *c)
{
	challenge_free(c);
}

void acme_authz_free(struct acme_authz *a)
{
	for (size_t i = 0; a->challenges && i < a->nchallenges; i++)
		challenge_free(&a->challenges[i]);
	free(a->challenges);
	json_decref(a->doc_);
	memset(a, 0, sizeof *a);
}

int acme_parse_authz(const char *body, size_t len, struct acme_authz *a, char *err, size_t errlen)
{
	static const char W[] = "authorization";
	json_t *j = load_object(W, body, len, ACME_JSON_DEPTH, err, errlen), *v;

	memset(a, 0, sizeof *a);
	if (!j)
		return -1;
	a->doc_ = j;
	if (get_status(j, S(PENDING) | S(VALID) | S(INVALID) | S(DEACTIVATED) | S(EXPIRED) | S(REVOKED), &a->status,
		       W, err, errlen) != 0 ||
	    get_time(j, "expires", &a->expires, W, err, errlen) < 0)
		goto bad;
	if (!(v = json_object_get(j, "identifier"))) {
		fail(err, errlen, "authorization: identifier missing");
		goto bad;
	}
	if (parse_identifier(v, false, &a->identifier, "authorization: identifier", err, errlen) != 0)
		goto bad;
	if ((v = json_object_get(j, "wildcard"))) {
		if (!json_is_boolean(v)) {
			fail(err, errlen, "authorization: wildcard not a boolean");
			goto bad;
		}
		a->wildcard = json_is_true(v);
	}
	if (get_elements(j, "challenges", true, ACME_CHALLENGES_MAX, sizeof *a->challenges, challenge_elem,
			 (void **)&a->challenges, &a->nchallenges, W, err, errlen) != 0)
		goto bad;
	if (a->nchallenges == 0 && a->status == ACME_STATUS_PENDING) {
		fail(err, errlen, "authorization: pending without challenges");
		goto bad;
	}
	return 0;
bad:
	acme_authz_free(a);
	return -1;
}

const struct acme_challenge *acme_authz_challenge(const struct acme_authz *a, const char *type)
{
	for (size_t i = 0; type && i < a->nchallenges; i++)
		if (strcmp(a->challenges[i].type, type) == 0)
			return &a->challenges[i];
	return NULL;
}

/* ---- dates ---- */

/* days since 1970-01-01 of a proleptic Gregorian date */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int acme_rfc3339_time(const char *s, int64_t *out)
{
	const char *p;
	int64_t t;

	if (!s || !valid_rfc3339(s))
		return -1;
	t = days_from_civil(digits(s, 4), digits(s + 5, 2), digits(s + 8, 2)) * 86400 + digits(s + 11, 2) * 3600 +
	    digits(s + 14, 2) * 60 + digits(s + 17, 2);
	for (p = s + 19; *p == '.' || (*p >= '0' && *p <= '9'); p++)
		;
	if (*p == '+' || *p == '-') {
		int off = digits(p + 1, 2) * 3600 + digits(p + 4, 2) * 60;

		t += *p == '+' ? -off : off;
	}
	*out = t;
	return 0;
}

/* IMF-fixdate (RFC 9110 5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT" */
static int imf_fixdate(const char *s, int64_t *out)
{
	static const char days[] = "ThuFriSatSunMonTueWed"; /* from 1970-01-01, a Thursday */
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int d, m = -1, y, h, mi, sec;
	int64_t dn;

	if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
	    s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0)
		return -1;
	for (int i = 0; i < 12; i++)
		if (memcmp(s + 8, months + 3 * i, 3) == 0)
			m = i + 1;
	d = digits(s + 5, 2);
	y = digits(s + 12, 4);
	h = digits(s + 17, 2);
	mi = digits(s + 20, 2);
	sec = digits(s + 23, 2);
	if (m < 0 || d < 1 || d > mdays[m - 1] || y < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return -1;
	if (m == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0)))
		return -1;
	dn = days_from_civil(y, m, d);
	if (memcmp(s, days + 3 * (((dn % 7) + 7) % 7), 3) != 0)
		return -1;
	*out = dn * 86400 + h * 3600 + mi * 60 + sec;
	return 0;
}

int acme_retry_after(const char *value, int64_t now, uint32_t *seconds)
{
	char buf[40];
	size_t b = 0, e;
	int64_t v = 0;

	if (!value)
		return -1;
	e = strlen(value);
	while (b < e && (value[b] == ' ' || value[b] == '\t'))
		b++;
	while (e > b && (value[e - 1] == ' ' || value[e - 1] == '\t'))
		e--;
	if (e == b || e - b >= sizeof buf)
		return -1;
	memcpy(buf, value + b, e - b);
	buf[e - b] = '\0';
	if (buf[0] >= '0' && buf[0] <= '9') {
		for (const char *p = buf; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			if (v <= ACME_RETRY_AFTER_MAX)
				v = v * 10 + (*p - '0');
		}
	} else {
		int64_t t;

		if (imf_fixdate(buf, &t) != 0)
			return -1;
		v = t > now ? t - now : 0;
	}
	*seconds = (uint32_t)(v < ACME_RETRY_AFTER_MIN ? ACME_RETRY_AFTER_MIN
				: v > ACME_RETRY_AFTER_MAX ? ACME_RETRY_AFTER_MAX : v);
	return 0;
}

/* ---- Link ---- */

static bool tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* the link target as an https URL (to free), NULL when it is not one */
static char *link_target(const char *t, size_t n, const char *base_url)
{
	char *out;

	if (n > ACME_URL_MAX)
		return NULL;
	if (n > 0 && t[0] == '/' && (n == 1 || t[1] != '/')) {
		size_t origin;

		if (!base_url || !acme_url_ok(base_url))
			return NULL;
		origin = 8 + strcspn(base_url + 8, "/?#");
		if (!(out = malloc(origin + n + 1)))
			return NULL;
		memcpy(out, base_url, origin);
		memcpy(out + origin, t, n);
		out[origin + n] = '\0';
	} else {
		if (!(out = strndup(t, n)))
			return NULL;
	}
	if (!acme_url_ok(out)) {
		free(out);
		return NULL;
	}
	return out;
}

static int link_keep(struct acme_links *l, const char *rel, size_t rel_len, const char *t, size_t tn,
		     const char *base_url, char *err, size_t errlen)
{
	/* a rel value is a space-separated list of relation types */
	for (size_t i = 0; i < rel_len;) {
		size_t k = i;
		char **slot = NULL;

		while (k < rel_len && rel[k] != ' ')
			k++;
		if (k - i == 2 && strncasecmp(rel + i, "up", 2) == 0)
			slot = l->up ? NULL : &l->up;
		else if (k - i == 5 && strncasecmp(rel + i, "index", 5) == 0)
			slot = l->index ? NULL : &l->index;
		else if (k - i == 9 && strncasecmp(rel + i, "alternate", 9) == 0)
			slot = l->nalternate < ACME_ALTERNATES_MAX ? &l->alternate[l->nalternate] : NULL;
		if (slot) {
			if (!(*slot = link_target(t, tn, base_url)))
				return fail(err, errlen, "Link: a target not an https URL");
			if (slot == &l->alternate[l->nalternate])
				l->nalternate++;
		}
		i = k + 1;
	}
	return 0;
}

int acme_links_add(struct acme_links *l, const char *value, const char *base_url, char *err, size_t errlen)
{
	const char *p = value;

	if (!value)
		return 0;
	if (strlen(value) > 64 * 1024)
		return fail(err, errlen, "Link: longer than 64 KiB");
	for (;;) {
		const char *t, *gt;
		char rel[256];
		size_t rel_len = 0;
		bool have_rel = false;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			return 0;
		if (*p != '<')
			return fail(err, errlen, "Link: a link-value not starting with '<'");
		t = p + 1;
		if (!(gt = strchr(t, '>')))
			return fail(err, errlen, "Link: a target without '>'");
		for (const char *q = t; q < gt; q++)
			if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == '<')
				return fail(err, errlen, "Link: a target with a space or a control character");
		p = ows(gt + 1);
		while (*p == ';') {
			const char *name = p = ows(p + 1);
			size_t name_len;
			char val[256];
			size_t vl = 0;

			while (tchar(*p))
				p++;
			if ((name_len = (size_t)(p - name)) == 0)
				return fail(err, errlen, "Link: a parameter without a name");
			p = ows(p);
			if (*p == '=') {
				p = ows(p + 1);
				if (*p == '"') {
					for (p++; *p != '"'; p++) {
						if (*p == '\\' && p[1])
							p++;
						if (!*p || (unsigned char)*p < 0x20 || *p == 0x7f)
							return fail(err, errlen, "Link: an unterminated quoted string");
						if (vl + 1 < sizeof val)
							val[vl++] = *p;
					}
					p++;
				} else {
					const char *v = p;

					while (tchar(*p))
						p++;
					if (p == v)
						return fail(err, errlen, "Link: a parameter without a value");
					vl = (size_t)(p - v) < sizeof val - 1 ? (size_t)(p - v) : sizeof val - 1;
					memcpy(val, v, vl);
				}
			}
			/* RFC 8288 3.3: only the first rel counts */
			if (name_len == 3 && strncasecmp(name, "rel", 3) == 0 && !have_rel) {
				have_rel = true;
				memcpy(rel, val, vl);
				rel_len = vl;
			}
			p = ows(p);
		}
		if (*p && *p != ',')
			return fail(err, errlen, "Link: unexpected characters after a link-value");
		if (have_rel && link_keep(l, rel, rel_len, t, (size_t)(gt - t), base_url, err, errlen) != 0)
			return -1;
	}
}

void acme_links_free(struct acme_links *l)
{
	free(l->up);
	free(l->index);
	for (size_t i = 0; i < l->nalternate; i++)
		free(l->alternate[i]);
	memset(l, 0, sizeof *l);
}

/* ---- PEM chain ---- */

void acme_chain_free(struct acme_chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->der[i]);
	memset(c, 0, sizeof *c);
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* the issuer CN of x as UTF-8, control characters as '?' ("" when none) */
static void issuer_cn(X509 *x, char *out, size_t outlen)
{
	X509_NAME *name = X509_get_issuer_name(x);
	int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	int n;

	out[0] = '\0';
	if (idx < 0)
		return;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
	if (n < 0)
		return;
	if ((size_t)n >= outlen)
		n = (int)outlen - 1;
	for (int i = 0; i < n; i++)
		out[i] = utf8[i] < 0x20 || utf8[i] == 0x7f ? '?' : (char)utf8[i];
	out[n] = '\0';
	OPENSSL_free(utf8);
}

int acme_parse_pem_chain(const char *pem, size_t len, struct acme_chain *c, char *err, size_t errlen)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----", end_marker[] = "-----END CERTIFICATE-----";
	const char *p = pem, *end = pem + len;
	X509 *certs[ACME_CHAIN_MAX] = {0};
	uint8_t *b64 = NULL;
	int r = -1;

	memset(c, 0, sizeof *c);
	if (!pem || len > ACME_CHAIN_PEM_MAX)
		return fail(err, errlen, "chain: larger than %u bytes", ACME_CHAIN_PEM_MAX);
	if (memchr(pem, '\0', len))
		return fail(err, errlen, "chain: a NUL byte");
	if (!(b64 = malloc(len + 1)))
		return fail(err, errlen, "chain: out of memory");
	for (;;) {
		const char *q, *stop;
		size_t n = 0, max, der_len;
		const uint8_t *dp;

		p = skip_space(p, end);
		if (p == end)
			break;
		if (c->n == ACME_CHAIN_MAX) {
			fail(err, errlen, "chain: more than %d certificates", ACME_CHAIN_MAX);
			goto out;
		}
		if ((size_t)(end - p) < sizeof begin - 1 || memcmp(p, begin, sizeof begin - 1) != 0) {
			fail(err, errlen, "chain: certificate %zu: text where a BEGIN CERTIFICATE line belongs", c->n);
			goto out;
		}
		p += sizeof begin - 1;
		if (p < end && *p == '\r')
			p++;
		if (p == end || *p != '\n') {
			fail(err, errlen, "chain: certificate %zu: BEGIN line not ended", c->n);
			goto out;
		}
		stop = memmem(p, (size_t)(end - p), end_marker, sizeof end_marker - 1);
		if (!stop) {
			fail(err, errlen, "chain: certificate %zu: no END CERTIFICATE line", c->n);
			goto out;
		}
		q = stop + sizeof end_marker - 1;
		if (q < end && *q != '\r' && *q != '\n') {
			fail(err, errlen, "chain: certificate %zu: END line not ended", c->n);
			goto out;
		}
		for (q = p; q < stop; q++)
			if (*q != '\r' && *q != '\n' && *q != ' ' && *q != '\t')
				b64[n++] = (uint8_t)*q;
		if (!EVP_DecodedLength(&max, n) || max == 0 || !(c->der[c->n] = malloc(max))) {
			fail(err, errlen, "chain: certificate %zu: not base64", c->n);
			goto out;
		}
		if (!EVP_DecodeBase64(c->der[c->n], &der_len, max, b64, n)) {
			free(c->der[c->n]);
			c->der[c->n] = NULL;
			fail(err, errlen, "chain: certificate %zu: not base64", c->n);
			goto out;
		}
		c->der_len[c->n] = der_len;
		c->n++;
		dp = c->der[c->n - 1];
		certs[c->n - 1] = d2i_X509(NULL, &dp, (long)der_len);
		if (!certs[c->n - 1] || dp != c->der[c->n - 1] + der_len) {
			fail(err, errlen, "chain: certificate %zu: not a certificate in DER", c->n - 1);
			goto out;
		}
		p = stop + sizeof end_marker - 1;
	}
	if (c->n == 0) {
		fail(err, errlen, "chain: no certificate");
		goto out;
	}
	for (size_t i = 0; i + 1 < c->n; i++)
		if (X509_NAME_cmp(X509_get_issuer_name(certs[i]), X509_get_subject_name(certs[i + 1])) != 0) {
			fail(err, errlen, "chain: certificate %zu is not issued by the next one's subject", i);
			goto out;
		}
	issuer_cn(certs[c->n - 1], c->top_issuer_cn, sizeof c->top_issuer_cn);
	r = 0;
out:
	for (size_t i = 0; i < ACME_CHAIN_MAX; i++)
		X509_free(certs[i]);
	free(b64);
	ERR_clear_error(); /* what BoringSSL refused is said in err, not left for a TLS call to find */
	if (r != 0)
		acme_chain_free(c);
	return r;
}

size_t acme_chain_choose(const struct acme_chain *chains, size_t n, const char *preferred_cn)
{
	for (size_t i = 0; preferred_cn && *preferred_cn && i < n; i++)
		if (chains[i].n && strcmp(chains[i].top_issuer_cn, preferred_cn) == 0)
			return i;
	return 0;
}

/* ---- ARI ---- */

int acme_ari_cert_id(const uint8_t *der, size_t len, char out[ACME_CERT_ID_MAX], char *err, size_t errlen)
{
	const uint8_t *p = der;
	X509 *x = len <= 64 * 1024 ? d2i_X509(NULL, &p, (long)len) : NULL;
	const ASN1_OCTET_STRING *aki;
	uint8_t *serial = NULL;
	CBS cbs, content;
	int n, r = -1;
	size_t o;

	if (!x || p != der + len) {
		fail(err, errlen, "certificate: not a certificate in DER");
		goto out;
	}
	aki = X509_get0_authority_key_id(x);
	if (!aki || ASN1_STRING_length(aki) <= 0 || ASN1_STRING_length(aki) > 64) {
		fail(err, errlen, "certificate: no authority key identifier");
		goto out;
	}
	n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &serial);
	CBS_init(&cbs, serial, n > 0 ? (size_t)n : 0);
	if (n <= 0 || !CBS_get_asn1(&cbs, &content, CBS_ASN1_INTEGER) || CBS_len(&content) == 0 ||
	    CBS_len(&content) > 64) {
		fail(err, errlen, "certificate: a serial number that cannot be encoded");
		goto out;
	}
	o = acme_b64url_encode(ASN1_STRING_get0_data(aki), (size_t)ASN1_STRING_length(aki), out);
	out[o++] = '.';
	acme_b64url_encode(CBS_data(&content), CBS_len(&content), out + o);
	r = 0;
out:
	OPENSSL_free(serial);
	X509_free(x);
	ERR_clear_error();
	return r;
}

bool acme_ari_cert_id_ok(const char *s)
{
	const char *dot;
	char head[ACME_CERT_ID_MAX];

	if (!s || strlen(s) >= ACME_CERT_ID_MAX || !(dot = strchr(s, '.')))
		return false;
	memcpy(head, s, (size_t)(dot - s));
	head[dot - s] = '\0';
	return acme_b64url_chars(head, ACME_CERT_ID_MAX) && acme_b64url_chars(dot + 1, ACME_CERT_ID_MAX);
}

int acme_parse_renewal_info(const char *body, size_t len, struct acme_renewal_info *ri, char *err, size_t errlen)
{
	static const char W[] = "renewalInfo", SW[] = "renewalInfo: suggestedWindow";
	json_t *j = load_object(W, body, len, ACME_JSON_DEPTH, err, errlen), *w;

	memset(ri, 0, sizeof *ri);
	if (!j)
		return -1;
	if (!(w = json_object_get(j, "suggestedWindow")) || !json_is_object(w)) {
		fail(err, errlen, "%s: suggestedWindow missing or not an object", W);
		goto bad;
	}
	if (get_str(w, "start", true, 64, &(const char *){0}, SW, err, errlen) != 1 ||
	    get_str(w, "end", true, 64, &(const char *){0}, SW, err, errlen) != 1 ||
	    get_time(w, "start", &ri->start, SW, err, errlen) != 1 || get_time(w, "end", &ri->end, SW, err, errlen) != 1 ||
	    get_uri(j, "explanationURL", &ri->explanation_url, W, err, errlen) < 0)
		goto bad;
	if (ri->end <= ri->start) {
		fail(err, errlen, "%s: end not after start", SW);
		goto bad;
	}
	ri->doc_ = j;
	return 0;
bad:
	json_decref(j);
	memset(ri, 0, sizeof *ri);
	return -1;
}

void acme_renewal_info_free(struct acme_renewal_info *ri)
{
	json_decref(ri->doc_);
	memset(ri, 0, sizeof *ri);
}

int64_t acme_renewal_pick(const struct acme_renewal_info *ri, uint64_t random)
{
	if (ri->end <= ri->start)
		return ri->start;
	return ri->start + (int64_t)(random % (uint64_t)(ri->end - ri->start));
}

bool acme_problem_about_replaces(const struct acme_problem *p)
{
	return p->kind == ACME_ERR_ALREADY_REPLACED ||
	       ((p->kind == ACME_ERR_MALFORMED || p->kind == ACME_ERR_UNAUTHORIZED) && p->detail &&
		strcasestr(p->detail, "replace"));
}

int64_t acme_ari_renew_at(const struct acme_renewal_info *ri, int64_t now, uint64_t random)
{
	return ri->end <= now ? now : acme_renewal_pick(ri, random);
}

uint32_t acme_ari_retry(uint32_t retry_after, unsigned failed)
{
	uint32_t asked = retry_after == 0		   ? ACME_ARI_RETRY_DEFAULT
			 : retry_after < ACME_ARI_RETRY_MIN ? ACME_ARI_RETRY_MIN
			 : retry_after > ACME_ARI_RETRY_MAX ? ACME_ARI_RETRY_MAX
							    : retry_after;
	uint32_t backoff = ACME_ARI_RETRY_MIN;

	if (failed == 0)
		return asked;
	for (unsigned i = 1; i < failed && backoff < ACME_ARI_RETRY_MAX; i++)
		backoff *= 2;
	if (backoff > ACME_ARI_RETRY_MAX)
		backoff = ACME_ARI_RETRY_MAX;
	return retry_after && asked > backoff ? asked : backoff;
}

/* ---- payloads ---- */

/* compact text of o (stolen), NULL with err */
static char *dump(json_t *o, const char *what, char *err, size_t errlen)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!s)
		fail(err, errlen, "%s: out of memory", what);
	return s;
}

char *acme_payload_new_account(const char *const *emails, size_t nemails, bool tos_agreed, bool only_existing,
			       const char *eab, char *err, size_t errlen)
{
	json_t *o = json_object(), *contact = json_array();
	char mailto[300];

	if (nemails > 4) {
		fail(err, errlen, "newAccount: more than 4 contacts");
		goto bad;
	}
	for (size_t i = 0; i < nemails; i++) {
		if (!emails[i] || !valid_email(emails[i])) {
			fail(err, errlen, "newAccount: contact %zu not an e-mail address", i);
			goto bad;
		}
		snprintf(mailto, sizeof mailto, "mailto:%s", emails[i]);
		if (json_array_append_new(contact, json_string(mailto)) != 0)
			goto oom;
	}
	/* json_object_set_new takes contact whether it succeeds or not */
	if (json_object_set_new(o, "contact", contact) != 0) {
		contact = NULL;
		goto oom;
	}
	contact = NULL;
	if (json_object_set_new(o, "termsOfServiceAgreed", json_boolean(tos_agreed)) != 0)
		goto oom;
	if (only_existing && json_object_set_new(o, "onlyReturnExisting", json_true()) != 0)
		goto oom;
	if (eab) {
		json_t *e = load_object("newAccount: externalAccountBinding", eab, strlen(eab), 4, err, errlen);

		if (!e)
			goto bad;
		if (!json_is_string(json_object_get(e, "protected")) || !json_is_string(json_object_get(e, "payload")) ||
		    !json_is_string(json_object_get(e, "signature"))) {
			json_decref(e);
			fail(err, errlen, "newAccount: externalAccountBinding not a flattened JWS");
			goto bad;
		}
		if (json_object_set_new(o, "externalAccountBinding", e) != 0)
			goto oom;
	}
	return dump(o, "newAccount", err, errlen);
oom:
	fail(err, errlen, "newAccount: out of memory");
bad:
	json_decref(contact);
	json_decref(o);
	return NULL;
}

char *acme_payload_new_order(const char *const *names, size_t nnames, const char *profile, const char *replaces,
			     char *err, size_t errlen)
{
	json_t *o = json_object(), *ids = json_array();

	if (!o || !ids)
		goto oom;
	if (nnames == 0 || nnames > ACME_IDENTIFIERS_MAX) {
		fail(err, errlen, "newOrder: 1..%d names", ACME_IDENTIFIERS_MAX);
		goto bad;
	}
	for (size_t i = 0; i < nnames; i++) {
		const char *type = names[i] && valid_ip_address(names[i])	  ? "ip"
				   : names[i] && valid_dns_name(names[i], true) ? "dns"
										: NULL;

		if (!type) {
			fail(err, errlen, "newOrder: name %zu not a DNS name or an IP address", i);
			goto bad;
		}
		if (json_array_append_new(ids, json_pack("{s:s, s:s}", "type", type, "value", names[i])) != 0)
			goto oom;
	}
	if (json_object_set(o, "identifiers", ids) != 0)
		goto oom;
	if (profile) {
		if (!profile_name_ok(profile)) {
			fail(err, errlen, "newOrder: profile not 1..64 of [A-Za-z0-9._-]");
			goto bad;
		}
		if (json_object_set_new(o, "profile", json_string(profile)) != 0)
			goto oom;
	}
	if (replaces) {
		if (!acme_ari_cert_id_ok(replaces)) {
			fail(err, errlen, "newOrder: replaces not an ARI CertID");
			goto bad;
		}
		if (json_object_set_new(o, "replaces", json_string(replaces)) != 0)
			goto oom;
	}
	json_decref(ids);
	return dump(o, "newOrder", err, errlen);
oom:
	fail(err, errlen, "newOrder: out of memory");
bad:
	json_decref(ids);
	json_decref(o);
	return NULL;
}

/* {"<key>": b64url(der)} plus reason when >= 0 */
static char *der_payload(const char *what, const char *key, const uint8_t *der, size_t len, int reason, char *err,
			 size_t errlen)
{
	char *b;
	json_t *o;

	if (!der || len == 0 || len > 64 * 1024) {
		fail(err, errlen, "%s: %s of 1..65536 bytes", what, key);
		return NULL;
	}
	if (!(b = acme_b64url(der, len))) {
		fail(err, errlen, "%s: out of memory", what);
		return NULL;
	}
	o = json_pack("{s:s}", key, b);
	free(b);
	if (o && reason >= 0 && json_object_set_new(o, "reason", json_integer(reason)) != 0) {
		json_decref(o);
		o = NULL;
	}
	return dump(o, what, err, errlen);
}

char *acme_payload_finalize(const uint8_t *csr_der, size_t len, char *err, size_t errlen)
{
	return der_payload("finalize", "csr", csr_der, len, -1, err, errlen);
}

char *acme_payload_revoke(const uint8_t *cert_der, size_t len, int reason, char *err, size_t errlen)
{
	if (reason < -1 || reason > 10 || reason == 7) {
		fail(err, errlen, "revokeCert: reason not a CRLReason code (0..10 but 7)");
		return NULL;
	}
	return der_payload("revokeCert", "certificate", cert_der, len, reason, err, errlen);
}

char *acme_payload_deactivate(void)
{
	return strdup("{\"status\":\"deactivated\"}");
}

#include "csr_policy.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "validate.h"

#define SHORT_LIVED_S CSR_SHORT_LIVED_S
#define SANS_MAX 100

struct profile {
	json_t *root;
	json_t *key_rules;   /* [{algorithm, min_size}] or empty */
	json_t *ekus;        /* ["serverAuth", ...] or empty */
	json_t *san_patterns; /* ["*.example.com", ...] or empty */
	const char *spiffe;  /* spiffe_uri_pattern or NULL */
	int64_t max_ttl;     /* 0: none */
	int short_lived_ok;
	int enabled;
};

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return -1;
}

static int profile_parse(const char *text, size_t len, struct profile *p, char *why, size_t whylen)
{
	json_error_t e;
	json_t *v;

	memset(p, 0, sizeof *p);
	p->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	if (!json_is_object(p->root))
		return fail(why, whylen, "profile: not a JSON object");
	p->key_rules = json_object_get(p->root, "allowed_key_algorithms");
	p->ekus = json_object_get(p->root, "allowed_ekus");
	p->san_patterns = json_object_get(p->root, "required_san_patterns");
	if ((p->key_rules && !json_is_array(p->key_rules)) || (p->ekus && !json_is_array(p->ekus)) ||
	    (p->san_patterns && !json_is_array(p->san_patterns)))
		return fail(why, whylen, "profile: allowed_key_algorithms, allowed_ekus and required_san_patterns "
					 "must be arrays");
	v = json_object_get(p->root, "spiffe_uri_pattern");
	p->spiffe = json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
	v = json_object_get(p->root, "max_ttl_seconds");
	p->max_ttl = json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
	p->short_lived_ok = json_is_true(json_object_get(p->root, "allow_short_lived"));
	v = json_object_get(p->root, "enabled");
	p->enabled = !json_is_false(v);
	return 0;
}

/* "ECDSA" 256, "RSA" 2048, "Ed25519" 256; -1 for any other key */
static int key_kind(EVP_PKEY *k, const char **alg, int *bits)
{
	switch (EVP_PKEY_id(k)) {
	case EVP_PKEY_EC:
		*alg = "ECDSA";
		break;
	case EVP_PKEY_RSA:
		*alg = "RSA";
		break;
	case EVP_PKEY_ED25519:
		*alg = "Ed25519";
		break;
	default:
		return -1;
	}
	/* Ed25519 keys are 256 bits, whatever EVP_PKEY_bits says (253) */
	*bits = EVP_PKEY_id(k) == EVP_PKEY_ED25519 ? 256 : EVP_PKEY_bits(k);
	return 0;
}

static int key_allowed(const struct profile *p, EVP_PKEY *k, char *why, size_t whylen)
{
	const char *alg;
	int bits;
	size_t i;
	json_t *r;
	char allowed[300] = "";

	if (key_kind(k, &alg, &bits) != 0)
		return fail(why, whylen, "key: only ECDSA, RSA and Ed25519 keys are signed");
	/* a floor under every profile */
	if ((strcmp(alg, "RSA") == 0 && bits < 2048) || (strcmp(alg, "ECDSA") == 0 && bits < 256))
		return fail(why, whylen, "key: %s %d is too weak (at least RSA 2048 and ECDSA P-256)", alg, bits);
	if (!p->key_rules || json_array_size(p->key_rules) == 0)
		return 0;
	json_array_foreach(p->key_rules, i, r) {
		const char *a = json_string_value(json_object_get(r, "algorithm"));
		json_int_t min = json_integer_value(json_object_get(r, "min_size"));
		size_t o = strlen(allowed);

		if (a && strcmp(a, alg) == 0 && bits >= min)
			return 0;
		if (a)
			snprintf(allowed + o, sizeof allowed - o, "%s%s %lld+", o ? ", " : "", a, (long long)min);
	}
	return fail(why, whylen, "key: %s %d is not allowed by the profile's allowed_key_algorithms (%s)", alg, bits,
		    allowed);
}

/* pattern "*.example.com" matches one label in front of example.com (and a
 * wildcard name "*.example.com" itself); anything else matches exactly,
 * ignoring case */
static int san_matches(const char *pattern, const char *name)
{
	if (strncmp(pattern, "*.", 2) == 0) {
		const char *dot = strchr(name, '.');

		return dot && dot != name && strcasecmp(dot + 1, pattern + 2) == 0;
	}
	return strcasecmp(pattern, name) == 0;
}

static int dns_allowed(const struct profile *p, const char *name)
{
	size_t i;
	json_t *pat;

	if (!p->san_patterns || json_array_size(p->san_patterns) == 0)
		return 1;
	json_array_foreach(p->san_patterns, i, pat)
		if (json_is_string(pat) && san_matches(json_string_value(pat), name))
			return 1;
	return 0;
}

static int uri_allowed(const struct profile *p, const char *uri)
{
	size_t n;

	if (!p->spiffe || strncmp(uri, "spiffe://", 9) != 0)
		return 0;
	n = strlen(p->spiffe);
	if (n > 0 && p->spiffe[n - 1] == '*')
		return strncmp(uri, p->spiffe, n - 1) == 0;
	return strcmp(uri, p->spiffe) == 0;
}

/* An IA5String as a C string: NULL when it holds a NUL or is too long. */
static const char *ia5(const ASN1_STRING *s, char *buf, size_t len)
{
	int n = ASN1_STRING_length(s);

	if (n <= 0 || (size_t)n >= len || memchr(ASN1_STRING_get0_data(s), 0, (size_t)n))
		return NULL;
	memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
	buf[n] = '\0';
	return buf;
}

/* The CSR's subjectAltNames, each checked; a copy for the certificate. */
static GENERAL_NAMES *checked_sans(X509_REQ *req, const struct profile *p, char *why, size_t whylen)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
	char buf[512];
	size_t i;

	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	if (!gens)
		return NULL;
	if (sk_GENERAL_NAME_num(gens) > SANS_MAX) {
		fail(why, whylen, "subjectAltName: more than %d names", SANS_MAX);
		goto bad;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *s;

		switch (g->type) {
		case GEN_DNS:
			s = ia5(g->d.dNSName, buf, sizeof buf);
			if (!s || !valid_dns_name(s, true)) {
				fail(why, whylen, "subjectAltName: a DNS name that is not a valid host name (A-labels, "
						  "a wildcard only as the first label)");
				goto bad;
			}
			if (!dns_allowed(p, s)) {
				fail(why, whylen, "subjectAltName: %s is outside the profile's required_san_patterns", s);
				goto bad;
			}
			break;
		case GEN_IPADD:
			if (ASN1_STRING_length(g->d.iPAddress) != 4 && ASN1_STRING_length(g->d.iPAddress) != 16) {
				fail(why, whylen, "subjectAltName: an IP address of %d bytes",
				     ASN1_STRING_length(g->d.iPAddress));
				goto bad;
			}
			if (p->san_patterns && json_array_size(p->san_patterns) > 0) {
				char ip[64];

				inet_ntop(ASN1_STRING_length(g->d.iPAddress) == 4 ? AF_INET : AF_INET6,
					  ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof ip);
				if (!dns_allowed(p, ip)) {
					fail(why, whylen, "subjectAltName: %s is outside the profile's "
							  "required_san_patterns", ip);
					goto bad;
				}
			}
			break;
		case GEN_EMAIL:
			s = ia5(g->d.rfc822Name, buf, sizeof buf);
			if (!s || !valid_email(s)) {
				fail(why, whylen, "subjectAltName: an e-mail address that is not valid");
				goto bad;
			}
			break;
		case GEN_URI:
			s = ia5(g->d.uniformResourceIdentifier, buf, sizeof buf);
			if (!s || !uri_allowed(p, s)) {
				fail(why, whylen, "subjectAltName: a URI is allowed only as a SPIFFE ID matching the "
						  "profile's spiffe_uri_pattern");
				goto bad;
			}
			break;
		default:
			fail(why, whylen, "subjectAltName: only DNS names, IP addresses, e-mail addresses and "
					  "SPIFFE URIs are signed");
			goto bad;
		}
	}
	return gens;
bad:
	GENERAL_NAMES_free(gens);
	return (GENERAL_NAMES *)-1;
}

/* The CSR's common name as UTF-8 (at most 64 characters), or "" */
static void common_name(X509_REQ *req, char *out, size_t outlen)
{
	X509_NAME *n = X509_REQ_get_subject_name(req);
	int i = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
	unsigned char *utf8 = NULL;
	int len;

	out[0] = '\0';
	if (i < 0)
		return;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	if (len > 0 && len <= 64 && (size_t)len < outlen && !memchr(utf8, 0, (size_t)len)) {
		memcpy(out, utf8, (size_t)len);
		out[len] = '\0';
	}
	OPENSSL_free(utf8);
}

static int eku_list(const struct profile *p, char *out, size_t outlen, char *why, size_t whylen)
{
	static const char *const known[] = {"serverAuth", "clientAuth", "codeSigning", "emailProtection",
					    "timeStamping"};
	size_t i, o = 0;
	json_t *e;

	out[0] = '\0';
	if (!p->ekus || json_array_size(p->ekus) == 0) {
		snprintf(out, outlen, "serverAuth");
		return 0;
	}
	json_array_foreach(p->ekus, i, e) {
		const char *s = json_string_value(e);
		int ok = 0;

		for (size_t k = 0; s && k < sizeof known / sizeof known[0]; k++)
			ok |= strcmp(s, known[k]) == 0;
		if (!ok)
			return fail(why, whylen, "profile: unknown allowed_ekus value");
		o += (size_t)snprintf(out + o, outlen - o, "%s%s", o ? "," : "", s);
		if (o >= outlen)
			return fail(why, whylen, "profile: too many allowed_ekus");
	}
	return 0;
}

int csr_policy_check(const uint8_t *der, size_t der_len, const char *profile, size_t profile_len,
		     uint64_t validity_asked, uint64_t default_seconds, struct csr_checked *out, char *why,
		     size_t whylen)
{
	const uint8_t *p = der;
	struct profile prof = {0};

	memset(out, 0, sizeof *out);
	if (profile_parse(profile, profile_len, &prof, why, whylen) != 0)
		goto bad;
	if (!prof.enabled) {
		fail(why, whylen, "profile: disabled");
		goto bad;
	}
	out->req = d2i_X509_REQ(NULL, &p, (long)der_len);
	if (!out->req || p != der + der_len) {
		fail(why, whylen, "csr: not one DER certificate signing request");
		goto bad;
	}
	out->pub = X509_REQ_get_pubkey(out->req);
	if (!out->pub || X509_REQ_verify(out->req, out->pub) != 1) {
		fail(why, whylen, "csr: its signature does not verify with its own key");
		goto bad;
	}
	if (key_allowed(&prof, out->pub, why, whylen) != 0)
		goto bad;
	common_name(out->req, out->cn, sizeof out->cn);
	out->sans = checked_sans(out->req, &prof, why, whylen);
	if (out->sans == (GENERAL_NAMES *)-1) {
		out->sans = NULL;
		goto bad;
	}
	if (!out->sans) {
		/* no subjectAltName: a CN that is a host name stands in for one */
		GENERAL_NAME *g;

		if (!*out->cn || !valid_dns_name(out->cn, true)) {
			fail(why, whylen, "csr: no subjectAltName, and its CN is not a DNS name");
			goto bad;
		}
		if (!dns_allowed(&prof, out->cn)) {
			fail(why, whylen, "subjectAltName: %s is outside the profile's required_san_patterns", out->cn);
			goto bad;
		}
		out->sans = GENERAL_NAMES_new();
		g = GENERAL_NAME_new();
		if (!out->sans || !g || !(g->d.dNSName = ASN1_IA5STRING_new()) ||
		    !ASN1_STRING_set(g->d.dNSName, out->cn, -1)) {
			GENERAL_NAME_free(g);
			fail(why, whylen, "out of memory");
			goto bad;
		}
		g->type = GEN_DNS;
		sk_GENERAL_NAME_push(out->sans, g);
	}
	/* validity: as asked, else the default within the profile's maximum */
	out->validity = (int64_t)default_seconds;
	if (validity_asked)
		out->validity = (int64_t)validity_asked;
	else if (prof.max_ttl && out->validity > prof.max_ttl)
		out->validity = prof.max_ttl;
	if (prof.max_ttl && out->validity > prof.max_ttl) {
		fail(why, whylen, "validity: %lld seconds is over the profile's max_ttl_seconds (%lld)",
		     (long long)out->validity, (long long)prof.max_ttl);
		goto bad;
	}
	if (out->validity < SHORT_LIVED_S && !prof.short_lived_ok) {
		fail(why, whylen, "validity: under one hour needs a profile with allow_short_lived");
		goto bad;
	}
	if (eku_list(&prof, out->ekus, sizeof out->ekus, why, whylen) != 0)
		goto bad;
	key_kind(out->pub, &out->key_alg, &out->key_bits);
	json_decref(prof.root);
	return 0;
bad:
	json_decref(prof.root);
	csr_checked_free(out);
	return -1;
}

void csr_checked_free(struct csr_checked *c)
{
	GENERAL_NAMES_free(c->sans);
	EVP_PKEY_free(c->pub);
	X509_REQ_free(c->req);
	c->sans = NULL;
	c->pub = NULL;
	c->req = NULL;
}

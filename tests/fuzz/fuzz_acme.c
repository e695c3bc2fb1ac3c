/* libFuzzer target: everything lib/acme parses from a CA (and the JWK and
 * base64url decoders), chosen by the first byte: its low six bits pick the
 * parser; with its high bit set the rest of the input drives a generator of
 * JSON documents made of ACME's member names and values (below), started
 * from a valid document of the kind when bit 0x40 is set too, so that the
 * members' own checks are reached without a seed corpus (the JSON library
 * is not instrumented). Whatever arrives is either refused with a reason and
 * nothing to free, or accepted with every promise of acme.h kept. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>

#include "acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
	if (!cond)
		abort();
}

static char err[256];

/* a refusal says why */
static void refused(void)
{
	need(err[0] != '\0');
}

static bool detail_ok(const char *s)
{
	if (strlen(s) > ACME_DETAIL_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void check_problem(const struct acme_problem *p)
{
	need(p->type && p->detail && detail_ok(p->detail) && p->nsub <= ACME_SUBPROBLEMS_MAX);
	need(p->status == 0 || (p->status >= 100 && p->status <= 599));
	for (size_t i = 0; i < p->nsub; i++) {
		need(p->sub[i].type && p->sub[i].detail && detail_ok(p->sub[i].detail));
		need(!p->sub[i].has_identifier || (p->sub[i].identifier.type && p->sub[i].identifier.value));
	}
}

static void check_challenge(const struct acme_challenge *c)
{
	need(c->type && acme_url_ok(c->url) && c->status != ACME_STATUS_UNKNOWN && c->raw);
	need(!c->token || acme_b64url_chars(c->token, ACME_TOKEN_MAX));
	need(c->nissuer_domain_names <= ACME_ISSUER_DOMAINS_MAX);
	if (c->has_error)
		check_problem(&c->error);
}

/* the generator's member names and string values */
static const char *const names[] = {
	"status", "identifiers", "type", "value", "authorizations", "finalize", "certificate", "error", "expires",
	"identifier", "challenges", "url", "token", "wildcard", "detail", "subproblems", "newNonce", "newAccount",
	"newOrder", "revokeCert", "keyChange", "renewalInfo", "meta", "profiles", "termsOfService", "website",
	"externalAccountRequired", "orders", "suggestedWindow", "start", "end", "explanationURL",
	"issuer-domain-names", "kty", "crv", "x", "y", "n", "e", "d",
};
static const char *const values[] = {
	"pending", "ready", "processing", "valid", "invalid", "deactivated", "expired", "revoked", "dns", "ip",
	"http-01", "dns-01", "tls-alpn-01", "dns-persist-01", "https://ca.test/x", "https://[::1]:14000/y",
	"http://ca.test/x", "2026-12-06T11:00:00Z", "2026-12-06T11:00:00.5+01:00", "2026-02-30T00:00:00Z",
	"a.example", "*.a.example", "192.0.2.1", "2001:db8::1", "urn:ietf:params:acme:error:badNonce",
	"urn:ietf:params:acme:error:rateLimited", "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", "EC", "RSA", "P-256",
	"P-384", "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "AQAB", "classic", "data:text/plain,x",
};

struct gen {
	const uint8_t *p;
	size_t n;
};

static unsigned next(struct gen *g)
{
	if (!g->n)
		return 0;
	g->n--;
	return *g->p++;
}

static json_t *gen_text(struct gen *g)
{
	char buf[40];
	unsigned len = next(g) % sizeof buf;

	for (unsigned i = 0; i < len; i++) {
		buf[i] = (char)(next(g) & 0x7f);
		if (!buf[i])
			buf[i] = '?';
	}
	return json_stringn(buf, len);
}

static json_t *gen_value(struct gen *g, int depth)
{
	unsigned b = next(g), k;
	json_t *v;

	switch (depth > 5 ? b % 4 : b % 7) {
	case 0: return json_string(values[next(g) % (sizeof values / sizeof values[0])]);
	case 1: return gen_text(g);
	case 2: return json_integer((json_int_t)(int16_t)(next(g) << 8 | next(g)));
	case 3: return b & 8 ? json_true() : b & 16 ? json_false() : json_null();
	case 4:
	case 5:
		v = json_object();
		for (k = next(g) % 8; k > 0 && g->n; k--) {
			unsigned c = next(g);

			if (c & 0x80) {
				json_t *t = gen_text(g);

				json_object_set_new(v, json_string_value(t), gen_value(g, depth + 1));
				json_decref(t);
			} else
				json_object_set_new(v, names[c % (sizeof names / sizeof names[0])], gen_value(g, depth + 1));
		}
		return v;
	default:
		v = json_array();
		for (k = next(g) % 8; k > 0 && g->n; k--)
			json_array_append_new(v, gen_value(g, depth + 1));
		return v;
	}
}

/* valid documents the generated members are added to or replace, by parser */
static const char *const skeletons[12] = {
	[0] = "{\"newNonce\":\"https://ca.test/n\",\"newAccount\":\"https://ca.test/a\",\"newOrder\":"
	      "\"https://ca.test/o\",\"revokeCert\":\"https://ca.test/r\",\"keyChange\":\"https://ca.test/k\"}",
	[1] = "{\"status\":\"valid\"}",
	[2] = "{\"status\":\"pending\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}],"
	      "\"authorizations\":[\"https://ca.test/z/1\"],\"finalize\":\"https://ca.test/f\"}",
	[3] = "{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},\"status\":\"pending\",\"challenges\":"
	      "[{\"type\":\"dns-01\",\"url\":\"https://ca.test/c/1\",\"status\":\"pending\",\"token\":\"abc\"}]}",
	[4] = "{\"type\":\"dns-01\",\"url\":\"https://ca.test/c/1\",\"status\":\"pending\",\"token\":\"abc\"}",
	[5] = "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"x\"}",
	[9] = "{\"suggestedWindow\":{\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-03T00:00:00Z\"}}",
	[10] = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":"
	       "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
};

/* an object generated from data[0..size), on the parser's skeleton or
 * not, as text to free */
static char *generate(unsigned which, bool skeleton, const uint8_t *data, size_t size, size_t *len)
{
	struct gen g = {data, size};
	json_t *o = skeleton && skeletons[which] ? json_loads(skeletons[which], 0, NULL) : json_object();
	char *s;

	while (g.n) {
		unsigned c = next(&g);

		json_object_set_new(o, names[c % (sizeof names / sizeof names[0])], gen_value(&g, 1));
	}
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	*len = s ? strlen(s) : 0;
	return s;
}

/* a certificate and its issuer (made with the openssl CLI) whose DER the
 * input patches: parse_pem_chain's checks past d2i_X509, the issuer's CN
 * and ARI's CertID are reached with mutated certificates */
#define FUZZ_LEAF \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIBdzCCAR2gAwIBAgIDAP8BMAoGCCqGSM49BAMCMBQxEjAQBgNVBAMMCUZ1enog\n" \
	"Um9vdDAeFw0yNjEyMDUxMTUxNTlaFw0yNzAzMDUxMTUxNTlaMBcxFTATBgNVBAMM\n" \
	"DGZ1enouZXhhbXBsZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAlnxb866ujs\n" \
	"xxp4R5isb5R+x5PFug1SLF9n3J1ULYIetxun3Sb9NgvjRD2iHEzshbQzCPoZqX5T\n" \
	"96EEK7JRAG6jWzBZMBcGA1UdEQQQMA6CDGZ1enouZXhhbXBsZTAfBgNVHSMEGDAW\n" \
	"gBSiAlMNVa9XkZD0EfU1IzDNNby3BTAdBgNVHQ4EFgQUoJdbesCcuF9z4XHwbN6E\n" \
	"lRmH/r4wCgYIKoZIzj0EAwIDSAAwRQIgSlY4D9I+oQEdlDrEh6Q1U3KlEM7LdzLO\n" \
	"rjFHBXtU/gECIQCqbhicijKi+/Xwad1XvTl5t5uILAqGfRbZ/84y3kgd0w==\n" \
	"-----END CERTIFICATE-----\n"

#define FUZZ_ROOT \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIBWTCB/6ADAgECAgEBMAoGCCqGSM49BAMCMBQxEjAQBgNVBAMMCUZ1enogUm9v\n" \
	"dDAeFw0yNjEyMDUxMTUxNTlaFw0zNjEyMDIxMTUxNTlaMBQxEjAQBgNVBAMMCUZ1\n" \
	"enogUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFOLEAb8J7FklkoggPAw\n" \
	"Vv0AML4dL/mTBdyQW4GX2IORQpsGEncFlX38MhCC+OBxjcdx/gjPZat77lrTCS+j\n" \
	"pwujQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMB0GA1UdDgQW\n" \
	"BBSiAlMNVa9XkZD0EfU1IzDNNby3BTAKBggqhkjOPQQDAgNJADBGAiEA9QdtfN5d\n" \
	"u+5xujx2GdO++rZwRowAGyO3lvBjZJslIYsCIQCjwVob83EkQrfvm4BuPaCrr6ZP\n" \
	"0tGrMgVi9lxRLhKy7Q==\n" \
	"-----END CERTIFICATE-----\n"

/* FUZZ_LEAF with data's (offset, xor) pairs applied, as PEM, then
 * FUZZ_ROOT when with_root: text to free */
static char *patched_chain(const uint8_t *data, size_t size, bool with_root, size_t *len)
{
	static const char root[] = FUZZ_ROOT;
	static struct acme_chain leaf;
	uint8_t der[2048];
	size_t n, b64;
	char *s;

	if (!leaf.n && acme_parse_pem_chain(FUZZ_LEAF, sizeof FUZZ_LEAF - 1, &leaf, err, sizeof err) != 0)
		abort();
	n = leaf.der_len[0];
	memcpy(der, leaf.der[0], n);
	for (size_t i = 0; i + 1 < size && i < 32; i += 2)
		der[((size_t)data[i] * 3 + i) % n] ^= data[i + 1];
	if (size % 2) /* cut short or left whole */
		n -= data[size - 1] % 4 == 0 ? data[size - 1] % n : 0;
	if (!EVP_EncodedLength(&b64, n) || !(s = malloc(b64 + sizeof root + 64)))
		return NULL;
	*len = (size_t)sprintf(s, "-----BEGIN CERTIFICATE-----\n");
	*len += EVP_EncodeBlock((uint8_t *)s + *len, der, n);
	*len += (size_t)sprintf(s + *len, "\n-----END CERTIFICATE-----\n%s", with_root ? root : "");
	return s;
}

static void parse_json(unsigned which, const char *s, size_t n)
{
	switch (which) {
	case 0: {
		struct acme_directory d;

		if (acme_parse_directory(s, n, &d, err, sizeof err) != 0) {
			refused();
			need(!d.doc_ && !d.profiles);
			return;
		}
		need(acme_url_ok(d.new_nonce) && acme_url_ok(d.new_account) && acme_url_ok(d.new_order) &&
		     acme_url_ok(d.revoke_cert) && acme_url_ok(d.key_change));
		need(!d.renewal_info || acme_url_ok(d.renewal_info));
		need(d.nprofiles <= ACME_PROFILES_MAX);
		for (size_t i = 0; i < d.nprofiles; i++)
			need(acme_directory_profile(&d, d.profiles[i].name) != NULL);
		acme_directory_free(&d);
		return;
	}
	case 1: {
		struct acme_account a;

		if (acme_parse_account(s, n, &a, err, sizeof err) != 0) {
			refused();
			return;
		}
		need(a.status == ACME_STATUS_VALID || a.status == ACME_STATUS_DEACTIVATED ||
		     a.status == ACME_STATUS_REVOKED);
		need(!a.orders || acme_url_ok(a.orders));
		acme_account_free(&a);
		return;
	}
	case 2: {
		struct acme_order o;

		if (acme_parse_order(s, n, &o, err, sizeof err) != 0) {
			refused();
			need(!o.identifiers && !o.authorizations && !o.doc_);
			return;
		}
		need(o.status != ACME_STATUS_UNKNOWN && acme_url_ok(o.finalize));
		need(o.nidentifiers >= 1 && o.nidentifiers <= ACME_IDENTIFIERS_MAX);
		need(o.nauthorizations <= ACME_IDENTIFIERS_MAX);
		need(o.status != ACME_STATUS_VALID || acme_url_ok(o.certificate));
		for (size_t i = 0; i < o.nauthorizations; i++)
			need(acme_url_ok(o.authorizations[i]));
		if (o.has_error)
			check_problem(&o.error);
		acme_order_free(&o);
		return;
	}
	case 3: {
		struct acme_authz a;

		if (acme_parse_authz(s, n, &a, err, sizeof err) != 0) {
			refused();
			need(!a.challenges && !a.doc_);
			return;
		}
		need(a.status != ACME_STATUS_UNKNOWN && a.identifier.type && a.identifier.value);
		need(a.nchallenges <= ACME_CHALLENGES_MAX);
		for (size_t i = 0; i < a.nchallenges; i++) {
			check_challenge(&a.challenges[i]);
			need(acme_authz_challenge(&a, a.challenges[i].type) != NULL);
		}
		acme_authz_free(&a);
		return;
	}
	case 4: {
		struct acme_challenge c;

		if (acme_parse_challenge(s, n, &c, err, sizeof err) != 0) {
			refused();
			need(!c.doc_);
			return;
		}
		check_challenge(&c);
		acme_challenge_free(&c);
		return;
	}
	case 5: {
		struct acme_problem p;

		if (acme_parse_problem(s, n, &p, err, sizeof err) != 0) {
			refused();
			need(!p.sub && !p.doc_);
			return;
		}
		check_problem(&p);
		need(!acme_problem_about_replaces(&p) || p.kind == ACME_ERR_ALREADY_REPLACED ||
		     p.kind == ACME_ERR_MALFORMED || p.kind == ACME_ERR_UNAUTHORIZED);
		acme_problem_free(&p);
		return;
	}
	}
}

static void parse_text(unsigned which, const char *s, size_t n)
{
	switch (which) {
	case 6: {
		uint32_t sec;

		if (acme_retry_after(s, 784111777, &sec) == 0)
			need(sec >= ACME_RETRY_AFTER_MIN && sec <= ACME_RETRY_AFTER_MAX);
		return;
	}
	case 7: {
		struct acme_links l = {0};

		err[0] = '\0';
		if (acme_links_add(&l, s, "https://ca.test/acme/cert/1", err, sizeof err) != 0)
			need(err[0] != '\0');
		need(l.nalternate <= ACME_ALTERNATES_MAX);
		need(!l.up || acme_url_ok(l.up));
		need(!l.index || acme_url_ok(l.index));
		for (size_t i = 0; i < l.nalternate; i++)
			need(acme_url_ok(l.alternate[i]));
		acme_links_free(&l);
		return;
	}
	case 8: {
		struct acme_chain c[2];
		char id[ACME_CERT_ID_MAX];

		if (acme_parse_pem_chain(s, n, &c[0], err, sizeof err) != 0) {
			refused();
			need(c[0].n == 0);
			return;
		}
		need(c[0].n >= 1 && c[0].n <= ACME_CHAIN_MAX);
		for (size_t i = 0; i < c[0].n; i++)
			need(c[0].der[i] && c[0].der_len[i] > 0);
		need(acme_chain_choose(c, 1, c[0].top_issuer_cn) == 0);
		if (acme_ari_cert_id(c[0].der[0], c[0].der_len[0], id, err, sizeof err) == 0)
			need(acme_ari_cert_id_ok(id));
		acme_chain_free(&c[0]);
		return;
	}
	case 9: {
		struct acme_renewal_info ri;

		if (acme_parse_renewal_info(s, n, &ri, err, sizeof err) != 0) {
			refused();
			return;
		}
		need(ri.end > ri.start);
		for (uint64_t r = 0; r < 4; r++) {
			int64_t t = acme_renewal_pick(&ri, r * 0x9e3779b97f4a7c15ull);

			need(t >= ri.start && t < ri.end);
			need(acme_ari_renew_at(&ri, ri.start, r * 0x9e3779b97f4a7c15ull) == t);
		}
		need(acme_ari_renew_at(&ri, ri.end, 1) == ri.end);
		{
			uint32_t wait = acme_ari_retry((uint32_t)n * 2654435761u, (unsigned)(n % 40));

			need(wait >= ACME_ARI_RETRY_MIN && wait <= ACME_ARI_RETRY_MAX);
		}
		acme_renewal_info_free(&ri);
		return;
	}
	case 10: {
		char tp[ACME_THUMBPRINT_LEN + 1];

		if (acme_jwk_thumbprint(s, n, tp, err, sizeof err) == 0)
			need(strlen(tp) == ACME_THUMBPRINT_LEN);
		return;
	}
	case 11: {
		uint8_t out[512];
		char back[700];
		size_t len;

		if (n <= 600 && acme_b64url_decode(s, n, out, sizeof out, &len) == 0) {
			/* one text per value: it encodes back to the same characters */
			need(acme_b64url_encode(out, len, back) == n && memcmp(back, s, n) == 0);
		}
		return;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned which;
	char *s;
	size_t n;

	if (size < 1 || size > ACME_JSON_MAX)
		return 0;
	which = (data[0] & 0x3f) % 12;
	if ((data[0] & 0x80) && (which < 6 || which == 9 || which == 10)) {
		if (!(s = generate(which, data[0] & 0x40, data + 1, size - 1, &n)))
			return 0;
	} else if ((data[0] & 0x80) && which == 8) {
		if (!(s = patched_chain(data + 1, size - 1, data[0] & 0x40, &n)))
			return 0;
	} else {
		n = size - 1;
		if (!(s = malloc(n + 1)))
			return 0;
		memcpy(s, data + 1, n);
	}
	s[n] = '\0';
	err[0] = '\0';
	if (which < 6)
		parse_json(which, s, n);
	else
		parse_text(which, s, n);
	free(s);
	return 0;
}

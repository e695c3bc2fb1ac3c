/* OCSP (lib/ocsp.h) against OpenSSL's own client: requests made by
 * `openssl ocsp -reqout` parse to the certificate and issuer they name;
 * responses built here verify with `openssl ocsp -respin` (signature,
 * delegated responder, nonce, status, reason); hostile requests are
 * refused with a reason. */
#include <criterion/criterion.h>
#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ocsp.h"

#define NEWKEY "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
/* the leaf's serial: its top bit is set, so the INTEGER carries a leading 00 */
#define LEAF_SERIAL "0x8a1b2c3d4e5f60718293"
static const uint8_t leaf_serial[] = {0x00, 0x8a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93};

static char dir[] = "/tmp/cw-ocsp-XXXXXX";

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048], full[2400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	snprintf(full, sizeof full, "cd %s && { %s; } >>log 2>&1", dir, cmd);
	cr_assert_eq(system(full), 0, "%s failed (see %s/log)", cmd, dir);
}

/* what a command run in dir prints, stdout and stderr (malloc'd) */
static char *output(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *output(const char *fmt, ...)
{
	char cmd[2048], full[2400];
	char *buf = calloc(1, 1 << 16);
	size_t n = 0, got;
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	snprintf(full, sizeof full, "cd %s && { %s; } 2>&1", dir, cmd);
	p = popen(full, "r");
	cr_assert(p && buf);
	while (n < (1 << 16) - 1 && (got = fread(buf + n, 1, (1 << 16) - 1 - n, p)) > 0)
		n += got;
	pclose(p);
	return buf;
}

static char *path_of(const char *name)
{
	static char path[2][256];
	static int i;

	i ^= 1;
	snprintf(path[i], sizeof path[i], "%s/%s", dir, name);
	return path[i];
}

static uint8_t *slurp(const char *name, size_t *len)
{
	FILE *f = fopen(path_of(name), "rb");
	uint8_t *buf = malloc(1 << 16);

	cr_assert(f && buf, "%s", name);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	return buf;
}

static void spit(const char *name, const void *p, size_t len)
{
	FILE *f = fopen(path_of(name), "wb");

	cr_assert(f);
	cr_assert_eq(fwrite(p, 1, len, f), len);
	fclose(f);
}

static X509 *load_cert(const char *name)
{
	FILE *f = fopen(path_of(name), "r");
	X509 *x;

	cr_assert(f, "%s", name);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(x, "%s", name);
	return x;
}

static EVP_PKEY *load_key(const char *name)
{
	FILE *f = fopen(path_of(name), "r");
	EVP_PKEY *k;

	cr_assert(f, "%s", name);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(k, "%s", name);
	return k;
}

static uint8_t *cert_der(const char *name, size_t *len)
{
	X509 *x = load_cert(name);
	uint8_t *der = NULL;
	int n = i2d_X509(x, &der);

	cr_assert(n > 0);
	X509_free(x);
	*len = (size_t)n;
	return der;
}

static void setup(void)
{
	FILE *f;

	cr_assert(mkdtemp(dir));
	/* a CA; a leaf it issued; a delegated OCSP responder it issued; a CA
	 * of the same name with another key; the first CA's key under
	 * another name */
	sh(NEWKEY " -x509 -keyout ca.key -out ca.pem -subj /CN=certward-test-CA -days 30"
		  " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign");
	sh(NEWKEY " -keyout leaf.key -out leaf.csr -subj /CN=leaf.example");
	sh("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial " LEAF_SERIAL
	   " -days 10 -out leaf.pem");
	f = fopen(path_of("resp.ext"), "w");
	cr_assert(f);
	fputs("extendedKeyUsage=OCSPSigning\nnoCheck=ignored\nkeyUsage=critical,digitalSignature\n", f);
	fclose(f);
	sh(NEWKEY " -keyout resp.key -out resp.csr -subj /CN=certward-test-ocsp");
	sh("openssl x509 -req -in resp.csr -CA ca.pem -CAkey ca.key -set_serial 7 -days 10 -extfile resp.ext"
	   " -out resp.pem");
	sh(NEWKEY " -x509 -keyout other.key -out other.pem -subj /CN=certward-test-CA -days 30");
	sh("openssl req -x509 -key ca.key -out renamed.pem -subj /CN=another-name -days 30");
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(ocsp, .init = setup, .fini = teardown);

/* req.der parsed (the buffer must outlive r: r points into it) */
static uint8_t *parse_file(const char *name, struct ocsp_request *r)
{
	size_t len;
	uint8_t *der = slurp(name, &len);
	char why[200] = "";

	cr_assert_eq(ocsp_request_parse(der, len, r, why, sizeof why), 0, "%s: %s", name, why);
	cr_assert(r->id.der >= der && r->id.der + r->id.der_len <= der + len);
	return der;
}

static char *refused_file(const char *name)
{
	static char why[200];
	struct ocsp_request r;
	size_t len;
	uint8_t *der = slurp(name, &len);

	why[0] = '\0';
	cr_assert_eq(ocsp_request_parse(der, len, &r, why, sizeof why), -1, "%s was accepted", name);
	cr_assert(why[0]);
	cr_assert_not(r.id.der || r.has_nonce || r.nonce);
	free(der);
	return why;
}

static bool matches(const struct ocsp_certid *id, const char *ca_name)
{
	X509 *ca = load_cert(ca_name);
	bool m = ocsp_certid_matches(id, ca);

	X509_free(ca);
	return m;
}

Test(ocsp, openssl_requests_name_the_leaf_and_its_issuer_with_every_digest)
{
	static const struct {
		const char *opt;
		int nid;
		size_t len;
	} mds[] = {{"sha1", NID_sha1, 20}, {"sha256", NID_sha256, 32}, {"sha384", NID_sha384, 48},
		   {"sha512", NID_sha512, 64}};
	X509 *leaf = load_cert("leaf.pem");
	const ASN1_INTEGER *sn = X509_get_serialNumber(leaf);

	/* what the certificate says, magnitude only, matches what we expect */
	cr_assert_eq((size_t)sn->length, sizeof leaf_serial - 1);
	cr_assert_arr_eq(sn->data, leaf_serial + 1, sizeof leaf_serial - 1);
	for (size_t i = 0; i < sizeof mds / sizeof mds[0]; i++) {
		struct ocsp_request r;
		uint8_t *der;

		sh("openssl ocsp -%s -issuer ca.pem -cert leaf.pem -no_nonce -reqout req.der", mds[i].opt);
		der = parse_file("req.der", &r);
		cr_assert_eq(r.id.hash_nid, mds[i].nid, "%s", mds[i].opt);
		cr_assert_eq(r.id.hash_len, mds[i].len);
		cr_assert_eq(r.id.serial_len, sizeof leaf_serial);
		cr_assert_arr_eq(r.id.serial, leaf_serial, sizeof leaf_serial);
		cr_assert(matches(&r.id, "ca.pem"), "%s", mds[i].opt);
		cr_assert_not(matches(&r.id, "other.pem"), "same name, other key");
		cr_assert_not(matches(&r.id, "renamed.pem"), "same key, other name");
		cr_assert_not(matches(&r.id, "leaf.pem"));
		cr_assert_not(r.has_nonce);
		cr_assert_null(r.nonce);
		cr_assert_eq(r.nonce_len, 0);
		free(der);
	}
	X509_free(leaf);
}

Test(ocsp, the_nonce_is_there_exactly_when_asked_for)
{
	struct ocsp_request r;
	uint8_t *der;

	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	der = parse_file("req.der", &r);
	cr_assert(r.has_nonce);
	/* OpenSSL's nonce: an OCTET STRING of 16 random bytes inside extnValue */
	cr_assert_eq(r.nonce_len, 18);
	cr_assert_eq(r.nonce[0], 0x04);
	cr_assert_eq(r.nonce[1], 0x10);
	cr_assert(matches(&r.id, "ca.pem"));
	free(der);

	sh("openssl ocsp -sha256 -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	der = parse_file("req.der", &r);
	cr_assert(r.has_nonce);
	cr_assert_eq(r.id.hash_nid, NID_sha256);
	cr_assert(matches(&r.id, "ca.pem"));
	free(der);

	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -no_nonce -reqout req.der");
	der = parse_file("req.der", &r);
	cr_assert_not(r.has_nonce);
	free(der);
}

Test(ocsp, a_signed_request_with_a_requestor_name_is_accepted)
{
	struct ocsp_request r;
	uint8_t *der;

	sh("openssl ocsp -signer resp.pem -signkey resp.key -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	der = parse_file("req.der", &r);
	cr_assert(r.has_nonce);
	cr_assert_arr_eq(r.id.serial, leaf_serial, sizeof leaf_serial);
	cr_assert(matches(&r.id, "ca.pem"));
	free(der);
}

Test(ocsp, issuer_hashes_only_for_the_four_digests)
{
	X509 *ca = load_cert("ca.pem");
	uint8_t nh[OCSP_HASH_MAX], kh[OCSP_HASH_MAX];
	size_t n = 0;

	cr_assert(ocsp_issuer_hashes(ca, NID_sha384, nh, kh, &n));
	cr_assert_eq(n, 48);
	cr_assert_not(ocsp_issuer_hashes(ca, NID_md5, nh, kh, &n));
	cr_assert_not(ocsp_issuer_hashes(ca, NID_sha224, nh, kh, &n));
	X509_free(ca);
}

/* ---- responses ---- */

struct answer {
	enum ocsp_status status;
	int reason;
	bool echo_nonce;
	const char *key; /* signing key file, "resp.key" */
};

/* a response to req.der, written to resp.der */
static int respond(const struct answer *a)
{
	struct ocsp_request r;
	uint8_t *req = parse_file("req.der", &r), *resp = NULL, *cert;
	size_t cert_len, resp_len = 0;
	EVP_PKEY *key = load_key(a->key ? a->key : "resp.key");
	int64_t now = time(NULL);
	struct ocsp_single s = {
		.certid_der = r.id.der,
		.certid_len = r.id.der_len,
		.status = a->status,
		.revoked_at = now - 86400,
		.reason = a->reason,
		.this_update = now - 60,
		.next_update = now + 3600,
	};
	int ok;

	cert = cert_der("resp.pem", &cert_len);
	ok = ocsp_response_build(&s, a->echo_nonce ? r.nonce : NULL, a->echo_nonce ? r.nonce_len : 0, now, key, cert,
				 cert_len, &resp, &resp_len);
	if (ok)
		spit("resp.der", resp, resp_len);
	else
		cr_assert(!resp && resp_len == 0);
	OPENSSL_free(resp);
	OPENSSL_free(cert);
	EVP_PKEY_free(key);
	free(req);
	return ok;
}

/* openssl's verdict on resp.der as the answer to req.der (nonce included)
 * and as the answer for leaf.pem; reason: the name OpenSSL prints for
 * code (it knows 0..8 only: "(UNKNOWN)" for 9 and 10), NULL for none */
static void verify_with_openssl(const char *md, const char *status, const char *reason, int code)
{
	char *text = output("openssl ocsp -respin resp.der -reqin req.der -CAfile ca.pem -resp_text");
	char *summary = output("openssl ocsp -%s -respin resp.der -issuer ca.pem -cert leaf.pem -CAfile ca.pem "
			       "-no_nonce",
			       md);
	char want[64];

	cr_assert(strstr(text, "Response verify OK"), "%s", text);
	cr_assert(strstr(text, "OCSP Response Status: successful (0x0)"), "%s", text);
	cr_assert(strstr(text, "Response Type: Basic OCSP Response"), "%s", text);
	cr_assert(strstr(text, "OCSP Nonce"), "%s", text);
	cr_assert_not(strstr(text, "WARNING"), "%s", text);
	cr_assert_not(strstr(text, "once Verify error"), "%s", text);
	cr_assert_not(strstr(text, "rror"), "%s", text);
	snprintf(want, sizeof want, "Cert Status: %s", status);
	cr_assert(strstr(text, want), "%s", text);

	cr_assert(strstr(summary, "Response verify OK"), "%s", summary);
	snprintf(want, sizeof want, "leaf.pem: %s", status);
	cr_assert(strstr(summary, want), "%s", summary);
	cr_assert(strstr(summary, "This Update:") && strstr(summary, "Next Update:"), "%s", summary);
	if (reason) {
		snprintf(want, sizeof want, "Revocation Reason: %s (0x%x)", reason, code);
		cr_assert(strstr(text, want), "%s", text);
		snprintf(want, sizeof want, "Reason: %s", reason);
		cr_assert(strstr(summary, want), "%s", summary);
		cr_assert(strstr(summary, "Revocation Time:"), "%s", summary);
	} else {
		cr_assert_not(strstr(summary, "Reason:"), "%s", summary);
		cr_assert_not(strstr(text, "Reason:"), "%s", text);
	}
	free(text);
	free(summary);
}

Test(ocsp, a_good_response_verifies_with_openssl)
{
	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	cr_assert(respond(&(struct answer){OCSP_STATUS_GOOD, -1, true, NULL}));
	verify_with_openssl("sha1", "good", NULL, -1);
}

Test(ocsp, a_revoked_response_with_its_reason_verifies_with_openssl)
{
	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	cr_assert(respond(&(struct answer){OCSP_STATUS_REVOKED, 1, true, NULL}));
	verify_with_openssl("sha1", "revoked", "keyCompromise", 1);
	/* without a reason: none printed */
	cr_assert(respond(&(struct answer){OCSP_STATUS_REVOKED, -1, true, NULL}));
	verify_with_openssl("sha1", "revoked", NULL, -1);
	/* the last reason, aACompromise (10), which OpenSSL has no name for */
	cr_assert(respond(&(struct answer){OCSP_STATUS_REVOKED, 10, true, NULL}));
	verify_with_openssl("sha1", "revoked", "(UNKNOWN)", 10);
}

Test(ocsp, an_unknown_response_verifies_with_openssl)
{
	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	cr_assert(respond(&(struct answer){OCSP_STATUS_UNKNOWN, -1, true, NULL}));
	verify_with_openssl("sha1", "unknown", NULL, -1);
}

Test(ocsp, a_sha256_certid_is_echoed_and_verifies)
{
	sh("openssl ocsp -sha256 -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	cr_assert(respond(&(struct answer){OCSP_STATUS_GOOD, -1, true, NULL}));
	verify_with_openssl("sha256", "good", NULL, -1);
}

Test(ocsp, openssl_notices_a_missing_nonce)
{
	char *text;

	/* the check the tests above pass is a real one */
	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	cr_assert(respond(&(struct answer){OCSP_STATUS_GOOD, -1, false, NULL}));
	text = output("openssl ocsp -respin resp.der -reqin req.der -CAfile ca.pem");
	cr_assert(strstr(text, "WARNING: no nonce in response"), "%s", text);
	free(text);
}

Test(ocsp, the_responder_id_is_the_sha1_of_the_responder_key)
{
	X509 *resp = load_cert("resp.pem");
	ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(resp);
	uint8_t md[SHA_DIGEST_LENGTH];
	char hex[2 * SHA_DIGEST_LENGTH + 1], want[80], *text;

	SHA1(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), md);
	for (size_t i = 0; i < sizeof md; i++)
		snprintf(hex + 2 * i, 3, "%02X", md[i]);
	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	cr_assert(respond(&(struct answer){OCSP_STATUS_GOOD, -1, true, NULL}));
	text = output("openssl ocsp -respin resp.der -resp_text -noverify");
	snprintf(want, sizeof want, "Responder Id: %s", hex);
	cr_assert(strstr(text, want), "%s\nwanted %s", text, want);
	free(text);
	X509_free(resp);
}

Test(ocsp, a_response_signed_by_another_key_is_not_built)
{
	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	cr_assert_not(respond(&(struct answer){OCSP_STATUS_GOOD, -1, true, "ca.key"}));
}

Test(ocsp, bad_response_arguments_are_refused)
{
	struct ocsp_request r;
	uint8_t *req, *resp = NULL, *cert, nonce[OCSP_NONCE_MAX + 1] = {0};
	size_t cert_len, resp_len = 0;
	EVP_PKEY *key = load_key("resp.key");
	struct ocsp_single good, s;
	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01};

	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der");
	req = parse_file("req.der", &r);
	cert = cert_der("resp.pem", &cert_len);
	good = (struct ocsp_single){.certid_der = r.id.der, .certid_len = r.id.der_len, .status = OCSP_STATUS_REVOKED,
				    .revoked_at = 1700000000, .reason = 1, .this_update = 1700000000,
				    .next_update = 1700003600};
#define REFUSED(...)                                                                                                 \
	do {                                                                                                         \
		cr_assert_not(ocsp_response_build(__VA_ARGS__, key, cert, cert_len, &resp, &resp_len));            \
		cr_assert(!resp && resp_len == 0);                                                                  \
	} while (0)
	cr_assert(ocsp_response_build(&good, nonce, OCSP_NONCE_MAX, 1700000000, key, cert, cert_len, &resp,
				      &resp_len));
	OPENSSL_free(resp);
	resp = NULL, resp_len = 0;
	REFUSED(&good, nonce, OCSP_NONCE_MAX + 1, 1700000000);
	REFUSED(&good, NULL, 4, 1700000000);
	REFUSED(&good, NULL, 0, -1);
	REFUSED(&good, NULL, 0, INT64_C(253402300800)); /* year 10000 */
	s = good, s.reason = 7;
	REFUSED(&s, NULL, 0, 1700000000);
	s = good, s.reason = 11;
	REFUSED(&s, NULL, 0, 1700000000);
	s = good, s.reason = -2;
	REFUSED(&s, NULL, 0, 1700000000);
	s = good, s.next_update = s.this_update - 1;
	REFUSED(&s, NULL, 0, 1700000000);
	s = good, s.status = (enum ocsp_status)3;
	REFUSED(&s, NULL, 0, 1700000000);
	s = good, s.certid_der = junk, s.certid_len = sizeof junk;
	REFUSED(&s, NULL, 0, 1700000000);
	s = good, s.certid_len = r.id.der_len + 1; /* the byte after the CertID: not one SEQUENCE */
	REFUSED(&s, NULL, 0, 1700000000);
	cr_assert_not(ocsp_response_build(&good, NULL, 0, 1700000000, key, cert, cert_len - 1, &resp, &resp_len));
	cr_assert_not(ocsp_response_build(&good, NULL, 0, 1700000000, key, cert + 1, cert_len - 1, &resp, &resp_len));
#undef REFUSED
	OPENSSL_free(cert);
	EVP_PKEY_free(key);
	free(req);
}

Test(ocsp, error_responses)
{
	static const struct {
		int status;
		const char *name;
	} errs[] = {{1, "malformedrequest"}, {2, "internalerror"}, {3, "trylater"}, {5, "sigrequired"},
		    {6, "unauthorized"}}; /* as OpenSSL 3 spells them */
	static const uint8_t malformed[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
	uint8_t out[16];

	cr_assert_eq(ocsp_error_response(OCSP_RESP_MALFORMED_REQUEST, out), sizeof malformed);
	cr_assert_arr_eq(out, malformed, sizeof malformed);
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		size_t n = ocsp_error_response(errs[i].status, out);
		char want[80], *text;

		cr_assert_eq(n, 5);
		spit("err.der", out, n);
		text = output("openssl ocsp -respin err.der -resp_text");
		snprintf(want, sizeof want, "Responder Error: %s (%d)", errs[i].name, errs[i].status);
		cr_assert(strstr(text, want), "%s", text);
		free(text);
	}
	cr_assert_eq(ocsp_error_response(0, out), 0);
	cr_assert_eq(ocsp_error_response(4, out), 0);
	cr_assert_eq(ocsp_error_response(7, out), 0);
	cr_assert_eq(ocsp_error_response(-1, out), 0);
}

/* ---- hostile requests ---- */

static void refused(const uint8_t *der, size_t len, const char *reason)
{
	struct ocsp_request r;
	char why[200] = "";

	cr_assert_eq(ocsp_request_parse(der, len, &r, why, sizeof why), -1, "accepted; wanted \"%s\"", reason);
	cr_assert(strstr(why, reason), "\"%s\", wanted \"%s\"", why, reason);
	cr_assert_not(r.id.der || r.id.serial_len || r.has_nonce || r.nonce || r.nonce_len);
}

Test(ocsp, every_truncation_and_a_trailing_byte_are_refused)
{
	static const char *const reqs[] = {
		"openssl ocsp -issuer ca.pem -cert leaf.pem -nonce -reqout req.der",
		"openssl ocsp -signer resp.pem -signkey resp.key -issuer ca.pem -cert leaf.pem -nonce -reqout req.der",
	};
	struct ocsp_request r;
	char why[200];

	cr_assert_eq(ocsp_request_parse(NULL, 0, &r, why, sizeof why), -1);
	cr_assert_str_eq(why, "empty request");
	cr_assert_eq(ocsp_request_parse((const uint8_t *)"", 0, &r, why, sizeof why), -1);
	for (size_t k = 0; k < sizeof reqs / sizeof reqs[0]; k++) {
		size_t len;
		uint8_t *der, *copy;

		sh("%s", reqs[k]);
		der = slurp("req.der", &len);
		for (size_t n = 0; n < len; n++) {
			/* a copy of just n bytes, so ASan sees any read past them */
			copy = malloc(n ? n : 1);
			memcpy(copy, der, n);
			why[0] = '\0';
			cr_assert_eq(ocsp_request_parse(copy, n, &r, why, sizeof why), -1, "%zu of %zu bytes", n, len);
			cr_assert(why[0]);
			free(copy);
		}
		der[len] = 0x00;
		refused(der, len + 1, "bytes after the SEQUENCE");
		free(der);
	}
	/* a why too short for the reason: cut, never overrun */
	cr_assert_eq(ocsp_request_parse((const uint8_t *)"\x30\x00", 2, &r, why, 4), -1);
	cr_assert_eq(strlen(why), 3);
	cr_assert_eq(ocsp_request_parse((const uint8_t *)"\x30\x00", 2, &r, NULL, 0), -1);
}

Test(ocsp, what_openssl_can_be_made_to_send_and_we_refuse)
{
	/* two certificates, MD5, a 21-octet serial, a negative serial */
	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -cert resp.pem -no_nonce -reqout two.der");
	cr_assert_str_eq(refused_file("two.der"), "one certificate per request");
	sh("openssl ocsp -md5 -issuer ca.pem -cert leaf.pem -no_nonce -reqout md5.der");
	cr_assert(strstr(refused_file("md5.der"), "hash algorithm not supported"));
	sh("openssl ocsp -issuer ca.pem -serial 0xffffffffffffffffffffffffffffffffffffffff -no_nonce -reqout long.der");
	cr_assert(strstr(refused_file("long.der"), "longer than 20 octets"));
	sh("openssl ocsp -issuer ca.pem -serial -5 -no_nonce -reqout neg.der");
	cr_assert(strstr(refused_file("neg.der"), "negative"));

	/* the longest serial allowed: 20 octets, top bit clear */
	{
		struct ocsp_request r;
		uint8_t *der;

		sh("openssl ocsp -issuer ca.pem -serial 0x7fffffffffffffffffffffffffffffffffffffff -no_nonce "
		   "-reqout max.der");
		der = parse_file("max.der", &r);
		cr_assert_eq(r.id.serial_len, 20);
		cr_assert_eq(r.id.serial[0], 0x7f);
		cr_assert(matches(&r.id, "ca.pem"));
		free(der);
	}
}

/* Requests built here around a CertID OpenSSL made, to reach what no
 * client sends. */
static uint8_t certid[256];
static size_t certid_len;

static void load_certid(void)
{
	struct ocsp_request r;
	uint8_t *der;

	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -no_nonce -reqout req.der");
	der = parse_file("req.der", &r);
	cr_assert_leq(r.id.der_len, sizeof certid);
	memcpy(certid, r.id.der, r.id.der_len);
	certid_len = r.id.der_len;
	free(der);
}

static const uint8_t oid_nonce[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02};
static const uint8_t oid_other[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01}; /* 1.3.6.1.4.1.99999.1 */

/* an Extension: critical -1 leaves the BOOLEAN out, 0 encodes FALSE */
static void ext(CBB *list, const uint8_t *oid, size_t oid_len, int critical, size_t value_len)
{
	CBB e, o, v;
	uint8_t *p;

	cr_assert(CBB_add_asn1(list, &e, CBS_ASN1_SEQUENCE) && CBB_add_asn1(&e, &o, CBS_ASN1_OBJECT) &&
		  CBB_add_bytes(&o, oid, oid_len));
	if (critical >= 0)
		cr_assert(CBB_add_asn1_bool(&e, critical));
	cr_assert(CBB_add_asn1(&e, &v, CBS_ASN1_OCTETSTRING) && CBB_add_space(&v, &p, value_len));
	memset(p, 0x5a, value_len);
	cr_assert(CBB_flush(list));
}

enum ext_set {
	NO_EXTS,
	EMPTY_EXTS,
	NONCE,
	NONCE_CRITICAL,
	NONCE_65,
	NONCE_EMPTY,
	NONCE_TWICE,
	OTHER,
	OTHER_CRITICAL,
	OTHER_FALSE_ENCODED,
	OTHER_AND_NONCE,
	PADDING,
};

static void exts(CBB *tbs, unsigned tag, enum ext_set set, size_t pad)
{
	CBB tagged, list;

	if (set == NO_EXTS)
		return;
	cr_assert(CBB_add_asn1(tbs, &tagged, tag) && CBB_add_asn1(&tagged, &list, CBS_ASN1_SEQUENCE));
	switch (set) {
	case NO_EXTS:
	case EMPTY_EXTS:
		break;
	case NONCE:
		ext(&list, oid_nonce, sizeof oid_nonce, -1, 18);
		break;
	case NONCE_CRITICAL:
		ext(&list, oid_nonce, sizeof oid_nonce, 1, 32);
		break;
	case NONCE_65:
		ext(&list, oid_nonce, sizeof oid_nonce, -1, 65);
		break;
	case NONCE_EMPTY:
		ext(&list, oid_nonce, sizeof oid_nonce, -1, 0);
		break;
	case NONCE_TWICE:
		ext(&list, oid_nonce, sizeof oid_nonce, -1, 18);
		ext(&list, oid_nonce, sizeof oid_nonce, -1, 18);
		break;
	case OTHER:
		ext(&list, oid_other, sizeof oid_other, -1, 8);
		break;
	case OTHER_CRITICAL:
		ext(&list, oid_other, sizeof oid_other, 1, 8);
		break;
	case OTHER_FALSE_ENCODED:
		ext(&list, oid_other, sizeof oid_other, 0, 8);
		break;
	case OTHER_AND_NONCE:
		ext(&list, oid_other, sizeof oid_other, -1, 8);
		ext(&list, oid_nonce, sizeof oid_nonce, -1, 64);
		break;
	case PADDING:
		ext(&list, oid_other, sizeof oid_other, -1, pad);
		break;
	}
	cr_assert(CBB_flush(tbs));
}

struct shape {
	int requests;         /* in requestList */
	int version;          /* -1: left out */
	enum ext_set req_exts, single_exts;
	size_t pad;           /* PADDING's value length */
};

static uint8_t *build(const struct shape *sh_, size_t *len)
{
	CBB cbb, req, tbs, v, vi, list, one;
	uint8_t *der;

	cr_assert(CBB_init(&cbb, 256) && CBB_add_asn1(&cbb, &req, CBS_ASN1_SEQUENCE) &&
		  CBB_add_asn1(&req, &tbs, CBS_ASN1_SEQUENCE));
	if (sh_->version >= 0)
		cr_assert(CBB_add_asn1(&tbs, &v, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0) &&
			  CBB_add_asn1(&v, &vi, CBS_ASN1_INTEGER) && CBB_add_u8(&vi, (uint8_t)sh_->version));
	cr_assert(CBB_add_asn1(&tbs, &list, CBS_ASN1_SEQUENCE));
	for (int i = 0; i < sh_->requests; i++) {
		cr_assert(CBB_add_asn1(&list, &one, CBS_ASN1_SEQUENCE) && CBB_add_bytes(&one, certid, certid_len));
		exts(&one, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0, sh_->single_exts, sh_->pad);
		cr_assert(CBB_flush(&list));
	}
	cr_assert(CBB_flush(&tbs));
	exts(&tbs, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 2, sh_->req_exts, sh_->pad);
	cr_assert(CBB_finish(&cbb, &der, len));
	return der;
}

static int parse_shape(struct shape s, struct ocsp_request *r, char *why, size_t whylen)
{
	size_t len;
	uint8_t *der = build(&s, &len);
	int rc = ocsp_request_parse(der, len, r, why, whylen);

	/* r must not point into der after this: callers look at flags only */
	OPENSSL_free(der);
	return rc;
}

static void shape_refused(struct shape s, const char *reason)
{
	size_t len;
	uint8_t *der = build(&s, &len);

	refused(der, len, reason);
	OPENSSL_free(der);
}

Test(ocsp, hand_built_requests)
{
	struct ocsp_request r;
	char why[200] = "";

	load_certid();
	/* the builder itself makes what OpenSSL makes */
	cr_assert_eq(parse_shape((struct shape){1, -1, NO_EXTS, NO_EXTS, 0}, &r, why, sizeof why), 0, "%s", why);
	cr_assert_not(r.has_nonce);
	cr_assert_eq(parse_shape((struct shape){1, 0, NONCE, NO_EXTS, 0}, &r, why, sizeof why), 0, "%s", why);
	cr_assert(r.has_nonce && r.nonce_len == 18);
	cr_assert_eq(parse_shape((struct shape){1, -1, NONCE_CRITICAL, NO_EXTS, 0}, &r, why, sizeof why), 0, "%s",
		     why);
	cr_assert(r.has_nonce && r.nonce_len == 32);
	cr_assert_eq(parse_shape((struct shape){1, -1, OTHER_AND_NONCE, OTHER, 0}, &r, why, sizeof why), 0, "%s",
		     why);
	cr_assert(r.has_nonce && r.nonce_len == OCSP_NONCE_MAX);
	/* a nonce among singleRequestExtensions is not the request's nonce */
	cr_assert_eq(parse_shape((struct shape){1, -1, OTHER, NONCE, 0}, &r, why, sizeof why), 0, "%s", why);
	cr_assert_not(r.has_nonce);

	shape_refused((struct shape){0, -1, NO_EXTS, NO_EXTS, 0}, "one certificate per request");
	shape_refused((struct shape){2, -1, NONCE, NO_EXTS, 0}, "one certificate per request");
	shape_refused((struct shape){3, -1, NO_EXTS, NO_EXTS, 0}, "one certificate per request");
	shape_refused((struct shape){1, 1, NO_EXTS, NO_EXTS, 0}, "version other than v1");
	shape_refused((struct shape){1, 2, NO_EXTS, NO_EXTS, 0}, "version other than v1");
	shape_refused((struct shape){1, -1, EMPTY_EXTS, NO_EXTS, 0}, "requestExtensions: empty");
	shape_refused((struct shape){1, -1, NO_EXTS, EMPTY_EXTS, 0}, "singleRequestExtensions: empty");
	shape_refused((struct shape){1, -1, OTHER_CRITICAL, NO_EXTS, 0}, "unknown critical extension");
	shape_refused((struct shape){1, -1, NO_EXTS, OTHER_CRITICAL, 0}, "unknown critical extension");
	shape_refused((struct shape){1, -1, OTHER_FALSE_ENCODED, NO_EXTS, 0}, "critical FALSE encoded");
	shape_refused((struct shape){1, -1, NONCE_65, NO_EXTS, 0}, "nonce of 65 bytes");
	shape_refused((struct shape){1, -1, NONCE_EMPTY, NO_EXTS, 0}, "nonce of 0 bytes");
	shape_refused((struct shape){1, -1, NONCE_TWICE, NO_EXTS, 0}, "the same extension twice");
}

Test(ocsp, the_size_limit_is_exact)
{
	struct ocsp_request r;
	char why[200] = "";
	size_t base, len;
	uint8_t *der;

	load_certid();
	der = build(&(struct shape){1, -1, PADDING, NO_EXTS, 1000}, &base);
	OPENSSL_free(der);
	/* past 255 bytes the lengths' own sizes stop changing below 64 KiB */
	der = build(&(struct shape){1, -1, PADDING, NO_EXTS, 1000 + OCSP_REQUEST_MAX - base}, &len);
	cr_assert_eq(len, OCSP_REQUEST_MAX);
	cr_assert_eq(ocsp_request_parse(der, len, &r, why, sizeof why), 0, "%s", why);
	OPENSSL_free(der);
	der = build(&(struct shape){1, -1, PADDING, NO_EXTS, 1001 + OCSP_REQUEST_MAX - base}, &len);
	cr_assert_eq(len, OCSP_REQUEST_MAX + 1);
	refused(der, len, "request of 8193 bytes");
	OPENSSL_free(der);
}

Test(ocsp, certid_fields_are_checked)
{
	/* CertIDs with one field changed, in a request OpenSSL made */
	static const struct {
		size_t at;      /* offset in the sha1 CertID of a request for leaf.pem */
		uint8_t from, to;
		const char *reason;
	} edits[] = {
		/* 0: 30 44 | 2: 30 09 06 05 2b0e03021a 05 00 | 13: 04 14 name hash | 35: 04 14 key hash |
		 * 57: 02 0b 00 8a 1b ... */
		{10, 0x1a, 0x1b, "hash algorithm not supported"},
		{11, 0x05, 0x04, "parameters other than NULL"},
		{14, 0x14, 0x13, "SHA-1 digests (20 bytes)"},
		{36, 0x14, 0x15, "SHA-1 digests (20 bytes)"},
		{57, 0x02, 0x03, "serialNumber is not a DER INTEGER"},
		{59, 0x00, 0x80, "negative serialNumber"},
		{60, 0x8a, 0x00, "serialNumber is not a DER INTEGER"}, /* 00 00 1b ...: not minimal */
	};
	size_t len;
	uint8_t *der;

	sh("openssl ocsp -issuer ca.pem -cert leaf.pem -no_nonce -reqout req.der");
	der = slurp("req.der", &len);
	/* the CertID starts at offset 8: 30 L | 30 L | 30 L | 30 L | CertID */
	cr_assert_eq(der[8], 0x30);
	cr_assert_eq(der[8 + 1], 0x44);
	cr_assert_eq(der[8 + 57], 0x02);
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		uint8_t *copy = malloc(len);

		memcpy(copy, der, len);
		cr_assert_eq(copy[8 + edits[i].at], edits[i].from, "edit %zu", i);
		copy[8 + edits[i].at] = edits[i].to;
		refused(copy, len, edits[i].reason);
		free(copy);
	}
	free(der);
}

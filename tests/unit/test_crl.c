/* CRLs built with CBB (workers/signer/crl.h), read back by OpenSSL 3's CLI:
 * the signature verifies under CAs of every key type the signer makes, each
 * entry shows with its serial, date and reason, the CRL number and the
 * authority key identifier are there; the wire entries refuse what they must. */
#include <criterion/criterion.h>
#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "crl.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/cw-crl-XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(crl, .init = setup, .fini = teardown);

/* Runs a shell command, stdout and stderr into *out (malloc'd, NUL
 * terminated); its exit status. */
__attribute__((format(printf, 2, 3))) static int run(char **out, const char *fmt, ...)
{
	char cmd[2048];
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	p = popen(cmd, "r");
	cr_assert(p && buf);
	for (;;) {
		size_t got;

		if (cap - len < 4096)
			cr_assert((buf = realloc(buf, cap *= 2)));
		got = fread(buf + len, 1, cap - len - 1, p);
		if (got == 0)
			break;
		len += got;
	}
	buf[len] = 0;
	st = pclose(p);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct ca {
	EVP_PKEY *key;
	X509 *cert;
	char pem[128];
};

/* A self-signed CA made by openssl req; newkey is what -newkey takes. */
static void make_ca(struct ca *ca, const char *name, const char *newkey, const char *extra)
{
	char keyfile[128], *out;
	BIO *b;

	snprintf(keyfile, sizeof keyfile, "%s/%s.key", dir, name);
	snprintf(ca->pem, sizeof ca->pem, "%s/%s.pem", dir, name);
	cr_assert_eq(run(&out,
			 "openssl req -x509 -newkey %s -nodes -keyout %s -out %s -subj '/C=DE/O=Certward Test/CN=%s CA' "
			 "-days 3650 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign %s",
			 newkey, keyfile, ca->pem, name, extra),
		     0, "openssl req: %s", out);
	free(out);
	cr_assert((b = BIO_new_file(keyfile, "r")));
	cr_assert((ca->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)));
	BIO_free(b);
	cr_assert((b = BIO_new_file(ca->pem, "r")));
	cr_assert((ca->cert = PEM_read_bio_X509(b, NULL, NULL, NULL)));
	BIO_free(b);
}

static void ca_free(struct ca *ca)
{
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
}

static const char *const reason_text[] = {"Unspecified",	   "Key Compromise",	   "CA Compromise",
					  "Affiliation Changed", "Superseded",	   "Cessation Of Operation",
					  "Certificate Hold",	   NULL,		   "Remove From CRL",
					  "Privilege Withdrawn", "AA Compromise"};

static void hex_upper(const uint8_t *p, size_t n, char *out, const char *sep)
{
	*out = 0;
	for (size_t i = 0; i < n; i++)
		out += sprintf(out, "%s%02X", i && *sep ? sep : "", p[i]);
}

/* openssl's "Mon DD HH:MM:SS YYYY GMT" */
static void openssl_date(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%b %e %H:%M:%S %Y GMT", &tm);
}

/* the line after the one holding label, trimmed */
static void line_after(const char *text, const char *label, char *out, size_t len)
{
	const char *p = strstr(text, label), *e;

	*out = 0;
	if (!p || !(p = strchr(p, '\n')))
		return;
	while (*++p == ' ')
		;
	e = strchr(p, '\n');
	if (!e)
		e = p + strlen(p);
	while (e > p && e[-1] == ' ')
		e--;
	snprintf(out, len, "%.*s", (int)(e - p), p);
}

/* n entries with random serials of 4..20 bytes (a fifth with the top bit
 * set), times from 2001 to 2033, reasons cycling through the valid ones */
static struct crl_entry *random_entries(size_t n)
{
	static const int8_t reasons[] = {0, 1, 2, 3, 4, 5, 6, 8, 9, 10};
	struct crl_entry *e = calloc(n ? n : 1, sizeof *e);
	uint32_t r;

	for (size_t i = 0; i < n; i++) {
		RAND_bytes((uint8_t *)&r, sizeof r);
		RAND_bytes(e[i].serial, sizeof e[i].serial);
		/* 4..20 bytes: unique enough for a thousand */
		e[i].serial_len = (uint8_t)(i % 3 == 0 ? 4 + r % 17 : 16);
		e[i].serial[0] = (uint8_t)(i % 5 == 0 ? e[i].serial[0] | 0x80 : (e[i].serial[0] & 0x7f) | 0x01);
		e[i].revoked_at = 1000000000 + (int64_t)(r % 1000000000u);
		e[i].reason = reasons[i % sizeof reasons];
	}
	return e;
}

/* the TBSCertList's fields up to nextUpdate, and the tag that follows */
struct tbs_view {
	CBS issuer;
	unsigned this_tag, next_tag, after_tag;
};

static void tbs_view(const uint8_t *der, size_t len, struct tbs_view *v)
{
	CBS in, list, tbs, skip, t;
	uint64_t version;

	CBS_init(&in, der, len);
	cr_assert(CBS_get_asn1(&in, &list, CBS_ASN1_SEQUENCE) && CBS_len(&in) == 0);
	cr_assert(CBS_get_asn1(&list, &tbs, CBS_ASN1_SEQUENCE));
	cr_assert(CBS_get_asn1_uint64(&tbs, &version) && version == 1);
	cr_assert(CBS_get_asn1(&tbs, &skip, CBS_ASN1_SEQUENCE));
	cr_assert(CBS_get_asn1_element(&tbs, &v->issuer, CBS_ASN1_SEQUENCE));
	cr_assert(CBS_get_any_asn1(&tbs, &t, &v->this_tag));
	cr_assert(CBS_get_any_asn1(&tbs, &t, &v->next_tag));
	cr_assert(CBS_get_any_asn1(&tbs, &t, &v->after_tag));
}

/* Builds the CRL, writes it, has openssl check and print it, and checks
 * what it printed; returns the printout (free). */
static char *check_crl(struct ca *ca, const char *name, const struct crl_entry *e, size_t n, uint64_t number,
		       int64_t this_update, int64_t next_update)
{
	char why[256], path[160], *out, want[400], kid[128];
	uint8_t *der, *subject = NULL;
	size_t der_len;
	int subject_len;
	struct tbs_view v;
	FILE *f;
	const ASN1_OCTET_STRING *skid;

	cr_assert_eq(crl_build(ca->key, ca->cert, e, n, number, this_update, next_update, &der, &der_len, why,
			       sizeof why),
		     0, "%s: %s", name, why);
	tbs_view(der, der_len, &v);
	subject_len = i2d_X509_NAME(X509_get_subject_name(ca->cert), &subject);
	cr_assert(subject_len > 0 && CBS_len(&v.issuer) == (size_t)subject_len &&
		  memcmp(CBS_data(&v.issuer), subject, (size_t)subject_len) == 0,
		  "the issuer is the CA's subject, byte for byte");
	OPENSSL_free(subject);
	cr_assert_eq(v.after_tag,
		     n ? CBS_ASN1_SEQUENCE : (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0),
		     "revokedCertificates is there only with entries");

	snprintf(path, sizeof path, "%s/%s.crl", dir, name);
	cr_assert((f = fopen(path, "wb")));
	cr_assert_eq(fwrite(der, 1, der_len, f), der_len);
	fclose(f);
	OPENSSL_free(der);

	cr_assert_eq(run(&out, "openssl crl -inform DER -in %s -CAfile %s -noout -text", path, ca->pem), 0,
		     "%s: %s", name, out);
	cr_assert(strstr(out, "verify OK"), "%s: %s", name, out);
	cr_assert(strstr(out, "Version 2 (0x1)"), "%s", out);
	openssl_date(this_update, want, sizeof want);
	cr_assert(strstr(out, "Last Update: ") && strstr(strstr(out, "Last Update: "), want), "%s: %s", want, out);
	openssl_date(next_update, want, sizeof want);
	cr_assert(strstr(out, "Next Update: ") && strstr(strstr(out, "Next Update: "), want), "%s: %s", want, out);

	line_after(out, "X509v3 CRL Number:", want, sizeof want);
	snprintf(kid, sizeof kid, "%llu", (unsigned long long)number);
	cr_assert_str_eq(want, kid, "CRL number: %s", out);
	skid = X509_get0_subject_key_id(ca->cert);
	line_after(out, "X509v3 Authority Key Identifier:", want, sizeof want);
	if (skid) {
		hex_upper(ASN1_STRING_get0_data(skid), (size_t)ASN1_STRING_length(skid), kid, ":");
		cr_assert_str_eq(want, kid, "AKI %s, want the CA's SKI %s", want, kid);
	} else {
		cr_assert(strlen(want) == 59, "an AKI of 20 bytes: %s", want);
	}

	if (n == 0)
		cr_assert(strstr(out, "No Revoked Certificates."), "%s", out);
	size_t count = 0;
	for (const char *p = out; (p = strstr(p, "Serial Number: ")); p++)
		count++;
	cr_assert_eq(count, n, "%s: %zu entries printed, %zu built", name, count, n);
	for (size_t i = 0; i < n; i++) {
		char serial[64], pattern[96], date[64];
		const char *block, *end;
		size_t blen;

		hex_upper(e[i].serial, e[i].serial_len, serial, "");
		snprintf(pattern, sizeof pattern, "Serial Number: %s\n", serial);
		block = strstr(out, pattern);
		cr_assert(block, "%s: entry %zu, serial %s not printed", name, i, serial);
		block += strlen(pattern);
		end = strstr(block, "Serial Number: ");
		if (!end)
			end = strstr(block, "Signature Algorithm");
		cr_assert(end);
		blen = (size_t)(end - block);
		openssl_date(e[i].revoked_at, date, sizeof date);
		snprintf(pattern, sizeof pattern, "Revocation Date: %s\n", date);
		cr_assert(memmem(block, blen, pattern, strlen(pattern)), "entry %zu: want %s in %.*s", i, pattern,
			  (int)blen, block);
		if (e[i].reason) {
			cr_assert(memmem(block, blen, "X509v3 CRL Reason Code:", 23), "entry %zu: %.*s", i, (int)blen,
				  block);
			cr_assert(memmem(block, blen, reason_text[e[i].reason], strlen(reason_text[e[i].reason])),
				  "entry %zu: want %s in %.*s", i, reason_text[e[i].reason], (int)blen, block);
		} else {
			cr_assert(!memmem(block, blen, "Reason Code", 11) && !memmem(block, blen, "extensions", 10),
				  "entry %zu has reason 0: no extension; %.*s", i, (int)blen, block);
		}
	}
	return out;
}

static void crls_of(const char *name, const char *newkey, const char *extra)
{
	struct ca ca;
	struct crl_entry *many = random_entries(1000), one = {.serial = {0x01, 0x23, 0xab}, .serial_len = 3,
							      .revoked_at = 1700000000, .reason = 1};
	int64_t now = (int64_t)time(NULL);
	char label[64];

	make_ca(&ca, name, newkey, extra);
	snprintf(label, sizeof label, "%s-0", name);
	free(check_crl(&ca, label, NULL, 0, 1, now, now + 7 * 86400));
	snprintf(label, sizeof label, "%s-1", name);
	free(check_crl(&ca, label, &one, 1, 2, now, now + 7 * 86400));
	snprintf(label, sizeof label, "%s-1000", name);
	free(check_crl(&ca, label, many, 1000, UINT64_C(18446744073709551615), now, now + 86400));
	free(many);
	ca_free(&ca);
}

/* openssl's default subjectKeyIdentifier is the SHA-1 of the key, what a CA
 * without one gets; P-384's and Ed25519's are set apart, so the AKI must
 * come from the SKI */
Test(crl, p256) { crls_of("p256", "ec -pkeyopt ec_paramgen_curve:P-256", ""); }
Test(crl, p384)
{
	crls_of("p384", "ec -pkeyopt ec_paramgen_curve:P-384", "-addext subjectKeyIdentifier=C0:FF:EE:01:02:03:04:05");
}
Test(crl, rsa2048) { crls_of("rsa2048", "rsa:2048", ""); }
Test(crl, ed25519) { crls_of("ed25519", "ed25519", "-addext subjectKeyIdentifier=0123456789ABCDEF0123456789ABCDEF"); }

Test(crl, aki_without_ski)
{
	struct ca ca;
	char *out, want[128], got[128];
	struct crl_entry one = {.serial = {0x7f}, .serial_len = 1, .revoked_at = 1, .reason = 0};

	make_ca(&ca, "noski", "ec -pkeyopt ec_paramgen_curve:P-256", "-addext subjectKeyIdentifier=none");
	cr_assert_null(X509_get0_subject_key_id(ca.cert));
	/* openssl still gives the certificate an AKI: the SHA-1 of its own key,
	 * as RFC 5280's method 1 computes it, the keyIdentifier the CRL needs */
	cr_assert_eq(run(&out, "openssl x509 -in %s -noout -text", ca.pem), 0);
	line_after(out, "X509v3 Authority Key Identifier:", want, sizeof want);
	free(out);
	cr_assert_eq(strlen(want), 59, "%s", want);
	out = check_crl(&ca, "noski", &one, 1, 0, 86400, 2 * 86400);
	line_after(out, "X509v3 Authority Key Identifier:", got, sizeof got);
	cr_assert(strstr(got, want), "CRL AKI %s, key's %s", got, want);
	cr_assert(strstr(out, "Revocation Date: Jan  1 00:00:01 1970 GMT"), "%s", out);
	free(out);
	ca_free(&ca);
}

Test(crl, generalized_time_from_2050)
{
	struct ca ca;
	char *out;
	uint8_t *der;
	size_t len;
	char why[256];
	struct tbs_view v;
	struct crl_entry e[] = {
		{.serial = {0x80}, .serial_len = 1, .revoked_at = INT64_C(2524607999), .reason = 4}, /* 2049-12-31 */
		{.serial = {0x81}, .serial_len = 1, .revoked_at = INT64_C(2524608000), .reason = 10}, /* 2050-01-01 */
		{.serial = {0x82}, .serial_len = 1, .revoked_at = INT64_C(253402300799), .reason = 9},
	};

	make_ca(&ca, "late", "ec -pkeyopt ec_paramgen_curve:P-256", "");
	/* thisUpdate the last second of UTCTime, nextUpdate the first of
	 * GeneralizedTime */
	cr_assert_eq(crl_build(ca.key, ca.cert, e, 3, 9, INT64_C(2524607999), INT64_C(2524608000), &der, &len, why,
			       sizeof why),
		     0, "%s", why);
	tbs_view(der, len, &v);
	cr_assert_eq(v.this_tag, CBS_ASN1_UTCTIME);
	cr_assert_eq(v.next_tag, CBS_ASN1_GENERALIZEDTIME);
	OPENSSL_free(der);
	out = check_crl(&ca, "late", e, 3, 9, INT64_C(2556144000), INT64_C(2556144000) + 86400); /* 2051 */
	cr_assert(strstr(out, "Last Update: Jan  1 00:00:00 2051 GMT"), "%s", out);
	cr_assert(strstr(out, "Revocation Date: Dec 31 23:59:59 9999 GMT"), "%s", out);
	free(out);
	ca_free(&ca);
}

/* Every revocation date, through BoringSSL's own parser, against the Time
 * ASN1_TIME_set makes (the same UTCTime/GeneralizedTime rule): leap days,
 * century years, 2049/2050, 9999. */
Test(crl, dates_against_boringssl)
{
	static const int64_t fixed[] = {0,		59,	      86399,	    86400,	  951782400 /* 2000-02-29 */,
					951868800,	4107456000 /* 2100-02-28 */, 4107542400, 13574563200 /* 2400-02-29 */,
					2524607999, 2524608000, 253402300799};
	size_t nfixed = sizeof fixed / sizeof fixed[0], n = 5000 + nfixed;
	struct crl_entry *e = calloc(n, sizeof *e);
	struct ca ca;
	uint8_t *der;
	const uint8_t *p;
	size_t len;
	char why[256];
	X509_CRL *crl;
	STACK_OF(X509_REVOKED) *revoked;

	for (size_t i = 0; i < n; i++) {
		uint64_t r;

		RAND_bytes((uint8_t *)&r, sizeof r);
		e[i].serial_len = 4;
		e[i].serial[0] = (uint8_t)(1 + i / 16777216);
		e[i].serial[1] = (uint8_t)(i >> 16);
		e[i].serial[2] = (uint8_t)(i >> 8);
		e[i].serial[3] = (uint8_t)i;
		e[i].revoked_at = i < nfixed ? fixed[i] : (int64_t)(r % (uint64_t)(INT64_C(253402300799) + 1));
	}
	make_ca(&ca, "dates", "ec -pkeyopt ec_paramgen_curve:P-256", "");
	cr_assert_eq(crl_build(ca.key, ca.cert, e, n, 1, 0, 1, &der, &len, why, sizeof why), 0, "%s", why);
	p = der;
	cr_assert((crl = d2i_X509_CRL(NULL, &p, (long)len)) && p == der + len);
	cr_assert_eq(X509_CRL_verify(crl, ca.key), 1);
	revoked = X509_CRL_get_REVOKED(crl);
	cr_assert_eq((size_t)sk_X509_REVOKED_num(revoked), n);
	for (size_t i = 0; i < n; i++) {
		const X509_REVOKED *r = sk_X509_REVOKED_value(revoked, i);
		ASN1_TIME *want = ASN1_TIME_set(NULL, (time_t)e[i].revoked_at);

		cr_assert(want);
		cr_assert_eq(ASN1_STRING_cmp(X509_REVOKED_get0_revocationDate(r), want), 0,
			     "entry %zu, time %lld: %.*s, want %.*s", i, (long long)e[i].revoked_at,
			     ASN1_STRING_length(X509_REVOKED_get0_revocationDate(r)),
			     (const char *)ASN1_STRING_get0_data(X509_REVOKED_get0_revocationDate(r)),
			     ASN1_STRING_length(want), (const char *)ASN1_STRING_get0_data(want));
		ASN1_TIME_free(want);
	}
	X509_CRL_free(crl);
	OPENSSL_free(der);
	free(e);
	ca_free(&ca);
}

Test(crl, build_refuses)
{
	struct ca ca, other;
	uint8_t *der = (uint8_t *)"x";
	size_t len = 1;
	char why[256];
	struct crl_entry ok = {.serial = {0x01}, .serial_len = 1, .revoked_at = 5}, bad;

	make_ca(&ca, "a", "ec -pkeyopt ec_paramgen_curve:P-256", "");
	make_ca(&other, "b", "ec -pkeyopt ec_paramgen_curve:P-256", "");
	cr_assert_eq(crl_build(other.key, ca.cert, &ok, 1, 1, 10, 20, &der, &len, why, sizeof why), -1);
	cr_assert(strstr(why, "not the CA certificate's"), "%s", why);
	cr_assert(der == NULL && len == 0);
	cr_assert_eq(crl_build(ca.key, ca.cert, &ok, 1, 1, 20, 20, &der, &len, why, sizeof why), -1);
	cr_assert_eq(crl_build(ca.key, ca.cert, &ok, 1, 1, -1, 20, &der, &len, why, sizeof why), -1);
	cr_assert_eq(crl_build(ca.key, ca.cert, &ok, 1, 1, 10, INT64_C(253402300800), &der, &len, why, sizeof why),
		     -1);
	bad = ok, bad.reason = 7;
	cr_assert_eq(crl_build(ca.key, ca.cert, &bad, 1, 1, 10, 20, &der, &len, why, sizeof why), -1);
	bad = ok, bad.serial_len = 0;
	cr_assert_eq(crl_build(ca.key, ca.cert, &bad, 1, 1, 10, 20, &der, &len, why, sizeof why), -1);
	bad = ok, bad.serial[0] = 0, bad.serial_len = 2;
	cr_assert_eq(crl_build(ca.key, ca.cert, &bad, 1, 1, 10, 20, &der, &len, why, sizeof why), -1);
	bad = ok, bad.revoked_at = -5;
	cr_assert_eq(crl_build(ca.key, ca.cert, &bad, 1, 1, 10, 20, &der, &len, why, sizeof why), -1);
	cr_assert_eq(crl_build(ca.key, ca.cert, &ok, 1, 1, 10, 20, &der, &len, why, sizeof why), 0, "%s", why);
	OPENSSL_free(der);
	ca_free(&ca);
	ca_free(&other);
}

Test(crl, wire_round_trip)
{
	struct crl_entry in[3] = {
		{.serial = {0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19},
		 .serial_len = 20,
		 .revoked_at = INT64_C(253402300799),
		 .reason = 10},
		{.serial = {0x01}, .serial_len = 1, .revoked_at = 0, .reason = 0},
		{.serial = {0x12, 0x34}, .serial_len = 2, .revoked_at = 1700000000, .reason = 8},
	},
			 out[3];
	uint8_t wire[3 * CRL_ENTRY_WIRE];
	char why[256];

	for (int i = 0; i < 3; i++)
		crl_entry_pack(&in[i], wire + i * CRL_ENTRY_WIRE);
	cr_assert_eq(wire[CRL_ENTRY_WIRE + 0], 1);
	cr_assert_eq(wire[2 * CRL_ENTRY_WIRE + 28], 1700000000 & 0xff, "big-endian time");
	cr_assert_eq(crl_entries_parse(wire, sizeof wire, out, why, sizeof why), 0, "%s", why);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(out[i].serial_len, in[i].serial_len);
		cr_assert_arr_eq(out[i].serial, in[i].serial, sizeof in[i].serial);
		cr_assert_eq(out[i].revoked_at, in[i].revoked_at);
		cr_assert_eq(out[i].reason, in[i].reason);
	}
	cr_assert_eq(crl_entries_parse(wire, 0, out, why, sizeof why), 0, "no entries is fine");
}

/* one valid wire entry, changed by byte, must be refused with why */
static void refused(size_t at, uint8_t value, const char *what)
{
	struct crl_entry e = {.serial = {0x42, 0x43}, .serial_len = 2, .revoked_at = 1700000000, .reason = 1}, out[2];
	uint8_t wire[2 * CRL_ENTRY_WIRE];
	char why[256] = "";

	crl_entry_pack(&e, wire);
	crl_entry_pack(&e, wire + CRL_ENTRY_WIRE);
	cr_assert_eq(crl_entries_parse(wire, sizeof wire, out, why, sizeof why), 0, "%s", why);
	wire[CRL_ENTRY_WIRE + at] = value;
	cr_assert_eq(crl_entries_parse(wire, sizeof wire, out, why, sizeof why), -1, "%s accepted", what);
	cr_assert(strstr(why, "entry 1"), "%s: %s", what, why);
}

Test(crl, wire_refuses)
{
	uint8_t wire[3 * CRL_ENTRY_WIRE] = {0};
	struct crl_entry out[3];
	char why[256];

	for (size_t len = 1; len < sizeof wire; len++) {
		if (len % CRL_ENTRY_WIRE == 0)
			continue;
		cr_assert_eq(crl_entries_parse(wire, len, out, why, sizeof why), -1, "length %zu", len);
	}
	refused(0, 0, "serial_len 0");
	refused(0, 21, "serial_len 21");
	refused(0, 255, "serial_len 255");
	refused(1, 0, "a leading zero byte");
	refused(3, 1, "a byte past serial_len");
	refused(20, 1, "the last serial byte past serial_len");
	refused(29, 7, "reason 7");
	refused(29, 11, "reason 11");
	refused(29, 0x80, "reason 128");
	refused(30, 1, "padding");
	refused(31, 0x80, "padding");
	refused(21, 0x80, "a negative time");
	refused(21, 0x01, "a time past 9999");
}

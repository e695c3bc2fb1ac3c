/* See crl.h. The TBSCertList (RFC 5280 5.1):
 *
 *   SEQUENCE { version INTEGER 1, signature AlgorithmIdentifier, issuer Name,
 *              thisUpdate Time, nextUpdate Time,
 *              revokedCertificates SEQUENCE OF SEQUENCE {
 *                  userCertificate INTEGER, revocationDate Time,
 *                  crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
 *              crlExtensions [0] EXPLICIT Extensions }
 *
 * An entry is at most 56 bytes, so it is written whole into space the CBB
 * hands out; a first pass over the entries checks them and sums their sizes,
 * so the buffer is allocated once, at its final size, and nothing fails half
 * way through. */
#include "crl.h"

#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "x509sig.h"

#define CRL_TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define CRL_REASON_MAX 10		   /* aACompromise */
#define CRL_REASON_UNUSED 7		   /* not assigned in RFC 5280 */

static int fail(char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return -1;
}

/* msg with BoringSSL's first queued error, which is then cleared */
static int fail_crypto(char *why, size_t whylen, const char *msg)
{
	char err[200] = "";
	uint32_t code = ERR_get_error();

	if (code)
		ERR_error_string_n(code, err, sizeof err);
	snprintf(why, whylen, "%s%s%s", msg, code ? ": " : "", err);
	ERR_clear_error();
	return -1;
}

/* Checks what both the wire form and crl_build's caller must respect. */
static int entry_check(const struct crl_entry *e, size_t i, char *why, size_t whylen)
{
	if (e->serial_len < 1 || e->serial_len > sizeof e->serial)
		snprintf(why, whylen, "entry %zu: serial length %u, not 1..20", i, (unsigned)e->serial_len);
	else if (e->serial[0] == 0)
		snprintf(why, whylen, "entry %zu: the serial has a leading zero byte", i);
	else if (e->reason < 0 || e->reason > CRL_REASON_MAX || e->reason == CRL_REASON_UNUSED)
		snprintf(why, whylen, "entry %zu: reason %d is not a CRLReason (0..10 except 7)", i, e->reason);
	else if (e->revoked_at < 0 || e->revoked_at > CRL_TIME_MAX)
		snprintf(why, whylen, "entry %zu: revocation time %lld out of range (1970..9999)", i,
			 (long long)e->revoked_at);
	else
		return 0;
	return -1;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int crl_entries_parse(const uint8_t *buf, size_t len, struct crl_entry *out, char *why, size_t whylen)
{
	if (len % CRL_ENTRY_WIRE != 0) {
		snprintf(why, whylen, "entries: %zu bytes, not a multiple of %d", len, CRL_ENTRY_WIRE);
		return -1;
	}
	for (size_t i = 0; i < len / CRL_ENTRY_WIRE; i++) {
		const uint8_t *w = buf + i * CRL_ENTRY_WIRE;
		struct crl_entry *e = &out[i];
		size_t k;

		e->serial_len = w[0];
		memcpy(e->serial, w + 1, sizeof e->serial);
		e->revoked_at = (int64_t)get_u64(w + 21);
		e->reason = (int8_t)w[29];
		if (w[29] > CRL_REASON_MAX) {
			snprintf(why, whylen, "entry %zu: reason %u is not a CRLReason (0..10 except 7)", i, w[29]);
			return -1;
		}
		if (entry_check(e, i, why, whylen) != 0)
			return -1;
		for (k = e->serial_len; k < sizeof e->serial && e->serial[k] == 0; k++)
			;
		if (k < sizeof e->serial) {
			snprintf(why, whylen, "entry %zu: nonzero bytes past the serial's %u", i, (unsigned)e->serial_len);
			return -1;
		}
		if (w[30] != 0 || w[31] != 0) {
			snprintf(why, whylen, "entry %zu: nonzero padding", i);
			return -1;
		}
	}
	return 0;
}

void crl_entry_pack(const struct crl_entry *e, uint8_t out[CRL_ENTRY_WIRE])
{
	size_t n = e->serial_len < sizeof e->serial ? e->serial_len : sizeof e->serial;
	uint64_t t = (uint64_t)e->revoked_at;

	memset(out, 0, CRL_ENTRY_WIRE);
	out[0] = e->serial_len;
	memcpy(out + 1, e->serial, n);
	for (int i = 0; i < 8; i++)
		out[21 + i] = (uint8_t)(t >> (56 - 8 * i));
	out[29] = (uint8_t)e->reason;
}

/* Days since 1970-01-01 (not negative) to a Gregorian date. Counted from
 * 0000-03-01, so that a leap day is the last day of its year: 400 years are
 * 146097 days, each of the first three centuries 36524 (the fourth one day
 * more), four years 1461 (but the last four of those centuries 1460), a year
 * 365 (every fourth one day more). */
static void civil_date(int64_t days, int *year, int *month, int *mday)
{
	static const uint16_t from_march[12] = {0, 31, 61, 92, 122, 153, 184, 214, 245, 275, 306, 337};
	int64_t d = days + 719468; /* days from 0000-03-01 to 1970-01-01 */
	int64_t y = d / 146097 * 400, c, q, r;
	int m;

	d %= 146097;
	c = d / 36524;
	if (c > 3)
		c = 3; /* the 400th year's February 29 */
	d -= c * 36524;
	q = d / 1461;
	d -= q * 1461;
	r = d / 365;
	if (r > 3)
		r = 3; /* February 29 */
	d -= r * 365;
	y += c * 100 + q * 4 + r;
	for (m = 11; from_march[m] > d; m--)
		;
	*mday = (int)(d - from_march[m]) + 1;
	*month = m < 10 ? m + 3 : m - 9;
	*year = (int)y + (*month <= 2);
}

static uint8_t *put2(uint8_t *p, int v)
{
	p[0] = (uint8_t)('0' + v / 10);
	p[1] = (uint8_t)('0' + v % 10);
	return p + 2;
}

/* DER identifier octets, for what is written byte by byte (CBS_ASN1_*
 * constants are CBB's tag numbering, not octets) */
#define DER_INTEGER 0x02
#define DER_UTCTIME 0x17
#define DER_GENERALIZEDTIME 0x18
#define DER_SEQUENCE 0x30

#define TIME_TLV_MAX 17
#define GENERALIZED_FROM INT64_C(2524608000) /* 2050-01-01T00:00:00Z */

/* Writes t (0..CRL_TIME_MAX) as a Time (RFC 5280 5.1.2.4): UTCTime
 * YYMMDDHHMMSSZ before 2050, GeneralizedTime YYYYMMDDHHMMSSZ from 2050, tag
 * and length included. Returns its size, 15 or 17. */
static size_t put_time(uint8_t *p, int64_t t)
{
	int year, month, mday, secs = (int)(t % 86400);
	uint8_t *q = p + 2;

	civil_date(t / 86400, &year, &month, &mday);
	if (t >= GENERALIZED_FROM) {
		p[0] = DER_GENERALIZEDTIME;
		p[1] = 15;
		q = put2(q, year / 100);
	} else {
		p[0] = DER_UTCTIME;
		p[1] = 13;
	}
	q = put2(q, year % 100);
	q = put2(q, month);
	q = put2(q, mday);
	q = put2(q, secs / 3600);
	q = put2(q, secs / 60 % 60);
	q = put2(q, secs % 60);
	*q++ = 'Z';
	return (size_t)(q - p);
}

/* crlEntryExtensions holding reasonCode (2.5.29.21) with an ENUMERATED value
 * that follows */
static const uint8_t reason_ext[] = {0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01};
#define REASON_EXT_LEN (sizeof reason_ext + 1)

/* Size of an entry's SEQUENCE, tag and length included (always under 128
 * content bytes: one length byte). */
static size_t entry_size(const struct crl_entry *e)
{
	size_t serial = 2u + (e->serial[0] & 0x80 ? 1u : 0u) + e->serial_len;
	size_t time = e->revoked_at >= GENERALIZED_FROM ? 17 : 15;

	return 2 + serial + time + (e->reason ? REASON_EXT_LEN : 0);
}

static void put_entry(uint8_t *p, size_t size, const struct crl_entry *e)
{
	int pad = e->serial[0] & 0x80;

	*p++ = DER_SEQUENCE;
	*p++ = (uint8_t)(size - 2);
	*p++ = DER_INTEGER;
	*p++ = (uint8_t)(e->serial_len + (pad ? 1 : 0));
	if (pad)
		*p++ = 0; /* keeps it positive */
	memcpy(p, e->serial, e->serial_len);
	p += e->serial_len;
	p += put_time(p, e->revoked_at);
	if (e->reason) {
		memcpy(p, reason_ext, sizeof reason_ext);
		p[sizeof reason_ext] = (uint8_t)e->reason;
	}
}

/* One extension (non-critical) with the OID's content bytes; *value is left
 * open for the extnValue's content. */
static int add_ext(CBB *exts, CBB *ext, CBB *value, const uint8_t *oid, size_t oid_len)
{
	CBB o;

	return CBB_add_asn1(exts, ext, CBS_ASN1_SEQUENCE) && CBB_add_asn1(ext, &o, CBS_ASN1_OBJECT) &&
	       CBB_add_bytes(&o, oid, oid_len) && CBB_add_asn1(ext, value, CBS_ASN1_OCTETSTRING);
}

int crl_build(EVP_PKEY *ca_key, X509 *ca_cert, const struct crl_entry *e, size_t n, uint64_t crl_number,
	      int64_t this_update, int64_t next_update, uint8_t **der, size_t *der_len, char *why, size_t whylen)
{
	static const uint8_t oid_aki[] = {0x55, 0x1d, 0x23}, oid_crl_number[] = {0x55, 0x1d, 0x14};
	CBB top, list, tbs, revoked, tagged, exts, ext, value, aki, kid;
	const ASN1_OCTET_STRING *skid;
	const ASN1_BIT_STRING *spk;
	uint8_t sha1[SHA_DIGEST_LENGTH], tm[TIME_TLV_MAX], *name = NULL, *p;
	const uint8_t *kid_data, *tbs_der;
	size_t kid_len, body = 0, sig_max, i;
	int name_len, sig_size, key_type;

	*der = NULL;
	*der_len = 0;
	CBB_zero(&top);
	if (n > (SIZE_MAX / 2) / 64)
		return fail(why, whylen, "too many entries");
	if (this_update < 0 || this_update > CRL_TIME_MAX || next_update < 0 || next_update > CRL_TIME_MAX)
		return fail(why, whylen, "thisUpdate or nextUpdate out of range (1970..9999)");
	if (next_update <= this_update)
		return fail(why, whylen, "nextUpdate is not after thisUpdate");
	for (i = 0; i < n; i++) {
		if (entry_check(&e[i], i, why, whylen) != 0)
			return -1;
		body += entry_size(&e[i]);
	}
	sig_size = EVP_PKEY_size(ca_key);
	key_type = EVP_PKEY_id(ca_key);
	if ((key_type != EVP_PKEY_EC && key_type != EVP_PKEY_RSA && key_type != EVP_PKEY_ED25519) || sig_size <= 0)
		return fail(why, whylen, "the CA key is of a type that does not sign CRLs");
	if (X509_check_private_key(ca_cert, ca_key) != 1)
		return fail_crypto(why, whylen, "the key is not the CA certificate's");

	/* keyIdentifier: the CA's subjectKeyIdentifier, else RFC 5280 4.2.1.2's
	 * method 1 */
	skid = X509_get0_subject_key_id(ca_cert);
	if (skid) {
		kid_data = ASN1_STRING_get0_data(skid);
		kid_len = (size_t)ASN1_STRING_length(skid);
	} else {
		spk = X509_get0_pubkey_bitstr(ca_cert);
		if (!spk)
			return fail_crypto(why, whylen, "the CA certificate has no public key");
		SHA1(ASN1_STRING_get0_data(spk), (size_t)ASN1_STRING_length(spk), sha1);
		kid_data = sha1;
		kid_len = sizeof sha1;
	}
	name_len = i2d_X509_NAME(X509_get_subject_name(ca_cert), &name);
	if (name_len <= 0)
		return fail_crypto(why, whylen, "cannot encode the CA's subject");

	/* the entries, the issuer, the fixed fields (under 200 bytes), the
	 * signature and its AlgorithmIdentifier (under 64), length bytes: no
	 * reallocation, so tbs_der below stays put while it is signed */
	sig_max = (size_t)sig_size + 64;
	if (!CBB_init(&top, body + (size_t)name_len + kid_len + sig_max + 1024))
		goto crypto;
	if (!CBB_add_asn1(&top, &list, CBS_ASN1_SEQUENCE) || !CBB_add_asn1(&list, &tbs, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_asn1_uint64(&tbs, 1) /* v2 */ || !x509sig_algorithm(&tbs, ca_key) ||
	    !CBB_add_bytes(&tbs, name, (size_t)name_len) || !CBB_add_bytes(&tbs, tm, put_time(tm, this_update)) ||
	    !CBB_add_bytes(&tbs, tm, put_time(tm, next_update)))
		goto crypto;
	if (n > 0) {
		if (!CBB_add_asn1(&tbs, &revoked, CBS_ASN1_SEQUENCE))
			goto crypto;
		for (i = 0; i < n; i++) {
			size_t size = entry_size(&e[i]);

			if (!CBB_add_space(&revoked, &p, size))
				goto crypto;
			put_entry(p, size, &e[i]);
		}
	}
	if (!CBB_add_asn1(&tbs, &tagged, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0) ||
	    !CBB_add_asn1(&tagged, &exts, CBS_ASN1_SEQUENCE) ||
	    /* AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING } */
	    !add_ext(&exts, &ext, &value, oid_aki, sizeof oid_aki) || !CBB_add_asn1(&value, &aki, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_asn1(&aki, &kid, CBS_ASN1_CONTEXT_SPECIFIC | 0) || !CBB_add_bytes(&kid, kid_data, kid_len) ||
	    !CBB_flush(&exts) || !add_ext(&exts, &ext, &value, oid_crl_number, sizeof oid_crl_number) ||
	    !CBB_add_asn1_uint64(&value, crl_number) || !CBB_flush(&list))
		goto crypto;

	/* list now holds the whole TBSCertList; room for what follows is
	 * reserved, so the bytes do not move while x509sig_append signs them */
	if (!CBB_reserve(&list, &p, sig_max))
		goto crypto;
	tbs_der = CBB_data(&list);
	if (!x509sig_append(&list, ca_key, tbs_der, CBB_len(&list)) || !CBB_finish(&top, der, der_len))
		goto crypto;
	OPENSSL_free(name);
	return 0;
crypto:
	CBB_cleanup(&top);
	OPENSSL_free(name);
	return fail_crypto(why, whylen, "cannot make the CRL");
}

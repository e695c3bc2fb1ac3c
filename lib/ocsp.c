/* See ocsp.h. RFC 6960 section 4 and its ASN.1 module (explicit tags). */
#include "ocsp.h"

#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "x509sig.h"

#define EXPLICIT(n) (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | (n))
#define IMPLICIT(n) (CBS_ASN1_CONTEXT_SPECIFIC | (n))

#define EXTENSIONS_MAX 16		/* in one Extensions list */
#define TIME_MAX INT64_C(253402300799)	/* 9999-12-31T23:59:59Z */

/* id-pkix-ocsp-nonce 1.3.6.1.5.5.7.48.1.2, id-pkix-ocsp-basic 1.3.6.1.5.5.7.48.1.1 */
static const uint8_t oid_nonce[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02};
static const uint8_t oid_basic[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01};

/* the digests a CertID may use: id-sha1 (RFC 3279), id-sha256/384/512 (RFC 5754) */
static const struct {
	int nid;
	uint8_t oid[9];
	size_t oid_len;
	const char *name;
} hashes[] = {
	{NID_sha1, {0x2b, 0x0e, 0x03, 0x02, 0x1a}, 5, "SHA-1"},
	{NID_sha256, {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}, 9, "SHA-256"},
	{NID_sha384, {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02}, 9, "SHA-384"},
	{NID_sha512, {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03}, 9, "SHA-512"},
};

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return -1;
}

static const EVP_MD *digest_of(int nid)
{
	switch (nid) {
	case NID_sha1:
		return EVP_sha1();
	case NID_sha256:
		return EVP_sha256();
	case NID_sha384:
		return EVP_sha384();
	case NID_sha512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* OBJECT IDENTIFIER contents: not empty, each subidentifier minimal (no
 * leading 0x80) and the last one complete */
static int valid_oid(const CBS *oid)
{
	const uint8_t *p = CBS_data(oid);
	size_t n = CBS_len(oid);

	if (n == 0 || (p[n - 1] & 0x80))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] == 0x80 && (i == 0 || !(p[i - 1] & 0x80)))
			return 0;
	return 1;
}

/* One element, with nothing after it: a field whose contents are ignored
 * still has to be DER. */
static int one_element(CBS *c)
{
	CBS e;

	return CBS_get_any_asn1_element(c, &e, NULL, NULL) && CBS_len(c) == 0;
}

/* The contents of an [n] EXPLICIT Extensions: each Extension well-formed,
 * none twice; the nonce taken when nonce is not NULL; any other extension
 * ignored unless critical. */
static int parse_extensions(CBS *tagged, const char *where, struct ocsp_request *nonce, char *why, size_t whylen)
{
	CBS list, seen[EXTENSIONS_MAX];
	size_t n = 0;

	if (!CBS_get_asn1(tagged, &list, CBS_ASN1_SEQUENCE) || CBS_len(tagged) != 0)
		return fail(why, whylen, "%s: not one SEQUENCE OF Extension", where);
	if (CBS_len(&list) == 0)
		return fail(why, whylen, "%s: empty (SIZE (1..MAX))", where);
	while (CBS_len(&list) > 0) {
		CBS ext, oid, value;
		int critical = 0;

		if (n == EXTENSIONS_MAX)
			return fail(why, whylen, "%s: more than %d extensions", where, EXTENSIONS_MAX);
		if (!CBS_get_asn1(&list, &ext, CBS_ASN1_SEQUENCE) || !CBS_get_asn1(&ext, &oid, CBS_ASN1_OBJECT) ||
		    !valid_oid(&oid))
			return fail(why, whylen, "%s: an Extension that is not SEQUENCE { OBJECT IDENTIFIER, ... }",
				    where);
		if (CBS_peek_asn1_tag(&ext, CBS_ASN1_BOOLEAN)) {
			if (!CBS_get_asn1_bool(&ext, &critical))
				return fail(why, whylen, "%s: a malformed critical BOOLEAN", where);
			if (!critical)
				return fail(why, whylen, "%s: critical FALSE encoded (DER leaves the default out)",
					    where);
		}
		if (!CBS_get_asn1(&ext, &value, CBS_ASN1_OCTETSTRING) || CBS_len(&ext) != 0)
			return fail(why, whylen, "%s: an Extension whose extnValue is not one OCTET STRING", where);
		for (size_t i = 0; i < n; i++)
			if (CBS_mem_equal(&seen[i], CBS_data(&oid), CBS_len(&oid)))
				return fail(why, whylen, "%s: the same extension twice", where);
		seen[n++] = oid;

		if (nonce && CBS_mem_equal(&oid, oid_nonce, sizeof oid_nonce)) {
			if (CBS_len(&value) == 0 || CBS_len(&value) > OCSP_NONCE_MAX)
				return fail(why, whylen, "%s: a nonce of %zu bytes (1..%d)", where, CBS_len(&value),
					    OCSP_NONCE_MAX);
			nonce->has_nonce = true;
			nonce->nonce = CBS_data(&value);
			nonce->nonce_len = CBS_len(&value);
		} else if (critical) {
			return fail(why, whylen, "%s: an unknown critical extension", where);
		}
	}
	return 0;
}

static int parse_certid(CBS *request, struct ocsp_certid *id, char *why, size_t whylen)
{
	CBS whole, copy, cid, alg, oid, params, name_hash, key_hash, serial;
	const EVP_MD *md = NULL;
	const char *md_name = "";
	int negative;

	if (!CBS_get_asn1_element(request, &whole, CBS_ASN1_SEQUENCE))
		return fail(why, whylen, "CertID: not a SEQUENCE");
	copy = whole;
	if (!CBS_get_asn1(&copy, &cid, CBS_ASN1_SEQUENCE))
		return fail(why, whylen, "CertID: not a SEQUENCE");
	if (!CBS_get_asn1(&cid, &alg, CBS_ASN1_SEQUENCE) || !CBS_get_asn1(&alg, &oid, CBS_ASN1_OBJECT))
		return fail(why, whylen, "CertID: hashAlgorithm is not an AlgorithmIdentifier");
	/* parameters: NULL, or absent (RFC 5754 allows both) */
	if (CBS_len(&alg) != 0 &&
	    (!CBS_get_asn1(&alg, &params, CBS_ASN1_NULL) || CBS_len(&params) != 0 || CBS_len(&alg) != 0))
		return fail(why, whylen, "CertID: hashAlgorithm parameters other than NULL");
	for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++)
		if (CBS_mem_equal(&oid, hashes[i].oid, hashes[i].oid_len)) {
			id->hash_nid = hashes[i].nid;
			md = digest_of(hashes[i].nid);
			md_name = hashes[i].name;
		}
	if (!md)
		return fail(why, whylen, "CertID: hash algorithm not supported (SHA-1, SHA-256, SHA-384 or SHA-512)");
	id->hash_len = EVP_MD_size(md);
	if (!CBS_get_asn1(&cid, &name_hash, CBS_ASN1_OCTETSTRING) || CBS_len(&name_hash) != id->hash_len ||
	    !CBS_get_asn1(&cid, &key_hash, CBS_ASN1_OCTETSTRING) || CBS_len(&key_hash) != id->hash_len)
		return fail(why, whylen, "CertID: issuerNameHash and issuerKeyHash must be %s digests (%zu bytes)",
			    md_name, id->hash_len);
	memcpy(id->name_hash, CBS_data(&name_hash), id->hash_len);
	memcpy(id->key_hash, CBS_data(&key_hash), id->hash_len);
	if (!CBS_get_asn1(&cid, &serial, CBS_ASN1_INTEGER) || !CBS_is_valid_asn1_integer(&serial, &negative))
		return fail(why, whylen, "CertID: serialNumber is not a DER INTEGER");
	if (negative)
		return fail(why, whylen, "CertID: negative serialNumber");
	if (CBS_len(&serial) > OCSP_SERIAL_MAX)
		return fail(why, whylen, "CertID: serialNumber longer than %d octets", OCSP_SERIAL_MAX);
	if (CBS_len(&cid) != 0)
		return fail(why, whylen, "CertID: data after serialNumber");
	memcpy(id->serial, CBS_data(&serial), CBS_len(&serial));
	id->serial_len = CBS_len(&serial);
	id->der = CBS_data(&whole);
	id->der_len = CBS_len(&whole);
	return 0;
}

int ocsp_certid_parse(const uint8_t *der, size_t len, struct ocsp_certid *out, char *why, size_t whylen)
{
	CBS c;

	memset(out, 0, sizeof *out);
	if (len > OCSP_REQUEST_MAX)
		return fail(why, whylen, "CertID: larger than %d bytes", OCSP_REQUEST_MAX);
	CBS_init(&c, der, len);
	if (parse_certid(&c, out, why, whylen) != 0)
		return -1;
	if (CBS_len(&c) != 0) {
		memset(out, 0, sizeof *out);
		return fail(why, whylen, "CertID: data after it");
	}
	return 0;
}

/* optionalSignature's contents: Signature ::= SEQUENCE { signatureAlgorithm,
 * signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate
 * OPTIONAL }, checked for form only */
static int check_signature(CBS *tagged, char *why, size_t whylen)
{
	CBS sig, alg, bits, certs, list, cert;
	int has_certs;

	if (!CBS_get_asn1(tagged, &sig, CBS_ASN1_SEQUENCE) || CBS_len(tagged) != 0 ||
	    !CBS_get_asn1(&sig, &alg, CBS_ASN1_SEQUENCE) || !CBS_get_asn1(&sig, &bits, CBS_ASN1_BITSTRING) ||
	    !CBS_is_valid_asn1_bitstring(&bits) || !CBS_get_optional_asn1(&sig, &certs, &has_certs, EXPLICIT(0)) ||
	    CBS_len(&sig) != 0)
		return fail(why, whylen, "optionalSignature: not a Signature");
	if (has_certs) {
		if (!CBS_get_asn1(&certs, &list, CBS_ASN1_SEQUENCE) || CBS_len(&certs) != 0)
			return fail(why, whylen, "optionalSignature: certs is not a SEQUENCE OF Certificate");
		while (CBS_len(&list) > 0)
			if (!CBS_get_asn1(&list, &cert, CBS_ASN1_SEQUENCE))
				return fail(why, whylen, "optionalSignature: certs is not a SEQUENCE OF Certificate");
	}
	return 0;
}

int ocsp_request_parse(const uint8_t *der, size_t len, struct ocsp_request *out, char *why, size_t whylen)
{
	CBS in, req, tbs, field, list, one;
	int present;

	memset(out, 0, sizeof *out);
	if (!der || len == 0)
		return fail(why, whylen, "empty request");
	if (len > OCSP_REQUEST_MAX)
		return fail(why, whylen, "request of %zu bytes (at most %d)", len, OCSP_REQUEST_MAX);
	CBS_init(&in, der, len);
	if (!CBS_get_asn1(&in, &req, CBS_ASN1_SEQUENCE))
		return fail(why, whylen, "OCSPRequest: not a DER SEQUENCE");
	if (CBS_len(&in) != 0)
		return fail(why, whylen, "OCSPRequest: bytes after the SEQUENCE");
	if (!CBS_get_asn1(&req, &tbs, CBS_ASN1_SEQUENCE))
		return fail(why, whylen, "TBSRequest: not a SEQUENCE");
	if (CBS_len(&req) != 0) {
		if (!CBS_get_asn1(&req, &field, EXPLICIT(0)) || CBS_len(&req) != 0)
			goto bad_req;
		if (check_signature(&field, why, whylen) != 0)
			goto bad;
	}

	/* version [0] EXPLICIT INTEGER DEFAULT v1 */
	if (!CBS_get_optional_asn1(&tbs, &field, &present, EXPLICIT(0)))
		goto bad_tbs;
	if (present) {
		CBS v;

		if (!CBS_get_asn1(&field, &v, CBS_ASN1_INTEGER) || CBS_len(&field) != 0 || CBS_len(&v) != 1 ||
		    CBS_data(&v)[0] != 0) {
			fail(why, whylen, "TBSRequest: version other than v1 (0)");
			goto bad;
		}
	}
	/* requestorName [1] EXPLICIT GeneralName OPTIONAL: not used */
	if (!CBS_get_optional_asn1(&tbs, &field, &present, EXPLICIT(1)) || (present && !one_element(&field)))
		goto bad_tbs;

	if (!CBS_get_asn1(&tbs, &list, CBS_ASN1_SEQUENCE))
		goto bad_tbs;
	if (CBS_len(&list) == 0) {
		fail(why, whylen, "one certificate per request (the requestList is empty)");
		goto bad;
	}
	if (!CBS_get_asn1(&list, &one, CBS_ASN1_SEQUENCE)) {
		fail(why, whylen, "Request: not a SEQUENCE");
		goto bad;
	}
	if (CBS_len(&list) != 0) {
		fail(why, whylen, "one certificate per request");
		goto bad;
	}
	if (parse_certid(&one, &out->id, why, whylen) != 0)
		goto bad;
	/* singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL */
	if (!CBS_get_optional_asn1(&one, &field, &present, EXPLICIT(0)) || CBS_len(&one) != 0) {
		fail(why, whylen, "Request: data after reqCert that is not singleRequestExtensions");
		goto bad;
	}
	if (present && parse_extensions(&field, "singleRequestExtensions", NULL, why, whylen) != 0)
		goto bad;

	/* requestExtensions [2] EXPLICIT Extensions OPTIONAL */
	if (!CBS_get_optional_asn1(&tbs, &field, &present, EXPLICIT(2)) || CBS_len(&tbs) != 0)
		goto bad_tbs;
	if (present && parse_extensions(&field, "requestExtensions", out, why, whylen) != 0)
		goto bad;
	return 0;

bad_req:
	fail(why, whylen, "OCSPRequest: data after TBSRequest that is not optionalSignature");
	goto bad;
bad_tbs:
	fail(why, whylen, "TBSRequest: not SEQUENCE { [0] version, [1] requestorName, requestList, [2] "
			  "requestExtensions }");
bad:
	memset(out, 0, sizeof *out);
	return -1;
}

int ocsp_issuer_hashes(X509 *ca, int hash_nid, uint8_t name_hash[OCSP_HASH_MAX], uint8_t key_hash[OCSP_HASH_MAX],
		       size_t *hash_len)
{
	const EVP_MD *md = digest_of(hash_nid);
	const uint8_t *name;
	size_t name_len;
	ASN1_BIT_STRING *key;
	unsigned n1 = 0, n2 = 0;

	if (!md || !ca || !X509_NAME_get0_der(X509_get_subject_name(ca), &name, &name_len))
		goto err;
	key = X509_get0_pubkey_bitstr(ca);
	if (!key || !EVP_Digest(name, name_len, name_hash, &n1, md, NULL) ||
	    !EVP_Digest(ASN1_STRING_get0_data(key), (size_t)ASN1_STRING_length(key), key_hash, &n2, md, NULL) ||
	    n1 != n2)
		goto err;
	*hash_len = n1;
	return 1;
err:
	ERR_clear_error();
	return 0;
}

bool ocsp_certid_matches(const struct ocsp_certid *id, X509 *ca)
{
	uint8_t name_hash[OCSP_HASH_MAX], key_hash[OCSP_HASH_MAX];
	size_t n;

	return ocsp_issuer_hashes(ca, id->hash_nid, name_hash, key_hash, &n) && n == id->hash_len &&
	       memcmp(name_hash, id->name_hash, n) == 0 && memcmp(key_hash, id->key_hash, n) == 0;
}

size_t ocsp_error_response(int response_status, uint8_t out[16])
{
	switch (response_status) {
	case OCSP_RESP_MALFORMED_REQUEST:
	case OCSP_RESP_INTERNAL_ERROR:
	case OCSP_RESP_TRY_LATER:
	case OCSP_RESP_SIG_REQUIRED:
	case OCSP_RESP_UNAUTHORIZED:
		break;
	default:
		return 0;
	}
	/* SEQUENCE { ENUMERATED status } */
	out[0] = 0x30, out[1] = 0x03, out[2] = 0x0a, out[3] = 0x01, out[4] = (uint8_t)response_status;
	return 5;
}

/* GeneralizedTime "YYYYMMDDHHMMSSZ" (RFC 5280 4.1.2.5.2) */
static int add_time(CBB *cbb, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char buf[64];
	CBB g;

	if (t < 0 || t > TIME_MAX || (int64_t)tt != t || !gmtime_r(&tt, &tm))
		return 0;
	if (snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		     tm.tm_hour, tm.tm_min, tm.tm_sec) != 15)
		return 0;
	return CBB_add_asn1(cbb, &g, CBS_ASN1_GENERALIZEDTIME) && CBB_add_bytes(&g, (const uint8_t *)buf, 15) &&
	       CBB_flush(cbb);
}

/* CertStatus: good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo,
 * unknown [2] IMPLICIT NULL */
static int add_status(CBB *cbb, const struct ocsp_single *s)
{
	CBB st, reason, e;

	switch (s->status) {
	case OCSP_STATUS_GOOD:
		return CBB_add_asn1(cbb, &st, IMPLICIT(0)) && CBB_flush(cbb);
	case OCSP_STATUS_UNKNOWN:
		return CBB_add_asn1(cbb, &st, IMPLICIT(2)) && CBB_flush(cbb);
	case OCSP_STATUS_REVOKED:
		if (!CBB_add_asn1(cbb, &st, IMPLICIT(1) | CBS_ASN1_CONSTRUCTED) || !add_time(&st, s->revoked_at))
			return 0;
		if (s->reason >= 0 &&
		    (!CBB_add_asn1(&st, &reason, EXPLICIT(0)) || !CBB_add_asn1(&reason, &e, CBS_ASN1_ENUMERATED) ||
		     !CBB_add_u8(&e, (uint8_t)s->reason)))
			return 0;
		return CBB_flush(cbb);
	}
	return 0;
}

/* [1] EXPLICIT Extensions holding the nonce extension */
static int add_nonce(CBB *cbb, const uint8_t *nonce, size_t nonce_len)
{
	CBB tagged, exts, ext, oid;

	return CBB_add_asn1(cbb, &tagged, EXPLICIT(1)) && CBB_add_asn1(&tagged, &exts, CBS_ASN1_SEQUENCE) &&
	       CBB_add_asn1(&exts, &ext, CBS_ASN1_SEQUENCE) && CBB_add_asn1(&ext, &oid, CBS_ASN1_OBJECT) &&
	       CBB_add_bytes(&oid, oid_nonce, sizeof oid_nonce) && CBB_add_asn1_octet_string(&ext, nonce, nonce_len) &&
	       CBB_flush(cbb);
}

static bool single_ok(const struct ocsp_single *s)
{
	CBS c, e;

	if (!s->certid_der)
		return false;
	CBS_init(&c, s->certid_der, s->certid_len);
	if (!CBS_get_asn1(&c, &e, CBS_ASN1_SEQUENCE) || CBS_len(&c) != 0)
		return false;
	if (s->this_update < 0 || s->this_update > TIME_MAX || s->next_update < 0 ||
	    (s->next_update && s->next_update < s->this_update))
		return false;
	switch (s->status) {
	case OCSP_STATUS_GOOD:
	case OCSP_STATUS_UNKNOWN:
		return true;
	case OCSP_STATUS_REVOKED:
		return s->revoked_at >= 0 && s->revoked_at <= TIME_MAX && s->reason >= -1 && s->reason <= 10 &&
		       s->reason != 7;
	}
	return false;
}

/* SHA-1 of the responder certificate's subjectPublicKey BIT STRING content,
 * when the certificate parses, is all of der, and holds key's public half */
static int responder_key_hash(const uint8_t *der, size_t len, EVP_PKEY *key, uint8_t hash[20])
{
	const uint8_t *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *pub = NULL;
	ASN1_BIT_STRING *bits;
	unsigned n = 0;
	int ok = 0;

	if (!cert || p != der + len)
		goto out;
	pub = X509_get_pubkey(cert);
	bits = X509_get0_pubkey_bitstr(cert);
	if (pub && bits && EVP_PKEY_cmp(pub, key) == 1 &&
	    EVP_Digest(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), hash, &n, EVP_sha1(), NULL) &&
	    n == 20)
		ok = 1;
out:
	EVP_PKEY_free(pub);
	X509_free(cert);
	return ok;
}

int ocsp_response_build(const struct ocsp_single *s, const uint8_t *nonce, size_t nonce_len, int64_t produced_at,
			EVP_PKEY *key, const uint8_t *responder_cert_der, size_t responder_cert_len, uint8_t **out,
			size_t *out_len)
{
	uint8_t key_hash[20], *tbs_der = NULL;
	size_t tbs_len;
	CBB tbs, resp, rd, rid, responses, single, next, r, status, rb0, rb, oid, octets, basic, certs0, certs;
	int ok = 0;

	*out = NULL;
	*out_len = 0;
	CBB_zero(&tbs);
	CBB_zero(&resp);
	if (!s || !key || !single_ok(s) || (nonce_len && !nonce) || nonce_len > OCSP_NONCE_MAX ||
	    !responder_cert_der || responder_cert_len == 0 ||
	    !responder_key_hash(responder_cert_der, responder_cert_len, key, key_hash))
		goto out;

	/* ResponseData ::= SEQUENCE { version [0] DEFAULT v1 (left out),
	 * responderID, producedAt, responses, [1] responseExtensions } */
	if (!CBB_init(&tbs, 256 + s->certid_len + nonce_len) || !CBB_add_asn1(&tbs, &rd, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_asn1(&rd, &rid, EXPLICIT(2)) || !CBB_add_asn1_octet_string(&rid, key_hash, sizeof key_hash) ||
	    !add_time(&rd, produced_at) || !CBB_add_asn1(&rd, &responses, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_asn1(&responses, &single, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_bytes(&single, s->certid_der, s->certid_len) || !add_status(&single, s) ||
	    !add_time(&single, s->this_update))
		goto out;
	if (s->next_update && (!CBB_add_asn1(&single, &next, EXPLICIT(0)) || !add_time(&next, s->next_update)))
		goto out;
	if (!CBB_flush(&rd) || (nonce_len && !add_nonce(&rd, nonce, nonce_len)) ||
	    !CBB_finish(&tbs, &tbs_der, &tbs_len))
		goto out;

	/* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED successful,
	 * [0] EXPLICIT ResponseBytes SEQUENCE { id-pkix-ocsp-basic, OCTET STRING
	 * BasicOCSPResponse } }, BasicOCSPResponse ::= SEQUENCE {
	 * tbsResponseData, signatureAlgorithm, signature, [0] EXPLICIT certs } */
	if (!CBB_init(&resp, tbs_len + responder_cert_len + 640) || !CBB_add_asn1(&resp, &r, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_asn1(&r, &status, CBS_ASN1_ENUMERATED) || !CBB_add_u8(&status, 0) ||
	    !CBB_add_asn1(&r, &rb0, EXPLICIT(0)) || !CBB_add_asn1(&rb0, &rb, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_asn1(&rb, &oid, CBS_ASN1_OBJECT) || !CBB_add_bytes(&oid, oid_basic, sizeof oid_basic) ||
	    !CBB_add_asn1(&rb, &octets, CBS_ASN1_OCTETSTRING) || !CBB_add_asn1(&octets, &basic, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_bytes(&basic, tbs_der, tbs_len) || !x509sig_append(&basic, key, tbs_der, tbs_len) ||
	    !CBB_add_asn1(&basic, &certs0, EXPLICIT(0)) || !CBB_add_asn1(&certs0, &certs, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_bytes(&certs, responder_cert_der, responder_cert_len) || !CBB_finish(&resp, out, out_len))
		goto out;
	ok = 1;
out:
	CBB_cleanup(&tbs);
	CBB_cleanup(&resp);
	OPENSSL_free(tbs_der);
	if (!ok)
		ERR_clear_error();
	return ok;
}

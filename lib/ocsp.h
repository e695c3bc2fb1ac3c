/*
 * OCSP (RFC 6960) for the responder: a request parsed strictly, the issuer
 * hashes a CertID is matched against, and the responses built with CBB
 * (BoringSSL has no OCSP API): a signed id-pkix-ocsp-basic response for one
 * certificate, or an unsigned error status.
 *
 * One certificate per request: that is what every client in use sends, and
 * it keeps a response to a single signature over a single SingleResponse.
 * The nonce (id-pkix-ocsp-nonce, RFC 8954) is echoed byte for byte: its
 * extnValue content, whatever the client put inside it.
 */
#ifndef CERTWARD_OCSP_H
#define CERTWARD_OCSP_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OCSP_REQUEST_MAX 8192 /* a request larger than this is refused */
#define OCSP_NONCE_MAX 64     /* bytes of the nonce extension's extnValue content */
#define OCSP_HASH_MAX 64      /* the largest digest a CertID may use (SHA-512) */
#define OCSP_SERIAL_MAX 20    /* content octets of a serialNumber (RFC 5280 4.1.2.2) */

struct ocsp_certid {
	int hash_nid; /* NID_sha1, NID_sha256, NID_sha384 or NID_sha512 */
	uint8_t name_hash[OCSP_HASH_MAX], key_hash[OCSP_HASH_MAX];
	size_t hash_len; /* the digest's size */
	uint8_t serial[OCSP_SERIAL_MAX];
	size_t serial_len;  /* the INTEGER's content octets as received: 1..20, not negative */
	const uint8_t *der; /* the whole CertID SEQUENCE as received (points into the request) */
	size_t der_len;
};

struct ocsp_request {
	struct ocsp_certid id;
	bool has_nonce;
	const uint8_t *nonce; /* extnValue's content octets (points into the request), 1..OCSP_NONCE_MAX */
	size_t nonce_len;
};

/* Parses a DER OCSPRequest of at most OCSP_REQUEST_MAX bytes holding
 * exactly one Request. 0 with *out filled (its pointers point into der), or
 * -1 with why saying what is wrong ("one certificate per request",
 * "CertID: ...", "extensions: ...", ...) and *out zeroed. DER only: no
 * indefinite or non-minimal lengths, no trailing bytes at any level, no
 * critical FALSE encoded. version must be v1 (0) when present; a signed
 * request (optionalSignature) is accepted when well-formed and its signature
 * ignored; requestorName is ignored; an unknown extension, in the request or
 * in its one Request, is ignored unless critical, then refused; an
 * extension twice in one list is refused. */
int ocsp_request_parse(const uint8_t *der, size_t len, struct ocsp_request *out, char *why, size_t whylen);

/* One CertID on its own (as the api hands it to the signer): parsed as in
 * a request, nothing after it. 0, or -1 with why. */
int ocsp_certid_parse(const uint8_t *der, size_t len, struct ocsp_certid *out, char *why, size_t whylen);

/* The issuerNameHash and issuerKeyHash a CertID for a certificate issued by
 * ca carries: the digest (hash_nid, one of the four above) of ca's subject
 * Name DER and of the content of its subjectPublicKey BIT STRING (without
 * tag, length and unused-bits octet). 1 with *hash_len set, or 0. */
int ocsp_issuer_hashes(X509 *ca, int hash_nid, uint8_t name_hash[OCSP_HASH_MAX], uint8_t key_hash[OCSP_HASH_MAX],
		       size_t *hash_len);

/* Whether id names ca as the issuer: both hashes match ca's, computed with
 * id's digest (not in constant time: nothing secret is compared). */
bool ocsp_certid_matches(const struct ocsp_certid *id, X509 *ca);

enum ocsp_status { OCSP_STATUS_GOOD = 0, OCSP_STATUS_REVOKED = 1, OCSP_STATUS_UNKNOWN = 2 };

/* OCSPResponseStatus values an unsigned answer carries */
enum ocsp_response_status {
	OCSP_RESP_MALFORMED_REQUEST = 1,
	OCSP_RESP_INTERNAL_ERROR = 2,
	OCSP_RESP_TRY_LATER = 3,
	OCSP_RESP_SIG_REQUIRED = 5,
	OCSP_RESP_UNAUTHORIZED = 6,
};

/* The whole OCSPResponse DER for an error status (one of the five above:
 * SEQUENCE { ENUMERATED status }, no responseBytes), written to out;
 * returns its length (5), or 0 for any other status. */
size_t ocsp_error_response(int response_status, uint8_t out[16]);

struct ocsp_single {
	const uint8_t *certid_der; /* the CertID echoed, as the request had it (ocsp_certid.der) */
	size_t certid_len;
	enum ocsp_status status;
	int64_t revoked_at; /* Unix seconds, for OCSP_STATUS_REVOKED */
	int reason;         /* RFC 5280 CRLReason 0..10 except 7, or -1: no revocationReason */
	int64_t this_update, next_update; /* Unix seconds; next_update 0: absent */
};

/* A successful OCSPResponse (id-pkix-ocsp-basic) for one SingleResponse:
 * ResponderID byKey (SHA-1 of the responder certificate's subjectPublicKey
 * BIT STRING content), producedAt, the nonce echoed in a
 * responseExtensions nonce extension when nonce_len > 0 (as its extnValue
 * content), signed with key (lib/x509sig.h), and certs holding the
 * responder certificate. Times are GeneralizedTime "YYYYMMDDHHMMSSZ", from
 * 1970 to 9999. key must be the private half of the responder
 * certificate's key. 1 with *out (OPENSSL_malloc'd: OPENSSL_free it) and
 * *out_len set, or 0: bad arguments (a status, reason or time out of range,
 * a certid_der that is not one DER SEQUENCE, a nonce over OCSP_NONCE_MAX, a
 * certificate that does not parse or is not key's), or a signing failure. */
int ocsp_response_build(const struct ocsp_single *s, const uint8_t *nonce, size_t nonce_len, int64_t produced_at,
			EVP_PKEY *key, const uint8_t *responder_cert_der, size_t responder_cert_len, uint8_t **out,
			size_t *out_len);

#endif

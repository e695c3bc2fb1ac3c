/* Certificate revocation lists (RFC 5280 section 5) for an issuing CA. The
 * TBSCertList is written entry by entry with CBB straight into DER, without
 * X509_CRL or X509_REVOKED objects: a CRL of a million entries is one buffer
 * and one signature. The revoked certificates arrive as fixed-size wire
 * records (CRL_ENTRY_WIRE bytes each). */
#ifndef CERTWARD_SIGNER_CRL_H
#define CERTWARD_SIGNER_CRL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* One revoked certificate as the caller hands it over (packed, 32 bytes on
 * the wire; see crl_entries_parse). */
struct crl_entry {
	uint8_t serial[20]; /* big-endian magnitude, 1..20 bytes, no leading zero byte */
	uint8_t serial_len;
	int64_t revoked_at; /* Unix seconds, 0..253402300799 (9999-12-31T23:59:59Z) */
	int8_t reason; /* RFC 5280 CRLReason 0..10 except 7; 0 (unspecified): no
			* reasonCode extension (RFC 5280 5.3.1 SHOULD) */
};

/* A wire entry: u8 serial_len, 20 bytes serial (left-aligned, zero padded),
 * i64 big-endian revoked_at, u8 reason, 2 bytes zero. */
#define CRL_ENTRY_WIRE 32

/* Decodes len / CRL_ENTRY_WIRE wire entries from buf into out, which has room
 * for that many. 0, or -1 with why (naming the entry) when len is not a
 * multiple of CRL_ENTRY_WIRE or an entry has a serial_len of 0 or more than
 * 20, a serial with a leading zero byte or nonzero bytes past serial_len, a
 * reason out of range or 7 (unused in RFC 5280), nonzero padding, or a time
 * that is negative or past 9999. */
int crl_entries_parse(const uint8_t *buf, size_t len, struct crl_entry *out, char *why, size_t whylen);

/* The wire form of e (for callers and tests); what crl_entries_parse reads
 * back when e is valid. */
void crl_entry_pack(const struct crl_entry *e, uint8_t out[CRL_ENTRY_WIRE]);

/* A v2 CRL of ca_cert's subject (its subject Name DER copied as the issuer),
 * signed with ca_key (ECDSA P-256/P-384, RSA, Ed25519; see lib/x509sig.h):
 * thisUpdate and nextUpdate (next_update > this_update), the n entries in the
 * order given (revokedCertificates omitted when n == 0; each with a
 * reasonCode extension unless its reason is 0), and the crlExtensions
 * authorityKeyIdentifier (keyIdentifier: ca_cert's subjectKeyIdentifier, or
 * when it has none the SHA-1 of its subjectPublicKey BIT STRING content) and
 * cRLNumber (crl_number), both non-critical. Times are UTCTime before 2050
 * and GeneralizedTime from 2050 (RFC 5280 5.1.2.4). The entries are checked
 * as crl_entries_parse checks them; duplicates are not looked for. *der is
 * OPENSSL_malloc'd (OPENSSL_free). 0, or -1 with why. */
int crl_build(EVP_PKEY *ca_key, X509 *ca_cert, const struct crl_entry *e, size_t n, uint64_t crl_number,
	      int64_t this_update, int64_t next_update, uint8_t **der, size_t *der_len, char *why, size_t whylen);

#endif

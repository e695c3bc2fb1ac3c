/* Signatures over DER structures BoringSSL has no signing API for (a CRL
 * built entry by entry, an OCSP response): the digest a key signs with, its
 * AlgorithmIdentifier, and the signature appended to an open SEQUENCE. */
#ifndef CERTWARD_X509SIG_H
#define CERTWARD_X509SIG_H

#include <openssl/bytestring.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* SHA-256 (P-256, RSA), SHA-384 (P-384), NULL (Ed25519: pure). */
const EVP_MD *x509sig_digest(const EVP_PKEY *key);

/* Appends the key's signature AlgorithmIdentifier to out. 1 or 0 (a key
 * type the signer does not make). */
int x509sig_algorithm(CBB *out, const EVP_PKEY *key);

/* Signs tbs and appends AlgorithmIdentifier and BIT STRING signature to
 * seq, the open SEQUENCE that holds tbs: what a CertificateList or a
 * BasicOCSPResponse carries after its to-be-signed part. 1 or 0. */
int x509sig_append(CBB *seq, EVP_PKEY *key, const uint8_t *tbs, size_t tbs_len);

#endif

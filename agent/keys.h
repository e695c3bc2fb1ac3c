/* Keys made on this host, their CSRs, and the certificates that come back. */
#ifndef CERTWARD_AGENT_KEYS_H
#define CERTWARD_AGENT_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

enum key_alg { KEY_ECDSA, KEY_RSA, KEY_ED25519 };

/* Whether ALG/BITS is a key the agent makes: ECDSA 256/384, RSA
 * 2048/3072/4096, Ed25519 (bits 0 or 256). */
int key_params_ok(enum key_alg alg, int bits);
/* "ECDSA", "RSA", "Ed25519" (case-insensitive): 0 or -1. */
int key_alg_from_name(const char *s, enum key_alg *alg);
const char *key_alg_name(enum key_alg alg);

EVP_PKEY *key_generate(enum key_alg alg, int bits, char *why, size_t whylen);

/* The key as PKCS#8 PEM in a malloc'd buffer the caller wipes
 * (free_wiped): NULL on failure. */
char *key_to_pem(EVP_PKEY *key, size_t *len);
EVP_PKEY *key_from_pem(const char *pem, size_t len);
/* Reads a PEM key file (at most 64 KiB), wiping the text it read. */
EVP_PKEY *key_load(const char *path);
/* Writes KEY to PATH, mode 0600, atomically. */
int key_save(EVP_PKEY *key, const char *path, char *why, size_t whylen);

/* A PEM CSR for KEY with subject CN=CN (when non-NULL) and the SANS as
 * subjectAltName (IP addresses as iPAddress, the rest as dNSName). */
char *csr_make(EVP_PKEY *key, const char *cn, const char *const *sans, size_t nsans, char *why,
	       size_t whylen);

/* The first certificate of a PEM text, or NULL. */
X509 *cert_from_pem(const char *pem, size_t len);
/* Whether CERT's public key is KEY. */
int cert_matches_key(X509 *cert, EVP_PKEY *key);
/* DER of CERT (malloc'd) or NULL. */
uint8_t *cert_der(X509 *cert, size_t *len);
/* notBefore/notAfter as Unix times: 0 or -1. */
int cert_validity(X509 *cert, time_t *not_before, time_t *not_after);
/* Lowercase hex serial into OUT (at least 2*20+1 bytes, 64 is safe). */
int cert_serial_hex(X509 *cert, char *out, size_t outlen);

#endif

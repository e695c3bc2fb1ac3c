/* Server-side key generation (off unless a profile allows it): a new key
 * and a CSR for it, which then goes through the same checks and signing as
 * any other (issue.c). The key leaves the signer twice: sealed with the
 * signer's secrets key (lib/secretbox.h) for the store, and in clear for
 * the api to hand to the client once. docs/pki.md, "Server-side key
 * generation". */
#ifndef CERTWARD_SIGNER_KEYGEN_H
#define CERTWARD_SIGNER_KEYGEN_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* Whether the profile (JSON) has "server_keygen": true. */
int keygen_allowed(const char *profile, size_t len);

/* A new key of alg (pki_alg_parse's names) and a CSR (DER) signed with it
 * for cn (may be "") and sans (newline-separated DNS names, IP addresses,
 * e-mail addresses). 0, or -1 with why. */
int keygen_csr(const char *alg, const char *cn, const char *sans, size_t sans_len, EVP_PKEY **key, uint8_t **csr,
	       size_t *csr_len, char *why, size_t whylen);

/* The key as unencrypted PKCS#8 PEM (malloc'd; wipe with keygen_wipe) and
 * sealed as {"private_key_pem": ...} into sealed (cap bytes). 0 or -1. */
int keygen_export(EVP_PKEY *key, char **pem, size_t *pem_len, uint8_t *sealed, size_t cap, size_t *sealed_len,
		  char *why, size_t whylen);
void keygen_wipe(char *pem, size_t len);

#endif

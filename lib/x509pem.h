/* Certificates and CSRs between PEM and DER, and a signed certificate as
 * the store records it (its fingerprint, and the PEM chain with the
 * certificate first): the api's issuance and the scheduler's renewals. */
#ifndef CERTWARD_X509PEM_H
#define CERTWARD_X509PEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define X509PEM_CSR_MAX 16384 /* characters of a PEM CSR */

/* A certificate (req false) or CSR (req true) in DER as PEM: a NUL-terminated
 * string to free, or NULL when it does not parse or out of memory. */
char *x509pem_from_der(const uint8_t *der, size_t len, bool req);

/* A PEM CSR as DER in *der (to free) and *len: 0; -1 when it is not one
 * (why says so, naming the csr_pem field), -2 out of memory. */
int x509pem_csr_der(const char *csr_pem, uint8_t **der, size_t *len, const char **why);

/* A certificate the signer signed (DER) and its CA chain (PEM): the
 * fingerprint (lower-case hex SHA-256 of the DER, 65 bytes with the NUL)
 * and, in *pem_chain (to free), the certificate's PEM followed by the chain.
 * 0, or -1 (not a certificate, or out of memory). */
/* The first certificate of a PEM chain as DER into *der (free()). 0, or -1
 * (no certificate, or out of memory). */
int x509pem_first_der(const char *pem, uint8_t **der, size_t *len);

int x509pem_signed(const uint8_t *der, size_t der_len, const uint8_t *chain, size_t chain_len,
		   char fingerprint[65], char **pem_chain);

#endif

/* The api's TLS key: held here, used for handshake signatures on request. */
#ifndef CERTWARD_SIGNER_TLSKEY_H
#define CERTWARD_SIGNER_TLSKEY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct tls_key;

/* Loads the configured key and certificate, or loads/generates them in
 * key_dir; publishes the certificate as <cert_dir>/api.crt. Logs and returns
 * NULL on failure. */
struct tls_key *tls_key_open(const struct cfg *section, const char *key_dir, const char *cert_dir);
void tls_key_free(struct tls_key *k);

const char *tls_key_chain_pem(const struct tls_key *k, size_t *len);

/* Signs `in` with TLS SignatureScheme `alg`. Returns the signature length,
 * or -1 when the scheme does not fit the key or signing fails. */
long tls_key_sign(struct tls_key *k, uint16_t alg, const uint8_t *in, size_t inlen,
		  uint8_t *out, size_t outmax);

uint64_t tls_key_signatures(const struct tls_key *k);

#endif

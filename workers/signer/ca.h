/* The issuing CA the signer signs with: made on first start (a root and an
 * issuing CA below it, self_signed) or loaded (an issuing CA signed by an
 * outside root, subordinate). docs/pki.md, "CA modes". */
#ifndef CERTWARD_SIGNER_CA_H
#define CERTWARD_SIGNER_CA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#include "config.h"
#include "ledger.h"

struct ca;

/*
 * self_signed: loads key_dir/ca/{root,issuing}.{key,crt}, making whatever
 * is missing (keys of signer.ca_key_algorithm; every certificate signed is
 * recorded in the ledger before its file is written). subordinate: loads
 * signer.ca_cert_file and ca_key_file and refuses a certificate that is not
 * a CA, lacks keyCertSign, does not match the key or is not valid now.
 * Either way it publishes ca-issuing.crt, ca-chain.crt (issuing first) and,
 * when the chain ends in one, ca-root.crt in cert_dir. NULL after logging
 * why.
 */
struct ca *ca_open(const struct cfg *section, const char *key_dir, const char *cert_dir, struct ledger *ledger);
void ca_free(struct ca *ca);

X509 *ca_cert(const struct ca *ca);
EVP_PKEY *ca_key(const struct ca *ca);
/* PEM of the issuing CA and the certificates above it, issuing first */
const char *ca_chain_pem(const struct ca *ca, size_t *len);

#endif

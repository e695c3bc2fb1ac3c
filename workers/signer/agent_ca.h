/* The agent identity CA: a self-signed CA of its own (key_dir/agent-ca)
 * that signs nothing but agents' TLS client certificates, so that an
 * agent identity is never a server certificate of the organisation, and
 * the issuing CA is never trusted for client authentication at the api.
 * docs/pki.md, "Agent identity CA". */
#ifndef CERTWARD_SIGNER_AGENT_CA_H
#define CERTWARD_SIGNER_AGENT_CA_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ledger.h"

/* the largest CSR (DER) an agent identity is signed from: an RSA 8192 key
 * and its signature take about 2.2 KB */
#define AGENT_CSR_MAX 8192

struct agent_ca;

/* Loads key_dir/agent-ca/{ca.key,ca.crt}, making what is missing (a key of
 * signer.ca_key_algorithm, wrapped with signer.ca_key_passphrase_file when
 * set; a certificate valid signer.agent_ca_validity, its ledger line first),
 * and publishes the certificate as <cert_dir>/agent-ca.crt. NULL after
 * logging why. */
struct agent_ca *agent_ca_open(const struct cfg *section, const char *key_dir, const char *cert_dir,
			       struct ledger *ledger);
void agent_ca_free(struct agent_ca *ca);

/* The CA's certificate, PEM */
const char *agent_ca_pem(const struct agent_ca *ca, size_t *len);

struct agent_id_result {
	uint8_t *der; /* OPENSSL_free */
	size_t der_len;
	char serial[64];  /* lower-case hex */
	char sha256[65];  /* of der, lower-case hex */
	int64_t not_before, not_after;
};

/*
 * An identity certificate for agent_id (1..128 of [A-Za-z0-9._-], starting
 * with a letter or digit) over the key of csr (DER, at most AGENT_CSR_MAX
 * bytes, self-signature verified; ECDSA P-256 or P-384, RSA 2048..8192 or
 * Ed25519). Nothing else of the CSR is used. Valid validity_seconds (0:
 * default_seconds) from now, never past the CA's notAfter.
 * 0 with *out filled and its ledger line staged: the caller commits the
 * ledger before the certificate leaves and drops it when that fails; -1
 * with why naming the rule broken ("agent_id: ...", "csr: ...", "key:
 * ..."); -2 when the line could not be staged.
 */
int agent_ca_sign(struct agent_ca *ca, struct ledger *ledger, const uint8_t *csr, size_t csr_len,
		  const char *agent_id, uint64_t validity_seconds, uint64_t default_seconds,
		  struct agent_id_result *out, char *why, size_t whylen);

#endif

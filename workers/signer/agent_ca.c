#include "agent_ca.h"

#include <errno.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ca.h"
#include "log.h"
#include "pki.h"
#include "util.h"
#include "validate.h"

/* its name in the ledger, for its own certificate and every identity */
#define LEDGER_NAME "agent-ca"

struct agent_ca {
	EVP_PKEY *key;
	X509 *cert;
	char *pem;
	size_t pem_len;
};

const char *agent_ca_pem(const struct agent_ca *ca, size_t *len)
{
	*len = ca->pem_len;
	return ca->pem;
}

void agent_ca_free(struct agent_ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->pem);
	free(ca);
}

struct agent_ca *agent_ca_open(const struct cfg *section, const char *key_dir, const char *cert_dir,
			       struct ledger *ledger)
{
	struct agent_ca *ca = calloc(1, sizeof *ca);
	int alg = pki_alg_parse(cfg_str(section, "signer", "ca_key_algorithm"));
	long seconds = (long)(cfg_duration_ms(section, "signer", "agent_ca_validity") / 1000);
	char dir[1100], kp[1200], cp[1200], cn[200], fp[200];
	int bad = 0, ok = 0;
	char *pass = ca_passphrase(section, &bad);

	if (!ca || bad)
		goto out;
	if (alg < 0) {
		log_error("signer.ca_key_algorithm: unknown algorithm");
		goto out;
	}
	snprintf(dir, sizeof dir, "%s/agent-ca", key_dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	snprintf(kp, sizeof kp, "%s/ca.key", dir);
	snprintf(cp, sizeof cp, "%s/ca.crt", dir);
	snprintf(cn, sizeof cn, "%s Agent Identity CA", cfg_str(section, "signer", "ca_name"));
	if (ca_self_signed("agent identity CA", kp, cp, cn, alg, pass, seconds, CA_PATHLEN0, ledger, LEDGER_NAME,
			   &ca->key, &ca->cert) != 0)
		goto out;
	if (!(ca->pem = pki_cert_pem(ca->cert, &ca->pem_len))) {
		log_error("cannot encode the agent identity CA certificate");
		goto out;
	}
	if (ca_publish(cert_dir, "agent-ca.crt", ca->pem, ca->pem_len) != 0)
		goto out;
	if (X509_cmp_time(X509_get0_notAfter(ca->cert), NULL) <= 0)
		log_error("the agent identity CA %s has expired: no agent identity can be signed", cp);
	pki_fingerprint(ca->cert, fp, sizeof fp);
	log_event(LOG_INFO, NULL, NULL, "agent identity CA %s/agent-ca.crt sha256=%s", cert_dir, fp);
	ok = 1;
out:
	ca_passphrase_free(pass);
	if (!ok) {
		agent_ca_free(ca);
		return NULL;
	}
	return ca;
}

/* ECDSA P-256 or P-384, RSA 2048..8192 bits, Ed25519: 0, or -1 with why */
static int key_allowed(EVP_PKEY *pub, char *why, size_t whylen)
{
	static const char rule[] = "(ECDSA P-256 or P-384, RSA of 2048 to 8192 bits, or Ed25519)";
	const EC_KEY *ec;
	int bits, curve;

	switch (EVP_PKEY_id(pub)) {
	case EVP_PKEY_ED25519:
		return 0;
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_bits(pub);
		if (bits >= 2048 && bits <= 8192)
			return 0;
		snprintf(why, whylen, "key: RSA %d is not allowed %s", bits, rule);
		return -1;
	case EVP_PKEY_EC:
		ec = EVP_PKEY_get0_EC_KEY(pub);
		curve = ec ? EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) : NID_undef;
		if (curve == NID_X9_62_prime256v1 || curve == NID_secp384r1)
			return 0;
		snprintf(why, whylen, "key: ECDSA on curve %s is not allowed %s",
			 curve != NID_undef && OBJ_nid2sn(curve) ? OBJ_nid2sn(curve) : "(unknown)", rule);
		return -1;
	default:
		snprintf(why, whylen, "key: not allowed %s", rule);
		return -1;
	}
}

/* The CSR's public key, once the CSR is one DER structure within bounds
 * whose key is allowed and verifies its signature; NULL with why. */
static EVP_PKEY *csr_key(const uint8_t *der, size_t len, char *why, size_t whylen)
{
	const uint8_t *p = der;
	X509_REQ *req;
	EVP_PKEY *pub = NULL;

	if (len == 0) {
		pki_refuse(why, whylen, "csr: empty");
		return NULL;
	}
	if (len > AGENT_CSR_MAX) {
		snprintf(why, whylen, "csr: %zu bytes is over the bound of %d bytes (DER)", len, AGENT_CSR_MAX);
		ERR_clear_error();
		return NULL;
	}
	req = d2i_X509_REQ(NULL, &p, (long)len);
	if (!req || p != der + len) {
		pki_refuse(why, whylen, "csr: not one DER certificate signing request");
		goto out;
	}
	if (!(pub = X509_REQ_get_pubkey(req))) {
		pki_refuse(why, whylen, "key: not a key of a kind the signer reads (ECDSA P-256 or P-384, RSA of "
					"2048 to 8192 bits, or Ed25519)");
		goto out;
	}
	/* the kind first: verifying with a key we would refuse anyway is
	 * work for nothing (an RSA 16384 key, say) */
	if (key_allowed(pub, why, whylen) != 0) {
		EVP_PKEY_free(pub);
		pub = NULL;
		goto out;
	}
	if (X509_REQ_verify(req, pub) != 1) {
		pki_refuse(why, whylen, "csr: its signature does not verify with its own key");
		EVP_PKEY_free(pub);
		pub = NULL;
	}
out:
	X509_REQ_free(req);
	ERR_clear_error();
	return pub;
}

int agent_ca_sign(struct agent_ca *ca, struct ledger *ledger, const uint8_t *csr, size_t csr_len,
		  const char *agent_id, uint64_t validity_seconds, uint64_t default_seconds,
		  struct agent_id_result *out, char *why, size_t whylen)
{
	X509 *cert = NULL;
	X509_NAME *subject = NULL;
	EVP_PKEY *pub;
	uint64_t validity = validity_seconds ? validity_seconds : default_seconds;
	int64_t ca_left = pki_asn1_unix(X509_get0_notAfter(ca->cert)) - (int64_t)time(NULL);
	uint8_t *der = NULL, md[SHA256_DIGEST_LENGTH];
	char lwhy[300];
	int len, rc = -1;

	memset(out, 0, sizeof *out);
	if (!agent_id || !valid_resource_id(agent_id, 128))
		return pki_refuse(why, whylen, "agent_id: 1 to 128 characters of A-Z a-z 0-9 . _ -, starting with "
					       "a letter or digit");
	if (!(pub = csr_key(csr, csr_len, why, whylen)))
		return -1;
	if (ca_left <= 0) {
		pki_refuse(why, whylen, "the agent identity CA has expired");
		goto out;
	}
	if (validity > (uint64_t)ca_left)
		validity = (uint64_t)ca_left;

	cert = X509_new();
	subject = X509_NAME_new();
	if (!cert || !subject || !X509_set_version(cert, X509_VERSION_3) || pki_set_random_serial(cert) != 0 ||
	    /* a UTF8String as is: through MBSTRING_UTF8, BoringSSL would hold an
	     * id of 65..128 characters to RFC 5280's ub-common-name (64) */
	    !X509_NAME_add_entry_by_NID(subject, NID_commonName, V_ASN1_UTF8STRING, (const unsigned char *)agent_id,
					-1, -1, 0) ||
	    !X509_set_subject_name(cert, subject) || !X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)validity) ||
	    /* never past the CA's own expiry, also when a second went by since ca_left */
	    (validity == (uint64_t)ca_left && !X509_set1_notAfter(cert, X509_get0_notAfter(ca->cert))) ||
	    !X509_set_pubkey(cert, pub) ||
	    !pki_add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    !pki_add_ext(cert, ca->cert, NID_key_usage,
			 EVP_PKEY_id(pub) == EVP_PKEY_RSA ? "critical,digitalSignature,keyEncipherment"
							  : "critical,digitalSignature") ||
	    !pki_add_ext(cert, ca->cert, NID_ext_key_usage, "clientAuth") ||
	    !pki_add_ext(cert, ca->cert, NID_subject_key_identifier, "hash") ||
	    !pki_add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid:always") ||
	    !X509_sign(cert, ca->key, pki_sign_digest(ca->key)) || (len = i2d_X509(cert, &der)) <= 0) {
		pki_log_error("cannot make an agent identity certificate");
		pki_refuse(why, whylen, "cannot make the agent identity certificate (see the signer's log)");
		goto out;
	}
	pki_serial_hex(cert, out->serial, sizeof out->serial);
	/* staged: the caller commits the ledger before the certificate leaves */
	if (ledger_stage(ledger, "certificate", LEDGER_NAME, out->serial, der, (size_t)len, lwhy, sizeof lwhy) != 0) {
		pki_refuse(why, whylen, lwhy);
		OPENSSL_free(der);
		rc = -2;
		goto out;
	}
	SHA256(der, (size_t)len, md);
	hex_encode(md, sizeof md, out->sha256);
	out->der = der;
	out->der_len = (size_t)len;
	out->not_before = pki_asn1_unix(X509_get0_notBefore(cert));
	out->not_after = pki_asn1_unix(X509_get0_notAfter(cert));
	rc = 0;
out:
	EVP_PKEY_free(pub);
	X509_NAME_free(subject);
	X509_free(cert);
	return rc;
}

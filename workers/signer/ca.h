/* The issuing CA the signer signs with: made on first start (a root and an
 * issuing CA below it, self_signed) or loaded (an issuing CA signed by an
 * outside root, subordinate). docs/pki.md, "CA modes". */
#ifndef CERTWARD_SIGNER_CA_H
#define CERTWARD_SIGNER_CA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- ca_backend pkcs11: the issuing CA's key on a token ---- */

/* 1 when ca's key can sign now; else 0 with why ("the issuing CA is not
 * ready: ..."). A key in a file always can. A change is logged. */
int ca_usable(struct ca *ca, char *why, size_t whylen);
/* A token CA that is not ready is connected again (unless it refused a PIN
 * that has not changed since); called every signer.pkcs11_retry_interval. */
void ca_retry(struct ca *ca);
/* "issuing ready\n" or "issuing not-ready <why>\n" for a token CA; 0 bytes
 * for key files. The length written. */
size_t ca_status(struct ca *ca, char *out, size_t len);
/* 1 when ca's key is on a token: its signatures may be made on other
 * threads, which wait for a session */
int ca_on_token(const struct ca *ca);
/* the last error of a signature on ca's token */
void ca_last_error(const struct ca *ca, char *why, size_t whylen);
/* signatures, failures, connects of a token CA; -1 for key files */
int ca_p11_counters(const struct ca *ca, uint64_t v[3]);
struct p11_config;
/* signer.pkcs11_* into c, and pkcs11_env split into env (NULL-ended, its
 * strings in envbuf). 0; -1 when pkcs11_env is malformed. */
int ca_p11_config(const struct cfg *section, struct p11_config *c, char *envbuf, size_t envlen, char **env,
		  size_t envmax);

/* The CA of intermediate id (key_dir/intermediates, loaded once), or
 * issuing itself for "" or NULL; NULL with why when there is none. */
struct ca *ca_intermediate(struct ca *issuing, const char *key_dir, const char *id, char *why, size_t whylen);
/* 0 when leaf's names meet the name constraints of ca and every CA above
 * it (der: the signed leaf); -1 with why naming the CA. */
int ca_check_names(const struct ca *ca, const uint8_t *der, size_t len, char *why, size_t whylen);

/* ---- shared with the other CAs the signer keeps (agent_ca.c) ---- */

/* The first line of signer.ca_key_passphrase_file, or NULL when none is
 * configured; *bad when one is configured but cannot be had (logged).
 * Release it with ca_passphrase_free, which wipes it. */
char *ca_passphrase(const struct cfg *section, int *bad);
void ca_passphrase_free(char *pass);

/* ca_self_signed's flags */
#define CA_PATHLEN0 1u          /* basicConstraints pathlen:0: it signs no CA */
#define CA_DIGITAL_SIGNATURE 2u /* keyUsage digitalSignature besides keyCertSign, cRLSign */

/*
 * A self-signed CA in key_path and cert_path: the key loaded, or made of
 * alg (pki_alg) and saved 0600 (wrapped with pass when given); the
 * certificate loaded, or, when it is missing or the key is new, made
 * ("CN=<cn>", valid for seconds, flags) with its ledger line (issuer
 * ledger_name) written before its file. The two must match. what names it
 * in log lines ("root CA"). 0 with *key and *cert; -1 logged.
 */
int ca_self_signed(const char *what, const char *key_path, const char *cert_path, const char *cn, int alg,
		   const char *pass, long seconds, unsigned flags, struct ledger *ledger, const char *ledger_name,
		   EVP_PKEY **key, X509 **cert);
/* pem written to <cert_dir>/<file>, world-readable, atomically. 0; -1 logged. */
int ca_publish(const char *cert_dir, const char *file, const char *pem, size_t len);

struct intermediate_request {
	const char *id;               /* the new CA's id ([A-Za-z0-9._-]) */
	const char *parent_id;        /* "": the root (self_signed) or the issuing CA (subordinate) */
	const char *common_name, *organization;
	const char *algorithm;        /* pki_alg_parse's names */
	uint64_t validity_seconds;    /* never past the parent's expiry */
	long path_len;                /* -1: none (or the parent's less one) */
	const char *name_constraints; /* "permitted;DNS:x,excluded;DNS:y" or "" */
};
struct intermediate_result {
	char serial[64];
	int64_t not_before, not_after;
	long path_len;
	char *chain_pem; /* the new CA, then those above it; free() */
	size_t chain_len;
};
/* Makes the key and certificate (ledger line first). 0; -1 with why (a
 * rule broken); -2 (the ledger). */
int ca_make_intermediate(struct ca *issuing, struct ledger *ledger, const char *key_dir,
			 const struct intermediate_request *rq, struct intermediate_result *out, char *why,
			 size_t whylen);

#endif

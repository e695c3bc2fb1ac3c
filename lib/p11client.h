/*
 * A CA key on a PKCS#11 token, seen from the signer (and `certward ca`):
 * certward-p11 is started with one control channel and one channel per
 * session; the module runs there, signatures come back here.
 *
 * The key is an EVP_PKEY (p11c_wrap) whose signatures go to the token, so
 * X509_sign, EVP_DigestSign and X509_check_private_key work with it. A
 * signature takes the calling thread's session (p11c_bind_thread) or the
 * first free one, and waits for it: requests queue per session. Safe from
 * several threads.
 */
#ifndef CERTWARD_P11CLIENT_H
#define CERTWARD_P11CLIENT_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "p11.h"

struct p11c;

/*
 * Starts helper (the certward-p11 executable) with env (NULL-terminated
 * "NAME=VALUE" strings: what the module needs, e.g. SOFTHSM2_CONF) and,
 * when c->pin_env names one, that variable from our environment, which is
 * then wiped here. The helper checks the configuration and loads the
 * module. Must be called before a seccomp filter forbids fork and exec.
 * NULL with why.
 */
struct p11c *p11c_open(const struct p11_config *c, const char *helper, char *const *env, char *why, size_t whylen);
/* Closes the channels (the helper then ends) and reaps the helper. */
void p11c_close(struct p11c *c);
/* The same without waiting for the helper (a process that may not wait(2)). */
void p11c_abandon(struct p11c *c);

/* p11_connect in the helper; with expect (the CA certificate's key), one
 * signature made and verified proves that the token's key is that key. 0;
 * -1 with why (the token not ready). */
int p11c_connect(struct p11c *c, unsigned flags, EVP_PKEY *expect, char *why, size_t whylen);
/* 1 ready; 0 with why (also when the helper is gone) */
int p11c_ready(struct p11c *c, char *why, size_t whylen);
int p11c_retry_due(struct p11c *c);
int p11c_generate(struct p11c *c, const char *alg, char *why, size_t whylen);
EVP_PKEY *p11c_public_key(struct p11c *c, char *why, size_t whylen);
/* signatures, failures, connects; 0 or -1 */
int p11c_counters(struct p11c *c, uint64_t v[3]);
int p11c_sessions(const struct p11c *c);
/* The calling thread uses session i from now on (-1: any free one). */
void p11c_bind_thread(struct p11c *c, int i);

/* One signature (ECDSA comes back DER-encoded). 0 with *outlen; -1 with why. */
int p11c_sign(struct p11c *c, enum p11_mech mech, int md_bits, const uint8_t *in, size_t inlen, uint8_t *out,
	      size_t *outlen, char *why, size_t whylen);

/* An EVP_PKEY with pub's public key whose signatures the token makes (EC:
 * ECDSA; RSA: PKCS#1 v1.5, and PSS as EVP pads it, signed with
 * CKM_RSA_X_509; p11c_sign with P11_RSA_PSS uses CKM_RSA_PKCS_PSS). NULL
 * when pub is neither EC nor RSA. */
EVP_PKEY *p11c_wrap(struct p11c *c, EVP_PKEY *pub);
/* The token of a key of p11c_wrap; NULL for any other key. */
struct p11c *p11c_key_token(const EVP_PKEY *key);
/* The last error a wrapped key's signature met (for a log line). */
void p11c_last_error(struct p11c *c, char *why, size_t whylen);

#endif

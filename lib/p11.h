/*
 * A CA key on a PKCS#11 token, as certward-p11 (the process that loads the
 * module) holds it: the module loaded with dlopen, the token
 * found by label or slot, a fixed number of sessions logged in as the user,
 * the key pair found by label and/or id, and every private-key operation
 * done on the token with C_Sign. The key never leaves the token.
 *
 * Thread safety: p11_sign may be called from several
 * threads at once; each signature holds one session for its duration (the
 * thread's own after p11_bind_thread, else the first free one). p11_connect
 * and p11_disconnect wait until no signature is under way.
 */
#ifndef CERTWARD_P11_H
#define CERTWARD_P11_H

#include <stddef.h>
#include <stdint.h>

#define P11_SESSIONS_MAX 16
#define P11_SIG_MAX 1024 /* room for any signature (RSA-8192) */
#define P11_KEY_EC 1
#define P11_KEY_RSA 2

struct p11_config {
	const char *module;      /* absolute path of the PKCS#11 module */
	const char *token_label; /* the token's label, or "" when slot is given */
	long slot;               /* slot id, or -1: the token labelled token_label */
	const char *key_label;   /* CKA_LABEL of the key pair ("": key_id alone) */
	const char *key_id;      /* CKA_ID in hex ("": key_label alone) */
	const char *pin_file;    /* the user PIN on the file's first line, read at each login */
	const char *pin_env;     /* or the environment variable holding it, read once */
	int sessions;            /* 1..P11_SESSIONS_MAX */
};

struct p11_token;

/* Checks the configuration and loads the module (dlopen, C_Initialize); no
 * session yet. A PIN from the environment is copied into locked memory and
 * the variable's value wiped. NULL with why. */
struct p11_token *p11_token_new(const struct p11_config *c, char *why, size_t whylen);
void p11_token_free(struct p11_token *t);

/*
 * Finds the token, opens the sessions, logs in and finds the private key.
 * Sessions open before are closed first. When the token cannot be found
 * and the module was in use, the module is finalised and initialised again
 * once (some modules see a token that came back only then). 0 with the
 * token ready; -1 with why (kept for p11_ready). A wrong or locked PIN is
 * remembered: p11_retry_due says no until the PIN file changes.
 */
#define P11_RW 1u     /* read-write sessions (to make keys) */
#define P11_NO_KEY 2u /* the key may be missing (before p11_generate) */
int p11_connect(struct p11_token *t, unsigned flags, char *why, size_t whylen);
/* Closes the sessions; the token is not ready afterwards. */
void p11_disconnect(struct p11_token *t, const char *why);

/* 1 when ready; else 0 with why. */
int p11_ready(struct p11_token *t, char *why, size_t whylen);
/* 1 when a p11_connect now might succeed: not ready, and not refused a PIN
 * that has not changed since. */
int p11_retry_due(struct p11_token *t);
/* signatures made, signatures failed, connects made */
void p11_counters(struct p11_token *t, uint64_t *signatures, uint64_t *failures, uint64_t *connects);
int p11_sessions(const struct p11_token *t);
/* The calling thread signs on session i (0..sessions-1) from now on; -1
 * undoes it. */
void p11_bind_thread(struct p11_token *t, int i);
/* P11_KEY_EC, P11_KEY_RSA, or 0 (no key found) */
int p11_key_type(struct p11_token *t);

enum p11_mech {
	P11_ECDSA = 1, /* in: a digest; out: r||s, each as long as the group order */
	P11_RSA_PKCS,  /* in: a DigestInfo */
	P11_RSA_PSS,   /* in: a digest of md_bits (256/384/512); MGF1 with the same hash, salt as long */
	P11_RSA_RAW,   /* in: a block as long as the modulus (CKM_RSA_X_509) */
};
/* One C_Sign into out (*outlen at least P11_SIG_MAX). 0 with *outlen; -1
 * with why. An error that means the token or session is gone (removed,
 * device error, logged out, ...) makes the token not ready. */
int p11_sign(struct p11_token *t, enum p11_mech mech, int md_bits, const uint8_t *in, size_t inlen, uint8_t *out,
	     size_t *outlen, char *why, size_t whylen);

/* The public key object of the key pair: EC (a1 CKA_EC_PARAMS, a2
 * CKA_EC_POINT) or RSA (a1 modulus, a2 public exponent); *l1, *l2 the
 * room in, the lengths out. 0; -1 with why. */
int p11_public_key(struct p11_token *t, int *type, uint8_t *a1, size_t *l1, uint8_t *a2, size_t *l2, char *why,
		   size_t whylen);
/* A key pair of alg ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072",
 * "rsa-4096") made on the token under the configured label and id: the
 * private key sensitive, not extractable, signing only. Refused when a key
 * with that label or id exists. Needs p11_connect with P11_RW | P11_NO_KEY.
 * 0; -1 with why. */
int p11_generate(struct p11_token *t, const char *alg, char *why, size_t whylen);

/* CKR_* name of a return value ("CKR_PIN_INCORRECT"), or "CKR_0x..". */
const char *p11_rv_name(unsigned long rv, char *buf, size_t len);

#endif

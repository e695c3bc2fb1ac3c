/* ACME account keys (one per ACME issuer, key_dir/acme/<issuer_id>.key) and
 * the signatures the scheduler's ACME client asks for: JWS with an account
 * key, and external account bindings keyed with an issuer's sealed HMAC key.
 * They sign protocol messages, not certificates: none of them is a ledger
 * line. docs/pki.md, "ACME account keys". */
#ifndef CERTWARD_SIGNER_ACME_H
#define CERTWARD_SIGNER_ACME_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* at most this many account keys in memory; the least recently used one
 * is dropped (and read from its file again when needed) */
#define ACME_KEYS_MAX 256
#define ACME_JWK_MAX 2048
#define ACME_SIG_MAX 512
/* a key file's path: key_dir (at most 1024 bytes) and the longest name */
#define ACME_PATH_MAX 1300

struct acme_keys;

/* The account keys under key_dir/acme, wrapped with
 * signer.ca_key_passphrase_file when one is set. NULL after logging why. */
struct acme_keys *acme_keys_open(const struct cfg *section, const char *key_dir);
void acme_keys_free(struct acme_keys *k);

/* The functions below return 0 (or a length), -1 for a request refused
 * (EINVAL) or -2 when a key file cannot be written or read (EIO), with why
 * filled (never holding key material); the rollover's also ACME_NO_KEY
 * (ENOENT: no such key) and ACME_PENDING (EEXIST). */
#define ACME_NO_KEY (-3)
#define ACME_PENDING (-4)

struct acme_pubkey {
	const char *jwk; /* RFC 7638 member order, no whitespace */
	size_t jwk_len;
	const char *thumbprint; /* base64url SHA-256 of jwk, 43 characters */
};

/* issuer_id's account key, made with alg ("ES256", "ES384", "RS256") when
 * it has none; a key of another alg is refused. alg "": the key whatever
 * its alg, ACME_NO_KEY when it has none (nothing made). out points into k,
 * valid until the next call. */
int acme_account_get(struct acme_keys *k, const char *issuer_id, const char *alg, struct acme_pubkey *out,
		     char *why, size_t whylen);

/* The JWS signature of in ("<b64url protected>.<b64url payload>", whose
 * protected header names the key's alg) with issuer_id's account key, into
 * sig (ACME_SIG_MAX bytes): ES256/ES384 as r||s, RS256 as PKCS#1 v1.5. */
long acme_jws_sign(struct acme_keys *k, const char *issuer_id, const uint8_t *in, size_t len, uint8_t *sig,
		   char *why, size_t whylen);

/*
 * Account key rollover (RFC 8555 7.3.5). The new key is made pending, as
 * key_dir/acme/<issuer_id>.key.next (0600, wrapped like the account key,
 * the directory synced), signs the keyChange's inner JWS and nothing else,
 * and becomes the account key (renamed over <issuer_id>.key, the directory
 * synced) once the CA has taken it, or is removed. A crash in between
 * leaves it pending for the scheduler to settle (docs/acme-client.md).
 */

/* With alg: a new pending key of issuer_id (which must have an account
 * key), ACME_PENDING while one is; with alg "": the pending key, 1 (with
 * why) when there is none. out as for acme_account_get. */
int acme_key_next(struct acme_keys *k, const char *issuer_id, const char *alg, struct acme_pubkey *out, char *why,
		  size_t whylen);
/* The signature of in, a keyChange's inner JWS, with issuer_id's pending
 * key: as acme_jws_sign, and the protected header's jwk must be the pending
 * key's, the payload an object with a string account and oldKey the
 * account key's JWK. */
long acme_jws_sign_next(struct acme_keys *k, const char *issuer_id, const uint8_t *in, size_t len, uint8_t *sig,
			char *why, size_t whylen);
/* The pending key whose thumbprint is thumbprint made issuer_id's account
 * key; out the account key now. When it is the account key already (asked
 * again), the same answer; none pending: ACME_NO_KEY. */
int acme_key_commit(struct acme_keys *k, const char *issuer_id, const char *thumbprint, struct acme_pubkey *out,
		    char *why, size_t whylen);
/* The pending key whose thumbprint is thumbprint removed; 0 when none is
 * pending. */
int acme_key_abort(struct acme_keys *k, const char *issuer_id, const char *thumbprint, char *why, size_t whylen);
/* issuer_id's account key, whose thumbprint must be thumbprint, renamed
 * <issuer_id>.key.deactivated.<unix time> (its account deactivated), a
 * pending key removed, the directory synced: the next acme_account_get makes
 * a new key. file gets the new name ("" when there was no key: 0). */
int acme_key_retire(struct acme_keys *k, const char *issuer_id, const char *thumbprint, char *file, size_t filelen,
		    char *why, size_t whylen);

/* The HS256 signature of in (a JWS signing input with alg "HS256") keyed
 * with the base64url member eab_hmac_key of sealed (secrets.h), into mac
 * (32 bytes). The key and the opened blob are wiped. */
long acme_eab_sign(const uint8_t *sealed, size_t sealed_len, const uint8_t *in, size_t len, uint8_t *mac,
		   char *why, size_t whylen);

#endif

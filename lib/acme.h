/*
 * ACME (RFC 8555) as pure functions over buffers: no sockets, no private
 * keys. The scheduler talks HTTPS to the CA and asks the signer for every
 * signature; this library builds what is signed (JWS signing inputs, EAB and
 * key-change objects, request payloads), assembles the signed bodies, and
 * parses what the CA sends back (directory, account, order, authorization,
 * problem document, Retry-After, Link, the PEM chain, ARI's renewalInfo).
 *
 * Parsers trust nothing the CA sends: each takes the body and its length,
 * refuses more than ACME_JSON_MAX bytes or ACME_JSON_DEPTH levels of nesting,
 * duplicate members, members of the wrong JSON type, URLs that are not
 * https (lib/validate.h valid_https_url), identifiers that are not DNS names
 * or IP addresses, dates that are not RFC 3339, and arrays longer than their
 * ACME_*_MAX. Members ACME defines but the client does not use are ignored.
 * On failure they return -1 and write one line naming the object and the
 * member ("order: authorizations[2]: not an https URL") to err, and leave
 * nothing to free; on success the strings they expose live as long as the
 * parsed object (until its _free). Text from the CA that is meant for people
 * (a problem's detail, a profile's description) is cut to ACME_DETAIL_MAX
 * bytes with control characters replaced by '?', so that it can go into a
 * log line.
 */
#ifndef CERTWARD_ACME_H
#define CERTWARD_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACME_JSON_MAX (256u * 1024u)	  /* bytes of a JSON response */
#define ACME_JSON_DEPTH 16		  /* nesting of a JSON response */
#define ACME_URL_MAX 2048		  /* bytes of a URL */
#define ACME_TOKEN_MAX 128		  /* characters of a challenge token */
#define ACME_NONCE_MAX 256		  /* characters of a Replay-Nonce */
#define ACME_IDENTIFIERS_MAX 100	  /* identifiers of an order, authorizations of an order */
#define ACME_CHALLENGES_MAX 16		  /* challenges of an authorization */
#define ACME_SUBPROBLEMS_MAX 100	  /* subproblems of a problem document */
#define ACME_PROFILES_MAX 32		  /* profiles in a directory's meta */
#define ACME_CHAIN_MAX 8		  /* certificates in a PEM chain */
#define ACME_CHAIN_PEM_MAX (128u * 1024u) /* bytes of a PEM chain */
#define ACME_ALTERNATES_MAX 8		  /* rel="alternate" links kept */
#define ACME_DETAIL_MAX 1024		  /* bytes of a problem's detail kept */
#define ACME_THUMBPRINT_LEN 43		  /* b64url of a SHA-256, without the NUL */
#define ACME_KEYAUTH_MAX (ACME_TOKEN_MAX + 1 + ACME_THUMBPRINT_LEN + 1)
#define ACME_CERT_ID_MAX 200		  /* ARI CertID with its NUL */
#define ACME_RETRY_AFTER_MIN 1		  /* seconds: Retry-After is clamped to these */
#define ACME_RETRY_AFTER_MAX 86400

/* ---- base64url (RFC 4648 section 5), never padded ---- */

/* Characters of the encoding of n bytes (without the NUL). */
size_t acme_b64url_len(size_t n);
/* p[0..n) into out (acme_b64url_len(n) + 1 bytes, NUL-terminated); returns
 * the length written. */
size_t acme_b64url_encode(const uint8_t *p, size_t n, char *out);
/* The same into a string to free; NULL out of memory. */
char *acme_b64url(const uint8_t *p, size_t n);
/* s[0..len) decoded into out (at most cap bytes), *out_len set: 0, or -1 for
 * anything but canonical unpadded base64url ('=', '+', '/', whitespace, a
 * length of 4k+1, bits set past the last byte) or when cap is too small. */
int acme_b64url_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len);
/* Whether s is 1..max characters of the base64url alphabet. */
bool acme_b64url_chars(const char *s, size_t max);

/* ---- JWS (RFC 7515 flattened JSON serialization) ---- */

/* A JWS being made: its signing input goes to the signer, its signature
 * comes back to acme_jws_finish. alg is "ES256", "ES384", "RS256" (account
 * keys) or "HS256" (EAB). */
struct acme_jws {
	char alg[8];
	char *protected_b64;
	char *payload_b64;   /* "" for POST-as-GET */
	char *signing_input; /* ASCII "protected_b64.payload_b64", NUL-terminated */
};

/* A request to the CA: protected header {"alg", "jwk" or "kid", "nonce",
 * "url"}. jwk (the account's public JWK as JSON text, from the signer) for
 * newAccount (and revokeCert by certificate key), else kid (the account
 * URL); exactly one of the two. payload is the JSON text of the request
 * (acme_payload_* below), NULL for POST-as-GET (the empty payload). 0, or
 * -1 with err (bad alg, nonce, URL, JWK, payload; out of memory). */
int acme_jws_request(struct acme_jws *j, const char *alg, const char *jwk, const char *kid, const char *nonce,
		     const char *url, const char *payload, char *err, size_t errlen);
/* External account binding (RFC 8555 7.3.4): protected {"alg":"HS256",
 * "kid":eab_kid,"url":new_account_url} over the account's JWK. The signing
 * input goes to the signer (ACME_EAB_SIGN); acme_jws_finish makes the
 * object that acme_payload_new_account takes as eab. */
int acme_jws_eab(struct acme_jws *j, const char *eab_kid, const char *new_account_url, const char *account_jwk,
		 char *err, size_t errlen);
/* The inner JWS of a key change (RFC 8555 7.3.5), signed by the NEW key:
 * protected {"alg":new_alg,"jwk":new_jwk,"url":key_change_url}, payload
 * {"account":account_url,"oldKey":old_jwk}. acme_jws_finish's result is
 * then the payload of an acme_jws_request to key_change_url by kid, signed
 * by the old key. */
int acme_jws_key_change(struct acme_jws *j, const char *new_alg, const char *new_jwk, const char *key_change_url,
			const char *account_url, const char *old_jwk, char *err, size_t errlen);
/* Any protected header (JSON text, used as is) and payload bytes: the
 * general form the three above are made with. */
int acme_jws_from_parts(struct acme_jws *j, const char *alg, const char *protected_json, const uint8_t *payload,
			size_t payload_len, char *err, size_t errlen);
/* The flattened JWS {"protected","payload","signature"} as compact JSON text
 * (to free) with the raw signature: ES256 64 bytes and ES384 96 (r||s,
 * RFC 7518 3.4), RS256 256..1024, HS256 32. NULL with err for a signature
 * of the wrong size or out of memory. */
char *acme_jws_finish(const struct acme_jws *j, const uint8_t *sig, size_t sig_len, char *err, size_t errlen);
void acme_jws_free(struct acme_jws *j);

/* Whether s can be a Replay-Nonce (1..ACME_NONCE_MAX base64url characters). */
bool acme_nonce_ok(const char *s);
/* Whether s is an https URL of at most ACME_URL_MAX bytes. */
bool acme_url_ok(const char *s);

/* ---- keys and challenges ---- */

/* The RFC 7638 thumbprint of a public JWK (JSON text: kty "EC" with crv
 * P-256 or P-384, x, y of the curve's size; or kty "RSA" with n of 2048 to
 * 8192 bits, e): b64url(SHA-256) of the required members in canonical
 * order, into out (ACME_THUMBPRINT_LEN + 1). 0, or -1 with err. */
int acme_jwk_thumbprint(const char *jwk, size_t len, char out[ACME_THUMBPRINT_LEN + 1], char *err,
			size_t errlen);
/* token "." thumbprint into out (ACME_KEYAUTH_MAX): 0, or -1 when the token
 * is not 1..ACME_TOKEN_MAX base64url characters or the thumbprint is not
 * one. */
int acme_key_authorization(const char *token, const char *thumbprint, char out[ACME_KEYAUTH_MAX]);
/* The dns-01 TXT value: b64url(SHA-256(key authorization)). */
void acme_dns01_txt(const char *key_authorization, char out[ACME_THUMBPRINT_LEN + 1]);
/* The TXT value of a dns-persist-01 record (draft-ietf-acme-dns-persist,
 * at _validation-persist.<name>): "<issuer_domain>; accounturi=<account_url>"
 * and, for a wildcard, "; policy=wildcard". 0, or -1 when an argument is
 * unfit (issuer_domain not a DNS name, account_url not an https URL) or the
 * value does not fit out. */
int acme_dns_persist_value(const char *issuer_domain, const char *account_url, bool wildcard, char *out,
			   size_t cap);

/* ---- what the CA sends ---- */

enum acme_status {
	ACME_STATUS_UNKNOWN = 0, /* never returned by a parser */
	ACME_STATUS_PENDING,
	ACME_STATUS_READY,
	ACME_STATUS_PROCESSING,
	ACME_STATUS_VALID,
	ACME_STATUS_INVALID,
	ACME_STATUS_DEACTIVATED,
	ACME_STATUS_EXPIRED,
	ACME_STATUS_REVOKED,
};
const char *acme_status_name(enum acme_status s);

/* An identifier: type "dns" (value a DNS name, "*.name" in orders) or "ip"
 * (RFC 8738). */
struct acme_identifier {
	const char *type, *value;
};

/* urn:ietf:params:acme:error:* (RFC 8555 6.7, RFC 9773, profiles) */
enum acme_error {
	ACME_ERR_OTHER = 0, /* not an ACME type (or absent: about:blank) */
	ACME_ERR_ACCOUNT_DOES_NOT_EXIST,
	ACME_ERR_ALREADY_REPLACED,
	ACME_ERR_ALREADY_REVOKED,
	ACME_ERR_BAD_CSR,
	ACME_ERR_BAD_NONCE, /* retry the request once with the nonce of this response */
	ACME_ERR_BAD_PUBLIC_KEY,
	ACME_ERR_BAD_REVOCATION_REASON,
	ACME_ERR_BAD_SIGNATURE_ALGORITHM,
	ACME_ERR_CAA,
	ACME_ERR_COMPOUND,
	ACME_ERR_CONNECTION,
	ACME_ERR_DNS,
	ACME_ERR_EXTERNAL_ACCOUNT_REQUIRED,
	ACME_ERR_INCORRECT_RESPONSE,
	ACME_ERR_INVALID_CONTACT,
	ACME_ERR_INVALID_PROFILE,
	ACME_ERR_MALFORMED,
	ACME_ERR_ORDER_NOT_READY,
	ACME_ERR_RATE_LIMITED, /* wait for Retry-After */
	ACME_ERR_REJECTED_IDENTIFIER,
	ACME_ERR_SERVER_INTERNAL,
	ACME_ERR_TLS,
	ACME_ERR_UNAUTHORIZED,
	ACME_ERR_UNSUPPORTED_CONTACT,
	ACME_ERR_UNSUPPORTED_IDENTIFIER,
	ACME_ERR_USER_ACTION_REQUIRED,
};
/* The kind of a problem type; ACME_ERR_OTHER for NULL or anything else. */
enum acme_error acme_error_of(const char *type);
/* Whether a failure of that kind may succeed when retried later unchanged
 * (badNonce, rateLimited, serverInternal, connection, dns, tls: the CA or
 * the network; not what the client asked for). */
bool acme_error_transient(enum acme_error e);

struct acme_subproblem {
	const char *type;
	const char *detail; /* "" when absent */
	enum acme_error kind;
	bool has_identifier;
	struct acme_identifier identifier;
};

/* A problem document (RFC 7807, application/problem+json), standing alone
 * or as the "error" of an order or a challenge. */
struct acme_problem {
	const char *type;   /* "about:blank" when absent */
	const char *detail; /* "" when absent; sanitized (see above) */
	enum acme_error kind;
	int status; /* the HTTP status it names, 0 when absent */
	struct acme_subproblem *sub;
	size_t nsub;
	void *doc_; /* the parsed document when standing alone */
};
int acme_parse_problem(const char *body, size_t len, struct acme_problem *p, char *err, size_t errlen);
void acme_problem_free(struct acme_problem *p);
/* Whether p, the answer to a newOrder with replaces (RFC 9773 5), refuses
 * the replaces itself, so that the order may be sent once more without it:
 * alreadyReplaced, or malformed or unauthorized with a detail about the
 * replaced certificate (Boulder's answer for one it does not know, or of
 * another account). */
bool acme_problem_about_replaces(const struct acme_problem *p);

/* The directory: the six URLs (renewal_info NULL when the CA has no ARI)
 * and meta. New-nonce, new-account, new-order, revoke-cert and key-change
 * are required. */
struct acme_profile {
	const char *name, *description;
};
struct acme_directory {
	const char *new_nonce, *new_account, *new_order, *revoke_cert, *key_change, *renewal_info;
	const char *terms_of_service; /* NULL when absent; any printable ASCII URI (pebble's is data:) */
	const char *website;	      /* NULL when absent */
	bool external_account_required;
	struct acme_profile *profiles; /* meta.profiles, name -> description */
	size_t nprofiles;
	void *doc_;
};
int acme_parse_directory(const char *body, size_t len, struct acme_directory *d, char *err, size_t errlen);
void acme_directory_free(struct acme_directory *d);
/* The profile of that name, or NULL when the directory does not offer it. */
const struct acme_profile *acme_directory_profile(const struct acme_directory *d, const char *name);

/* An account object: status valid, deactivated or revoked; orders NULL when
 * absent (Let's Encrypt omits it). */
struct acme_account {
	enum acme_status status;
	const char *orders;
	void *doc_;
};
int acme_parse_account(const char *body, size_t len, struct acme_account *a, char *err, size_t errlen);
void acme_account_free(struct acme_account *a);

/* An order: status pending, ready, processing, valid or invalid; expires 0
 * when absent; certificate NULL until valid; has_error with error when the
 * CA gave one. At least one identifier and, while pending, one
 * authorization. */
struct acme_order {
	enum acme_status status;
	int64_t expires; /* unix seconds */
	struct acme_identifier *identifiers;
	size_t nidentifiers;
	const char **authorizations;
	size_t nauthorizations;
	const char *finalize, *certificate;
	bool has_error;
	struct acme_problem error;
	void *doc_;
};
int acme_parse_order(const char *body, size_t len, struct acme_order *o, char *err, size_t errlen);
void acme_order_free(struct acme_order *o);

/* A challenge: type (any type the CA offers; 1..64 of [a-z0-9-]), url,
 * status pending, processing, valid or invalid, token (required for
 * http-01, dns-01 and tls-alpn-01; NULL when absent), error. For
 * dns-persist-01 (draft-ietf-acme-dns-persist) issuer_domain_names is its
 * "issuer-domain-names" (DNS names, at most 8), and raw is the challenge
 * object (a json_t *, borrowed) for members not parsed here;
 * issuer_domain_names is left empty when the member is absent or malformed
 * (the challenge is then unusable and the client falls back to dns-01),
 * rather than refusing the whole authorization. */
#define ACME_ISSUER_DOMAINS_MAX 8
struct acme_challenge {
	const char *type, *url, *token;
	enum acme_status status;
	bool has_error;
	struct acme_problem error;
	const char *issuer_domain_names[ACME_ISSUER_DOMAINS_MAX];
	size_t nissuer_domain_names;
	const void *raw;
	void *doc_; /* the parsed document when standing alone */
};
/* An authorization: status pending, valid, invalid, deactivated, expired or
 * revoked; identifier (a DNS name without "*."; wildcard says whether the
 * order asked for "*.value"); expires 0 when absent; 1..ACME_CHALLENGES_MAX
 * challenges. */
struct acme_authz {
	enum acme_status status;
	struct acme_identifier identifier;
	bool wildcard;
	int64_t expires;
	struct acme_challenge *challenges;
	size_t nchallenges;
	void *doc_;
};
int acme_parse_authz(const char *body, size_t len, struct acme_authz *a, char *err, size_t errlen);
void acme_authz_free(struct acme_authz *a);
/* The authorization's challenge of that type ("http-01", "dns-01",
 * "dns-persist-01"), or NULL. */
const struct acme_challenge *acme_authz_challenge(const struct acme_authz *a, const char *type);
/* A challenge object alone (the response to a POST to its URL). */
int acme_parse_challenge(const char *body, size_t len, struct acme_challenge *c, char *err, size_t errlen);
void acme_challenge_free(struct acme_challenge *c);

/* Retry-After (RFC 9110 10.2.3): delta-seconds or an IMF-fixdate ("Sun, 06
 * Nov 1994 08:49:37 GMT") against now (unix seconds), clamped to
 * [ACME_RETRY_AFTER_MIN, ACME_RETRY_AFTER_MAX]: 0 with *seconds, or -1 when
 * value is neither (the caller's own default then applies). */
int acme_retry_after(const char *value, int64_t now, uint32_t *seconds);

/* Link header fields (RFC 8288) of one response, added one field value at a
 * time (a response may carry several Link fields, each a comma-separated
 * list): rel="up" (an order's certificate: the issuer's; an authorization:
 * its order), rel="index" (the directory), rel="alternate" (other chains of
 * a certificate, at most ACME_ALTERNATES_MAX kept). Targets must be https
 * URLs or, with base_url, absolute paths ("/x") taken against base_url's
 * origin. Other relations are skipped. Start from a zeroed struct. */
struct acme_links {
	char *up, *index;
	char *alternate[ACME_ALTERNATES_MAX];
	size_t nalternate;
};
int acme_links_add(struct acme_links *l, const char *value, const char *base_url, char *err, size_t errlen);
void acme_links_free(struct acme_links *l);

/* A certificate chain from the CA (application/pem-certificate-chain): 1 to
 * ACME_CHAIN_MAX CERTIFICATE blocks and nothing else but whitespace, each
 * a certificate in DER, each issued by the next one's subject (by name).
 * der[0] is the end-entity certificate. top_issuer_cn is the issuer CN of
 * the last certificate ("" when it has none): what preferred_chain is
 * matched against. */
struct acme_chain {
	uint8_t *der[ACME_CHAIN_MAX];
	size_t der_len[ACME_CHAIN_MAX];
	size_t n;
	char top_issuer_cn[256];
};
int acme_parse_pem_chain(const char *pem, size_t len, struct acme_chain *c, char *err, size_t errlen);
void acme_chain_free(struct acme_chain *c);
/* The index of the first of n chains (the default first, then the
 * alternates) whose top issuer CN is preferred_cn (exact, case-sensitive, as
 * certbot and lego compare it), else 0 (the default). */
size_t acme_chain_choose(const struct acme_chain *chains, size_t n, const char *preferred_cn);

/* ---- ARI (RFC 9773) ---- */

/* The CertID of a certificate (DER): b64url(authorityKeyIdentifier's
 * keyIdentifier) "." b64url(the serial's DER content bytes), into out
 * (ACME_CERT_ID_MAX). 0, or -1 with err (not a certificate, no AKI key
 * identifier). */
int acme_ari_cert_id(const uint8_t *der, size_t len, char out[ACME_CERT_ID_MAX], char *err, size_t errlen);
/* Whether s has the form of a CertID (base64url "." base64url). */
bool acme_ari_cert_id_ok(const char *s);

/* A renewalInfo response: suggestedWindow start < end (RFC 3339, as unix
 * seconds) and explanationURL (NULL when absent). */
struct acme_renewal_info {
	int64_t start, end;
	const char *explanation_url;
	void *doc_;
};
int acme_parse_renewal_info(const char *body, size_t len, struct acme_renewal_info *ri, char *err,
			    size_t errlen);
void acme_renewal_info_free(struct acme_renewal_info *ri);
/* A time uniformly inside [start, end) chosen by random (a value from
 * RAND_bytes). */
int64_t acme_renewal_pick(const struct acme_renewal_info *ri, uint64_t random);
/* When to renew by the window (RFC 9773 4.2): acme_renewal_pick's time, or
 * now when the window's end has passed (renew at once). */
int64_t acme_ari_renew_at(const struct acme_renewal_info *ri, int64_t now, uint64_t random);

#define ACME_ARI_RETRY_MIN 3600	    /* seconds: renewalInfo is asked for again within these */
#define ACME_ARI_RETRY_MAX 86400
#define ACME_ARI_RETRY_DEFAULT 21600 /* when the answer has no Retry-After */
/* Seconds until a certificate's renewalInfo is asked for again (RFC 9773
 * 4.3): retry_after (the answer's Retry-After in seconds, acme_retry_after;
 * 0 when it had none) clamped to [ACME_ARI_RETRY_MIN, ACME_ARI_RETRY_MAX],
 * ACME_ARI_RETRY_DEFAULT without one. After failed (>= 1) failed checks in
 * a row, ACME_ARI_RETRY_MIN doubled for each failure before this one, at
 * most ACME_ARI_RETRY_MAX, or the answer's clamped Retry-After when that is
 * longer. */
uint32_t acme_ari_retry(uint32_t retry_after, unsigned failed);

/* RFC 3339 date-time to unix seconds (fractions dropped): 0, or -1. */
int acme_rfc3339_time(const char *s, int64_t *out);

/* ---- request payloads: compact JSON text to free, NULL with err ---- */

/* newAccount: contact ["mailto:<email>", ...] (0..4 addresses, each
 * lib/validate.h valid_email), termsOfServiceAgreed, onlyReturnExisting when
 * true, externalAccountBinding when eab (acme_jws_eab's finished JSON) is
 * non-NULL. */
char *acme_payload_new_account(const char *const *emails, size_t nemails, bool tos_agreed, bool only_existing,
			       const char *eab, char *err, size_t errlen);
/* newOrder: identifiers (1..ACME_IDENTIFIERS_MAX names: an IP address is
 * type "ip", else a DNS name, "*." allowed: type "dns"), profile and
 * replaces (an ARI CertID) when non-NULL. */
char *acme_payload_new_order(const char *const *names, size_t nnames, const char *profile, const char *replaces,
			     char *err, size_t errlen);
/* finalize: {"csr": b64url(DER)} */
char *acme_payload_finalize(const uint8_t *csr_der, size_t len, char *err, size_t errlen);
/* revokeCert: {"certificate": b64url(DER), "reason": reason} (reason -1 for
 * none, else an RFC 5280 CRLReason code 0..10 but 7). */
char *acme_payload_revoke(const uint8_t *cert_der, size_t len, int reason, char *err, size_t errlen);
/* {"status":"deactivated"} for an account or an authorization. */
char *acme_payload_deactivate(void);

#endif

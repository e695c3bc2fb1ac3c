/*
 * What certward-notifier sends, built from one claimed delivery (the JSON
 * object of the store's notifier.claim: id, type, severity, recipient,
 * subject, message, attempt, event_id, created_at, details, certificate).
 * Pure functions: no I/O, no clock except where a time is passed in.
 * docs/notifications.md "Payload formats" describes every shape.
 */
#ifndef CERTWARD_NOTIFIER_FORMAT_H
#define CERTWARD_NOTIFIER_FORMAT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest e-mail message built (headers and encoded body). */
#define MAIL_MAX_BYTES (256u * 1024u)

/* The JSON bodies, malloc'd and NUL-terminated, or NULL (bad delivery or
 * out of memory). */
char *payload_webhook(const json_t *d);
char *payload_slack(const json_t *d);
char *payload_teams(const json_t *d);
/* routing_key is copied into the body (PagerDuty wants it there). */
char *payload_pagerduty(const json_t *d, const char *routing_key);
char *payload_opsgenie(const json_t *d);

/* The webhook signature header's value: "sha256=" and the lowercase hex
 * HMAC-SHA256(key, timestamp "." body), 71 characters and a NUL. */
void webhook_signature(const char *key, size_t key_len, long long timestamp, const char *body,
		       size_t body_len, char out[72]);

/* The PagerDuty dedup key and OpsGenie alias of a delivery:
 * "certward-<certificate id>", or "certward-<type>-<event id>" without a
 * certificate. */
void alert_key(const json_t *d, char *out, size_t outlen);

/* An RFC 5322 message (CRLF line ends, not yet dot-stuffed): Date (of
 * `when`), From, To, Subject (an RFC 2047 encoded word when it is not plain
 * printable ASCII), Message-ID (<delivery id>.<nonce hex>@<sender's
 * domain>), MIME 1.0, text/plain UTF-8 quoted-printable body. Returns a
 * malloc'd message and its length in *len, or NULL (an address with a
 * character it may not hold, too large, out of memory). */
char *mail_build(const char *from, const char *to, const char *subject, const char *body, const char *id,
		 const char *nonce_hex, time_t when, size_t *len);

/* "Tue, 24 Nov 2026 18:00:00 +0000" */
void mail_date(time_t when, char *out, size_t outlen);

/* Whether an address is one this client writes into a header or an SMTP
 * command: local@domain, printable ASCII, no space, <, >, quotes, comma. */
int mail_address_ok(const char *addr);

/* Quoted-printable (RFC 2045) of UTF-8 text: LF or CRLF become CRLF, lines
 * at most 76 characters with soft breaks, a "." starting a line encoded.
 * Appends to a malloc'd buffer; returns it (NUL-terminated) or NULL. */
char *qp_encode(const char *text, size_t len, size_t *outlen);

/* The subject header's value: as it is when printable ASCII, else
 * "=?UTF-8?B?...?=" words of whole characters, folded. NULL when out of memory. */
char *mail_subject(const char *subject);

/* SMTP transparency (RFC 5321 4.5.2): a "." starting a line doubled, bare
 * LF made CRLF, and the message ended with CRLF "." CRLF. malloc'd; NULL
 * when out of memory. */
char *smtp_dot_stuff(const char *msg, size_t len, size_t *outlen);

#endif

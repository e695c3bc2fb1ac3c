/*
 * The SMTP client of certward-notifier (RFC 5321): EHLO, STARTTLS (RFC
 * 3207) or implicit TLS, AUTH PLAIN or LOGIN (RFC 4954), MAIL, RCPT, DATA,
 * QUIT, over lib/https_client's stream with its certificate checks. Every
 * reply is bounded; the whole session has one deadline. Blocking: run it
 * off the event loop.
 */
#ifndef CERTWARD_NOTIFIER_SMTP_H
#define CERTWARD_NOTIFIER_SMTP_H

#include <stddef.h>

#define SMTP_REPLY_MAX_LINE 1000   /* bytes of one reply line with its CRLF (RFC 5321 allows 512) */
#define SMTP_REPLY_MAX_LINES 64
#define SMTP_REPLY_TEXT_MAX 2048   /* text kept for messages and EHLO keywords */

enum smtp_tls { SMTP_STARTTLS, SMTP_IMPLICIT, SMTP_PLAIN };

struct smtp_reply {
	int code;                       /* 200..599 */
	unsigned lines;
	char text[SMTP_REPLY_TEXT_MAX]; /* the lines' texts joined by '\n', control characters as '?' */
};

/* Parses one complete reply at the start of buf: the bytes it takes (> 0),
 * 0 when more are needed, -1 when malformed (bad code, codes that differ
 * between lines, a line or a reply over the bounds). LF alone ends a line
 * too. */
long smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *r);

/* Whether an EHLO reply names keyword (e.g. "STARTTLS"), and for AUTH
 * whether it lists mechanism. */
int smtp_ehlo_has(const struct smtp_reply *ehlo, const char *keyword, const char *mechanism);

struct smtp_server {
	const char *host;
	unsigned port;
	enum smtp_tls tls;
	const char *cacert;   /* NULL: the system trust store */
	const char *user;     /* NULL or "": no AUTH */
	const char *password;
	const char *helo;     /* the name said in EHLO */
	int timeout_s;
};

/* Sends message (RFC 5322, CRLF line ends, not dot-stuffed) from `from` to
 * `to`. Returns 0, or -1 with why in err (the step and the server's reply
 * text, never the credentials). */
int smtp_send(const struct smtp_server *s, const char *from, const char *to, const char *message,
	      size_t len, char *err, size_t errlen);

#endif

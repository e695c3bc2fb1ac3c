#include "smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/base64.h>
#include <openssl/mem.h>

#include "format.h"
#include "https_client.h"

long smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *r)
{
	size_t pos = 0, tl = 0;

	memset(r, 0, sizeof *r);
	for (;;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t line_len, text_len;
		const char *line = buf + pos;
		int code;

		if (!nl)
			return len - pos >= SMTP_REPLY_MAX_LINE ? -1 : 0;
		line_len = (size_t)(nl - line) + 1;
		if (line_len > SMTP_REPLY_MAX_LINE)
			return -1;
		text_len = line_len - 1;
		if (text_len > 0 && line[text_len - 1] == '\r')
			text_len--;
		if (text_len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' || (text_len > 3 && line[3] != ' ' && line[3] != '-'))
			return -1;
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (r->lines > 0 && code != r->code)
			return -1;
		r->code = code;
		if (++r->lines > SMTP_REPLY_MAX_LINES)
			return -1;
		if (r->lines > 1 && tl + 1 < sizeof r->text)
			r->text[tl++] = '\n';
		for (size_t i = 4; i < text_len && tl + 1 < sizeof r->text; i++) {
			unsigned char c = (unsigned char)line[i];

			r->text[tl++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		}
		r->text[tl] = 0;
		pos += line_len;
		if (text_len == 3 || line[3] == ' ')
			return (long)pos;
	}
}

int smtp_ehlo_has(const struct smtp_reply *ehlo, const char *keyword, const char *mechanism)
{
	const char *p = ehlo->text;
	size_t kl = strlen(keyword);

	/* the first line is the server's greeting, the others keywords */
	for (p = strchr(p, '\n'); p; p = strchr(p, '\n')) {
		p++;
		if (strncasecmp(p, keyword, kl) != 0 || (p[kl] && p[kl] != ' ' && p[kl] != '\n' && p[kl] != '='))
			continue;
		if (!mechanism)
			return 1;
		for (const char *q = p + kl; *q && *q != '\n';) {
			size_t n, ml = strlen(mechanism);

			q += strspn(q, " =");
			n = strcspn(q, " \n");
			if (n == ml && strncasecmp(q, mechanism, ml) == 0)
				return 1;
			q += n;
		}
	}
	return 0;
}

struct session {
	struct http_stream st;
	char buf[SMTP_REPLY_MAX_LINE * 4];
	size_t len;
	char *err;
	size_t errlen;
};

/* The next reply; -1 with err set when there is none or it is malformed. */
static int reply(struct session *s, struct smtp_reply *r, const char *step)
{
	char why[256];

	for (;;) {
		long n = smtp_reply_parse(s->buf, s->len, r), got;

		if (n > 0) {
			memmove(s->buf, s->buf + n, s->len - (size_t)n);
			s->len -= (size_t)n;
			return 0;
		}
		if (n < 0 || s->len == sizeof s->buf) {
			snprintf(s->err, s->errlen, "SMTP %s: malformed or oversized reply", step);
			return -1;
		}
		got = http_stream_read(&s->st, s->buf + s->len, sizeof s->buf - s->len, why, sizeof why);
		if (got <= 0) {
			snprintf(s->err, s->errlen, "SMTP %s: %s", step, got < 0 ? why : "connection closed");
			return -1;
		}
		s->len += (size_t)got;
	}
}

static int send_bytes(struct session *s, const char *p, size_t n, const char *step)
{
	char why[256];

	if (http_stream_write(&s->st, p, n, why, sizeof why) != HTTP_OK) {
		snprintf(s->err, s->errlen, "SMTP %s: %s", step, why);
		return -1;
	}
	return 0;
}

/* Sends a command (CRLF added) and reads its reply, which must have the
 * class of `want` (2 for 2xx, 3 for 3xx). The command is never put in a
 * message: it may hold credentials. */
static int command(struct session *s, const char *cmd, int want, struct smtp_reply *r, const char *step)
{
	char line[1024];
	int n = snprintf(line, sizeof line, "%s\r\n", cmd);
	int rc;

	if (n < 0 || (size_t)n >= sizeof line) {
		snprintf(s->err, s->errlen, "SMTP %s: command too long", step);
		return -1;
	}
	rc = send_bytes(s, line, (size_t)n, step);
	OPENSSL_cleanse(line, sizeof line);
	if (rc != 0 || reply(s, r, step) != 0)
		return -1;
	if (r->code / 100 != want) {
		snprintf(s->err, s->errlen, "SMTP %s refused: %d %.300s", step, r->code, r->text);
		return -1;
	}
	return 0;
}

static int b64(const char *in, size_t n, char *out, size_t outlen)
{
	size_t need = 0;

	if (!EVP_EncodedLength(&need, n) || need > outlen)
		return -1;
	EVP_EncodeBlock((uint8_t *)out, (const uint8_t *)in, n);
	return 0;
}

static int authenticate(struct session *s, const struct smtp_server *srv, const struct smtp_reply *ehlo)
{
	struct smtp_reply r;
	char plain[600], enc[900], cmd[920];
	size_t ul = strlen(srv->user), pl = srv->password ? strlen(srv->password) : 0;
	int rc = -1;

	if (ul > 255 || pl > 255) {
		snprintf(s->err, s->errlen, "SMTP AUTH: user name or password too long");
		return -1;
	}
	if (smtp_ehlo_has(ehlo, "AUTH", "PLAIN")) {
		plain[0] = 0;
		memcpy(plain + 1, srv->user, ul);
		plain[1 + ul] = 0;
		memcpy(plain + 2 + ul, srv->password, pl);
		if (b64(plain, 2 + ul + pl, enc, sizeof enc) == 0) {
			snprintf(cmd, sizeof cmd, "AUTH PLAIN %s", enc);
			rc = command(s, cmd, 2, &r, "AUTH PLAIN");
		}
	} else if (smtp_ehlo_has(ehlo, "AUTH", "LOGIN")) {
		if (command(s, "AUTH LOGIN", 3, &r, "AUTH LOGIN") == 0 && b64(srv->user, ul, enc, sizeof enc) == 0 &&
		    command(s, enc, 3, &r, "AUTH LOGIN (user name)") == 0 &&
		    b64(srv->password ? srv->password : "", pl, enc, sizeof enc) == 0)
			rc = command(s, enc, 2, &r, "AUTH LOGIN (password)");
	} else {
		snprintf(s->err, s->errlen, "SMTP AUTH: the server offers neither PLAIN nor LOGIN");
	}
	OPENSSL_cleanse(plain, sizeof plain);
	OPENSSL_cleanse(enc, sizeof enc);
	OPENSSL_cleanse(cmd, sizeof cmd);
	return rc;
}

static int ehlo(struct session *s, const struct smtp_server *srv, struct smtp_reply *r)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "EHLO %.255s", srv->helo && *srv->helo ? srv->helo : "localhost");
	return command(s, cmd, 2, r, "EHLO");
}

int smtp_send(const struct smtp_server *srv, const char *from, const char *to, const char *message,
	      size_t len, char *err, size_t errlen)
{
	struct session *s = calloc(1, sizeof *s);
	struct smtp_reply r, caps;
	char cmd[400], why[512];
	char *data = NULL;
	size_t data_len = 0;
	int rc = -1;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->err = err;
	s->errlen = errlen;
	if (!mail_address_ok(from) || !mail_address_ok(to) ||
	    (srv->helo && strcspn(srv->helo, " \r\n") != strlen(srv->helo))) {
		snprintf(err, errlen, "SMTP: bad sender, recipient or EHLO name");
		free(s);
		return -1;
	}
	if (http_stream_open(&s->st, srv->host, srv->port, srv->timeout_s, why, sizeof why) != HTTP_OK) {
		snprintf(err, errlen, "SMTP connect: %s", why);
		goto out;
	}
	if (srv->tls == SMTP_IMPLICIT && http_stream_tls(&s->st, srv->cacert, why, sizeof why) != HTTP_OK) {
		snprintf(err, errlen, "SMTP TLS: %s", why);
		goto out;
	}
	if (reply(s, &r, "greeting") != 0)
		goto out;
	if (r.code != 220) {
		snprintf(err, errlen, "SMTP greeting refused: %d %.300s", r.code, r.text);
		goto out;
	}
	if (ehlo(s, srv, &caps) != 0)
		goto out;
	if (srv->tls == SMTP_STARTTLS) {
		if (!smtp_ehlo_has(&caps, "STARTTLS", NULL)) {
			snprintf(err, errlen, "SMTP: the server does not offer STARTTLS");
			goto out;
		}
		if (command(s, "STARTTLS", 2, &r, "STARTTLS") != 0)
			goto out;
		if (s->len) {
			/* bytes sent before the handshake could be injected */
			snprintf(err, errlen, "SMTP STARTTLS: data after the reply");
			goto out;
		}
		if (http_stream_tls(&s->st, srv->cacert, why, sizeof why) != HTTP_OK) {
			snprintf(err, errlen, "SMTP TLS: %s", why);
			goto out;
		}
		if (ehlo(s, srv, &caps) != 0)
			goto out;
	}
	if (srv->user && *srv->user && srv->tls == SMTP_PLAIN) {
		/* AUTH PLAIN and LOGIN would send the password in clear */
		snprintf(err, errlen, "SMTP AUTH needs TLS (tls: starttls or implicit)");
		goto out;
	}
	if (srv->user && *srv->user && authenticate(s, srv, &caps) != 0)
		goto out;
	snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>", from);
	if (command(s, cmd, 2, &r, "MAIL FROM") != 0)
		goto out;
	snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", to);
	if (command(s, cmd, 2, &r, "RCPT TO") != 0)
		goto out;
	if (command(s, "DATA", 3, &r, "DATA") != 0)
		goto out;
	data = smtp_dot_stuff(message, len, &data_len);
	if (!data) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (send_bytes(s, data, data_len, "message") != 0 || reply(s, &r, "message") != 0)
		goto out;
	if (r.code / 100 != 2) {
		snprintf(err, errlen, "SMTP message refused: %d %.300s", r.code, r.text);
		goto out;
	}
	rc = 0;
	/* the message is accepted: QUIT's answer changes nothing */
	(void)command(s, "QUIT", 2, &r, "QUIT");
out:
	free(data);
	http_stream_close(&s->st);
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
	return rc;
}

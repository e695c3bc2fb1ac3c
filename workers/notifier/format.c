#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include "util.h"

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* At most max bytes of s, cut at a character boundary. */
static json_t *text_upto(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	return json_stringn(s, n);
}

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	json_decref(o);
	return s;
}

static const char *certificate_id(const json_t *d)
{
	return str(json_object_get(d, "certificate"), "id");
}

void alert_key(const json_t *d, char *out, size_t outlen)
{
	const char *cid = certificate_id(d);

	if (*cid)
		snprintf(out, outlen, "certward-%s", cid);
	else
		snprintf(out, outlen, "certward-%s-%s", str(d, "type"),
			 *str(d, "event_id") ? str(d, "event_id") : str(d, "id"));
}

char *payload_webhook(const json_t *d)
{
	json_t *cert = json_object_get(d, "certificate"), *details = json_object_get(d, "details");

	return dump(json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:O?, s:O?, s:s, s:O?}", "event", str(d, "type"),
			      "notification_id", str(d, "id"), "event_id", json_string_value(json_object_get(d, "event_id")),
			      "severity", str(d, "severity"), "subject", str(d, "subject"), "message",
			      str(d, "message"), "certificate", json_is_object(cert) ? cert : NULL, "details",
			      json_is_object(details) ? details : NULL, "created_at", str(d, "created_at"), "attempt",
			      json_object_get(d, "attempt")));
}

/* "<id> (<common name>), expires <when>" or "" */
static void cert_line(const json_t *d, char *out, size_t outlen)
{
	const json_t *c = json_object_get(d, "certificate");

	if (!json_is_object(c)) {
		snprintf(out, outlen, "-");
		return;
	}
	snprintf(out, outlen, "%.128s (%.255s)%s%.40s", str(c, "id"), str(c, "common_name"),
		 *str(c, "expires_at") ? ", expires " : "", str(c, "expires_at"));
}

char *payload_slack(const json_t *d)
{
	char line[512], ctx[700], head[1100];
	json_t *blocks;

	cert_line(d, line, sizeof line);
	snprintf(ctx, sizeof ctx, "%s | %s | certificate %s", str(d, "type"), str(d, "severity"), line);
	snprintf(head, sizeof head, "[%s] %.1000s", str(d, "severity"), str(d, "subject"));
	blocks = json_pack("[{s:s, s:{s:s, s:o}}, {s:s, s:{s:s, s:o}}, {s:s, s:[{s:s, s:o}]}]",
			   "type", "header", "text", "type", "plain_text", "text", text_upto(str(d, "subject"), 150),
			   "type", "section", "text", "type", "plain_text", "text",
			   text_upto(*str(d, "message") ? str(d, "message") : str(d, "subject"), 3000),
			   "type", "context", "elements", "type", "plain_text", "text", text_upto(ctx, 2000));
	return dump(json_pack("{s:o, s:o}", "text", text_upto(head, 3000), "blocks", blocks));
}

static const char *severity_colour(const char *sev)
{
	return strcmp(sev, "critical") == 0 ? "D32F2F" : strcmp(sev, "warning") == 0 ? "F9A825" : "1976D2";
}

char *payload_teams(const json_t *d)
{
	char line[512];

	cert_line(d, line, sizeof line);
	return dump(json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:[{s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}]}",
			      "@type", "MessageCard", "@context", "https://schema.org/extensions", "summary",
			      text_upto(str(d, "subject"), 256), "themeColor", severity_colour(str(d, "severity")),
			      "title", text_upto(str(d, "subject"), 1000), "text",
			      text_upto(str(d, "message"), 20000), "sections", "facts", "name", "Event", "value",
			      str(d, "type"), "name", "Severity", "value", str(d, "severity"), "name",
			      "Certificate", "value", line));
}

/* The event types that end the trouble a certificate's alert is about. */
static int resolves(const char *type)
{
	return strcmp(type, "RenewalSuccess") == 0 || strcmp(type, "DeploymentSuccess") == 0;
}

static json_t *custom_details(const json_t *d)
{
	const json_t *c = json_object_get(d, "certificate"), *details = json_object_get(d, "details");

	return json_pack("{s:s, s:s, s:O?, s:O?, s:s}", "event", str(d, "type"), "notification_id", str(d, "id"),
			 "certificate", json_is_object(c) ? c : NULL, "details",
			 json_is_object(details) ? details : NULL, "message", str(d, "message"));
}

char *payload_pagerduty(const json_t *d, const char *routing_key)
{
	char key[300];
	const json_t *c = json_object_get(d, "certificate");

	alert_key(d, key, sizeof key);
	return dump(json_pack("{s:s, s:s, s:s, s:s, s:{s:o, s:s, s:s, s:s, s:s?, s:s?, s:o}}", "routing_key",
			      routing_key, "event_action", resolves(str(d, "type")) ? "resolve" : "trigger",
			      "dedup_key", key, "client", "certward", "payload", "summary",
			      text_upto(str(d, "subject"), 1024), "severity", str(d, "severity"), "source", "certward",
			      "class", str(d, "type"), "component",
			      json_is_object(c) ? json_string_value(json_object_get(c, "common_name")) : NULL, "group",
			      json_is_object(c) ? json_string_value(json_object_get(c, "team_id")) : NULL,
			      "custom_details", custom_details(d)));
}

char *payload_opsgenie(const json_t *d)
{
	char key[300];
	const char *sev = str(d, "severity");
	const json_t *c = json_object_get(d, "certificate");
	json_t *details = json_object();

	alert_key(d, key, sizeof key);
	/* OpsGenie's details are a map of strings */
	json_object_set_new(details, "event", json_string(str(d, "type")));
	json_object_set_new(details, "notification_id", json_string(str(d, "id")));
	if (json_is_object(c)) {
		json_object_set_new(details, "certificate_id", json_string(str(c, "id")));
		json_object_set_new(details, "common_name", json_string(str(c, "common_name")));
		if (*str(c, "expires_at"))
			json_object_set_new(details, "expires_at", json_string(str(c, "expires_at")));
	}
	return dump(json_pack("{s:o, s:s, s:o, s:s, s:s, s:s?, s:[s, s], s:o}", "message",
			      text_upto(str(d, "subject"), 130), "alias", key, "description",
			      text_upto(str(d, "message"), 15000), "priority",
			      strcmp(sev, "critical") == 0 ? "P1" : strcmp(sev, "warning") == 0 ? "P3" : "P5",
			      "source", "certward", "entity",
			      json_is_object(c) ? json_string_value(json_object_get(c, "common_name")) : NULL, "tags",
			      "certward", str(d, "type"), "details", details));
}

void webhook_signature(const char *key, size_t key_len, long long timestamp, const char *body,
		       size_t body_len, char out[72])
{
	uint8_t mac[SHA256_DIGEST_LENGTH];
	unsigned mac_len = 0;
	char ts[32];
	HMAC_CTX h;

	snprintf(ts, sizeof ts, "%lld.", timestamp);
	HMAC_CTX_init(&h);
	if (!HMAC_Init_ex(&h, key, key_len, EVP_sha256(), NULL) ||
	    !HMAC_Update(&h, (const uint8_t *)ts, strlen(ts)) || !HMAC_Update(&h, (const uint8_t *)body, body_len) ||
	    !HMAC_Final(&h, mac, &mac_len))
		memset(mac, 0, sizeof mac);
	HMAC_CTX_cleanup(&h);
	memcpy(out, "sha256=", 7);
	hex_encode(mac, sizeof mac, out + 7);
}

/* ---- e-mail ------------------------------------------------------------- */

void mail_date(time_t when, char *out, size_t outlen)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&when, &tm);
	snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
		 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int mail_address_ok(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = strlen(addr);

	if (n < 3 || n > 320 || !at || at == addr || !at[1])
		return 0;
	for (const char *p = addr; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("<>\"(),;:\\[]", *p))
			return 0;
	return 1;
}

static int printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

char *mail_subject(const char *subject)
{
	struct strbuf b;
	size_t len = strlen(subject), i = 0;

	if (printable_ascii(subject) && len <= 900)
		return strdup(subject);
	/* words of at most 45 bytes of whole characters (60 base64 characters) */
	strbuf_init(&b, 16384);
	while (i < len) {
		size_t n = len - i > 45 ? 45 : len - i;
		uint8_t enc[64];
		size_t enc_len = 0;

		while (i + n < len && n > 1 && ((unsigned char)subject[i + n] & 0xC0) == 0x80)
			n--;
		if (!EVP_EncodedLength(&enc_len, n) || enc_len > sizeof enc)
			break;
		EVP_EncodeBlock(enc, (const uint8_t *)subject + i, n);
		strbuf_printf(&b, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", (const char *)enc);
		i += n;
	}
	if (b.truncated || !b.p) {
		strbuf_free(&b);
		return NULL;
	}
	return b.p;
}

char *qp_encode(const char *text, size_t len, size_t *outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t cap = len * 3 + len / 25 + 16, n = 0, col = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		int line_end = c == '\n' || (c == '\r' && i + 1 < len && text[i + 1] == '\n');
		int last_on_line = i + 1 == len || text[i + 1] == '\n' || text[i + 1] == '\r';
		int encode;
		size_t need;

		/* one step writes at most 6 bytes (a soft break, then "=XX"), and
		 * the end 1 more: room first, whatever the step */
		if (n + 8 > cap) {
			char *nb;

			cap *= 2;
			nb = realloc(out, cap);
			if (!nb) {
				free(out);
				return NULL;
			}
			out = nb;
		}
		if (line_end) {
			if (c == '\r')
				i++;
			out[n++] = '\r';
			out[n++] = '\n';
			col = 0;
			continue;
		}
		encode = c == '=' || c > 0x7e || (c < 0x20 && c != '\t') || ((c == ' ' || c == '\t') && last_on_line) ||
			 (c == '.' && col == 0);
		need = encode ? 3 : 1;
		if (col + need > 75) {
			out[n++] = '=';
			out[n++] = '\r';
			out[n++] = '\n';
			col = 0;
		}
		if (encode) {
			out[n++] = '=';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else {
			out[n++] = (char)c;
		}
		col += need;
	}
	out[n] = 0;
	*outlen = n;
	return out;
}

char *mail_build(const char *from, const char *to, const char *subject, const char *body, const char *id,
		 const char *nonce_hex, time_t when, size_t *len)
{
	char date[64], *subj, *qp;
	size_t qp_len = 0;
	struct strbuf b;

	if (!mail_address_ok(from) || !mail_address_ok(to) || strcspn(id, "<>@ \r\n") != strlen(id) ||
	    strcspn(nonce_hex, "<>@ \r\n") != strlen(nonce_hex))
		return NULL;
	subj = mail_subject(subject);
	qp = qp_encode(body, strlen(body), &qp_len);
	if (!subj || !qp) {
		free(subj);
		free(qp);
		return NULL;
	}
	mail_date(when, date, sizeof date);
	strbuf_init(&b, MAIL_MAX_BYTES);
	strbuf_printf(&b,
		      "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s.%s@%s>\r\n"
		      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
		      "Content-Transfer-Encoding: quoted-printable\r\nAuto-Submitted: auto-generated\r\n"
		      "X-Mailer: certward-notifier\r\n\r\n%s\r\n",
		      date, from, to, subj, id, nonce_hex, strrchr(from, '@') + 1, qp);
	free(subj);
	free(qp);
	if (b.truncated || !b.p) {
		strbuf_free(&b);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

char *smtp_dot_stuff(const char *msg, size_t len, size_t *outlen)
{
	size_t cap = len * 2 + 8, n = 0;
	char *out = malloc(cap);
	int bol = 1;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = msg[i];

		if (bol && c == '.')
			out[n++] = '.';
		if (c == '\n' && (i == 0 || msg[i - 1] != '\r'))
			out[n++] = '\r';
		out[n++] = c;
		bol = c == '\n';
	}
	if (!bol) {
		out[n++] = '\r';
		out[n++] = '\n';
	}
	memcpy(out + n, ".\r\n", 3);
	n += 3;
	out[n] = 0;
	*outlen = n;
	return out;
}

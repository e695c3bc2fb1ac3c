/* certward-notifier's formats and its SMTP reply parser. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "smtp.h"

static json_t *delivery(const char *type, const char *severity, int with_cert)
{
	json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:{s:s}}", "id", "notif-1", "type", type,
			      "severity", severity, "recipient", "ops@example.test", "subject", "Expiry ahead",
			      "message", "It expires.", "attempt", 1, "event_id", "nev-1", "details", "why", "test");

	if (with_cert)
		json_object_set_new(d, "certificate", json_pack("{s:s, s:s, s:s}", "id", "mc-api", "common_name",
								 "api.example.test", "team_id", "t-platform"));
	return d;
}

Test(smtp_reply, single_and_multiline)
{
	struct smtp_reply r;
	const char *one = "220 mail.example.test ESMTP ready\r\n";
	const char *multi = "250-mail.example.test\r\n250-STARTTLS\r\n250-AUTH LOGIN PLAIN\r\n250 SIZE 1000\r\nrest";

	cr_assert_eq(smtp_reply_parse(one, strlen(one), &r), (long)strlen(one));
	cr_assert_eq(r.code, 220);
	cr_assert_str_eq(r.text, "mail.example.test ESMTP ready");
	cr_assert_eq(smtp_reply_parse(multi, strlen(multi), &r), (long)strlen(multi) - 4);
	cr_assert_eq(r.lines, 4);
	cr_assert(smtp_ehlo_has(&r, "STARTTLS", NULL));
	cr_assert(smtp_ehlo_has(&r, "AUTH", "PLAIN"));
	cr_assert(smtp_ehlo_has(&r, "AUTH", "LOGIN"));
	cr_assert(!smtp_ehlo_has(&r, "AUTH", "CRAM-MD5"));
	cr_assert(!smtp_ehlo_has(&r, "8BITMIME", NULL));
	/* the greeting line is not a keyword */
	cr_assert(!smtp_ehlo_has(&r, "mail.example.test", NULL));
}

Test(smtp_reply, incomplete_and_malformed)
{
	struct smtp_reply r;
	char big[SMTP_REPLY_MAX_LINE + 10];

	cr_assert_eq(smtp_reply_parse("250-a\r\n250 b", 12, &r), 0);
	cr_assert_eq(smtp_reply_parse("250-a\r\n", 7, &r), 0);
	cr_assert_eq(smtp_reply_parse("250-a\r\n251 b\r\n", 14, &r), -1, "codes differ");
	cr_assert_eq(smtp_reply_parse("25x ok\r\n", 8, &r), -1);
	cr_assert_eq(smtp_reply_parse("650 ok\r\n", 8, &r), -1);
	cr_assert_eq(smtp_reply_parse("250xok\r\n", 8, &r), -1);
	cr_assert_eq(smtp_reply_parse("250\n", 4, &r), 4, "bare LF and a code alone");
	memset(big, 'a', sizeof big);
	memcpy(big, "250 ", 4);
	cr_assert_eq(smtp_reply_parse(big, sizeof big, &r), -1, "a line over the bound");
	/* control characters in the text are not kept */
	cr_assert_eq(smtp_reply_parse("550 a\x01" "b\r\n", 9, &r), 9);
	cr_assert_str_eq(r.text, "a?b");
}

Test(smtp_reply, too_many_lines)
{
	char buf[SMTP_REPLY_MAX_LINES * 8 + 16] = "";

	for (int i = 0; i <= SMTP_REPLY_MAX_LINES; i++)
		strcat(buf, "250-x\r\n");
	strcat(buf, "250 x\r\n");
	{
		struct smtp_reply r;

		cr_assert_eq(smtp_reply_parse(buf, strlen(buf), &r), -1);
	}
}

Test(mail, quoted_printable)
{
	size_t n;
	char long_line[200];
	char *qp = qp_encode("a=b\n.dot\nh\xc3\xa9 \n", 14, &n);

	cr_assert_str_eq(qp, "a=3Db\r\n=2Edot\r\nh=C3=A9=20\r\n");
	free(qp);
	memset(long_line, 'x', sizeof long_line);
	qp = qp_encode(long_line, sizeof long_line, &n);
	for (char *line = qp; *line;) {
		size_t len = strcspn(line, "\r");

		cr_assert_leq(len, 76);
		line += len + (line[len] ? 2 : 0);
	}
	free(qp);
}

/* text almost all encoded, then a run of line ends: the buffer grows in
 * time on every path (AddressSanitizer sees an overflow otherwise) */
Test(mail, quoted_printable_room)
{
	char text[410];
	size_t n;
	char *qp;

	memset(text, '=', 400);
	memset(text + 400, '\n', 10);
	qp = qp_encode(text, sizeof text, &n);
	cr_assert_not_null(qp);
	cr_assert_eq(n, strlen(qp));
	cr_assert(strstr(qp, "=3D=3D") != NULL);
	cr_assert_eq(n, 400 * 3 + 15 * 3 + 10 * 2);
	free(qp);
}

Test(mail, subject_encoding)
{
	char *s = mail_subject("Plain subject");

	cr_assert_str_eq(s, "Plain subject");
	free(s);
	s = mail_subject("Zertifikat l\xc3\xa4uft ab");
	cr_assert(strncmp(s, "=?UTF-8?B?", 10) == 0, "%s", s);
	free(s);
	/* a line break cannot start another header */
	s = mail_subject("x\r\nBcc: victim@example.test");
	cr_assert(strstr(s, "Bcc:") == NULL && strncmp(s, "=?UTF-8?B?", 10) == 0, "%s", s);
	free(s);
}

Test(mail, message)
{
	size_t len = 0;
	char *m = mail_build("certward@example.test", "ops@example.test", "Expiry", "Body\n", "notif-1", "00ff",
			     1700000000, &len);

	cr_assert_not_null(m);
	cr_assert(strstr(m, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"), "%s", m);
	cr_assert(strstr(m, "Message-ID: <notif-1.00ff@example.test>\r\n"));
	cr_assert(strstr(m, "Content-Type: text/plain; charset=UTF-8\r\n"));
	cr_assert(strstr(m, "\r\n\r\nBody\r\n"));
	free(m);
	cr_assert_null(mail_build("certward@example.test", "ops@example.test\r\nRCPT TO:<x@y>", "s", "b", "i", "n",
				  0, &len));
	cr_assert_null(mail_build("nobody", "ops@example.test", "s", "b", "i", "n", 0, &len));
}

Test(mail, dot_stuffing)
{
	size_t n;
	char *s = smtp_dot_stuff(".a\r\nb\n..c", 9, &n);

	cr_assert_str_eq(s, "..a\r\nb\r\n...c\r\n.\r\n");
	cr_assert_eq(n, strlen(s));
	free(s);
}

Test(webhook, signature)
{
	char sig[72];

	webhook_signature("key", 3, 1700000000, "{}", 2, sig);
	cr_assert_str_eq(sig, "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae");
}

Test(payloads, shapes)
{
	json_t *d = delivery("ExpirationWarning", "critical", 1), *v;
	char *s;

	s = payload_webhook(d);
	v = json_loads(s, 0, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(v, "event")), "ExpirationWarning");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v, "certificate"), "id")), "mc-api");
	json_decref(v);
	free(s);

	s = payload_pagerduty(d, "rk");
	v = json_loads(s, 0, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(v, "routing_key")), "rk");
	cr_assert_str_eq(json_string_value(json_object_get(v, "event_action")), "trigger");
	cr_assert_str_eq(json_string_value(json_object_get(v, "dedup_key")), "certward-mc-api");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v, "payload"), "severity")), "critical");
	json_decref(v);
	free(s);

	s = payload_opsgenie(d);
	v = json_loads(s, 0, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(v, "alias")), "certward-mc-api");
	cr_assert_str_eq(json_string_value(json_object_get(v, "priority")), "P1");
	json_decref(v);
	free(s);

	s = payload_slack(d);
	v = json_loads(s, 0, NULL);
	cr_assert(json_is_string(json_object_get(v, "text")) && json_array_size(json_object_get(v, "blocks")) == 3);
	json_decref(v);
	free(s);

	s = payload_teams(d);
	v = json_loads(s, 0, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(v, "@type")), "MessageCard");
	json_decref(v);
	free(s);
	json_decref(d);

	/* a renewal that worked resolves the certificate's alert; no certificate: a key per event */
	d = delivery("RenewalSuccess", "info", 1);
	s = payload_pagerduty(d, "rk");
	cr_assert(strstr(s, "\"event_action\":\"resolve\""), "%s", s);
	free(s);
	json_decref(d);
	d = delivery("AgentOffline", "warning", 0);
	s = payload_pagerduty(d, "rk");
	cr_assert(strstr(s, "\"dedup_key\":\"certward-AgentOffline-nev-1\""), "%s", s);
	free(s);
	json_decref(d);
}

Test(payloads, long_text_cut_at_characters)
{
	char subject[400] = "";
	json_t *d = delivery("ExpirationWarning", "info", 0), *v;
	char *s;

	for (int i = 0; i < 100; i++)
		strcat(subject, "\xc3\xa4");
	json_object_set_new(d, "subject", json_string(subject));
	s = payload_slack(d);
	cr_assert_not_null(s);
	v = json_loads(s, 0, NULL);
	cr_assert_leq(strlen(json_string_value(
			      json_object_get(json_object_get(json_array_get(json_object_get(v, "blocks"), 0), "text"),
					      "text"))),
		      150);
	json_decref(v);
	free(s);
	json_decref(d);
}

/* The CLI's table output, its fields as options, and its common options. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "https_client.h"
#include "fields.h"
#include "output.h"

/* ---- output ---- */

static char *escaped(const char *s)
{
	struct strbuf b;

	strbuf_init(&b, 4096);
	out_escape(&b, s, strlen(s));
	return b.p ? b.p : strdup("");
}

static void escapes_to(const char *in, const char *want)
{
	char *got = escaped(in);

	cr_expect_str_eq(got, want, "escape of %s", want);
	free(got);
}

Test(output, escapes_what_a_terminal_acts_on)
{
	escapes_to("plain text", "plain text");
	escapes_to("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
	escapes_to("a\tb\nc\rd\x07\x7f", "a\\tb\\nc\\rd\\x07\\x7f");
	/* C1 controls (CSI as U+009B), bidirectional overrides, line separators */
	escapes_to("\xc2\x9b" "2J", "\\u009b2J");
	escapes_to("\xe2\x80\xae" "exe", "\\u202eexe");
	escapes_to("\xe2\x80\xa8", "\\u2028");
	escapes_to("\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069");
	/* bytes that are not UTF-8: stray continuation, overlong, surrogate, cut short */
	escapes_to("\x80", "\\x80");
	escapes_to("\xc0\xaf", "\\xc0\\xaf");
	escapes_to("\xed\xa0\x80", "\\xed\\xa0\\x80");
	escapes_to("ab\xe2\x82", "ab\\xe2\\x82");
	/* printable UTF-8 stays */
	escapes_to("Zürich ✓ 東京", "Zürich ✓ 東京");
}

Test(output, escape_keeps_embedded_nul_out)
{
	struct strbuf b;

	strbuf_init(&b, 64);
	out_escape(&b, "a\0b", 3);
	cr_expect_str_eq(b.p, "a\\x00b");
	strbuf_free(&b);
}

Test(output, width_counts_characters)
{
	cr_expect_eq(out_width("abc"), 3);
	cr_expect_eq(out_width("Zürich"), 6);
	cr_expect_eq(out_width(""), 0);
}

Test(output, text_of_values)
{
	static const struct {
		const char *json;
		size_t max;
		const char *want;
	} cases[] = {
		{"\"x\\u001by\"", 0, "x\\x1by"},
		{"42", 0, "42"},
		{"-7", 0, "-7"},
		{"true", 0, "true"},
		{"null", 0, "-"},
		{"[30, 14, 7]", 0, "30, 14, 7"},
		{"[\"a\", \"b\\n\"]", 0, "a, b\\n"},
		{"[]", 0, ""},
		{"{\"k\":\"v\\u001b\"}", 0, "{\"k\":\"v\\u001B\"}"},
		{"[[1]]", 0, "[[1]]"},
		/* cut by characters */
		{"\"abcdefghij\"", 8, "abcde..."},
		{"\"üüüüüüüüüü\"", 8, "üüüüü..."},
		{"\"abcdefgh\"", 8, "abcdefgh"},
	};
	char *got;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);

		cr_assert_not_null(v, "%s", cases[i].json);
		got = out_text(v, cases[i].max);
		cr_expect_str_eq(got, cases[i].want, "text of %s", cases[i].json);
		free(got);
		json_decref(v);
	}
	got = out_text(NULL, 0);
	cr_expect_str_eq(got, "-");
	free(got);
}

/* What a function writes to a FILE, as a string. */
#define CAPTURE(out, call)                                   \
	do {                                                 \
		size_t len_;                                 \
		FILE *f_ = open_memstream(&(out), &len_);    \
		cr_assert_not_null(f_);                      \
		call;                                        \
		fclose(f_);                                  \
	} while (0)
#define F f_

Test(output, table_aligns_and_drops_absent_columns)
{
	static const char *const cols[] = {"id", "name", "email", "team_id"};
	json_t *rows = json_loads("[{\"id\":\"o-1\",\"name\":\"Ann\",\"team_id\":\"t-ops\"},"
				  "{\"id\":\"o-22\",\"name\":\"Zoë\",\"team_id\":null}]", 0, NULL);
	struct table t;
	size_t i;
	json_t *row;
	char *out;

	table_init(&t, cols, 4);
	json_array_foreach(rows, i, row) cr_assert_eq(table_add(&t, row), 0);
	CAPTURE(out, table_print(&t, F));
	cr_expect_str_eq(out, "ID    NAME  TEAM_ID\n"
			      "o-1   Ann   t-ops\n"
			      "o-22  Zoë   -\n");
	free(out);
	table_free(&t);
	json_decref(rows);
}

Test(output, table_without_rows_prints_nothing)
{
	static const char *const cols[] = {"id"};
	struct table t;
	char *out;

	table_init(&t, cols, 1);
	CAPTURE(out, table_print(&t, F));
	cr_expect_str_eq(out, "");
	free(out);
	table_free(&t);
}

Test(output, table_escapes_and_cuts_cells_but_not_ids)
{
	static const char *const cols[] = {"id", "description"};
	char long_id[101], desc[200];
	json_t *row;
	struct table t;
	char *out, *line2;

	memset(long_id, 'i', 100);
	long_id[100] = '\0';
	memset(desc, 'd', 199);
	desc[199] = '\0';
	row = json_pack("{s:s, s:s}", "id", long_id, "description", desc);
	table_init(&t, cols, 2);
	cr_assert_eq(table_add(&t, row), 0);
	json_decref(row);
	row = json_pack("{s:s, s:s}", "id", "t-1", "description", "\x1b]0;owned\x07\nsecond");
	cr_assert_eq(table_add(&t, row), 0);
	json_decref(row);
	CAPTURE(out, table_print(&t, F));
	cr_expect(strstr(out, long_id) != NULL, "the id was cut");
	cr_expect(strstr(out, "ddd...\n") != NULL, "the description was not cut: %s", out);
	line2 = strstr(out, "t-1");
	cr_assert_not_null(line2);
	cr_expect_str_eq(strchr(line2, '\\'), "\\x1b]0;owned\\x07\\nsecond\n");
	for (char *p = out; *p; p++)
		cr_expect(*p == '\n' || (unsigned char)*p >= 0x20, "a control byte %#x", *p);
	free(out);
	table_free(&t);
}

Test(output, fields_are_aligned_lines)
{
	json_t *obj = json_loads("{\"id\":\"t-1\",\"name\":\"platform\",\"description\":\"a\\u001bb\","
				 "\"alert_thresholds_days\":[30,7],\"bad\\u0007key\":1}", 0, NULL);
	char *out;

	CAPTURE(out, out_fields(obj, F));
	cr_expect_str_eq(out, "id:                    t-1\n"
			      "name:                  platform\n"
			      "description:           a\\x1bb\n"
			      "alert_thresholds_days: 30, 7\n"
			      "bad\\x07key:            1\n");
	free(out);
	json_decref(obj);
}

/* ---- fields ---- */

static const struct field_def cert_fields[] = {
	{.name = "id", .type = FT_ID, .flags = FIELD_SORT, .max = 128},
	{.name = "name", .type = FT_STRING, .flags = FIELD_REQUIRED | FIELD_FILTER | FIELD_SORT, .min = 1, .max = 255},
	{.name = "sans", .type = FT_STRINGS, .format = FF_SAN, .max = 253},
	{.name = "tags", .type = FT_MAP},
	{.name = "team_id", .type = FT_REF, .flags = FIELD_FILTER, .max = 128},
	{.name = "max_ttl_seconds", .type = FT_INT, .min = 60, .max = 86400},
	{.name = "enabled", .type = FT_BOOL, .flags = FIELD_FILTER},
	{.name = "thresholds", .type = FT_INTS, .max = 365},
	{.name = "expires_at", .type = FT_TIMESTAMP, .flags = FIELD_SERVER | FIELD_SORT},
	{.name = "config", .type = FT_OBJECT},
	{.name = "target_ids", .type = FT_REFS, .max = 128},
	{.name = "allowed_ekus", .type = FT_ENUMS, .values = "serverAuth|clientAuth"},
	{.name = "allowed_key_algorithms", .type = FT_KEY_RULES},
	{.name = "status", .type = FT_ENUM, .flags = FIELD_FILTER, .values = "Active|Revoked"},
	{.name = "parent_id", .type = FT_REF, .flags = FIELD_FILTER | FIELD_HIDDEN},
};
static const struct resource_def certs = {.name = "certificates", .path = "/api/v1/certificates",
					  .fields = cert_fields, .verbs = VERB_LIST | VERB_CREATE,
					  .nfields = sizeof cert_fields / sizeof cert_fields[0]};

static json_t *body;
static char err[256];

static void fresh(void)
{
	body = json_object();
	err[0] = '\0';
}

static void done(void)
{
	json_decref(body);
}

TestSuite(fields, .init = fresh, .fini = done);

static enum field_opt set(const struct resource_def *r, bool create, const char *opt, const char *value)
{
	return fields_set(r, create, body, opt, value, err, sizeof err);
}

static void body_is(const char *want)
{
	char *got = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);

	cr_expect_str_eq(got, want);
	free(got);
}

Test(fields, typed_from_the_resource)
{
	cr_expect_eq(set(&certs, true, "name", "web"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "team-id", "t-1"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "max-ttl-seconds", "3600"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "enabled", "false"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "id", "mc-web"), FIELD_OPT_SET);
	body_is("{\"enabled\":false,\"id\":\"mc-web\",\"max_ttl_seconds\":3600,\"name\":\"web\","
		"\"team_id\":\"t-1\"}");
}

Test(fields, arrays_repeat_and_take_the_singular)
{
	cr_expect_eq(set(&certs, true, "sans", "a.example.com"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "san", "*.example.com"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "thresholds", "30,14"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "threshold", "7"), FIELD_OPT_SET);
	body_is("{\"sans\":[\"a.example.com\",\"*.example.com\"],\"thresholds\":[30,14,7]}");
}

Test(fields, maps_take_key_value_or_json)
{
	cr_expect_eq(set(&certs, true, "tag", "env=prod"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "tags", "owner=a=b"), FIELD_OPT_SET);
	body_is("{\"tags\":{\"env\":\"prod\",\"owner\":\"a=b\"}}");
	cr_expect_eq(set(&certs, true, "tag", "env=dev"), FIELD_OPT_BAD);
	cr_expect(strstr(err, "twice") != NULL, "%s", err);
	cr_expect_eq(set(&certs, true, "tag", "novalue"), FIELD_OPT_BAD);
	cr_expect_eq(set(&certs, true, "tag", "=v"), FIELD_OPT_BAD);
	done();
	fresh();
	cr_expect_eq(set(&certs, true, "tags", "{\"a\":\"1\"}"), FIELD_OPT_SET);
	body_is("{\"tags\":{\"a\":\"1\"}}");
	cr_expect_eq(set(&certs, true, "tags", "{\"a\":"), FIELD_OPT_BAD);
}

Test(fields, lists_of_ids_enums_and_key_rules)
{
	cr_expect_eq(set(&certs, true, "target-id", "tg-1,tg-2"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "target-ids", "tg-3"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "allowed-eku", "serverAuth"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "allowed-key-algorithm", "RSA:2048"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "allowed-key-algorithms", "Ed25519"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "status", "Active"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "config", "{\"url\":\"https://ca\",\"n\":1}"), FIELD_OPT_SET);
	body_is("{\"allowed_ekus\":[\"serverAuth\"],\"allowed_key_algorithms\":[{\"algorithm\":\"RSA\","
		"\"min_size\":2048},{\"algorithm\":\"Ed25519\"}],\"config\":{\"n\":1,\"url\":\"https://ca\"},"
		"\"status\":\"Active\",\"target_ids\":[\"tg-1\",\"tg-2\",\"tg-3\"]}");
	cr_expect_eq(set(&certs, true, "allowed-key-algorithm", "RSA:big"), FIELD_OPT_BAD);
	cr_expect_eq(set(&certs, true, "allowed-key-algorithm", ":2048"), FIELD_OPT_BAD);
	cr_expect_eq(set(&certs, true, "target-id", "tg-4,"), FIELD_OPT_BAD);
	cr_expect_eq(set(&certs, true, "sans", "[\"a\",\"b\"]"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "parent-id", "p"), FIELD_OPT_UNKNOWN, "a hidden field");
}

Test(fields, refusals)
{
	static const struct {
		bool create;
		const char *opt, *value, *why;
	} bad[] = {
		{true, "max-ttl-seconds", "1h", "integer"},
		{true, "max-ttl-seconds", "", "integer"},
		{true, "max-ttl-seconds", "99999999999999999999", "integer"},
		{true, "enabled", "yes", "true or false"},
		{true, "thresholds", "30,,7", "integers"},
		{true, "thresholds", "30,", "integers"},
		{true, "expires-at", "2030-01-01T00:00:00Z", "set by the server"},
		{false, "id", "t-2", "argument"},
		{true, "name", "\xff", "UTF-8"},
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		cr_expect_eq(set(&certs, bad[i].create, bad[i].opt, bad[i].value), FIELD_OPT_BAD, "--%s %s",
			     bad[i].opt, bad[i].value);
		cr_expect(strstr(err, bad[i].why) != NULL, "--%s %s: %s", bad[i].opt, bad[i].value, err);
	}
	cr_expect_eq(set(&certs, true, "name", "a"), FIELD_OPT_SET);
	cr_expect_eq(set(&certs, true, "name", "b"), FIELD_OPT_BAD);
	cr_expect(strstr(err, "twice") != NULL, "%s", err);
}

Test(fields, unknown_options)
{
	const char *const unknown[] = {"colour", "team_id", "Name", "-name", "name-", "", "nam"};

	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
		cr_expect_eq(set(&certs, true, unknown[i], "x"), FIELD_OPT_UNKNOWN, "--%s", unknown[i]);
	/* the singular only of arrays and maps */
	cr_expect_eq(set(&certs, true, "enable", "true"), FIELD_OPT_UNKNOWN);
}

Test(fields, untyped_without_the_catalogue)
{
	cr_expect_eq(set(NULL, true, "common-name", "x.example.com"), FIELD_OPT_SET);
	cr_expect_eq(set(NULL, true, "sans", "a"), FIELD_OPT_SET);
	cr_expect_eq(set(NULL, true, "sans", "b"), FIELD_OPT_SET);
	cr_expect_eq(set(NULL, true, "sans", "c"), FIELD_OPT_SET);
	cr_expect_eq(set(NULL, true, "Bad_Name", "c"), FIELD_OPT_UNKNOWN);
	body_is("{\"common_name\":\"x.example.com\",\"sans\":[\"a\",\"b\",\"c\"]}");
}

Test(fields, the_real_catalogue_types_renewal_policies)
{
	const struct resource_def *rp = resource_by_path("/api/v1/renewal-policies");

	cr_assert_not_null(rp);
	cr_expect_eq(set(rp, true, "max-retries", "3"), FIELD_OPT_SET);
	cr_expect_eq(set(rp, true, "auto-renew", "true"), FIELD_OPT_SET);
	cr_expect_eq(set(rp, true, "alert-thresholds-days", "30,7"), FIELD_OPT_SET);
	body_is("{\"alert_thresholds_days\":[30,7],\"auto_renew\":true,\"max_retries\":3}");
}

Test(fields, filters_and_sort_keys)
{
	struct strbuf q;

	strbuf_init(&q, FIELDS_QUERY_MAX);
	cr_expect_eq(fields_filter(&certs, &q, "name", "a b&c=d/é"), FIELD_OPT_SET);
	cr_expect_eq(fields_filter(&certs, &q, "team-id", "t-1"), FIELD_OPT_SET);
	cr_expect_eq(fields_filter(&certs, &q, "max-ttl-seconds", "1"), FIELD_OPT_UNKNOWN);
	cr_expect_eq(fields_filter(&certs, &q, "colour", "1"), FIELD_OPT_UNKNOWN);
	cr_expect_eq(fields_filter(&certs, &q, "parent-id", "1"), FIELD_OPT_UNKNOWN);
	cr_expect_str_eq(q.p, "&name=a%20b%26c%3Dd%2F%C3%A9&team_id=t-1");
	cr_expect_eq(fields_filter(NULL, &q, "status", "Active"), FIELD_OPT_SET);
	cr_expect(strstr(q.p, "&status=Active") != NULL);
	strbuf_free(&q);
	cr_expect(fields_sort_ok(&certs, "name"));
	cr_expect(fields_sort_ok(&certs, "expires_at"));
	cr_expect(!fields_sort_ok(&certs, "team_id"));
	cr_expect(!fields_sort_ok(&certs, "colour"));
	cr_expect(fields_sort_ok(NULL, "anything"));
	cr_expect(!fields_sort_ok(NULL, ""));
}

Test(fields, usage_names_the_options)
{
	char *out;

	CAPTURE(out, fields_usage(&certs, F));
	cr_expect(strstr(out, "--max-ttl-seconds N") != NULL, "%s", out);
	cr_expect(strstr(out, "--tags KEY=VALUE") != NULL, "%s", out);
	cr_expect(strstr(out, "one of serverAuth|clientAuth") != NULL, "%s", out);
	cr_expect(strstr(out, "parent") == NULL, "a hidden field offered: %s", out);
	cr_expect(strstr(out, "--expires-at") == NULL, "a server field offered: %s", out);
	cr_expect(strstr(out, "filters (list): --name --team-id --enabled --status\n") != NULL, "%s", out);
	free(out);
}

/* ---- common options ---- */

Test(options, names_and_values)
{
	char name[64];
	char *argv[] = {"certward", "--page", "2", "--per-page=5", "--sort", NULL};
	int i = 1;
	const char *v;

	cr_expect_eq(cli_option_name("--page", name), 0);
	cr_expect_str_eq(name, "page");
	cr_expect_eq(cli_option_value(5, argv, &i, &v), 0);
	cr_expect_str_eq(v, "2");
	cr_expect_eq(i, 2);
	i = 3;
	cr_expect_eq(cli_option_name(argv[3], name), 0);
	cr_expect_str_eq(name, "per-page");
	cr_expect_eq(cli_option_value(5, argv, &i, &v), 0);
	cr_expect_str_eq(v, "5");
	cr_expect_eq(i, 3);
	i = 4;
	cr_expect_eq(cli_option_value(5, argv, &i, &v), EXIT_USAGE, "a missing value");
	cr_expect_eq(cli_option_name("-p", name), EXIT_USAGE);
	cr_expect_eq(cli_option_name("--", name), EXIT_USAGE);
	cr_expect_eq(cli_option_name("--=x", name), EXIT_USAGE);
}

Test(options, common_ones)
{
	struct cli_common c;
	int rc;

	cli_common_init(&c);
	cr_expect_eq(c.format, FMT_TABLE);
	cr_expect(cli_common_option(&c, "format", "json", &rc) && rc == 0 && c.format == FMT_JSON);
	cr_expect(cli_common_option(&c, "format", "yaml", &rc) && rc == EXIT_USAGE);
	cr_expect(cli_common_option(&c, "timeout", "5", &rc) && rc == 0 && c.http.timeout_s == 5);
	cr_expect(cli_common_option(&c, "timeout", "0", &rc) && rc == EXIT_USAGE);
	cr_expect(cli_common_option(&c, "timeout", "5s", &rc) && rc == EXIT_USAGE);
	cr_expect(cli_common_option(&c, "server", "https://x", &rc) && rc == 0);
	cr_expect_str_eq(c.http.url, "https://x");
	cr_expect(!cli_common_option(&c, "page", "1", &rc));
}

/* ---- the line of an error answer ---- */

/* What cli_answer_error writes to stderr for an answer. */
static char *answer_line(int status, const char *text)
{
	struct http_response r = {.status = status, .body = (char *)text, .body_len = strlen(text)};
	FILE *tmp = tmpfile();
	int saved = dup(2);
	char *line = calloc(1, 1024);

	cr_assert(tmp && saved >= 0 && line);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	cr_expect_eq(cli_answer_error(&r), EXIT_ANSWER);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	cr_assert_not_null(fgets(line, 1024, tmp) ? line : NULL, "nothing on stderr for %s", text);
	cr_expect_null(fgets(line + strlen(line), 16, tmp), "more than one line for %s", text);
	fclose(tmp);
	return line;
}

Test(answer, one_line)
{
	static const struct {
		int status;
		const char *text, *want;
	} cases[] = {
		/* problem+json with a field */
		{409, "{\"title\":\"Conflict\",\"status\":409,\"detail\":\"a record with this name exists\","
		      "\"field\":\"name\"}",
		 "certward: 409 Conflict: a record with this name exists (field name)\n"},
		/* a detail that says no more than the title */
		{404, "{\"title\":\"Not Found\",\"detail\":\"Not Found\"}", "certward: 404 Not Found\n"},
		/* the reference's shape, with the counts of a blocked retire */
		{409, "{\"error\":\"blocked_by_dependencies\",\"message\":\"blocked\","
		      "\"counts\":{\"active_targets\":1,\"pending_jobs\":2}}",
		 "certward: 409 Conflict: blocked (active_targets 1, pending_jobs 2)\n"},
		/* not JSON */
		{502, "<html>bad gateway</html>", "certward: 502 Bad Gateway\n"},
		/* hostile text stays one line */
		{400, "{\"title\":\"Bad\\u001b[2J\",\"detail\":\"x\\ny\\u202e\",\"field\":\"\\u0007\"}",
		 "certward: 400 Bad\\x1b[2J: x\\ny\\u202e (field \\x07)\n"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *line = answer_line(cases[i].status, cases[i].text);

		cr_expect_str_eq(line, cases[i].want, "%s", cases[i].text);
		free(line);
	}
}

Test(https_client, headers_of_a_response)
{
	static const char raw[] = "HTTP/1.1 201 Created\r\n"
				  "Replay-Nonce: abc_DEF-123\r\n"
				  "Link: <https://ca.example/dir>;rel=\"index\"\r\n"
				  "link:   <https://ca.example/alt/1>;rel=\"alternate\"  \r\n"
				  "Content-Type: application/json\r\n"
				  "Content-Length: 2\r\n\r\n{}";
	struct http_response r;
	char why[200], v[200];

	cr_assert_eq(http_parse_response(raw, sizeof raw - 1, 1, 0, &r, why, sizeof why), 1, "%s", why);
	cr_assert_eq(r.status, 201);
	cr_assert_eq(http_header(&r, "replay-nonce", 0, v, sizeof v), 0);
	cr_assert_str_eq(v, "abc_DEF-123");
	cr_assert_eq(http_header(&r, "Link", 0, v, sizeof v), 0);
	cr_assert_str_eq(v, "<https://ca.example/dir>;rel=\"index\"");
	cr_assert_eq(http_header(&r, "LINK", 1, v, sizeof v), 0);
	cr_assert_str_eq(v, "<https://ca.example/alt/1>;rel=\"alternate\"");
	cr_assert_eq(http_header(&r, "Link", 2, v, sizeof v), -1);
	cr_assert_eq(http_header(&r, "Location", 0, v, sizeof v), -1);
	/* a prefix of a name is not the name; a value that does not fit is not cut */
	cr_assert_eq(http_header(&r, "Replay", 0, v, sizeof v), -1);
	cr_assert_eq(http_header(&r, "Replay-Nonce", 0, v, 5), -1);
	cr_assert_null(strstr(r.head, "{}"), "the body is not part of the head");
	http_response_free(&r);
}

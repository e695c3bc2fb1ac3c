/* lib/dns: TXT queries built, and hand-built responses parsed strictly. */
#include <criterion/criterion.h>
#include <string.h>

#include "dns.h"

#define ID 0x1234

/* A response under construction. */
struct msg {
	uint8_t b[DNS_RESPONSE_MAX + 64];
	size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
	cr_assert(m->n + n <= sizeof m->b);
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void put16(struct msg *m, unsigned v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(m, x, 2);
}

static void put_name(struct msg *m, const char *name)
{
	while (*name) {
		size_t l = strcspn(name, ".");
		uint8_t len = (uint8_t)l;

		put(m, &len, 1);
		put(m, name, l);
		name += l + (name[l] == '.');
	}
	put(m, "", 1);
}

static void put_ptr(struct msg *m, unsigned off)
{
	put16(m, 0xC000 | off);
}

/* header + the question for name (TXT IN); returns the question name's offset */
static size_t start(struct msg *m, unsigned flags, unsigned ancount, const char *name)
{
	m->n = 0;
	put16(m, ID);
	put16(m, flags);
	put16(m, 1);
	put16(m, ancount);
	put16(m, 0);
	put16(m, 0);
	put_name(m, name);
	put16(m, 16);
	put16(m, 1);
	return 12;
}

static void rr_head(struct msg *m, unsigned type, unsigned rdlen)
{
	put16(m, type);
	put16(m, 1);
	put16(m, 0);
	put16(m, 60);
	put16(m, rdlen);
}

/* a TXT record owned by the name at offset owner, of the given strings */
static void txt(struct msg *m, unsigned owner, const char *const *strings, size_t n)
{
	size_t rdlen = 0;

	for (size_t i = 0; i < n; i++)
		rdlen += 1 + strlen(strings[i]);
	put_ptr(m, owner);
	rr_head(m, 16, (unsigned)rdlen);
	for (size_t i = 0; i < n; i++) {
		uint8_t l = (uint8_t)strlen(strings[i]);

		put(m, &l, 1);
		put(m, strings[i], l);
	}
}

static int parse(const struct msg *m, const char *name, struct dns_txt_result *r, char *err)
{
	return dns_parse_txt_response(m->b, m->n, ID, name, r, err, 256);
}

Test(dns, query_layout)
{
	uint8_t q[DNS_QUERY_MAX];
	static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 15, '_', 'a', 'c', 'm', 'e', '-',
				       'c', 'h', 'a', 'l', 'l', 'e', 'n', 'g', 'e', 1, 'x', 0, 0, 16, 0, 1};
	int n = dns_build_txt_query(q, sizeof q, ID, "_ACME-challenge.X.");

	cr_assert_eq(n, (int)sizeof want);
	cr_assert_arr_eq(q, want, sizeof want);
	cr_assert_eq(dns_build_txt_query(q, sizeof q, ID, "a..b"), -1);
	cr_assert_eq(dns_build_txt_query(q, sizeof q, ID, ""), -1);
	cr_assert_eq(dns_build_txt_query(q, sizeof q, ID, "a b.c"), -1);
	cr_assert_eq(dns_build_txt_query(q, 20, ID, "example.com"), -1);
}

Test(dns, name_bounds)
{
	char label[70], name[300];

	memset(label, 'a', 63);
	label[63] = '\0';
	cr_assert(dns_name_valid(label));
	label[63] = 'a';
	label[64] = '\0';
	cr_assert_not(dns_name_valid(label));
	/* 253 characters: valid; 254: not */
	memset(name, 'a', 253);
	for (int i = 63; i < 253; i += 64)
		name[i] = '.';
	name[253] = '\0';
	cr_assert(dns_name_valid(name));
	name[253] = '.';
	name[254] = '\0';
	cr_assert(dns_name_valid(name)); /* the final dot does not count */
	name[254] = 'a';
	name[255] = '\0';
	cr_assert_not(dns_name_valid(name));
}

Test(dns, multiple_strings_and_records_with_compression)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];
	const char *one[] = {"abc", "def"}, *two[] = {"second"};
	size_t q = start(&m, 0x8180, 3, "_acme-challenge.example.com");

	txt(&m, (unsigned)q, one, 2);
	txt(&m, (unsigned)q, two, 1);
	/* a record of another name (example.com, inside the question) is ignored */
	txt(&m, (unsigned)q + 16, two, 1);
	cr_assert_eq(parse(&m, "_ACME-Challenge.Example.COM.", &r, err), 0, "%s", err);
	cr_assert_eq(r.rcode, DNS_RCODE_NOERROR);
	cr_assert_eq(r.count, 2);
	cr_assert_str_eq(r.records[0], "abcdef");
	cr_assert_str_eq(r.records[1], "second");
	dns_txt_result_free(&r);
}

Test(dns, cname_followed_within_the_response)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];
	const char *v[] = {"delegated"};
	size_t q = start(&m, 0x8180, 2, "_acme-challenge.example.com"), target;

	put_ptr(&m, (unsigned)q);
	rr_head(&m, 5, 18);
	target = m.n;
	put_name(&m, "x.validation.net"); /* 1+1 + 1+10 + 1+3 + 1 = 18 */
	txt(&m, (unsigned)target, v, 1);
	cr_assert_eq(parse(&m, "_acme-challenge.example.com", &r, err), 0, "%s", err);
	cr_assert_eq(r.count, 1);
	cr_assert_str_eq(r.records[0], "delegated");
	dns_txt_result_free(&r);
}

Test(dns, cname_loop_refused)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];
	size_t q = start(&m, 0x8180, 2, "a.example"), b;

	put_ptr(&m, (unsigned)q);
	rr_head(&m, 5, 11);
	b = m.n;
	put_name(&m, "b.example"); /* 1+1 + 1+7 + 1 = 11 */
	put_ptr(&m, (unsigned)b);
	rr_head(&m, 5, 2);
	put_ptr(&m, (unsigned)q);
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	cr_assert(strstr(err, "loop"), "%s", err);
}

Test(dns, nxdomain_is_an_empty_answer)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];

	start(&m, 0x8183, 0, "_acme-challenge.nowhere.example");
	cr_assert_eq(parse(&m, "_acme-challenge.nowhere.example", &r, err), 0, "%s", err);
	cr_assert_eq(r.rcode, DNS_RCODE_NXDOMAIN);
	cr_assert_eq(r.count, 0);
}

Test(dns, servfail_and_refused_are_errors)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];

	start(&m, 0x8182, 0, "a.example");
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	cr_assert(strstr(err, "SERVFAIL"), "%s", err);
	start(&m, 0x8185, 0, "a.example");
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	cr_assert(strstr(err, "REFUSED"), "%s", err);
}

Test(dns, wrong_id_or_question_refused)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];

	start(&m, 0x8180, 0, "a.example");
	cr_assert_eq(dns_parse_txt_response(m.b, m.n, ID + 1, "a.example", &r, err, sizeof err), -1);
	cr_assert(strstr(err, "id"), "%s", err);
	cr_assert_eq(parse(&m, "b.example", &r, err), -1);
	cr_assert(strstr(err, "another question"), "%s", err);
	/* a query (QR=0) is not an answer */
	start(&m, 0x0100, 0, "a.example");
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	/* an answer for type A */
	start(&m, 0x8180, 0, "a.example");
	m.b[m.n - 3] = 1;
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
}

Test(dns, truncated_answers)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];
	const char *v[] = {"value"};
	size_t q;

	start(&m, 0x8380, 0, "a.example"); /* TC=1 */
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	cr_assert(strstr(err, "truncated"), "%s", err);
	/* cut short anywhere: never accepted, never read past the end */
	q = start(&m, 0x8180, 1, "a.example");
	txt(&m, (unsigned)q, v, 1);
	for (size_t n = 0; n < m.n; n++) {
		cr_assert_eq(dns_parse_txt_response(m.b, n, ID, "a.example", &r, err, sizeof err), -1, "length %zu", n);
	}
	cr_assert_eq(parse(&m, "a.example", &r, err), 0, "%s", err);
	dns_txt_result_free(&r);
}

Test(dns, txt_string_past_its_record)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];
	size_t q = start(&m, 0x8180, 1, "a.example");

	put_ptr(&m, (unsigned)q);
	rr_head(&m, 16, 3);
	put(&m, "\x05" "ab", 3);
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	cr_assert(strstr(err, "TXT string"), "%s", err);
}

Test(dns, pointer_loops_and_forward_pointers_refused)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];

	/* the question's name is a pointer to itself */
	start(&m, 0x8180, 0, "a.example");
	m.n = 12;
	put_ptr(&m, 12);
	put16(&m, 16);
	put16(&m, 1);
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	cr_assert(strstr(err, "loop"), "%s", err);
	/* an answer's owner points forwards, at itself */
	start(&m, 0x8180, 1, "a.example");
	put_ptr(&m, (unsigned)m.n);
	rr_head(&m, 16, 2);
	put(&m, "\x01x", 2);
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	/* two pointers pointing at each other */
	start(&m, 0x8180, 1, "a.example");
	{
		size_t p1 = m.n;

		put_ptr(&m, (unsigned)p1 + 2);
		put_ptr(&m, (unsigned)p1);
	}
	rr_head(&m, 16, 2);
	put(&m, "\x01x", 2);
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	/* a label type 0x40 */
	start(&m, 0x8180, 0, "a.example");
	m.b[12] = 0x41;
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
}

Test(dns, oversize_refused)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];
	const char *big[] = {"x"};
	size_t q = start(&m, 0x8180, 1, "a.example");

	txt(&m, (unsigned)q, big, 1);
	memset(m.b + m.n, 0, DNS_RESPONSE_MAX + 1 - m.n);
	cr_assert_eq(dns_parse_txt_response(m.b, DNS_RESPONSE_MAX + 1, ID, "a.example", &r, err, sizeof err), -1);
	cr_assert(strstr(err, "larger"), "%s", err);
	/* trailing bytes within the bound are allowed (authority, additional) */
	cr_assert_eq(dns_parse_txt_response(m.b, DNS_RESPONSE_MAX, ID, "a.example", &r, err, sizeof err), 0, "%s", err);
	dns_txt_result_free(&r);
}

Test(dns, too_many_records_refused)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];
	const char *v[] = {"v"};
	size_t q = start(&m, 0x8180, DNS_TXT_RECORDS_MAX + 1, "a.example");

	for (int i = 0; i <= DNS_TXT_RECORDS_MAX; i++)
		txt(&m, (unsigned)q, v, 1);
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	cr_assert(strstr(err, "more than"), "%s", err);
}

Test(dns, name_longer_than_255_bytes_refused)
{
	struct msg m;
	struct dns_txt_result r;
	char err[256];
	size_t q = start(&m, 0x8180, 2, "a.example"), prev;

	/* a record of another type whose data is a chain of 5 labels of 63
	 * bytes, each pointing back at the one before; then a TXT record
	 * owned by the last: a name of 5 * 64 + 11 bytes */
	put_ptr(&m, (unsigned)q);
	rr_head(&m, 99, 5 * 66);
	prev = q;
	for (int i = 0; i < 5; i++) {
		size_t here = m.n;
		uint8_t l = 63;
		char lab[63];

		memset(lab, 'z', sizeof lab);
		put(&m, &l, 1);
		put(&m, lab, 63);
		put_ptr(&m, (unsigned)prev);
		prev = here;
	}
	put_ptr(&m, (unsigned)prev);
	rr_head(&m, 16, 2);
	put(&m, "\x01x", 2);
	cr_assert_eq(parse(&m, "a.example", &r, err), -1);
	cr_assert(strstr(err, "255"), "%s", err);
}

Test(dns, query_helper_refuses_bad_servers)
{
	struct dns_txt_result r;
	char err[256];

	cr_assert_eq(dns_txt_query("localhost:53", "a.example", 100, &r, err, sizeof err), -1);
	cr_assert_eq(dns_txt_query("127.0.0.1", "a.example", 100, &r, err, sizeof err), -1);
	cr_assert_eq(dns_txt_query("127.0.0.1:0", "a.example", 100, &r, err, sizeof err), -1);
	cr_assert_eq(dns_txt_query("::1:53", "a.example", 100, &r, err, sizeof err), -1);
	cr_assert_eq(dns_txt_query("127.0.0.1:53", "bad name", 100, &r, err, sizeof err), -1);
}

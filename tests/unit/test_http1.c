#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define MAX_SEEN 32

struct seen {
	struct http1_exchange *ex;
	char method[16], target[512], path[512], query[512], host[64];
	char *body;
	size_t body_len, n_headers;
	bool keep_alive;
	uint64_t seq;
	unsigned short minor;
};

struct harness {
	struct http1_conn *c;
	bool answer_now;
	size_t n, abandoned;
	struct seen r[MAX_SEEN];
	char *out;
	size_t out_len;
};

static void copy(char *dst, size_t size, const char *src)
{
	cr_assert(strlen(src) < size, "test buffer too small for %s", src);
	strcpy(dst, src);
}

static void answer(struct http1_exchange *ex, const char *text)
{
	static const struct http1_header type = {"Content-Type", "text/plain"};

	cr_assert_eq(http1_respond(ex, 200, &type, 1, text, strlen(text)), 0);
}

static void on_request(struct http1_conn *c, struct http1_exchange *ex,
		       const struct http1_request *req, void *ud)
{
	struct harness *h = ud;
	struct seen *s;
	const char *host = http1_header_get(req, "HOST");

	cr_assert_lt(h->n, MAX_SEEN);
	s = &h->r[h->n++];
	s->ex = ex;
	copy(s->method, sizeof s->method, req->method);
	copy(s->target, sizeof s->target, req->target);
	copy(s->path, sizeof s->path, req->path);
	copy(s->query, sizeof s->query, req->query);
	copy(s->host, sizeof s->host, host ? host : "");
	s->body_len = req->body_len;
	s->body = malloc(req->body_len + 1);
	cr_assert(s->body);
	if (req->body_len)
		memcpy(s->body, req->body, req->body_len);
	else
		cr_assert_null(req->body);
	s->body[req->body_len] = '\0';
	s->n_headers = req->n_headers;
	s->keep_alive = req->keep_alive;
	s->seq = req->seq;
	s->minor = req->http_minor;
	cr_assert_eq(http1_exchange_conn(ex), c);
	cr_assert_eq(http1_exchange_request(ex), req);
	if (h->answer_now)
		answer(ex, req->path);
}

static void on_abandon(struct http1_conn *c, struct http1_exchange *ex, void *ud)
{
	struct harness *h = ud;

	h->abandoned++;
}

static struct harness *harness_new(const struct http1_limits *limits, bool answer_now)
{
	static const struct http1_handler handler = {on_request, on_abandon};
	struct harness *h = calloc(1, sizeof *h);

	cr_assert(h);
	h->answer_now = answer_now;
	h->c = http1_conn_new(limits, &handler, h);
	cr_assert(h->c);
	h->out = calloc(1, 1);
	return h;
}

static void harness_free(struct harness *h)
{
	http1_conn_free(h->c);
	for (size_t i = 0; i < h->n; i++)
		free(h->r[i].body);
	free(h->out);
	free(h);
}

/* Feeds all of s; a status stops it. */
static int feed(struct harness *h, const char *s)
{
	size_t len = strlen(s), used;
	int st = http1_feed(h->c, s, len, &used);

	if (st == 0)
		cr_assert_eq(used, len, "consumed %zu of %zu", used, len);
	return st;
}

static int feed_bytewise(struct harness *h, const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		size_t used;
		int st = http1_feed(h->c, s + i, 1, &used);

		if (st)
			return st;
		cr_assert_eq(used, 1);
	}
	return 0;
}

/* Everything sent so far, accumulated. */
static const char *drain(struct harness *h)
{
	const uint8_t *p;
	size_t len;

	while (http1_output(h->c, &p, &len)) {
		/* a short write first: the rest must stay in place */
		size_t part = len > 3 ? len / 2 : len;

		h->out = realloc(h->out, h->out_len + part + 1);
		cr_assert(h->out);
		memcpy(h->out + h->out_len, p, part);
		h->out_len += part;
		h->out[h->out_len] = '\0';
		http1_output_consumed(h->c, part);
	}
	return h->out;
}

static const char *nth_response(const char *out, int n)
{
	const char *p = out;

	for (int i = 0; i <= n; i++) {
		const char *q = strstr(p, "HTTP/1.1 ");

		cr_assert(q, "response %d missing in %s", n, out);
		p = q + (i < n ? 1 : 0);
	}
	return p;
}

static struct http1_limits limits(void)
{
	struct http1_limits l;

	http1_limits_default(&l);
	return l;
}

/* A request that must be refused with status: nothing delivered, a
 * problem+json answer, then close. */
static void expect_refused(const struct http1_limits *l, const char *req, int status)
{
	struct harness *h = harness_new(l, true);
	char line[32], field[32];
	const char *out;
	int st = feed(h, req);

	cr_assert_eq(st, status, "%d, not %d, for: %s", st, status, req);
	cr_assert_eq(h->n, 0, "nothing delivered for: %s", req);
	cr_assert_not(http1_wants_read(h->c));
	cr_assert_eq(http1_feed(h->c, "GET", 3, &(size_t){0}), status, "the status sticks");
	cr_assert_eq(http1_error_response(h->c, status), 0);
	cr_assert_eq(http1_error_response(h->c, status), -EALREADY);
	out = drain(h);
	snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
	snprintf(field, sizeof field, "\"status\":%d}", status);
	cr_assert(strncmp(out, line, strlen(line)) == 0, "%s", out);
	cr_assert(strstr(out, "\r\nContent-Type: application/problem+json\r\n"), "%s", out);
	cr_assert(strstr(out, "\r\nConnection: close\r\n"), "%s", out);
	cr_assert(strstr(out, "{\"type\":\"about:blank\",\"title\":\""), "%s", out);
	cr_assert(strstr(out, field), "%s", out);
	cr_assert(http1_should_close(h->c));
	harness_free(h);
}

/* prefix, then n times ch, then suffix */
static char *with_run(const char *prefix, char ch, size_t n, const char *suffix)
{
	size_t a = strlen(prefix), b = strlen(suffix);
	char *s = malloc(a + n + b + 1);

	cr_assert(s);
	memcpy(s, prefix, a);
	memset(s + a, ch, n);
	memcpy(s + a + n, suffix, b + 1);
	return s;
}

static void expect_accepted(const struct http1_limits *l, const char *req)
{
	struct harness *h = harness_new(l, true);

	cr_assert_eq(feed(h, req), 0, "%s", req);
	cr_assert_eq(h->n, 1, "%s", req);
	harness_free(h);
}

/* A request built with_run, and the status it must get (0: accepted). */
struct crossing {
	const char *prefix;
	char ch;
	size_t n;
	const char *suffix;
	int status;
};

static void check_crossings(const struct http1_limits *l, const struct crossing *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *req = with_run(x[i].prefix, x[i].ch, x[i].n, x[i].suffix);

		if (x[i].status)
			expect_refused(l, req, x[i].status);
		else
			expect_accepted(l, req);
		free(req);
	}
}

#define CHECK_CROSSINGS(l, table) check_crossings(l, table, sizeof table / sizeof table[0])

Test(http1, simple_get)
{
	struct harness *h = harness_new(NULL, true);
	const char *out;

	cr_assert_eq(http1_read_state(h->c), HTTP1_IDLE);
	cr_assert_eq(feed(h, "GET /a/b?x=1&y HTTP/1.1\r\nHost: example.org\r\nAccept:  */*  \r\n\r\n"), 0);
	cr_assert_eq(h->n, 1);
	cr_assert_str_eq(h->r[0].method, "GET");
	cr_assert_str_eq(h->r[0].target, "/a/b?x=1&y");
	cr_assert_str_eq(h->r[0].path, "/a/b");
	cr_assert_str_eq(h->r[0].query, "x=1&y");
	cr_assert_str_eq(h->r[0].host, "example.org", "lookup is case-insensitive");
	cr_assert_eq(h->r[0].n_headers, 2);
	cr_assert_eq(h->r[0].body_len, 0);
	cr_assert(h->r[0].keep_alive);
	cr_assert_eq(h->r[0].seq, 0);
	out = drain(h);
	cr_assert(strncmp(out, "HTTP/1.1 200 OK\r\nDate: ", 23) == 0, "%s", out);
	cr_assert(strstr(out, " GMT\r\n"), "%s", out);
	cr_assert(strstr(out, "\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\n/a/b"), "%s", out);
	cr_assert_null(strstr(out, "Connection:"), "keep-alive is HTTP/1.1's default");
	cr_assert(http1_wants_read(h->c));
	cr_assert_not(http1_should_close(h->c));
	cr_assert_eq(http1_outstanding(h->c), 0);
	harness_free(h);
}

Test(http1, header_values_are_trimmed_and_names_kept)
{
	struct harness *h = harness_new(NULL, false);
	const struct http1_request *r;

	cr_assert_eq(feed(h, "GET / HTTP/1.1\r\nHost: x\r\nX-Thing: \t a b \t\r\nX-Empty:\r\n"
			     "X-Fold: one\r\n two\r\n\r\n"), 0);
	cr_assert_eq(h->n, 1);
	r = http1_exchange_request(h->r[0].ex);
	cr_assert_eq(r->n_headers, 4);
	cr_assert_str_eq(r->headers[1].name, "X-Thing");
	cr_assert_str_eq(r->headers[1].value, "a b");
	cr_assert_str_eq(http1_header_get(r, "x-empty"), "");
	cr_assert_str_eq(http1_header_get(r, "x-fold"), "one two", "obs-fold becomes its whitespace");
	cr_assert_null(http1_header_get(r, "X-Missing"));
	answer(h->r[0].ex, "ok");
	harness_free(h);
}

Test(http1, pipelined_responses_leave_in_request_order)
{
	struct harness *h = harness_new(NULL, false);
	const char *out;

	cr_assert_eq(feed(h, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
			     "GET /two HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	cr_assert_eq(h->n, 2);
	cr_assert_eq(h->r[0].seq, 0);
	cr_assert_eq(h->r[1].seq, 1);
	cr_assert_eq(http1_outstanding(h->c), 2);

	answer(h->r[1].ex, "second");
	cr_assert_str_eq(drain(h), "", "the second waits for the first");
	cr_assert_eq(http1_outstanding(h->c), 2);
	answer(h->r[0].ex, "first");
	out = drain(h);
	cr_assert(strstr(nth_response(out, 0), "\r\n\r\nfirst"), "%s", out);
	cr_assert(strstr(nth_response(out, 1), "\r\n\r\nsecond"), "%s", out);
	cr_assert(strstr(out, "first") < strstr(out, "second"));
	cr_assert_eq(http1_outstanding(h->c), 0);
	cr_assert_not(http1_should_close(h->c));
	harness_free(h);
}

static const char post_then_chunked[] =
	"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"
	"PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
	"GET /after HTTP/1.1\r\nHost: x\r\n\r\n";

static void check_post_then_chunked(struct harness *h)
{
	const char *out = drain(h);

	cr_assert_eq(h->n, 3);
	cr_assert_str_eq(h->r[0].method, "POST");
	cr_assert_eq(h->r[0].body_len, 11);
	cr_assert_str_eq(h->r[0].body, "hello world");
	cr_assert_str_eq(h->r[1].method, "PUT");
	cr_assert_eq(h->r[1].body_len, 11);
	cr_assert_str_eq(h->r[1].body, "hello world");
	cr_assert_str_eq(h->r[2].path, "/after");
	cr_assert_eq(h->r[2].body_len, 0);
	cr_assert(strstr(nth_response(out, 2), "/after"), "%s", out);
}

Test(http1, post_with_content_length_and_chunked_body)
{
	struct harness *h = harness_new(NULL, true);

	cr_assert_eq(feed(h, post_then_chunked), 0);
	check_post_then_chunked(h);
	harness_free(h);
}

Test(http1, byte_at_a_time)
{
	struct harness *h = harness_new(NULL, true);

	cr_assert_eq(feed_bytewise(h, post_then_chunked), 0);
	check_post_then_chunked(h);
	harness_free(h);
}

Test(http1, bare_lf_line_endings_and_leading_empty_lines)
{
	struct harness *h = harness_new(NULL, true);

	cr_assert_eq(feed(h, "\r\n\nPOST /lf HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"), 0);
	cr_assert_eq(h->n, 1);
	cr_assert_str_eq(h->r[0].body, "abc");
	harness_free(h);
}

Test(http1, http10_closes_unless_keep_alive)
{
	struct harness *h = harness_new(NULL, true);
	const char *out;

	cr_assert_eq(feed(h, "GET /old HTTP/1.0\r\n\r\n"), 0);
	cr_assert_eq(h->n, 1);
	cr_assert_not(h->r[0].keep_alive);
	cr_assert_eq(h->r[0].minor, 0);
	cr_assert_not(http1_wants_read(h->c));
	cr_assert_eq(http1_read_state(h->c), HTTP1_CLOSED);
	out = drain(h);
	cr_assert(strstr(out, "\r\nConnection: close\r\n"), "%s", out);
	cr_assert(http1_should_close(h->c));
	harness_free(h);

	h = harness_new(NULL, true);
	cr_assert_eq(feed(h, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
			     "GET /again HTTP/1.0\r\n\r\n"), 0);
	cr_assert_eq(h->n, 2);
	cr_assert(h->r[0].keep_alive);
	out = drain(h);
	cr_assert(strstr(nth_response(out, 0), "\r\nConnection: keep-alive\r\n"), "%s", out);
	cr_assert(strstr(nth_response(out, 1), "\r\nConnection: close\r\n"), "%s", out);
	cr_assert(http1_should_close(h->c));
	harness_free(h);
}

Test(http1, connection_close_stops_reading)
{
	struct harness *h = harness_new(NULL, false);
	static const char two[] = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
				  "GET /ignored HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t used;

	cr_assert_eq(http1_feed(h->c, two, strlen(two), &used), 0);
	cr_assert_eq(h->n, 1);
	cr_assert_lt(used, strlen(two), "nothing after a closing request is read");
	cr_assert_not(http1_wants_read(h->c));
	cr_assert_not(http1_should_close(h->c), "the response is still due");
	answer(h->r[0].ex, "bye");
	cr_assert(strstr(drain(h), "\r\nConnection: close\r\n"));
	cr_assert(http1_should_close(h->c));
	harness_free(h);
}

Test(http1, request_line_limit)
{
	struct http1_limits l = limits();
	/* "GET /" and " HTTP/1.1\r\n" are 16 bytes besides the run */
	static const struct crossing small[] = {
		{"GET /", 'a', 48, " HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"GET /", 'a', 49, " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
	};
	/* the default, crossed by a target in one piece, by empty lines, and
	 * by a request line that never ends */
	static const struct crossing defaults[] = {
		{"GET /", 'b', 9000, " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"", '\n', 9000, "", 400},
		{"GET /", 'c', 9000, "", 414},
		{"GET", ' ', 9000, "/", 414},
	};

	l.max_request_line = 64;
	CHECK_CROSSINGS(&l, small);
	CHECK_CROSSINGS(NULL, defaults);
}

Test(http1, header_bytes_limit)
{
	struct http1_limits l = limits();
	/* "Host: x\r\n", "X: " and "\r\n\r\n" are 16 bytes besides the run */
	static const struct crossing small[] = {
		{"GET / HTTP/1.1\r\nHost: x\r\nX: ", 'v', 48, "\r\n\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: x\r\nX: ", 'v', 49, "\r\n\r\n", 431},
	};
	/* the default, crossed by a value, and by a name that never ends */
	static const struct crossing defaults[] = {
		{"GET / HTTP/1.1\r\nHost: x\r\nX: ", 'w', 20000, "\r\n\r\n", 431},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-", 'w', 20000, "", 431},
	};

	l.max_header_bytes = 64;
	CHECK_CROSSINGS(&l, small);
	CHECK_CROSSINGS(NULL, defaults);
}

Test(http1, http_parser_caps_any_head_at_80k)
{
	struct http1_limits l = limits();
	static const struct crossing big[] = {
		{"GET / HTTP/1.1\r\nHost: x\r\nX: ", 'v', 70000, "\r\n\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: x\r\nX: ", 'v', 90000, "\r\n\r\n", 431},
		{"GET /", 'p', 90000, " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
	};

	l.max_request_line = 200000;
	l.max_header_bytes = 200000;
	CHECK_CROSSINGS(&l, big);
}

Test(http1, header_count_limit)
{
	struct http1_limits l = limits();
	static const char four[] = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	static const char five[] = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
	struct harness *h;
	char *many = malloc(65 * 8 + 64);

	l.max_headers = 4;
	h = harness_new(&l, true);
	cr_assert_eq(feed(h, four), 0);
	cr_assert_eq(h->n, 1);
	harness_free(h);
	expect_refused(&l, five, 431);

	cr_assert(many);
	strcpy(many, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 64; i++)
		sprintf(many + strlen(many), "H%02d: v\r\n", i);
	strcat(many, "\r\n");
	expect_refused(NULL, many, 431);
	free(many);
}

Test(http1, body_limit_by_content_length)
{
	struct http1_limits l = limits();
	struct harness *h;

	l.max_body = 10;
	h = harness_new(&l, true);
	cr_assert_eq(feed(h, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"), 0);
	cr_assert_eq(h->n, 1);
	cr_assert_str_eq(h->r[0].body, "0123456789");
	harness_free(h);
	/* refused from the head alone, before any content is sent */
	expect_refused(&l, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", 413);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", 413);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
}

Test(http1, body_limit_by_chunked_growth)
{
	struct http1_limits l = limits();
	struct harness *h;

	l.max_body = 10;
	h = harness_new(&l, true);
	cr_assert_eq(feed(h, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			     "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"), 0);
	cr_assert_eq(h->n, 1);
	cr_assert_str_eq(h->r[0].body, "abcdefghij");
	harness_free(h);
	expect_refused(&l, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "6\r\nabcdef\r\n5\r\n", 413);
	/* a size no buffer could take is refused before it is read whole */
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			     "ffffffffffffffffffffffff\r\n", 413);
}

#define CHUNKED_HEAD "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

Test(http1, chunked_framing_and_trailers_are_bounded)
{
	struct http1_limits l = limits();
	/* framing may take max_header_bytes + max_body = 80 bytes, trailers 64 */
	static const struct crossing small[] = {
		{CHUNKED_HEAD "1;", 'e', 70, "\r\na\r\n0\r\n\r\n", 0},
		{CHUNKED_HEAD "1;", 'e', 100, "\r\n", 413},
		{CHUNKED_HEAD "0", '0', 100, "\r\n", 413},
		{CHUNKED_HEAD "0\r\nX: ", 't', 50, "\r\n\r\n", 0},
		{CHUNKED_HEAD "0\r\nX: ", 't', 100, "\r\n\r\n", 431},
	};

	l.max_body = 16;
	l.max_header_bytes = 64;
	CHECK_CROSSINGS(&l, small);
}

Test(http1, malformed_chunked_framing)
{
	static const struct crossing bad[] = {
		{CHUNKED_HEAD, 0, 0, "5\r\nhelloXY0\r\n\r\n", 400},        /* no CRLF after the data */
		{CHUNKED_HEAD, 0, 0, "5\r\nhello\rX0\r\n\r\n", 400},       /* bare CR */
		{CHUNKED_HEAD, 0, 0, "x\r\n", 400},                        /* not a size */
		{CHUNKED_HEAD, 0, 0, "\r\n", 400},                         /* empty size */
		{CHUNKED_HEAD, 0, 0, "5\rX", 400},                          /* bare CR after the size */
		{CHUNKED_HEAD, 0, 0, "5;a\x01\r\n", 400},                  /* control character in an extension */
		{CHUNKED_HEAD, 0, 0, "1\r\na\r\n0\r\nX: \x01\r\n\r\n", 400}, /* and in a trailer */
		{CHUNKED_HEAD, 0, 0, "0\r\n\rX", 400},
	};

	CHECK_CROSSINGS(NULL, bad);
}

Test(http1, malformed_requests_get_400)
{
	static const char *const bad[] = {
		"GET\r\n\r\n",
		"GET /\r\nHost: x\r\n\r\n",                         /* HTTP/0.9 form */
		"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",               /* two spaces */
		"GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTXP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
		"GET / HTTP/1.x\r\nHost: x\r\n\r\n",
		"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
		"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",               /* unknown method */
		"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",     /* not ASCII */
		"GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: x\r\n\r\n",                /* '*' is for OPTIONS */
		"GET example.org HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\rHost: x\r\n\r\n",                  /* bare CR */
		"GET / HTTP/1.1\r\nHost: x\r\n\rX\r\n",
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n",               /* space before the colon */
		"GET / HTTP/1.1\r\nBad Name: x\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01z\r\n\r\n",   /* control character */
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\rz\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fz\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",                           /* no Host */
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_refused(NULL, bad[i], 400);
}

Test(http1, bad_versions)
{
	expect_refused(NULL, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
	expect_refused(NULL, "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505);
	expect_refused(NULL, "GET / HTTP/3.0\r\n", 505);
	/* the HTTP/2 preface: http-parser knows no PRI method */
	expect_refused(NULL, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400);
	expect_refused(NULL, "GET / HTTP/11.1\r\nHost: x\r\n\r\n", 400);
}

Test(http1, smuggling_framing_is_refused)
{
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
			     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			     "Content-Length: 3\r\n\r\n0\r\n\r\n", 400);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
			     "Content-Length: 4\r\n\r\nabcd", 400);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
			     "Content-Length: 3\r\n\r\nabc", 400);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd", 400);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
			     "Transfer-Encoding: identity\r\n\r\na", 400);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			     "Transfer-Encoding: chunked\r\n\r\n", 400);
	expect_refused(NULL, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
	/* codings other than chunked are not implemented */
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			     "Transfer-Encoding: gzip\r\n\r\n", 501);
	expect_refused(NULL, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", 501);
}

Test(http1, max_pipelined_backpressure)
{
	struct http1_limits l = limits();
	struct harness *h;
	static const char three[] = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
				    "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
				    "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t used, more;

	l.max_pipelined = 2;
	h = harness_new(&l, false);
	cr_assert_eq(http1_feed(h->c, three, strlen(three), &used), 0);
	cr_assert_eq(h->n, 2);
	cr_assert_eq(used, 2 * strlen(three) / 3, "stops at the end of the second request");
	cr_assert_not(http1_wants_read(h->c));
	cr_assert_eq(http1_feed(h->c, three + used, strlen(three) - used, &more), 0);
	cr_assert_eq(more, 0, "feeding while paused takes nothing");

	answer(h->r[1].ex, "2");
	cr_assert_not(http1_wants_read(h->c), "held behind /1, still outstanding");
	answer(h->r[0].ex, "1");
	cr_assert(http1_wants_read(h->c));
	cr_assert_eq(http1_feed(h->c, three + used, strlen(three) - used, &more), 0);
	cr_assert_eq(used + more, strlen(three));
	cr_assert_eq(h->n, 3);
	cr_assert_str_eq(h->r[2].path, "/3");
	answer(h->r[2].ex, "3");
	drain(h);
	harness_free(h);
}

Test(http1, max_output_backpressure)
{
	struct http1_limits l = limits();
	struct harness *h;
	static const char two[] = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
	char *big = with_run("", 'z', 300, "");
	const uint8_t *p;
	size_t used, more, len;

	l.max_output = 200;
	h = harness_new(&l, false);
	cr_assert_eq(http1_feed(h->c, two, strlen(two), &used), 0);
	cr_assert_eq(h->n, 2, "nothing queued yet: both are read");
	answer(h->r[0].ex, big);
	answer(h->r[1].ex, big);
	cr_assert_not(http1_wants_read(h->c), "the peer is not reading");
	cr_assert(http1_output(h->c, &p, &len));
	cr_assert_gt(len, 600, "both responses, in one piece");
	http1_output_consumed(h->c, len - 250);
	cr_assert_not(http1_wants_read(h->c), "250 bytes still queued");
	drain(h);
	cr_assert(http1_wants_read(h->c));
	cr_assert_eq(http1_feed(h->c, two, strlen(two), &more), 0);
	cr_assert_eq(h->n, 4);
	answer(h->r[2].ex, "a");
	answer(h->r[3].ex, "b");
	harness_free(h);
	free(big);
}

Test(http1, head_gets_no_body)
{
	struct harness *h = harness_new(NULL, true);
	const char *out;

	cr_assert_eq(feed(h, "HEAD /abcd HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	out = drain(h);
	cr_assert(strstr(out, "Content-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\n"),
		  "the length of the GET, and no body: %s", out);
	cr_assert(strstr(out, "Content-Length: 2\r\n\r\n/x"), "%s", out);
	harness_free(h);
}

Test(http1, no_content_responses)
{
	struct harness *h = harness_new(NULL, false);
	const char *out;

	cr_assert_eq(feed(h, "DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	cr_assert_eq(http1_respond(h->r[0].ex, 204, NULL, 0, "x", 1), -EINVAL);
	cr_assert_eq(http1_respond(h->r[0].ex, 101, NULL, 0, NULL, 0), -EINVAL);
	cr_assert_eq(http1_respond(h->r[0].ex, 600, NULL, 0, NULL, 0), -EINVAL);
	cr_assert_eq(http1_respond(h->r[0].ex, 204, NULL, 0, NULL, 0), 0);
	out = drain(h);
	cr_assert(strncmp(out, "HTTP/1.1 204 No Content\r\n", 25) == 0, "%s", out);
	cr_assert_null(strstr(out, "Content-Length"), "%s", out);
	harness_free(h);
}

Test(http1, response_header_injection_is_refused)
{
	struct harness *h = harness_new(NULL, false);
	struct http1_header bad[] = {
		{"X-Ok", "a\r\nSet-Cookie: evil=1"},
		{"X-Ok", "a\nb"},
		{"X-Ok", "a\rb"},
		{"X-Ok", "a\x01"},
		{"Bad Name", "v"},
		{"Bad:Name", "v"},
		{"", "v"},
		{"X-Bad\r\nInjected", "v"},
		{"Content-Length", "5"},
		{"transfer-encoding", "chunked"},
		{"Connection", "keep-alive"},
		{"Date", "today"},
	};
	const struct http1_header good = {"X-Ok", "fine\tvalue"};
	const char *out;

	cr_assert_eq(feed(h, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(http1_respond(h->r[0].ex, 200, &bad[i], 1, NULL, 0), -EINVAL,
			     "header %zu", i);
	cr_assert_str_eq(drain(h), "", "nothing went out");
	cr_assert_eq(http1_respond(h->r[0].ex, 200, &good, 1, "ok", 2), 0, "the exchange is still open");
	out = drain(h);
	cr_assert(strstr(out, "\r\nX-Ok: fine\tvalue\r\n"), "%s", out);
	cr_assert_null(strstr(out, "evil"));
	harness_free(h);
}

Test(http1, expect_100_continue)
{
	struct harness *h = harness_new(NULL, true);
	const char *out;

	cr_assert_eq(feed(h, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n"), 0);
	cr_assert_str_eq(drain(h), "HTTP/1.1 100 Continue\r\n\r\n");
	cr_assert_eq(feed(h, "ok"), 0);
	cr_assert_eq(h->n, 1);
	out = drain(h);
	cr_assert(strncmp(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 42) == 0, "%s", out);
	harness_free(h);

	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n", 417);
	/* too large: refused before the client sends it */
	expect_refused(NULL, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
			     "Content-Length: 2000000\r\n\r\n", 413);
}

Test(http1, targets)
{
	struct harness *h = harness_new(NULL, true);

	cr_assert_eq(feed(h, "GET http://example.org:8443/p/q?r=s HTTP/1.1\r\nHost: example.org:8443\r\n\r\n"
			     "GET http://example.org HTTP/1.1\r\nHost: example.org\r\n\r\n"
			     "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
			     "GET /%7Euser/a%20b?q=%2F HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	cr_assert_eq(h->n, 4);
	cr_assert_str_eq(h->r[0].path, "/p/q");
	cr_assert_str_eq(h->r[0].query, "r=s");
	cr_assert_str_eq(h->r[1].path, "/");
	cr_assert_str_eq(h->r[1].query, "");
	cr_assert_str_eq(h->r[2].method, "OPTIONS");
	cr_assert_str_eq(h->r[2].path, "*");
	cr_assert_str_eq(h->r[3].path, "/%7Euser/a%20b", "not decoded");
	cr_assert_str_eq(h->r[3].query, "q=%2F");
	harness_free(h);
}

Test(http1, upgrade_is_ignored)
{
	struct harness *h = harness_new(NULL, true);

	/* RFC 9110 7.8: a server may ignore Upgrade; the connection stays HTTP/1.1 */
	cr_assert_eq(feed(h, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
			     "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	cr_assert_eq(h->n, 2);
	cr_assert_str_eq(h->r[1].path, "/b");
	harness_free(h);
}

Test(http1, error_response_waits_for_earlier_ones)
{
	struct harness *h = harness_new(NULL, false);
	const char *out;
	int st;

	st = feed(h, "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n");
	cr_assert_eq(st, 400);
	cr_assert_eq(h->n, 1);
	cr_assert_eq(http1_error_response(h->c, st), 0);
	cr_assert_str_eq(drain(h), "", "the answer to /first goes first");
	cr_assert_not(http1_should_close(h->c));
	answer(h->r[0].ex, "first");
	out = drain(h);
	cr_assert(strstr(nth_response(out, 0), "\r\n\r\nfirst"), "%s", out);
	cr_assert_null(strstr(nth_response(out, 0), "Connection: close\r\n\r\nfirst"), "%s", out);
	cr_assert(strncmp(nth_response(out, 1), "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s", out);
	cr_assert(http1_should_close(h->c));
	harness_free(h);
}

Test(http1, timeout_answer_and_eof)
{
	struct harness *h = harness_new(NULL, true);

	cr_assert_eq(feed(h, "GET /slow HTTP/1.1\r\nHost:"), 0);
	cr_assert_eq(http1_read_state(h->c), HTTP1_HEAD);
	cr_assert_eq(http1_error_response(h->c, 408), 0);
	cr_assert(strncmp(drain(h), "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
	cr_assert(http1_should_close(h->c));
	cr_assert_eq(http1_error_response(h->c, 200), -EINVAL);
	harness_free(h);

	h = harness_new(NULL, true);
	cr_assert_eq(feed(h, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab"), 0);
	cr_assert_eq(http1_read_state(h->c), HTTP1_BODY);
	cr_assert_eq(http1_read_eof(h->c), 400, "cut short");
	cr_assert_eq(h->n, 0);
	cr_assert(http1_should_close(h->c));
	harness_free(h);

	h = harness_new(NULL, false);
	cr_assert_eq(feed(h, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	cr_assert_eq(http1_read_eof(h->c), 0, "a half-close after a whole request");
	cr_assert_not(http1_should_close(h->c), "its answer is still due");
	answer(h->r[0].ex, "late");
	cr_assert(strstr(drain(h), "\r\nConnection: close\r\n"));
	cr_assert(http1_should_close(h->c));
	harness_free(h);
}

Test(http1, shutdown_drains_then_closes)
{
	struct harness *h = harness_new(NULL, false);

	cr_assert_eq(feed(h, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c"), 0);
	http1_shutdown(h->c);
	cr_assert_not(http1_wants_read(h->c));
	answer(h->r[0].ex, "a");
	answer(h->r[1].ex, "b");
	cr_assert(strstr(nth_response(drain(h), 1), "\r\nConnection: close\r\n"));
	cr_assert(http1_should_close(h->c));
	harness_free(h);
}

Test(http1, unanswered_exchanges_are_abandoned_on_free)
{
	struct harness *h = harness_new(NULL, false);
	int marker;

	cr_assert_eq(feed(h, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
			     "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	http1_exchange_set_data(h->r[0].ex, &marker);
	cr_assert_eq(http1_exchange_data(h->r[0].ex), &marker);
	answer(h->r[2].ex, "c");
	http1_conn_free(h->c);
	h->c = NULL;
	cr_assert_eq(h->abandoned, 2, "/a and /b; /c was answered");
	harness_free(h);
}

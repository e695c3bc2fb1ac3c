/* libFuzzer target: an HTTP/1.1 connection fed arbitrary bytes in chunks of
 * input-chosen sizes, under input-chosen limits. Requests are answered at
 * once, or held and answered in reverse order after each feed; output is
 * drained in pieces. Checks the promises of http1.h that a peer could break. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define HELD_MAX 8

struct state {
	bool hold;
	struct http1_exchange *held[HELD_MAX];
	size_t n_held;
	uint64_t next_seq;
	size_t out_total;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void answer(struct http1_exchange *ex)
{
	static const struct http1_header type = {"Content-Type", "text/plain"};
	const struct http1_request *r = http1_exchange_request(ex);
	size_t len = strlen(r->path);

	if (http1_respond(ex, 200, &type, 1, r->path, len) != 0)
		abort();
}

static void on_request(struct http1_conn *c, struct http1_exchange *ex,
		       const struct http1_request *req, void *ud)
{
	struct state *s = ud;

	if (req->seq != s->next_seq++ || !req->method || !req->target || !req->path || !req->query ||
	    (req->body_len && !req->body))
		abort();
	for (size_t i = 0; i < req->n_headers; i++)
		if (!req->headers[i].name[0] || strpbrk(req->headers[i].value, "\r\n"))
			abort();
	if (s->hold && s->n_held < HELD_MAX)
		s->held[s->n_held++] = ex;
	else
		answer(ex);
}

static void answer_held(struct state *s)
{
	while (s->n_held)
		answer(s->held[--s->n_held]);
}

/* Leaving `keep` bytes behind makes later responses append to a partly
 * sent buffer, as a slow peer does. */
static void drain(struct http1_conn *c, struct state *s, size_t piece, size_t keep)
{
	const uint8_t *p;
	size_t len;

	while (http1_output(c, &p, &len) && len > keep) {
		size_t n = piece && piece < len - keep ? piece : len - keep;

		/* every response begins with a status line */
		if (s->out_total == 0 && (len < 9 || memcmp(p, "HTTP/1.1 ", 9) != 0))
			abort();
		s->out_total += n;
		http1_output_consumed(c, n);
	}
}

/* http-parser is not instrumented, so libFuzzer cannot learn its keywords:
 * an input may start from one of these heads. */
static const char *const preambles[] = {
	"",
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET /",
	"PUT /q?a=b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n",
	"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET ",
	"GET http://h/p HTTP/1.1\r\n",
};

/* With bit 4 of the first byte set, bytes 0xf0..0xff stand for these: a
 * built-in dictionary, as meson runs every target with the same options. */
static const char *const tokens[16] = {
	"\r\n", "HTTP/1.1", "HTTP/1.0", "Host: x\r\n", "Transfer-Encoding: ", "chunked",
	"Content-Length: ", "Expect: 100-continue\r\n", "Connection: ", "close", "keep-alive",
	"GET /", "HEAD /", "OPTIONS * ", "POST http://h/p?q", "\r\n\r\n",
};

static size_t expand(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] >= 0xf0) {
			const char *t = tokens[in[i] - 0xf0];

			if (out)
				memcpy(out + len, t, strlen(t));
			len += strlen(t);
		} else {
			if (out)
				out[len] = in[i];
			len++;
		}
	}
	return len;
}

/* xorshift32: chunk sizes that vary without taking input bytes */
static uint32_t next_random(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http1_handler handler = {on_request, NULL};
	struct state s = {0};
	struct http1_limits l = {0};
	struct http1_conn *c;
	const char *preamble;
	uint8_t *input;
	size_t pos, drain_piece, keep, len;
	uint32_t seed;
	int st = 0;

	if (size < 5)
		return 0;
	/* small limits some of the time, so that every one gets crossed */
	if (data[0] & 1) {
		l.max_request_line = 16 + data[1];
		l.max_header_bytes = 16 + data[1] * 2;
		l.max_headers = 1 + (data[1] & 7);
		l.max_body = 1 + data[2];
		l.max_pipelined = 1 + (data[2] & 3);
		l.max_output = 64 + data[2];
	}
	s.hold = data[0] & 2;
	drain_piece = data[3] & 15;
	keep = data[0] & 32 ? data[4] & 7 : 0;
	preamble = preambles[(data[3] >> 4) % (sizeof preambles / sizeof preambles[0])];
	seed = 0x9e3779b9u ^ data[4] ^ ((uint32_t)data[0] << 8);
	len = strlen(preamble) + (data[0] & 16 ? expand(data + 5, size - 5, NULL) : size - 5);
	input = malloc(len ? len : 1);
	if (!input)
		return 0;
	memcpy(input, preamble, strlen(preamble));
	if (data[0] & 16)
		expand(data + 5, size - 5, input + strlen(preamble));
	else
		memcpy(input + strlen(preamble), data + 5, size - 5);
	c = http1_conn_new(&l, &handler, &s);
	if (!c) {
		free(input);
		return 0;
	}
	pos = 0;
	while (pos < len) {
		/* mostly small pieces; sometimes all that is left */
		uint32_t r = next_random(&seed);
		size_t piece = r & 0x100 ? len - pos : 1 + (r & 63), off = 0;

		if (piece > len - pos)
			piece = len - pos;
		while (off < piece) {
			size_t used;

			st = http1_feed(c, input + pos + off, piece - off, &used);
			if (used > piece - off || (!st && used < piece - off && http1_wants_read(c)))
				abort();
			off += used;
			answer_held(&s);
			drain(c, &s, drain_piece, keep);
			if (st) {
				if (st < 400 || st > 599 || http1_error_response(c, st) != 0)
					abort();
				drain(c, &s, drain_piece, 0);
				if (!http1_should_close(c))
					abort();
				goto done;
			}
			/* what was not taken is fed again once the connection
			 * reads, unless it never will */
			if (http1_should_close(c) || (used == 0 && !http1_wants_read(c)))
				goto done;
		}
		pos += piece;
	}
done:
	if (!st)
		(void)http1_read_eof(c);
	answer_held(&s);
	drain(c, &s, drain_piece, 0);
	if (http1_outstanding(c) != 0 || !http1_should_close(c))
		abort();
	http1_conn_free(c);
	free(input);
	return 0;
}

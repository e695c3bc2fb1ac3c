/* HTTP/1.1 server connection state machine; see http1.h.
 *
 * http-parser parses the request head only. Debian builds it non-strict: a
 * CR not followed by LF, "HTXP/1.1", several spaces in the request line,
 * spaces inside field names and any two bytes in place of a chunk's CRLF all
 * pass. Such leniency is what request smuggling feeds on, so the head's raw
 * bytes are checked again here (check_head_bytes, finish_head) and bodies are
 * framed here (read_body): on_headers_complete tells http-parser there is no
 * body, and it hands control back at the end of every head.
 */
#include "http1.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_REQUEST_LINE 8192
#define DEFAULT_MAX_HEADER_BYTES 16384
#define DEFAULT_MAX_HEADERS 64
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_PIPELINED 16
#define DEFAULT_MAX_OUTPUT (1024 * 1024)

/* " HTTP/1.1": what follows the target on a request line, before its end. */
#define VERSION_TAIL_LEN 9

struct buf {
	uint8_t *p;
	size_t off, len, cap;   /* bytes [off, len) are live */
};

struct span {
	size_t off, len;
};

struct field {
	struct span name, value;
};

/* Which string of the head http-parser's callbacks are currently extending. */
enum piece { PIECE_NONE, PIECE_URL, PIECE_NAME, PIECE_VALUE };

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

enum chunk_state {
	CK_SIZE_FIRST, CK_SIZE, CK_EXT, CK_DATA, CK_DATA_END,
	CK_TRAILER_START, CK_TRAILER_LINE,
	CK_LF,          /* after a CR: LF, then ck_next */
	CK_DONE,
};

struct http1_exchange {
	struct http1_conn *conn;
	struct http1_exchange *next;
	void *data;
	struct http1_request req;
	/* The request's strings, NUL-terminated: spans, since it grows while
	 * parsing; pointers into it are made once it is complete. */
	struct buf head;
	struct span target, path, query;
	struct field *fields;
	unsigned n_fields, fields_cap;
	struct http1_header *headers;
	struct buf body;
	bool is_head;
	bool answered;
	struct buf response;    /* serialized, waiting for earlier responses */
};

struct http1_conn {
	struct http1_limits lim;
	struct http1_handler handler;
	void *ud;
	http_parser parser;

	/* The request being received. */
	struct http1_exchange *cur;
	enum piece piece;
	const char *chunk;      /* data of the running http_parser_execute */
	size_t head_base;       /* bytes of this head consumed before chunk */
	int cb_status;          /* why a callback stopped http-parser */
	bool head_complete;
	/* Raw-byte view of the head (positions count from its first byte,
	 * empty lines before the request line included). */
	bool cr_pending;
	bool method_seen, url_seen, line_done, fields_seen;
	size_t method_start, url_start, url_end, line_len, fields_start;
	char version_tail[VERSION_TAIL_LEN];
	size_t version_tail_len;
	/* From on_headers_complete. */
	enum http_method method;
	bool has_length;
	uint64_t content_length;
	/* Body framing. */
	bool in_body;
	enum body_mode body_mode;
	uint64_t body_left;     /* of the content, or of the current chunk */
	enum chunk_state ck, ck_next;
	bool in_trailers;
	size_t framing_bytes, trailer_bytes;

	/* Delivered requests, oldest first; an answered one leaves once it is
	 * first (its response then moves to out). */
	struct http1_exchange *q_head, *q_tail;
	size_t n_queued;
	size_t held_bytes;      /* responses serialized but not yet in out */
	struct buf out;
	uint64_t next_seq;

	int error;              /* status http1_feed returned; sticky */
	bool read_closed;
	bool error_queued;
};

/* --- small helpers ------------------------------------------------------ */

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static int lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* The locale must not decide what a header name matches. */
static bool ascii_case_equal(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return false;
	return *a == *b;
}

static bool ascii_case_equal_n(const char *a, size_t n, const char *b)
{
	if (strlen(b) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool is_tchar(unsigned char ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return false;
	return true;
}

/* field-vchar, SP and HTAB; obs-text is let through as RFC 9110 allows. */
static bool is_field_value_char(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static int hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Room for `extra` more bytes; growth doubles but stops at `limit` when the
 * need allows, so a bounded buffer never holds twice its bound. */
static int buf_reserve(struct buf *b, size_t extra, size_t limit)
{
	size_t need, cap;
	uint8_t *p;

	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (extra <= b->cap - b->len)
		return 0;
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (extra <= b->cap - b->len)
			return 0;
	}
	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	need = b->len + extra;
	cap = b->cap ? b->cap : 256;
	while (cap < need && cap <= SIZE_MAX / 2)
		cap *= 2;
	if (cap < need)
		cap = need;
	if (cap > limit && need <= limit)
		cap = limit;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_append(struct buf *b, const void *data, size_t len, size_t limit)
{
	if (len == 0)
		return 0;
	if (buf_reserve(b, len, limit))
		return -ENOMEM;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

/* Only after buf_reserve. */
static void buf_put(struct buf *b, const void *data, size_t len)
{
	if (len) {
		memcpy(b->p + b->len, data, len);
		b->len += len;
	}
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static size_t buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

static const char *reason_phrase(int status)
{
	const char *s = http_status_str((enum http_status)status);

	return s[0] == '<' ? "" : s;
}

/* --- exchanges ------------------------------------------------------------ */

static struct http1_exchange *exchange_new(struct http1_conn *c)
{
	struct http1_exchange *ex = calloc(1, sizeof *ex);

	if (ex)
		ex->conn = c;
	return ex;
}

/* What only the request needed; the response may still wait in the queue. */
static void exchange_drop_request(struct http1_exchange *ex)
{
	buf_free(&ex->head);
	buf_free(&ex->body);
	free(ex->fields);
	free(ex->headers);
	ex->fields = NULL;
	ex->headers = NULL;
	ex->n_fields = ex->fields_cap = 0;
	memset(&ex->req, 0, sizeof ex->req);
}

static void exchange_free(struct http1_exchange *ex)
{
	if (!ex)
		return;
	exchange_drop_request(ex);
	buf_free(&ex->response);
	free(ex);
}

static const char *head_str(const struct http1_exchange *ex, struct span s)
{
	return (const char *)ex->head.p + s.off;
}

/* Closes the string being extended with a NUL; a value loses its trailing
 * whitespace first (http-parser only skips the leading one). */
static int end_piece(struct http1_conn *c)
{
	struct http1_exchange *ex = c->cur;
	struct field *f = ex->n_fields ? &ex->fields[ex->n_fields - 1] : NULL;
	static const char nul = '\0';

	switch (c->piece) {
	case PIECE_NONE:
		return 0;
	case PIECE_URL:
		ex->target.len = ex->head.len - ex->target.off;
		break;
	case PIECE_NAME:
		/* a name the value callback never followed: its value is empty */
		f->name.len = ex->head.len - f->name.off;
		if (buf_append(&ex->head, &nul, 1, SIZE_MAX))
			return -ENOMEM;
		f->value.off = ex->head.len;
		f->value.len = 0;
		break;
	case PIECE_VALUE:
		while (ex->head.len > f->value.off &&
		       (ex->head.p[ex->head.len - 1] == ' ' || ex->head.p[ex->head.len - 1] == '\t'))
			ex->head.len--;
		f->value.len = ex->head.len - f->value.off;
		break;
	}
	c->piece = PIECE_NONE;
	return buf_append(&ex->head, &nul, 1, SIZE_MAX);
}

/* --- http-parser callbacks: the head ------------------------------------ */

static size_t head_pos(const struct http1_conn *c, const char *at)
{
	return c->head_base + (size_t)(at - c->chunk);
}

static int stop_parser(struct http1_conn *c, int status)
{
	c->cb_status = status;
	return -1;
}

static int on_message_begin(http_parser *p)
{
	struct http1_conn *c = p->data;

	exchange_free(c->cur);
	c->cur = exchange_new(c);
	return c->cur ? 0 : stop_parser(c, 500);
}

/* The byte-position checks here come before storing, so that one large
 * chunk cannot make the head buffer outgrow the limits; check_head_bytes
 * then applies the same limits exactly. */
static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http1_conn *c = p->data;

	if (!c->url_seen) {
		c->url_seen = true;
		c->url_start = head_pos(c, at);
		c->cur->target.off = c->cur->head.len;
		c->piece = PIECE_URL;
	}
	c->url_end = head_pos(c, at + len);
	if (c->url_end > c->lim.max_request_line)
		return stop_parser(c, 414);
	return buf_append(&c->cur->head, at, len, SIZE_MAX) ? stop_parser(c, 500) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http1_conn *c = p->data;
	struct http1_exchange *ex = c->cur;

	if (!c->fields_seen) {
		c->fields_seen = true;
		c->fields_start = head_pos(c, at);
	}
	if (head_pos(c, at + len) - c->fields_start > c->lim.max_header_bytes)
		return stop_parser(c, 431);
	if (c->piece != PIECE_NAME) {
		if (end_piece(c))
			return stop_parser(c, 500);
		if (ex->n_fields >= c->lim.max_headers)
			return stop_parser(c, 431);
		if (ex->n_fields == ex->fields_cap) {
			unsigned cap = ex->fields_cap ? ex->fields_cap * 2 : 8;
			struct field *fields;

			if (cap > c->lim.max_headers)
				cap = c->lim.max_headers;
			fields = realloc(ex->fields, cap * sizeof *fields);
			if (!fields)
				return stop_parser(c, 500);
			ex->fields = fields;
			ex->fields_cap = cap;
		}
		ex->fields[ex->n_fields].name.off = ex->head.len;
		ex->n_fields++;
		c->piece = PIECE_NAME;
	}
	return buf_append(&ex->head, at, len, SIZE_MAX) ? stop_parser(c, 500) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http1_conn *c = p->data;
	struct http1_exchange *ex = c->cur;
	static const char nul = '\0';

	if (head_pos(c, at + len) - c->fields_start > c->lim.max_header_bytes)
		return stop_parser(c, 431);
	if (c->piece != PIECE_VALUE) {
		struct field *f = &ex->fields[ex->n_fields - 1];

		f->name.len = ex->head.len - f->name.off;
		if (buf_append(&ex->head, &nul, 1, SIZE_MAX))
			return stop_parser(c, 500);
		f->value.off = ex->head.len;
		c->piece = PIECE_VALUE;
	}
	return buf_append(&ex->head, at, len, SIZE_MAX) ? stop_parser(c, 500) : 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http1_conn *c = p->data;
	struct http1_exchange *ex = c->cur;

	if (end_piece(c)) {
		c->cb_status = 500;
		return -1;
	}
	ex->req.http_major = p->http_major;
	ex->req.http_minor = p->http_minor;
	ex->req.keep_alive = http_should_keep_alive(p) != 0;
	c->method = (enum http_method)p->method;
	c->has_length = (p->flags & F_CONTENTLENGTH) != 0;
	c->content_length = p->content_length;
	/* 1 = "no body": read_body frames it, strictly */
	return 1;
}

static int on_message_complete(http_parser *p)
{
	struct http1_conn *c = p->data;

	c->head_complete = true;
	/* hand control back exactly at the end of the head */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

/* --- the head, checked again -------------------------------------------- */

static void reset_head(struct http1_conn *c)
{
	c->piece = PIECE_NONE;
	c->head_base = 0;
	c->cb_status = 0;
	c->head_complete = false;
	c->cr_pending = false;
	c->method_seen = c->url_seen = c->line_done = c->fields_seen = false;
	c->method_start = c->url_start = c->url_end = c->line_len = c->fields_start = 0;
	c->version_tail_len = 0;
}

/* Exactly METHOD SP target SP HTTP/d.d, which http-parser does not insist
 * on. */
static int check_request_line(const struct http1_conn *c)
{
	const char *t = c->version_tail;
	size_t method_len = strlen(http_method_str((enum http_method)c->parser.method));

	if (!c->url_seen || c->url_start != c->method_start + method_len + 1)
		return 400;
	if (c->version_tail_len != VERSION_TAIL_LEN || memcmp(t, " HTTP/", 6) != 0 ||
	    t[6] < '0' || t[6] > '9' || t[7] != '.' || t[8] < '0' || t[8] > '9')
		return 400;
	return t[6] == '1' ? 0 : 505;
}

/* Runs over the head bytes http-parser consumed, at their positions: a CR
 * must start a line ending, the request line must be well formed, and the
 * request line and header section must fit their limits. */
static int check_head_bytes(struct http1_conn *c, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)data[i];
		size_t pos = c->head_base + i;

		if (c->cr_pending && ch != '\n')
			return 400;
		c->cr_pending = ch == '\r';
		if (c->line_done) {
			if (pos - c->line_len >= c->lim.max_header_bytes)
				return 431;
			continue;
		}
		if (pos >= c->lim.max_request_line)
			return c->method_seen ? 414 : 400;
		if (!c->method_seen) {
			if (ch != '\r' && ch != '\n') {
				c->method_seen = true;
				c->method_start = pos;
			}
		} else if (ch == '\n') {
			int st;

			c->line_done = true;
			c->line_len = pos + 1;
			st = check_request_line(c);
			if (st)
				return st;
		} else if (c->url_seen && pos >= c->url_end && ch != '\r') {
			if (c->version_tail_len == sizeof c->version_tail)
				return 400;
			c->version_tail[c->version_tail_len++] = (char)ch;
		}
	}
	return 0;
}

static int add_string(struct http1_exchange *ex, const char *s, size_t len, struct span *out)
{
	static const char nul = '\0';

	out->off = ex->head.len;
	out->len = len;
	if (buf_append(&ex->head, s, len, SIZE_MAX) || buf_append(&ex->head, &nul, 1, SIZE_MAX))
		return -ENOMEM;
	return 0;
}

/* RFC 9112 3.2: origin-form, absolute-form, or "*" for OPTIONS; the target
 * is visible ASCII and has no fragment. Splits out path and query. */
static int check_target(struct http1_conn *c)
{
	struct http1_exchange *ex = c->cur;
	size_t len = ex->target.len;
	const char *path, *query = "";
	size_t path_len, query_len = 0;
	char *t;

	/* http-parser's spans may move with the buffer: copy the target out */
	t = malloc(len + 1);
	if (!t)
		return 500;
	memcpy(t, head_str(ex, ex->target), len + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)t[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '#') {
			free(t);
			return 400;
		}
	}
	if (len > 0 && t[0] == '/') {
		const char *q = memchr(t, '?', len);

		path = t;
		path_len = q ? (size_t)(q - t) : len;
		if (q) {
			query = q + 1;
			query_len = len - path_len - 1;
		}
	} else if (len == 1 && t[0] == '*') {
		if (c->method != HTTP_OPTIONS) {
			free(t);
			return 400;
		}
		path = t;
		path_len = 1;
	} else {
		struct http_parser_url u;

		http_parser_url_init(&u);
		if (http_parser_parse_url(t, len, 0, &u) != 0 ||
		    !(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST))) {
			free(t);
			return 400;
		}
		if (u.field_set & (1 << UF_PATH)) {
			path = t + u.field_data[UF_PATH].off;
			path_len = u.field_data[UF_PATH].len;
		} else {
			path = "/";
			path_len = 1;
		}
		if (u.field_set & (1 << UF_QUERY)) {
			query = t + u.field_data[UF_QUERY].off;
			query_len = u.field_data[UF_QUERY].len;
		}
	}
	if (add_string(ex, path, path_len, &ex->path) || add_string(ex, query, query_len, &ex->query)) {
		free(t);
		return 500;
	}
	free(t);
	return 0;
}

/* Only "chunked" is implemented (RFC 9112 6.1: 501 for another coding).
 * HTTP/1.0 has no Transfer-Encoding, so one there means faulty framing
 * (6.1 again); chunked twice is forbidden. */
static int check_transfer_encoding(const struct http1_exchange *ex, bool *chunked)
{
	unsigned n_chunked = 0, n_other = 0;
	bool present = false;

	*chunked = false;
	for (unsigned i = 0; i < ex->n_fields; i++) {
		const char *v;

		if (!ascii_case_equal(head_str(ex, ex->fields[i].name), "transfer-encoding"))
			continue;
		present = true;
		v = head_str(ex, ex->fields[i].value);
		while (*v) {
			size_t n = strcspn(v, ",");
			size_t a = 0, b = n;

			while (a < b && (v[a] == ' ' || v[a] == '\t'))
				a++;
			while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
				b--;
			if (b > a) {
				if (ascii_case_equal_n(v + a, b - a, "chunked"))
					n_chunked++;
				else
					n_other++;
			}
			v += n;
			if (*v == ',')
				v++;
		}
	}
	if (!present)
		return 0;
	if (ex->req.http_minor == 0)
		return 400;
	if (n_other)
		return 501;
	if (n_chunked != 1)
		return 400;
	*chunked = true;
	return 0;
}

static unsigned count_fields(const struct http1_exchange *ex, const char *name)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ex->n_fields; i++)
		n += ascii_case_equal(head_str(ex, ex->fields[i].name), name);
	return n;
}

static const char *field_value(const struct http1_exchange *ex, const char *name)
{
	for (unsigned i = 0; i < ex->n_fields; i++)
		if (ascii_case_equal(head_str(ex, ex->fields[i].name), name))
			return head_str(ex, ex->fields[i].value);
	return NULL;
}

static int dispatch(struct http1_conn *c);

static int finish_head(struct http1_conn *c)
{
	struct http1_exchange *ex = c->cur;
	bool chunked, expects_body;
	const char *expect;
	int st;

	if (!ex || !c->line_done)
		return 400;
	/* certward is no proxy */
	if (c->method == HTTP_CONNECT)
		return 501;
	st = check_target(c);
	if (st)
		return st;
	for (unsigned i = 0; i < ex->n_fields; i++)
		if (!is_token(head_str(ex, ex->fields[i].name)))
			return 400;
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one before */
	if (ex->req.http_minor >= 1 ? count_fields(ex, "host") != 1 : count_fields(ex, "host") > 1)
		return 400;
	st = check_transfer_encoding(ex, &chunked);
	if (st)
		return st;
	/* Content-Length with Transfer-Encoding, and a repeated Content-Length,
	 * were refused by http-parser already (HPE_UNEXPECTED_CONTENT_LENGTH) */
	if (c->has_length && c->content_length > c->lim.max_body)
		return 413;
	expects_body = chunked || (c->has_length && c->content_length > 0);

	/* RFC 9110 10.1.1: HTTP/1.0 expectations are ignored */
	expect = field_value(ex, "expect");
	if (expect && ex->req.http_minor >= 1) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (!ascii_case_equal(expect, "100-continue"))
			return 417;
		/* Only when nothing is owed before it; otherwise the client
		 * sends after its own timeout, as RFC 9110 lets it. Out of
		 * memory, likewise. */
		if (expects_body && !c->q_head)
			(void)buf_append(&c->out, cont, sizeof cont - 1, SIZE_MAX);
	}

	ex->is_head = c->method == HTTP_HEAD;
	ex->req.method = http_method_str(c->method);
	reset_head(c);
	if (chunked) {
		c->body_mode = BODY_CHUNKED;
		c->ck = CK_SIZE_FIRST;
		c->in_trailers = false;
		c->body_left = 0;
		c->framing_bytes = c->trailer_bytes = 0;
	} else if (expects_body) {
		c->body_mode = BODY_LENGTH;
		c->body_left = c->content_length;
		/* the whole declared size at once: it is within max_body */
		if (buf_reserve(&ex->body, (size_t)c->content_length, (size_t)c->content_length))
			return 500;
	} else {
		c->body_mode = BODY_NONE;
		return dispatch(c);
	}
	c->in_body = true;
	return 0;
}

static int parse_head(struct http1_conn *c, const char *data, size_t len, size_t *used)
{
	enum http_errno e;
	size_t n;
	int st;

	c->chunk = data;
	c->cb_status = 0;
	n = http_parser_execute(&c->parser, &parser_settings, data, len);
	*used = n;
	e = HTTP_PARSER_ERRNO(&c->parser);
	if (e == HPE_PAUSED) {
		http_parser_pause(&c->parser, 0);
	} else if (e != HPE_OK) {
		/* an earlier fault in the bytes before the stop (say, the
		 * version of a request line whose header section is junk)
		 * is the one to report */
		st = check_head_bytes(c, data, n);
		if (st)
			return st;
		if (c->cb_status)
			return c->cb_status;
		if (e == HPE_HEADER_OVERFLOW)
			return c->fields_seen ? 431 : 414;
		return 400;
	}
	st = check_head_bytes(c, data, n);
	c->head_base += n;
	if (st)
		return st;
	return c->head_complete ? finish_head(c) : 0;
}

/* --- bodies ----------------------------------------------------------------- */

/* A line ends with CR LF or a bare LF (RFC 9112 2.2), never a bare CR:
 * CK_LF refuses whatever follows a CR but LF. */
static bool line_end(struct http1_conn *c, unsigned char ch, enum chunk_state next)
{
	if (ch == '\r') {
		c->ck = CK_LF;
		c->ck_next = next;
		return true;
	}
	if (ch == '\n') {
		c->ck = next;
		return true;
	}
	return false;
}

static bool size_line_end(struct http1_conn *c, unsigned char ch)
{
	bool last = c->body_left == 0;

	if (!line_end(c, ch, last ? CK_TRAILER_START : CK_DATA))
		return false;
	c->in_trailers = last;
	return true;
}

/* RFC 9112 7.1; extensions are skipped and trailer fields discarded, but
 * both are bounded. */
static int read_chunked(struct http1_conn *c, const uint8_t *d, size_t len, size_t *used)
{
	struct http1_exchange *ex = c->cur;
	size_t i = 0;

	while (i < len && c->ck != CK_DONE) {
		unsigned char ch;
		int v;

		if (c->ck == CK_DATA) {
			size_t take = (size_t)(c->body_left < len - i ? c->body_left : len - i);

			if (buf_append(&ex->body, d + i, take, c->lim.max_body))
				return 500;
			i += take;
			c->body_left -= take;
			if (c->body_left == 0)
				c->ck = CK_DATA_END;
			continue;
		}
		ch = d[i++];
		if (c->in_trailers) {
			if (++c->trailer_bytes > c->lim.max_header_bytes)
				return 431;
		} else if (++c->framing_bytes > c->lim.max_header_bytes + c->lim.max_body) {
			return 413;
		}
		switch (c->ck) {
		case CK_SIZE_FIRST:
		case CK_SIZE:
			v = hex_value(ch);
			if (v >= 0) {
				size_t room = c->lim.max_body - ex->body.len;

				if ((size_t)v > room || c->body_left > (room - (size_t)v) / 16)
					return 413;
				c->body_left = c->body_left * 16 + (size_t)v;
				c->ck = CK_SIZE;
			} else if (c->ck == CK_SIZE_FIRST) {
				return 400;
			} else if (ch == ';' || ch == ' ' || ch == '\t') {
				c->ck = CK_EXT;
			} else if (!size_line_end(c, ch)) {
				return 400;
			}
			break;
		case CK_EXT:
			if (!size_line_end(c, ch) && !is_field_value_char(ch))
				return 400;
			break;
		case CK_DATA_END:
			if (!line_end(c, ch, CK_SIZE_FIRST))
				return 400;
			break;
		case CK_TRAILER_START:
			if (line_end(c, ch, CK_DONE))
				break;
			/* fall through */
		case CK_TRAILER_LINE:
			if (line_end(c, ch, CK_TRAILER_START))
				break;
			if (!is_field_value_char(ch))
				return 400;
			c->ck = CK_TRAILER_LINE;
			break;
		case CK_LF:
			if (ch != '\n')
				return 400;
			c->ck = c->ck_next;
			break;
		case CK_DATA:
		case CK_DONE:
			break;
		}
	}
	*used = i;
	return 0;
}

static int read_body(struct http1_conn *c, const uint8_t *d, size_t len, size_t *used)
{
	bool done;

	if (c->body_mode == BODY_LENGTH) {
		size_t take = (size_t)(c->body_left < len ? c->body_left : len);

		buf_put(&c->cur->body, d, take);
		c->body_left -= take;
		*used = take;
		done = c->body_left == 0;
	} else {
		int st = read_chunked(c, d, len, used);

		if (st)
			return st;
		done = c->ck == CK_DONE;
	}
	if (!done)
		return 0;
	c->in_body = false;
	return dispatch(c);
}

/* --- delivery and responses ------------------------------------------------ */

static void enqueue(struct http1_conn *c, struct http1_exchange *ex)
{
	if (c->q_tail)
		c->q_tail->next = ex;
	else
		c->q_head = ex;
	c->q_tail = ex;
	c->n_queued++;
}

static int dispatch(struct http1_conn *c)
{
	struct http1_exchange *ex = c->cur;
	struct http1_request *r = &ex->req;

	if (ex->n_fields) {
		ex->headers = calloc(ex->n_fields, sizeof *ex->headers);
		if (!ex->headers)
			return 500;
		for (unsigned i = 0; i < ex->n_fields; i++) {
			ex->headers[i].name = head_str(ex, ex->fields[i].name);
			ex->headers[i].value = head_str(ex, ex->fields[i].value);
		}
	}
	r->seq = c->next_seq++;
	r->target = head_str(ex, ex->target);
	r->path = head_str(ex, ex->path);
	r->query = head_str(ex, ex->query);
	r->headers = ex->headers;
	r->n_headers = ex->n_fields;
	r->body = ex->body.len ? ex->body.p : NULL;
	r->body_len = ex->body.len;

	c->cur = NULL;
	enqueue(c, ex);
	if (!r->keep_alive)
		c->read_closed = true;
	c->handler.on_request(c, ex, r, c->ud);
	return 0;
}

/* Moves answered responses that are now first into out. Out of memory
 * leaves them held: out drains, and an empty out takes a response whole. */
static void flush(struct http1_conn *c)
{
	struct http1_exchange *ex;

	while ((ex = c->q_head) && ex->answered) {
		size_t n = buf_pending(&ex->response);

		if (buf_pending(&c->out) == 0) {
			struct buf t = c->out;

			c->out = ex->response;
			ex->response = t;
		} else if (buf_append(&c->out, ex->response.p + ex->response.off, n, SIZE_MAX)) {
			return;
		}
		c->held_bytes -= n;
		c->q_head = ex->next;
		if (!c->q_head)
			c->q_tail = NULL;
		c->n_queued--;
		exchange_free(ex);
	}
}

static bool is_managed_header(const char *name)
{
	static const char *const managed[] = {
		"content-length", "transfer-encoding", "connection", "date",
		"keep-alive", "upgrade", "trailer",
	};

	for (size_t i = 0; i < sizeof managed / sizeof managed[0]; i++)
		if (ascii_case_equal(name, managed[i]))
			return true;
	return false;
}

static bool valid_response_header(const struct http1_header *h)
{
	if (!h->name || !h->value || !is_token(h->name) || is_managed_header(h->name))
		return false;
	for (const char *v = h->value; *v; v++)
		if (!is_field_value_char((unsigned char)*v))
			return false;
	return true;
}

static int format_date(char *out, size_t size)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	struct tm tm;

	if (!gmtime_r(&now, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
		return 0;
	return snprintf(out, size, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
			days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
			tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Whole or nothing: the size is worked out first. */
static int serialize(struct buf *dst, int status, const struct http1_header *headers, size_t n_headers,
		     const void *body, size_t body_len, bool send_body, const char *connection)
{
	char status_line[96], date[64], length[48], conn_line[48];
	int sl, dl, ll = 0, cl = 0;
	size_t size;
	bool no_content = status == 204 || status == 304;

	sl = snprintf(status_line, sizeof status_line, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
	dl = format_date(date, sizeof date);
	if (sl < 0 || (size_t)sl >= sizeof status_line || dl < 0 || (size_t)dl >= sizeof date)
		return -EINVAL;
	if (!no_content) {
		ll = snprintf(length, sizeof length, "Content-Length: %zu\r\n", body_len);
		if (ll < 0 || (size_t)ll >= sizeof length)
			return -EINVAL;
	}
	if (connection) {
		cl = snprintf(conn_line, sizeof conn_line, "Connection: %s\r\n", connection);
		if (cl < 0 || (size_t)cl >= sizeof conn_line)
			return -EINVAL;
	}
	size = (size_t)sl + (size_t)dl + (size_t)ll + (size_t)cl + 2;
	for (size_t i = 0; i < n_headers; i++)
		size += strlen(headers[i].name) + strlen(headers[i].value) + 4;
	if (send_body) {
		if (body_len > SIZE_MAX - size)
			return -ENOMEM;
		size += body_len;
	}
	if (buf_reserve(dst, size, SIZE_MAX))
		return -ENOMEM;
	buf_put(dst, status_line, (size_t)sl);
	buf_put(dst, date, (size_t)dl);
	for (size_t i = 0; i < n_headers; i++) {
		buf_put(dst, headers[i].name, strlen(headers[i].name));
		buf_put(dst, ": ", 2);
		buf_put(dst, headers[i].value, strlen(headers[i].value));
		buf_put(dst, "\r\n", 2);
	}
	buf_put(dst, length, (size_t)ll);
	buf_put(dst, conn_line, (size_t)cl);
	buf_put(dst, "\r\n", 2);
	if (send_body)
		buf_put(dst, body, body_len);
	return 0;
}

static bool closing(const struct http1_conn *c)
{
	return c->error || c->read_closed;
}

int http1_respond(struct http1_exchange *ex, int status, const struct http1_header *headers,
		  size_t n_headers, const void *body, size_t body_len)
{
	struct http1_conn *c = ex->conn;
	bool closes, send_body;
	const char *connection = NULL;
	int rc;

	if (status < 200 || status > 599 || ex->answered)
		return -EINVAL;
	if ((status == 204 || status == 304) && body_len)
		return -EINVAL;
	if (body_len && !body)
		return -EINVAL;
	if (n_headers && !headers)
		return -EINVAL;
	for (size_t i = 0; i < n_headers; i++)
		if (!valid_response_header(&headers[i]))
			return -EINVAL;
	/* the last response before a close says so; later ones cannot exist */
	closes = !ex->req.keep_alive || (closing(c) && ex == c->q_tail && !c->cur);
	if (closes)
		connection = "close";
	else if (ex->req.http_minor == 0)
		connection = "keep-alive";
	send_body = !ex->is_head && status != 204 && status != 304;
	rc = serialize(&ex->response, status, headers, n_headers, body, body_len, send_body, connection);
	if (rc)
		return rc;
	if (closes)
		c->read_closed = true;
	c->held_bytes += buf_pending(&ex->response);
	ex->answered = true;
	exchange_drop_request(ex);
	flush(c);
	return 0;
}

static void drop_current(struct http1_conn *c)
{
	exchange_free(c->cur);
	c->cur = NULL;
	c->in_body = false;
	reset_head(c);
}

int http1_error_response(struct http1_conn *c, int status)
{
	static const struct http1_header problem_type = {"Content-Type", "application/problem+json"};
	struct http1_exchange *ex;
	char body[160];
	int n;

	if (status < 400 || status > 599)
		return -EINVAL;
	if (c->error_queued)
		return -EALREADY;
	drop_current(c);
	c->read_closed = true;
	ex = exchange_new(c);
	if (!ex)
		return -ENOMEM;
	n = snprintf(body, sizeof body, "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d}",
		     reason_phrase(status), status);
	if (n < 0 || (size_t)n >= sizeof body ||
	    serialize(&ex->response, status, &problem_type, 1, body, (size_t)n, true, "close")) {
		exchange_free(ex);
		return -ENOMEM;
	}
	ex->answered = true;
	c->error_queued = true;
	c->held_bytes += buf_pending(&ex->response);
	enqueue(c, ex);
	flush(c);
	return 0;
}

/* --- the connection ----------------------------------------------------------- */

void http1_limits_default(struct http1_limits *l)
{
	l->max_request_line = DEFAULT_MAX_REQUEST_LINE;
	l->max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
	l->max_headers = DEFAULT_MAX_HEADERS;
	l->max_body = DEFAULT_MAX_BODY;
	l->max_pipelined = DEFAULT_MAX_PIPELINED;
	l->max_output = DEFAULT_MAX_OUTPUT;
}

struct http1_conn *http1_conn_new(const struct http1_limits *limits,
				  const struct http1_handler *handler, void *ud)
{
	struct http1_conn *c;
	struct http1_limits d;

	if (!handler || !handler->on_request)
		return NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	http1_limits_default(&d);
	c->lim = d;
	if (limits) {
		if (limits->max_request_line)
			c->lim.max_request_line = limits->max_request_line;
		if (limits->max_header_bytes)
			c->lim.max_header_bytes = limits->max_header_bytes;
		if (limits->max_headers)
			c->lim.max_headers = limits->max_headers;
		if (limits->max_body)
			c->lim.max_body = limits->max_body;
		if (limits->max_pipelined)
			c->lim.max_pipelined = limits->max_pipelined;
		if (limits->max_output)
			c->lim.max_output = limits->max_output;
	}
	/* the chunked framing allowance adds the two */
	if (c->lim.max_body > SIZE_MAX / 2)
		c->lim.max_body = SIZE_MAX / 2;
	if (c->lim.max_header_bytes > SIZE_MAX / 2)
		c->lim.max_header_bytes = SIZE_MAX / 2;
	c->handler = *handler;
	c->ud = ud;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	return c;
}

void http1_conn_free(struct http1_conn *c)
{
	struct http1_exchange *ex, *next;

	if (!c)
		return;
	for (ex = c->q_head; ex; ex = ex->next)
		if (!ex->answered && c->handler.on_abandon)
			c->handler.on_abandon(c, ex, c->ud);
	for (ex = c->q_head; ex; ex = next) {
		next = ex->next;
		exchange_free(ex);
	}
	exchange_free(c->cur);
	buf_free(&c->out);
	free(c);
}

bool http1_wants_read(const struct http1_conn *c)
{
	if (closing(c))
		return false;
	if (c->cur)
		return true;
	return c->n_queued < c->lim.max_pipelined &&
	       buf_pending(&c->out) + c->held_bytes < c->lim.max_output;
}

int http1_feed(struct http1_conn *c, const void *data, size_t len, size_t *consumed)
{
	const char *p = data;
	size_t done = 0;

	if (!c->error) {
		while (done < len && http1_wants_read(c)) {
			size_t used = 0;
			int st;

			if (c->in_body)
				st = read_body(c, (const uint8_t *)p + done, len - done, &used);
			else
				st = parse_head(c, p + done, len - done, &used);
			done += used;
			/* http-parser takes a byte per call at least; no
			 * progress would spin */
			if (!st && used == 0)
				st = 400;
			if (st) {
				drop_current(c);
				c->error = st;
			}
		}
	}
	*consumed = done;
	return c->error;
}

int http1_read_eof(struct http1_conn *c)
{
	bool partial = c->cur != NULL;

	drop_current(c);
	c->read_closed = true;
	return partial ? 400 : 0;
}

void http1_shutdown(struct http1_conn *c)
{
	drop_current(c);
	c->read_closed = true;
}

bool http1_output(struct http1_conn *c, const uint8_t **p, size_t *len)
{
	flush(c);
	*len = buf_pending(&c->out);
	*p = *len ? c->out.p + c->out.off : NULL;
	return *len > 0;
}

void http1_output_consumed(struct http1_conn *c, size_t n)
{
	c->out.off += min_size(n, buf_pending(&c->out));
	if (c->out.off == c->out.len)
		c->out.off = c->out.len = 0;
	flush(c);
}

bool http1_should_close(const struct http1_conn *c)
{
	return closing(c) && !c->q_head && buf_pending(&c->out) == 0;
}

enum http1_read_state http1_read_state(const struct http1_conn *c)
{
	if (closing(c))
		return HTTP1_CLOSED;
	if (c->in_body)
		return HTTP1_BODY;
	return c->cur ? HTTP1_HEAD : HTTP1_IDLE;
}

size_t http1_outstanding(const struct http1_conn *c)
{
	return c->n_queued;
}

const char *http1_header_get(const struct http1_request *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (ascii_case_equal(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

const struct http1_request *http1_exchange_request(const struct http1_exchange *ex)
{
	return &ex->req;
}

struct http1_conn *http1_exchange_conn(const struct http1_exchange *ex)
{
	return ex->conn;
}

void http1_exchange_set_data(struct http1_exchange *ex, void *data)
{
	ex->data = data;
}

void *http1_exchange_data(const struct http1_exchange *ex)
{
	return ex->data;
}

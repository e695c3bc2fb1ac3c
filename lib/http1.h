/* HTTP/1.1 server side of one connection, as a state machine over bytes.
 *
 * It knows nothing of sockets or TLS: the caller feeds what it received and
 * sends what http1_output() hands it. Requests are parsed with http-parser
 * (the request head) and this module (bodies, strictly framed), delivered in
 * order through on_request, and answered in any order: responses leave in
 * request order (HTTP/1.1 pipelining).
 *
 * Everything a peer controls is bounded by struct http1_limits. A violation
 * makes http1_feed() return the HTTP status to answer with; the caller then
 * queues http1_error_response() (RFC 9457 problem+json) and closes once
 * http1_should_close() says the output went out.
 *
 * Typical driver:
 *
 *     on readable: if (http1_wants_read(c)) read into buf, then
 *                  st = http1_feed(c, buf, n, &used);
 *                  keep buf[used..n) for later if used < n;
 *                  if (st) http1_error_response(c, st);
 *     after feed, http1_respond, http1_output_consumed:
 *                  while (http1_output(c, &p, &len)) write, http1_output_consumed(c, written);
 *                  if (http1_should_close(c)) close;
 *                  if (http1_wants_read(c) && kept bytes) feed them again.
 *
 * Not thread-safe; one connection is used from one thread. Callbacks run
 * inside http1_feed(); from them the callee may call http1_respond(),
 * http1_error_response() and http1_shutdown(), but not http1_feed() or
 * http1_conn_free().
 */
#ifndef CERTWARD_HTTP1_H
#define CERTWARD_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A zero field takes the default shown. http-parser also stops any head
 * (request line and header section together) at 80 KiB, answered 431. */
struct http1_limits {
	/* Bytes of the request line, with its line ending and any empty lines
	 * before it (414). Default 8192. */
	size_t max_request_line;
	/* Bytes of the header section, from the first field to the end of the
	 * empty line (431); also the chunked trailer section. Default 16384. */
	size_t max_header_bytes;
	/* Header fields in a request (431). Default 64. */
	unsigned max_headers;
	/* Request content, by Content-Length or decoded chunks (413). Chunked
	 * framing (size lines, extensions, CRLFs) may take at most
	 * max_header_bytes + max_body bytes besides. Default 1 MiB. */
	size_t max_body;
	/* Requests delivered to on_request and not yet answered (or answered
	 * but held behind an earlier unanswered one) at which no new request is
	 * read. Default 16. */
	unsigned max_pipelined;
	/* Queued output (not yet drained, or held in order) at which no new
	 * request is read: a peer that does not read its responses cannot make
	 * the connection buffer more than this plus the responses to the
	 * requests already delivered. Default 1 MiB. */
	size_t max_output;
};

/* Name and value, NUL-terminated. In a request: names as received, values
 * without surrounding whitespace (obsolete line folding is kept as the
 * whitespace it contains). */
struct http1_header {
	const char *name;
	const char *value;
};

/* Valid from on_request until the exchange is answered (or the connection
 * freed). */
struct http1_request {
	uint64_t seq;             /* 0 for the connection's first request */
	const char *method;       /* "GET", "POST", ... */
	const char *target;       /* request-target as received */
	const char *path;         /* target's path, still percent-encoded; "*" for OPTIONS * */
	const char *query;        /* after '?', without it; "" when none */
	const struct http1_header *headers;
	size_t n_headers;
	const uint8_t *body;      /* decoded content; NULL when body_len is 0 */
	size_t body_len;
	unsigned short http_major, http_minor;
	bool keep_alive;          /* the connection stays open after this response */
};

struct http1_conn;
struct http1_exchange;        /* one request and its response */

struct http1_handler {
	/* One complete request, in order; possibly several in one feed. Answer
	 * now or later with http1_respond(). */
	void (*on_request)(struct http1_conn *c, struct http1_exchange *ex,
			   const struct http1_request *req, void *ud);
	/* Optional: http1_conn_free() is about to free an exchange that was
	 * delivered but not answered; whoever was going to answer it must
	 * forget it. */
	void (*on_abandon)(struct http1_conn *c, struct http1_exchange *ex, void *ud);
};

/* Fills every field with its default. */
void http1_limits_default(struct http1_limits *l);

/* limits may be NULL (all defaults). Returns NULL when out of memory. */
struct http1_conn *http1_conn_new(const struct http1_limits *limits,
				  const struct http1_handler *handler, void *ud);
/* Calls on_abandon for every unanswered exchange, then frees everything. */
void http1_conn_free(struct http1_conn *c);

/* Parses up to len bytes; *consumed says how many were used. Returns 0, or
 * the HTTP status to answer with (400, 413, 414, 417, 431, 500 out of
 * memory, 501, 505): no more input is taken, and the caller should queue
 * http1_error_response(c, status). The status is repeated by later calls.
 * *consumed < len with 0 returned means reading paused (see
 * http1_wants_read); feed the rest again when it is true. */
int http1_feed(struct http1_conn *c, const void *data, size_t len, size_t *consumed);

/* Between requests, false while max_pipelined requests are unanswered or
 * max_output bytes are queued (a request under way is always read to its
 * end: it is bounded, and a peer blocked sending it reads nothing). False
 * for good once the connection is closing (error, a request without
 * keep-alive, http1_error_response, http1_read_eof, http1_shutdown). */
bool http1_wants_read(const struct http1_conn *c);

/* The peer will send nothing more. A partly received request is dropped;
 * returns 400 in that case (for the access log), else 0. Requests already
 * delivered are still answered. */
int http1_read_eof(struct http1_conn *c);

/* Read no more requests: those delivered are answered, the last response
 * says "Connection: close" when it is serialized after this call, then
 * http1_should_close() turns true. A partly received request is dropped. */
void http1_shutdown(struct http1_conn *c);

/* Answers ex. Serialized at once; sent once every earlier request's response
 * is. Adds Date, Content-Length (except for 204 and 304) and Connection when
 * the connection closes after it (or "keep-alive" to an HTTP/1.0 client);
 * for HEAD, Content-Length is body_len but no body is sent. Returns 0 (ex is
 * no longer valid, nor its request), or, with ex still to be answered:
 *   -EINVAL  status outside 200..599; a header name that is not a token or
 *            is one this module writes (Content-Length, Transfer-Encoding,
 *            Connection, Date, Keep-Alive, Upgrade, Trailer); a value with
 *            CR, LF or another control character; content for 204 or 304;
 *   -ENOMEM  out of memory. */
int http1_respond(struct http1_exchange *ex, int status, const struct http1_header *headers,
		  size_t n_headers, const void *body, size_t body_len);

/* Queues a problem+json response (RFC 9457: type about:blank, title,
 * status) with "Connection: close" after every response already due, drops
 * any partly received request and reads nothing more. For the statuses
 * http1_feed returns, or e.g. 408 on a read timeout. Returns 0, -EINVAL
 * (status outside 400..599), -EALREADY (one is already queued) or -ENOMEM. */
int http1_error_response(struct http1_conn *c, int status);

/* Bytes ready to send, contiguous; false when there are none. */
bool http1_output(struct http1_conn *c, const uint8_t **p, size_t *len);
/* n bytes of what http1_output returned were sent. */
void http1_output_consumed(struct http1_conn *c, size_t n);

/* True once the connection is closing and everything due was handed out
 * by http1_output and consumed: close the transport now. */
bool http1_should_close(const struct http1_conn *c);

enum http1_read_state {
	HTTP1_IDLE,      /* between requests */
	HTTP1_HEAD,      /* a request line or header section is arriving */
	HTTP1_BODY,      /* request content is arriving */
	HTTP1_CLOSED,    /* nothing more is read */
};
/* For read timeouts: a slow head or body is the peer's doing; idle with
 * responses pending is not. */
enum http1_read_state http1_read_state(const struct http1_conn *c);
/* Requests delivered and not yet sent back in full order. */
size_t http1_outstanding(const struct http1_conn *c);

/* First header field named name (ASCII case-insensitive), or NULL. */
const char *http1_header_get(const struct http1_request *r, const char *name);

const struct http1_request *http1_exchange_request(const struct http1_exchange *ex);
struct http1_conn *http1_exchange_conn(const struct http1_exchange *ex);
void http1_exchange_set_data(struct http1_exchange *ex, void *data);
void *http1_exchange_data(const struct http1_exchange *ex);

#endif

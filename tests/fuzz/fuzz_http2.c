/* libFuzzer target: the api's HTTP/2 layer (workers/api/http2.c over
 * nghttp2) fed a client preface followed by arbitrary bytes, in chunks of
 * input-chosen sizes. The transport and the handlers are stand-ins: requests
 * are answered at once or held and answered after the next chunk (or
 * cancelled when their stream goes), so stream teardown with answers
 * pending is exercised. Sanitizers catch what the callbacks get wrong. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "handlers.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- stand-ins for the tls layer ---- */

struct tls_conn {
	bool closed;
	size_t sent;
};

int tls_conn_send(struct tls_conn *c, const void *p, size_t len)
{
	if (c->closed)
		return -1;
	c->sent += len;
	return 0;
}

void tls_conn_close(struct tls_conn *c, int graceful)
{
	c->closed = true;
}

void tls_conn_resume(struct tls_conn *c)
{
}

size_t tls_conn_queued(const struct tls_conn *c)
{
	return 0;
}

const char *tls_conn_peer(const struct tls_conn *c)
{
	return "fuzz";
}

int tls_conn_is_plain(const struct tls_conn *c)
{
	return 0;
}

const char *tls_conn_client_cert(const struct tls_conn *c)
{
	return NULL;
}

/* ---- stand-ins for http.c and the worker ---- */

static struct http1_limits limits;

struct worker *http_worker(void)
{
	return NULL;
}

uv_loop_t *worker_loop(struct worker *w)
{
	return uv_default_loop();
}

const struct http1_limits *http_limits(void)
{
	return &limits;
}

uint64_t http_request_timeout_ms(void)
{
	return 60000;
}

unsigned http_h2_max_streams(void)
{
	return 4;
}

void http_request_id(char id[17])
{
	memcpy(id, "0123456789abcdef", 17);
}

void http_request_done(const struct tls_conn *c, const char *proto, const char *method,
		       const char *path, const char *route, int status, size_t bytes, uint64_t t0_us,
		       const char *reqid)
{
	if (!method || !path || !reqid || status < 100 || status > 599)
		abort();
}

void http_framing_error(void)
{
}

uint64_t now_us(void)
{
	return 0;
}

/* ---- stand-in handlers: answer now, or hold until the next chunk ---- */

#define HELD_MAX 16

struct route_call {
	respond_fn respond;
	void *ctx;
	bool cancelled;
};

static struct route_call *held[HELD_MAX];
static size_t n_held;
static bool hold_next;

struct route_call *handle_request(struct worker *w, const struct api_request *req,
				     respond_fn respond, void *ctx)
{
	struct route_call *r;
	const char *path = req->path;

	if (!req->method || !path || path[0] == '\0' || !req->client || !req->reqid)
		abort();
	if (!hold_next || n_held == HELD_MAX || !(r = calloc(1, sizeof *r))) {
		respond(ctx, 200, "text/plain", NULL, 0, path, strlen(path));
		return NULL;
	}
	r->respond = respond;
	r->ctx = ctx;
	held[n_held++] = r;
	return r;
}

void respond_problem(respond_fn respond, void *ctx, int status, const char *title,
		     const char *detail, const char *field, const char *reqid)
{
	respond(ctx, status, "application/problem+json", NULL, 0, title, strlen(title));
}

void handler_cancel(struct route_call *r)
{
	if (r)
		r->cancelled = true;
}

static void answer_held(void)
{
	for (size_t i = 0; i < n_held; i++) {
		if (!held[i]->cancelled)
			held[i]->respond(held[i]->ctx, 503, "application/json", NULL, 0, "{}", 2);
		free(held[i]);
	}
	n_held = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the client preface, an empty SETTINGS, and one valid request on
	 * stream 1 (HEADERS, END_STREAM|END_HEADERS: GET https://x/a) so that
	 * every run starts with the request path covered */
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
				      "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
				      "\x00\x00\x09\x01\x05\x00\x00\x00\x01"
				      "\x82\x87\x04\x02/a\x01\x01x";
	struct tls_conn conn = {0};
	void *h;

	if (size < 1)
		return 0;
	http1_limits_default(&limits);
	limits.max_header_bytes = 1024 + (size_t)(data[0] & 0x0f) * 512;
	limits.max_request_line = 256 + (size_t)(data[0] >> 4) * 64;
	limits.max_body = 4096;
	h = h2_open(&conn);
	if (!h)
		return 0;
	h2_data(&conn, h, (const uint8_t *)preface, sizeof preface - 1);
	data++;
	size--;
	while (size > 0 && !conn.closed) {
		/* a chunk header byte: low 7 bits size, high bit holds answers */
		size_t n = (size_t)(data[0] & 0x7f) + 1;

		hold_next = data[0] & 0x80;
		data++;
		size--;
		if (n > size)
			n = size;
		if (n && h2_wants_read(&conn, h))
			h2_data(&conn, h, data, n);
		answer_held();
		h2_drained(&conn, h);
		data += n;
		size -= n;
	}
	h2_close(&conn, h);
	answer_held();
	uv_run(uv_default_loop(), UV_RUN_NOWAIT);
	return 0;
}

/* HTTP/2 on the api's TLS connections (ALPN "h2"), framed by nghttp2.
 *
 * nghttp2 checks the protocol (frames, HPACK, pseudo-headers, flow control,
 * stream states) and answers violations itself; this file applies our
 * limits on top (header bytes and count, :path length, body size,
 * concurrent streams, time to send a request) and hands complete requests
 * to the same handlers as HTTP/1.1. Output goes through nghttp2_session_mem_send
 * into the tls layer, never more than OUT_HIGH bytes ahead of the socket. */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "log.h"

#define OUT_HIGH (256u * 1024u)
#define PATH_LOG 128

struct h2conn;

struct h2stream {
	struct h2conn *hc;
	struct h2stream *prev, *next;
	int32_t id;
	char method[16];
	char path[PATH_LOG];
	char *full_path; /* :path as received, up to max_request_line */
	char *authorization, *content_type, *if_none_match;
	size_t header_bytes;
	unsigned nheaders;
	int error;       /* status to answer instead of handling (413, 414, 431) */
	int receiving;   /* the request is still arriving */
	size_t body_len;
	uint8_t *body; /* the request content, up to max_body */
	struct route_call *reply;
	const char *route; /* the router's label */
	int answered;
	uint64_t t0;
	char reqid[17];
	/* the response body, read by nghttp2 */
	char *resp;
	size_t resp_len, resp_off;
};

struct h2conn {
	int kind; /* HTTP_CONN_H2 */
	struct tls_conn *tc;
	nghttp2_session *s;
	struct h2stream *streams;
	unsigned receiving;
	uv_timer_t request_timer;
	int in_recv;
	int dead;
};

static void pump(struct h2conn *hc);

static void stream_free(struct h2stream *st)
{
	struct h2conn *hc = st->hc;

	if (st->reply && !st->answered)
		handler_cancel(st->reply);
	if (st->receiving && hc->receiving)
		hc->receiving--;
	if (st->prev)
		st->prev->next = st->next;
	else
		hc->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	free(st->full_path);
	free(st->authorization);
	free(st->content_type);
	free(st->if_none_match);
	free(st->body);
	free(st->resp);
	free(st);
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct h2stream *st = src->ptr;
	size_t n = st->resp_len - st->resp_off;

	if (n > len)
		n = len;
	if (n)
		memcpy(buf, st->resp + st->resp_off, n);
	st->resp_off += n;
	if (st->resp_off == st->resp_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void respond(void *arg, int status, const char *content_type, const struct api_header *headers,
		    size_t n_headers, const char *body, size_t len)
{
	struct h2stream *st = arg;
	struct h2conn *hc = st->hc;
	char code[8], clen[24];
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
	int head = strcmp(st->method, "HEAD") == 0;

	st->answered = 1;
	st->reply = NULL;
	snprintf(code, sizeof code, "%d", status);
	snprintf(clen, sizeof clen, "%zu", len);
	{
		char names[API_HEADERS_MAX][32];
		nghttp2_nv nv[4 + API_HEADERS_MAX] = {
			{(uint8_t *)":status", (uint8_t *)code, 7, strlen(code), NGHTTP2_NV_FLAG_NONE},
			{(uint8_t *)"content-type", (uint8_t *)content_type, 12, strlen(content_type),
			 NGHTTP2_NV_FLAG_NONE},
			{(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), NGHTTP2_NV_FLAG_NONE},
			{(uint8_t *)"x-request-id", (uint8_t *)st->reqid, 12, strlen(st->reqid),
			 NGHTTP2_NV_FLAG_NONE},
		};
		size_t nnv = 4;

		/* HTTP/2 field names are lower case (RFC 9113 8.2.1) */
		for (size_t i = 0; i < n_headers && i < API_HEADERS_MAX; i++) {
			size_t k = 0;

			for (; headers[i].name[k] && k < sizeof names[i] - 1; k++)
				names[i][k] = (char)tolower((unsigned char)headers[i].name[k]);
			names[i][k] = '\0';
			nv[nnv++] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)headers[i].value, k,
						 strlen(headers[i].value), NGHTTP2_NV_FLAG_NONE};
		}

		if (len && !head) {
			st->resp = malloc(len);
			if (st->resp) {
				memcpy(st->resp, body, len);
				st->resp_len = len;
			}
		}
		if (nghttp2_submit_response(hc->s, st->id, nv, nnv,
					    st->resp_len ? &prd : NULL) != 0)
			nghttp2_submit_rst_stream(hc->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
	}
	http_request_done(hc->tc, "h2", st->method, st->full_path ? st->full_path : st->path, st->route,
			  status, len, st->t0, st->reqid);
	if (!hc->in_recv)
		pump(hc);
}

static void problem(struct h2stream *st, int status, const char *title)
{
	respond_problem(respond, st, status, title, NULL, NULL, st->reqid);
}

static void request_complete(struct h2stream *st)
{
	struct h2conn *hc = st->hc;
	char *q;

	st->receiving = 0;
	if (hc->receiving && --hc->receiving == 0)
		uv_timer_stop(&hc->request_timer);
	if (st->error) {
		problem(st, st->error, st->error == 413   ? "Content Too Large"
				       : st->error == 414 ? "URI Too Long"
				       : st->error == 431 ? "Request Header Fields Too Large"
							  : "Bad Request");
		return;
	}
	if (!st->full_path || !*st->method) {
		problem(st, 400, "Bad Request");
		return;
	}
	if ((q = strchr(st->full_path, '?')))
		*q++ = '\0';
	{
		struct api_request ar = {
			.method = st->method,
			.path = st->full_path,
			.query = q ? q : "",
			.authorization = st->authorization,
			.content_type = st->content_type,
			.if_none_match = st->if_none_match,
			.body = st->body,
			.body_len = st->body_len,
			.client = tls_conn_peer(hc->tc),
			.client_cert = tls_conn_client_cert(hc->tc),
			.reqid = st->reqid,
			.route_label = &st->route,
		};

		st->reply = handle_request(http_worker(), &ar, respond, st);
	}
	if (st->answered)
		st->reply = NULL;
}

static void on_request_timeout(uv_timer_t *t)
{
	struct h2conn *hc = t->data;

	/* a stream's request has been arriving for request_timeout: the peer
	 * trickles it; the whole connection goes */
	http_framing_error();
	http_request_done(hc->tc, "h2", "-", "-", NULL, 408, 0, now_us(), NULL);
	nghttp2_session_terminate_session(hc->s, NGHTTP2_NO_ERROR);
	pump(hc); /* sends the GOAWAY, then closes */
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2conn *hc = ud;
	struct h2stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (!(st = calloc(1, sizeof *st)))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	st->hc = hc;
	st->id = f->hd.stream_id;
	st->t0 = now_us();
	st->receiving = 1;
	http_request_id(st->reqid);
	snprintf(st->path, sizeof st->path, "-");
	st->next = hc->streams;
	if (hc->streams)
		hc->streams->prev = st;
	hc->streams = st;
	if (hc->receiving++ == 0)
		uv_timer_start(&hc->request_timer, on_request_timeout, http_request_timeout_ms(), 0);
	nghttp2_session_set_stream_user_data(s, st->id, st);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	const struct http1_limits *l = http_limits();

	if (!st || f->hd.type != NGHTTP2_HEADERS)
		return 0; /* trailers are not read */
	st->nheaders++;
	/* RFC 9113 6.5.2 counts 32 bytes of overhead per field */
	st->header_bytes += nlen + vlen + 32;
	if (st->nheaders > l->max_headers || st->header_bytes > l->max_header_bytes) {
		if (!st->error)
			st->error = 431;
		return 0;
	}
	if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
		if (vlen >= sizeof st->method) {
			st->error = 400;
			return 0;
		}
		memcpy(st->method, value, vlen);
		st->method[vlen] = '\0';
	} else if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
		snprintf(st->path, sizeof st->path, "%.*s", (int)vlen, (const char *)value);
		if (vlen > l->max_request_line) {
			if (!st->error)
				st->error = 414;
			return 0;
		}
		free(st->full_path);
		if (!(st->full_path = strndup((const char *)value, vlen)))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	} else if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
		/* a body announced over the limit is refused at once, as HTTP/1.1
		 * does, rather than after it has all arrived (nghttp2 checks
		 * that the DATA frames match the announced length) */
		unsigned long long n = 0;
		size_t i;

		for (i = 0; i < vlen && i < 20 && value[i] >= '0' && value[i] <= '9'; i++)
			n = n * 10 + (value[i] - '0');
		if (vlen > 0 && (i == 20 || n > l->max_body) && !st->error)
			st->error = 413;
	} else if (nlen == 13 && memcmp(name, "authorization", 13) == 0 && !st->authorization) {
		/* bounded by max_header_bytes above */
		if (!(st->authorization = strndup((const char *)value, vlen)))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	} else if (nlen == 12 && memcmp(name, "content-type", 12) == 0 && !st->content_type) {
		if (!(st->content_type = strndup((const char *)value, vlen)))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	} else if (nlen == 13 && memcmp(name, "if-none-match", 13) == 0 && !st->if_none_match) {
		if (!(st->if_none_match = strndup((const char *)value, vlen)))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *ud)
{
	struct h2stream *st = nghttp2_session_get_stream_user_data(s, id);

	if (!st)
		return 0;
	if (st->error)
		return 0; /* answered with the error; the rest is not kept */
	if (st->body_len + len > http_limits()->max_body) {
		st->error = 413;
		free(st->body);
		st->body = NULL;
		return 0;
	}
	{
		uint8_t *b = realloc(st->body, st->body_len + len);

		if (!b)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		memcpy(b + st->body_len, data, len);
		st->body = b;
		st->body_len += len;
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct h2stream *st;

	st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	/* too large a body announced: answered now; the DATA that follows is
	 * dropped, and nghttp2 resets the stream once the answer is out */
	if (f->hd.type == NGHTTP2_HEADERS && st && st->receiving && st->error == 413) {
		request_complete(st);
		return 0;
	}
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	if (st && st->receiving)
		request_complete(st);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct h2stream *st = nghttp2_session_get_stream_user_data(s, id);

	if (st) {
		nghttp2_session_set_stream_user_data(s, id, NULL);
		stream_free(st);
	}
	return 0;
}

/* ---- driving the session ---- */

static void pump(struct h2conn *hc)
{
	if (hc->dead)
		return;
	while (tls_conn_queued(hc->tc) < OUT_HIGH) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(hc->s, &p);

		if (n < 0) {
			hc->dead = 1;
			tls_conn_close(hc->tc, 0);
			return;
		}
		if (n == 0)
			break;
		if (tls_conn_send(hc->tc, p, (size_t)n) != 0)
			return; /* closing */
	}
	if (!nghttp2_session_want_read(hc->s) && !nghttp2_session_want_write(hc->s)) {
		hc->dead = 1;
		tls_conn_close(hc->tc, 1); /* once the queued output is written */
	}
	/* writes what was queued (from a timer, nothing else would) */
	tls_conn_resume(hc->tc);
}

void h2_data(struct tls_conn *tc, void *state, const uint8_t *p, size_t len)
{
	struct h2conn *hc = state;
	ssize_t n;

	if (hc->dead)
		return;
	hc->in_recv = 1;
	n = nghttp2_session_mem_recv(hc->s, p, len);
	hc->in_recv = 0;
	if (n < 0) {
		/* a connection error nghttp2 could not answer with GOAWAY itself */
		http_framing_error();
		hc->dead = 1;
		tls_conn_close(tc, 0);
		return;
	}
	pump(hc);
}

int h2_wants_read(struct tls_conn *tc, void *state)
{
	struct h2conn *hc = state;

	return !hc->dead && nghttp2_session_want_read(hc->s) && tls_conn_queued(tc) < OUT_HIGH;
}

void h2_drained(struct tls_conn *tc, void *state)
{
	struct h2conn *hc = state;

	if (!hc->dead && nghttp2_session_want_write(hc->s))
		pump(hc);
}

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void h2_close(struct tls_conn *tc, void *state)
{
	struct h2conn *hc = state;

	nghttp2_session_del(hc->s);
	hc->s = NULL;
	/* streams still open are cancelled: their handlers must not answer */
	while (hc->streams)
		stream_free(hc->streams);
	uv_timer_stop(&hc->request_timer);
	uv_close((uv_handle_t *)&hc->request_timer, timer_closed);
}

void *h2_open(struct tls_conn *tc)
{
	struct h2conn *hc = calloc(1, sizeof *hc);
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	const struct http1_limits *l = http_limits();
	nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, http_h2_max_streams()},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)l->max_header_bytes},
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	int rc;

	if (!hc)
		return NULL;
	hc->kind = HTTP_CONN_H2;
	hc->tc = tc;
	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		free(hc);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	/* bounded bookkeeping of what a peer can make us keep */
	nghttp2_option_set_max_settings(opt, 32);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_continuations(opt, 8);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 100);
	rc = nghttp2_session_server_new2(&hc->s, cb, hc, opt);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (rc != 0 ||
	    nghttp2_submit_settings(hc->s, NGHTTP2_FLAG_NONE, settings,
				    sizeof settings / sizeof settings[0]) != 0) {
		nghttp2_session_del(hc->s);
		free(hc);
		return NULL;
	}
	uv_timer_init(worker_loop(http_worker()), &hc->request_timer);
	hc->request_timer.data = hc;
	pump(hc);
	return hc;
}

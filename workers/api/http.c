/* HTTP/1.1 over the api's connections (lib/http1 does the framing), the
 * choice between HTTP/1.1 and HTTP/2 by ALPN, and what both share: limits,
 * request ids, one access-log line and the metrics of every request. */
#include "http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "handlers.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"

/* bytes received while the HTTP layer pauses (pipelining backpressure) */
#define PENDING_MAX (256u * 1024u)

struct http_service {
	struct worker *w;
	struct http1_limits limits;
	uint64_t request_timeout_ms;
	unsigned h2_max_streams;
	uint64_t errors_framing;
};

static struct http_service *service; /* one per process */

struct hconn {
	int kind; /* HTTP_CONN_H1 */
	struct tls_conn *tc;
	struct http1_conn *h;
	/* runs while a request is arriving: a client that trickles its request
	 * (slowloris) gets 408 however often it sends a byte */
	uv_timer_t request_timer;
	int timing;
	uint8_t *pending;
	size_t pending_len;
	int in_feed;
};

struct exchange {
	struct hconn *hc;
	struct http1_exchange *ex;
	struct route_call *reply;
	const char *route; /* the router's label */
	uint64_t t0;
	char method[16];
	char path[128];
	char reqid[17];
};

static void pump(struct hconn *hc)
{
	const uint8_t *p;
	size_t len;

	while (http1_output(hc->h, &p, &len)) {
		if (tls_conn_send(hc->tc, p, len) != 0)
			return; /* the connection is closing */
		http1_output_consumed(hc->h, len);
	}
	if (http1_should_close(hc->h))
		tls_conn_close(hc->tc, 1);
	/* flushes what was queued (and closes after it, when asked to) */
	tls_conn_resume(hc->tc);
}

/* Methods by name in metrics; anything else is "other", so a client cannot
 * grow the label set. */
static const char *method_label(const char *m)
{
	static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(m, known[i]) == 0)
			return known[i];
	return "other";
}

void http_request_done(const struct tls_conn *c, const char *proto, const char *method,
		       const char *path, const char *route, int status, size_t bytes, uint64_t t0_us,
		       const char *reqid)
{
	char kv[600], qpath[300], labels[METRICS_LABELS_MAX], st[8];
	uint64_t dur = now_us() - t0_us;
	if (!route)
		route = strcmp(path, "-") == 0 ? "-" : handler_route(path);
	struct metrics *m = worker_metrics(service->w);

	log_quote(qpath, sizeof qpath, path, strlen(path));
	snprintf(kv, sizeof kv, "proto=%s method=%s path=%s status=%d bytes=%zu duration_us=%" PRIu64
		 " client=%s", proto, method, qpath, status, bytes, dur, tls_conn_peer(c));
	log_event(LOG_INFO, reqid, kv, "request");
	snprintf(st, sizeof st, "%d", status);
	metrics_add(m, "http_requests_total",
		    metrics_labels(labels, sizeof labels, "route", route, "method", method_label(method),
				   "status", st, NULL), 1);
	metrics_observe(m, "http_request_duration_seconds",
			metrics_labels(labels, sizeof labels, "route", route, "method",
				       method_label(method), NULL),
			(double)dur / 1e6);
}

void http_framing_error(void)
{
	service->errors_framing++;
}

void http_request_id(char id[17])
{
	uint8_t rnd[8];

	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		memset(rnd, 0, sizeof rnd);
	hex_encode(rnd, sizeof rnd, id);
}

struct worker *http_worker(void)
{
	return service->w;
}

const struct http1_limits *http_limits(void)
{
	return &service->limits;
}

uint64_t http_request_timeout_ms(void)
{
	return service->request_timeout_ms;
}

unsigned http_h2_max_streams(void)
{
	return service->h2_max_streams;
}

static const char *h1_proto(const struct hconn *hc)
{
	return tls_conn_is_plain(hc->tc) ? "plain" : "h1";
}

static void respond(void *arg, int status, const char *content_type, const struct api_header *headers,
		    size_t n_headers, const char *body, size_t len)
{
	struct exchange *x = arg;
	struct hconn *hc = x->hc;
	struct http1_header h[2 + API_HEADERS_MAX] = {{"Content-Type", content_type}, {"X-Request-Id", x->reqid}};
	size_t n = 2;

	for (size_t i = 0; i < n_headers && i < API_HEADERS_MAX; i++)
		h[n++] = (struct http1_header){headers[i].name, headers[i].value};
	if (http1_respond(x->ex, status, h, n, body, len) != 0)
		http1_respond(x->ex, 500, NULL, 0, NULL, 0);
	http_request_done(hc->tc, h1_proto(hc), x->method, x->path, x->route, status, len, x->t0, x->reqid);
	free(x);
	if (!hc->in_feed)
		pump(hc);
}

static void on_request(struct http1_conn *c, struct http1_exchange *ex,
		       const struct http1_request *req, void *ud)
{
	struct hconn *hc = ud;
	struct exchange *x = calloc(1, sizeof *x);

	if (!x) {
		http1_respond(ex, 503, NULL, 0, NULL, 0);
		return;
	}
	x->hc = hc;
	x->ex = ex;
	x->t0 = now_us();
	http_request_id(x->reqid);
	snprintf(x->method, sizeof x->method, "%s", req->method);
	snprintf(x->path, sizeof x->path, "%s", req->path);
	http1_exchange_set_data(ex, x);
	/* respond() may run before this returns (and free x) */
	{
		struct api_request ar = {
			.plain = tls_conn_is_plain(hc->tc),
			.method = req->method,
			.path = req->path,
			.query = req->query,
			.authorization = http1_header_get(req, "Authorization"),
			.content_type = http1_header_get(req, "Content-Type"),
			.if_none_match = http1_header_get(req, "If-None-Match"),
			.body = req->body,
			.body_len = req->body_len,
			.client = tls_conn_peer(hc->tc),
			.client_cert = tls_conn_client_cert(hc->tc),
			.reqid = x->reqid,
			.route_label = &x->route,
		};
		struct route_call *r = handle_request(service->w, &ar, respond, x);

		if (r)
			x->reply = r;
	}
}

static void on_abandon(struct http1_conn *c, struct http1_exchange *ex, void *ud)
{
	struct exchange *x = http1_exchange_data(ex);

	if (x) {
		handler_cancel(x->reply);
		free(x);
	}
}

static const struct http1_handler handler = {
	.on_request = on_request,
	.on_abandon = on_abandon,
};

static void on_request_timeout(uv_timer_t *t)
{
	struct hconn *hc = t->data;

	hc->timing = 0;
	if (!hc->h)
		return;
	service->errors_framing++;
	if (http1_error_response(hc->h, 408) == 0)
		http_request_done(hc->tc, h1_proto(hc), "-", "-", NULL, 408, 0, now_us(), NULL);
	hc->pending_len = 0;
	pump(hc);
}

/* Starts the clock when a request begins to arrive, stops it between requests. */
static void watch_request(struct hconn *hc)
{
	enum http1_read_state st = http1_read_state(hc->h);

	if ((st == HTTP1_HEAD || st == HTTP1_BODY) && !hc->timing) {
		hc->timing = 1;
		uv_timer_start(&hc->request_timer, on_request_timeout, service->request_timeout_ms, 0);
	} else if (st != HTTP1_HEAD && st != HTTP1_BODY && hc->timing) {
		hc->timing = 0;
		uv_timer_stop(&hc->request_timer);
	}
}

static void feed(struct hconn *hc)
{
	size_t used = 0;
	int rc;

	if (!hc->pending_len || !http1_wants_read(hc->h))
		return;
	hc->in_feed = 1;
	rc = http1_feed(hc->h, hc->pending, hc->pending_len, &used);
	hc->in_feed = 0;
	memmove(hc->pending, hc->pending + used, hc->pending_len - used);
	hc->pending_len -= used;
	if (rc != 0) {
		service->errors_framing++;
		http1_error_response(hc->h, rc);
		http_request_done(hc->tc, h1_proto(hc), "-", "-", NULL, rc, 0, now_us(), NULL);
		hc->pending_len = 0;
	}
}

static void hconn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void *app_open(struct tls_conn *tc, const char *alpn)
{
	struct hconn *hc;

	if (strcmp(alpn, "h2") == 0)
		return h2_open(tc);
	if (!(hc = calloc(1, sizeof *hc)))
		return NULL;
	hc->kind = HTTP_CONN_H1;
	hc->tc = tc;
	uv_timer_init(worker_loop(service->w), &hc->request_timer);
	hc->request_timer.data = hc;
	hc->h = http1_conn_new(&service->limits, &handler, hc);
	hc->pending = malloc(PENDING_MAX);
	if (!hc->h || !hc->pending) {
		if (hc->h)
			http1_conn_free(hc->h);
		hc->h = NULL;
		free(hc->pending);
		uv_close((uv_handle_t *)&hc->request_timer, hconn_closed);
		return NULL;
	}
	return hc;
}

static void app_data(struct tls_conn *tc, void *state, const uint8_t *p, size_t len)
{
	struct hconn *hc = state;

	if (hc->kind == HTTP_CONN_H2) {
		h2_data(tc, state, p, len);
		return;
	}
	if (len > PENDING_MAX - hc->pending_len) {
		/* the tls layer stops reading when we do not want input, so this is a
		 * peer pushing past every bound */
		tls_conn_close(tc, 0);
		return;
	}
	memcpy(hc->pending + hc->pending_len, p, len);
	hc->pending_len += len;
	feed(hc);
	watch_request(hc);
	pump(hc);
}

static int app_wants_read(struct tls_conn *tc, void *state)
{
	struct hconn *hc = state;

	if (hc->kind == HTTP_CONN_H2)
		return h2_wants_read(tc, state);
	return http1_wants_read(hc->h) && hc->pending_len < PENDING_MAX / 2;
}

static void app_drained(struct tls_conn *tc, void *state)
{
	struct hconn *hc = state;

	if (hc->kind == HTTP_CONN_H2) {
		h2_drained(tc, state);
		return;
	}
	/* answers went out: the parser may take the input it paused on */
	if (hc->pending_len && http1_wants_read(hc->h)) {
		feed(hc);
		watch_request(hc);
		pump(hc);
	}
}

static void app_close(struct tls_conn *tc, void *state)
{
	struct hconn *hc = state;

	if (hc->kind == HTTP_CONN_H2) {
		h2_close(tc, state);
		return;
	}
	http1_conn_free(hc->h);
	hc->h = NULL;
	free(hc->pending);
	uv_timer_stop(&hc->request_timer);
	uv_close((uv_handle_t *)&hc->request_timer, hconn_closed);
}

static const struct tls_app app = {
	.open = app_open,
	.data = app_data,
	.wants_read = app_wants_read,
	.drained = app_drained,
	.close = app_close,
};

const struct tls_app *http_tls_app(void)
{
	return &app;
}

struct http_service *http_service_new(struct worker *w, const struct cfg *section)
{
	struct http_service *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->w = w;
	h->request_timeout_ms = cfg_duration_ms(section, "api", "request_timeout");
	h->h2_max_streams = (unsigned)cfg_int(section, "api", "h2_max_streams");
	http1_limits_default(&h->limits);
	h->limits.max_request_line = (size_t)cfg_size(section, "api", "max_request_line");
	h->limits.max_header_bytes = (size_t)cfg_size(section, "api", "max_header_bytes");
	h->limits.max_headers = (unsigned)cfg_int(section, "api", "max_headers");
	h->limits.max_body = (size_t)cfg_size(section, "api", "max_body");
	service = h;
	return h;
}

void http_service_free(struct http_service *h)
{
	if (service == h)
		service = NULL;
	free(h);
}

void http_service_metrics(const struct http_service *h, struct strbuf *out)
{
	strbuf_printf(out, "http_framing_errors_total %llu\n", (unsigned long long)h->errors_framing);
}

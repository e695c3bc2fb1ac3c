/* HTTP over the api's connections: HTTP/1.1 (lib/http1) and HTTP/2
 * (nghttp2, http2.c) feed the same handlers; every request ends in one
 * access-log line and the per-route metrics. */
#ifndef CERTWARD_API_HTTP_H
#define CERTWARD_API_HTTP_H

#include <stdbool.h>

#include "config.h"
#include "http1.h"
#include "tls_server.h"
#include "util.h"
#include "worker.h"

struct http_service;

/* the first member of every connection state the tls layer hands back */
#define HTTP_CONN_H1 1
#define HTTP_CONN_H2 2

struct http_service *http_service_new(struct worker *w, const struct cfg *section);
void http_service_free(struct http_service *h);
void http_service_metrics(const struct http_service *h, struct strbuf *out);
const struct tls_app *http_tls_app(void);

/* Shared by the HTTP/1.1 and HTTP/2 sides. */
struct worker *http_worker(void);
const struct http1_limits *http_limits(void);
uint64_t http_request_timeout_ms(void);
unsigned http_h2_max_streams(void);
/* A fresh request id (16 hex digits) into id[17]. */
void http_request_id(char id[17]);
/* The access-log line and the metrics of one answered request. proto is
 * "h1", "h2" or "plain"; method and path may be "-" for framing errors;
 * route is the label the router gave (NULL: worked out from path). */
void http_request_done(const struct tls_conn *c, const char *proto, const char *method,
		       const char *path, const char *route, int status, size_t bytes, uint64_t t0_us,
		       const char *reqid);
void http_framing_error(void);

/* HTTP/2 connections (http2.c) */
void *h2_open(struct tls_conn *tc);
void h2_data(struct tls_conn *tc, void *state, const uint8_t *p, size_t len);
int h2_wants_read(struct tls_conn *tc, void *state);
void h2_drained(struct tls_conn *tc, void *state);
void h2_close(struct tls_conn *tc, void *state);

#endif

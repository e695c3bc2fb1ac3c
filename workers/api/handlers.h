/* The api's built-in endpoints and the request/answer types of every route, independent of the HTTP framing:
 * a request comes in as method + path, the answer goes out through
 * `respond` (possibly later, after IPC round trips). */
#ifndef CERTWARD_API_HANDLERS_H
#define CERTWARD_API_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker.h"

struct route_call;

/* What the handlers see of a request, valid during handle_request(). */
struct api_request {
	bool plain;                /* came on the plain-HTTP listener */
	const char *method;
	const char *path;          /* without the query */
	const char *query;         /* after '?', without it; "" when none */
	const char *authorization; /* the Authorization header, or NULL */
	const char *content_type;  /* the Content-Type header, or NULL */
	const char *if_none_match; /* the If-None-Match header, or NULL */
	const char *client;        /* the peer's address */
	const char *client_cert;   /* SHA-256 (hex) of the TLS client certificate, verified
				    * against the agent identity CA; NULL when none */
	const char *reqid;         /* the request id (X-Request-Id) */
	const uint8_t *body;       /* the request content, NULL when none */
	size_t body_len;
	const char **route_label;  /* out, when not NULL: set before any answer to the
				    * route's pattern (handler_route()), for metrics */
};

/* A response header besides Content-Type, Content-Length and X-Request-Id
 * (which the HTTP layer writes itself): ETag, Cache-Control, ... */
struct api_header {
	const char *name;  /* as HTTP/1.1 spells it ("ETag"); HTTP/2 lower-cases it */
	const char *value; /* printable ASCII, no CR or LF */
};

#define API_HEADERS_MAX 6

typedef void (*respond_fn)(void *ctx, int status, const char *content_type, const struct api_header *headers,
			   size_t n_headers, const char *body, size_t len);

/* Routes the request (routes.h) and answers through `respond` exactly
 * once, unless handler_cancel() was called first. Returns a handle for
 * cancelling, or NULL when the answer was given already. */
struct route_call *handle_request(struct worker *w, const struct api_request *req,
				  respond_fn respond, void *ctx);
/* An RFC 9457 problem+json answer that also carries the reference API's
 * ErrorResponse members (error, request_id); detail and field may be NULL. */
void respond_problem(respond_fn respond, void *ctx, int status, const char *title,
		     const char *detail, const char *field, const char *reqid);
/* The connection went away: do not call respond. */
void handler_cancel(struct route_call *c);
/* The route label used in metrics and the access log: the pattern of the
 * first route matching path ("/api/v1/teams/{id}"), or "other". */
const char *handler_route(const char *path);
/* Registers the built-in routes: /health, /ready, /metrics,
 * /api/v1/auth/info, /api/v1/auth/check, /api/v1/version. */
void handlers_routes_init(void);

#endif

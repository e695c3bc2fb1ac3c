/* The api's built-in endpoints, independent of the HTTP framing:
 * a request comes in as method + path, the answer goes out through
 * `respond` (possibly later, after IPC round trips). */
#ifndef CERTWARD_API_HANDLERS_H
#define CERTWARD_API_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker.h"

struct handler_reply;

/* What the handlers see of a request, valid during handle_request(). */
struct api_request {
	bool plain;                /* came on the plain-HTTP listener */
	const char *method;
	const char *path;          /* without the query */
	const char *query;         /* after '?', without it; "" when none */
	const char *authorization; /* the Authorization header, or NULL */
	const char *client;        /* the peer's address */
	const char *reqid;         /* the request id (X-Request-Id) */
	const uint8_t *body;       /* the request content, NULL when none */
	size_t body_len;
};

typedef void (*respond_fn)(void *ctx, int status, const char *content_type, const char *body,
			   size_t len);

/* Dispatches GET /health, /ready, /metrics, /api/v1/auth/info and
 * /api/v1/auth/check (API key); other paths get 404, other methods on known
 * paths 405. On the plain-HTTP listener only the paths that must work
 * without TLS are served; the rest get 404. `respond` is called exactly
 * once, unless handler_cancel() was called first. Returns a handle for
 * cancelling, or NULL when the answer was given already. */
struct handler_reply *handle_request(struct worker *w, const struct api_request *req,
				     respond_fn respond, void *ctx);
/* An RFC 9457 problem+json answer that also carries the reference API's
 * ErrorResponse members (error, request_id); detail and field may be NULL. */
void respond_problem(respond_fn respond, void *ctx, int status, const char *title,
		     const char *detail, const char *field, const char *reqid);
/* The connection went away: do not call respond. */
void handler_cancel(struct handler_reply *r);
/* The route label used in metrics and the access log ("/health", ..., "other"). */
const char *handler_route(const char *path);

#endif

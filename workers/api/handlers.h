/* The api's built-in endpoints, independent of the HTTP framing:
 * a request comes in as method + path, the answer goes out through
 * `respond` (possibly later, after IPC round trips). */
#ifndef CERTWARD_API_HANDLERS_H
#define CERTWARD_API_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>

#include "worker.h"

struct handler_reply;
typedef void (*respond_fn)(void *ctx, int status, const char *content_type, const char *body,
			   size_t len);

/* Dispatches GET /health, /ready, /metrics; other paths get 404, other
 * methods on known paths 405. On the plain-HTTP listener (plain) only the
 * paths that must work without TLS are served; the rest get 404.
 * `respond` is called exactly once, unless handler_cancel() was called
 * first. Returns a handle for cancelling. */
struct handler_reply *handle_request(struct worker *w, bool plain, const char *method,
				     const char *path, respond_fn respond, void *ctx);
/* The connection went away: do not call respond. */
void handler_cancel(struct handler_reply *r);
/* The route label used in metrics and the access log ("/health", ..., "other"). */
const char *handler_route(const char *path);

#endif

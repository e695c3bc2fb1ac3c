/*
 * The REST resources of /api/v1 (lib/resource.h): authentication, the
 * role check, the request's checks against the catalogue, one call of the
 * resource's store operation, and the mapping of its outcome to HTTP
 * (docs/api.md).
 *
 *   GET    /api/v1/R            list (page, per_page, sort, filters)
 *   POST   /api/v1/R            create                     201
 *   GET    /api/v1/R/{id}       get                        200 / 404
 *   PUT    /api/v1/R/{id}       update (fields sent)       200 / 404
 *   DELETE /api/v1/R/{id}       delete                     204 / 404
 */
#ifndef CERTWARD_API_REST_H
#define CERTWARD_API_REST_H

#include "handlers.h"
#include "worker.h"

struct rest_call;

/* Whether path belongs to a REST resource (for routing and metrics: the
 * route label is written to route, e.g. "/api/v1/teams/{id}"). */
bool rest_route(const char *path, char *route, size_t route_len);

/* Answers through respond exactly once, unless rest_cancel() comes first.
 * Returns NULL when it answered already. */
struct rest_call *rest_request(struct worker *w, const struct api_request *req, respond_fn respond,
			       void *ctx);
void rest_cancel(struct rest_call *c);

#endif

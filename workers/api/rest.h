/*
 * The REST resources of /api/v1 (lib/resource.h): the request's checks
 * against the catalogue, one call of the resource's store operation, and
 * the mapping of its outcome to HTTP (docs/api.md). Authentication and the
 * role check are the router's (routes.h).
 *
 *   GET    /api/v1/R            list (page, per_page, sort, filters)
 *   POST   /api/v1/R            create                     201
 *   GET    /api/v1/R/{id}       get                        200 / 404
 *   PUT    /api/v1/R/{id}       update (fields sent)       200 / 404
 *   DELETE /api/v1/R/{id}       delete                     204 / 404
 */
#ifndef CERTWARD_API_REST_H
#define CERTWARD_API_REST_H

#include <stdbool.h>

#include "routes.h"
#include "store_client.h"

/* Answers a failed store call: uniqueness 409, a dangling reference 422
 * (409 when deleting: other records refer to this one, naming their
 * table), other constraint and value errors 400, no database 503, else
 * 500 with `what` (the operation) and the store's message logged. */
void rest_store_failed(struct route_call *rc, const struct store_outcome *o, bool deleting, const char *what);

/* Adds the routes of every resource of the catalogue to the route table. */
void rest_routes_init(void);

#endif

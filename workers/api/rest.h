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

/* Adds the routes of every resource of the catalogue to the route table. */
void rest_routes_init(void);

#endif

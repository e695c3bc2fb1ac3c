/*
 * The api's routes: one table of method, path pattern, the roles that may
 * call it, and the handler. Matching, authentication and the role check
 * happen here, once, before a handler runs; a handler sees an
 * authenticated caller whose role the route allows, the path's {params}
 * percent-decoded, and a copy of the request that lives until it answers.
 *
 * Adding a route: a row in `fixed_routes` (routes.c) naming the handler;
 * the REST resources of schema/resources.json get their rows from the
 * catalogue at start (rest.c). `certward-api --list-routes` prints the
 * table; tests/integration/test_openapi.py compares it with
 * schema/openapi.yaml.
 *
 * A handler answers exactly once, through route_respond() or
 * route_problem(), now or later (after store round trips). If the client
 * went away meanwhile the answer is dropped; either way the call is freed
 * by that answer, so a handler must not touch it afterwards.
 *
 * Unknown paths get 404 "no such route"; a known path with another method
 * 405 "method not allowed on this route"; both before any authentication.
 */
#ifndef CERTWARD_API_ROUTES_H
#define CERTWARD_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "auth.h"
#include "handlers.h"
#include "worker.h"

#define ROLE_ADMIN (1u << 0)
#define ROLE_OPERATOR (1u << 1)
#define ROLE_VIEWER (1u << 2)
#define ROLE_AGENT (1u << 3)
#define ROLES_READ (ROLE_ADMIN | ROLE_OPERATOR | ROLE_VIEWER)
#define ROLES_MANAGE (ROLE_ADMIN | ROLE_OPERATOR)
#define ROLES_PUBLIC 0u /* no key needed */

#define ROUTE_PLAIN 1u     /* served on the plain-HTTP listener too */
#define ROUTE_OWN_AGENT 2u /* an agent key only for {id} = its own agent */

#define ROUTE_MAX_PARAMS 3
#define ROUTE_PARAM_MAX 512 /* an OCSP request in base64 (GET) */

struct route_call;
typedef void (*route_fn)(struct route_call *c);

struct route {
	const char *method;  /* "GET", "POST", "PUT", "DELETE" (HEAD is served as GET) */
	const char *pattern; /* "/api/v1/teams/{id}": a {name} is one path segment */
	unsigned roles;      /* ROLE_* allowed; ROLES_PUBLIC for no key */
	unsigned flags;      /* ROUTE_* */
	route_fn fn;
	const void *arg;     /* the handler's own (the resource, for REST routes) */
};

struct route_call {
	struct worker *w;
	const struct route *route;
	struct api_request req; /* copies, valid until the answer */
	char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX + 1];
	size_t nparams;
	struct auth_result who; /* the caller; role "" on a public route */
	char body_sha256[65];   /* hex of SHA-256 of the body, for the audit trail */
	void *data;             /* the handler's */
	bool refusal_audited;   /* the handler's change wrote its refusal's audit event */
	/* the router's own */
	respond_fn respond;
	void *ctx;
	struct auth_req *auth;
	bool cancelled, answered, dispatching, bad_param;
	char *copy; /* backing store of req's strings */
	size_t copy_len;
};

/* Registers routes (at most a fixed number; returns -1 beyond it). */
int routes_add(const struct route *r, size_t n);
/* Sets up the table: the fixed routes and the catalogue's. */
void routes_init(void);
/* One line per route: METHOD PATTERN ROLES (comma-separated, or "public") [plain] */
void routes_print(FILE *out);

/* The name of the i-th path parameter ("certificate_id") into out; false
 * when there is none or it does not fit. */
bool route_param_name(const struct route_call *c, size_t i, char *out, size_t cap);
/* The value of the path parameter `name` ("id"), or NULL. */
const char *route_param(const struct route_call *c, const char *name);

void route_respond(struct route_call *c, int status, const char *content_type, const char *body,
		   size_t len);
/* The same with more response headers (at most API_HEADERS_MAX). */
void route_respond_headers(struct route_call *c, int status, const char *content_type,
			   const struct api_header *headers, size_t n_headers, const char *body, size_t len);
/* j (taken over, may be NULL: 503 "out of memory") as the body, of
 * content_type or application/json */
void route_respond_json_typed(struct route_call *c, int status, const char *content_type, json_t *j);
void route_respond_json(struct route_call *c, int status, json_t *j);
/* problem+json (handlers.h respond_problem) with the request's id */
void route_problem(struct route_call *c, int status, const char *title, const char *detail,
		   const char *field);

/* Appends the audit parameters of a change made by the caller (actor,
 * actor type, actor role, request id, source address, body SHA-256: the
 * "A" of schema/gen_resources.py) to p[n..n+6); returns the new count. */
size_t route_audit_params(const struct route_call *c, const char **p, size_t n);

/* The role's bit, 0 for an unknown one. */
unsigned role_bit(const char *role);

#endif

/* The inventory's actions beyond create/read/update/delete: renew,
 * revoke, cancel, mark read, retire, heartbeat (actions.c). */
#ifndef CERTWARD_API_ACTIONS_H
#define CERTWARD_API_ACTIONS_H

#include <jansson.h>
#include <stdbool.h>

#include "routes.h"

/* Adds their routes to the route table. */
void actions_routes_init(void);

/* The request's body as a JSON object (an empty body: {}) whose members
 * are all among allowed[0..n); else answers 400 and returns NULL. */
json_t *action_body(struct route_call *c, const char *const *allowed, size_t n);
/* Valid UTF-8 without control characters (text for the audit trail). */
bool action_text_ok(const char *s);

#endif

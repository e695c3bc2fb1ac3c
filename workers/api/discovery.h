/* Certificate discovery: agents' reports, and the triage of what they
 * found (discovery.c). */
#ifndef CERTWARD_API_DISCOVERY_H
#define CERTWARD_API_DISCOVERY_H

/* Adds their routes to the route table. */
void discovery_routes_init(void);

#endif

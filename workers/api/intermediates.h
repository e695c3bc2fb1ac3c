/* Intermediate CAs of Local issuers through the API (intermediates.c). */
#ifndef CERTWARD_API_INTERMEDIATES_H
#define CERTWARD_API_INTERMEDIATES_H

/* Adds their routes to the route table. */
void intermediates_routes_init(void);

#endif

/* Deciding approval requests: approve and reject, by the approval's id or
 * by its job's (approvals.c, docs/renewal.md "Approvals"). Listing and
 * reading them are the catalogue's (schema/resources.json). */
#ifndef CERTWARD_API_APPROVALS_H
#define CERTWARD_API_APPROVALS_H

/* Adds their routes to the route table. */
void approvals_routes_init(void);

#endif

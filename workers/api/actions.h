/* The inventory's actions beyond create/read/update/delete: renew,
 * revoke, cancel, mark read, retire, heartbeat (actions.c). */
#ifndef CERTWARD_API_ACTIONS_H
#define CERTWARD_API_ACTIONS_H

/* Adds their routes to the route table. */
void actions_routes_init(void);

#endif

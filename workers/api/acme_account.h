/* An ACME issuer's account through the API: the account, its key rollover
 * and deactivation, their outcome (acme_account.c). */
#ifndef CERTWARD_API_ACME_ACCOUNT_H
#define CERTWARD_API_ACME_ACCOUNT_H

/* Adds its routes to the route table. */
void acme_account_routes_init(void);

#endif

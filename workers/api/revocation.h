/* The CA's public CRL and OCSP endpoints (revocation.c). */
#ifndef CERTWARD_API_REVOCATION_H
#define CERTWARD_API_REVOCATION_H

#include "config.h"
#include "worker.h"

/* Reads api.ocsp_signed_per_client. */
void revocation_configure(const struct cfg *section);
/* Registers GET /.well-known/pki/crl/{issuer_id} and the OCSP routes. */
void revocation_routes_init(void);
/* Starts polling ocsp.version (the OCSP cache's invalidation). */
void revocation_start(struct worker *w);
void revocation_stop(void);

#endif

/* The CRL loop, on every node: every scheduler.crl_check the scheduler asks the store which
 * Local issuers' CRLs are due (missing, behind a revocation, or within
 * scheduler.crl_refresh of their nextUpdate) and, one issuer after the
 * other, takes the next CRL number, reads the revoked serials a page at a
 * time into a memfd, has the signer sign them (CRL_SIGN, the DER comes back
 * in the same memfd), stores the DER in parts and publishes it. One run at
 * a time: revocations that arrive during a run make the issuer due again,
 * so any number of them costs one more CRL, not one each. */
#ifndef CERTWARD_SCHEDULER_CRL_H
#define CERTWARD_SCHEDULER_CRL_H

#include "config.h"
#include "metrics.h"
#include "worker.h"

/* Registers the loop "crl" (loops.h); 0, or -1 when out of memory. */
int crl_loop_start(struct worker *w, const struct cfg *section);
void crl_loop_stop(void);
void crl_loop_metrics(struct strbuf *out);

#endif

/* The loop that tells ACME CAs of revocations (acme_revocations, migration
 * 0023): on every node, claims with SKIP LOCKED, revokeCert through
 * acme_issuer.c, the outcome recorded; a failure the CA or the network may
 * get over is tried again later (1 min, doubling, at most 1 h; 10 tries). */
#ifndef CERTWARD_SCHEDULER_ACME_REVOKE_H
#define CERTWARD_SCHEDULER_ACME_REVOKE_H

#include "config.h"
#include "util.h"
#include "worker.h"

int acme_revoke_loop_start(struct worker *w, const struct cfg *section);
void acme_revoke_metrics(struct strbuf *out);

#endif

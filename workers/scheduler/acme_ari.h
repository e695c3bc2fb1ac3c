/* The loop that asks ACME CAs for their certificates' renewal information
 * (RFC 9773; acme_renewal_info, migration 0026): on every node, claims the
 * certificates due with SKIP LOCKED, GETs <renewalInfo>/<CertID> through
 * acme_issuer.c and records the window; the store moves renew_at to a time
 * picked inside it (docs/acme-client.md, "Renewal information (ARI)"). */
#ifndef CERTWARD_SCHEDULER_ACME_ARI_H
#define CERTWARD_SCHEDULER_ACME_ARI_H

#include "config.h"
#include "util.h"
#include "worker.h"

int acme_ari_loop_start(struct worker *w, const struct cfg *section);
void acme_ari_metrics(struct strbuf *out);

#endif

/* The loop that carries out the ACME account actions asked for through
 * the API (acme_account_actions, migration 0025): key rollovers and
 * deactivations, on every node (claimed with SKIP LOCKED, every
 * scheduler.acme_account_interval), each run through acme_issuer.c; a
 * failure the CA or the network may get over is tried again later (1 min,
 * doubling, at most 1 h; 10 tries). */
#ifndef CERTWARD_SCHEDULER_ACME_ACCOUNT_H
#define CERTWARD_SCHEDULER_ACME_ACCOUNT_H

#include "config.h"
#include "util.h"
#include "worker.h"

int acme_account_loop_start(struct worker *w, const struct cfg *section);
void acme_account_metrics(struct strbuf *out);

#endif

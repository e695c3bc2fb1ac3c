/*
 * The jobs the scheduler runs itself (docs/renewal.md "Jobs"): dispatch on
 * every node (due Pending jobs claimed with SKIP LOCKED, at most
 * scheduler.job_concurrency at once), renewals of certificates of Local
 * issuers without an agent (the stored CSR signed again, or a new key made
 * by the signer when it made the current one), each outcome recorded under
 * the retry rule of migration 0018; and, on the leader, the timeout loop.
 */
#ifndef CERTWARD_SCHEDULER_JOBS_H
#define CERTWARD_SCHEDULER_JOBS_H

#include "config.h"
#include "util.h"
#include "worker.h"

/* Registers the dispatch and timeout loops. 0, or -1 (logged). */
int jobs_start(struct worker *w, const struct cfg *section);
void jobs_metrics(struct strbuf *out);
void jobs_stop(void);

#endif

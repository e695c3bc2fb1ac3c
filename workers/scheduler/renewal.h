/* The leader's certificate loops, each one store operation (schema/store_ops.def,
 * "scheduler loops") over at most scheduler.renewal_batch certificates a run:
 *   renewal_scan    (scheduler.renewal_scan_interval)   Renewal jobs for the certificates due
 *   expiry_marking  (scheduler.expiry_marking_interval) Active / Expiring / Expired
 *   expiry_notify   (scheduler.expiry_notify_interval)  ExpirationWarning and CertificateExpired events
 * docs/renewal.md explains the rules. */
#ifndef CERTWARD_SCHEDULER_RENEWAL_H
#define CERTWARD_SCHEDULER_RENEWAL_H

#include "config.h"
#include "worker.h"

/* 0, or -1 when out of memory. */
int renewal_loops_register(struct worker *w, const struct cfg *section);

#endif

/* The loop "ocsp_rotation", on every node: every
 * scheduler.ocsp_rotation_interval the scheduler has its node's signer
 * renew the OCSP responder certificates that have less than a third of
 * their life left (OCSP_RESPONDERS_RENEW), so a responder is renewed ahead
 * of its expiry even when no OCSP request comes to need it. */
#ifndef CERTWARD_SCHEDULER_OCSP_ROTATION_H
#define CERTWARD_SCHEDULER_OCSP_ROTATION_H

#include "worker.h"

/* 0, or -1 when out of memory. */
int ocsp_rotation_start(struct worker *w);

#endif
